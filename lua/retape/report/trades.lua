-- retape.report.trades — the trades' part of the report's model: one row
-- per trade, breakdowns (exit reason, enter rule, direction, ticker),
-- Trade By Day, the statistics block with its curves, the glossary of the
-- reasons and rules the trades use.  Used by retape.report.data.
local json = require "retape.json"
local rtime = require "retape.time"
local metrics = require "retape.metrics"
local stats = require "retape.stats"
local views = require "retape.views"

local M = {}

local function round(x, n) local m = 10 ^ (n or 2); return math.floor(x * m + 0.5) / m end
M.round = round

-- The deciding enter rule of a trade: recorded by the ruleset (enter_rule),
-- else what its flags say about a forced entry, else "unrecorded".
local function enter_rule(t)
  if type(t.enter_rule) == "string" then return t.enter_rule end
  if type(t.flags) == "table" and t.flags.forced_enter_now_gate == true then return "forced_enter_now_gate" end
  return "unrecorded"
end

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

-- The ruleset's words for its exit reasons and enter rules (R.glossary:
-- { exit_reason = {KEY = text, ["PREFIX*"] = text}, enter_rule = {...} }),
-- for the keys the trades use.
local function glossary(R, trades)
  local g = type(R.glossary) == "table" and R.glossary or {}
  -- (a key is a rule's string: one past 200 bytes is shown as it is; its
  -- longest "PREFIX*" entry is found by trying its prefixes, so the work
  -- is the key's length, not the glossary's, and a prefix explains at most
  -- four levels of a key like FLIP_TRIM_X)
  local function lookup(dict, key, depth)
    depth = depth or 1
    if type(dict) ~= "table" or type(key) ~= "string" or #key > 200 or depth > 4 then return nil end
    if rawget(dict, key) ~= nil then return rawget(dict, key) end
    for len = #key, 1, -1 do
      local best = rawget(dict, key:sub(1, len) .. "*")
      if best ~= nil then
        local rest = key:sub(len + 1)
        local inner = lookup(dict, rest, depth + 1)
        return inner and (tostring(best) .. " " .. rest .. ": " .. tostring(inner)) or (tostring(best) .. " " .. rest)
      end
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

M.enter_rule, M.trade_row, M.breakdown, M.per_day = enter_rule, trade_row, breakdown, per_day
M.capital_of, M.summary, M.glossary = capital_of, summary, glossary

return M
