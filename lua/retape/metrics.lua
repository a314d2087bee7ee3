-- retape.metrics — the one set of definitions every view shares (trades,
-- By Day, By P&L, History, diff, the HTML report):
--
--   time        what a person reads: New York time with its zone,
--               "2026-02-02 10:35 ET"; JSON and CSV: ISO-8601 with the
--               offset, "2026-02-02T10:35:00-05:00".
--   open        what the ruleset that made the trades says (R.trade_is_open:
--               the ruleset owns its status words); metrics.of(R) gives
--               these definitions for R, the module's own are the default
--               ruleset's.
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

-- open_test(R) -> function(trade) -> boolean: R.trade_is_open, run under the
-- sandbox limits when R is a rule file (as a replay runs it).
local function open_test(R)
  local fn = R.trade_is_open
  if type(fn) ~= "function" then error(string.format("ruleset '%s' does not say when a trade is open (R.trade_is_open)",
    tostring(R.name)), 0) end
  local sandbox = require "retape.sandbox"
  if sandbox.is_trusted(R) then return function(t) return fn(t) and true or false end end
  return function(t) return sandbox.guard(sandbox.DEFAULT_LIMITS, fn, t) and true or false end
end

-- The default ruleset's test, loaded on first use (no ruleset given).
local default_test
function M.is_open(t)
  if not default_test then
    local rules = require "retape.rules"
    default_test = open_test(rules.load(rules.default))
  end
  return default_test(t)
end

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
  return M.unrealized_if(M.is_open(t), t, px)
end

-- The same for a trade already known to be open (or not).
function M.unrealized_if(open, t, px)
  if not open then return 0 end
  px = px or t.currentPrice or t.entryPrice
  return (px - t.entryPrice) * (t.shares or 0) * (t.pointValue or 1) * (1 - (t.trimmedPct or 0)) * dir_of(t)
end

function M.outcome(t) return M.outcome_if(M.is_open(t), t) end

-- The same for a trade already known to be open (or not).
function M.outcome_if(open, t)
  if open then return "open" end
  local r = M.realized(t)
  if r > M.EPSILON then return "win" elseif r < -M.EPSILON then return "loss" end
  return "flat"
end

-- Trimmed fraction as the percentage a person reads ("25%").
function M.trimmed(t) return string.format("%d%%", math.floor((t.trimmedPct or 0) * 100 + 0.5)) end

-- sort_events(list, id_key): trade events in the one order every figure
-- and view reads them in: time (ts), then the trade's id (field id_key),
-- then the event's place in its trade's history (seq).
function M.sort_events(list, id_key)
  table.sort(list, function(a, b)
    if a.ts ~= b.ts then return a.ts < b.ts end
    if a[id_key] ~= b[id_key] then return a[id_key] < b[id_key] end
    return a.seq < b.seq
  end)
  return list
end

-- Time of a trade's EXIT event (ms) or nil.
function M.exit_ts(t)
  for _, e in ipairs(t.history or {}) do
    if e.type == "EXIT" then return rtime.parse_iso(e.timestamp) end
  end
  return nil
end

-- of(R) -> these definitions with R's "open" (R: the ruleset that made the
-- trades, e.g. manifest.store_rules(store)); nil R: this module (the
-- default ruleset's).  Cached per ruleset.
local of_cache = setmetatable({}, { __mode = "k" })
function M.of(R)
  if R == nil then return M end
  local d = of_cache[R]
  if not d then
    local is_open = open_test(R)
    d = setmetatable({
      is_open = is_open,
      unrealized = function(t, px) return M.unrealized_if(is_open(t), t, px) end,
      outcome = function(t) return M.outcome_if(is_open(t), t) end,
    }, { __index = M })
    of_cache[R] = d
  end
  return d
end

return M
