-- retape.sweep.grid — the variants a sweep runs: --grid specs parsed
-- (lists, ranges, a declared range), their cartesian product or random
-- draws, grid files, labels, and one checked ruleset per variant.
local rules = require "retape.rules"

local M = {}


-- Formats a number the way a person typed it: 0.1 + 0.2 steps give "0.3".
local function tidy(x)
  if math.type(x) == "integer" then return x end
  local v = tonumber(string.format("%.12g", x))
  return v
end

-- parse_grid("KEY=V1,V2,..." | "KEY=LO..HI:STEP") -> key, { values }.
-- Values are typed as --set types them (numbers, booleans, strings); a
-- range of integers gives integers.  Raises on a malformed spec.
function M.parse_grid(text, ranges)
  local key, rhs = tostring(text):match("^%s*([%w_.]+)%s*=%s*(.-)%s*$")
  if not key and tostring(text):match("^%s*[%w_.]+%s*$") then
    -- KEY alone: the range the ruleset declares for it (R.ranges)
    key = tostring(text):match("^%s*([%w_.]+)%s*$")
    local r = ranges and ranges[key]
    if not r then
      error(string.format("--grid '%s': the ruleset declares no range for it; give KEY=V1,V2,... or KEY=LO..HI:STEP", key), 0)
    end
    rhs = string.format("%s..%s:%s", M.num_text(r.min), M.num_text(r.max), M.num_text(r.step))
  end
  if not key or rhs == "" then
    error(string.format("--grid '%s': expected KEY=V1,V2,... or KEY=LO..HI:STEP (or KEY with a declared range)", tostring(text)), 0)
  end
  local lo, hi, step = rhs:match("^([-+%d.eE]+)%.%.([-+%d.eE]+):([-+%d.eE]+)$")
  local values = {}
  if lo then
    local a, b, s = tonumber(lo), tonumber(hi), tonumber(step)
    if not (a and b and s) then error(string.format("--grid '%s': LO..HI:STEP must be numbers", text), 0) end
    if s <= 0 then error(string.format("--grid '%s': STEP must be positive", text), 0) end
    if b < a then error(string.format("--grid '%s': HI is below LO", text), 0) end
    local ints = math.type(a) == "integer" and math.type(b) == "integer" and math.type(s) == "integer"
    local n = math.floor((b - a) / s + 1e-9)
    if n >= 10000 then error(string.format("--grid '%s': more than 10,000 values", text), 0) end
    for i = 0, n do values[#values + 1] = ints and (a + i * s) or tidy(a + i * s) end
  else
    for part in (rhs .. ","):gmatch("(.-),") do
      if part:match("^%s*$") then error(string.format("--grid '%s': an empty value", text), 0) end
      local _, v = rules.parse_set(key .. "=" .. part)
      values[#values + 1] = v
    end
  end
  return key, values
end

-- A number as --grid reads it back ("0.1", "5", "1e-05").
function M.num_text(x)
  if math.type(x) == "integer" then return tostring(x) end
  return string.format("%.12g", x)
end

-- axes(specs [, ranges]) -> { {key, values}, ... } (parse_grid of each;
-- ranges: the ruleset's declared ranges, for a KEY given alone).
function M.axes(specs, ranges)
  local axes, seen = {}, {}
  for _, s in ipairs(specs) do
    local key, values
    if type(s) == "table" then key, values = s[1], s[2] else key, values = M.parse_grid(s, ranges) end
    if seen[key] then error(string.format("--grid: '%s' is given twice", key), 0) end
    seen[key] = true
    axes[#axes + 1] = { key = key, values = values }
  end
  return axes
end

-- A small deterministic generator (splitmix64): the same seed gives the
-- same variants on every machine and Lua build.
local function splitmix(seed)
  local x = math.tointeger(seed) or 0
  return function(n) -- an integer in 1..n
    x = x + 0x9E3779B97F4A7C15
    local z = x
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 1) % n + 1
  end
end

-- random(specs, n, seed [, ranges]) -> variants: n distinct draws (fewer
-- when the space holds fewer), each value drawn uniformly from its axis'
-- values (a range's steps, a list, or the declared range), in draw order.
function M.random(specs, n, seed, ranges)
  local axes = M.axes(specs, ranges)
  local space = 1
  for _, a in ipairs(axes) do space = space * #a.values end
  n = math.min(n, space)
  local draw = splitmix(seed)
  local out, seen = {}, {}
  local tries = 0
  while #out < n and tries < n * 50 do
    tries = tries + 1
    local o, key = {}, {}
    for i, a in ipairs(axes) do
      local j = draw(#a.values)
      o[a.key] = a.values[j]
      key[i] = j
    end
    local k = table.concat(key, ",")
    if not seen[k] then seen[k] = true; out[#out + 1] = o end
  end
  out.keys = {}
  for i, a in ipairs(axes) do out.keys[i] = a.key end
  return out
end

-- grid(specs [, ranges]) -> { {["a.b"] = v, ...}, ... }: the cartesian
-- product of the specs (strings for parse_grid, or {key, {values}}), the
-- first spec varying slowest.  A key given twice is an error.
function M.grid(specs, ranges)
  local axes = {}
  for _, a in ipairs(M.axes(specs, ranges)) do
    local key, values = a.key, a.values
    axes[#axes + 1] = { key = key, values = values }
  end
  local out = { {} }
  for _, axis in ipairs(axes) do
    local nxt = {}
    for _, base in ipairs(out) do
      for _, v in ipairs(axis.values) do
        local o = {}
        for k, x in pairs(base) do o[k] = x end
        o[axis.key] = v
        nxt[#nxt + 1] = o
      end
    end
    out = nxt
  end
  out.keys = {}
  for i, a in ipairs(axes) do out.keys[i] = a.key end
  return out
end

-- load_grid_file(path) -> variants: a Lua file returning a list of override
-- tables (flat {["a.b"] = v} or nested {a = {b = v}}).  Raises naming the file.
function M.load_grid_file(path)
  local list = require("retape.rules.overrides").run_data_file(path)
  if type(list) ~= "table" or #list == 0 then error(path .. ": a grid file returns a non-empty list of override tables", 0) end
  local out = {}
  for i, v in ipairs(list) do
    if type(v) ~= "table" then error(string.format("%s: entry %d is a %s, not a table of overrides", path, i, type(v)), 0) end
    out[i] = v
  end
  return out
end

-- Flattens nested overrides to {["a.b"] = v} against the config's paths
-- (rules.flat_overrides: the one overlay of settings).
function M.flat_overrides(R, o) return rules.flat_overrides(o, rules.config_paths(R.config or {})) end

-- "a.b=1 c=x": a variant's overrides, keys sorted.
function M.label(o)
  local parts = rules.texts(o)
  return #parts > 0 and table.concat(parts, " ") or "(base)"
end

-- rulesets(spec, base, variants) -> { R, ... }: one freshly loaded ruleset
-- per variant with the base overrides (--set/--config) and then the
-- variant's applied.  Every variant is checked before any runs; an error
-- names the variant: "variant 3 (a.b=x): --grid: unknown setting ...".
function M.rulesets(spec, base, variants)
  if spec ~= nil and type(spec) ~= "string" then
    error("sweep: rules must be a ruleset name or a .lua file (each variant loads its own copy)", 0)
  end
  local list = {}
  for i, o in ipairs(variants) do
    local R = rules.load(spec)
    if base and next(base) then rules.apply_overrides(R, base, "--set") end
    local flat = M.flat_overrides(R, o)
    local ok, err = pcall(rules.apply_overrides, R, flat, "--grid")
    if not ok then error(string.format("variant %d (%s): %s", i, M.label(flat), tostring(err)), 0) end
    list[i] = R
    variants[i] = flat
  end
  return list
end

return M
