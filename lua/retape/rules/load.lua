-- retape.rules.load — finding and loading rulesets: bundled ones from the
-- Lua layer, rule files under the sandbox, pinned sources, and whether a
-- loaded ruleset may be loaded again elsewhere (reloadable).  The front door
-- is retape.rules.
local sandbox = require "retape.sandbox"
local overrides = require "retape.rules.overrides"
local json = require "retape.json"

local M = {}

M.default = "default"          -- rules/default.lua: the parity rules with the faults fixed
M.parity = "worker-2026-02-02"

local REQUIRED = { "name", "step", "simulate", "lanes" }

-- The metatables load() installs on R.config (strict_config, below).
local strict_mts = setmetatable({}, { __mode = "k" })

-- What a ruleset's tables may carry besides data, all the engine's: the
-- strict settings' metatables, the read-only views of the sandbox, and the
-- JSON object marker (a store's recipe marks R.overrides with it).
local function engine_made(t, mt)
  return strict_mts[mt] or sandbox.is_frozen(t) or mt == json.object_mt
end
-- ... and in what the engine reads as data, no view (the engine would read
-- through it what the check cannot see).
local function engine_data(_, mt) return strict_mts[mt] or mt == json.object_mt end

-- kept_metatable(t, mt) -> "keep" | "drop" | nil: what a plain copy of a
-- value rule code hands back does with an engine-made metatable
-- (sandbox.plain_copy): the JSON object marker is kept, the strict
-- settings' left behind; anything else is refused.
local function kept_metatable(_, mt)
  if mt == json.object_mt then return "keep" end
  if strict_mts[mt] then return "drop" end
  return nil
end

-- plain_value(v, what) -> a plain copy of a table rule code handed back (a
-- trace record, an explanation) for the engine to read outside the rule's
-- guard, or nil and a message naming `what` (not a table, a metatable of
-- the rule's, more than KEPT_VALUES_MAX values: sandbox.plain_copy).
function M.plain_value(v, what)
  if type(v) ~= "table" then return nil, string.format("%s is a %s, not a table", what, type(v)) end
  local ok, copy = pcall(sandbox.plain_copy, v, what, json.KEPT_VALUES_MAX, kept_metatable)
  if not ok then return nil, copy end
  return copy
end

-- What the engine reads of a ruleset as data, value by value (into the
-- store's manifest, the lanes and views, the state it keeps, the trace).
local DATA = { "config", "lanes", "state", "fields", "trace_columns", "overrides", "sources", "glossary" }

-- A ruleset is code and plain data: the engine walks its tables outside any
-- guard (its shape, its config into the store's manifest and made strict),
-- so a metatable there (but a weak memo's) and nesting past 64 levels are
-- refused; what it reads as data (DATA) has no weak table either (rule
-- code could change one during a run), holds at most KEPT_VALUES_MAX
-- values in all, R.name is a string and R.trace_columns names each column
-- once.  Then its required keys.
local function check(R, where)
  if type(R) ~= "table" then error(where .. ": a ruleset must return a table, got " .. type(R), 0) end
  local ok, err = pcall(sandbox.check_data, R, "R", { allow = engine_made })
  if ok then
    local data = {}
    for _, k in ipairs(DATA) do data[k] = rawget(R, k) end
    local max = json.KEPT_VALUES_MAX
    ok, err = pcall(sandbox.check_data, data, "R", { allow = engine_data, weak = false, max_values = max,
      counted = string.format("R.%s hold", table.concat(DATA, ", R.")) })
  end
  if not ok then error(where .. ": " .. tostring(err), 0) end
  local name = rawget(R, "name")
  if name ~= nil and type(name) ~= "string" then error(where .. ": R.name must be a string, got a " .. type(name), 0) end
  local columns = rawget(R, "trace_columns")
  if columns ~= nil and type(columns) ~= "table" then
    error(where .. ": R.trace_columns must be a list of column names, got a " .. type(columns), 0)
  elseif columns ~= nil then
    local named = {}
    for i = 1, #columns do
      local c = columns[i]
      if type(c) ~= "string" or named[c] then
        error(string.format("%s: R.trace_columns must list distinct column names (entry %d is %s)", where, i,
          type(c) == "string" and "'" .. c .. "' again" or "a " .. type(c)), 0)
      end
      named[c] = true
    end
  end
  for _, k in ipairs(REQUIRED) do
    if rawget(R, k) == nil then error(where .. ": the ruleset has no '" .. k .. "'", 0) end
  end
  return R
end

-- Finds the source of a bundled ruleset: only in the Lua layer (embedded,
-- or under --lua-dir), never through package.path/cpath (so neither
-- ./rules/NAME.lua nor a native ./rules/NAME.so is ever picked up).
local function bundled(name)
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") then return nil end
  local loader, extra = require("retape.core").layer_loader("rules." .. name)
  if type(loader) == "function" then return loader, extra end
  return nil
end

-- Notes a hash of the code a ruleset was loaded from (R.sources: name ->
-- FNV of the stripped bytecode); a ruleset extending another carries both.
local function record_source(R, name, chunk)
  local ok, code = pcall(string.dump, chunk, true)
  R.sources = R.sources or {}
  R.sources[name] = ok and require("retape.ingest").fnv1a32(code) or "unknown"
  return R
end

-- The chunk names of every rule file loaded (a file that loads another:
-- the functions of both are user code).
local user_sources = {}

-- What rule code may require, and the environment it runs in.
local function rule_modules()
  local facade = { load = function(spec) return M.load(spec) end, apply_overrides = overrides.apply_overrides,
                   default = M.default, parity = M.parity }
  local json_api = { encode = function(v, order) return json.encode(sandbox.raw(v), order) end, decode = json.decode,
                     null = json.null, number = json.number }
  local time = {} -- a copy: rule code cannot rewrite the engine's calendar
  for k, v in pairs(require "retape.time") do time[k] = v end
  return {
    ["retape.rules"] = facade, ["retape.json"] = json_api, ["retape.time"] = time,
    retape = { rules = facade, json = json_api, time = time },
  }
end

-- Gives a loaded chunk the sandbox environment (its first upvalue is _ENV).
local function sandboxed(chunk)
  if debug.getupvalue(chunk, 1) == "_ENV" then debug.setupvalue(chunk, 1, sandbox.env(rule_modules())) end
  return chunk
end

-- Settings tables (every key a lower-case name) raise on a read of a key
-- they do not have: "unknown setting 'a.b' (did you mean a.c?)", pointing at
-- the rule's line, instead of a nil that fails later ("attempt to compare
-- nil with number").  Tables keyed by data (tickers, trigger names, zones:
-- any key that is not a lower-case name) keep returning nil.  pairs() and
-- numeric reads are unaffected.  Installed by load() on R.config.
local function strict_config(config)
  local function settings_table(t)
    for k in pairs(t) do
      if type(k) ~= "string" or not k:match("^[a-z][a-z0-9_]*$") then return false end
    end
    return next(t) ~= nil
  end
  local function walk(t, prefix)
    local mt = getmetatable(t)
    if mt ~= nil and not strict_mts[mt] then return end -- someone else's table (e.g. a JSON object marker)
    if settings_table(t) then
      mt = { __index = function(_, k)
        if type(k) ~= "string" then return nil end
        local key = prefix .. k
        local near = overrides.close_matches(overrides.config_paths(config), key) or {}
        error(string.format("unknown setting '%s'%s", key,
          #near > 0 and (" (did you mean " .. table.concat(near, ", ") .. "?)") or ""), 2)
      end }
      strict_mts[mt] = true
      setmetatable(t, mt)
    end
    for k, v in pairs(t) do
      if type(v) == "table" and v[1] == nil then walk(v, prefix .. tostring(k) .. ".") end
    end
  end
  walk(config, "")
  return config
end
M.strict_config = strict_config

-- The innermost line of a rule file in a traceback ("file.lua:12"), or nil.
local function rule_line(traceback)
  for file, line in (traceback or ""):gmatch("\n%s*([^\n]-):(%d+):") do
    if user_sources["@" .. file] then return file .. ":" .. line end
  end
end

-- Runs a rule file's top level under the sandbox limits; errors name the
-- file.  A file that loads others (or itself) loads them within the same
-- budget; a limit hit in one of them names the innermost rule line and the
-- file that loaded it, and reads as a limit of loading the ruleset.
local function run_user_chunk(chunk, spec)
  local ok, R = pcall(sandbox.guard, sandbox.DEFAULT_LIMITS, chunk, spec)
  if not ok then
    if sandbox.is_limit_error(R) then
      -- a nested load (still inside the outer file's guard, whose limit this
      -- is too): passed on as it is, for the outermost load to report
      if sandbox.stats().active then error(R, 0) end
      local at = rule_line(R.traceback) or rule_line("\n" .. (R.where or "") .. ":") or spec
      error(string.format("%s: loading the ruleset%s: %s", at, at:find(spec .. ":", 1, true) == 1 and ""
        or " " .. spec, (R.message:gsub(" per receipt%)", " for loading a ruleset and every file it loads)"))), 0)
    end
    local text = tostring(R):match("^[^\n]*") -- the message without the loader's traceback
    if not text:find(spec, 1, true) then text = spec .. ": " .. text end
    error(text, 0)
  end
  if type(R) == "table" and getmetatable(R) ~= nil then
    error(spec .. ": a ruleset must be a plain table (no metatable)", 0)
  end
  return R
end

-- What each ruleset looked like when load() returned it (weak keys): a
-- replay may load it again on other threads only while it is unchanged.
local as_loaded = setmetatable({}, { __mode = "k" })
local UNTRACKED = { config = true, overrides = true, sources = true, files = true }

-- A copy of a ruleset's shape: every table reachable from R (raw) with its
-- entries, keyed by the table (so a table replaced by another is seen in
-- its parent's entries), config/overrides/sources/files of R left out (they
-- travel).  The functions of a user's rule file are walked into as well:
-- their upvalues by value (a setter that changed one makes the ruleset
-- differ from its file), tables among them by identity only.  No path is
-- built: its size is the ruleset's, whatever its keys.
local function shape(R, is_user)
  local out = {}
  local function walk(t, root)
    local entries = {}
    out[t] = entries
    for k, v in next, t do
      if not (root and UNTRACKED[k]) then
        entries[k] = v
        if type(v) == "table" and out[v] == nil then walk(v, false)
        elseif type(v) == "function" and is_user and is_user(v) and out[v] == nil then
          local ups = {}
          out[v] = ups
          for i = 1, math.huge do
            local name, uv = debug.getupvalue(v, i)
            if not name then break end
            ups[i .. name] = sandbox.raw(uv) -- (a replay shows rule code its tables read-only)
          end
        end
      end
    end
  end
  walk(R, true)
  return out
end

local function remember(R, is_user)
  as_loaded[R] = { shape = shape(R, is_user), is_user = is_user }
  return R
end

local function same(a, b) return rawequal(a, b) or (a ~= a and b ~= b) end

-- Whether two shapes hold the same tables with the same entries.
local function same_shape(before, now)
  for t, e in next, before do
    local n = now[t]
    if not n then return false end
    for k, v in next, e do if not same(n[k], v) then return false end end
    for k in next, n do if e[k] == nil then return false end end
  end
  for t in next, now do if before[t] == nil then return false end end
  return true
end

-- reloadable(R) -> spec | nil: the name or path R was loaded from, when
-- loading it again gives R (nothing in it was replaced or added since,
-- but its config, which a replay carries over on its own).
function M.reloadable(R)
  local loaded = as_loaded[R]
  if not loaded or not R.spec then return nil end
  if not same_shape(loaded.shape, shape(R, loaded.is_user)) then return nil end
  return R.spec
end

-- Rule files by content: pin(files) makes load() read each {spec, source}
-- of `files` from its recorded text instead of the disk (a store's recorded
-- ruleset, read after the file moved or changed; the threads of a replay),
-- until unpin().  text_hash(text) is the hash a file is recorded with.
local pinned, loading = {}, nil
function M.pin(files)
  for _, f in ipairs(files or {}) do pinned[f.spec] = { source = f.source, path = f.path } end
end
function M.unpin() pinned = {} end
function M.text_hash(text) return require("retape.ingest").fnv1a32(text) end

-- The files a ruleset was loaded from, as a list of {spec, source} for
-- pin() (nil for a bundled ruleset).
function M.sources_of(R)
  local files = rawget(R, "files")
  if not files then return nil end
  local list = {}
  for i, f in ipairs(files) do list[i] = { spec = f.spec, source = f.source, path = f.path } end
  return list
end

-- load(spec) -> ruleset.  spec: a bundled name ("worker-2026-02-02", found
-- only in the embedded layer or --lua-dir: trusted), a path to a .lua file
-- (user code: always untrusted, its top level run under the sandbox
-- limits), or a ruleset table (returned as is after checking).  Trust comes
-- only from where a ruleset was loaded, never from the file.
function M.load(spec)
  spec = spec or M.default
  if type(spec) == "table" then return check(spec, "ruleset") end
  if type(spec) ~= "string" then error("a ruleset is a bundled name, a path to a .lua file, or a table", 0) end
  if spec:find("/", 1, true) or spec:match("%.lua$") then
    if not spec:match("%.lua$") then
      error(string.format("%s: a ruleset file must be Lua source ending in .lua", spec), 0)
    end
    local pin = pinned[spec]
    local text = pin and pin.source
    if not text then
      local f, ferr = io.open(spec, "rb")
      if not f then error(ferr, 0) end
      text = f:read("a")
      f:close()
    end
    local chunk, err = load(text, "@" .. spec, "t", sandbox.env(rule_modules(), { frozen = true }))
    if not chunk then error(err, 0) end
    user_sources["@" .. spec] = true
    -- the files this load reads (this one, then any it loads in turn)
    local outer = loading
    local path = pin and pin.path or require("retape.fs").absolute(spec) or spec
    local files = { { spec = spec, path = path, hash = M.text_hash(text), source = text } }
    loading = files
    local ok, R = pcall(run_user_chunk, chunk, spec)
    loading = outer
    if not ok then error(R, 0) end
    R = record_source(check(R, spec), spec, chunk)
    if outer then for _, f in ipairs(files) do outer[#outer + 1] = f end end
    rawset(R, "trusted", false) -- user code: replays run it under the sandbox limits
    sandbox.mark_untrusted(R)   -- (and whatever R.trusted says later, rule code included)
    rawset(R, "spec", spec)     -- how to load it again (each thread of a replay does)
    rawset(R, "files", files)   -- what it was loaded from, by content (a store records it)
    if type(R.config) == "table" then strict_config(R.config) end
    local function is_user(f) return user_sources[debug.getinfo(f, "S").source] == true end
    sandbox.watch_ruleset(R, is_user)
    return remember(R, is_user)
  end
  local loader, extra = bundled(spec)
  if not loader then
    error(string.format("no ruleset '%s' (bundled: %s; or give a path to a .lua file)", spec,
      table.concat(M.list(), ", ")), 0)
  end
  local R = record_source(check(sandboxed(loader)("rules." .. spec, extra), spec), spec, loader)
  rawset(R, "trusted", true) -- shipped with the engine (or under --lua-dir)
  rawset(R, "spec", spec)
  if type(R.config) == "table" then strict_config(R.config) end
  return remember(R)
end

-- Names of the bundled rulesets.
function M.list()
  local core = require "retape.core"
  local names = {}
  for _, mod in ipairs(core.embedded_modules()) do
    local n = mod:match("^rules%.(.+)$")
    if n then names[#names + 1] = n end
  end
  table.sort(names)
  return names
end

return M
