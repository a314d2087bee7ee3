-- retape.sweep.part — one group of a sweep's variants, in a worker thread's
-- own Lua state (retape.pool; see retape.sweep's run).  The config (a
-- retape.wire text) carries what sweep.run needs for every worker group:
-- the scope and options of the pass, the ruleset's spec, the base
-- overrides, and for each group its variants (index, overrides, and the
-- identity the main state's ruleset has).  Each variant's ruleset is loaded
-- again from the spec with the same overrides applied in the same order,
-- and checked against that identity; then the group runs its own pass over
-- its own read of the receipts (retape.sweep.pass).  The reply (wire): { group =
-- the pass's result } or { failure | param, at, index }.
local rules = require "retape.rules"
local json = require "retape.json"
local wire = require "retape.wire"
local pass = require "retape.sweep.pass"

local M = {}

-- What a variant's ruleset must be in a worker to be this one: its name,
-- sources and effective config, and the overrides recorded in manifests.
function M.ruleset_identity(R)
  return json.encode { R.name or false, R.sources or json.object(), R.config or json.object(),
                       R.overrides or json.object() }
end

-- Carries json.null (in a replay's response) over retape.wire and back.
local NULL_MARK = "\0null"
function M.to_wire(v)
  if v == json.null then return NULL_MARK end
  if type(v) ~= "table" then return v end
  local o = {}
  for k, x in pairs(v) do o[k] = M.to_wire(x) end
  return o
end
function M.from_wire(v)
  if v == NULL_MARK then return json.null end
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do v[k] = M.from_wire(x) end
  return v
end

-- The group's rulesets: loaded again, overrides applied, identity checked.
local function rulesets(c, group)
  local Rs, variants, idx = {}, {}, {}
  for n, v in ipairs(group) do
    local R = rules.load(c.spec)
    if c.base and next(c.base) then rules.apply_overrides(R, c.base, "--set") end
    rules.apply_overrides(R, v.overrides, "--grid")
    local mine = M.ruleset_identity(R)
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
  local group = assert(c.groups[part], "sweep.part: no group for this thread")
  return function()
    local ok, Rs, variants, idx = pcall(rulesets, c, group)
    if not ok then return wire.encode { failure = tostring(Rs), at = -1, index = group[1].index } end
    local res, failure, at, index = pass.pass(c.opts, Rs, variants, idx, c.dir, nil, false)
    if res then
      for _, v in ipairs(res.list) do v.overrides = nil end -- the main state has them
      return wire.encode { group = M.to_wire(res) }
    end
    if require("retape.replay").is_param_error(failure) then
      return wire.encode { param = failure.message, at = at, index = index }
    end
    return wire.encode { failure = tostring(failure), at = at, index = index }
  end
end

return M
