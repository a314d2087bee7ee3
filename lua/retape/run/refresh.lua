-- retape.run.refresh — recomputing stale results: the later versions of a
-- ticker whose state at the end of a run changed, recomputed bucket by
-- bucket by following the rows they covered (resumable: the stale marks
-- move on with each commit), every ticker's with --rebuild, and the ones a
-- run would build on before it starts.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local json = require "retape.json"
local scopem = require "retape.scope"

local Replay = {}

-- Recomputes the stale results of the scope's tickers that a run starting
-- at bucket `start` would build on (their mark starts before it); the
-- recomputation is resumable like any refresh.  Raises what a run raises.
function Replay:refresh_before(scope, start, counters)
  local only, named = nil, nil
  if scope.tickers then named = {}; for _, T in ipairs(scope.tickers) do named[T] = true end end
  for T, mark in pairs(self.store:stale()) do
    if mark.from < start and scopem.covers(scope, T) and (not named or named[T]) then
      only = only or {}
      only[T] = true
    end
  end
  if only then self:refresh(counters, only) end
end

-- Marks every ticker stale from its first version (--rebuild).
function Replay:mark_all_stale()
  local st = self.store
  for _, T in ipairs(st:tickers()) do
    local v = st:versions(T, nil, nil, true)[1]
    if v then st:set_stale(T, { from = v.bucket }) end
  end
  st:write()
end

-- Recomputes the versions of every stale ticker from its stale bucket on,
-- following the versions it had (the rows they covered), bucket by bucket
-- with one commit each.  Nothing is deleted ahead: each commit replaces the
-- ticker's old version of that bucket and the old trades it entered from
-- that bucket up to its next version (the trade open at its first bucket
-- restored as it was then) and moves its stale mark on, so a kill leaves
-- every ticker new up to its mark and old from it on, and the next refresh
-- continues from the marks.  The store's cursor says a refresh is in
-- progress (phase "refresh") until the last commit, so any next write
-- finishes it first.
function Replay:refresh(counters, only)
  local st = self.store
  local marks = st:stale()
  local names = {}
  for T in pairs(marks) do if not only or only[T] then names[#names + 1] = T end end
  table.sort(names)
  if #names == 0 then
    -- nothing stale: the walk's last commit said a refresh follows; written
    -- as the walk's commits are (unlogged under durable = "run": a kill
    -- before the next flush leaves that empty refresh to do), so the run's
    -- first logged write, its fingerprints', flushes while they read
    local c = st:cursor()
    if c and c.phase == "refresh" then st:set_cursor(nil); st:write(self.unlogged) end
    return
  end
  local pending = st:cursor() or { phase = "refresh", identity = self:identity(), params = json.encode { refresh = true } }
  if pending.phase ~= "refresh" then error("refresh: the store holds an interrupted run", 0) end
  local plans, buckets, bucket_set = {}, {}, {}
  self:begin_run(false)
  for _, T in ipairs(names) do
    local plan = { from = marks[T].from }
    for _, v in ipairs(st:versions(T, plan.from, nil, true)) do
      local n = math.tointeger(v.rec:match('^{"n":(%d+)')) or store.decode_version(v.rec).n
      plan[v.bucket] = n
      plan[#plan + 1] = v.bucket
      if not bucket_set[v.bucket] then bucket_set[v.bucket] = true; buckets[#buckets + 1] = v.bucket end
    end
    plans[T] = plan
    if #plan == 0 then -- no version left to recompute: nothing depends on the change
      local _, prev = st:version_before(T, plan.from)
      st:delete_trades(T, plan.from, nil)
      if prev and prev.open then st:put_trade(prev.open) end
      st:set_stale(T, nil)
    end
  end
  st:write()
  table.sort(buckets)
  local steps = {}
  for bi, b in ipairs(buckets) do
    -- the tickers with a version at b: how many rows each covered, and
    -- where the ones starting here start from
    local active, follow, starts, rows = {}, {}, nil, 0
    for _, T in ipairs(names) do
      local plan = plans[T]
      if plan[b] then
        active[#active + 1] = T
        follow[T] = plan[b]
        rows = rows + plan[b]
        if not plan.started then plan.started = true; starts = starts or {}; starts[T] = plan.from end
      end
    end
    local first_step, last_step = bi == 1, bi == #buckets
    steps[bi] = {
      bucket = b, scope = { from = b, to = b, script_version = self.script_version, tickers = active },
      plans = follow, starts = starts, rows = rows,
      -- queued before the bucket's own writes: the old trades it replaces
      prepare = function()
        for _, T in ipairs(active) do
          local plan = plans[T]
          local at = (plan.at or 0) + 1
          if at == 1 then
            local _, prev = st:version_before(T, plan.from)
            if prev and prev.open then st:put_trade(prev.open) end
          end
          local nxt = plan[at + 1]
          st:delete_trades(T, b, nxt and nxt - 1 or nil)
        end
      end,
      finish = function()
        for _, T in ipairs(active) do
          local plan = plans[T]
          plan.at = (plan.at or 0) + 1
          local nxt = plan[plan.at + 1]
          st:set_stale(T, nxt and { from = nxt } or nil)
        end
        if last_step then st:set_cursor(nil)
        elseif first_step then st:set_cursor(pending) end
      end,
      after = function()
        counters.recomputed = counters.recomputed + #active
        if self.on_bucket then
          self.on_bucket { bucket = b, index = bi, total = #buckets, rows = counters.rows, trades = counters.trades,
                           errors = counters.errors, recomputing = true }
        end
      end,
    }
  end
  self:walk_steps(steps, counters)
  if #buckets == 0 then -- (every mark had nothing left to recompute)
    st:set_cursor(nil)
    st:write()
  end
end

return Replay
