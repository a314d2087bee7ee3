-- retape.sandbox — where rule code runs.
--
-- Rulesets are loaded into their own environment built from an allow-list:
-- pure functions of the standard library (string, table, math without
-- random, utf8), no io, os, debug, load/loadfile/dofile, coroutines or
-- binary chunks, and `require` only for the rule API (retape.rules,
-- retape.json, retape.time).  Globals are strict: reading or writing a
-- name that is not declared is an error naming it.  Every library table a
-- rule sees is its own copy; the string metatable is locked.
--
-- guard() runs rule code under limits enforced in C (core/lua_sandbox.c):
-- an instruction budget counted by a C hook, which also charges the work of
-- the costly library functions (string.rep/find/match/gmatch/gsub/format,
-- table.concat/move) and refuses a pattern whose worst-case backtracking
-- exceeds it; and a memory cap enforced by the state's allocator, so one
-- big allocation cannot get past it.  A limit error cannot be swallowed by
-- the rule: its pcall/xpcall re-raise it, and the hook raises again.
-- Finalizers are refused (setmetatable with __gc or __close).
local core = require "retape.sandboxcore"

local M = {}

M.DEFAULT_LIMITS = {
  instructions = 5000000,   -- Lua VM instructions per receipt (step + simulate)
  memory_mb = 64,           -- heap the rule may add during one receipt
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
  return limits
end

local function rethrowing(f)
  return function(fn, ...)
    local results = table.pack(f(fn, ...))
    if not results[1] then
      core.check() -- a limit was hit inside: raise it again
      if M.is_limit_error(results[2]) then error(results[2], 0) end
    end
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

-- setmetatable for rule code: no finalizers (a __gc would run outside any
-- budget, a __close loop at scope exit), and no metatable on strings.
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and (rawget(mt, "__gc") ~= nil or rawget(mt, "__close") ~= nil) then
    error("setmetatable: __gc and __close are not allowed in rule code", 2)
  end
  return setmetatable(t, mt)
end

-- A fresh environment for one rule chunk.  `modules` maps the names rule
-- code may require to the values it gets.
function M.env(modules)
  local declared = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, select = select,
    tonumber = tonumber, tostring = tostring, type = type, rawequal = rawequal, rawget = rawget,
    rawset = rawset, rawlen = rawlen, setmetatable = safe_setmetatable, getmetatable = getmetatable,
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
    __metatable = false,
  })
end

---------------------------------------------------------------------------
-- state kept in upvalues: not resume-safe, so warned about

-- watch[fn] = list of upvalue slots of user rule code reachable from fn
-- (set by watch_ruleset), checked after every guarded call of fn.
local watch = setmetatable({}, { __mode = "k" })
local warned = {}
M.warn = function(message) io.stderr:write("retape: warning: ", message, "\n") end

-- A cheap fingerprint of an upvalue's value: scalars as they are, a table
-- by its entries (keys and scalar values, one level).
local function fingerprint(v)
  if type(v) ~= "table" then return v end
  local n, acc = 0, 0
  for k, x in next, v do
    n = n + 1
    local tx = type(x)
    acc = acc + #tostring(k) * 7 + (tx == "number" and x or tx == "string" and #x or tx == "boolean" and (x and 3 or 5) or 1)
  end
  return string.format("%d:%.17g", n, acc)
end

-- watch_ruleset(R, is_user(fn)) notes the upvalues (not functions, not
-- _ENV) of the user functions reachable from R's fields and from their
-- upvalues, so guard() can warn when a call changes one.
function M.watch_ruleset(R, is_user)
  local slots, seen = {}, {}
  local function walk(v, depth)
    if depth > 4 or seen[v] then return end
    seen[v] = true
    if type(v) == "table" then
      for _, x in next, v do if type(x) == "function" or type(x) == "table" then walk(x, depth + 1) end end
    elseif type(v) == "function" then
      local user = is_user(v)
      for i = 1, 255 do
        local name, x = debug.getupvalue(v, i)
        if not name then break end
        if type(x) == "function" then walk(x, depth + 1)
        elseif user and name ~= "_ENV" and #slots < 64 then
          local info = debug.getinfo(v, "S")
          slots[#slots + 1] = { fn = v, i = i, name = name, where = info.short_src .. ":" .. info.linedefined }
        end
      end
    end
  end
  walk(R, 0)
  if #slots == 0 then return end
  for _, s in ipairs(slots) do s.print = fingerprint(select(2, debug.getupvalue(s.fn, s.i))) end
  for _, k in ipairs { "step", "simulate" } do
    if type(R[k]) == "function" then watch[R[k]] = slots end
  end
end

local function check_upvalues(slots, ...)
  for _, s in ipairs(slots) do
    local now = fingerprint(select(2, debug.getupvalue(s.fn, s.i)))
    if now ~= s.print then
      s.print = now
      local key = s.where .. ":" .. s.name
      if not warned[key] then
        warned[key] = true
        M.warn(string.format("rule state kept in upvalue '%s' (function at %s) changed between receipts: "
          .. "it is lost by --resume; keep state in the ruleset's declared per-ticker state", s.name, s.where))
      end
    end
  end
  return ...
end

---------------------------------------------------------------------------

-- guard(limits, fn, ...) -> fn's results.  Runs fn under the instruction
-- budget and memory cap (limits.instructions, limits.memory_mb; both must
-- be positive); raises a limit error naming the limit when one is
-- exceeded.  Nests: an inner guard restores the outer limits and hook.
function M.guard(limits, fn, ...)
  local slots = watch[fn]
  if slots then return check_upvalues(slots, core.guard(limits, fn, ...)) end
  return core.guard(limits, fn, ...)
end

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

-- stats() -> {active, used, budget, heap_bytes, accounting} of the C side.
M.stats = core.stats

return M
