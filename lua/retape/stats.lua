-- retape.stats — the figures a trader reads first, defined once for every
-- command that shows them (trades --stats, report, sweep, diff, serve).
-- The formulas are written out in docs/statistics.md; this header is the
-- short version.
--
--   local stats = require "retape.stats"
--   local s = stats.compute(trades, { capital = R.config.capital, days = {...}, buckets = {...} })
--   print(s.net_pnl, s.return_pct, s.max_drawdown, s.sharpe)
--
-- Order.  Every figure is computed from the trades' ENTRY, TRIM and EXIT
-- events taken in one deterministic order: event time, then trade id, then
-- the event's place in its trade's history.  Events at the same instant
-- are netted into one point of the equity curve: the drawdown, the
-- underwater chart, the report's card and sweep's max_dd are all read off
-- that one curve, so they agree by construction (no state "inside" an
-- instant that the chart cannot show).
--
-- The capital model (the ruleset's config.capital, retape.stats.capital)
-- is an account laid over the simulated trades; it never changes what a
-- replay stores.  Each trade is scaled by a factor k (1 with sizing
-- "ruleset"; with "equity_pct" its entry value becomes equity_pct % of the
-- account's equity at its entry), its fills move against it by
-- slippage_bps, and each fill pays fee_per_order + fee_per_share * shares
-- + fee_bps of its value.  With the defaults (sizing "ruleset", no fees, no
-- slippage) every figure is the ruleset's own P&L, to the last bit.
--
-- Time series use realized P&L (trims and exits, net of costs): the store
-- keeps an open trade's last price only, so it is marked once, in
-- `unrealized` and `net_pnl`, not day by day.
local rtime = require "retape.time"
local metrics = require "retape.metrics"

local M = {}

M.EPSILON = metrics.EPSILON
M.TRADING_DAYS = 252 -- per year, for Sharpe, Sortino and the annual return
local DAY_MS = 86400000

-- The rooms: capital (the account model and its fills) and text (the
-- figures as `retape stats` prints them); this module computes the figures
-- and lends the rooms' functions under its own name.
for _, room in ipairs { require "retape.stats.capital", (require "retape.stats.text") } do
  for name, value in pairs(room) do M[name] = value end
end

-- A New York trading day "YYYY-MM-DD" of a time in ms.
local function ny_day(ms)
  return rtime.ny_date(math.tointeger(ms) or math.floor(ms))
end
M.ny_day = ny_day

-- Median of a sorted list.
local function median(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- days_of(buckets) -> the New York days of a list of bucket starts (ms), in order.
function M.days_of(buckets)
  local out, seen = {}, {}
  for _, b in ipairs(buckets or {}) do
    local d = ny_day(b)
    if not seen[d] then seen[d] = true; out[#out + 1] = d end
  end
  table.sort(out)
  return out
end

-- compute(trades [, opts]) -> the figures.  opts:
--   capital   the capital model (R.config.capital or nil: the defaults)
--   rules     the ruleset that made the trades: its trade_is_open says which
--             are open (metrics.of; nil: the default ruleset's)
--   days      the New York days the run covers ("YYYY-MM-DD"): days without
--             a trade count as 0 % in Sharpe, Sortino and the tables
--   buckets   bucket starts with receipts (ms), for exposure; their days
--             are used when `days` is not given
-- Money in dollars, rates as fractions (0.05 = 5 %), times in ms.
function M.compute(trades, opts)
  opts = opts or {}
  local m = metrics.of(opts.rules)
  local cap = M.capital(opts.capital)
  local fills, factor, entry_px = M.fills(trades, cap)
  local s = { capital = cap, start = cap.start, trades = #trades }

  -- per trade: net realized (its fills in history order), outcome, holding time
  local net_of, exit_of = {}, {}
  for _, f in ipairs(fills) do
    net_of[f.trade] = (net_of[f.trade] or 0) + f.pnl
    if f.kind == "EXIT" then exit_of[f.trade] = f.ts end
  end
  local wins, losses, flat, open = 0, 0, 0, 0
  local realized, unrealized, gross_win, gross_loss, fees = 0, 0, 0, 0, 0
  local win_sum, loss_sum = 0, 0
  local closed_list, holds = {}, {}
  local best, worst
  -- the trades by id: every sum adds in one order, whatever order they came in
  local by_id = table.move(trades, 1, #trades, 1, {})
  table.sort(by_id, function(a, b) return tostring(a.id) < tostring(b.id) end)
  for _, t in ipairs(by_id) do
    local r = net_of[t] or 0
    realized = realized + r
    if m.is_open(t) then
      open = open + 1
      local k = factor[t] or 1
      local px = t.currentPrice or t.entryPrice
      local ep = entry_px[t] or t.entryPrice
      -- metrics.unrealized's product, against the slipped entry, times k
      unrealized = unrealized + (px - ep) * (t.shares or 0) * (t.pointValue or 1) * (1 - (t.trimmedPct or 0))
        * metrics.direction_sign(t) * k
    else
      if r > M.EPSILON then wins = wins + 1; win_sum = win_sum + r; gross_win = gross_win + r
      elseif r < -M.EPSILON then losses = losses + 1; loss_sum = loss_sum + r; gross_loss = gross_loss + r
      else flat = flat + 1 end
      closed_list[#closed_list + 1] = { t = t, pnl = r, exit = exit_of[t] }
      if t.entry_ts and exit_of[t] then holds[#holds + 1] = exit_of[t] - t.entry_ts end
      if not best or r > best.pnl or (r == best.pnl and t.id < best.id) then best = { id = t.id, ticker = t.ticker, pnl = r } end
      if not worst or r < worst.pnl or (r == worst.pnl and t.id < worst.id) then worst = { id = t.id, ticker = t.ticker, pnl = r } end
    end
  end
  for _, f in ipairs(fills) do fees = fees + f.fee end
  local closed = wins + losses + flat
  s.wins, s.losses, s.flat, s.open, s.closed = wins, losses, flat, open, closed
  s.win_rate = closed > 0 and wins / closed or 0
  s.realized, s.unrealized = realized, unrealized
  s.net_pnl = realized + unrealized
  s.return_pct = s.net_pnl / cap.start
  s.fees = fees
  s.gross_win, s.gross_loss = gross_win, gross_loss
  s.profit_factor = gross_loss < 0 and gross_win / -gross_loss or nil
  s.avg_win = wins > 0 and win_sum / wins or nil
  s.avg_loss = losses > 0 and loss_sum / losses or nil
  s.expectancy = closed > 0 and (gross_win + gross_loss) / closed or nil
  s.payoff_ratio = (s.avg_win and s.avg_loss) and s.avg_win / -s.avg_loss or nil
  s.best_trade, s.worst_trade = best, worst
  table.sort(holds)
  local hsum = 0
  for _, h in ipairs(holds) do hsum = hsum + h end
  s.holding_mean_ms = #holds > 0 and hsum / #holds or nil
  s.holding_median_ms = median(holds)

  -- streaks: closed trades by exit time, then id; a flat trade ends a streak
  table.sort(closed_list, function(a, b)
    local x, y = a.exit or math.huge, b.exit or math.huge
    if x ~= y then return x < y end
    return a.t.id < b.t.id
  end)
  local lose_run, win_run, max_lose, max_win = 0, 0, 0, 0
  for _, c in ipairs(closed_list) do
    if c.pnl < -M.EPSILON then lose_run, win_run = lose_run + 1, 0
    elseif c.pnl > M.EPSILON then win_run, lose_run = win_run + 1, 0
    else lose_run, win_run = 0, 0 end
    if lose_run > max_lose then max_lose = lose_run end
    if win_run > max_win then max_win = win_run end
  end
  s.max_losing_streak, s.max_winning_streak = max_lose, max_win

  -- the equity curve: one point per instant (events netted), P&L from 0
  local curve = {}
  local pnl = 0
  if fills[1] then curve[1] = { fills[1].ts, 0 } end
  local i = 1
  while i <= #fills do
    local ts, moved = fills[i].ts, false
    while i <= #fills and fills[i].ts == ts do
      local f = fills[i]
      pnl = pnl + f.pnl
      if f.kind ~= "ENTRY" or f.pnl ~= 0 then moved = true end
      i = i + 1
    end
    if moved then
      if #curve > 1 and curve[#curve][1] == ts then curve[#curve][2] = pnl else curve[#curve + 1] = { ts, pnl } end
    end
  end
  s.equity = curve

  -- drawdown off that curve: $ from the peak, % of the peak's equity, and
  -- the longest time from a peak to the first point back at it (or to the
  -- curve's end when it never recovered)
  local peak, peak_ts, underwater = 0, curve[1] and curve[1][1], false
  local max_dd, max_dd_pct, max_dur, dd_at = 0, 0, 0, nil
  local under = {}
  for n, p in ipairs(curve) do
    if p[2] >= peak then
      if underwater and p[1] - peak_ts > max_dur then max_dur = p[1] - peak_ts end
      peak, peak_ts, underwater = p[2], p[1], false
    else
      underwater = true
    end
    local dd = peak - p[2]
    local pct = dd / (cap.start + peak)
    if dd > max_dd then max_dd, dd_at = dd, p[1] end
    if pct > max_dd_pct then max_dd_pct = pct end
    under[n] = { p[1], dd == 0 and 0 or -dd, dd == 0 and 0 or -pct }
  end
  local last = curve[#curve]
  if underwater and last[1] - peak_ts > max_dur then max_dur = last[1] - peak_ts end
  s.max_drawdown, s.max_drawdown_pct, s.max_drawdown_at = max_dd, max_dd_pct, dd_at
  s.max_drawdown_duration_ms = max_dur
  s.underwater = under

  -- daily and monthly returns (realized, net), on the equity at the start
  local days = opts.days or M.days_of(opts.buckets)
  local per_day, day_list, seen = {}, {}, {}
  for _, d in ipairs(days) do if not seen[d] then seen[d] = true; day_list[#day_list + 1] = d end end
  for _, f in ipairs(fills) do
    local d = ny_day(f.ts)
    per_day[d] = (per_day[d] or 0) + f.pnl
    if not seen[d] then seen[d] = true; day_list[#day_list + 1] = d end
  end
  table.sort(day_list)
  local daily, monthly = {}, {}
  local eq = cap.start
  local month
  local rets = {}
  for n, d in ipairs(day_list) do
    local p = per_day[d] or 0
    local r = p / eq
    daily[n] = { day = d, pnl = p, ret = r, equity = eq + p }
    rets[n] = r
    local m = d:sub(1, 7)
    if not month or month.month ~= m then
      month = { month = m, pnl = 0, start = eq, days = 0 }
      monthly[#monthly + 1] = month
    end
    month.pnl, month.days = month.pnl + p, month.days + 1
    eq = eq + p
  end
  for _, m in ipairs(monthly) do m.ret = m.pnl / m.start; m.start = nil end
  s.daily, s.monthly = daily, monthly
  local best_day, worst_day
  for _, d in ipairs(daily) do
    if not best_day or d.pnl > best_day.pnl then best_day = d end
    if not worst_day or d.pnl < worst_day.pnl then worst_day = d end
  end
  s.best_day = best_day and { day = best_day.day, pnl = best_day.pnl, ret = best_day.ret } or nil
  s.worst_day = worst_day and { day = worst_day.day, pnl = worst_day.pnl, ret = worst_day.ret } or nil

  -- Sharpe and Sortino of the daily returns (risk-free 0), annualized by
  -- sqrt(252); the annual return compounds the period's over 252 days a
  -- year; Calmar = annual return / max drawdown %
  local nd = #rets
  local mean, sd, down = nil, nil, nil
  if nd > 0 then
    local sum = 0
    for _, r in ipairs(rets) do sum = sum + r end
    mean = sum / nd
    local sq, dsq = 0, 0
    for _, r in ipairs(rets) do
      sq = sq + (r - mean) ^ 2
      if r < 0 then dsq = dsq + r * r end
    end
    sd = nd > 1 and math.sqrt(sq / (nd - 1)) or nil
    down = math.sqrt(dsq / nd)
  end
  local ann = math.sqrt(M.TRADING_DAYS)
  s.days = nd
  s.daily_mean, s.daily_std = mean, sd
  s.sharpe = (sd and sd > 0) and mean / sd * ann or nil
  s.sortino = (down and down > 0) and mean / down * ann or nil
  local growth = (cap.start + realized) / cap.start
  s.annual_return = (nd > 0 and growth > 0) and growth ^ (M.TRADING_DAYS / nd) - 1 or nil
  s.calmar = (s.annual_return and max_dd_pct > 0) and s.annual_return / max_dd_pct or nil

  if opts.buckets then s.exposure = M.exposure(trades, opts.buckets) end
  s.first_ts, s.last_ts = fills[1] and fills[1].ts or nil, last and last[1] or nil
  return s
end

-- exposure(trades, buckets) -> share (0..1) of the buckets (sorted ms
-- starts, the buckets with receipts) during which at least one trade was open (a trade
-- counts from its entry bucket up to, not including, its exit bucket; a
-- trade opened and closed in one bucket counts that bucket).
function M.exposure(trades, buckets)
  local nb = #buckets
  if nb == 0 then return 0 end
  local function first_at_or_after(ms) -- index of the first bucket >= ms (nb + 1 if none)
    local lo, hi = 1, nb + 1
    while lo < hi do
      local mid = (lo + hi) // 2
      if buckets[mid] >= ms then hi = mid else lo = mid + 1 end
    end
    return lo
  end
  local delta = {}
  for _, t in ipairs(trades) do
    if t.entry_ts then
      local si = first_at_or_after(t.entry_ts - t.entry_ts % rtime.BUCKET_MS)
      local x = metrics.exit_ts(t)
      local xi = x and first_at_or_after(x - x % rtime.BUCKET_MS) or nb + 1
      if xi <= si then xi = si + 1 end
      delta[si] = (delta[si] or 0) + 1
      delta[xi] = (delta[xi] or 0) - 1
    end
  end
  local open, busy = 0, 0
  for i = 1, nb do
    open = open + (delta[i] or 0)
    if open > 0 then busy = busy + 1 end
  end
  return busy / nb
end

-- The figures of compute() a caller prints (stats --json, in this order).
M.FIELDS = { "trades", "closed", "open", "wins", "losses", "flat", "win_rate", "realized", "unrealized", "net_pnl",
  "return_pct", "annual_return", "fees", "max_drawdown", "max_drawdown_pct", "max_drawdown_at",
  "max_drawdown_duration_ms", "sharpe", "sortino", "calmar", "profit_factor", "avg_win", "avg_loss", "expectancy",
  "payoff_ratio", "holding_mean_ms", "holding_median_ms", "best_trade", "worst_trade", "best_day", "worst_day",
  "max_losing_streak", "max_winning_streak", "exposure", "days", "daily", "monthly", "equity" }
M.DAY_MS = DAY_MS
return M
