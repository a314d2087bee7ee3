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
--
-- These are the definitions of one trade.  The figures of a set of trades
-- (totals, equity curve, drawdown, Sharpe, returns...) are retape.stats'.
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
  for _, e in ipairs(t.history or {}) do
    if e.type == "EXIT" then return rtime.parse_iso(e.timestamp) end
  end
  return nil
end

return M
