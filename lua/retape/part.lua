-- retape.part — one part of a threaded replay, in a worker thread's own Lua
-- state (retape.pool).  It loads the ruleset again from where the main
-- state loaded it, with the run's config, checks that it has the same
-- identity, and then runs the rounds the main state posts (replay.lua:
-- Replay:part_round) on the tickers it owns.
local replay = require "retape.replay"
local rules = require "retape.rules"
local store = require "retape.store"
local wire = require "retape.wire"

local M = {}

-- init(config, kv, inbox, part) -> handler(message, inbox) -> reply, batch data
function M.init(config, kv, _, part)
  local c = wire.decode(config)
  local st = assert(store.open(kv))
  local R = rules.load(c.spec)
  -- the run's effective config, value by value into the ruleset's own
  -- tables (rule code may hold references to them)
  local function copy(v)
    if type(v) ~= "table" then return v end
    local t = {}
    for k, x in pairs(v) do t[k] = copy(x) end
    return t
  end
  -- (raw access: settings tables raise on unknown keys)
  local function overlay(into, from)
    for k in pairs(into) do if rawget(from, k) == nil then rawset(into, k, nil) end end
    for k, v in pairs(from) do
      -- settings tables are merged into; lists (and anything new) replaced whole
      local old = rawget(into, k)
      if type(v) == "table" and type(old) == "table" and v[1] == nil and next(v) ~= nil then overlay(old, v)
      else rawset(into, k, copy(v)) end
    end
  end
  if c.config then overlay(R.config, c.config) end
  local rp = assert(replay.open_part {
    store = st, rules = R, limits = c.limits, script_version = c.script_version, batch = c.batch,
    part_index = part, part_count = c.parts,
  })
  local mine, theirs = wire.encode(rp:identity()), wire.encode(c.identity)
  if mine ~= theirs then
    error(string.format("the ruleset loaded again from %s is not the one of the run (%s against %s)", c.spec, mine, theirs), 0)
  end
  return function(text, rows) return rp:part_round(wire.decode(text), rows) end
end

return M
