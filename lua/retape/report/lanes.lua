-- retape.report.lanes — what the receipts did, for the report's model:
-- each ticker's lane per bucket, the prices the ruleset keeps (and a
-- benchmark bought and held), and why a run opened no trade.  Used by
-- retape.report.data.
local json = require "retape.json"
local rtime = require "retape.time"
local trades = require "retape.report.trades"

local M = {}

local BUCKET = rtime.BUCKET_MS
local round, enter_rule = trades.round, trades.enter_rule

local function is_null(v) return v == nil or v == false or v == json.null end

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

M.lane_history, M.price_history, M.benchmark, M.no_trades_reason = lane_history, price_history, benchmark, no_trades_reason

return M
