-- retape.sandbox.env — the environment rule code runs in: an allow-list of
-- the standard library (pure functions; the costly ones charging the
-- budget), strict globals, require only for the rule API, no finalizers,
-- no engine metatables.  Installed into retape.sandbox (env, set_log).
local core = require "retape.sandboxcore"
local readonly = require "retape.sandbox.views"

return function(M)
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

  local function safe_rawset(t, k, v)
    local name = readonly.frozen_name(t)
    if name then error(string.format("rawset: %s is read-only in rule code", name), 2) end
    if readonly.is_view(t) then error("rawset: this table is read-only during a replay (rule state)", 2) end
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
  -- returns only these, so the engine's (a payload's lazy decoding, of its
  -- field set or of the payload itself; a JSON marker; a settings table's) can be
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
        views[v] = readonly.freeze(copy, name)
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
    local function lib(t, name) return frozen_env and readonly.freeze(t, name) or t end
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
    readonly.name_frozen(env, "the global environment")
    globals._G = env
    setmetatable(globals, { __index = undeclared, __metatable = false })
    return setmetatable(env, { __index = globals, __newindex = assignment, __metatable = false })
  end
end
