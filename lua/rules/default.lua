-- rules/default.lua — the default ruleset: the parity ruleset
-- (worker-2026-02-02) with the original's documented faults fixed.  It
-- extends that ruleset and replaces only the pieces that change, so the two
-- never drift apart; every fix can be switched off in `config.fixes`.
--
--   fault in the original (spec)                         fix here
--   entry stamps stick forever; re-entries reuse the     stamps cleared when the position closes;
--     first entry price (§3.7, lesson 2026-02-10)          a new enter_now cycle stamps its own price
--   archive (SL breach / TP reach) leaves the trade      archive closes it, at the crossed level
--     OPEN (§0.6, §8)                                      (SL first when both: pessimistic)
--   missing trigger_ts synthesised from the row time,    no synthesis; the lifecycle gate compares
--     so every management row is forced to enter_now       triggers only when the receipt has one
--     (§3.7, §8)
--   no cooldowns in replay (§4.2, §6.3 #17)              enter / trim / exit cooldowns on receipt time
--   repeated re-entries in one trigger cycle             one entry per trigger cycle and side
--     (PWR: 12 SHORTs, §6.3 #16)
--   a $0 close is a WIN (§0.9, §8)                       FLAT
--   view day keys are UTC dates (§4.5)                   New York trading days
--   entry checks only that sl/tp are positive (§4.2),    an entry needs sl below and tp above the
--     so a trade can open beyond its own TP or SL          price (mirrored for SHORT)  [found here]
local rules = require "retape.rules"
local R = rules.load("worker-2026-02-02")
local parity = rules.load("worker-2026-02-02") -- pristine copies of the functions replaced below

R.name = "default"
R.description = "the original's rules with its documented faults fixed (see rules/default.lua)"
R.extends = "worker-2026-02-02"

local MIN = 60000
R.config.fixes = {
  clear_entry_on_close = true,
  own_entry_per_cycle = true,
  archive_closes_trade = true,
  archive_fill = "level",          -- "level": at the SL/TP crossed; "price": at the receipt's price
  both_crossed = "pessimistic",    -- SL and TP both crossed in one receipt: "pessimistic" (SL) or "optimistic" (TP)
  synthesize_trigger_ts = false,
  cooldown = { enter_ms = 10 * MIN, trim_ms = 5 * MIN, exit_ms = 5 * MIN },
  one_entry_per_trigger = true,
  flat_on_zero = true,
  entry_levels_on_side = true,
}
R.views = { day_key = "ny" }
-- settings that take one of a few words: --set checks them like keys
R.enums["fixes.archive_fill"] = { "level", "price" }
R.enums["fixes.both_crossed"] = { "pessimistic", "optimistic" }

-- The executor's memory (cooldowns, the trigger of the last entry) is state too.
R.state.fields.exec = "table"
-- payload fields: the parity ruleset's (R.fields); the fixes below read no others

local H = R.helpers
local pos = H.pos
-- The fixes are read from R.config.fixes at each call (settings and sweep
-- variants change them before a run).

-- A receipt without trigger_ts keeps none (the gate below copes).
function R.missing_trigger_ts(p, row)
  if R.config.fixes.synthesize_trigger_ts then return parity.missing_trigger_ts(p, row) end
  return nil
end

function R.carry(p, ex, open_trade)
  parity.carry(p, ex, open_trade)
  local exec, ex_ts = ex.exec, ex.ts
  if exec and ex_ts and p.ts >= ex_ts then
    local e = {}
    for k, v in pairs(exec) do e[k] = v end
    p.exec = e
  end
end

-- Without a trigger on the receipt, the cycle is matched on its side alone.
function R.lifecycle_gate(d, ex, final)
  if pos(d.trigger_ts) or R.config.fixes.synthesize_trigger_ts then return parity.lifecycle_gate(d, ex, final) end
  if not (pos(ex.kanban_cycle_enter_now_ts) and ex.kanban_cycle_side == R.side(d)) then
    return "enter_now", "forced_enter_now_gate"
  end
  return final, nil
end

-- A new enter_now cycle (coming from outside the management lanes) stamps
-- its own price and time; inside a cycle the stamp stays.
function R.entry_stamps(d, ex, final, prev)
  if not R.config.fixes.own_entry_per_cycle then return parity.entry_stamps(d, ex, final, prev) end
  local new_cycle = final == "enter_now" and prev ~= "enter_now" and not R.management[prev]
  if new_cycle and pos(d.price) then
    d.entry_price, d.entry_ts = d.price, d.ts
  elseif final ~= nil and H.truthy(ex.entry_price) then
    d.entry_price, d.entry_ts = ex.entry_price, ex.entry_ts
  elseif final == "enter_now" and pos(d.price) then
    d.entry_price, d.entry_ts = d.price, d.ts
  end
end

-- Refuses entries whose levels are already crossed (no trade opens beyond
-- its own target or stop).
function R.open_trade(d, direction, px, as_of, book)
  if R.config.fixes.entry_levels_on_side then
    local sl, tp = pos(d.sl), pos(d.tp) or R.tp_max(d)
    if sl and tp then
      local ok = direction == "LONG" and sl < px and px < tp or direction == "SHORT" and tp < px and px < sl
      if not ok then return nil end
    end
  end
  return parity.open_trade(d, direction, px, as_of, book)
end

function R.close_trade(t, px, why, as_of, book)
  parity.close_trade(t, px, why, as_of, book)
  if R.config.fixes.flat_on_zero and t.realizedPnl == 0 then t.status = "FLAT" end
end

-- The price an archived move closes at.
function R.archive_fill(t, d, px)
  local fx = R.config.fixes
  if fx.archive_fill == "price" then return px end
  local reasons = {}
  for _, r in ipairs(d.move_status.reasons) do reasons[r] = true end
  local sl, tp = pos(d.sl), R.tp_max(d) or pos(d.tp)
  if reasons.sl_breached and reasons.tp_reached then
    return fx.both_crossed == "optimistic" and tp or sl
  end
  if reasons.sl_breached and sl then return sl end
  if reasons.tp_reached and tp then return tp end
  return px
end

local function cooled(e, key, ms, as_of)
  return e[key] == nil or as_of - e[key] >= ms
end

local function forget_entry(d)
  if not R.config.fixes.clear_entry_on_close then return end
  d.entry_ts, d.entry_price = nil, nil
  for _, k in ipairs(R.CYCLE_FIELDS) do d[k] = nil end
end

-- The trigger cycle an entry belongs to.
local function trigger_of(d) return pos(d.trigger_ts) or d.kanban_cycle_enter_now_ts end

local LAST = { exit = "last_exit", trim = "last_trim", enter = "last_enter" }
local COOLDOWN = { exit = "exit_ms", trim = "trim_ms", enter = "enter_ms" } -- (names built once, not per call)

-- The executor of the parity ruleset plus: archive closes, cooldowns, one
-- entry per trigger cycle, stamps cleared when the position closes.
R.simulate = R.simulator {
  begin = function(d)
    if type(d.exec) ~= "table" then d.exec = {} end
    return d.exec
  end,
  archive = function(e, d, open, px, reason, as_of, book)
    local status = d.move_status and d.move_status.status
    if not (R.config.fixes.archive_closes_trade and (status == "INVALIDATED" or status == "COMPLETED")) then
      return false
    end
    local why = reason
    for _, r in ipairs { "sl_breached", "tp_reached", "large_adverse_move" } do
      for _, x in ipairs(d.move_status.reasons) do if x == r and why == reason then why = r end end
    end
    R.close_trade(open, R.archive_fill(open, d, px), why, as_of, book)
    e.last_exit = as_of
    forget_entry(d)
    return true
  end,
  may = function(e, action, as_of)
    return cooled(e, LAST[action], R.config.fixes.cooldown[COOLDOWN[action]], as_of)
  end,
  may_open = function(e, d, direction)
    return not (R.config.fixes.one_entry_per_trigger and e.last_enter_trigger == trigger_of(d)
                and e.last_enter_side == direction)
  end,
  did = function(e, action, d, as_of, direction)
    if action == "exit" then
      e.last_exit = as_of
      forget_entry(d)
    elseif action == "flip" then
      e.last_exit = as_of
    elseif action == "trim" then
      e.last_trim = as_of
    else
      e.last_enter, e.last_enter_trigger, e.last_enter_side = as_of, trigger_of(d), direction
    end
  end,
}

return R
