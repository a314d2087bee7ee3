-- retape.replay — re-running receipts bucket by bucket through a ruleset.
--
--   local rp = assert(replay.open { db = "receipts.db", state = "state.d" })
--   local resp = rp:run { date = "2026-02-02", clean_slate = true }
--   rp:close()
--
-- The re-run model.  A store holds, per ticker, a chain of versions (the
-- ticker's declared state after each bucket it had receipts in) and the
-- trades they made.  A run over a scope (days, tickers, one bucket or a page
-- of it):
--   1. starts every ticker of the scope from its stored version just before
--      the scope (a clean slate clears what the ruleset says and drops the
--      position), after removing the scope's previous versions and trades;
--   2. walks the scope's buckets in (bucket, ts, receipt_id) order, one
--      atomic commit per bucket together with the run cursor;
--   3. marks a ticker's later versions stale when its state at the end of the
--      scope differs from what they were computed from, then recomputes them
--      (unless cascade = false: they stay stale until `refresh`), bucket by
--      bucket, each commit replacing what it recomputed; the cursor says the
--      recomputation is pending (phase "refresh") until it ends.
-- A run first finishes what a killed one left pending (the cursor).  So any
-- sequence of runs, killed or not, ends equal to one fresh replay, in time
-- order, of what the store covers, and a scoped re-run writes only its
-- tickers' keys.
--
-- Where the code is.  This file is the front door: open, open_part, run,
-- close and what other code may read of a replay.  A replay is one object
-- (its metatable Replay) whose other methods are written by concern in
-- lua/retape/run/, each module there a table of methods added to Replay
-- below (so a method in one file calls one in another as self:name()):
--   run/ticker.lua       a ticker's working record, its book, its packed version
--   run/step.lua         one receipt through the ruleset (the C step), explain's too
--   run/bucket.lua       the walk: a bucket's rows, its staged writes, one commit
--   run/threads.lua      the worker threads: routing, parts, rounds, merging
--   run/rerun.lua        the body of run(): scope, start, clear, walk, cascade
--   run/clear.lua        the scope cleared before a run, stale marks settled after
--   run/pending.lua      what a killed run left pending: finished, resumed, refused
--   run/refresh.lua      recomputing stale results (cascade, refresh, --rebuild)
--   run/trades_only.lua  a scratch store of trades only (held trades)
-- The tunables below (M.ROUND_ROWS, ...) are read at call time as
-- self.tunables (= M), so setting replay.MIN_THREADED_ROWS takes effect.
-- Nothing outside this file and run/ reads a replay's fields.
local source = require "retape.source"
local rules = require "retape.rules"
local store = require "retape.store"
local json = require "retape.json"
local fnv1a32 = require("retape.ingest").fnv1a32
local sandbox = require "retape.sandbox"
local statem = require "retape.state"
local scopem = require "retape.scope"
local manifest = require "retape.manifest"
local results = require "retape.results"

local M = {}
local Replay = {}
Replay.__index = Replay

M.DEFAULT_SCRIPT_VERSION = scopem.DEFAULT_SCRIPT_VERSION
M.DEFAULT_BATCH = 256

M.is_param_error = scopem.is_param_error
M.ticker_list = scopem.ticker_list
M.days_between = scopem.days_between
-- reading results back (re-exported: results.lua owns them)
M.lanes, M.group_lanes, M.trades, M.runs = results.lanes, results.group_lanes, results.trades, manifest.runs
M.MANIFEST_ORDER = manifest.ORDER
M.MIN_THREADED_ROWS = 4096 -- below this, a run without --threads stays on one thread
-- Buckets are grouped into rounds of up to ROUND_ROWS rows whose texts
-- take up to ROUND_TARGET_BYTES (at the average size of the rows routed
-- before; the first round, of unknown sizes, ROUND_FIRST_ROWS rows).  A
-- round's payloads, their decoded garbage and its merged writes are held
-- at once: 1024 rows of full-size bodies (two 500-row buckets, ~5 MB) took
-- +4.4 MB of peak RSS on two threads at the same time as 512 (one bucket,
-- as the byte bound keeps them); on the real days (~235-byte bodies in
-- 24-row buckets) 1024 rows a round took 0.95-0.97x the time of 512: half
-- the rounds, each a post, a wait and a merge.
M.ROUND_ROWS = 1024
M.ROUND_TARGET_BYTES = 1 << 20
M.ROUND_FIRST_ROWS = 512
-- Rounds in flight (posted to the parts, not yet written): a part whose
-- share of a round is smaller walks on instead of waiting for the others
-- (on the real days, 2 parts would idle ~12 % at a barrier per round, ~6 %
-- with 3 in flight).  Each holds its rows' payloads until written, so
-- rounds are posted ahead only while the rows in flight take less than
-- ROUND_BYTES: routed full-size bodies (a round of one 500-row bucket is
-- ~2.5 MB, +3.7 MB of peak RSS per round in flight) keep one in flight;
-- when the parts read their own, the writes they keep count (~2.1 KB a
-- full-size row: two rounds of one bucket in flight).
M.ROUND_DEPTH = 3
M.ROUND_BYTES = 2 << 20
-- The worker threads read their own rows of a walk (each its own
-- connection to the receipts file, in a snapshot held for the walk) when
-- a sample of the first bucket's rows averages PART_READS_MIN_BYTES or
-- more: this state lists each bucket's rows (rowids, no payloads) instead
-- of reading and copying them into the parts' inboxes, and a round in
-- flight holds only the writes the parts keep for it (full-size bodies,
-- 5.2 KB, on two threads: 0.91x the time, RSS level).  Small rows are
-- routed: each part looking its rows up one by one costs more than routing
-- them (the real receipts, 235 bytes: 1.14x), and so does each part
-- scanning every row and skipping the others' (1.18x).  PART_READS =
-- false: always routed.
M.PART_READS = true
M.PART_READS_MIN_BYTES = 2048
M.HOLD_BUCKETS = 12        -- trades only: held trades are written every this many buckets
-- Rows fetched undecoded (the C step decodes each just before it runs) come
-- in batches of at most this many: a batch's payload texts live until its
-- last row has run, and the texts of 256 full-size bodies (1.3 MB) are half
-- the Lua heap of a replay, which paces the collector (measured: 32 rows
-- ran the 1-day corpus in ~10 % less CPU than 256); on small bodies the
-- extra fetch calls cost nothing measurable.
M.UNDECODED_BATCH = 32
Replay.tunables = M

-- The trace callback given a plain copy of a ruleset's trace record
-- (rules.plain_value: within KEPT_VALUES_MAX values, the ruleset's tables
-- in it copied from the read-only views rule code sees): the callback
-- reads and encodes it outside the rule's guard.  A record that cannot be
-- copied raises naming the receipt.
local function checked_trace(trace)
  if not trace then return nil end
  local plain_value = require("retape.rules.load").plain_value
  return function(r, row)
    local copy, err = plain_value(r, "R.trace_record's record")
    if not copy then error(string.format("receipt %s (%s): %s", row.receipt_id, row.ticker, err), 0) end
    return trace(copy, row)
  end
end

-- open(opts) -> replay | nil, message
--   db       receipts SQLite file (or an open retape.source)
--   state    RocksDB directory (or an open retape.kv / retape.store)
--   rules    ruleset name, path or table (default: "default")
--   script_version  scope.DEFAULT_SCRIPT_VERSION (default); false = no filter
--   batch    rows fetched per round trip (default 256; never changes results)
--   trace    function(record, row) for each processed receipt (the ruleset's
--            trace record, checked to be plain data first)
--   on_error function(message) for receipts that cannot be processed
--   on_bucket function(progress) after each committed bucket
--   durable  "bucket" (default): each bucket's commit goes through the
--            store's write-ahead log, a killed run resumes after its last
--            committed bucket; "run": buckets are committed without the
--            log (~5 % less CPU) and made durable when the run returns (and
--            whenever the store's memtable fills), a killed run resumes
--            from the last of those points.  Results are the same.
--   on_row   function(row, p, ex, stage, final, forced, rule) after each
--            processed receipt (p: the stamped payload, ex: the ticker's
--            state before it; then what the ruleset's step returned)
--   limits   {instructions = N, memory_mb = N} per receipt (retape.sandbox)
--   cascade  false: leave later results stale instead of recomputing them
--   manifest false: runs write no run manifest (the live engine records
--            one per session instead of one per receipt's bucket)
--   budget   true: time the stages of every receipt (run() returns them
--            in resp.budget, ms: fetch, step, simulate, pack, commit, total)
--            for `make bench`; one thread only
--   trades_only  true: store the trades and the run's records but no
--            per-ticker versions (lanes, views): for a scratch store read
--            only for its trades, as a sweep's variants without --keep.  The
--            trades are those of a full run.  One whole run into a new,
--            empty store (no resume, refresh, rebuild, paging or second run:
--            a param error), on one thread.
function M.open(opts)
  opts = opts or {}
  local self = setmetatable({}, Replay)
  local src, err = opts.db, nil
  if type(src) == "string" then
    src, err = source.open(src)
    if not src then return nil, err end
    self.owns_src, self.db_path = true, opts.db
  else
    self.db_path = opts.db_path -- a source object: the receipts file it reads, for the store's recipe
  end
  if not src then return nil, "replay.open: no receipts database (db)" end
  self.src = src
  local st = opts.state
  if type(st) == "table" and st.write and st.versions then
    self.store = st
  else
    if not st then self:close(); return nil, "replay.open: no state store (state)" end
    local s, serr = store.open(st)
    if not s then self:close(); return nil, serr end
    self.store, self.owns_store = s, true
  end
  local ok, perr = pcall(self.prepare, self, opts)
  if not ok then self:close(); return nil, perr end
  self.batch = opts.batch or M.DEFAULT_BATCH
  self.trace, self.on_error, self.on_bucket, self.on_row = checked_trace(opts.trace), opts.on_error, opts.on_bucket,
    opts.on_row
  self.cascade = opts.cascade ~= false
  self.manifest = opts.manifest ~= false
  if opts.durable ~= nil and opts.durable ~= "bucket" and opts.durable ~= "run" then
    self:close()
    return nil, string.format("replay.open: durable is \"bucket\" or \"run\", not %s", tostring(opts.durable))
  end
  self.unlogged = opts.durable == "run" or nil -- the buckets' commits (run/bucket.lua, run/threads.lua)
  self.threads = opts.threads
  self.trades_only = opts.trades_only or nil
  if opts.budget then self.threads, self.budget = 1, { fetch = 0, step = 0, simulate = 0, pack = 0, commit = 0 } end
  return self
end

-- open_part(opts) -> replay | nil, message: one part of a threaded replay,
-- in a worker's Lua state (retape.part): no receipts source (the main
-- state routes rows to its inbox), its own view of the store (reads only;
-- its writes go back to the main state), the tickers of part_index of
-- part_count.  opts: store (retape.store), rules, limits, script_version,
-- batch, part_index, part_count, part_first.
function M.open_part(opts)
  local self = setmetatable({ store = opts.store, owns_store = true }, Replay)
  local ok, err = pcall(self.prepare, self, opts)
  if not ok then self:close(); return nil, err end
  self.batch = opts.batch or M.DEFAULT_BATCH
  self.part_index, self.part_count, self.part_first = opts.part_index, opts.part_count, opts.part_first
  self.rows_sum = 0
  return self
end

-- Loads and checks the ruleset of opts (rules, limits, script_version) into
-- self: what every part of a replay needs, on any thread.  Raises a message.
function Replay:prepare(opts)
  local ok, R = pcall(rules.load, opts.rules)
  if not ok then error(R, 0) end
  local sok, schema = pcall(statem.compile, R)
  if not sok then error(schema, 0) end
  if type(R.trade_is_open) ~= "function" then
    error(string.format("ruleset '%s' does not say when a trade is open (R.trade_is_open)", tostring(R.name)), 0)
  end
  self.R, self.schema = R, schema
  self.store:set_order(R.trade_order)
  -- payloads decoded selectively: the fields the ruleset declares (R.fields)
  -- plus its state and view fields
  if R.fields then
    local extra = {}
    for _, k in ipairs(schema.names) do extra[#extra + 1] = k end
    for _, k in ipairs(schema.view) do extra[#extra + 1] = k end
    local fok, fs = pcall(require("retape.decode").compile, R.fields, extra)
    if not fok then error("R.fields: " .. tostring(fs), 0) end
    self.fields = fs
  end
  if opts.script_version == nil then self.script_version = M.DEFAULT_SCRIPT_VERSION
  else self.script_version = opts.script_version or nil end
  -- Rule files from users run under the sandbox limits; the rulesets shipped
  -- with the engine do not pay for the hook unless limits are asked for.
  local limits = opts.limits
  if limits then
    local l = {}
    for k, v in pairs(limits) do l[k] = math.type(v) == "float" and math.tointeger(v) or v end
    local lok, lerr = sandbox.check_limits(l)
    if not lok then error(lerr, 0) end
    limits = l
  end
  if limits or not sandbox.is_trusted(R) then
    self.limits = {}
    for k, v in pairs(sandbox.DEFAULT_LIMITS) do self.limits[k] = (limits or {})[k] or v end
  end
  self.asked_limits = limits
end

-- What code outside the replay may read of it (the sweep, the live engine,
-- the CLI, the run manifest): the ruleset it runs, its state store, the
-- script version it keeps, the selective decoding it asks of its source
-- (nil: full payloads) with a text that is equal for two replays that
-- decode alike, the checksum of the receipt ids its last run read
-- (rows_sum), the receipts its last run listed by day ({[day] = {[bucket] =
-- count}}; nil when it read only some tickers), how many threads walk its runs (1: this one), the receipts
-- source it reads and the file the store records (nil: not known), the
-- sandbox limits its rule code runs under (nil: none), and the days its
-- last check of the receipts found grown since they were replayed.
function Replay:ruleset() return self.R end
function Replay:state_store() return self.store end
function Replay:version_kept() return self.script_version end
function Replay:decoding()
  if not self.fields then return nil, "" end
  local ok, text = pcall(json.encode, { self.R.fields, self.schema.names, self.schema.view })
  return self.fields, ok and text or ""
end
function Replay:rows_read_sum() return self.rows_sum end
function Replay:listed_days() return self.listed end
function Replay:threads_used() return self.pool and self.pool:parts() or 1 end
-- whether the worker threads read their own rows in every threaded walk of
-- the last run (see run/threads.lua)
function Replay:parts_read_rows() return self.walk_reads == true end
function Replay:receipts() return self.src, self.db_path end
-- the look at the receipts file this run took (manifest.receipts_look), and
-- the one its check vouched for (to seal the store's receipts record with)
function Replay:receipts_look() return self.look end
function Replay:receipts_vouched() return self.vouched end
function Replay:rule_limits() return self.limits end
function Replay:grown_days() return self.grown or {} end

-- Replaces the on_bucket callback of open (nil: none) for the next runs.
function Replay:set_on_bucket(fn) self.on_bucket = fn end

function Replay:close()
  if self.pool then self.pool:close(); self.pool = nil end
  if self.owns_store and self.store then self.store:close() end
  if self.owns_src and self.src then self.src:close() end
  self.store, self.src = nil, nil
end
Replay.__close = Replay.close

-- The identity of the results: the ruleset, its sources, its effective
-- config and the receipts filter.  A store holds the results of one.  The
-- capital model (config.capital) is left out: it is an account the
-- statistics lay over the trades (retape.stats) and changes no result.
function Replay:identity()
  local R = self.R
  local config = R.config or json.object()
  if type(config) == "table" and rawget(config, "capital") ~= nil then
    local c = {}
    for k, v in pairs(config) do if k ~= "capital" then c[k] = v end end
    config = c
  end
  return { rules = R.name, sources = fnv1a32(json.encode(R.sources or json.object())),
           config = fnv1a32(json.encode(config)), script_version = self.script_version or false }
end

-- run(params) -> response.  params (all optional but a day):
--   date            "YYYY-MM-DD";  from, to: a range of days instead
--   ticker          "AAPL", "AAPL,AMD" or a list; nil = every ticker
--   bucket          one bucket (ms) of the day; nil = every bucket 09:30..16:00 ET
--   limit, offset   a page of rows within `bucket`
--   clean_slate     the scope's tickers start it with no position and no entry/cycle state
--   resume          continue the interrupted run of this same scope and rules
--   rebuild         recompute everything the store covers with this ruleset
--   refresh         only recompute stale results (no scope needed)
--   shard           "i/n": only the tickers of shard i of n (a stable hash of
--                   the ticker), into this store; `retape merge` combines shards
-- The response has the original endpoint's fields (spec §6.1) plus
-- buckets, errors, from/to, replaced (versions), recomputed, stale, days.
function Replay:run(params)
  -- a look at the receipts file to seal the store's day fingerprints with
  -- (retape.manifest.check_write): taken before the snapshot begins and
  -- again after, and kept only when both agree (a write in between changes
  -- it); none in a snapshot begun before (it may be older than the look)
  local look = not self.src:holding() and manifest.receipts_look(self.db_path, self.src) or nil
  -- every read of the call sees one consistent snapshot of the receipts
  assert(self.src:snapshot(true))
  if look and manifest.receipts_look(self.db_path, self.src) ~= look then look = nil end
  self.look, self.vouched = look, nil
  local ok, resp = pcall(self.run_in_snapshot, self, params or {})
  self.src:snapshot(false)
  -- what the run committed is durable when it returns, whatever `durable`
  -- (a failed run's committed buckets too: resume starts after them)
  if self.unlogged then
    local pok, perr = pcall(self.store.persist, self.store)
    if ok and not pok then ok, resp = false, perr end
  end
  if not ok then error(resp, 0) end
  return resp
end

-- The methods of run/ (see the top of this file).
for _, module in ipairs { "retape.run.ticker", "retape.run.step", "retape.run.bucket", "retape.run.threads",
                          "retape.run.rerun", "retape.run.clear", "retape.run.pending", "retape.run.refresh",
                          "retape.run.trades_only" } do
  for name, fn in pairs(require(module)) do
    assert(Replay[name] == nil, name) -- one method, one file
    Replay[name] = fn
  end
end

return M
