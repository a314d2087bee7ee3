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
local SAFE_TABLE = { "concat", "insert", "move", "pack", "remove", "sort", "unpack" }
local SAFE_UTF8 = { "char", "charpattern", "codepoint", "codes", "len", "offset" }

-- The functions only rule code gets: table.insert/remove/sort/unpack and
-- utf8.* charging their work to the budget, tostring without addresses.
local ENV_FUNCTIONS = core.env_functions()

local function pick(src, names, lib)
  local t = {}
  for _, n in ipairs(names) do t[n] = ENV_FUNCTIONS[lib .. "." .. n] or src[n] end
  return t
end

---------------------------------------------------------------------------
-- read-only tables: the globals and libraries of a rule file

-- frozen[view] = what the view is called (weak keys)
local frozen = setmetatable({}, { __mode = "k" })

-- freeze(t, name) -> a read-only view of t: reads, pairs and # see t;
-- an assignment (or rawset) raises at the rule's line naming `name`.
function M.freeze(t, name)
  local view = {}
  frozen[view] = name
  return setmetatable(view, {
    __index = t,
    __newindex = function(_, k)
      error(string.format("%s is read-only in rule code (assignment to '%s'): keep state in the ruleset's "
        .. "declared per-ticker state", name, tostring(k)), 2)
    end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
end
function M.is_frozen(t) return frozen[t] ~= nil end

local raw_of_view -- set below: read-only views of rule state
local function safe_rawset(t, k, v)
  if frozen[t] then error(string.format("rawset: %s is read-only in rule code", frozen[t]), 2) end
  if raw_of_view[t] then error("rawset: this table is read-only during a replay (rule state)", 2) end
  return rawset(t, k, v)
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

-- The metatables rule code set (weak keys): getmetatable in rule code
-- returns only these, so the engine's (a payload's lazy decoding, shared by
-- every payload of a thread; a JSON marker; a settings table's) can be
-- neither read nor changed by rules.
local rule_mts = setmetatable({}, { __mode = "k" })

-- setmetatable for rule code: no finalizers (a __gc would run outside any
-- budget, a __close loop at scope exit), no metatable on strings, and none
-- replaced that the engine set.
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and (rawget(mt, "__gc") ~= nil or rawget(mt, "__close") ~= nil) then
    error("setmetatable: __gc and __close are not allowed in rule code", 2)
  end
  local current = type(t) == "table" and debug.getmetatable(t)
  if current and not rule_mts[current] then
    error("setmetatable: this table's metatable belongs to the engine", 2)
  end
  setmetatable(t, mt)
  if type(mt) == "table" then rule_mts[mt] = true end
  return t
end

local function safe_getmetatable(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and (not rule_mts[mt] or rawget(mt, "__mode") ~= nil) then return false end
  return mt
end

-- Read-only views of the tables in `modules` (what `require` returns),
-- one per table so that require("retape").rules == require("retape.rules").
local function frozen_modules(modules)
  local views, out = {}, {}
  local function view(v, name)
    if type(v) ~= "table" then return v end
    if not views[v] then
      local copy = {}
      views[v] = M.freeze(copy, name)
      for k, x in pairs(v) do copy[k] = view(x, name .. "." .. tostring(k)) end
    end
    return views[v]
  end
  local names = {}
  for name in pairs(modules or {}) do names[#names + 1] = name end
  table.sort(names, function(a, b) return a > b end) -- "retape.time" named before "retape" reaches it
  for _, name in ipairs(names) do out[name] = view(modules[name], "module '" .. name .. "'") end
  return out
end

-- env(modules [, opts]) -> a fresh environment for one rule chunk.
-- `modules` maps the names rule code may require to the values it gets.
-- opts.frozen (a user's rule file): the globals, the libraries and the
-- modules are read-only views, so nothing a call writes there survives it
-- (an assignment raises at the rule's line).
function M.env(modules, opts)
  local frozen_env = opts and opts.frozen
  local function lib(t, name) return frozen_env and M.freeze(t, name) or t end
  if frozen_env then modules = frozen_modules(modules) end
  local declared = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, select = select,
    tonumber = tonumber, tostring = ENV_FUNCTIONS.tostring, type = type, rawequal = rawequal, rawget = rawget,
    rawset = safe_rawset, rawlen = rawlen, setmetatable = safe_setmetatable, getmetatable = safe_getmetatable,
    pcall = rethrowing(pcall), _VERSION = _VERSION, log = rule_log,
    xpcall = function(fn, handler, ...)
      -- the rule's handler never sees (or replaces) a limit error
      local function guarded(e)
        if M.is_limit_error(e) then return e end
        return handler(e)
      end
      return rethrowing(function(f, ...) return xpcall(f, guarded, ...) end)(fn, ...)
    end,
    string = lib(pick(string, SAFE_STRING, "string"), "string"),
    table = lib(pick(table, SAFE_TABLE, "table"), "table"),
    math = lib(pick(math, SAFE_MATH, "math"), "math"),
    utf8 = lib(pick(utf8, SAFE_UTF8, "utf8"), "utf8"),
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
  local globals = {}
  for k, v in pairs(declared) do globals[k] = v end
  local function undeclared(_, k) error(string.format("undeclared global '%s'", tostring(k)), 2) end
  local function assignment(_, k)
    if frozen_env and rawget(globals, k) ~= nil then
      error(string.format("assignment to global '%s': the globals of rule code are read-only (use a local)",
        tostring(k)), 2)
    end
    error(string.format("assignment to undeclared global '%s' (use a local)", tostring(k)), 2)
  end
  if not frozen_env then
    globals._G = globals
    return setmetatable(globals, { __index = undeclared, __newindex = assignment, __metatable = false })
  end
  local env = {}
  frozen[env] = "the global environment"
  globals._G = env
  setmetatable(globals, { __index = undeclared, __metatable = false })
  return setmetatable(env, { __index = globals, __newindex = assignment, __metatable = false })
end

---------------------------------------------------------------------------
-- state kept outside the declared per-ticker state: refused
--
-- What a call of the ruleset could leave for a later call to see would
-- differ with --threads (each thread has its own copy of the ruleset) and
-- be lost by --resume.  From its first guarded call on, a rule file's own
-- functions see the tables their upvalues hold -- the ruleset R and its
-- config included, nested at any depth -- through read-only views: a write
-- raises at the rule's line, naming the table and key.  Their upvalues
-- themselves (a counter, a flag, a function that replaces itself) are
-- compared after every call: a call that changed one fails, naming it.
-- Weak tables are caches (memos) and stay writable; what changed before
-- the first call (overrides, --set, a setter) is the ruleset as run.

-- watch[fn] = the watcher of the ruleset fn belongs to (weak keys)
local watch = setmetatable({}, { __mode = "k" })
local watchers = setmetatable({}, { __mode = "k" }) -- R -> its watcher
M.warn = function(message) io.stderr:write("retape: warning: ", message, "\n") end

local STATE_ADVICE = "it would differ with --threads and be lost by --resume; keep state in R.state.fields, "
  .. "a memo in a weak table"

-- Where a function was defined, "file:line".
local function defined_at(f)
  local info = debug.getinfo(f, "S")
  return info.short_src .. ":" .. info.linedefined
end

-- A path step for key k.
local function step_name(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  if type(k) == "string" or math.type(k) == "integer" then return string.format("[%q]", k) end
  return "[" .. type(k) .. "]"
end

local views_of = setmetatable({}, { __mode = "k" }) -- table -> its read-only view
local raw_of = setmetatable({}, { __mode = "k" })   -- view -> the table
raw_of_view = raw_of

local function is_weak(t)
  local mt = debug.getmetatable(t)
  return mt ~= nil and rawget(mt, "__mode") ~= nil
end

-- state_view(t, path) -> a read-only view of t (and, on reading, of the
-- tables in it): reads, pairs, ipairs and # see t; an assignment raises at
-- the rule's line naming path and key.  Weak tables and frozen views are
-- returned as they are.
local function state_view(t, path)
  if type(t) ~= "table" or frozen[t] or raw_of[t] or is_weak(t) then return t end
  local view = views_of[t]
  if view then return view end
  view = {}
  local function wrap(x, k)
    if type(x) == "table" then return state_view(x, path .. step_name(k)) end
    return x
  end
  local function index_raw(k) return t[k] end
  setmetatable(view, {
    __index = function(_, k)
      local x = rawget(t, k)
      if x == nil and debug.getmetatable(t) then -- e.g. a settings table that names an unknown key
        local ok, y = pcall(index_raw, k)
        if not ok then error(type(y) == "string" and (y:gsub("^[^\n]-:%d+: ", "", 1)) or y, 2) end
        x = y
      end
      return wrap(x, k)
    end,
    __newindex = function(_, k)
      error(string.format("rule state kept outside the ruleset's declared per-ticker state: %s%s is read-only "
        .. "during a replay (%s)", path, step_name(k), STATE_ADVICE), 2)
    end,
    __pairs = function()
      return function(_, k)
        local k2, x = next(t, k)
        return k2, wrap(x, k2)
      end, view, nil
    end,
    __len = function() return #t end,
    __metatable = false,
  })
  views_of[t], raw_of[view] = view, t
  return view
end
M.state_view = state_view

-- raw(v) -> the table a read-only view shows (v itself otherwise).
function M.raw(v) return raw_of[v] or v end

-- The upvalues of the watched functions by path, to name a change.
local function upvalue_values(w)
  local out = {}
  for _, f in ipairs(w.fns) do
    for i = 1, math.huge do
      local name, x = debug.getupvalue(f, i)
      if not name then break end
      out[string.format("upvalue '%s' of the function at %s", name, defined_at(f))] = x
    end
  end
  return out
end

local function same(a, b) return rawequal(a, b) or (a ~= a and b ~= b) end

-- What differs between two maps of path -> value, the first path in order.
local function first_change(before, now)
  local paths = {}
  for p in pairs(before) do paths[#paths + 1] = p end
  for p in pairs(now) do if before[p] == nil then paths[#paths + 1] = p end end
  table.sort(paths)
  for _, p in ipairs(paths) do
    if not same(before[p], now[p]) then return p end
  end
  return "a value reachable from the ruleset"
end

-- watch_ruleset(R, is_user): watches the rule file functions reachable from
-- R (is_user(fn) says which are; through R's tables and their upvalues):
-- from the first guarded call of R.step or R.simulate on, their tables are
-- read-only views and their upvalues are checked after every call.
function M.watch_ruleset(R, is_user)
  local fns, seen = {}, {}
  local function walk(v)
    local tv = type(v)
    if (tv ~= "table" and tv ~= "function") or seen[v] then return end
    seen[v] = true
    if tv == "table" then
      if is_weak(v) then return end
      local mt = debug.getmetatable(v)
      if mt then walk(mt) end
      for k, x in next, v do walk(k); walk(x) end
    elseif is_user(v) then
      fns[#fns + 1] = v
      for i = 1, math.huge do
        local name, x = debug.getupvalue(v, i)
        if not name then break end
        walk(x)
      end
    end
  end
  walk(R)
  if #fns == 0 then return end
  local w = { R = R, fns = fns, simulate = R.simulate }
  for _, k in ipairs { "step", "simulate" } do
    if type(R[k]) == "function" then watch[R[k]] = w end
  end
  watchers[R] = w
end

-- rebase(R): the next guarded call takes the upvalues as they are then as
-- the ruleset as run.
function M.rebase(R)
  local w = watchers[R]
  if w then w.print, w.before = nil, nil end
end

-- The baseline: the tables the upvalues hold become read-only views (an
-- upvalue is shared by the closures that capture it: each is set once).
local function baseline(w)
  for _, f in ipairs(w.fns) do
    for i = 1, math.huge do
      local name, x = debug.getupvalue(f, i)
      if not name then break end
      if type(x) == "table" and name ~= "_ENV" then
        local path = rawequal(x, w.R) and "R" or string.format("upvalue '%s' (function at %s)", name, defined_at(f))
        local view = state_view(x, path)
        if view ~= x then debug.setupvalue(f, i, view) end
      end
    end
  end
  w.print, w.before = core.state_print(w.fns), upvalue_values(w)
end

local function refuse_change(w)
  local what = first_change(w.before, upvalue_values(w))
  w.print, w.before = nil, nil
  error(string.format("rule state kept outside the ruleset's declared per-ticker state: %s changed during this "
    .. "call (%s)", what, STATE_ADVICE), 0)
end

local function checked(w, ...)
  if core.state_print(w.fns) ~= w.print then refuse_change(w) end
  return ...
end

-- The book handed to simulate is the engine's, one per thread: a rule may
-- change book.cash (reset for each receipt), nothing else of it.
local BOOK_FREE = { cash = true, created = true, ticker = true }
local function book_entries(book)
  local out, n = {}, 0
  for k, v in next, book do
    if not BOOK_FREE[k] then out[k], n = v, n + 1 end
  end
  return out, n
end

local function checked_book(w, book, ...)
  local n = 0
  for k, v in next, book do
    if not BOOK_FREE[k] then
      n = n + 1
      if not rawequal(w.book_entries[k], v) then
        w.book = nil
        error(string.format("rule state kept outside the ruleset's declared per-ticker state: book%s changed "
          .. "during this call (the book is the engine's; a rule may change book.cash only: %s)", step_name(k),
          STATE_ADVICE), 0)
      end
    end
  end
  if n ~= w.book_n then
    w.book = nil
    error("rule state kept outside the ruleset's declared per-ticker state: an entry of the book was removed "
      .. "during this call (" .. STATE_ADVICE .. ")", 0)
  end
  return checked(w, ...)
end

---------------------------------------------------------------------------

-- guard(limits, fn, ...) -> fn's results.  Runs fn under the instruction
-- budget and memory cap (limits.instructions, limits.memory_mb; both must
-- be positive); raises a limit error naming the limit when one is
-- exceeded.  Nests: an inner guard restores the outer limits and hook.
function M.guard(limits, fn, ...)
  local w = watch[fn]
  if w then
    if not w.print then baseline(w) end
    local book = fn == w.simulate and select(3, ...)
    if type(book) == "table" then
      if w.book ~= book then w.book, w.book_entries, w.book_n = book, book_entries(book) end
      return checked_book(w, book, core.guard(limits, fn, ...))
    end
    return checked(w, core.guard(limits, fn, ...))
  end
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
