-- retape.run.pending — what a killed run left pending (the store's cursor):
-- finished first, with its own parameters, whatever the next call is;
-- resumed when the call asks for it; superseded by a rebuild of other
-- rules; refused, naming the command that finishes it, when other rules
-- would have to go on with it.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local json = require "retape.json"
local scopem = require "retape.scope"
local manifest = require "retape.manifest"

local Replay = {}

-- A copy of run params with some changed (false removes a key).
local function copy_params(params, changes)
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  for k, v in pairs(changes) do if v == false then p[k] = nil else p[k] = v end end
  return p
end

-- Refuses to go on over work pending with other rules: naming it and the
-- command that finishes it.
local function check_pending_identity(self, pending, identity)
  local st = self.store
  local id = pending.identity
  if id and json.encode(id) ~= json.encode(identity) then
    local recipe = st:recipe()
    local named = recipe and manifest.describe_differences(manifest.differences(recipe, self.R, self.script_version), 6)
    scopem.param_error("%s holds an interrupted %s (%s) of rules '%s' (config %s, sources %s)%s; finish it first with "
      .. "'retape replay --state %s --resume' (it reuses the store's recorded rules and settings), or give --rebuild "
      .. "(these rules recompute everything, the interrupted scope too), or replay into another --state",
      st.path or "the store", pending.phase == "refresh" and "recomputation" or "run", pending.params or "?",
      id.rules, id.config, id.sources, (named and named ~= "") and (": " .. named) or "", st.path or "DIR")
  end
end

-- Finishes what a killed run left pending (the rest of its walk, or its
-- recomputation of later results) before another call writes: resumed
-- with its own parameters, its manifest recorded as a run of its own.
function Replay:finish_pending(pending, identity)
  check_pending_identity(self, pending, identity)
  local p = json.decode(pending.params or "{}")
  if pending.phase == "refresh" then p = { refresh = true, resume = true }
  else p.resume = true end
  local r = self:run_in_snapshot(p)
  self.finished_pending = { params = pending.params, phase = pending.phase or "run", rows = r.rowsProcessed,
                            recomputed = r.recomputed }
end

-- Settles what a killed run left pending before a call with `params` (the
-- rules' identity `identity`) writes: finished first (a run of its own),
-- run again first by a rebuild of other rules, continued by a refresh, or
-- taken over by a resume.  Returns the params the call runs.  Raises a
-- param error for nothing to resume or pending work of other rules.
function Replay:settle_pending(params, identity)
  local st = self.store
  -- what a killed run left pending is finished first, whatever this call is
  local pending = st:cursor()
  self.finished_pending = nil
  local scoped = params.date or params.from or params.to
  local superseding = self.superseding
  self.superseding = nil
  if superseding then -- (a rebuild running the scope of pending work of other rules: below)
  elseif pending and params.rebuild and pending.identity and json.encode(pending.identity) ~= json.encode(identity) then
    -- other rules cannot finish it and these recompute everything: the
    -- rebuild first runs the interrupted scope again (a pending
    -- recomputation needs nothing more: the rebuild recomputes it all)
    if pending.phase ~= "refresh" then
      self.superseding = true
      local r = self:run_in_snapshot(copy_params(json.decode(pending.params or "{}"), { rebuild = true, resume = false }))
      self.finished_pending = { params = pending.params, phase = "run", rows = r.rowsProcessed, recomputed = r.recomputed }
      params = copy_params(params, { rebuild = false })
      self.rows_sum = 0
    end
  elseif pending and pending.phase == "refresh" and params.refresh and not scoped then
    check_pending_identity(self, pending, identity) -- a refresh continues the one in progress
  elseif pending and not params.resume then
    self:finish_pending(pending, identity)
    self.rows_sum = 0
  elseif params.resume then
    if not pending then
      if st:identity() or not scoped then
        scopem.param_error("nothing to resume: the store holds no interrupted run (see '%s')",
          st.path and ("retape status --state " .. st.path) or "retape status")
      end
      -- killed before its first commit: nothing of it is stored, so resuming it is running it
      params = copy_params(params, { resume = false })
    else
      check_pending_identity(self, pending, identity)
      if pending.phase == "refresh" then params = { refresh = true, resume = true } -- whatever scope is named
      elseif not scoped then params = copy_params(json.decode(pending.params or "{}"), { resume = true }) end
    end
  end
  return params
end

return Replay
