-- retape.run.threads — a replay over worker threads.  Every ticker belongs
-- to one part (a stable hash of the ticker); with N threads, N worker
-- threads (retape.pool), each with its own Lua state, walk parts 1..N of
-- equal share; this state does no rule work.
-- Rounds of buckets flow through the parts: this state reads the buckets'
-- rows once and routes them (or, for large rows, lists them and each part
-- reads its own: see start_part_reads), every part runs its tickers' rows
-- in order and queues its writes, and this state commits them, one bucket
-- at a time with the cursor, while the parts walk the next rounds (a part
-- goes on to the next round posted without waiting for the others).
-- Tickers are independent (a ruleset that is not says R.cross_ticker =
-- true), so the results are the same for any number of threads.  The
-- tunables (replay.MIN_THREADED_ROWS, replay.ROUND_ROWS, replay.ROUND_DEPTH,
-- replay.ROUND_BYTES, replay.PART_READS, replay.PART_READS_MIN_BYTES) are
-- retape.replay's.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local rules = require "retape.rules"
local sandbox = require "retape.sandbox"
local pool = require "retape.pool"
local wire = require "retape.wire"
local source = require "retape.source"
local rtime = require "retape.time"
local store = require "retape.store"

local Replay = {}

-- Why this replay cannot use other threads (nil when it can).
function Replay:single_thread_reason()
  if self.R.cross_ticker then return "the ruleset keeps cross-ticker state (R.cross_ticker)" end
  if not rules.reloadable(self.R) then return "the ruleset was built or changed in Lua (nothing to load it again from)" end
  if self.trace or self.on_row then return "a trace or on_row callback runs in this state" end
  if self.trades_only then return "the store keeps trades only (a scratch store)" end
end

-- Starts (or keeps) the worker threads for a run of `rows` rows.
function Replay:use_threads(rows)
  local n = self.threads
  if n == nil then n = rows >= self.tunables.MIN_THREADED_ROWS and pool.cores() or 1 end
  if n > 1 and self:single_thread_reason() then n = 1 end
  if self.pool and self.pool:parts() == n then return end
  if self.pool then self.pool:close(); self.pool = nil end
  self.part_index, self.part_count, self.part_first = nil, nil, nil
  if n <= 1 then return end
  -- n workers walk the rows (parts 1..n); this state routes and commits
  local p, err = pool.start {
    parts = n, caller_walks = false, depth = self.tunables.ROUND_DEPTH, module = "retape.part", kv = self.store.kv,
    config = wire.encode { spec = rules.reloadable(self.R), sources = rules.sources_of(self.R), overrides = self.R.overrides, limits = self.asked_limits,
                           script_version = self.script_version or false, batch = self.batch, parts = n, first = 1,
                           identity = self:identity() },
  }
  if not p then -- the same results on one thread; say why
    self.threads_fallback = tostring(err)
    if self.on_error then self.on_error("running on one thread: " .. self.threads_fallback) end
    return
  end
  self.pool = p
  self.part_index, self.part_count, self.part_first = 0, n, 1
end

-- Starts a run (or a refresh) in every part: no working records yet.
function Replay:begin_run(continuing)
  self.continuing = continuing
  self.ticks, self.known, self.new_ids = {}, {}, {}
  self.open_held = {} -- T = {id = trade}: trades whose record the walk holds (stage_bucket)
  self.before_start = {} -- T = its version before the scope, as clear_ticker read it
  -- refresh: T = bucket from which T's stored trades are old ones this run replaces
  self.replacing = {}
  self.held_trades = self.trades_only and {} or nil
  for _, T in ipairs(self.store:tickers()) do self.known[T] = true end
  self.book = self:make_book()
  sandbox.rebase(self.R) -- the ruleset as it is now is the one run (rule state is what changes during it)
  if self.pool then
    self.pool:reset()
    self.pool:post(wire.encode { op = "begin", continuing = continuing })
    local _, _, errors = self.pool:collect()
    for i = 1, self.pool:workers() do
      if errors[i] then error(string.format("thread %d: %s", i, errors[i]), 0) end
    end
  end
end

