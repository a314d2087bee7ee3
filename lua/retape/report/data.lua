-- retape.report.data — the report's data model, built from a state store.
--
-- Every read of a store goes through retape.results / retape.manifest
-- (retape.store owns the keys): trades, lanes, the latest state per ticker,
-- the lane of every receipt, the run manifests; diff.compare for --vs.
-- The model is a plain Lua table of numbers, strings and arrays that the
-- HTML page renders (report/html.lua embeds it as JSON).  A trade's
-- figures use the shared definitions of retape.metrics, a set of trades'
-- those of retape.stats (with the store's capital model).
local json = require "retape.json"
local rtime = require "retape.time"
local metrics = require "retape.metrics"
local stats = require "retape.stats"
local views = require "retape.views"

local M = {}

local BUCKET = rtime.BUCKET_MS

-- Per ticker, {ts, stage (false: none), receipt_id} of every receipt.
local lane_logs = require("retape.results").lane_logs

local function is_null(v) return v == nil or v == false or v == json.null end
local function round(x, n) local m = 10 ^ (n or 2); return math.floor(x * m + 0.5) / m end

-- The ruleset that made the store (its latest manifest), or the default one.
-- A user ruleset is recorded by its name; the file it came from is a key of
-- the manifest's rules_sources.
local function ruleset_of(last, st)
  local rules = require "retape.rules"
  if st and st:recipe() then -- the recorded ruleset; a rule file changed since makes the report stale
    local manifest = require "retape.manifest"
    local ok, R = pcall(manifest.store_rules, st)
    if ok then
      local c = manifest.changed_files(st:recipe())[1]
      return R, c and string.format("rule file %s changed since this store was made (%s then, %s now); "
        .. "shown with the recorded rules", c.path, c.was, c.now), c ~= nil
    end
  end
  local candidates = { last and last.rules or rules.default }
  for name in pairs(last and last.rules_sources or {}) do
    if name:find("/", 1, true) or name:match("%.lua$") then candidates[#candidates + 1] = name end
  end
  for _, spec in ipairs(candidates) do
    local ok, R = pcall(rules.load, spec)
    if ok then return R end
  end
  return rules.load(rules.default), "ruleset '" .. tostring(last and last.rules) .. "' not found: lanes shown with the default one"
end

-- The deciding enter rule of a trade: recorded by the ruleset (enter_rule),
-- else what its flags say about a forced entry, else "unrecorded".
local function enter_rule(t)
  if type(t.enter_rule) == "string" then return t.enter_rule end
  if type(t.flags) == "table" and t.flags.forced_enter_now_gate == true then return "forced_enter_now_gate" end
  return "unrecorded"
end
M.enter_rule = enter_rule

-- One trade of the model: the fields the tables show, times in ET; om: the
-- definitions of the ruleset that made it (metrics.of(R): which are open).
local function trade_row(t, om)
  local exit_ts = metrics.exit_ts(t)
  local h = {}
  for i, e in ipairs(t.history or {}) do
    local ts = rtime.parse_iso(e.timestamp)
    h[i] = { ts = ts or json.null, time = metrics.time(ts), type = e.type, price = e.price, shares = e.shares and round(e.shares, 4),
             reason = e.reason or json.null, pnl = round(metrics.event_realized(t, e)),
             note = e.note or json.null, old_sl = e.oldSl or json.null, new_sl = e.newSl or json.null }
  end
  return {
    id = t.id, ticker = t.ticker, dir = t.direction, status = t.status, outcome = om.outcome(t),
    entry_ts = t.entry_ts, entry_time = metrics.time(t.entry_ts), entry = t.entryPrice,
    exit_ts = exit_ts or json.null, exit_time = metrics.time(exit_ts), exit = t.exitPrice or json.null,
    exit_reason = t.exitReason or (om.is_open(t) and "(open)" or "(none)"),
    trimmed = round((t.trimmedPct or 0) * 100, 1), rule = enter_rule(t),
    realized = round(metrics.realized(t)), unrealized = round(om.unrealized(t)),
    pnl = round(metrics.realized(t) + om.unrealized(t)), current = t.currentPrice or json.null,
    ret = (function() -- P&L as a % of the trade's entry value
      local value = (t.entryPrice or 0) * (t.shares or 0) * (t.pointValue or 1)
      return value > 0 and round((metrics.realized(t) + om.unrealized(t)) / value * 100, 2) or json.null
    end)(),
    sl = t.sl or json.null, tp = t.tp or json.null, history = h,
  }
end

-- Groups trades by key(t): { {key, trades, wins, losses, flat, open, pnl} }
-- sorted by P&L, best first (om: as trade_row's).
local function breakdown(trades, key, om)
  local per, list = {}, {}
  for _, t in ipairs(trades) do
    local k = key(t)
    local g = per[k]
    if not g then
      g = { key = k, trades = 0, wins = 0, losses = 0, flat = 0, open = 0, pnl = 0 }
      per[k] = g
      list[#list + 1] = g
    end
    local o = om.outcome(t)
    g.trades = g.trades + 1
    if o == "win" then g.wins = g.wins + 1 elseif o == "loss" then g.losses = g.losses + 1
    elseif o == "flat" then g.flat = g.flat + 1 else g.open = g.open + 1 end
    g.pnl = g.pnl + metrics.realized(t) + om.unrealized(t)
  end
  for _, g in ipairs(list) do g.pnl = round(g.pnl) end
  table.sort(list, function(a, b) if a.pnl ~= b.pnl then return a.pnl > b.pnl end return a.key < b.key end)
  return list
end

-- The manifest part of the model: rules, overrides, hashes, scope, state.
local function manifest_of(runs, R, rules_note, rules_changed)
  local last = runs[#runs] or {}
  local p = last.params or {}
  local scope
  if not is_null(p.date) then scope = p.date
  elseif not is_null(p.from) then scope = tostring(p.from) .. " to " .. tostring(p.to)
  else scope = "(unknown)" end
  if not is_null(p.ticker) then scope = scope .. ", tickers " .. tostring(p.ticker) end
  local overrides = {}
  local texts = require("retape.rules").texts(last.overrides,
    function(v) return type(v) == "number" and string.format("%.12g", v) or tostring(v) end)
  for i, text in ipairs(texts) do
    local key, value = text:match("^(.-)=(.*)$")
    overrides[i] = { key = key, value = value, text = text }
  end
  local sources = {}
  for k, v in pairs(last.rules_sources or {}) do sources[#sources + 1] = { name = k, hash = v } end
  table.sort(sources, function(a, b) return a.name < b.name end)
  local state = "complete"
  local notes = {}
  if #runs == 0 then state = "unknown"; notes[#notes + 1] = "no run manifest in this store"
  elseif not last.results then state = "interrupted"; notes[#notes + 1] = "the last run did not finish its scope (resume it with --resume)" end
  for name, hash in pairs(last.rules_sources or {}) do
    if R.sources and R.sources[name] and R.sources[name] ~= hash then
      state = state == "complete" and "stale" or state
      notes[#notes + 1] = string.format("ruleset %s changed since this store was made (%s then, %s now)", name, hash, R.sources[name])
    end
  end
  if last.engine and last.engine ~= require("retape.core").version then
    notes[#notes + 1] = string.format("made by engine %s (this is %s)", last.engine, require("retape.core").version)
  end
  if rules_note then notes[#notes + 1] = rules_note end
  if rules_changed and state == "complete" then state = "stale" end
  local list = {}
  for i, m in ipairs(runs) do
    local r = m.response or {}
    local fin = rtime.parse_iso(m.finished)
    list[i] = { seq = math.tointeger(m.seq), rules = m.rules, finished = fin and metrics.time(fin, true) or (m.finished or ""), rows = math.tointeger(r.rowsProcessed) or 0,
                trades = math.tointeger(r.tradesCreated) or 0, receipts = m.receipts and m.receipts.hash or "",
                results = m.results and (m.results.lanes_hash .. "/" .. m.results.trades_hash) or "(partial)" }
  end
  return {
    rules = last.rules or "(unknown)", engine = last.engine or "", scope = scope, state = state, notes = notes,
    overrides = overrides, sources = sources, runs = list,
    receipts = last.receipts and { read = math.tointeger(last.receipts.read), hash = last.receipts.hash } or json.null,
    results = last.results or json.null,
  }
end

-- Lane history: the buckets the logs cover, and per ticker the changes of
-- its lane as [bucket index, lane index (0-based; -1: no lane)] pairs.  A
-- ticker's lane at a bucket is the final stage of its last receipt in a
-- bucket <= that one (what results.lanes(st, R, at) returns).
local function lane_history(logs, R)
  local lane_of = {}
  for i, lane in ipairs(R.lanes) do
    for _, s in ipairs(lane.stages) do lane_of[s] = i - 1 end
  end
  local bset, buckets = {}, {}
  for _, log in pairs(logs) do
    for _, e in ipairs(log) do
      local b = math.tointeger(e[1] - e[1] % BUCKET)
      if not bset[b] then bset[b] = true; buckets[#buckets + 1] = b end
    end
  end
  table.sort(buckets)
  local index = {}
  for i, b in ipairs(buckets) do index[b] = i - 1 end
  local tickers = {}
  for T in pairs(logs) do tickers[#tickers + 1] = T end
  table.sort(tickers)
  local strip = {}
  for i, T in ipairs(tickers) do
    local log = logs[T]
    table.sort(log, function(a, b) return a[1] < b[1] end)
    local changes, prev = {}, nil
    local j = 1
    while j <= #log do
      local b = log[j][1] - log[j][1] % BUCKET
      while j < #log and log[j + 1][1] - log[j + 1][1] % BUCKET == b do j = j + 1 end
      local s = log[j][2]
      local lane = is_null(s) and -1 or (lane_of[s] or -1)
      if lane ~= prev then
        changes[#changes + 1] = index[math.tointeger(b)]
        changes[#changes + 1] = lane
        prev = lane
      end
      j = j + 1
    end
    strip[i] = changes
  end
  return buckets, tickers, strip
end

-- Realized P&L per New York day with counts (By Day's figures); with a
-- receipts database, open positions marked at each day's close.  R: the
-- ruleset that made the trades.
local function per_day(trades, db, R)
  local rows = views.by_day(trades, { day_key = "ny", rules = R })
  if db then
    local ds = {}
    for i, d in ipairs(rows) do ds[i] = d.day end
    local closes, err = views.day_closes(db, ds)
    if not closes then error(err, 0) end
    rows = views.by_day(trades, { day_key = "ny", closes = closes, rules = R })
  end
  local out = {}
  for i, d in ipairs(rows) do
    out[i] = { day = d.day, realized = round(d.realized), entries = d.entries, trims = d.trims, exits = d.exits,
               wins = d.wins, losses = d.losses, flat = d.flat or 0 }
  end
  return out, rows
end

local function or_null(x, n) if x == nil then return json.null end return n and round(x, n) or x end

-- The capital model a store was made with: its latest manifest's config
-- (retape.stats.capital), else the ruleset's.
local function capital_of(last, R)
  local c = last and type(last.config) == "table" and last.config.capital
  if type(c) == "table" then return stats.capital(c) end
  return stats.capital_of(R)
end

-- Summary figures of a list of trades (retape.stats): the cards, the
-- statistics block, the equity and underwater curves, daily and monthly
-- returns.  Money rounded to cents, rates in % to 2 places.
local function summary(trades, buckets, capital, R)
  local s = stats.compute(trades, { buckets = buckets, capital = capital, rules = R })
  local pts, under = {}, {}
  for i, p in ipairs(s.equity) do pts[i] = { p[1], round(p[2]) } end
  for i, p in ipairs(s.underwater) do under[i] = { p[1], round(p[2]), round(p[3] * 100, 3) } end
  local daily, monthly = {}, {}
  for i, d in ipairs(s.daily) do daily[i] = { day = d.day, pnl = round(d.pnl), ret = round(d.ret * 100, 3), equity = round(d.equity) } end
  for i, m in ipairs(s.monthly) do monthly[i] = { month = m.month, pnl = round(m.pnl), ret = round(m.ret * 100, 3), days = m.days } end
  local function trade_ref(x) return x and { id = x.id, ticker = x.ticker, pnl = round(x.pnl) } or json.null end
  local function day_ref(x) return x and { day = x.day, pnl = round(x.pnl), ret = round(x.ret * 100, 3) } or json.null end
  local cap = s.capital
  return {
    trades = s.trades, wins = s.wins, losses = s.losses, flat = s.flat, open = s.open, closed = s.closed,
    win_rate = round(s.win_rate * 100, 1), realized = round(s.realized), unrealized = round(s.unrealized),
    total = round(s.net_pnl), return_pct = round(s.return_pct * 100, 3), start = cap.start, fees = round(s.fees),
    capital = { start = cap.start, sizing = cap.sizing, equity_pct = cap.equity_pct, fee_per_order = cap.fee_per_order,
                fee_per_share = cap.fee_per_share, fee_bps = cap.fee_bps, slippage_bps = cap.slippage_bps },
    max_drawdown = round(s.max_drawdown), max_drawdown_pct = round(s.max_drawdown_pct * 100, 3),
    max_drawdown_at = or_null(s.max_drawdown_at), max_drawdown_duration_ms = s.max_drawdown_duration_ms,
    profit_factor = or_null(s.profit_factor, 2), avg_win = or_null(s.avg_win, 2), avg_loss = or_null(s.avg_loss, 2),
    expectancy = or_null(s.expectancy, 2), payoff_ratio = or_null(s.payoff_ratio, 2),
    holding_mean_ms = or_null(s.holding_mean_ms and math.floor(s.holding_mean_ms + 0.5)),
    holding_median_ms = or_null(s.holding_median_ms and math.floor(s.holding_median_ms + 0.5)),
    best_trade = trade_ref(s.best_trade), worst_trade = trade_ref(s.worst_trade),
    best_day = day_ref(s.best_day), worst_day = day_ref(s.worst_day),
    max_losing_streak = s.max_losing_streak, max_winning_streak = s.max_winning_streak,
    sharpe = or_null(s.sharpe, 2), sortino = or_null(s.sortino, 2), calmar = or_null(s.calmar, 2),
    annual_return = or_null(s.annual_return and s.annual_return * 100, 2), days = s.days,
    exposure = round((s.exposure or 0) * 100, 1), equity = pts, underwater = under, daily = daily, monthly = monthly,
  }
end

-- Per ticker, its price after each bucket it had receipts in (the `price`
-- its ruleset keeps among its view fields): { T = { {bucket ms, price}, ... } }
-- for the tickers in `want`.
local function price_history(st, want)
  local out = {}
  st:each_version(function(T, bucket, rec)
    if want[T] then
      local px = rec.view and rec.view.price
      if type(px) == "number" then
        local l = out[T]
        if not l then l = {}; out[T] = l end
        l[#l + 1] = { bucket, px }
      end
    end
  end)
  for _, l in pairs(out) do table.sort(l, function(a, b) return a[1] < b[1] end) end
  return out
end

-- The benchmark: buy-and-hold of one ticker of the receipts with the whole
-- starting capital from the first bucket of the run: { ticker, points =
-- {{ms, P&L}, ...}, ret (%) } or nil when the store has no price of it.
local function benchmark(series, ticker, start)
  if not series or #series == 0 then return nil end
  local px0 = series[1][2]
  if not (px0 > 0) then return nil end
  local pts = {}
  for i, p in ipairs(series) do pts[i] = { p[1], round(start * (p[2] / px0 - 1)) } end
  return { ticker = ticker, points = pts, first = px0, last = series[#series][2],
           ret = round((series[#series][2] / px0 - 1) * 100, 3) }
end

-- Why a store has no trades, in words: how often a ticker was in the
-- ruleset's entry lane and how many of those receipts carried the levels
-- (sl and tp) an entry needs.
local function no_trades_reason(st, R, logs)
  local enter = {}
  for _, lane in ipairs(R.lanes or {}) do
    if lane.id == "enter_now" then for _, sname in ipairs(lane.stages) do enter[sname] = true end end
  end
  local receipts, tickers, in_enter = 0, 0, 0
  for _, log in pairs(logs) do
    tickers = tickers + 1
    receipts = receipts + #log
    for _, e in ipairs(log) do if enter[e[2]] then in_enter = in_enter + 1 end end
  end
  local with_levels, enter_versions = 0, 0
  st:each_version(function(_, _, rec)
    local stage = rec.state and R.state and R.state.stage and rec.state[R.state.stage]
    if enter[stage] then
      enter_versions = enter_versions + 1
      local v = rec.view or {}
      if type(v.sl) == "number" and v.sl > 0 and type(v.tp) == "number" and v.tp > 0 then with_levels = with_levels + 1 end
    end
  end)
  local text
  if receipts == 0 then
    text = "the store holds no receipts: the run read nothing in its scope (check --date/--from/--to and --script-version)"
  elseif in_enter == 0 then
    text = string.format("no ticker reached the Enter Now lane in %d receipts of %d tickers, so no entry was tried", receipts, tickers)
  elseif with_levels == 0 then
    text = string.format("tickers were in Enter Now %d times, but none of those receipts carried a stop-loss and a "
      .. "take-profit level (sl, tp), which an entry needs. The real receipts carry no levels: "
      .. "scripts/levels.lua adds the parity reference's synthetic ones", in_enter)
  else
    text = string.format("tickers were in Enter Now %d times (%d buckets with levels), but the ruleset opened no "
      .. "trade: see 'retape explain' for one of those receipts", in_enter, with_levels)
  end
  return { receipts = receipts, tickers = tickers, enter_now = in_enter, with_levels = with_levels, text = text }
end

-- The ruleset's words for its exit reasons and enter rules (R.glossary:
-- { exit_reason = {KEY = text, ["PREFIX*"] = text}, enter_rule = {...} }),
-- for the keys the trades use.
local function glossary(R, trades)
  local g = type(R.glossary) == "table" and R.glossary or {}
  local function lookup(dict, key)
    if type(dict) ~= "table" then return nil end
    if dict[key] then return dict[key] end
    local best, len = nil, 0
    for k, v in pairs(dict) do
      local prefix = k:match("^(.-)%*$")
      if prefix and key:sub(1, #prefix) == prefix and #prefix > len then best, len = v, #prefix end
    end
    if best then
      local rest = key:sub(len + 1)
      local inner = lookup(dict, rest)
      return inner and (best .. " " .. rest .. ": " .. inner) or (best .. " " .. rest)
    end
    return nil
  end
  local out = {}
  for _, kind in ipairs { "exit_reason", "enter_rule" } do
    local seen, list = {}, {}
    for _, t in ipairs(trades) do
      local k = kind == "exit_reason" and t.exitReason or (kind == "enter_rule" and M.enter_rule(t))
      if type(k) == "string" and not seen[k] then
        seen[k] = true
        list[#list + 1] = { key = k, text = lookup(g[kind], k) or "(the ruleset does not describe it)" }
      end
    end
    table.sort(list, function(a, b) return a.key < b.key end)
    out[kind] = list
  end
  return out
end

-- build(dir [, opts]) -> model | nil, message.  opts.vs: other stores (a
-- list, or one path) replayed over the same receipts, each compared with
-- this one; opts.db: the receipts database, for each day's closing prices
-- in Trade By Day; opts.benchmark: the ticker bought and held beside the
-- equity curve (default SPY).
function M.build(dir, opts)
  opts = opts or {}
  local store = require "retape.store"
  local results, manifest = require "retape.results", require "retape.manifest"
  local st, err = store.open(dir, true)
  if not st then return nil, err end
  local ok, model = pcall(function()
    local trades = results.trades(st)
    local runs = manifest.runs(st)
    local R, rules_note, rules_changed = ruleset_of(runs[#runs], st)
    local logs = lane_logs(st)
    local defend, final_stage = {}, {}
    local badges = results.badges(st, R)
    for T, p in pairs(results.latest(st)) do
      final_stage[T] = R.state and R.state.stage and p[R.state.stage]
      if badges[T] == "defend" then defend[#defend + 1] = T end
    end
    table.sort(defend)
    local board = results.lanes(st, R)
    local buckets, tickers, strip = lane_history(logs, R)
    -- the Defend badge at every bucket: per ticker, the bucket indexes where it turns on or off
    local bindex = {}
    for i, b in ipairs(buckets) do bindex[b] = i - 1 end
    local history = results.badge_history(st, R)
    local defend_strip = {}
    for i, T in ipairs(tickers) do
      local changes, prev = {}, false
      for _, h in ipairs(history[T] or {}) do
        local on = h[2] == "defend"
        if on ~= prev and bindex[h[1]] then
          changes[#changes + 1] = bindex[h[1]]
          changes[#changes + 1] = on and 1 or 0
          prev = on
        end
      end
      defend_strip[i] = changes
    end
    local labels = {}
    for i, b in ipairs(buckets) do labels[i] = metrics.time(b) end
    local om = metrics.of(R)
    local rows = {}
    for i, t in ipairs(trades) do rows[i] = trade_row(t, om) end
    local days, by_day = per_day(trades, opts.db, R)
    local day_rows = {}
    for _, d in ipairs(by_day) do
      for _, r in ipairs(d.trades) do
        day_rows[#day_rows + 1] = { day = d.day, id = r.trade_id, ticker = r.ticker, dir = r.direction, entry = r.entry,
          close = r.close or json.null, trim_price = r.trim_price or json.null, exit = r.exit_price or json.null,
          exit_reason = r.exit_reason or "", remaining = r.remaining and round(r.remaining, 4) or json.null,
          realized = round(r.realized), unrealized = round(r.unrealized or 0) }
      end
    end
    local by_pnl = {}
    for i, r in ipairs(views.by_pnl(trades, nil, { day_key = "ny", rules = R })) do
      by_pnl[i] = { ticker = r.ticker, trades = r.trades, open = r.open, realized = round(r.realized),
                    unrealized = round(r.unrealized), total = round(r.total) }
    end
    local lanes = {}
    for i, l in ipairs(board) do lanes[i] = { id = l.lane, title = l.title, final = #l.tickers } end
    local traded = {}
    for _, t in ipairs(trades) do traded[t.ticker] = true end
    local bench_ticker = opts.benchmark or "SPY"
    local want = {}
    for T in pairs(traded) do want[T] = true end
    want[bench_ticker] = true
    local prices = price_history(st, want)
    local capital = capital_of(runs[#runs], R)
    local sum = summary(trades, buckets, capital, R)
    local price_out = {}
    for T in pairs(traded) do
      local l = {}
      for i, p in ipairs(prices[T] or {}) do l[i] = { p[1], p[2] } end
      price_out[T] = l
    end
    local bench = benchmark(prices[bench_ticker], bench_ticker, sum.start)
    local m = {
      store = dir, manifest = manifest_of(runs, R, rules_note, rules_changed), lanes = lanes, buckets = buckets, labels = labels,
      tickers = tickers, strip = strip, defend = defend, defend_strip = defend_strip, trades = rows, days = days, by_day = day_rows, by_pnl = by_pnl,
      summary = sum, prices = json.object(price_out), glossary = glossary(R, trades),
      benchmark = bench or { ticker = bench_ticker, missing = true },
      no_trades = #trades == 0 and no_trades_reason(st, R, logs) or json.null,
      breakdown = {
        exit_reason = breakdown(trades, function(t) return t.exitReason or (om.is_open(t) and "(open)" or "(none)") end, om),
        enter_rule = breakdown(trades, enter_rule, om),
        direction = breakdown(trades, function(t) return t.direction end, om),
        ticker = breakdown(trades, function(t) return t.ticker end, om),
      },
    }
    m.vs = {}
    local vs = type(opts.vs) == "table" and opts.vs or (opts.vs and { opts.vs } or {})
    for i, other in ipairs(vs) do m.vs[i] = M.compare(st, other, runs) end
    return m
  end)
  st:close()
  if not ok then return nil, model end
  return model
end

-- The --vs part: B's summary and equity curve, trades added / removed /
-- changed (retape.diff's comparison), lane changes per ticker with the
-- first receipt where they part, and whether both read the same receipts.
function M.compare(a, dir_b, runs_a)
  local store = require "retape.store"
  local results, manifest = require "retape.results", require "retape.manifest"
  local b, err = store.open(dir_b, true)
  if not b then error(err, 0) end
  local ok, res = pcall(function()
    local trades_b = results.trades(b)
    local runs_b = manifest.runs(b)
    local R = ruleset_of(runs_b[#runs_b], b)
    local buckets = lane_history(lane_logs(b), R)
    local sum = summary(trades_b, buckets, capital_of(runs_b[#runs_b], R))
    local d = require("retape.diff").compare(a, b)
    local ra, rb = runs_a[#runs_a] or {}, runs_b[#runs_b] or {}
    local ha, hb = ra.receipts and ra.receipts.hash, rb.receipts and rb.receipts.hash
    local lanes = {}
    for i, l in ipairs(d.lanes) do
      lanes[i] = { ticker = l.ticker, time = metrics.time(l.first.ts, true), a = l.first.a, b = l.first.b,
                   receipts = l.receipts, of = l.of }
    end
    local changed = {}
    for i, c in ipairs(d.changed) do
      local parts = {}
      for _, f in ipairs(c.fields) do
        local function show(v) if v == json.null then return "-" end return type(v) == "number" and json.number(round(v, 4)) or tostring(v) end
        parts[#parts + 1] = f.field .. " " .. show(f.a) .. " → " .. show(f.b)
      end
      changed[i] = { trade = c.trade, fields = table.concat(parts, "; ") }
    end
    return {
      store = dir_b, rules = rb.rules or "(unknown)", manifest = manifest_of(runs_b, R),
      same_receipts = ha ~= nil and ha == hb, receipts_a = ha or json.null, receipts_b = hb or json.null,
      summary = sum,
      added = d.added, removed = d.removed, changed = changed, lanes = lanes,
    }
  end)
  b:close()
  if not ok then error(res, 0) end
  return res
end

return M
