-- retape.report.lanes — what the receipts did, for the report's model:
-- each ticker's lane per bucket, the prices the ruleset keeps (and a
-- benchmark bought and held), and why a run opened no trade.  Used by
-- retape.report.data.
local json = require "retape.json"
local rtime = require "retape.time"
local trades = require "retape.report.trades"
local results = require "retape.results"

local M = {}

local BUCKET = rtime.BUCKET_MS
local round, enter_rule = trades.round, trades.enter_rule

local function is_null(v) return v == nil or v == false or v == json.null end

-- scan(st, R [, opts]) -> what the report draws from the store's versions,
-- read in one pass, a ticker at a time (results.each_ticker_versions: a
-- report of many days never holds every receipt's lane at once; what it
-- keeps per version is two numbers of the Defend strip, when the ruleset
-- has a badge).  opts.want: the tickers whose prices to keep;
-- opts.buckets_only: only `buckets` (no rule code runs):
--   buckets  the buckets the receipts fall in, in order
--   tickers  every ticker with versions, in order
--   strip    per ticker (as tickers), its lane changes as [bucket index, lane
--            index (0-based; -1: no lane)] pairs.  A ticker's lane at a
--            bucket is the final stage of its last receipt in a bucket <= that
--            one (what results.lanes(st, R, at) returns)
--   defend   per ticker, where its Defend badge (R.badge) turns on or off, as
--            [bucket index, 1 | 0] pairs
--   prices   { T = { {bucket ms, price}, ... } } for the tickers in opts.want:
--            the `price` its ruleset keeps among its view fields, per version
--   counts   { receipts, tickers, enter_now, with_levels } for no_trades_reason
function M.scan(st, R, opts)
  opts = opts or {}
  local want, only_buckets = opts.want or {}, opts.buckets_only
  local lane_of, enter = {}, {}
  for i, lane in ipairs(R.lanes) do
    for _, s in ipairs(lane.stages) do
      lane_of[s] = i - 1
      if lane.id == "enter_now" then enter[s] = true end
    end
  end
  local stage_field, badge = R.state and R.state.stage, not only_buckets and results.badge_fn(R) or nil
  local bset, buckets, tickers, lane_ms, defend_ms, prices = {}, {}, {}, {}, {}, {}
  local counts = { receipts = 0, tickers = 0, enter_now = 0, with_levels = 0 }
  results.each_ticker_versions(st, function(T, versions)
    tickers[#tickers + 1] = T
    counts.tickers = counts.tickers + 1
    local log, marks, px = {}, {}, want[T] and {} or nil
    for _, v in ipairs(versions) do
      local rec = v.rec
      for _, e in ipairs(rec.lanes or {}) do
        log[#log + 1] = e
        local b = math.tointeger(e[1] - e[1] % BUCKET)
        if not bset[b] then bset[b] = true; buckets[#buckets + 1] = b end
        if enter[e[2]] then counts.enter_now = counts.enter_now + 1 end
      end
      local view = rec.view or {}
      if badge then
        local r = {}
        for k, x in pairs(view) do r[k] = x end
        for k, x in pairs(rec.state or {}) do r[k] = x end
        marks[#marks + 1] = v.bucket
        marks[#marks + 1] = badge(r, T) == "defend"
      end
      if enter[stage_field and rec.state and rec.state[stage_field]]
        and type(view.sl) == "number" and view.sl > 0 and type(view.tp) == "number" and view.tp > 0 then
        counts.with_levels = counts.with_levels + 1
      end
      if px and type(view.price) == "number" then px[#px + 1] = { v.bucket, view.price } end
    end
    counts.receipts = counts.receipts + #log
    if px and #px > 0 then prices[T] = px end
    -- the lane after each bucket, as changes (bucket ms for now: the
    -- indexes are known once every ticker is read).  The log is in time
    -- order: versions by bucket, each one's receipts by (ts, receipt_id).
    local changes, prev, j = {}, nil, 1
    while j <= #log do
      local b = log[j][1] - log[j][1] % BUCKET
      while j < #log and log[j + 1][1] - log[j + 1][1] % BUCKET == b do j = j + 1 end
      local s = log[j][2]
      local lane = is_null(s) and -1 or (lane_of[s] or -1)
      if lane ~= prev then
        changes[#changes + 1] = math.tointeger(b)
        changes[#changes + 1] = lane
        prev = lane
      end
      j = j + 1
    end
    lane_ms[T], defend_ms[T] = changes, marks
  end)
  table.sort(buckets)
  local index = {}
  for i, b in ipairs(buckets) do index[b] = i - 1 end
  table.sort(tickers)
  local strip, defend = {}, {}
  for i, T in ipairs(tickers) do
    local c = lane_ms[T]
    for k = 1, #c, 2 do c[k] = index[c[k]] end
    strip[i] = c
    local changes, prev, m = {}, false, defend_ms[T]
    for k = 1, #m, 2 do
      local on, at = m[k + 1], index[m[k]]
      if on ~= prev and at then
        changes[#changes + 1] = at
        changes[#changes + 1] = on and 1 or 0
        prev = on
      end
    end
    defend[i] = changes
  end
  return { buckets = buckets, tickers = tickers, strip = strip, defend = defend, prices = prices, counts = counts }
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
-- (sl and tp) an entry needs.  counts: scan's.
local function no_trades_reason(counts)
  local receipts, tickers, in_enter, with_levels = counts.receipts, counts.tickers, counts.enter_now, counts.with_levels
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

M.no_trades_reason, M.benchmark = no_trades_reason, benchmark

return M
