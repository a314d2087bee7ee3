-- retape.sweep.pass — one group's pass: its variants, each a replay in its
-- own coroutine over its own store, scheduled over one shared read of the
-- receipts (retape.sweep.shared); then each variant's figures.
local source = require "retape.source"
local stats = require "retape.stats"
local kv = require "retape.kv"
local store = require "retape.store"
local grid = require "retape.sweep.grid"
local rank = require "retape.sweep.rank"
local shared_source = require "retape.sweep.shared"

local M = {}


-- Memtable of each variant's store (MB): RocksDB's default, 64 MB, times
-- 64 variants would hold gigabytes of results in memory.
M.WRITE_BUFFER_MB = 8
-- ... and of a store that holds trades only (a few MB a day): 1 MB.
M.TRADES_ONLY_BUFFER_MB = 1

-- M.pass(opts, Rs, variants, idx, dir, progress, want_trades) -> group | nil, failure, at, index
-- One group's pass: the variants idx (a list of indices into Rs/variants,
-- in order) over one shared source of their own, in this Lua state.  Each
-- variant's store is DIR/vNN (NN = its index).  group: { list = { {index,
-- overrides, label, state, resp, metrics, trades?, rows_sum}, ... },
-- reads, loaded = {bucket, ...} }.  A failure comes with where it happened:
-- `at` the bucket being run (-1 before the first) and the variant's index,
-- so that of several groups the one a single pass would have met first is
-- reported.  Everything it opened is closed.
local pass_body
function M.pass(opts, Rs, variants, idx, dir, progress, want_trades)
  -- many variants' garbage: collected incrementally at the Lua default of
  -- 200 % heap growth (measured when the host collected at 130 %: 16
  -- variants, 12 % less CPU for 2 MB more per variant); the host's mode
  -- (generational) and pause are restored afterwards
  local mode = collectgarbage("incremental")
  local pause = collectgarbage("setpause", M.GC_PAUSE)
  local r = table.pack(pcall(pass_body, opts, Rs, variants, idx, dir, progress, want_trades))
  collectgarbage("setpause", pause)
  collectgarbage(mode)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end
M.GC_PAUSE = 200

