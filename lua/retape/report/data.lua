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
local views = require "retape.views"

local trades_room = require "retape.report.trades"
local lanes_room = require "retape.report.lanes"

local M = {}

-- The rooms: trades (the trades' part of the model) and lanes (lanes,
-- prices, why no trade); this module reads the store and builds the model.
local round, enter_rule, trade_row, breakdown = trades_room.round, trades_room.enter_rule, trades_room.trade_row, trades_room.breakdown
local per_day, capital_of, summary, glossary = trades_room.per_day, trades_room.capital_of, trades_room.summary, trades_room.glossary
local scan_versions, benchmark, no_trades_reason = lanes_room.scan, lanes_room.benchmark, lanes_room.no_trades_reason
M.enter_rule = enter_rule

local BUCKET = rtime.BUCKET_MS

local function is_null(v) return v == nil or v == false or v == json.null end

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
    local defend, final_stage = {}, {}
    local badges = results.badges(st, R)
    for T, p in pairs(results.latest(st)) do
      final_stage[T] = R.state and R.state.stage and p[R.state.stage]
      if badges[T] == "defend" then defend[#defend + 1] = T end
    end
    table.sort(defend)
    local board = results.lanes(st, R)
    -- the versions, read once: lanes and the Defend badge at every bucket,
    -- the traded tickers' prices (and the benchmark's)
    local bench_ticker = opts.benchmark or "SPY"
    local traded, want = {}, { [bench_ticker] = true }
    for _, t in ipairs(trades) do traded[t.ticker], want[t.ticker] = true, true end
    local scan = scan_versions(st, R, { want = want })
    local buckets, tickers, strip, defend_strip, prices = scan.buckets, scan.tickers, scan.strip, scan.defend, scan.prices
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
    local capital = capital_of(runs[#runs], R)
    local sum = summary(trades, buckets, capital, R)
    local price_out = {} -- (the scan's own lists; benchmark() only reads them)
    for T in pairs(traded) do price_out[T] = prices[T] or {} end
    local bench = benchmark(prices[bench_ticker], bench_ticker, sum.start)
    local m = {
      store = dir, manifest = manifest_of(runs, R, rules_note, rules_changed), lanes = lanes, buckets = buckets, labels = labels,
      bucket_ms = BUCKET, -- the page places times between buckets with it (retape.time)
      tickers = tickers, strip = strip, defend = defend, defend_strip = defend_strip, trades = rows, days = days, by_day = day_rows, by_pnl = by_pnl,
      summary = sum, prices = json.object(price_out), glossary = glossary(R, trades),
      benchmark = bench or { ticker = bench_ticker, missing = true },
      no_trades = #trades == 0 and no_trades_reason(scan.counts) or json.null,
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
    local buckets = scan_versions(b, R, { buckets_only = true }).buckets
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

