-- retape.metrics — the one set of definitions every view shares (trades,
-- By Day, By P&L, History, diff, the HTML report):
--
--   time        what a person reads: New York time with its zone,
--               "2026-02-02 10:35 ET"; JSON and CSV: ISO-8601 with the
--               offset, "2026-02-02T10:35:00-05:00".
--   open        status OPEN or TP_HIT_TRIM (trimmed, still running).
--   realized    P&L of the trade's TRIM and EXIT events:
--               (price - entry) * shares * point value * (+1 long, -1 short);
--               the trade record's realizedPnl holds the same sum.
--   unrealized  an open trade's remaining shares marked at a price (its
--               currentPrice unless given): (px - entry) * shares * point
--               value * (1 - trimmed) * direction; 0 for a closed trade.
--   outcome     "open" while open; once closed "win" if realized > 0,
--               "loss" if < 0, "flat" if 0 (within 1e-9): the sign of the
--               money, whatever status word the ruleset wrote.
--   trimmed     the fraction of the position already sold, shown as a
--               percentage ("25%"); the price of a trim is "trim price".
local rtime = require "retape.time"

local M = {}

M.EPSILON = 1e-9

-- "2026-02-02 10:35 ET" (seconds when `secs`); "" for nil.
function M.time(ms, secs)
  if ms == nil then return "" end
  return rtime.format_ny(math.tointeger(ms) or math.floor(ms), secs)
end

-- "2026-02-02T10:35:00-05:00": ISO-8601 in New York time with its offset.
function M.iso(ms)
  if ms == nil then return nil end
  local c = rtime.to_ny(math.tointeger(ms) or math.floor(ms))
  local off = c.offset_min
  local sign = off < 0 and "-" or "+"
  off = math.abs(off)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d", c.year, c.month, c.day, c.hour, c.min, c.sec,
    sign, off // 60, off % 60)
end

local function dir_of(t) return t.direction == "SHORT" and -1 or 1 end
M.direction_sign = dir_of

function M.is_open(t) return t.status == "OPEN" or t.status == "TP_HIT_TRIM" end

-- Realized P&L of one history event of trade t (0 unless TRIM or EXIT).
function M.event_realized(t, e)
  if (e.type ~= "TRIM" and e.type ~= "EXIT") or not e.price or not e.shares then return 0 end
  return (e.price - t.entryPrice) * e.shares * (t.pointValue or 1) * dir_of(t)
end

-- Realized P&L of a trade: the sum over its TRIM and EXIT events.
function M.realized(t)
  local s = 0
  for _, e in ipairs(t.history or {}) do s = s + M.event_realized(t, e) end
  return s
end

-- Unrealized P&L of a trade marked at px (default: its currentPrice).
function M.unrealized(t, px)
  if not M.is_open(t) then return 0 end
  px = px or t.currentPrice or t.entryPrice
  return (px - t.entryPrice) * (t.shares or 0) * (t.pointValue or 1) * (1 - (t.trimmedPct or 0)) * dir_of(t)
end

function M.outcome(t)
  if M.is_open(t) then return "open" end
  local r = M.realized(t)
  if r > M.EPSILON then return "win" elseif r < -M.EPSILON then return "loss" end
  return "flat"
end

-- Trimmed fraction as the percentage a person reads ("25%").
function M.trimmed(t) return string.format("%d%%", math.floor((t.trimmedPct or 0) * 100 + 0.5)) end

-- Time of a trade's EXIT event (ms) or nil.
function M.exit_ts(t)
  local views_iso = require("retape.views").iso_ms
  for _, e in ipairs(t.history or {}) do
    if e.type == "EXIT" then return views_iso(e.timestamp) end
  end
  return nil
end

-- totals(trades) -> { trades, wins, losses, flat, open, closed, win_rate,
-- realized, unrealized, pnl, gross_win, gross_loss, profit_factor }.
-- win_rate is wins / closed trades (0 when none closed); profit_factor is
-- gross win / |gross loss| of closed trades (nil when there is no loss).
function M.totals(trades)
  local t = { trades = #trades, wins = 0, losses = 0, flat = 0, open = 0, realized = 0, unrealized = 0,
              gross_win = 0, gross_loss = 0 }
  for _, x in ipairs(trades) do
    local o = M.outcome(x)
    local r = M.realized(x)
    if o == "win" then t.wins = t.wins + 1 elseif o == "loss" then t.losses = t.losses + 1
    elseif o == "flat" then t.flat = t.flat + 1 else t.open = t.open + 1 end
    if o ~= "open" then
      if r > 0 then t.gross_win = t.gross_win + r else t.gross_loss = t.gross_loss + r end
    end
    t.realized = t.realized + r
    t.unrealized = t.unrealized + M.unrealized(x)
  end
  t.closed = t.wins + t.losses + t.flat
  t.win_rate = t.closed > 0 and t.wins / t.closed or 0
  t.pnl = t.realized + t.unrealized
  t.profit_factor = t.gross_loss < 0 and t.gross_win / -t.gross_loss or nil
  return t
end

-- Equity curve of realized P&L: { {ts, equity}, ... } one point per TRIM or
-- EXIT event in time order (starting at 0 before the first entry), and the
-- largest peak-to-trough fall of that curve (a positive number, 0 if none).
function M.equity(trades)
  local ev = {}
  local views_iso = require("retape.views").iso_ms
  local first
  for _, t in ipairs(trades) do
    for _, e in ipairs(t.history or {}) do
      local ts = views_iso(e.timestamp)
      if ts and (first == nil or ts < first) then first = ts end
      local r = M.event_realized(t, e)
      if ts and (e.type == "TRIM" or e.type == "EXIT") then ev[#ev + 1] = { ts, r, t.id } end
    end
  end
  table.sort(ev, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[3] < b[3] end)
  local curve, eq, peak, dd = {}, 0, 0, 0
  if first then curve[1] = { first, 0 } end
  for _, e in ipairs(ev) do
    eq = eq + e[2]
    if curve[#curve] and curve[#curve][1] == e[1] then curve[#curve][2] = eq else curve[#curve + 1] = { e[1], eq } end
    if eq > peak then peak = eq end
    if peak - eq > dd then dd = peak - eq end
  end
  return curve, dd
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
      local si = first_at_or_after(t.entry_ts - t.entry_ts % 300000)
      local x = M.exit_ts(t)
      local xi = x and first_at_or_after(x - x % 300000) or nb + 1
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

return M
