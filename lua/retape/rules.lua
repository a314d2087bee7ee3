-- retape.rules — finding and loading rulesets.
--
-- A ruleset is a Lua file returning a table with at least `name`, `step`
-- (classification of one row) and `simulate` (trade simulation); see
-- rules/worker-2026-02-02.lua for the full shape.  Each load() runs the file
-- afresh, so a caller may change `config` or replace functions of the table
-- it gets without affecting any other run.
local sandbox = require "retape.sandbox"

local M = {}

M.default = "default"          -- rules/default.lua: the parity rules with the faults fixed
M.parity = "worker-2026-02-02"

local REQUIRED = { "name", "step", "simulate", "lanes" }

local function check(R, where)
  if type(R) ~= "table" then error(where .. ": a ruleset must return a table, got " .. type(R), 0) end
  for _, k in ipairs(REQUIRED) do
    if R[k] == nil then error(where .. ": the ruleset has no '" .. k .. "'", 0) end
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
  local json = require "retape.json"
  local facade = { load = function(spec) return M.load(spec) end, apply_overrides = M.apply_overrides,
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
local strict_mts = setmetatable({}, { __mode = "k" }) -- the metatables installed here
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
        local near = M.close_matches and M.close_matches(M.config_paths(config), key) or {}
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

-- A copy of a ruleset's shape: every value by path, tables walked (their
-- identity kept too), config/overrides/sources left out (they travel).  The
-- functions of a user's rule file are walked into as well: their upvalues
-- by value (a setter that changed one makes the ruleset differ from its
-- file), tables among them by identity only.
local function shape(t, out, prefix, seen, is_user)
  seen[t] = true
  for k, v in pairs(t) do
    if not (prefix == "" and UNTRACKED[k]) then
      local path = prefix .. tostring(k) .. "\0" .. type(k)
      out[path] = v
      if type(v) == "table" and not seen[v] then shape(v, out, path .. ".", seen, is_user)
      elseif type(v) == "function" and is_user and is_user(v) and not seen[v] then
        seen[v] = true
        for i = 1, math.huge do
          local name, uv = debug.getupvalue(v, i)
          if not name then break end
          out[path .. "^" .. i .. name] = sandbox.raw(uv) -- (a replay shows rule code its tables read-only)
        end
      end
    end
  end
  return out
end

local function remember(R, is_user)
  as_loaded[R] = { shape = shape(R, {}, "", {}, is_user), is_user = is_user }
  return R
end

-- reloadable(R) -> spec | nil: the name or path R was loaded from, when
-- loading it again gives R (nothing in it was replaced or added since,
-- but its config, which a replay carries over on its own).
function M.reloadable(R)
  local loaded = as_loaded[R]
  if not loaded or not R.spec then return nil end
  local before, now = loaded.shape, shape(R, {}, "", {}, loaded.is_user)
  for k, v in pairs(before) do if now[k] ~= v then return nil end end
  for k in pairs(now) do if before[k] == nil then return nil end end
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

---------------------------------------------------------------------------
-- overrides: checked against the ruleset's config before anything runs

-- Every settable path of a config table ("corridor.long.ltf_max", ...).
function M.config_paths(config)
  local out = {}
  local function walk(t, prefix)
    for k, v in pairs(t) do
      local path = prefix .. tostring(k)
      if type(v) == "table" and next(v) ~= nil and v[1] == nil then walk(v, path .. ".")
      else out[path] = v end
    end
  end
  walk(config, "")
  return out
end

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

