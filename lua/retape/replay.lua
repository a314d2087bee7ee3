-- retape.replay — re-running receipts bucket by bucket through a ruleset.
--
--   local rp = assert(replay.open { db = "receipts.db", state = "state.d" })
--   local resp = rp:run { date = "2026-02-02", clean_slate = true }
--   rp:close()
--
-- The receipts of a bucket stream from SQLite in (ts, receipt_id) order, in
-- batches; each row goes through rules.step (classification) and
-- rules.simulate (trades) with the row's time as the only clock.  Per-ticker
-- state lives in memory during the run (bounded by the number of tickers,
-- not rows) and everything a bucket changed is committed in one RocksDB
-- batch together with the cursor, so an interrupted run resumes at a bucket
-- boundary and ends byte-identical to an uninterrupted one.
local source = require "retape.source"
local rtime = require "retape.time"
local rules = require "retape.rules"
local store = require "retape.store"
local json = require "retape.json"
local core = require "retape.core"
local fnv1a32 = require("retape.ingest").fnv1a32
local sandbox = require "retape.sandbox"

local M = {}
local Replay = {}
Replay.__index = Replay

M.DEFAULT_SCRIPT_VERSION = "2.5.0"
M.DEFAULT_BATCH = 256
local BUCKET_MS = 300000
M.TRACE_COLUMNS = { "ticker", "ts", "bucket_5m", "state", "score", "rank_position", "move_status",
  "move_reasons", "stage", "finalStage", "forced", "prevStage", "entry_ts", "entry_price", "receipt_id", "rule" }

local LANE_PREFIX = "retape:lane:"

-- Errors in the parameters of run(): shown to users without a traceback.
local ParamError = { __tostring = function(e) return e.message end }
local function param_error(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, ParamError), 0)
end
function M.is_param_error(e) return getmetatable(e) == ParamError end

local function is_open(t)
  return t.status == "OPEN" or t.status == "TP_HIT_TRIM" or t.status == "" or t.status == nil
end
M.is_open = is_open

