-- retape.rules.overrides — a ruleset's settings changed from outside:
-- --set KEY=VALUE, --config files, grid variants and recorded overrides,
-- each checked against the ruleset's config (unknown keys, types, enums)
-- before anything runs.  The front door is retape.rules.
local M = {}


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

-- The key of path segment `k` in `node`: the name itself when the table
-- holds it ("score.tf_weights.30": the timeframe "30"), else a number
-- (an index of a list: "score.rr.1").
local function key_in(node, k)
  if rawget(node, k) ~= nil then return k end
  return math.tointeger(tonumber(k)) or k
end

local function set_path(config, key, value)
  local node = config
  local parts = {}
  for k in key:gmatch("[^.]+") do parts[#parts + 1] = k end
  for i = 1, #parts - 1 do node = node[key_in(node, parts[i])] end
  node[key_in(node, parts[#parts])] = value
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

-- run_data_file(path) -> what a Lua data file (a config file, a sweep's
-- grid) returns: run in an empty environment under the sandbox's default
-- limits (it is the user's code, like a rule file), its tables plain data
-- of at most KEPT_VALUES_MAX values (sandbox.check_data).  Raises naming
-- the file.
function M.run_data_file(path)
  local sandbox = require "retape.sandbox"
  local chunk, err = loadfile(path, "t", {})
  if not chunk then error(err, 0) end
  local ok, t = pcall(sandbox.guard, sandbox.DEFAULT_LIMITS, chunk)
  if not ok then
    local text = sandbox.describe(t):gsub(" per receipt%)", " for the file)")
    error(text:find(path, 1, true) and text or path .. ": " .. text, 0)
  end
  local cok, cerr = pcall(sandbox.check_data, t, "the file's value", { weak = false,
    max_values = require("retape.json").KEPT_VALUES_MAX })
  if not cok then error(path .. ": " .. cerr, 0) end
  return t
end

-- load_config_file(path) -> overrides, where(key) naming FILE:LINE of a key.
function M.load_config_file(path)
  local t = M.run_data_file(path)
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

-- texts(overrides [, value]) -> { "key=value", ... } sorted by key: how
-- overrides are printed everywhere (runs, status, explain's what-if, diff,
-- sweep labels, the report, serve's command line).  value(v) renders a
-- value (default tostring).
function M.texts(overrides, value)
  value = value or tostring
  local keys = {}
  for k in pairs(overrides or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = k .. "=" .. value(overrides[k]) end
  return out
end

return M