local function close_matches(paths, key)
  local scored = {}
  local last = key:match("([^.]+)$")
  for p in pairs(paths) do
    local d = math.min(distance(p, key), distance(p:match("([^.]+)$"), last) + 2)
    if d <= math.max(3, #key // 4) then scored[#scored + 1] = { p, d } end
  end
  table.sort(scored, function(x, y) if x[2] ~= y[2] then return x[2] < y[2] end return x[1] < y[1] end)
  local names = {}
  for i = 1, math.min(3, #scored) do names[i] = scored[i][1] end
  return names
end
M.close_matches = close_matches

-- A list of names as a set, for close_matches.
function M.names_set(list)
  local set = {}
  for _, n in ipairs(list) do set[n] = true end
  return set
end

-- Checks one override against the config; returns the value to set or
-- raises "WHERE: KEY: why (did you mean ...)".
local function check_override(paths, key, value, where, enums)
  local current = paths[key]
  if current == nil then
    local near = close_matches(paths, key)
    error(string.format("%s: unknown setting '%s'%s", where, key,
      #near > 0 and (" (did you mean " .. table.concat(near, ", ") .. "?)") or ""), 0)
  end
  if type(value) ~= type(current) then
    error(string.format("%s: setting '%s' expects a %s (it is %s), got %s %s", where, key, type(current),
      tostring(current), type(value), tostring(value)), 0)
  end
  if math.type(current) == "integer" and math.type(value) ~= "integer" then
    error(string.format("%s: setting '%s' expects an integer, got %s", where, key, tostring(value)), 0)
  end
  local choices = enums and enums[key]
  if choices then
    local ok, set = false, {}
    for _, c in ipairs(choices) do set[c] = true; if c == value then ok = true end end
    if not ok then
      local near = close_matches(set, tostring(value))
      error(string.format("%s: setting '%s' is one of %s, got '%s'%s", where, key, table.concat(choices, ", "),
        tostring(value), #near > 0 and (" (did you mean " .. table.concat(near, ", ") .. "?)") or ""), 0)
    end
  end
  return value
end

local function set_path(config, key, value)
  local node = config
  local parts = {}
  for k in key:gmatch("[^.]+") do parts[#parts + 1] = math.tointeger(tonumber(k)) or k end
  for i = 1, #parts - 1 do node = node[parts[i]] end
  node[parts[#parts]] = value
end

-- flat_overrides(overrides, paths) -> {["a.b"] = v}: nested override tables
-- {a = {b = v}} flattened to the dotted keys of config_paths (a table that
-- is itself a setting's value stays whole).  The one overlay of settings:
-- --set, --config, grid variants and recorded overrides all go through it.
function M.flat_overrides(overrides, paths)
  local flat = {}
  local function walk(t, prefix)
    for k, v in pairs(t) do
      local key = prefix .. tostring(k)
      if type(v) == "table" and v[1] == nil and next(v) ~= nil and paths[key] == nil then walk(v, key .. ".")
      else flat[key] = v end
    end
  end
  walk(overrides, "")
  return flat
end

-- apply_overrides(R, overrides [, where]) -> R.  overrides: {["a.b"] = v}
-- or nested tables {a = {b = v}}; `where` names the source in errors
-- (a function(key) -> "FILE:LINE" is accepted too).  All are checked
-- before any is applied.
function M.apply_overrides(R, overrides, where)
  local paths = M.config_paths(R.config or {})
  local flat = M.flat_overrides(overrides, paths)
  local keys = {}
  for k in pairs(flat) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local w = type(where) == "function" and where(k) or where or "override"
    check_override(paths, k, flat[k], w, R.enums)
  end
  R.overrides = R.overrides or {}
  for _, k in ipairs(keys) do
    set_path(R.config, k, flat[k])
    R.overrides[k] = flat[k]
  end
  return R
end

-- load_configured(spec, config_file, sets) -> ruleset: loads it, then applies
-- a config file of overrides and every "KEY=VALUE" of `sets` (the CLI's
-- --config and --set); any unknown key or wrong value raises before anything runs.
function M.load_configured(spec, config_file, sets)
  return M.configure(M.load(spec), config_file, sets)
end

-- configure(R, config_file, sets) -> R: the overrides of a config file,
-- then of every "KEY=VALUE" of `sets`, applied to R (raises as load_configured).
function M.configure(R, config_file, sets)
  if config_file then
    local t, where = M.load_config_file(config_file)
    M.apply_overrides(R, t, where)
  end
  if sets and #sets > 0 then
    local flat = {}
    for _, text in ipairs(sets) do
      local k, v = M.parse_set(text)
      flat[k] = v
    end
    M.apply_overrides(R, flat, "--set")
  end
  return R
end

-- parse_set("corridor.long.ltf_max=25") -> key, value (number, boolean,
-- or string; quotes optional).
function M.parse_set(text)
  local key, raw = text:match("^%s*([%w_.]+)%s*=%s*(.-)%s*$")
  if not key then error(string.format("--set '%s': expected KEY=VALUE", text), 0) end
  local value
  if raw == "true" then value = true elseif raw == "false" then value = false
  elseif math.tointeger(tonumber(raw)) and not raw:find("[.eE]") then value = math.tointeger(tonumber(raw))
  elseif tonumber(raw) then value = tonumber(raw)
  else value = raw:match('^"(.*)"$') or raw:match("^'(.*)'$") or raw end
  return key, value
end

-- load_config_file(path) -> overrides, where(key) naming FILE:LINE of a key.
function M.load_config_file(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then error(err, 0) end
  local ok, t = pcall(chunk)
  if not ok then error(t, 0) end
  if type(t) ~= "table" then error(path .. ": a config file returns a table of settings", 0) end
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  local function where(key)
    local last = key:match("([^.]+)$")
    local n = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      if line:find(last, 1, true) then return path .. ":" .. n end
    end
    return path
  end
  return t, where
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
