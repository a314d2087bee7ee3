-- retape.live — the live engine: receipts replayed as they arrive, by the
-- replay engine's own scoped runs, so that the store always ends equal to
-- one fresh replay of the receipts stored so far.
--
--   local lv = assert(live.open { db = "receipts.db", state = "r.state", writable = true })
--   lv:store(rows)        -- webhook rows (import.row_from_webhook): INSERT OR IGNORE, committed
--                         -- (or live.receiver(db):store(rows), in another thread or process)
--   local done = lv:catch_up()   -- replays what the receipts file gained
--   lv:close()
--
-- The store keeps a watermark (store:follow(): the receipts file and the
-- last rowid replayed).  A pass holds one snapshot of the file from its
-- start to its end: the new watermark is the snapshot's last rowid, and
-- every run of the pass reads that snapshot, so the pass ends equal to one
-- fresh replay of exactly the rows up to it (a row stored meanwhile waits
-- for the next pass, whichever bucket it is in).  catch_up() reads the
-- (bucket, ticker) pairs of the rows after the watermark and re-runs each
-- pair's bucket for those tickers (replay.run { date, bucket, ticker }), in bucket order;
-- a day that gained receipts in many buckets at once (a first run, a
-- backlog) is re-run whole.  A receipt that arrives late (its bucket, or its
-- place in (ts, receipt_id) order, already passed) is just one more re-run of
-- its bucket: the later results it changes are marked stale by that run and
-- recomputed before any run builds on them, or at the end of the pass.  Only then does the watermark move, so
-- a pass that is killed is done again from the same watermark (every run
-- replaces its scope, so doing one twice changes nothing).  The rows come
-- from anyone: this process's webhooks, an import or the app's own sync in
-- another process.
local replay = require "retape.replay"
local source = require "retape.source"
local rtime = require "retape.time"
local sql = require "retape.sql"
local manifest = require "retape.manifest"
local core = require "retape.core"

local M = {}
local Live = {}
Live.__index = Live

-- A day that gained rows in at least this many buckets is re-run whole
-- (one threaded run) rather than bucket by bucket.
M.WHOLE_DAY_BUCKETS = 12
-- The receipts file's log is copied into it (a checkpoint) after a pass
-- once this many rows were added since the last one: the receiver's
-- commits never do it (their answers would wait for its fsyncs).
M.CHECKPOINT_ROWS = 256

---------------------------------------------------------------------------
-- storing receipts (any process or thread: the store is not needed)

local Receiver = {}
Receiver.__index = Receiver

