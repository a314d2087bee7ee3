-- retape.run.rerun — one call of rp:run() inside its snapshot of the
-- receipts: pending work settled first, the store's identity checked, the
-- scope resolved, where to start (fresh, resume, next page), the scope
-- cleared (clean slate, --rebuild), its buckets walked with the cursor,
-- the stale marks settled and the later results recomputed (cascade); the
-- run's manifest recorded.  The re-run model is retape.replay's header.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local rtime = require "retape.time"
local json = require "retape.json"
local core = require "retape.core"
local scopem = require "retape.scope"
local manifest = require "retape.manifest"
local coverage = require "retape.coverage"

local BUCKET_MS = scopem.BUCKET_MS

local Replay = {}

-- Message handler of a run: rule errors and parameter errors already say
-- where they come from; anything else is the engine's and gets a traceback.
local function engine_error(e)
  if scopem.is_param_error(e) or (type(e) == "string" and e:find("^receipt ")) or type(e) ~= "string" then return e end
  return debug.traceback(e, 2)
end

-- The body of rp:run (retape.replay), in the snapshot it holds.
function Replay:run_in_snapshot(params)
  local started, started_mono = core.now_ms(), core.monotonic_ms()
  local st = self.store
  self.rows_sum, self.listed, self.walk_reads = 0, nil, nil
  local counters = { rows = 0, seen = 0, trades = 0, errors = 0, recomputed = 0 }
  if self.trades_only then self:check_trades_only_run(params) end
  local identity = self:identity()
  params = self:settle_pending(params, identity)
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
  local grown, vouched = manifest.check_write(self, params)
  self.grown, self.vouched = grown or self.grown, vouched
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
  -- the listing's counts by day serve the run's receipts fingerprint too
  -- (manifest.note_receipts: the same query in the same snapshot) when
  -- the run reads every ticker
  if not scope.reads and not scope.bucket then
    local days = {}
    for _, d in ipairs(per_day) do days[d.day] = {} end
    for _, w in ipairs(work) do days[w.day][w.bucket] = w.count end
    self.listed = days
  else
    self.listed = nil -- (a pending run settled above may have set it)
  end
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
    marks_before = self:marks_print(scope.from, scope.to)
    if not self.continuing then
      if params.rebuild then
        self:mark_all_stale()
      end
      local purged, replaced
      -- (committed first: clearing reads the records of the trades open at the scope's end)
      if params.resume then
        self:resync_open_trades(scope, cursor.start or scope.from, start_bucket)
        st:write()
      end
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
    -- the walk holds the records of open trades until its last bucket (stage_bucket)
    local hold = not self.trades_only or nil
    for i = start_index, #work do
      local w = work[i]
      local window_first = (i == start_index) and first_row or 0
      steps[#steps + 1] = {
        bucket = w.bucket, scope = src_scope, first = window_first, stop = stop_row, rows = w.count,
        hold = hold, last = hold and i == #work or nil,
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

return Replay
