-- retape.rules — finding and loading rulesets.
--
-- A ruleset is a Lua file returning a table with at least `name`, `step`
-- (classification of one row) and `simulate` (trade simulation); see
-- rules/worker-2026-02-02.lua for the full shape.  Each load() runs the file
-- afresh, so a caller may change `config` or replace functions of the table
-- it gets without affecting any other run.
local M = {}

M.default = "worker-2026-02-02"

local REQUIRED = { "name", "step", "simulate", "lanes" }

local function check(R, where)
  if type(R) ~= "table" then error(where .. ": a ruleset must return a table, got " .. type(R), 0) end
  for _, k in ipairs(REQUIRED) do
    if R[k] == nil then error(where .. ": the ruleset has no '" .. k .. "'", 0) end
  end
  return R
end

-- Finds the source of a bundled ruleset (embedded, or under --lua-dir).
local function bundled(name)
  local modname = "rules." .. name
  for _, searcher in ipairs(package.searchers) do
    local loader, extra = searcher(modname)
    if type(loader) == "function" then return loader, extra end
  end
  return nil
end

-- load(spec) -> ruleset.  spec: a bundled name ("worker-2026-02-02"), a path
-- to a .lua file, or a ruleset table (returned as is after checking).
function M.load(spec)
  spec = spec or M.default
  if type(spec) == "table" then return check(spec, "ruleset") end
  if spec:find("/", 1, true) or spec:match("%.lua$") then
    local chunk, err = loadfile(spec, "t")
    if not chunk then error(err, 0) end
    return check(chunk(spec), spec)
  end
  local loader, extra = bundled(spec)
  if not loader then
    error(string.format("no ruleset '%s' (bundled: %s; or give a path to a .lua file)", spec, table.concat(M.list(), ", ")), 0)
  end
  return check(loader("rules." .. spec, extra), spec)
end

-- Names of the bundled rulesets.
function M.list()
  local core = require "retape.core"
  local names = {}
  for _, mod in ipairs(core.embedded_modules and core.embedded_modules() or {}) do
    local n = mod:match("^rules%.(.+)$")
    if n then names[#names + 1] = n end
  end
  if #names == 0 then names[1] = M.default end
  table.sort(names)
  return names
end

return M