-- One part's work in a round: the buckets of `steps` in order, from its
-- inbox.  For each bucket: counters, problems (reports), the receipts sum,
-- a rule error with its row index (the first stops the part: the main
-- state raises the first in row order), and the length of the part's
-- writes, kept in its inbox as a serialized batch (taken out of the
-- store's batch, which stays empty).  hold: the walk holds open trades'
-- records (stage_bucket).
function Replay:walk_part(steps, rows, read, hold)
  -- self.new_ids stays for the whole run: the previous round's trades may
  -- not be written yet when this one runs
  local st, out, run_sum = self.store, {}, self.rows_sum
  for n, step in ipairs(steps) do
    step.hold = hold -- (the round's, for every step: stage_bucket)
    local counters = { rows = 0, seen = 0, errors = 0, trades = 0 }
    self.reports, self.rows_sum = {}, 0
    self:begin_bucket()
    local opts = { plans = step.plans, starts = step.starts, only = step.bucket }
    local cur <close> = read and assert(self.part_src:rows_cursor(step.lists[self.part_index - self.part_first + 1]))
    local ok, err = pcall(self.walk_rows, self, step.bucket, cur or rows, opts, counters)
    local fail
    if not ok then fail = { self.failing_row and self.failing_row.index or -1, err, "" }
    else
      self.staging = nil
      ok, err = pcall(self.stage_bucket, self, step.bucket, step)
      -- a record that cannot be stored: after every row of the bucket
      if not ok then fail = { math.maxinteger, err, self.staging or "" } end
    end
    self.failing_row = nil
    -- the writes stay in C: the inbox carries them to the committing state
    out[n] = { counters = counters, reports = self.reports, sum = self.rows_sum, fail = fail, len = rows:keep(st.batch) }
    st:discard()
    if fail then break end
  end
  self.reports, self.rows_sum = nil, run_sum
  return out
end

-- A round's reply, per bucket: rows, seen, errors, trades, receipts sum,
-- length of its writes (packed: a bucket of a few rows would otherwise pay
-- more to carry its counters than to walk them), then, when some bucket
-- had problems or a rule error, { [n] = { reports =, fail = } } as wire text.
local BUCKET_REPLY = "<i8i8i8i8i8i8"

-- Opens this part's own connection to the receipts file `db` (once per
-- file) and holds a new snapshot of it for the walk (op "read"; released
-- by op "release", and by "begin" or the next "read" should a walk have
-- ended without it).  It does not wait for a writer's lock: a file being
-- committed to in rollback-journal mode fails at once, and the main state
-- routes the rows instead.  Raises when it cannot.
function Replay:hold_part_reads(db)
  self:release_part_reads()
  if self.part_src and self.part_src_path ~= db then
    self.part_src:close()
    self.part_src = nil
  end
  if not self.part_src then
    self.part_src = assert(source.open(db))
    self.part_src_path = db
    self.part_src:busy_timeout(0)
  end
  assert(self.part_src:snapshot(true))
  self.part_holds = true
end

function Replay:release_part_reads()
  if self.part_holds then
    self.part_holds = nil
    self.part_src:snapshot(false)
  end
end

-- A round in a worker part (the handler of retape.part): the reply; the
-- part's writes, every bucket's batch one after the other, stay in its
-- inbox (inbox:keep) for the main state (pool:append_kept).
function Replay:part_round(msg, rows)
  self.store:discard()
  if msg.op == "begin" then
    self:release_part_reads()
    self:begin_run(msg.continuing)
    return wire.encode {}
  elseif msg.op == "read" then
    local ok, err = pcall(self.hold_part_reads, self, msg.db)
    return wire.encode { error = not ok and tostring(err) or nil }
  elseif msg.op == "release" then
    self:release_part_reads()
    return wire.encode {}
  end
  local out, head, extra = self:walk_part(msg.steps, rows, msg.read, msg.hold), {}, nil
  for n, r in ipairs(out) do
    local c = r.counters
    head[n] = string.pack(BUCKET_REPLY, c.rows, c.seen, c.errors, c.trades, r.sum, r.len)
    if #r.reports > 0 or r.fail then
      extra = extra or {}
      extra[n] = { reports = r.reports, fail = r.fail }
    end
  end
  return string.pack("<I4", #out) .. table.concat(head) .. (extra and wire.encode(extra) or "")
end

-- Worker w's reply of a round (part_round) as the list of its buckets'
-- { counters, reports, sum, fail, writes = { w, offset, length } }.
local function unpack_reply(w, reply)
  local n, pos = string.unpack("<I4", reply)
  local out, at = {}, 0
  for i = 1, n do
    local rows, seen, errors, trades, sum, len
    rows, seen, errors, trades, sum, len, pos = string.unpack(BUCKET_REPLY, reply, pos)
    out[i] = { counters = { rows = rows, seen = seen, errors = errors, trades = trades }, sum = sum, reports = {},
               writes = { w, at, len } }
    at = at + len
  end
  if pos <= #reply then
    for i, e in pairs(wire.decode(reply:sub(pos))) do out[i].reports, out[i].fail = e.reports, e.fail end
  end
  return out
end

-- Appends a bucket's writes of every part ({worker, offset, length}) to
-- the store's batch.
local function append_writes(p, batch, writes)
  for _, w in ipairs(writes) do p:append_kept(batch, w[1], w[2], w[3]) end
end

-- Writes the buckets of a merged round (merge_round), in order: each
-- bucket's writes of every part with its step's finish() puts, one commit
-- per bucket, then its after().
function Replay:flush_round(ready, counters)
  local st = self.store
  for _, r in ipairs(ready) do
    if r.step.prepare then r.step.prepare() end
    -- each part's writes of a bucket stayed within the store's bound;
    -- together they may not: the bucket is to blame, no one receipt
    local ok, err = pcall(append_writes, self.pool, st.batch, r.writes)
    if not ok then
      err = sandbox.engine_message(err)
      if store.is_batch_full(err) then
        err = string.format("bucket %s: %s, the parts' writes together", rtime.format_ny(r.step.bucket), err)
      end
      error(err, 0)
    end
    if r.step.finish then r.step.finish(r.step.more, r.step.done) end
    st:write(self.unlogged)
    if r.step.after then
      -- after() sees the counters as they were at the end of its bucket, as on one thread
      local now = {}
      for k, v in pairs(r.counts) do now[k], counters[k] = counters[k], v end
      r.step.after(r.step.done, r.step.more)
      for k, v in pairs(now) do counters[k] = v end
    end
  end
end

-- Posts the next round, steps i..j: the workers walk it as soon as they
-- are done with the rounds before (see walk_rounds: how many are in
-- flight).  When the parts read their own rows (self.part_reads), this
-- state lists each bucket's rows (rowids, no payloads) and the message
-- carries each part's list; else it routes the rows into the parts'
-- inboxes and returns the bytes they take there.
function Replay:post_round(steps, i, j)
  local p, read = self.pool, self.part_reads
  p:reset()
  local msg, bytes = {}, 0
  for k = i, j do
    local step, lists = steps[k], nil
    if read then
      lists, step.done, step.more = self.src:list_parts(step.bucket, step.scope, p:workers(), step.first or 0, step.stop)
    else
      local cur <close> = assert(self.src:cursor(step.bucket, step.scope))
      local b
      step.done, step.more, b = p:route(cur, step.first or 0, step.stop)
      bytes = bytes + b
    end
    msg[#msg + 1] = { bucket = step.bucket, plans = step.plans, starts = step.starts, lists = lists, last = step.last }
  end
  -- (a walk's steps all hold open trades or none: said once a round)
  p:post(wire.encode { op = "walk", steps = msg, read = read or nil, hold = steps[i].hold })
  return bytes
end

-- Whether the parts may read their own rows: of a receipts file this
-- state knows the path of, with replay.PART_READS on.
function Replay:part_reads_possible()
  return self.db_path ~= nil and self.tunables.PART_READS and true or false
end

-- The average payload size of the first rows (up to 64) of a step's bucket.
function Replay:sample_row_bytes(step)
  local cur <close> = assert(self.src:cursor(step.bucket, step.scope))
  local rows, bytes = cur:fetch(64, false), 0
  for _, r in ipairs(rows) do bytes = bytes + #(r.payload_json or "") end
  return #rows > 0 and bytes // #rows or 0
end

-- Asks the parts to read their own rows for a walk: each opens the receipts
-- file (once) and holds a snapshot of it until stop_part_reads; this state
-- lists each bucket's rows in its own snapshot, and a part looks its rows
-- up by rowid in its snapshot, which began after this state's: a row it
-- cannot find as listed (deleted or rewritten by another program in
-- between) fails the run, naming its bucket, position and rowid; rows
-- committed later are not listed.  When one part cannot open the file (or hold the snapshot),
-- every part lets go and this state routes the rows instead.  Sets
-- self.part_reads (true or nil).
function Replay:start_part_reads()
  self.part_reads = nil
  local p = self.pool
  p:reset()
  p:post(wire.encode { op = "read", db = self.db_path })
  local replies, _, errors = p:collect()
  local ok = true
  for w = 1, p:workers() do
    if errors[w] or wire.decode(replies[w]).error then ok = false end
  end
  if not ok then return self:stop_part_reads(true) end
  self.part_reads = true
end

-- The parts let go of their snapshots of the receipts (after a walk that
-- started part reads, or when starting them failed).
function Replay:stop_part_reads(always)
  if not (self.part_reads or always) then return end
  self.part_reads = nil
  local p = self.pool
  p:reset()
  p:post(wire.encode { op = "release" })
  local _, _, errors = p:collect()
  for w = 1, p:workers() do
    if errors[w] then error(string.format("thread %d: %s", w, errors[w]), 0) end
  end
end

-- Merges the oldest round posted (steps i..j; the workers' replies, writes
-- and errors as pool:collect returned them): counters, problems in row
-- order, and each bucket's writes, which it returns to be written
-- (flush_round).  Writing rounds late is safe: a part reads from the store
-- only what was committed before the run (a ticker's earlier versions the
-- first time it appears, clean-slate marks) and remembers the trade ids the
-- run made (new_ids).  A rule error stops the run at its bucket: the
-- buckets before it are written, as on one thread, and nothing after it.
function Replay:merge_round(steps, i, j, counters, replies, errors)
  local p = self.pool
  local parts = {}
  for w = 1, p:workers() do
    if errors[w] then error(string.format("thread %d: %s", w, errors[w]), 0) end
    parts[#parts + 1] = unpack_reply(w, replies[w])
  end
  local ready = {}
  for k = i, j do
    local step, n = steps[k], k - i + 1
    local reports, first_fail, seq, writes = {}, nil, 0, {}
    for _, out in ipairs(parts) do
      local r = out[n]
      if r then
        for key, v in pairs(r.counters) do counters[key] = counters[key] + v end
        self.rows_sum = (self.rows_sum + r.sum) & 0xffffffff
        for _, e in ipairs(r.reports) do seq = seq + 1; e[4] = seq; reports[#reports + 1] = e end
        local f = r.fail
        if f and (not first_fail or f[1] < first_fail[1] or (f[1] == first_fail[1] and f[3] < first_fail[3])) then
          first_fail = f
        end
        writes[#writes + 1] = r.writes
      end
    end
    -- problems in row order, up to the first rule error (which stops the run)
    table.sort(reports, function(x, y)
      if x[1] ~= y[1] then return x[1] < y[1] end
      if x[2] ~= y[2] then return x[2] < y[2] end
      return x[4] < y[4]
    end)
    for _, r in ipairs(reports) do
      if first_fail and r[1] >= first_fail[1] then break end
      if self.on_error then self.on_error(r[3]) end
    end
    if first_fail then
      self:flush_round(ready, counters)
      error(first_fail[2], 0)
    end
    self.kept_rows = self.kept_rows + (step.rows or 0)
    for _, w in ipairs(writes) do self.kept_bytes = self.kept_bytes + w[3] end
    ready[#ready + 1] = { step = step, writes = writes,
                          counts = { rows = counters.rows, seen = counters.seen, trades = counters.trades, errors = counters.errors } }
  end
  return ready
end

-- Walks a list of bucket steps over the parts (see walk_bucket) in rounds
-- of up to tunables.ROUND_ROWS rows and ROUND_TARGET_BYTES of them: up to
-- ROUND_DEPTH rounds holding up to ROUND_BYTES of rows are posted ahead,
-- so that a part whose share of a round is smaller goes on with the next
-- one instead of waiting.  This state merges the oldest, posts the next
-- (into another slot of the pool) and then writes the oldest in bucket
-- order, so the parts walk while it commits, even with one round in flight
-- (full-size bodies on two threads: a day 0.93-0.97x the time, five days
-- 0.88x, +3 MB peak RSS).  When anything raises, the rounds in flight are
-- waited for (and dropped) first; a routing error only after the merged
-- round is committed, as on one thread.
function Replay:walk_rounds(steps, counters)
  local p, st, tun = self.pool, self.store, self.tunables
  assert(st.batch:count() == 0, "walk_rounds: the store has queued writes")
  -- large rows (PART_READS_MIN_BYTES on average, in a sample of the
  -- first bucket): the parts read their own
  self.part_reads, self.kept_rows, self.kept_bytes = nil, 0, 0
  local read = false
  if #steps > 0 and self:part_reads_possible() and self:sample_row_bytes(steps[1]) >= tun.PART_READS_MIN_BYTES then
    self:start_part_reads()
    read = self.part_reads ~= nil
  end
  self.walk_reads = self.walk_reads ~= false and read -- false once a threaded walk of the run routed
  -- a round: the next buckets while their rows stay within ROUND_ROWS and,
  -- at the size per row measured so far, ROUND_TARGET_BYTES (at least one
  -- bucket; the first round ROUND_FIRST_ROWS at most, sizes unknown yet).
  -- The size that counts is what a round holds in memory while in flight:
  -- the rows routed to the inboxes, or, when the parts read their own rows,
  -- the writes they keep for this state (measured at merge_round).
  local routed_rows, routed_bytes, next_step = 0, 0, 1
  local function measured()
    if read then return self.kept_rows, self.kept_bytes end
    return routed_rows, routed_bytes
  end
  local function next_round()
    local i = next_step
    local limit = math.min(tun.ROUND_ROWS, tun.ROUND_FIRST_ROWS)
    local rows_known, bytes_known = measured()
    if rows_known > 0 then
      limit = math.max(1, math.min(tun.ROUND_ROWS, tun.ROUND_TARGET_BYTES * rows_known // math.max(1, bytes_known)))
    end
    local j, rows = i, steps[i].rows or 0
    while j < #steps and rows + (steps[j + 1].rows or 0) <= limit do
      j = j + 1
      rows = rows + (steps[j].rows or 0)
    end
    next_step = j + 1
    return { i, j, rows = rows }
  end
  local queue, held = {}, 0
  -- posts rounds while fewer than `depth` are in flight and they hold less
  -- than ROUND_BYTES (at least one; one until a size was measured)
  local function post_more(depth)
    while next_step <= #steps and #queue < depth and (#queue == 0 or (held < tun.ROUND_BYTES and measured() > 0)) do
      local r = next_round()
      r.bytes = self:post_round(steps, r[1], r[2])
      if read then
        r.bytes = self.kept_rows > 0 and r.rows * self.kept_bytes // self.kept_rows or 0
      else
        routed_rows, routed_bytes = routed_rows + r.rows, routed_bytes + r.bytes
      end
      held = held + r.bytes
      queue[#queue + 1] = r
    end
  end
  local ok, err = pcall(function()
    post_more(tun.ROUND_DEPTH)
    while #queue > 0 do
      local r = table.remove(queue, 1)
      local replies, _, errors = p:collect()
      held = held - r.bytes
      local ready = self:merge_round(steps, r[1], r[2], counters, replies, errors)
      -- one slot stays with this round's writes until they are written
      local posted, post_err = pcall(post_more, tun.ROUND_DEPTH - 1)
      self:flush_round(ready, counters)
      if not posted then error(post_err, 0) end
      post_more(tun.ROUND_DEPTH)
    end
  end)
  if not ok then
    while p:in_flight() > 0 do p:collect() end -- the workers are done before anything raises
    st:discard()
    pcall(self.stop_part_reads, self)
    error(err, 0)
  end
  self:stop_part_reads()
end

return Replay
