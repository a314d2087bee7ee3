-- retape.sweep_part — one group of a sweep's variants, in a worker thread's
-- own Lua state (retape.pool; see retape.sweep's run).  The config (a
-- retape.wire text) carries what sweep.run needs for every worker group:
-- the scope and options of the pass, the ruleset's spec, the base
-- overrides, and for each group its variants (index, overrides, and the
-- identity the main state's ruleset has).  Each variant's ruleset is loaded
-- again from the spec with the same overrides applied in the same order,
-- and checked against that identity; then the group runs its own pass over
-- its own read of the receipts (sweep.pass).  The reply (wire): { group =
-- the pass's result } or { failure | param, at, index }.
local rules = require "retape.rules"
local sweep = require "retape.sweep"
local wire = require "retape.wire"

local M = {}

-- The group's rulesets: loaded again, overrides applied, identity checked.
local function rulesets(c, group)
  local Rs, variants, idx = {}, {}, {}
  for n, v in ipairs(group) do
    local R = rules.load(c.spec)
    if c.base and next(c.base) then rules.apply_overrides(R, c.base, "--set") end
    rules.apply_overrides(R, v.overrides, "--grid")
    local mine = sweep.ruleset_identity(R)
    if mine ~= v.identity then
      error(string.format("variant %d: the ruleset loaded again from %s is not the one of the sweep (%s against %s)",
        v.index, c.spec, mine, v.identity), 0)
    end
    Rs[v.index], variants[v.index], idx[n] = R, v.overrides, v.index
  end
  return Rs, variants, idx
end

-- init(config, kv, inbox, part) -> handler(message) -> reply
function M.init(config, _, _, part)
  local c = wire.decode(config)
  local group = assert(c.groups[part], "sweep_part: no group for this thread")
  return function()
    local ok, Rs, variants, idx = pcall(rulesets, c, group)
    if not ok then return wire.encode { failure = tostring(Rs), at = -1, index = group[1].index } end
    local res, failure, at, index = sweep.pass(c.opts, Rs, variants, idx, c.dir, nil, false)
    if res then
      for _, v in ipairs(res.list) do v.overrides = nil end -- the main state has them
      return wire.encode { group = sweep.to_wire(res) }
    end
    if require("retape.replay").is_param_error(failure) then
      return wire.encode { param = failure.message, at = at, index = index }
    end
    return wire.encode { failure = tostring(failure), at = at, index = index }
  end
end

return M