function pass_body(opts, Rs, variants, idx, dir, progress, want_trades)
  local replay = require "retape.replay"
  local src, err = source.open(opts.db)
  if not src then return nil, err, -1, 0 end
  local shared = shared_source.shared(src)
  local list, threads = {}, {}
  local deep, writes_set = false, {}
  local function cleanup()
    -- variants left waiting (another one failed): close their pending cursors
    for _, co in ipairs(threads) do
      if coroutine.status(co) == "suspended" then coroutine.close(co) end
    end
    for _, v in ipairs(list) do
      if v.rp then v.rp:close(); v.rp = nil end
      if v.store then v.store:close(); v.store = nil end
      if v.kv then v.kv:close(); v.kv = nil end
    end
    src:close()
  end
  for n, i in ipairs(idx) do
    local R = Rs[i]
    local state = string.format("%s/v%02d", dir, i)
    -- many stores at once: smaller memtables bound the memory per variant
    local handle, kerr = kv.open(state, { write_buffer_mb = opts.write_buffer_mb
      or (opts.trades_only and M.TRADES_ONLY_BUFFER_MB or M.WRITE_BUFFER_MB) })
    if not handle then cleanup(); return nil, string.format("variant %d: %s", i, kerr), -1, i end
    local st, serr = store.open(handle)
    if not st then handle:close(); cleanup(); return nil, string.format("variant %d: %s", i, serr), -1, i end
    st.path = state
    list[n] = { index = i, kv = handle, store = st }
    -- one thread each: the sweep runs its variants side by side instead;
    -- db_path: what a standalone replay records (refresh and explain find the receipts)
    local rp, oerr = replay.open { db = shared, db_path = opts.db, state = st, rules = R, batch = opts.batch,
                                   script_version = opts.script_version, trades_only = opts.trades_only, threads = 1,
                                   durable = "run" } -- as retape replay: durable when the variant's run returns
    if not rp then cleanup(); return nil, string.format("variant %d: %s", i, oerr), -1, i end
    local w = opts.copy ~= "deep" and shared_source.payload_writes(R)
    if not w then deep = true else for _, k in ipairs(w) do writes_set[k] = true end end
    local v = list[n]
    v.overrides, v.label, v.state, v.rp = variants[i], grid.label(variants[i]), state, rp
    local params = { date = opts.date, from = opts.from, to = opts.to, ticker = opts.ticker,
                     clean_slate = opts.clean_slate }
    threads[n] = coroutine.create(function() return rp:run(params) end)
  end
  if not deep then
    shared.writes = {}
    for k in pairs(writes_set) do shared.writes[#shared.writes + 1] = k end
    table.sort(shared.writes)
    -- one selective decode for all when every variant reads the same fields
    local spec
    for _, v in ipairs(list) do
      local _, mine = v.rp:decoding()
      if spec == nil then spec = mine elseif spec ~= mine then spec = "" end
    end
    if spec ~= "" then shared.fields = list[1].rp:decoding() end
  end
  -- the scheduler: run every variant until it waits for a bucket; load the
  -- earliest bucket asked for; resume the variants waiting on it
  assert(src:snapshot(true))
  local waiting, runnable = {}, {}
  for n = 1, #list do runnable[n] = true end
  local failure, fail_at, fail_index
  local total_buckets
  local index = 0
  while not failure do
    for n = 1, #list do
      if runnable[n] then
        runnable[n] = nil
        local co = threads[n]
        local rok, a = coroutine.resume(co)
        if not rok then
          -- a bad scope (day, ticker) is the same for every variant: shown as is
          failure = replay.is_param_error(a) and a or string.format("variant %d (%s): %s", list[n].index, list[n].label, tostring(a))
          fail_at, fail_index = shared.bucket or -1, list[n].index
          break
        elseif coroutine.status(co) == "dead" then
          list[n].resp = a
        else
          waiting[n] = a
        end
      end
    end
    if failure then break end
    local want
    for _, c in pairs(waiting) do
      if not want or c.bucket < want.bucket then want = c end
    end
    if not want then break end
    local lok, lerr = pcall(shared.load, shared, want.bucket, want.scope, want.key)
    if not lok then failure, fail_at, fail_index = tostring(lerr), want.bucket, 0; break end
    index = index + 1
    for n, c in pairs(waiting) do
      if c.bucket == want.bucket and c.key == want.key then waiting[n] = nil; runnable[n] = true end
    end
    if progress then
      if not total_buckets then -- the buckets of the scope, as the replays walk them
        local scopem = require "retape.scope"
        local sok, sc = pcall(scopem.resolve, { date = opts.date, from = opts.from, to = opts.to, ticker = opts.ticker },
          shared, list[1].rp:version_kept())
        local wok, work = false, nil
        if sok then wok, work = pcall(scopem.work, sc, shared) end
        total_buckets = wok and #work or 0
      end
      progress { bucket = want.bucket, index = index, total = math.max(total_buckets, index),
                 rows = shared.reads, variants = #list }
    end
  end
  shared.rows = nil
  src:snapshot(false)
  if failure then cleanup(); return nil, failure, fail_at, fail_index end
  -- the figures of every variant, from its store
  local results = require "retape.results"
  for _, v in ipairs(list) do
    local trades = results.trades(v.rp:state_store())
    v.capital = stats.capital_of(v.rp:ruleset())
    v.metrics = rank.figures(trades, shared.loaded, v.capital, v.rp:ruleset())
    if want_trades then v.trades = trades end
    v.rows_sum = v.rp:rows_read_sum()
    v.rp:close(); v.rp = nil
    v.store:close(); v.store = nil
    v.kv:close(); v.kv = nil
  end
  cleanup()
  return { list = list, reads = shared.reads, loaded = shared.loaded }
end

return M
