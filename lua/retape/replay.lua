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
local source = require "retape.source"
local rtime = require "retape.time"
local rules = require "retape.rules"
local store = require "retape.store"
local json = require "retape.json"
local core = require "retape.core"
local fnv1a32 = require("retape.ingest").fnv1a32
local sandbox = require "retape.sandbox"
local statem = require "retape.state"
local scopem = require "retape.scope"
local bookm = require "retape.book"
local manifest = require "retape.manifest"
local results = require "retape.results"
local pool = require "retape.pool"
local wire = require "retape.wire"
local copy_trade = require("retape.jsonenc").copy
local pack_view = store.pack_view
local clock = core.monotonic_ms
local stepc = require "retape.step"
local pack_versions = stepc.versions
local walk_batch = stepc.walk
local coverage = require "retape.coverage"

local M = {}
local Replay = {}
Replay.__index = Replay

M.DEFAULT_SCRIPT_VERSION = scopem.DEFAULT_SCRIPT_VERSION
M.DEFAULT_BATCH = 256
local BUCKET_MS = scopem.BUCKET_MS

M.is_param_error = scopem.is_param_error
M.ticker_list = scopem.ticker_list
M.days_between = scopem.days_between
-- reading results back (re-exported: results.lua owns them)
M.lanes, M.group_lanes, M.trades, M.runs = results.lanes, results.group_lanes, results.trades, manifest.runs
M.MANIFEST_ORDER = manifest.ORDER

