-- retape.sandbox — where rule code runs.
--
-- Rulesets are loaded into their own environment built from an allow-list:
-- pure functions of the standard library (string, table, math without
-- random, utf8), no io, os, debug, load/loadfile/dofile, coroutines or
-- binary chunks, and `require` only for the rule API (retape.rules,
-- retape.json, retape.time).  Globals are strict: reading or writing a
-- name that is not declared is an error naming it.  In a rule file the
-- globals, libraries and modules are read-only views; the string metatable
-- is locked; tostring and string.format never show an address.
--
-- guard() runs rule code under limits enforced in C (core/lua_sandbox.c):
-- an instruction budget counted by a C hook, which also charges the work of
-- the costly library functions (string.rep/find/match/gmatch/gsub/format/
-- byte, table.concat/move/insert/remove/sort/unpack, utf8.*) and refuses a
-- pattern whose worst-case backtracking exceeds it; a memory cap enforced
-- by the state's allocator, which also refuses strings over 1 MB and
-- charges every long string made to the budget; and a CPU-time safety net
-- for work no budget can count.  A limit error cannot be swallowed by the
-- rule: its pcall/xpcall re-raise it, and the hook raises again.
-- Finalizers are refused (setmetatable with __gc or __close).  State a rule
-- file keeps outside the declared per-ticker state is refused (below).
local core = require "retape.sandboxcore"

local M = {}

M.DEFAULT_LIMITS = {
  instructions = 5000000,   -- Lua VM instructions per receipt (step + simulate), and the work of the
                            -- library functions and of every string made, charged in instructions
  memory_mb = 64,           -- heap the rule may add during one receipt (no string longer than 1 MB)
  seconds = 10,             -- CPU time per call: a safety net only, for work the budget cannot count
}

-- Limit errors are tables with this metatable (raised by the C side too).
local Limit = core.limit_metatable()
Limit.__tostring = function(e) return e.message end
function M.is_limit_error(e) return getmetatable(e) == Limit end

-- check_limits(limits) -> limits, or nil and a message naming the bad one
-- (non-positive or non-integer values never turn a limit off).
function M.check_limits(limits)
  if limits == nil then return limits end
  if type(limits) ~= "table" then return nil, "limits must be a table {instructions=N, memory_mb=N}" end
  local i, m = limits.instructions, limits.memory_mb
  if i ~= nil and (math.type(i) ~= "integer" or i <= 0) then
    return nil, string.format("the instruction budget must be a positive integer, got %s", tostring(i))
  end
  if m ~= nil and (type(m) ~= "number" or not (m > 0) or m > 1e6) then
    return nil, string.format("the memory cap must be a positive number of MB, got %s", tostring(m))
  end
  local sec = limits.seconds
  if sec ~= nil and (type(sec) ~= "number" or not (sec > 0) or sec > 1e6) then
    return nil, string.format("the CPU time limit must be a positive number of seconds, got %s", tostring(sec))
  end
  return limits
end

-- The rooms: views (read-only views of tables), env (the environment
-- rule code runs in) and guard (running it under the limits, watching the
-- state it keeps); this module defines the limits and lends the rooms.
local views = require "retape.sandbox.views"
M.freeze, M.is_frozen, M.state_view, M.raw = views.freeze, views.is_frozen, views.state_view, views.raw
require "retape.sandbox.env" (M)
require "retape.sandbox.guard" (M)

-- Message handler: the error with the rule's stack traceback appended.
function M.traceback(e)
  if M.is_limit_error(e) then
    if not e.traceback then e.traceback = debug.traceback("", 2) end
    return e
  end
  local text
  if type(e) == "string" or type(e) == "number" then text = tostring(e)
  else
    local mt = getmetatable(e)
    text = type(mt) == "table" and rawget(mt, "__tostring") and tostring(e)
      or string.format("(error object is a %s value)", type(e)) -- never an address that differs run to run
  end
  return debug.traceback(text, 2)
end
core.set_handler(M.traceback)

-- describe(e) -> what a rule's error says: a limit error's limit (where it
-- hit, unless its traceback shows it) and traceback, or the error's text.
function M.describe(e)
  if M.is_limit_error(e) then
    return (not e.traceback and e.where and e.where .. ": " or "") .. e.message .. (e.traceback or "")
  end
  return tostring(e)
end

-- call(R, what, fn, ...) -> fn's results.  Rule code the engine calls
-- outside a replay's step (R.badge): under guard() with the default limits
-- when R is a rule file (as a replay runs it), with the rule's traceback
-- either way.  A failure raises "what: " and the rule's error.
function M.call(R, what, fn, ...)
  local r
  if not M.is_trusted(R) then r = table.pack(pcall(M.guard, M.DEFAULT_LIMITS, fn, ...))
  else r = table.pack(xpcall(fn, M.traceback, ...)) end
  if not r[1] then error(what .. ": " .. M.describe(r[2]), 0) end
  return table.unpack(r, 2, r.n)
end

-- check_data(value, name, opts): the value is plain data the engine may
-- walk; plain_copy(value, name, max_values, accept): a plain copy of a
-- value rule code hands back (retape.sandbox.data).
local data = require "retape.sandbox.data"
M.check_data, M.plain_copy = data.check, data.copy

-- mark_untrusted(R): R was loaded from a rule file: its code runs under the
-- limits whatever R.trusted says later (rule code can write R before the
-- first guarded call makes it read-only).
-- is_trusted(R): whether R's code may run without the limits: only a
-- ruleset that says R.trusted = true (the loader sets it for a bundled
-- one) and was not loaded from a rule file.  The one test of trust: a
-- replay, R.badge and trade_is_open outside a replay all ask it.
local untrusted = setmetatable({}, { __mode = "k" })
function M.mark_untrusted(R) untrusted[R] = true end
function M.is_trusted(R) return rawget(R, "trusted") == true and not untrusted[R] end

-- engine_message(e) -> the text of an error the engine's encoder, packer
-- or store raised over a rule's value, without the engine's file:line
-- luaL_error put before it (that line is not what is wrong).
function M.engine_message(e)
  return (tostring(e):gsub("^lua/retape/[%w_/]+%.lua:%d+: ", ""))
end

-- stats() -> {active, used, budget, heap_bytes, accounting} of the C side.
M.stats = core.stats

return M

