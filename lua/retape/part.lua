-- retape.part — one part of a threaded replay, in a worker thread's own Lua
-- state (retape.pool).  It loads the ruleset again from where the main
-- state loaded it, with the run's overrides, checks that it has the same
-- identity, and then runs the rounds the main state posts (run/threads.lua:
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
  rules.pin(c.sources) -- the rule files as the main state read them, not as the disk has them now
  local ok, R = pcall(rules.load, c.spec)
  rules.unpin()
  if not ok then error(R, 0) end
  -- the run's overrides, applied as --set/--config applied them (a config
  -- changed some other way fails the identity check below: one thread)
  if c.overrides and next(c.overrides) then rules.apply_overrides(R, c.overrides, "--set") end
  local rp = assert(replay.open_part {
    store = st, rules = R, limits = c.limits, script_version = c.script_version, batch = c.batch,
    part_index = part, part_count = c.parts, part_first = c.first,
  })
  if wire.encode(rp:identity()) ~= wire.encode(c.identity) then
    -- (named as JSON: wire text is binary and would cut the message short)
    local json = require "retape.json"
    error(string.format("the ruleset loaded again from %s is not the one of the run (%s against %s)", c.spec,
                        json.encode(rp:identity()), json.encode(c.identity)), 0)
  end
  return function(text, rows) return rp:part_round(wire.decode(text), rows) end
end

return M