-- receiver(db) -> receiver | nil, message: stores webhook rows into the
-- receipts file `db`, created if needed (with the original DDL).
function M.receiver(db)
  local writer, werr = require("retape.ingest").writer(db, math.maxinteger >> 33)
  if not writer then return nil, werr end
  -- a commit survives a killed process without an fsync (as the state store's writes)
  local ok, e = pcall(writer.wal, writer)
  if not ok then writer:close(); return nil, tostring(e) end
  return setmetatable({ writer = writer }, Receiver)
end

function Receiver:close()
  if self.writer then self.writer:close(); self.writer = nil end
end
Receiver.__close = Receiver.close

-- store(rows) -> {true (inserted) | false (duplicate) | error message, ...}:
-- INSERT OR IGNORE of each row, all committed together before it returns
-- (durable: a kill after it loses none).  When the commit fails, every
-- entry is the error.
function Receiver:store(rows)
  local w, out = self.writer, {}
  for i, row in ipairs(rows) do
    local ok, inserted = pcall(w.insert, w, row)
    if ok then out[i] = inserted else out[i] = tostring(inserted) end
  end
  local ok, err = pcall(w.commit, w)
  if not ok then
    for i in ipairs(out) do out[i] = tostring(err) end
  end
  return out
end

---------------------------------------------------------------------------
-- replaying them

-- open(opts) -> live | nil, message.  opts: db (path), state (path or an
-- open retape.store), rules (name, path or table), script_version (as
-- replay.open), on_error, on_bucket, threads; writable = true: the
-- receipts file is created if needed (with the original DDL) and store()
-- may be called; checkpoint (default: writable): the passes checkpoint
-- the file (its receivers' commits never do: `retape serve`), not left to
-- the file's own writer (`replay --follow` beside the app's).
function M.open(opts)
  local writer
  if opts.writable then
    local werr
    writer, werr = M.receiver(opts.db)
    if not writer then return nil, werr end
  end
  -- the replay reads this source, whose snapshot each pass holds (runs nest in it)
  local src, serr = source.open(opts.db)
  if not src then if writer then writer:close() end; return nil, serr end
  local rp, err = replay.open { db = src, db_path = opts.db, state = opts.state, rules = opts.rules,
    script_version = opts.script_version, on_error = opts.on_error, on_bucket = opts.on_bucket,
    threads = opts.threads, manifest = false }
  if not rp then src:close(); if writer then writer:close() end; return nil, err end
  local db, derr = sql.open(opts.db)
  if not db then rp:close(); src:close(); if writer then writer:close() end; return nil, derr end
  local self = setmetatable({ rp = rp, src = src, st = rp:state_store(), db_path = opts.db, db = db, writer = writer,
    started = core.now_ms(), checkpoint = opts.checkpoint == nil and opts.writable or opts.checkpoint,
    counts = { receipts = 0, duplicates = 0, passes = 0, runs = 0, rows = 0, recomputed = 0 } }, Live)
  return self
end

function Live:close()
  if self.writer then self.writer:close(); self.writer = nil end
  if self.db then self.db:close(); self.db = nil end
  if self.rp then self.rp:close(); self.rp = nil end
  if self.src then self.src:close(); self.src = nil end
end
Live.__close = Live.close

-- store(rows) -> as Receiver:store (the rows stored by this live engine's
-- own receiver), counted for the session's manifest.
function Live:store(rows)
  local out = assert(self.writer, "live: opened without writable"):store(rows)
  for _, v in ipairs(out) do
    if v == true then self.counts.receipts = self.counts.receipts + 1
    elseif v == false then self.counts.duplicates = self.counts.duplicates + 1 end
  end
  return out
end

-- The rows after the watermark up to `top` (the last rowid of the pass's
-- snapshot: rows up to it are exactly those the snapshot holds, as a row
-- stored later gets a greater rowid): {from,
-- top, buckets = {{bucket, tickers, n = rows}} in order,
-- counted = {[day] = {[bucket] = rows up to top}}}.  counted holds the
-- days of those rows whose receipts this session has not counted yet (the
-- days it has are kept up to date by adding each pass's rows: the day's
-- fingerprint, as manifest.day_prints counts it, without reading the day
-- again on every pass).
function Live:pending(top)
  local mark = self.st:follow()
  local from = (mark and mark.db == self.db_path) and math.tointeger(mark.rowid) or 0
  if self.counted_at ~= from then self.counts_by_day, self.counted_at = {}, nil end
  local db, sv = self.db, self.rp:version_kept()
  local filter = " AND typeof(bucket_5m) = 'integer'" .. (sv and " AND (script_version = ? OR script_version IS NULL)" or "")
  db:exec("BEGIN")
  local ok, pairs_, counted = pcall(function()
    local rows = db:rows("SELECT bucket_5m AS b, ticker AS t, count(*) AS n FROM ingest_receipts WHERE rowid > ? AND rowid <= ?"
      .. filter .. " GROUP BY bucket_5m, ticker ORDER BY bucket_5m, ticker", from, top, sv)
    local counted = {}
    for _, r in ipairs(rows) do
      local day = rtime.ny_date(r.b)
      local open, close = rtime.session(day)
      if r.b >= open and r.b <= close and not self.counts_by_day[day] and not counted[day] then
        local c = {}
        for _, b in ipairs(db:rows("SELECT bucket_5m AS b, count(*) AS n FROM ingest_receipts WHERE bucket_5m BETWEEN ? AND ?"
            .. " AND rowid <= ?" .. filter .. " GROUP BY bucket_5m", open, close, top, sv)) do
          c[b.b] = b.n
        end
        counted[day] = c
      end
    end
    return rows, counted
  end)
  db:exec("COMMIT")
  if not ok then error(pairs_, 0) end
  local buckets, last = {}, nil
  for _, r in ipairs(pairs_) do
    if not last or last.bucket ~= r.b then
      last = { bucket = r.b, tickers = {}, n = 0 }
      buckets[#buckets + 1] = last
    end
    last.tickers[#last.tickers + 1] = r.t
    last.n = last.n + r.n
  end
  return { from = from, top = top, buckets = buckets, counted = counted }
end

-- The receipts of each day of a pass as of its end (p: pending()): {[day]
-- = {[bucket] = rows}} for the days in `order`.
function Live:day_counts(p, order)
  local out = {}
  for _, day in ipairs(order) do
    local c = p.counted[day]
    if not c then
      c = {}
      for b, n in pairs(self.counts_by_day[day]) do c[b] = n end
      local open, close = rtime.session(day)
      for _, b in ipairs(p.buckets) do
        if b.bucket >= open and b.bucket <= close then c[b.bucket] = (c[b.bucket] or 0) + b.n end
      end
    end
    out[day] = c
  end
  return out
end

-- catch_up() -> {rows = receipts' ticker-buckets re-run, runs, recomputed,
-- days = {day = true}, rowid = the new watermark, receipts = new rows,
-- tickers = the tickers they were for, sorted} | nil when nothing was new.  Raises what a run raises
-- (the watermark stays; the next call does the pass again).
function Live:catch_up()
  assert(self.src:snapshot(true))
  local ok, done = pcall(self.catch_up_in_snapshot, self)
  self.src:snapshot(false)
  if not ok then error(done, 0) end
  if self.checkpoint and done and done.rowid - (self.checkpointed or 0) >= M.CHECKPOINT_ROWS then
    -- (PASSIVE: what no reader needs any more, a writer going on meanwhile;
    -- failing is harmless: the log only grows until the next one)
    pcall(self.db.exec, self.db, "PRAGMA wal_checkpoint(PASSIVE)")
    self.checkpointed = done.rowid
  end
  return done
end

function Live:catch_up_in_snapshot()
  local p = self:pending(assert(self.src:last_rowid()))
  local st, rp = self.st, self.rp
  if p.top == p.from and not next(st:stale()) then return nil end
  -- the pairs by New York day, inside the session (a replay covers nothing else)
  local days, order = {}, {}
  for _, b in ipairs(p.buckets) do
    local day = rtime.ny_date(b.bucket)
    local open, close = rtime.session(day)
    if b.bucket >= open and b.bucket <= close then
      if not days[day] then days[day] = {}; order[#order + 1] = day end
      local d = days[day]
      d[#d + 1] = b
    end
  end
  table.sort(order)
  local done = { rows = 0, runs = 0, recomputed = 0, days = {}, rowid = p.top, receipts = 0, tickers = {} }
  local seen = {}
  for _, b in ipairs(p.buckets) do
    done.receipts = done.receipts + b.n
    for _, T in ipairs(b.tickers) do
      if not seen[T] then seen[T] = true; done.tickers[#done.tickers + 1] = T end
    end
  end
  table.sort(done.tickers)
  -- A late receipt's bucket run marks the later results it changes stale; a
  -- later run of the ticker recomputes them first (replay's refresh_before),
  -- and the pass ends with a refresh of what is left.
  local function refresh()
    if next(st:stale()) then
      local resp = rp:run { refresh = true }
      done.recomputed = done.recomputed + (resp.recomputed or 0)
    end
  end
  for _, day in ipairs(order) do
    local list = days[day]
    if #list >= M.WHOLE_DAY_BUCKETS then
      local resp = rp:run { date = day }
      done.runs, done.rows = done.runs + 1, done.rows + resp.rowsProcessed
      done.recomputed = done.recomputed + (resp.recomputed or 0)
    else
      for _, b in ipairs(list) do
        local resp = rp:run { date = day, bucket = b.bucket, ticker = b.tickers, known_tickers = true }
        done.runs, done.rows = done.runs + 1, done.rows + resp.rowsProcessed
        done.recomputed = done.recomputed + (resp.recomputed or 0)
      end
      -- the day's coverage as a whole-day replay records it (every ticker)
      st:set_coverage(day, { all = true, tickers = {} })
    end
    done.days[day] = true
  end
  refresh()
  -- the receipts each replayed day covered, as a replay of the day records them
  local counts, prints = self:day_counts(p, order), {}
  for day, c in pairs(counts) do prints[day] = manifest.day_print(c) end
  manifest.note_day_prints(rp, prints)
  st:set_follow { db = self.db_path, rowid = p.top }
  st:write()
  for day, c in pairs(counts) do self.counts_by_day[day] = c end
  self.counted_at = p.top
  local c = self.counts
  c.passes, c.runs, c.rows, c.recomputed = c.passes + 1, c.runs + done.runs, c.rows + done.rows,
    c.recomputed + done.recomputed
  -- the session's manifest (rules, config, what it replayed), once: the runs write none
  if not self.recorded then self.recorded = true; self:record() end
  return done
end

-- record(params) writes a run manifest for the live session (the runs
-- themselves write none): what it has stored and replayed so far.  The
-- first productive catch_up() of a session writes one.
function Live:record(params)
  local c = self.counts
  local resp = { ok = true, receipts = c.receipts, duplicates = c.duplicates, passes = c.passes, runs = c.runs,
                 rowsProcessed = c.rows, recomputed = c.recomputed, stale = next(self.st:stale()) ~= nil }
  manifest.record(self.rp, params or {}, resp, { seen = c.rows }, self.started)
end

return M
