-- retape.run.clear — what a run does to the store around its scope: before
-- it, the scope's previous versions and trades of its tickers removed (the
-- trades open at its start restored), the clean-slate marks updated and
-- the later versions marked stale; after it, the stale marks whose later
-- versions turn out to depend on an unchanged state dropped.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local fnv1a32 = require("retape.ingest").fnv1a32
local scopem = require "retape.scope"

local BUCKET_MS = scopem.BUCKET_MS

local Replay = {}

-- The clean-slate marks of [from, to] as one text (equal when they are).
function Replay:marks_print(from, to)
  local parts = {}
  for _, m in ipairs(self.store:marks(from, to)) do parts[#parts + 1] = m.bucket .. m.ticker .. m.text end
  return table.concat(parts, "|")
end

-- Clears one ticker's part of a scope (see clear_scope): its versions and
-- the trades it entered from `start` to the scope's end, the trade open at
-- the start restored as it was then, its later versions marked stale.
-- span: {keys, last, after}, T's versions from `start` on as
-- store:versions_from lists them.  Records what it did in out[T] =
-- {purged, replaced, stale}.
function Replay:clear_ticker(T, scope, start, out, span)
  local st = self.store
  local b, text = st:version_text_before(T, start)
  local prev = b and store.decode_version_of(T, b, text) or nil
  -- the walk starts T from this same version (nothing of T before `start`
  -- changes in the run, and the scope's versions go): handed to it
  -- (Replay:ticker) decoded, instead of read and decoded again (one seek
  -- over every sorted run of the store a ticker); on one thread (the parts
  -- read their own).  (What of it is put here, the open trade, is encoded
  -- now: the walk may change the tables after.)
  if self.before_start and not self.pool then self.before_start[T] = { start = start, bucket = b, rec = prev } end
  -- T's last version at or before the scope's end: its last one inside,
  -- else the one before it
  local old_end = span.last or text
  st:delete_version_keys(span.keys)
  local c = { replaced = #span.keys, purged = st:delete_trades(T, start, scope.to + BUCKET_MS - 1), stale = false }
  out[T] = c
  if prev and prev.open then st:put_trade(prev.open) end
  -- Later versions were computed from the old end of the scope: stale
  -- unless the new end turns out the same (settle_stale).  A mark from
  -- before the scope's start stays: the run itself starts from a stale state.
  local later = span.after
  local mark = st:stale_of(T)
  if later and not (mark and mark.from < start) then
    local rest = mark and mark.from > scope.to and mark.from or nil
    -- the trade open at the old end of the scope carries on into the later
    -- versions: keep its final record to put back if they stay valid
    local keep_id, keep
    local old_open = old_end and store.decode_version(old_end).open
    if old_open then keep_id, keep = old_open.id, st:trade_text(old_open.id) end
    st:set_stale(T, { from = later, expect = fnv1a32(old_end or ""), rest = rest, keep_id = keep_id, keep = keep })
    c.stale = true
  elseif mark and not later and mark.from >= start then
    st:set_stale(T, nil) -- the marked versions are inside the scope: this run recomputes them
  end
end

-- The tickers of `scope` the store knows: the scope's own list, or every
-- stored ticker it covers.
function Replay:stored_tickers_of(scope)
  if scope.tickers then return scope.tickers end
  local names = {}
  for _, T in ipairs(self.store:tickers()) do if scopem.covers(scope, T) then names[#names + 1] = T end end
  return names
end

-- Before a killed run's walk goes on from bucket `next_bucket`: the walk
-- held the records of trades still open (stage_bucket, run/bucket.lua), so
-- the store may hold an older record of such a trade, or none.  Each
-- ticker of the scope with a version in [from, next_bucket) gets the
-- record of the trade open in its last one written again from there (the
-- trade as the walk had it).  Queued in the store's batch.
function Replay:resync_open_trades(scope, from, next_bucket)
  local st = self.store
  for _, T in ipairs(self:stored_tickers_of(scope)) do
    local b, rec = st:version_before(T, next_bucket)
    if b and b >= from and rec.open then st:put_trade(rec.open) end
  end
end

-- Prepares the store for a run of `scope` starting at bucket `start`:
-- removes the scope's previous versions and trades of its tickers,
-- restores the trades that were open at its start, updates the clean-slate
-- marks, and marks later versions stale.  Queued in the store's batch (the
-- caller commits it with the cursor).  Returns trades purged, versions
-- replaced, and the expectations to check at the end.
function Replay:clear_scope(scope, start)
  local st = self.store
  local names = self:stored_tickers_of(scope)
  local purged, replaced, expect = 0, 0, {}
  for _, T in ipairs(names) do
    -- a ticker with no version from the start on has nothing to replace,
    -- no trade entered since, and no later result to mark; what it has
    -- is read in the same scan (a one-bucket re-run of every ticker read
    -- each one's versions four times, one seek each)
    local keys, last, after = st:versions_from(T, start, scope.to)
    if #keys > 0 or after then
      self:clear_ticker(T, scope, start, expect, { keys = keys, last = last, after = after })
    end
  end
  for _, c in pairs(expect) do purged, replaced = purged + c.purged, replaced + c.replaced end
  for T in pairs(expect) do if not expect[T].stale then expect[T] = nil end end
  -- clean-slate marks inside the scope are replaced by this run's
  local all = scope.tickers == nil
  local inside = {}
  if scope.tickers then for _, T in ipairs(scope.tickers) do inside[T] = true end end
  for _, m in ipairs(st:marks(start, scope.to)) do
    if all or inside[m.ticker] then st:delete_mark(m.bucket, m.ticker)
    elseif m.ticker == "*" then
      for T in pairs(inside) do m.except[T] = true end
      st:put_mark(m.bucket, "*", m.except)
    end
  end
  if scope.clean and start == scope.from then
    if all then st:put_mark(start, "*", {})
    else for _, T in ipairs(scope.tickers) do st:put_mark(start, T) end end
  end
  return purged, replaced, expect
end


-- After a run: stale marks whose later versions turn out to depend on an
-- unchanged state are dropped.  Written as the walk's commits are
-- (unlogged under durable = "run": a kill before the next flush leaves the
-- marks, and a refresh recomputes what they cover, to the same results),
-- so the run's one flush is its fingerprints', overlapping their reads.
function Replay:settle_stale(scope, expect, marks_before)
  local st = self.store
  local same_marks = self:marks_print(scope.from, scope.to) == marks_before
  for T in pairs(expect) do
    local mark = st:stale_of(T)
    if mark and mark.expect and same_marks and fnv1a32(st:version_text_upto(T, scope.to) or "") == mark.expect then
      if mark.keep_id then st:put_trade_text(mark.keep_id, mark.keep) end
      st:set_stale(T, mark.rest and { from = mark.rest } or nil)
    end
  end
  st:write(self.unlogged)
end

return Replay
