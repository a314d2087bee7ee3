-- retape.run.bucket — the walk: the rows of one bucket (or a page of it)
-- through the C step, the bucket's writes staged in key order and
-- committed atomically with what the caller adds (cursor, stale marks),
-- and a list of bucket steps walked in order, here or over the threads.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local core = require "retape.core"
local pool = require "retape.pool"
local jsonenc = require "retape.jsonenc"
local copy_trade, KEPT_VALUES_MAX = jsonenc.copy, jsonenc.KEPT_VALUES_MAX
local encode_trade, trade_fits = store.encode_trade, store.trade_fits
local stepc = require "retape.step"
local clock = core.monotonic_ms
local pack_versions = stepc.versions
local walk_batch = stepc.walk

local Replay = {}

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
  -- from a C cursor or inbox, rows come undecoded: the C step decodes each
  -- payload (self.fields) just before its receipt runs, so that a batch of
  -- decoded payloads never outlives a young collection (a sweep's shared
  -- cursor hands out payloads it decoded once)
  local decode, most = self.fields, self.batch
  if type(rows) == "userdata" and type(decode) == "userdata" then
    decode, most = false, math.min(most, self.tunables.UNDECODED_BATCH)
  end
  local more = false
  while true do
    local want = most
    if stop then want = math.min(want, stop - index) end
    if want <= 0 then
      more = #rows:fetch(1, false, opts.only) > 0
      break
    end
    local t0 = self.budget and clock()
    local batch = rows:fetch(want, decode, opts.only)
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

-- Writes the records of the held trades `list` (see stage_bucket) as the
-- trades are now, in key order, and forgets them.  A trade the store
-- cannot keep raises as stage_bucket's own trades do.
function Replay:put_held_open(list)
  local st, keys, by_key = self.store, {}, {}
  for i, t in ipairs(list) do
    local k = store.trade_key(t.id)
    keys[i], by_key[k] = k, t
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local t = by_key[k]
    local ok, err = pcall(st.put_trade, st, t)
    if not ok then
      self.staging = "1" .. k
      error(self:trade_error(t, err), 0)
    end
    self.open_held[t.ticker][t.id] = nil
  end
end

-- Queues the bucket's writes of this part in key order (RocksDB takes
-- sorted batches several times faster): the trades touched ("t:"), new
-- tickers ("tk:"), the versions ("v:"); then the part's tickers forget the
-- bucket's lanes.
--
-- In a walk that holds open trades (step.hold: a run's main walk), a
-- touched trade that is still its ticker's open trade at the bucket's end
-- is checked (json.fits; a trade the store cannot keep fails here, in its
-- bucket, as always) and held (self.open_held[T][id]) instead of written:
-- an open trade changes at nearly every bucket, and encoding and writing it
-- each time was most of what a replay of full-size bodies wrote.  A held
-- trade's record is written as the trade is then at the bucket where it
-- stops being its ticker's open trade (closed, or replaced), and every
-- one at the walk's last bucket (step.last), in that commit.  In between,
-- the store's record of such a trade is older than its ticker's versions
-- (which hold the trade at every bucket), or missing; a resumed run
-- writes it again from the version (resync_open_trades, run/clear.lua).
function Replay:stage_bucket(bucket, step)
  local hold, last = step and step.hold, step and step.last
  local st = self.store
  local names = {}
  for T in pairs(self.dirty) do names[#names + 1] = T end
  table.sort(names)
  -- the trades in key order: their keys sorted as strings (compared in C,
  -- no Lua comparator call), or, should two share a key, by a comparator
  local trades, keys = self.trade_list, {}
  if #trades > 1 then
    local by_key, unique = {}, 0
    for i, t in ipairs(trades) do
      local k = store.trade_key(t.id)
      keys[i] = k
      if by_key[k] == nil then unique = unique + 1 end
      by_key[k] = t
    end
    if unique == #trades then
      table.sort(keys)
      for i, k in ipairs(keys) do trades[i] = by_key[k] end
    else
      local key = {}
      for i, t in ipairs(trades) do key[t] = keys[i] end
      table.sort(trades, function(x, y) return key[x] < key[y] end)
      for i, t in ipairs(trades) do keys[i] = key[t] end
    end
  end
  -- self.staging names what failed to encode, for a part to order its
  -- error as one thread would meet it (trades first, in key order)
  local held = self.held_trades
  for i, t in ipairs(trades) do
    local ok, err
    -- trades only: what this bucket would store, held; encoded when the
    -- held trades are put (every HOLD_BUCKETS buckets, and at the end)
    if held then ok, err = pcall(copy_trade, t, KEPT_VALUES_MAX); if ok then held[t.id], err = err, nil end
    elseif hold and not last and self.ticks[t.ticker] and self.ticks[t.ticker].open == t then
      -- a trade the store cannot keep fails in its bucket, as always
      -- (json.fits: surely encodes; else encoded, which names what fails)
      ok = trade_fits(t)
      if not ok then ok, err = pcall(encode_trade, t, st.trade_order) end
      if ok then
        err = nil
        local of = self.open_held[t.ticker]
        if not of then of = {}; self.open_held[t.ticker] = of end
        of[t.id] = t
      end
    else
      ok, err = pcall(st.put_trade, st, t)
      local of = hold and self.open_held[t.ticker]
      if of then of[t.id] = nil end
    end
    if not ok then
      self.staging = "1" .. (keys[i] or store.trade_key(t.id))
      error(self:trade_error(t, err), 0)
    end
  end
  if hold then
    local list -- (none for most buckets)
    if last then
      list = {}
      for _, of in pairs(self.open_held) do for _, t in pairs(of) do list[#list + 1] = t end end
    else -- a held trade its ticker no longer has open (only a ticker with receipts here changes that)
      for _, T in ipairs(names) do
        local of, open = self.open_held[T], self.dirty[T].open
        if of then
          for _, t in pairs(of) do if t ~= open then list = list or {}; list[#list + 1] = t end end
        end
      end
    end
    if list and #list > 0 then self:put_held_open(list) end
  end
  if held then
    self.held_buckets = (self.held_buckets or 0) + 1
    if self.held_buckets >= self.tunables.HOLD_BUCKETS then self:put_held_trades() end
  end
  for _, T in ipairs(names) do
    if not self.known[T] then st:add_ticker(T); self.known[T] = true end
  end
  -- the versions, packed in C (step.versions) straight into the batch,
  -- with no table or string per record; a value the store cannot keep:
  -- the path record by record, which names it (encode_version; the
  -- records put before it are put again, the same bytes)
  local ok = true
  if not self.trades_only then ok = pcall(pack_versions, self.dirty, names, self.schema.view, st:version_keys(bucket)) end
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
--   hold, last   the walk holds open trades' records; its last bucket (stage_bucket)
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
  self:stage_bucket(step.bucket, step)
  if budget then t1 = clock() end
  self.store:write(self.unlogged)
  if budget then budget.pack, budget.commit = budget.pack + (t1 - t0), budget.commit + (clock() - t1) end
  self.new_ids = {}
  if step.after then step.after(done, more) end
  return done, more
end

-- Walks a list of bucket steps in order (see walk_bucket): on this thread,
-- or over the parts in rounds of several buckets (walk_rounds).
function Replay:walk_steps(steps, counters)
  if self.pool then return self:walk_rounds(steps, counters) end
  for _, step in ipairs(steps) do self:walk_bucket(step, counters) end
end

return Replay