-- open(opts) -> replay | nil, message
--   db       receipts SQLite file (or an open retape.source)
--   state    RocksDB directory (or an open retape.kv / retape.store)
--   rules    ruleset name, path or table (default: "default")
--   script_version  scope.DEFAULT_SCRIPT_VERSION (default); false = no filter
--   batch    rows fetched per round trip (default 256; never changes results)
--   trace    function(record) for each processed receipt (the ruleset's trace record)
--   on_error function(message) for receipts that cannot be processed
--   on_bucket function(progress) after each committed bucket
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
  self.trace, self.on_error, self.on_bucket, self.on_row = opts.trace, opts.on_error, opts.on_bucket, opts.on_row
  self.cascade = opts.cascade ~= false
  self.manifest = opts.manifest ~= false
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
  if limits or not R.trusted then
    self.limits = {}
    for k, v in pairs(sandbox.DEFAULT_LIMITS) do self.limits[k] = (limits or {})[k] or v end
  end
  self.asked_limits = limits
end

-- What code outside the replay may read of it (the sweep, the live engine):
-- the ruleset it runs, its state store, the script version it keeps, the
-- selective decoding it asks of its source (nil: full payloads) with a
-- text that is equal for two replays that decode alike, and the checksum
-- of the receipt ids its last run read (rows_sum).
function Replay:ruleset() return self.R end
function Replay:state_store() return self.store end
function Replay:version_kept() return self.script_version end
function Replay:decoding()
  if not self.fields then return nil, "" end
  local ok, text = pcall(json.encode, { self.R.fields, self.schema.names, self.schema.view })
  return self.fields, ok and text or ""
end
function Replay:rows_read_sum() return self.rows_sum end

function Replay:close()
  if self.pool then self.pool:close(); self.pool, self.inbox = nil, nil end
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

---------------------------------------------------------------------------
-- per-ticker working state

-- A ticker's working record, started from a stored version (or nothing).
function Replay:ticker_from(T, bucket, rec)
  local tk = { ticker = T, bucket = bucket }
  if rec then
    tk.state = self.schema.adopt(rec.state)
    tk.open = rec.open and self:trade_is_open(rec.open) and rec.open or false
    tk.view, tk.receipt = rec.view, rec.receipt
  else
    tk.state, tk.open = self.schema.adopt(nil), false
  end
  return tk
end

-- R.trade_is_open(trade), under the sandbox limits when the rules have them
-- (rule code, called here outside a receipt's guard).
function Replay:trade_is_open(t)
  if self.limits then return sandbox.guard(self.limits, self.R.trade_is_open, t) end
  return self.R.trade_is_open(t)
end

-- Applies the clean-slate marks between T's previous version and `bucket`.
function Replay:apply_marks(tk, bucket)
  if self.store:reset_between(tk.ticker, tk.bucket or -1, bucket) then
    tk.state = self.schema.cleared(tk.state)
    tk.open = false
  end
  tk.bucket = bucket
end

-- The ticker's working record for a receipt of `bucket` in the main walk.
function Replay:ticker(T, bucket)
  local tk = self.ticks[T]
  if tk then return tk end
  local st = self.store
  if self.continuing then
    local rec = st:version_at(T, bucket)
    if rec then
      tk = self:ticker_from(T, bucket, rec)
      tk.n, tk.lanes = rec.n, rec.lanes or {}
      self.ticks[T] = tk
      return tk
    end
  end
  local b, rec = st:version_before(T, bucket)
  tk = self:ticker_from(T, b, rec)
  self:apply_marks(tk, bucket)
  self.ticks[T] = tk
  return tk
end

---------------------------------------------------------------------------
-- one receipt

-- What a rule error says: the receipt and ticker, the rule's file:line
-- and its traceback (a limit error: which limit).  Raises.
local function rule_failed(row, e)
  local text = sandbox.is_limit_error(e) and ((not e.traceback and e.where and e.where .. ": " or "") .. e.message
    .. (e.traceback or "")) or tostring(e)
  error(string.format("receipt %s (%s): %s", row.receipt_id, row.ticker, text), 0)
end

-- One receipt runs in C (core/lua_step.c: step.walk): the ticker's working
-- record from self.ticks (self:ticker on its first receipt of the run), the
-- ruleset's step and simulate in protected calls under the sandbox limits,
-- the declared state extracted, its view fields packed (the payload dies with
-- the receipt), the receipt's lane logged; a malformed
-- payload, or one holding a declared state field of another type
-- (schema.payload_error), is reported (self:report) and skipped.
stepc.setup { guard = sandbox.guard, traceback = sandbox.traceback, extract = require("retape.jsonenc").extract,
              pick = store.pack_view, rule_failed = rule_failed }

---------------------------------------------------------------------------
-- one bucket (or a part of it), committed atomically

-- Packs a ticker's version (store.encode_version).  Its view: the view
-- fields of the ticker's last receipt, packed once (store.pack_view) into
-- tk.view_packed for this version and the ones after it until its next
-- receipt; or tk.view, a table (from the store, or when a field cannot be
-- packed).  View fields that cannot be stored (a function, nested too deep)
-- are reported and dropped, never the whole bucket.
function Replay:encode_version(tk)
  local p = tk.last_p
  if p then
    tk.last_p = nil
    local ok, packed = pcall(pack_view, p, self.schema.view)
    if ok then tk.view, tk.view_packed = nil, packed
    else tk.view, tk.view_packed = self.schema.view_of(p), nil end
  end
  local rec = { n = tk.n or 0, receipt = tk.receipt, state = tk.state or {}, lanes = tk.lanes or {}, open = tk.open or nil }
  local ok, bytes
  if tk.view_packed then
    ok, bytes = pcall(store.encode_version, rec, tk.view_packed)
    if ok then return bytes end
    rec.view = store.decode_version(tk.view_packed) -- (what fails is elsewhere: raised below)
  else
    rec.view = tk.view or {}
    ok, bytes = pcall(store.encode_version, rec)
    if ok then return bytes end
  end
  local view = {}
  for k, v in pairs(rec.view) do
    local vok, err = pcall(store.encode_version, v)
    if vok then view[k] = v
    else
      self:report(string.format("receipt %s (%s): field '%s' cannot be stored (%s); kept without it",
        tostring(tk.receipt), tk.ticker, k, err), nil, tk.ticker)
    end
  end
  rec.view = view
  return store.encode_version(rec)
end

-- Problems that do not stop a run (a malformed payload, a view field that
-- cannot be stored) go to on_error, in row order; a part on another thread
-- keeps them with the row's index for the main thread to put in order.
function Replay:report(msg, index, ticker)
  local out = self.reports
  if out then out[#out + 1] = { index or math.maxinteger, ticker or "", msg }
  elseif self.on_error then self.on_error(msg) end
end

-- Where a trade holds what JSON cannot ("history[3].note is a function"),
-- or nil; keys in order, so the answer is the same every run.
local function unstorable(v, path, depth)
  local tv = type(v)
  if tv == "function" or tv == "thread" or (tv == "userdata" and v ~= json.null) then
    return string.format("'%s' is a %s", path, tv)
  end
  if tv ~= "table" or depth > 64 then return nil end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  for _, k in ipairs(keys) do
    local p = type(k) == "string" and (path == "" and k or path .. "." .. k) or string.format("%s[%s]", path, tostring(k))
    local found = unstorable(v[k], p, depth + 1)
    if found then return found end
  end
end

-- The error of a trade that cannot be stored: the receipt and ticker that
-- last changed it, the field, and the rule code that leaves trades.
function Replay:trade_error(t, err)
  local tk = self.ticks and self.ticks[t.ticker]
  local where = unstorable(t, "", 0)
  local simulate = type(self.R.simulate) == "function" and debug.getinfo(self.R.simulate, "S")
  return string.format("receipt %s (%s): trade %s cannot be stored: %s%s", tostring(tk and tk.receipt or "?"),
    tostring(t.ticker), tostring(t.id),
    where and (where .. " (a trade holds only JSON values)") or tostring(err):gsub("^lua/retape/[%w_]+%.lua:%d+: ", ""),
    simulate and string.format(" -- left by the rules' simulate (%s:%d)", simulate.short_src, simulate.linedefined) or "")
end

-- Resets what a part gathers for one bucket.
function Replay:begin_bucket()
  self.dirty, self.trades, self.trade_list = {}, {}, {}
  self.created_at = self.book.created
end

-- Runs rows of one bucket from `rows` (a source cursor, or this part's
-- inbox) through the ruleset.  opts:
--   first, stop  with a cursor: process rows with index in [first, stop)
--                (stop nil = to the end); an inbox holds only its window
--   plans        refresh: {T = rows to follow} (the rows a stale version covered)
--   starts       refresh: {T = stale bucket} for tickers whose plan starts here
--   only         with an inbox: its rows of this bucket
-- Returns rows seen in the window and whether rows remain after it.
function Replay:walk_rows(bucket, rows, opts, counters)
  local plans, counts = opts.plans, {}
  if plans then
    for T, from in pairs(opts.starts or {}) do
      if self:owns(T) then
        self.ticks[T] = self:ticker_from(T, self.store:version_before(T, from))
        self.replacing[T] = from
      end
    end
    for T in pairs(plans) do if self:owns(T) then self:apply_marks(self.ticks[T], bucket) end end
  end
  local index, done = 0, 0
  local first, stop = opts.first or 0, opts.stop
  -- skip the rows before the window without decoding them
  while index < first do
    local skipped = rows:fetch(math.min(first - index, 4096), false, opts.only)
    if #skipped == 0 then break end
    index = index + #skipped
  end
  local more = false
  while true do
    local want = self.batch
    if stop then want = math.min(want, stop - index) end
    if want <= 0 then
      more = #rows:fetch(1, false, opts.only) > 0
      break
    end
    local t0 = self.budget and clock()
    local batch = rows:fetch(want, self.fields, opts.only)
    if t0 then self.budget.fetch = self.budget.fetch + (clock() - t0) end
    local n = #batch
    if n == 0 then break end
    done = done + walk_batch(self, batch, bucket, counters, plans, counts) -- (clears batch)
    index = index + n
  end
  self.failing_row = nil
  if plans then -- a planned version whose rows are gone: kept, empty
    for T in pairs(plans) do
      local tk = self.ticks[T]
      if self:owns(T) and not tk.lanes then
        tk.lanes, tk.n = {}, 0
        self.dirty[T] = tk
      end
    end
  end
  counters.trades = counters.trades + self.book.created - self.created_at
  return done, more
end

-- Whether this part runs ticker T (every ticker, on one thread): T's part
-- is part_first + its hash modulo part_count (the first part 1 when this
-- state only routes and commits).
function Replay:owns(T)
  return not self.part_count or pool.part_of(T, self.part_count) + (self.part_first or 0) == self.part_index
end

-- Queues the bucket's writes of this part in key order (RocksDB takes
-- sorted batches several times faster): the trades touched ("t:"), new
-- tickers ("tk:"), the versions ("v:"); then the part's tickers forget the
-- bucket's lanes.
function Replay:stage_bucket(bucket)
  local st = self.store
  local names = {}
  for T in pairs(self.dirty) do names[#names + 1] = T end
  table.sort(names)
  if #self.trade_list > 1 then
    local key = {}
    for _, t in ipairs(self.trade_list) do key[t] = store.trade_key(t.id) end
    table.sort(self.trade_list, function(x, y) return key[x] < key[y] end)
  end
  -- self.staging names what is being encoded, for a part to order its
  -- error as one thread would meet it (trades first, in key order)
  local held = self.held_trades
  for _, t in ipairs(self.trade_list) do
    self.staging = "1" .. store.trade_key(t.id)
    local ok, err
    -- trades only: what this bucket would store, held; encoded when the
    -- held trades are put (every HOLD_BUCKETS buckets, and at the end)
    if held then ok, err = pcall(copy_trade, t); if ok then held[t.id], err = err, nil end
    else ok, err = pcall(st.put_trade, st, t) end
    if not ok then error(self:trade_error(t, err), 0) end
  end
  if held then
    self.held_buckets = (self.held_buckets or 0) + 1
    if self.held_buckets >= M.HOLD_BUCKETS then self:put_held_trades() end
  end
  for _, T in ipairs(names) do
    if not self.known[T] then st:add_ticker(T); self.known[T] = true end
  end
  -- the versions, packed in C (step.versions) with no table per record;
  -- a value the store cannot keep: the path record by record, which names
  -- it (encode_version)
  local ok, list = true, nil
  if not self.trades_only then ok, list = pcall(pack_versions, self.dirty, names, self.schema.view) end
  if ok and list then st:put_versions(bucket, names, list) end
  for _, T in ipairs(names) do
    local tk = self.dirty[T]
    if self.trades_only then tk.last_p = nil
    elseif not ok then
      self.staging = "2" .. T
      st:put_version(T, bucket, self:encode_version(tk))
    end
  end
  for _, T in ipairs(names) do
    local tk = self.dirty[T]
    tk.lanes, tk.n, tk.bucket = nil, nil, bucket
  end
end

-- Walks rows of one bucket and commits them.  step:
--   bucket
--   scope        source scope (from, to, script_version, tickers)
--   first, stop, plans, starts  as walk_rows
--   rows         rows expected (an estimate, for grouping buckets into rounds)
--   prepare()    before the bucket's writes: deletions they replace (refresh)
--   finish(more, done)  before the commit: extra puts (cursor, stale marks)
--   after(done, more)   after the commit
-- Returns rows seen in the window and whether rows remain after it.
function Replay:walk_bucket(step, counters)
  self:begin_bucket()
  local done, more
  do
    local cur <close> = assert(self.src:cursor(step.bucket, step.scope))
    done, more = self:walk_rows(step.bucket, cur, step, counters)
  end
  if step.prepare then step.prepare() end
  if step.finish then step.finish(more, done) end
  local budget, t0, t1 = self.budget, nil, nil
  if budget then t0 = clock() end
  self:stage_bucket(step.bucket)
  if budget then t1 = clock() end
  self.store:write()
  if budget then budget.pack, budget.commit = budget.pack + (t1 - t0), budget.commit + (clock() - t1) end
  self.new_ids = {}
  if step.after then step.after(done, more) end
  return done, more
end

-- Walks a list of bucket steps in order (see walk_bucket): on this thread,
-- or over the parts in rounds of several buckets, each round written while
-- the next one is walked.
function Replay:walk_steps(steps, counters)
  if not self.pool then
    for _, step in ipairs(steps) do self:walk_bucket(step, counters) end
    return
  end
  local i, pending = 1, nil
  while i <= #steps do
    local j, rows = i, steps[i].rows or 0
    while j < #steps and rows + (steps[j + 1].rows or 0) <= M.ROUND_ROWS do
      j = j + 1
      rows = rows + (steps[j].rows or 0)
    end
    pending = self:walk_round(steps, i, j, counters, pending)
    i = j + 1
  end
  if pending then self:flush_round(pending, counters) end
end

---------------------------------------------------------------------------
-- threads: every ticker belongs to one part (a stable hash of the ticker);
-- with N threads, N worker threads (retape.pool), each with its own Lua
-- state, walk parts 1..N of equal share; this state does no rule work.
-- All meet at every round of buckets: this state reads the buckets' rows
-- once and routes them, every part runs its tickers' rows in order and
-- queues its writes, and this state commits them, one bucket at a time
-- with the cursor, while the parts walk the next round.  Tickers are independent (a ruleset that is not
-- says R.cross_ticker = true), so the results are the same for any number
-- of threads.

M.MIN_THREADED_ROWS = 4096 -- below this, a run without --threads stays on one thread
-- Buckets are grouped into rounds of about this many rows.  A round's
-- payloads, their decoded garbage and its merged writes are held at once:
-- 1024 rows of full-size bodies (two 500-row buckets) peaked at 88 MB on two
-- threads, 512 (one bucket) at 66 MB, at the same CPU; on the real days
-- (22-row buckets) 512 is as fast.
M.ROUND_ROWS = 512

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
  if n == nil then n = rows >= M.MIN_THREADED_ROWS and pool.cores() or 1 end
  if n > 1 and self:single_thread_reason() then n = 1 end
  if self.pool and self.pool:parts() == n then return end
  if self.pool then self.pool:close(); self.pool, self.inbox = nil, nil end
  self.part_index, self.part_count, self.part_first = nil, nil, nil
  if n <= 1 then return end
  -- n workers walk the rows (parts 1..n); this state routes and commits
  local p, err = pool.start {
    parts = n, caller_walks = false, module = "retape.part", kv = self.store.kv,
    config = wire.encode { spec = rules.reloadable(self.R), sources = rules.sources_of(self.R), overrides = self.R.overrides, limits = self.asked_limits,
                           script_version = self.script_version or false, batch = self.batch, parts = n, first = 1,
                           identity = self:identity() },
  }
  if not p then -- the same results on one thread; say why
    self.threads_fallback = tostring(err)
    if self.on_error then self.on_error("running on one thread: " .. self.threads_fallback) end
    return
  end
  self.pool, self.inbox = p, p:inbox()
  self.part_index, self.part_count, self.part_first = 0, n, 1
end

-- Starts a run (or a refresh) in every part: no working records yet.
function Replay:begin_run(continuing)
  self.continuing = continuing
  self.ticks, self.known, self.new_ids = {}, {}, {}
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
-- state raises the first in row order), and the part's writes as a
-- serialized batch (taken out of the store's batch, which stays empty).
function Replay:walk_part(steps, rows)
  -- self.new_ids stays for the whole run: the previous round's trades may
  -- not be written yet when this one runs
  local st, out, run_sum = self.store, {}, self.rows_sum
  for n, step in ipairs(steps) do
    local counters = { rows = 0, seen = 0, errors = 0, trades = 0 }
    self.reports, self.rows_sum = {}, 0
    self:begin_bucket()
    local opts = { plans = step.plans, starts = step.starts, only = step.bucket }
    local ok, err = pcall(self.walk_rows, self, step.bucket, rows, opts, counters)
    local fail
    if not ok then fail = { self.failing_row and self.failing_row.index or -1, err, "" }
    else
      self.staging = nil
      ok, err = pcall(self.stage_bucket, self, step.bucket)
      -- a record that cannot be stored: after every row of the bucket
      if not ok then fail = { math.maxinteger, err, self.staging or "" } end
    end
    self.failing_row = nil
    out[n] = { counters = counters, reports = self.reports, sum = self.rows_sum, fail = fail, data = st.batch:data() }
    st:discard()
    if fail then break end
  end
  self.reports, self.rows_sum = nil, run_sum
  return out
end

-- A round in a worker part (the handler of retape.part): the reply and the
-- part's writes, every bucket's batch one after the other (their lengths
-- in the reply).
function Replay:part_round(msg, rows)
  self.store:discard()
  if msg.op == "begin" then
    self:begin_run(msg.continuing)
    return wire.encode {}
  end
  local out, data = self:walk_part(msg.steps, rows), {}
  for n, r in ipairs(out) do data[n], r.len, r.data = r.data, #r.data, nil end
  return wire.encode(out), table.concat(data)
end

-- Writes the buckets of a merged round (walk_round), in order: each
-- bucket's writes of every part with its step's finish() puts, one commit
-- per bucket, then its after().
function Replay:flush_round(ready, counters)
  local st = self.store
  for _, r in ipairs(ready) do
    if r.step.prepare then r.step.prepare() end
    for _, data in ipairs(r.data) do st.batch:append(data) end
    if r.step.finish then r.step.finish(r.step.more, r.step.done) end
    st:write()
    if r.step.after then
      -- after() sees the counters as they were at the end of its bucket, as on one thread
      local now = {}
      for k, v in pairs(r.counts) do now[k], counters[k] = counters[k], v end
      r.step.after(r.step.done, r.step.more)
      for k, v in pairs(now) do counters[k] = v end
    end
  end
end

-- A round over every part: the main state routes the rows of steps i..j
-- and posts them; while the workers walk them it writes the previous round
-- (`pending`, already merged); then it merges this
-- round: counters, problems in row order, and each bucket's writes, which
-- it returns to be written during the next round.  Writing a round late is
-- safe: a part reads from the store only what was committed before the
-- run (a ticker's earlier versions the first time it appears, clean-slate
-- marks) and remembers the trade ids the run made (new_ids).  A rule error
-- stops the run at its bucket: the buckets before it are written, as on
-- one thread, and nothing after it.
function Replay:walk_round(steps, i, j, counters, pending)
  local p, st = self.pool, self.store
  assert(st.batch:count() == 0, "walk_round: the store has queued writes")
  p:reset()
  local msg = {}
  for k = i, j do
    local step = steps[k]
    local cur <close> = assert(self.src:cursor(step.bucket, step.scope))
    step.done, step.more = p:route(cur, step.first or 0, step.stop)
    msg[#msg + 1] = { bucket = step.bucket, plans = step.plans, starts = step.starts }
  end
  p:post(wire.encode { op = "walk", steps = msg })
  local ok, mine = true, nil
  if pending then ok, mine = pcall(self.flush_round, self, pending, counters) end
  if ok then
    if self.part_first == 1 then mine = {} -- this state walks no part
    else ok, mine = pcall(self.walk_part, self, msg, self.inbox) end
  end
  local replies, data, errors = p:collect() -- the workers are done before anything raises
  if not ok then error(mine, 0) end
  local parts = { mine }
  for w = 1, p:workers() do
    if errors[w] then error(string.format("thread %d: %s", w, errors[w]), 0) end
    local out, at = wire.decode(replies[w]), 1
    for _, r in ipairs(out) do r.data = data[w]:sub(at, at + r.len - 1); at = at + r.len end
    parts[#parts + 1] = out
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
        writes[#writes + 1] = r.data
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
    ready[#ready + 1] = { step = step, data = writes,
                          counts = { rows = counters.rows, seen = counters.seen, trades = counters.trades, errors = counters.errors } }
  end
  return ready
end

-- The book of a run: open trades live in the tickers' working records.
function Replay:make_book()
  local rp, R = self, self.R
  local cash = R.config and R.config.trade and R.config.trade.cash or 1e9
  return bookm.new({
    open = function() return rp.current.open end,
    set_open = function(_, t) rp.current.open = t end,
    taken = function(id)
      if rp.new_ids[id] or (rp.held_trades and rp.held_trades[id] ~= nil) then return true end
      if rp.replacing and next(rp.replacing) then -- a refresh: an old trade it replaces does not hold its id
        local T, entry = tostring(id):match("^(.+)%-(%d+)%-%d+$")
        local from = T and rp.replacing[T]
        if from and tonumber(entry) >= from then return false end
      end
      return rp.store:has_trade(id)
    end,
    changed = function(t, is_new)
      if is_new then rp.new_ids[t.id] = true end
      if not rp.trades[t.id] then
        rp.trades[t.id] = t
        rp.trade_list[#rp.trade_list + 1] = t
      end
    end,
    is_open = R.trade_is_open,
  }, cash)
end

---------------------------------------------------------------------------
-- the run

local copy_params, check_pending_identity

local function mark_fingerprint(st, from, to)
  local parts = {}
  for _, m in ipairs(st:marks(from, to)) do parts[#parts + 1] = m.bucket .. m.ticker .. m.text end
  return table.concat(parts, "|")
end

-- Clears one ticker's part of a scope (see clear_scope): its versions and
-- the trades it entered from `start` to the scope's end, the trade open at
-- the start restored as it was then, its later versions marked stale.
-- Records what it did in out[T] = {purged, replaced, stale}.
function Replay:clear_ticker(T, scope, start, out)
  local st = self.store
  local _, prev = st:version_before(T, start)
  local old_end = st:version_text_upto(T, scope.to)
  local c = { replaced = st:delete_versions(T, start, scope.to),
              purged = st:delete_trades(T, start, scope.to + BUCKET_MS - 1), stale = false }
  out[T] = c
  if prev and prev.open then st:put_trade(prev.open) end
  -- Later versions were computed from the old end of the scope: stale
  -- unless the new end turns out the same (settle_stale).  A mark from
  -- before the scope's start stays: the run itself starts from a stale state.
  local later = st:first_version_after(T, scope.to)
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

-- Prepares the store for a run of `scope` starting at bucket `start`:
-- removes the scope's previous versions and trades of its tickers,
-- restores the trades that were open at its start, updates the clean-slate
-- marks, and marks later versions stale.  Queued in the store's batch (the
-- caller commits it with the cursor).  Returns trades purged, versions
-- replaced, and the expectations to check at the end.
function Replay:clear_scope(scope, start)
  local st = self.store
  local names = scope.tickers
  if not names then
    names = {}
    for _, T in ipairs(st:tickers()) do if scopem.covers(scope, T) then names[#names + 1] = T end end
  end
  local purged, replaced, expect = 0, 0, {}
  for _, T in ipairs(names) do
    -- a ticker with no version from the start on has nothing to replace,
    -- no trade entered since, and no later result to mark (one seek)
    if st:first_version_after(T, start - 1) then self:clear_ticker(T, scope, start, expect) end
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

-- After a run: stale marks whose later versions turn out to depend on an
-- unchanged state are dropped.
function Replay:settle_stale(scope, expect, marks_before)
  local st = self.store
  local same_marks = mark_fingerprint(st, scope.from, scope.to) == marks_before
  for T in pairs(expect) do
    local mark = st:stale_of(T)
    if mark and mark.expect and same_marks and fnv1a32(st:version_text_upto(T, scope.to) or "") == mark.expect then
      if mark.keep_id then st:put_trade_text(mark.keep_id, mark.keep) end
      st:set_stale(T, mark.rest and { from = mark.rest } or nil)
    end
  end
  st:write()
end

-- A copy of run params with some changed (false removes a key).
copy_params = function(params, changes)
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  for k, v in pairs(changes) do if v == false then p[k] = nil else p[k] = v end end
  return p
end

-- Refuses to go on over work pending with other rules: naming it and the
-- command that finishes it.
check_pending_identity = function(self, pending, identity)
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

-- Message handler of a run: rule errors and parameter errors already say
-- where they come from; anything else is the engine's and gets a traceback.
local function engine_error(e)
  if scopem.is_param_error(e) or (type(e) == "string" and e:find("^receipt ")) or type(e) ~= "string" then return e end
  return debug.traceback(e, 2)
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
  -- every read of the call sees one consistent snapshot of the receipts
  assert(self.src:snapshot(true))
  local ok, resp = pcall(self.run_in_snapshot, self, params or {})
  self.src:snapshot(false)
  if not ok then error(resp, 0) end
  return resp
end

function Replay:run_in_snapshot(params)
  local started, started_mono = core.now_ms(), core.monotonic_ms()
  local st = self.store
  self.rows_sum = 0
  local counters = { rows = 0, seen = 0, trades = 0, errors = 0, recomputed = 0 }
  if self.trades_only then
    -- a store of trades only keeps no versions to continue from: one whole run into a new store
    if self.trades_only_ran or params.resume or params.refresh or params.rebuild or params.limit or params.offset
       or st:cursor() or #st:tickers() > 0 then
      scopem.param_error("trades_only: one whole run into a new, empty store (it keeps no versions to continue from)")
    end
    self.trades_only_ran = true
  end
  local identity = self:identity()
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
  local held = st:identity()
  if held and json.encode(held) ~= json.encode(identity) and not params.rebuild then
    local recipe = st:recipe()
    local named = recipe and manifest.describe_differences(manifest.differences(recipe, self.R, self.script_version), 6)
    scopem.param_error("%s holds results of other rules or settings (%s). "
      .. "Replay into another --state, or give --rebuild to recompute everything it covers with these",
      st.path or "the store", (named and named ~= "") and named or string.format("rules '%s' config %s sources %s; "
        .. "this run '%s' config %s sources %s", held.rules, held.config, held.sources, identity.rules, identity.config,
        identity.sources))
  end
  manifest.check_write(self, params)
  if params.refresh and not (params.date or params.from or params.to) then
    local resp = { ok = true, rowsProcessed = 0, tradesCreated = 0, recomputed = 0, errors = 0 }
    self:use_threads(0)
    self:refresh(counters)
    resp.recomputed, resp.errors, resp.rowsProcessed = counters.recomputed, counters.errors, counters.rows
    resp.tradesCreated = counters.trades
    resp.stale = next(st:stale()) ~= nil
    resp.finished = self.finished_pending
    if self.manifest then manifest.record(self, params, resp, counters, started) end
    return resp
  end
  local scope = scopem.resolve(params, self.src, self.script_version)
  local work, per_day = scopem.work(scope, self.src)
  if scope.outside then
    return { ok = true, date = scope.first, ticker = scope.tickers and table.concat(scope.tickers, ",") or json.null,
      bucketProcessed = json.null, bucketOffset = scope.offset, rowsProcessed = 0, tradesCreated = 0, tradesPurged = 0,
      nextBucket = json.null, nextBucketOffset = json.null, hasMore = false, hasMoreInBucket = false, buckets = 0,
      errors = 0, replaced = 0, recomputed = 0, days = {} }
  end
  local resp = {
    ok = true, date = scope.first, ticker = scope.tickers and table.concat(scope.tickers, ",") or json.null,
    bucketProcessed = json.null, bucketOffset = scope.offset, rowsProcessed = 0, tradesCreated = 0,
    tradesPurged = 0, nextBucket = json.null, nextBucketOffset = json.null, hasMore = false,
    hasMoreInBucket = false, buckets = 0, errors = 0, replaced = 0, recomputed = 0, days = per_day,
  }
  if scope.first ~= scope.last then resp.from, resp.to = scope.first, scope.last end

  -- where to start: a fresh run, the resume of an interrupted one, or the
  -- next page of a bucket
  local cursor = st:cursor()
  local start_index, first_row, start_bucket = 1, 0, scope.from
  self.continuing = false
  if params.resume then
    if not cursor then
      scopem.param_error("nothing to resume: the store's last run completed (see '%s')",
        st.path and ("retape status --state " .. st.path) or "retape status")
    end
    if cursor.scope ~= scope.key or json.encode(cursor.identity) ~= json.encode(identity) then
      scopem.param_error("the interrupted run in this store is %s with rules '%s'; resume it with the same scope and rules",
        cursor.params or cursor.scope, cursor.identity and cursor.identity.rules or "?")
    end
    start_bucket = cursor.next
    start_index = #work + 1
    for i, w in ipairs(work) do if w.bucket >= start_bucket then start_index = i; break end end
  elseif scope.offset > 0 then
    local page = st:page()
    if page and page.scope == scope.key and page.bucket == scope.bucket and page.rows == scope.offset then
      self.continuing, first_row = true, scope.offset
    end
  end
  -- a run builds on the results before its start: stale ones (left by a
  -- late receipt's run, or --no-cascade) are recomputed first, or the run
  -- would carry on trades the recomputation no longer has
  if not self.continuing and not params.resume then self:refresh_before(scope, start_bucket, counters) end
  local stop_row = scope.limit and (scope.offset + scope.limit) or nil
  local rows_ahead = 0
  for _, w in ipairs(work) do rows_ahead = rows_ahead + (w.count or 0) end
  if scope.limit then rows_ahead = math.min(rows_ahead, scope.limit) end
  self:use_threads(rows_ahead)

  local describe = json.encode { date = params.date, from = params.from, to = params.to, ticker = params.ticker,
                                 bucket = params.bucket, limit = params.limit, offset = (params.offset or 0) > 0 and params.offset or nil,
                                 clean_slate = params.clean_slate or nil, shard = params.shard }
  local expect, marks_before = {}, nil
  local ok, err = xpcall(function()
    self:begin_run(self.continuing)
    marks_before = mark_fingerprint(st, scope.from, scope.to)
    if not self.continuing then
      if params.rebuild then
        self:mark_all_stale()
      end
      local purged, replaced
      purged, replaced, expect = self:clear_scope(scope, start_bucket)
      if scope.clean then resp.tradesPurged = purged end
      resp.purged, resp.replaced = purged, replaced
      st:set_identity(identity)
      st:set_recipe(manifest.recipe_of(self.R, self.script_version, params.shard))
      st:set_db_path(self.db_path)
      st:set_cursor { scope = scope.key, identity = identity, start = scope.from, next = start_bucket,
                      clean = scope.clean, params = describe }
      st:set_page(nil)
      st:write()
    end
    local src_scope = { from = scope.from, to = scope.to, script_version = self.script_version, tickers = scope.reads }
    local steps = {}
    for i = start_index, #work do
      local w = work[i]
      local window_first = (i == start_index) and first_row or 0
      steps[#steps + 1] = {
        bucket = w.bucket, scope = src_scope, first = window_first, stop = stop_row, rows = w.count,
        finish = function(more, done)
          local nxt = work[i + 1]
          -- the page marker records how many rows of the bucket are now covered
          st:set_page(more and { scope = scope.key, bucket = w.bucket, rows = window_first + done } or nil)
          if i == #work or more then
            -- the walk is done: its coverage, and the cascade still to run (if any) in the same commit
            self:record_coverage(scope, more and (window_first + done) or nil)
            local cascading = not more and self.cascade and not (scope.bucket and w.bucket + BUCKET_MS <= w.close)
            st:set_cursor(cascading and { phase = "refresh", scope = scope.key, identity = identity, params = describe } or nil)
          else st:set_cursor { scope = scope.key, identity = identity, start = scope.from, next = nxt.bucket,
                               clean = scope.clean, params = describe } end
        end,
        after = function(done, more)
          resp.buckets = resp.buckets + 1
          resp.bucketProcessed = w.bucket
          resp.bucketOffset = scope.offset
          if more then
            resp.hasMoreInBucket, resp.hasMore = true, true
            resp.nextBucketOffset = window_first + done
          elseif scope.bucket then
            local nb = w.bucket + BUCKET_MS
            if nb <= w.close then resp.nextBucket, resp.hasMore = nb, true end
          end
          if self.on_bucket then
            self.on_bucket { bucket = w.bucket, index = i, total = #work, rows = counters.rows,
                             trades = counters.trades, errors = counters.errors }
          end
        end,
      }
    end
    self:walk_steps(steps, counters)
    self:store_held_trades()
    if #work < start_index then
      self:record_coverage(scope)
      st:set_cursor(self.cascade and not scope.bucket
        and { phase = "refresh", scope = scope.key, identity = identity, params = describe } or nil)
      st:write()
    end
    self:settle_stale(scope, expect, marks_before)
    if self.cascade and not resp.hasMore then
      local again = { rows = 0, seen = 0, trades = 0, errors = 0, recomputed = 0 }
      self:refresh(again)
      counters.recomputed, counters.recomputed_rows = again.recomputed, again.rows
      counters.errors = counters.errors + again.errors
    end
  end, engine_error)
  if not ok then
    st:discard()
    self.ticks = {}
    error(err, 0)
  end
  resp.rowsProcessed = counters.rows
  resp.tradesCreated = counters.trades
  resp.errors = counters.errors
  resp.recomputed = counters.recomputed
  resp.stale = next(st:stale()) ~= nil
  resp.finished = self.finished_pending
  if self.manifest then manifest.record(self, params, resp, counters, started) end
  if self.budget then resp.budget = self.budget; resp.budget.total = core.monotonic_ms() - started_mono end
  return resp
end

-- Trades only: the trades touched since the last put, each as its last
-- bucket left it, queued in key order (a later put of a trade replaces an
-- earlier one, so the store ends with what a full run writes); every
-- M.HOLD_BUCKETS buckets, so an open trade is encoded once an hour instead
-- of once a bucket, and the copies held stay few.
M.HOLD_BUCKETS = 12
function Replay:put_held_trades()
  local held = self.held_trades
  local keys, by_key = {}, {}
  for id, t in pairs(held) do
    local k = store.trade_key(id)
    keys[#keys + 1], by_key[k] = k, t
  end
  table.sort(keys)
  local st = self.store
  for _, k in ipairs(keys) do
    local t = by_key[k]
    local ok, err = pcall(st.put_trade, st, t)
    if not ok then error(self:trade_error(t, err), 0) end
  end
  self.held_trades, self.held_buckets = {}, 0
end

function Replay:store_held_trades()
  if not self.held_trades then return end
  self:put_held_trades()
  self.store:write()
end

-- Coverage of the days of a scope, for `retape status`: per ticker and
-- bucket (retape.coverage); `rows`: a page stopped after this many rows of
-- the scope's bucket.  Queued (committed with the walk's last bucket).
function Replay:record_coverage(scope, rows)
  local st = self.store
  for _, day in ipairs(scope.days) do
    local open, close = rtime.session(day)
    if not scope.bucket or (scope.bucket >= open and scope.bucket <= close) then
      st:set_coverage(day, coverage.add(st:coverage(day), open, close - close % BUCKET_MS, scope.tickers, scope.bucket, rows))
    end
  end
end

---------------------------------------------------------------------------
-- recomputing stale results

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
    local c = st:cursor()
    if c and c.phase == "refresh" then st:set_cursor(nil); st:write() end
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

return M
