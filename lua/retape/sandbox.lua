-- retape.sandbox — where rule code runs.
--
-- Rulesets are loaded into their own environment built from an allow-list:
-- pure functions of the standard library (string, table, math without
-- random, utf8), no io, os, debug, load/loadfile/dofile, coroutines or
-- binary chunks, and `require` only for the rule API (retape.rules,
-- retape.json, retape.time).  Globals are strict: reading or writing a
-- name that is not declared is an error naming it.
--
-- Each call of a rule for a receipt runs under guard(): an instruction
-- budget and a cap on the memory the call may add, enforced by a count
-- hook.  A limit error cannot be swallowed by the rule: the pcall/xpcall
-- the rule sees re-raise it.
local M = {}

M.DEFAULT_LIMITS = {
  instructions = 5000000,   -- Lua VM instructions per receipt (step + simulate)
  memory_mb = 64,           -- heap the rule may add during one receipt
}

-- Limit errors are tables of this type (so they survive the rule's pcall).
local Limit = { __tostring = function(e) return e.message end }
function M.is_limit_error(e) return getmetatable(e) == Limit end
local function limit_error(message) return setmetatable({ message = message }, Limit) end

local function rethrowing(f)
  return function(fn, ...)
    local results = table.pack(f(fn, ...))
    if not results[1] and M.is_limit_error(results[2]) then error(results[2], 0) end
    return table.unpack(results, 1, results.n)
  end
end

local SAFE_STRING = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep",
  "reverse", "sub", "upper", "pack", "packsize", "unpack" }
local SAFE_MATH = { "abs", "ceil", "exp", "floor", "fmod", "huge", "log", "max", "maxinteger", "min", "mininteger",
  "modf", "pi", "sqrt", "tointeger", "type", "ult", "sin", "cos", "tan", "asin", "acos", "atan" }

local function pick(src, names)
  local t = {}
  for _, n in ipairs(names) do t[n] = src[n] end
  return t
end

-- log(...) in rule code: its arguments (tostring'd, space-separated) and the
-- caller's file:line go to the sink set with set_log (`replay --trace`
-- writes them into the trace), and nowhere when none is set.
local log_sink
function M.set_log(fn) log_sink = fn end
local function rule_log(...)
  if not log_sink then return end
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  local info = debug.getinfo(2, "Sl")
  log_sink(table.concat(parts, " ", 1, parts.n), info and (info.short_src .. ":" .. info.currentline) or "?")
end

-- A fresh environment for one rule chunk.  `modules` maps the names rule
-- code may require to the values it gets.
function M.env(modules)
  local declared = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, select = select,
    tonumber = tonumber, tostring = tostring, type = type, rawequal = rawequal, rawget = rawget,
    rawset = rawset, rawlen = rawlen, setmetatable = setmetatable, getmetatable = getmetatable,
    pcall = rethrowing(pcall), _VERSION = _VERSION, log = rule_log,
    xpcall = function(fn, handler, ...)
      -- the rule's handler never sees (or replaces) a limit error
      local function guarded(e)
        if M.is_limit_error(e) then return e end
        return handler(e)
      end
      return rethrowing(function(f, ...) return xpcall(f, guarded, ...) end)(fn, ...)
    end,
    string = pick(string, SAFE_STRING), table = pick(table, { "concat", "insert", "move", "pack", "remove", "sort", "unpack" }),
    math = pick(math, SAFE_MATH), utf8 = pick(utf8, { "char", "charpattern", "codepoint", "codes", "len", "offset" }),
  }
  declared.require = function(name)
    local m = modules and modules[name]
    if m == nil then
      error(string.format("require '%s' is not allowed in rule code (allowed: %s)", tostring(name),
        table.concat((function()
          local names = {}
          for k in pairs(modules or {}) do names[#names + 1] = k end
          table.sort(names)
          return names
        end)(), ", ")), 2)
    end
    return m
  end
  local env = {}
  for k, v in pairs(declared) do env[k] = v end
  env._G = env
  return setmetatable(env, {
    __index = function(_, k) error(string.format("undeclared global '%s'", tostring(k)), 2) end,
    __newindex = function(_, k) error(string.format("assignment to undeclared global '%s' (use a local)", tostring(k)), 2) end,
  })
end

-- guard(limits, fn, ...) -> fn's results.  Runs fn under the instruction
-- budget and memory cap; raises a limit error naming the limit when one is
-- exceeded.  Nests: an inner guard restores the outer hook.
function M.guard(limits, fn, ...)
  local budget = limits.instructions
  local cap_kb = limits.memory_mb * 1024
  local period = math.min(budget, 10000)
  local used = 0
  local base_kb = collectgarbage("count")
  local function hook()
    used = used + period
    if used > budget then
      error(limit_error(string.format("rule exceeded its instruction budget (%d per receipt)", budget)), 0)
    end
    if collectgarbage("count") - base_kb > cap_kb then
      collectgarbage()
      if collectgarbage("count") - base_kb > cap_kb then
        error(limit_error(string.format("rule exceeded its memory cap (%d MB per receipt)", limits.memory_mb)), 0)
      end
    end
  end
  local old_hook, old_mask, old_count = debug.gethook()
  debug.sethook(hook, "", period)
  local results = table.pack(xpcall(fn, M.traceback, ...))
  debug.sethook(old_hook, old_mask, old_count)
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

-- Message handler: the error with the rule's stack traceback appended.
function M.traceback(e)
  if M.is_limit_error(e) then
    if not e.traceback then e.traceback = debug.traceback("", 2) end
    return e
  end
  return debug.traceback(tostring(e), 2)
end

return M