-- open(opts) -> replay | nil, message
--   db       receipts SQLite file (or an open retape.source)
--   state    RocksDB directory (or an open retape.kv / retape.store)
--   rules    ruleset name, path or table (default: "default")
--   script_version  "2.5.0" (default); false = no filter
--   batch    rows fetched per round trip (default 256; never changes results)
--   trace    function(record) called for each processed receipt
--   on_error function(message) for receipts that cannot be processed
--   on_bucket function(progress) after each committed bucket
--   on_row   function(row, p, ex, stage, final, forced, rule) after each
--            processed receipt (p: the stamped payload, ex: the ticker's
--            state before it; then what the ruleset's step returned)
--   limits   {instructions = N, memory_mb = N} per receipt (retape.sandbox)
function M.open(opts)
  opts = opts or {}
  local self = setmetatable({}, Replay)
  local src, err = opts.db, nil
  if type(src) == "string" then
    src, err = source.open(src)
    if not src then return nil, err end
    self.owns_src = true
  end
  if not src then return nil, "replay.open: no receipts database (db)" end
  self.src = src
  local st = opts.state
  if type(st) == "table" and st.commit then
    self.store = st
  else
    if not st then return nil, "replay.open: no state store (state)" end
    local s, serr = store.open(st)
    if not s then
      if self.owns_src then src:close() end
      return nil, serr
    end
    self.store, self.owns_store = s, true
  end
  local ok, R = pcall(rules.load, opts.rules)
  if not ok then
    self:close()
    return nil, R
  end
  self.R = R
  -- payloads decoded selectively: the fields the ruleset declares (R.fields) plus the state fields
  self.fields = R.fields and require("retape.decode").compile(R.fields, store.STATE_FIELDS) or nil
  if opts.script_version == nil then self.script_version = M.DEFAULT_SCRIPT_VERSION
  else self.script_version = opts.script_version or nil end
  self.batch = opts.batch or M.DEFAULT_BATCH
  self.trace, self.on_error, self.on_bucket = opts.trace, opts.on_error, opts.on_bucket
  self.on_row = opts.on_row
  -- Rule files from users run under the sandbox limits; the rulesets shipped
  -- with the engine do not pay for the hook unless limits are asked for.
  if opts.limits or not R.trusted then
    self.limits = {}
    for k, v in pairs(sandbox.DEFAULT_LIMITS) do self.limits[k] = (opts.limits or {})[k] or v end
  end
  self:reset_cache()
  return self
end

function Replay:close()
  if self.owns_store and self.store then self.store:close() end
  if self.owns_src and self.src then self.src:close() end
  self.store, self.src = nil, nil
end
Replay.__close = Replay.close

-- The in-memory view of the store: ticker states and open trades, loaded on
-- first use.  Dropped whenever a unit of work fails, so memory never holds
-- anything the store does not.
function Replay:reset_cache()
  self.states = {}      -- T -> stamped payload, or false (no state)
  self.open = {}        -- T -> open trade, or false
  self.dirty_states = {}
  self.dirty_trades, self.dirty_list = {}, {}
  self.new_ids = {}
  self.lane_log = {}    -- T -> { {ts, final stage}, ... } of the bucket in progress
  self.rows_hash = "0"  -- FNV chain over the receipt ids read, bucket by bucket (run manifests)
  self.bucket_ids = {}
end

---------------------------------------------------------------------------
-- the trade book handed to rules.simulate

function Replay:make_book()
  local rp = self
  local R = self.R
  local book = { cash = R.config and R.config.trade and R.config.trade.cash or 1e9, created = 0 }
  function book.open(ticker)
    local t = rp.open[ticker]
    if t == nil then
      t = rp.store:open_trade(ticker) or false
      if t and not is_open(t) then t = false end
      rp.open[ticker] = t
    end
    return t or nil
  end
  function book.touch(t)
    if not rp.dirty_trades[t.id] then
      rp.dirty_trades[t.id] = t
      rp.dirty_list[#rp.dirty_list + 1] = t
    end
    if not is_open(t) and rp.open[t.ticker] == t then rp.open[t.ticker] = false end
  end
  function book.add(t)
    rp.open[t.ticker] = t
    rp.new_ids[t.id] = true
    book.created = book.created + 1
    book.touch(t)
  end
  -- TICKER-<entry ms>-<n>: the first free n for that ticker and time.
  function book.next_id(ticker, entry_ts)
    local n = 1
    while true do
      local id = string.format("%s-%d-%d", ticker, entry_ts, n)
      if not rp.new_ids[id] and not rp.store:has_trade(id) then return id end
      n = n + 1
    end
  end
  book.iso = rtime.iso_utc
  -- New York Saturday/Sunday; every receipt of a bucket shares its day, so
  -- the calendar lookup runs once per 5-minute bucket, not per receipt.
  local weekend_bucket, weekend_value
  function book.weekend(ms)
    local b = ms - ms % BUCKET_MS
    if b ~= weekend_bucket then
      local wday = rtime.to_ny(ms).wday
      weekend_bucket, weekend_value = b, wday == 0 or wday == 6
    end
    return weekend_value
  end
  return book
end

---------------------------------------------------------------------------
-- one receipt

local function trace_record(row, p, ex, stage, final, forced, rule)
  local ms = p.move_status or {}
  return {
    ticker = row.ticker, ts = row.ts, bucket_5m = row.bucket_5m, state = p.state, score = p.score,
    rank_position = p.rank_position, move_status = ms.status, move_reasons = ms.reasons or {},
    stage = stage, finalStage = final, forced = forced, prevStage = ex.kanban_stage,
    entry_ts = p.entry_ts, entry_price = p.entry_price, receipt_id = row.receipt_id, rule = rule,
  }
end

-- Runs one decoded receipt through the ruleset.  Returns true if processed,
-- false if skipped (malformed payload, reported through on_error).
function Replay:process_row(row, book, counters)
  local ids = self.bucket_ids
  ids[#ids + 1] = row.receipt_id
  if row.error or type(row.payload) ~= "table" or row.payload[1] ~= nil then
    counters.errors = counters.errors + 1
    local msg = row.error or string.format("receipt %s: payload_json is not a JSON object", row.receipt_id)
    if self.on_error then self.on_error(msg) end
    return false
  end
  local T = row.ticker
  local p = row.payload
  p.ticker = T
  local ex = self.states[T]
  if ex == nil then
    ex = self.store:latest(T) or false
    self.states[T] = ex
  end
  ex = ex or {}
  local R = self.R
  local stage, final, forced, rule = self:call_rule(row, R.step, p, row, ex, book.open(T))
  self:call_rule(row, R.simulate, p, row.ts, book)
  self.states[T] = p
  self.dirty_states[T] = { p = p, raw = row.payload_json }
  local log = self.lane_log[T]
  if not log then log = {}; self.lane_log[T] = log end
  log[#log + 1] = { row.ts, final or json.null }
  if self.trace then self.trace(trace_record(row, p, ex, stage, final, forced, rule)) end
  if self.on_row then self.on_row(row, p, ex, stage, final, forced, rule) end
  return true
end

-- Runs rule code for one receipt under the sandbox limits; an error names
-- the receipt and ticker, keeps the rule's file:line and adds its traceback.
function Replay:call_rule(row, fn, ...)
  local results
  if self.limits then results = table.pack(pcall(sandbox.guard, self.limits, fn, ...))
  else results = table.pack(xpcall(fn, sandbox.traceback, ...)) end
  if results[1] then return table.unpack(results, 2, results.n) end
  local e = results[2]
  local text = sandbox.is_limit_error(e) and (e.message .. (e.traceback or "")) or tostring(e)
  error(string.format("receipt %s (%s): %s", row.receipt_id, row.ticker, text), 0)
end

---------------------------------------------------------------------------
-- one bucket (or one page of it), committed atomically

-- Processes rows [offset, offset+limit) of a bucket (limit nil = all) and
-- commits them with the cursor.  Returns rows processed and whether rows
-- remain in the bucket.
function Replay:process_bucket(bucket, scope, offset, limit, cursor, counters)
  local book = self:make_book()
  local cur <close> = assert(self.src:cursor(bucket, scope))
  local skip = offset or 0
  while skip > 0 do
    local got = #cur:fetch(math.min(skip, 4096), false)
    if got == 0 then break end
    skip = skip - got
  end
  local done, more = 0, false
  while true do
    local want = self.batch
    if limit then want = math.min(want, limit - done) end
    if want <= 0 then
      more = #cur:fetch(1, false) > 0
      break
    end
    local rows = cur:fetch(want, self.fields)
    if #rows == 0 then break end
    for i = 1, #rows do
      local row = rows[i]
      if self:process_row(row, book, counters) then counters.rows = counters.rows + 1 end
      counters.seen = counters.seen + 1
      done = done + 1
    end
  end
  counters.trades = counters.trades + book.created
  self.rows_hash = fnv1a32(self.rows_hash .. table.concat(self.bucket_ids, "\n"))
  self.bucket_ids = {}
  -- lane log of the bucket: per ticker, [ts, final stage] of each receipt
  -- (for `retape lanes --at` and `retape diff`)
  local lanes, any = json.object(), false
  for T, log in pairs(self.lane_log) do lanes[T] = log; any = true end
  cursor.bucket, cursor.offset = bucket, more and (offset or 0) + done or nil
  if any then
    local key = string.format("%s%013d", LANE_PREFIX, bucket)
    local prev = (offset or 0) > 0 and self.store.kv:get(key)
    if prev then
      for T, log in pairs(json.decode(prev)) do
        if lanes[T] then table.move(lanes[T], 1, #lanes[T], #log + 1, log) end
        lanes[T] = log
      end
    end
    self.store.batch:put(key, json.encode(lanes))
  end
  self.store:commit(self.dirty_states, self.dirty_list, cursor)
  self.dirty_states, self.dirty_trades, self.dirty_list, self.new_ids, self.lane_log = {}, {}, {}, {}, {}
  return done, more
end

---------------------------------------------------------------------------
-- scopes

local function ticker_list(t)
  if t == nil or t == "" then return nil end
  local list = {}
  if type(t) == "string" then
    for name in t:gmatch("[^,%s]+") do list[#list + 1] = name end
  else
    for _, name in ipairs(t) do list[#list + 1] = name end
  end
  for i, name in ipairs(list) do list[i] = name:upper():gsub("%.", "-") end
  table.sort(list)
  return list
end
M.ticker_list = ticker_list

local function check_date(d, what)
  if type(d) ~= "string" or not rtime.parse_date(d) then
    param_error("%s: '%s' is not a date (YYYY-MM-DD)", what, tostring(d))
  end
  return d
end

-- The trading days from..to (inclusive, weekends skipped) as a list.
local function days_between(from, to)
  local days, y, m, d = {}, rtime.parse_date(from)
  local ty, tm, td = rtime.parse_date(to)
  local stop = os.time { year = ty, month = tm, day = td, hour = 12 }
  local t = os.time { year = y, month = m, day = d, hour = 12 }
  if t > stop then param_error("from %s is after to %s", from, to) end
  while t <= stop do
    local day = os.date("!%Y-%m-%d", t)
    local wd = tonumber(os.date("!%w", t))
    if wd ~= 0 and wd ~= 6 then days[#days + 1] = day end
    t = t + 86400
  end
  return days
end
M.days_between = days_between

---------------------------------------------------------------------------
-- the endpoint

-- run(params) -> response.  params (all optional):
--   date            "YYYY-MM-DD" (default: today in New York)
--   from, to        a range of days instead of one date (state carries over)
--   ticker          "AAPL", "AAPL,AMD" or a list; nil = every ticker
--   bucket          one bucket (ms) of the day; nil = every bucket 09:30..16:00 ET
--   limit, offset   a page of rows within `bucket`
--   clean_slate     purge the scope's trades and entry stamps first (spec §5)
--   resume          continue after the last committed bucket of this same scope
-- The response has the original endpoint's fields (spec §6.1) plus
-- buckets, errors and from/to.
function Replay:run(params)
  params = params or {}
  local started = core.now_ms()
  self.rows_hash = "0"
  local first, last
  if params.from or params.to then
    first = check_date(params.from or params.to, "from")
    last = check_date(params.to or params.from, "to")
  else
    first = check_date(params.date or rtime.ny_date(require("retape.core").now_ms()), "date")
    last = first
  end
  local days = first == last and { first } or days_between(first, last)
  local tickers = ticker_list(params.ticker)
  local limit = params.limit and math.tointeger(params.limit)
  local offset = math.tointeger(params.offset or 0) or 0
  if params.limit and (not limit or limit < 1) then param_error("limit must be a positive integer") end
  if offset < 0 then param_error("offset must be a non-negative integer") end
  if limit and not params.bucket then param_error("limit/offset page within one bucket: give bucket too") end

  local open_ms = rtime.session(first)
  local _, close_ms = rtime.session(last)
  local resp = {
    ok = true, date = first, ticker = tickers and table.concat(tickers, ",") or json.null,
    bucketProcessed = json.null, bucketOffset = offset, rowsProcessed = 0, tradesCreated = 0,
    tradesPurged = 0, nextBucket = json.null, nextBucketOffset = json.null, hasMore = false,
    hasMoreInBucket = false, buckets = 0, errors = 0,
  }
  if first ~= last then resp.from, resp.to = first, last end

  local scope_key = json.encode { rules = self.R.name, script_version = self.script_version or false,
    tickers = tickers or false, from = first, to = last, bucket = params.bucket or false }
  local counters = { rows = 0, seen = 0, trades = 0, errors = 0 }

  -- the work list: (bucket, scope) pairs, in time order
  local work = {}
  for _, day in ipairs(days) do
    local d_open, d_close = rtime.session(day)
    local scope = { from = d_open, to = d_close, script_version = self.script_version, tickers = tickers }
    if params.bucket then
      local b = math.tointeger(params.bucket)
      if not b or b % BUCKET_MS ~= 0 then param_error("bucket must be a 5-minute boundary in ms") end
      if b < d_open or b > d_close then
        resp.hasMore = false
        return resp
      end
      work[#work + 1] = { bucket = b, scope = scope, close = d_close }
    else
      for _, b in ipairs(assert(self.src:buckets(scope))) do
        work[#work + 1] = { bucket = b.bucket, scope = scope, close = d_close, count = b.count }
      end
    end
  end

  local ok, err = pcall(function()
    if params.clean_slate and offset == 0 and not params.resume then
      local in_scope = {}
      for _, w in ipairs(work) do
        local cur <close> = assert(self.src:cursor(w.bucket, w.scope))
        repeat
          local rows = cur:fetch(4096, false)
          for _, r in ipairs(rows) do in_scope[r.ticker] = true end
        until #rows == 0
      end
      local names = {}
      for t in pairs(in_scope) do names[#names + 1] = t end
      for _, t in ipairs(tickers or {}) do if not in_scope[t] then names[#names + 1] = t end end
      table.sort(names)
      local only
      if tickers then only = {}; for _, t in ipairs(tickers) do only[t] = true end end
      resp.tradesPurged = self.store:clean_slate(open_ms, close_ms + 86400000, only, names)
      self:reset_cache()
      self.store:commit(nil, nil, false)
    end

    local start, start_offset = 1, offset
    if params.resume then
      local c = self.store:cursor()
      if c and c.scope == scope_key then
        start = #work + 1
        for i, w in ipairs(work) do
          if w.bucket > c.bucket or (w.bucket == c.bucket and c.offset) then
            start = i
            if w.bucket == c.bucket then start_offset = c.offset end
            break
          end
        end
      end
    end

    local cursor = { scope = scope_key }
    for i = start, #work do
      local w = work[i]
      local off = i == start and start_offset or 0
      local done, more = self:process_bucket(w.bucket, w.scope, off, limit, cursor, counters)
      resp.buckets = resp.buckets + 1
      resp.bucketProcessed = w.bucket
      resp.bucketOffset = off
      if more then
        resp.hasMoreInBucket, resp.hasMore = true, true
        resp.nextBucketOffset = off + done
      elseif params.bucket then
        local nb = w.bucket + BUCKET_MS
        if nb <= w.close then resp.nextBucket, resp.hasMore = nb, true end
      end
      if self.on_bucket then
        self.on_bucket { bucket = w.bucket, index = i, total = #work, rows = counters.rows,
                         trades = counters.trades, errors = counters.errors }
      end
    end
  end)
  if not ok then
    self:reset_cache()
    error(err, 0)
  end
  resp.rowsProcessed = counters.rows
  resp.tradesCreated = counters.trades
  resp.errors = counters.errors
  self:record_manifest(params, resp, counters, started)
  return resp
end

-- Hash of every value under a prefix of the store (bytes, no decoding).
local function prefix_hash(kv, prefix)
  local h = "0"
  for k, v in kv:scan(prefix) do h = fnv1a32(h .. k .. v) end
  return h
end

-- Records what a run() did in the store: engine, rules (name, source
-- hashes, effective config), parameters, the receipts read (count, hash of
-- their ids in order), wall-clock start and end, the response, and when the
-- call finished its scope, hashes of the resulting lanes and trades.
function Replay:record_manifest(params, resp, counters, started)
  local kv = self.store.kv
  local seq = (math.tointeger(tonumber(kv:get("retape:runs:last") or "0")) or 0) + 1
  local p = {}
  for _, k in ipairs { "date", "from", "to", "ticker", "bucket", "limit", "offset", "clean_slate", "resume" } do
    p[k] = params[k]
  end
  local m = {
    seq = seq, engine = core.version, rules = self.R.name, rules_sources = self.R.sources or json.object(),
    config = self.R.config, overrides = self.R.overrides or json.object(), params = json.object(p),
    script_version = self.script_version or false,
    receipts = { read = counters.seen, hash = self.rows_hash },
    started = rtime.iso_utc(math.floor(started)), finished = rtime.iso_utc(math.floor(core.now_ms())),
    response = resp,
  }
  if not resp.hasMore then
    m.results = { lanes_hash = prefix_hash(kv, store.LATEST), trades_hash = prefix_hash(kv, store.TRADE) }
  end
  local b = self.store.batch
  b:put(string.format("retape:run:%06d", seq), json.encode(m, M.MANIFEST_ORDER))
  b:put("retape:runs:last", tostring(seq))
  kv:write(b)
end

M.MANIFEST_ORDER = { "seq", "engine", "rules", "rules_sources", "script_version", "params", "overrides", "receipts",
  "started", "finished", "results", "response", "config", "read", "hash", "lanes_hash", "trades_hash" }

-- The run manifests of a store, oldest first.
function M.runs(st)
  local list = {}
  for _, v in st.kv:scan("retape:run:") do list[#list + 1] = json.decode(v) end
  return list
end

---------------------------------------------------------------------------
-- reading results back

-- lanes([at_ms]) -> { {lane=, title=, stages=, tickers={...}}, ... }, stage_of
-- The lanes of every ticker in the store at the end of the last run, or as
-- of a bucket (the state each ticker had at the end of the last bucket <= at).
function M.lanes(st, R, at)
  local stage_of = {}
  if at then
    for k, v in st.kv:scan(LANE_PREFIX) do
      local b = tonumber(k:sub(#LANE_PREFIX + 1))
      if b and b <= at then
        for T, log in pairs(json.decode(v)) do
          local stage = log[#log][2]
          stage_of[T] = stage ~= json.null and stage or nil
        end
      end
    end
  else
    st:each_latest(function(T, p) stage_of[T] = p.kanban_stage end)
  end
  return M.group_lanes(R, stage_of), stage_of
end

function M.group_lanes(R, stage_of)
  local lane_of = {}
  for _, lane in ipairs(R.lanes) do
    for _, s in ipairs(lane.stages) do lane_of[s] = lane end
  end
  local out = {}
  for i, lane in ipairs(R.lanes) do
    out[i] = { lane = lane.id, title = lane.title, stages = lane.stages, tickers = {} }
  end
  local index = {}
  for i, lane in ipairs(R.lanes) do index[lane] = i end
  local names = {}
  for T in pairs(stage_of) do names[#names + 1] = T end
  table.sort(names)
  for _, T in ipairs(names) do
    local lane = lane_of[stage_of[T]]
    if lane then local l = out[index[lane]]; l.tickers[#l.tickers + 1] = T end
  end
  return out
end

-- All stored trades, sorted as the original ledger: entryTime descending
-- (ties by id, for determinism).
function M.trades(st)
  local list = {}
  st:each_trade(function(t) list[#list + 1] = t end)
  table.sort(list, function(a, b)
    if a.entry_ts ~= b.entry_ts then return (a.entry_ts or 0) > (b.entry_ts or 0) end
    return a.id < b.id
  end)
  return list
end

return M
