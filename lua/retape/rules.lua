-- retape.rules — finding and loading rulesets, and changing their settings.
--
-- A ruleset is a Lua file returning a table with at least `name`, `step`
-- (classification of one row) and `simulate` (trade simulation); see
-- rules/worker-2026-02-02.lua for the full shape.  Each load() runs the file
-- afresh, so a caller may change `config` or replace functions of the table
-- it gets without affecting any other run.
--
-- The rooms (retape.rules.*): load (finding, loading, pinning rule files)
-- and overrides (settings from --set, --config, grids, manifests).  This
-- module lends their functions under its own name.
local M = {}
for _, room in ipairs { require "retape.rules.load", (require "retape.rules.overrides") } do
  for name, value in pairs(room) do M[name] = value end
end

-- load_configured(spec, config_file, sets) -> ruleset: loads it, then applies
-- a config file of overrides and every "KEY=VALUE" of `sets` (the CLI's
-- --config and --set); any unknown key or wrong value raises before anything runs.
function M.load_configured(spec, config_file, sets)
  return M.configure(M.load(spec), config_file, sets)
end

return M
