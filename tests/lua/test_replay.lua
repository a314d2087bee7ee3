-- test_replay.lua — the replay engine: determinism across page and batch
-- sizes, crash and resume, clean slate by day and by ticker on a store
-- holding other days, malformed payloads, failing rules, the endpoint fields.
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local json = retape.json

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)
local D1, D2 = "2026-02-02", "2026-02-03"

-- Two days with synthetic levels so that trades open on both.
local levels_dir = t.tempdir()
local db = P.levels_db(receipts, levels_dir, {
  { day = D1, synthetic_inputs = P.synth_levels(receipts, D1) },
  { day = D2, synthetic_inputs = P.synth_levels(receipts, D2) },
})

-- Every key of a store except the cursor, as one string.
local function dump(dir)
  local kv = assert(retape.kv.open(dir))
  local parts = {}
  for k, v in kv:scan("") do
    -- the cursor and the run manifests (wall-clock times, one per call) are logs, not results
    -- (and the fingerprints' cache: kept as runs ask for fingerprints)
    if k ~= "retape:cursor" and k ~= "retape:page" and not k:find("^retape:run") and not k:find("^\xfffingerprint") then
      parts[#parts + 1] = k .. "=" .. v
    end
  end
  kv:close()
  return table.concat(parts, "\n"), #parts
end

local function replay(state, params, opts)
  opts = opts or {}
  opts.db, opts.state = opts.db or db, state
  local rp = assert(retape.replay.open(opts))
  local ok, resp = pcall(rp.run, rp, params)
  rp:close()
  if not ok then error(resp, 0) end
  return resp
end

-- reference: one plain call for the day
local ref_dir = t.tempdir() .. "/s"
local ref = replay(ref_dir, { date = D1 })
local ref_dump, ref_keys = dump(ref_dir)
t.ok(ref.tradesCreated > 20 and ref.rowsProcessed == 1689, "plain call: whole day, trades open", json.encode(ref))
t.ok(ref_keys > 200, "store holds latest states, trades, open index and lane snapshots", ref_keys)

do -- every version, a ticker at a time; every bucket with a version, from the keys
  local st = assert(retape.store.open(ref_dir))
  local tickers, in_order, same, prev = 0, true, true, nil
  retape.results.each_ticker_versions(st, function(T, versions)
    tickers = tickers + 1
    if prev and not (prev < T) then in_order = false end
    prev = T
    local want = st:versions(T)
    if #want ~= #versions then same = false end
    for i, v in ipairs(want) do
      local got = versions[i]
      if not got or got.bucket ~= v.bucket or got.rec.receipt ~= v.rec.receipt or #got.rec.lanes ~= #v.rec.lanes then same = false end
    end
  end)
  t.eq(tickers, #st:tickers(), "each_ticker_versions: every ticker with versions, once")
  t.ok(in_order and same, "each_ticker_versions: in ticker order, each ticker's versions as st:versions gives them")
  local set, list = {}, {}
  st:each_version(function(_, b) if not set[b] then set[b] = true; list[#list + 1] = b end end)
  table.sort(list)
  t.ok(#list > 10, "the day has buckets", #list)
  t.eq(table.concat(st:version_buckets(), ","), table.concat(list, ","), "version_buckets: every bucket with a version, in order")
  st:close()
end

do -- diff reads the two stores a ticker at a time, merged: tickers in one store only, in order
  local st = assert(retape.store.open(ref_dir))
  local names = st:tickers()
  st:close()
  local two = t.tempdir() .. "/s"
  replay(two, { date = D1, ticker = names[2] .. "," .. names[4] })
  local a, b = assert(retape.store.open(ref_dir)), assert(retape.store.open(two))
  local rep = retape.diff.compare(a, b)
  a:close(); b:close()
  local listed, one_sided, sorted = {}, true, true
  for i, l in ipairs(rep.lanes) do
    listed[#listed + 1] = l.ticker
    if l.first.b ~= "(no receipt)" or l.receipts ~= l.of then one_sided = false end
    if i > 1 and not (rep.lanes[i - 1].ticker < l.ticker) then sorted = false end
  end
  t.eq(#rep.lanes, #names - 2, "diff: every ticker the scoped store lacks, and not the two it replayed alike")
  t.ok(one_sided and sorted, "diff: each listed as '(no receipt)' on B for all its receipts, in ticker order", table.concat(listed, ","))
end

-- same run in pages of 1, 7 and 50 rows, driven like the original client
local src = assert(retape.source.open(db))
local d_open, d_close = retape.time.session(D1)
local buckets = src:buckets { from = d_open, to = d_close, script_version = "2.5.0" }
src:close()
for _, limit in ipairs { 1, 7, 50 } do
  local dir = t.tempdir() .. "/s"
  local rp = assert(retape.replay.open { db = db, state = dir })
  local rows, calls, trades, paging_ok = 0, 0, 0, true
  for _, b in ipairs(buckets) do
    local offset = 0
    repeat
      local r = rp:run { date = D1, bucket = b.bucket, limit = limit, offset = offset }
      calls, rows, trades = calls + 1, rows + r.rowsProcessed, trades + r.tradesCreated
      if r.hasMoreInBucket then
        paging_ok = paging_ok and r.nextBucket == json.null and r.nextBucketOffset == offset + limit
        offset = r.nextBucketOffset
      end
    until not r.hasMoreInBucket
  end
  rp:close()
  t.eq(rows, 1689, ("pages of %d: every row processed once (%d calls)"):format(limit, calls))
  t.ok(paging_ok, ("pages of %d: nextBucketOffset/nextBucket as the original"):format(limit))
  t.eq(trades, ref.tradesCreated, ("pages of %d: same number of trades"):format(limit))
  t.ok(dump(dir) == ref_dump, ("pages of %d: store byte-identical to the plain call"):format(limit))
end

for _, batch in ipairs { 1, 3, 1000 } do
  local dir = t.tempdir() .. "/s"
  replay(dir, { date = D1 }, { batch = batch })
  t.ok(dump(dir) == ref_dump, ("fetch batch %d: store byte-identical"):format(batch))
end

-- single bucket call: next bucket in the answer
do
  local dir = t.tempdir() .. "/s"
  local r = replay(dir, { date = D1, bucket = d_open })
  t.eq(r.bucketProcessed, d_open, "bucket call: processes that bucket")
  t.eq(r.nextBucket, d_open + 300000, "bucket call: nextBucket = next 5-minute bucket")
  t.eq(r.hasMore, true, "bucket call: hasMore")
  local last = replay(dir, { date = D1, bucket = d_close })
  t.eq(last.nextBucket, json.null, "last bucket: no next bucket")
  local outside = replay(dir, { date = D1, bucket = d_close + 300000 })
  t.ok(outside.hasMore == false and outside.rowsProcessed == 0, "bucket outside 09:30-16:00: nothing, hasMore false")
end

-- crash (SIGKILL after bucket 30) and --resume: identical to uninterrupted
do
  local dir = t.tempdir() .. "/s"
  local exe = os.getenv("RETAPE") or "./retape"
  os.execute(("%s run tests/lua/kill_after.lua %s %s %s 30 2>/dev/null"):format(exe, db, dir, D1))
  local kv = assert(retape.kv.open(dir))
  local cursor = json.decode(kv:get("retape:cursor") or "{}")
  kv:close()
  t.ok(cursor.next and cursor.next > buckets[30].bucket and cursor.next <= d_close,
       "killed run left the store at a bucket boundary mid-day", json.encode(cursor))
  local r = replay(dir, { date = D1, resume = true })
  t.ok(r.buckets < #buckets and r.buckets > 0, "resume processes only the remaining buckets", r.buckets)
  t.ok(dump(dir) == ref_dump, "crash + resume: store byte-identical to the uninterrupted run")
end

-- durable = "run": the buckets are committed without the store's log; a
-- kill loses those since the last flush (here: the persist() after bucket
-- 20, or none), the store stays at a bucket boundary, --resume finishes it
for _, case in ipairs { { persist = 20, threads = 1 }, { persist = 20, threads = 2 }, { threads = 1 } } do
  local dir = t.tempdir() .. "/s"
  local exe = os.getenv("RETAPE") or "./retape"
  local what = string.format("durable run, %s, %d thread(s)",
    case.persist and ("persist after bucket " .. case.persist) or "no flush", case.threads)
  os.execute(("%s run tests/lua/kill_after.lua %s %s %s 30 %d run %s 2>/dev/null"):format(exe, db, dir, D1, case.threads,
    case.persist or ""))
  local kv = assert(retape.kv.open(dir))
  local cursor = json.decode(kv:get("retape:cursor") or "{}")
  local versions = 0
  for _ in kv:scan("v:") do versions = versions + 1 end
  kv:close()
  if case.persist then
    t.ok(cursor.next and cursor.next > buckets[case.persist].bucket and cursor.next <= buckets[case.persist + 1].bucket,
         what .. ": killed after bucket 30, the store holds buckets 1..20 (its cursor after bucket 20)", json.encode(cursor))
  else
    t.ok(cursor.start and cursor.next == cursor.start and versions == 0,
         what .. ": killed after bucket 30, the store holds none of its buckets but knows the run was interrupted",
         json.encode(cursor) .. " versions " .. versions)
  end
  local r = replay(dir, { date = D1, resume = true }, { durable = "run" })
  t.eq(r.buckets, #buckets - (case.persist or 0), what .. ": resume walks the buckets the store does not hold")
  t.ok(dump(dir) == ref_dump, what .. ": crash + resume: store byte-identical to the uninterrupted run")
end
-- durable = "run", killed at the run's manifest: after the walk and what
-- follows it (settle_stale's marks, the refresh's cursor), which are
-- written unlogged like the buckets so that the run's one flush overlaps
-- its fingerprints' reads; the kill loses them with the buckets since the
-- last flush, and the next writes finish the run to the same store
do
  local exe = os.getenv("RETAPE") or "./retape"
  local function finish(dir) -- what a user runs next: --resume when a run is left, then a refresh
    local s = assert(retape.store.open(dir, true))
    local cursor = s:cursor()
    s:close()
    if cursor and cursor.scope then replay(dir, { date = D1, resume = true }, { durable = "run" }) end
    replay(dir, { refresh = true }, { durable = "run" })
  end
  for _, threads in ipairs { 1, 2 } do
    local dir = t.tempdir() .. "/s"
    os.execute(("%s run tests/lua/kill_at_record.lua %s %s '%s' %d 2>/dev/null"):format(exe, db, dir,
      json.encode { date = D1 }, threads))
    local s = assert(retape.store.open(dir, true))
    local left = s:cursor()
    s:close()
    t.ok(left ~= nil, threads .. " thread(s): a fresh run killed at its manifest leaves its cursor (a run or a refresh to finish)",
      json.encode(left))
    finish(dir)
    t.ok(dump(dir) == ref_dump, threads .. " thread(s): a fresh run killed at its manifest, finished = one uninterrupted run")
  end
  -- a re-run of D1 over a D1..D2 store (same rules: settle_stale drops D2's marks)
  local want = t.tempdir() .. "/s"
  replay(want, { from = D1, to = D2 }, { durable = "run" })
  local dir = t.tempdir() .. "/s"
  replay(dir, { from = D1, to = D2 }, { durable = "run" })
  os.execute(("%s run tests/lua/kill_at_record.lua %s %s '%s' 2>/dev/null"):format(exe, db, dir, json.encode { date = D1 }))
  local s = assert(retape.store.open(dir, true))
  local st = retape.manifest.status(s)
  s:close()
  t.ok(st.interrupted or #st.stale > 0, "a re-run killed at its manifest: the store knows what is left to do",
    json.encode(st.stale))
  finish(dir)
  t.ok(dump(dir) == dump(want), "a re-run of D1 over D1..D2 killed at its manifest, finished = the uninterrupted store")
end
do
  local dir = t.tempdir() .. "/s"
  local r = replay(dir, { date = D1 }, { durable = "run" })
  t.ok(dump(dir) == ref_dump and r.buckets == #buckets, "durable run: the same store as durable bucket")
  local ok, err = retape.replay.open { db = db, state = t.tempdir() .. "/s", durable = "always" }
  t.ok(ok == nil and err:find('durable is "bucket" or "run", not always', 1, true), "durable: other values refused", err)
end

-- A ruleset file: the default one whose trades are open while their
-- status is "OPEN", with R.simulate(p, ts, book) as `simulate` (Lua text).
local function trade_rules(name, simulate)
  local path = t.tempdir() .. "/" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write('local R = require("retape").rules.load("default")\nR.name = "', name, '"\n',
    'function R.trade_is_open(tr) return tr.status == "OPEN" end\n', simulate, "\nreturn R\n")
  f:close()
  return path
end

-- The records of open trades: a run's walk holds them until its last
-- bucket, or until the trade stops being its ticker's open trade, and
-- writes them as the trades are then.  Rules whose trades change at every
-- receipt (each change touched) and are replaced every seventh bucket by
-- a new one, the old one left open (not closed, not touched again):
-- killed after bucket 30 and resumed, on 1 and 2 threads, the store
-- equals one uninterrupted run, the replaced trades' records included
-- (written at the bucket that replaced them, or a kill loses them).
do
  local rules = trade_rules("replacing", [[
function R.simulate(p, ts, book)
  local T = p.ticker
  local open, b = book.open(T), ts // 300000
  -- every seventh bucket the open trade is replaced, left as it was
  if open and b % 7 == 0 and open.entry_ts // 300000 ~= b then open = nil end
  if open then open.receipts, open.last_ts = open.receipts + 1, ts; book.touch(open)
  else book.add { id = book.next_id(T, ts), ticker = T, status = "OPEN", entry_ts = ts, receipts = 0 } end
end]])
  local what = "replacing rules"
  local fresh = t.tempdir() .. "/s"
  replay(fresh, { date = D1 }, { rules = rules })
  local fresh_dump = dump(fresh)
  local st = assert(retape.store.open(fresh))
  local open_of, replaced, changed = {}, 0, 0
  for _, tr in ipairs(retape.replay.trades(st)) do
    if tr.status == "OPEN" then
      open_of[tr.ticker] = (open_of[tr.ticker] or 0) + 1
      if open_of[tr.ticker] == 2 then replaced = replaced + 1 end
      if tr.receipts > 1 then changed = changed + 1 end
    end
  end
  st:close()
  t.ok(replaced > 10 and changed > 10, what .. ": tickers whose open trade was replaced, the old one left open; "
    .. "trades recorded as they changed", replaced .. " " .. changed)
  for _, threads in ipairs { 1, 2 } do
    local dir = t.tempdir() .. "/s"
    local exe = os.getenv("RETAPE") or "./retape"
    os.execute(("%s run tests/lua/kill_after.lua %s %s %s 30 %d bucket '' %s 2>/dev/null"):format(exe, db, dir, D1,
      threads, rules))
    local kv = assert(retape.kv.open(dir))
    local cursor = json.decode(kv:get("retape:cursor") or "{}")
    kv:close()
    t.ok(cursor.next and cursor.next > buckets[30].bucket, what .. ", " .. threads .. " thread(s): killed mid-day",
      json.encode(cursor))
    replay(dir, { date = D1, resume = true }, { rules = rules })
    t.ok(dump(dir) == fresh_dump, what .. ", " .. threads .. " thread(s): killed and resumed = one uninterrupted run")
  end
end

-- A held open trade the store cannot keep (a string whose JSON, every
-- byte escaped, passes 4 MB, though it packs in 1 MB) stops the run at
-- its bucket, as when every bucket wrote it: the whole day and the same
-- day run bucket by bucket stop at the same bucket, naming the trade.
do
  local rules = trade_rules("heavy_note", [[
function R.simulate(p, ts, book)
  local T = p.ticker
  local open = book.open(T)
  if not open then book.add { id = book.next_id(T, ts), ticker = T, status = "OPEN", entry_ts = ts, receipts = 0 }; return end
  open.receipts = open.receipts + 1
  open.note = open.receipts == 9 and string.rep("", 1000000) or nil
  book.touch(open)
end]])
  local whole = t.tempdir() .. "/s"
  local ok, err = pcall(replay, whole, { date = D1 }, { rules = rules })
  local kv = assert(retape.kv.open(whole))
  local stopped = json.decode(kv:get("retape:cursor") or "{}").next
  kv:close()
  t.ok(not ok and err:find("cannot be stored", 1, true) and err:find("4194304 bytes", 1, true) and stopped,
       "a held trade whose JSON passes 4 MB stops the whole day's run, naming the trade", err)
  local split, at, split_err = t.tempdir() .. "/s", nil, nil
  for _, b in ipairs(buckets) do
    local bok, berr = pcall(replay, split, { date = D1, bucket = b.bucket }, { rules = rules })
    if not bok then at, split_err = b.bucket, berr; break end
  end
  t.ok(at == stopped and split_err == err, "bucket by bucket: the same bucket and message",
       tostring(at) .. " " .. tostring(stopped) .. " " .. tostring(split_err))
end

-- clean slate by day on a store holding two days
local function trades_of(dir)
  local st = assert(retape.store.open(dir))
  local list = retape.replay.trades(st)
  st:close()
  local by_id = {}
  for _, tr in ipairs(list) do by_id[tr.id] = retape.store.encode_trade(tr, retape.rules.load().trade_order) end
  return list, by_id
end
do
  local dir = t.tempdir() .. "/s"
  replay(dir, { from = D1, to = D2 })
  local before, before_ids = trades_of(dir)
  local d2_open = retape.time.session(D2)
  local n_d2 = 0
  for _, tr in ipairs(before) do if tr.entry_ts >= d2_open then n_d2 = n_d2 + 1 end end
  t.ok(n_d2 > 0 and n_d2 < #before, "two days: trades on both days", n_d2 .. "/" .. #before)
  local r = replay(dir, { date = D2, clean_slate = true })
  t.eq(r.tradesPurged, n_d2, "clean slate by day purges exactly that day's trades")
  local after, after_ids = trades_of(dir)
  local kept = true
  for id, text in pairs(before_ids) do
    local tr = json.decode(text)
    local closed_on_d1 = tr.entry_ts < d2_open and (tr.status == "WIN" or tr.status == "LOSS" or tr.status == "FLAT")
      and retape.views.iso_ms(tr.lastUpdate) < d2_open
    if closed_on_d1 and after_ids[id] ~= text then kept = false end
  end
  t.ok(kept, "clean slate by day: trades of the other day closed before it are untouched")
  local in_day = 0
  for _, tr in ipairs(after) do if tr.entry_ts >= d2_open then in_day = in_day + 1 end end
  t.eq(in_day, r.tradesCreated, "after clean slate the day's trades are exactly the re-run's")
  -- the invariant: the same as a fresh replay of D1, then D2 with a clean slate
  local fresh = t.tempdir() .. "/s"
  replay(fresh, { date = D1 })
  replay(fresh, { date = D2, clean_slate = true })
  t.ok(dump(dir) == dump(fresh), "clean slate by day over a two-day store = fresh D1 then clean D2")
end

-- clean slate by ticker: nothing of another ticker changes
do
  local dir = t.tempdir() .. "/s"
  replay(dir, { from = D1, to = D2 })
  local before = trades_of(dir)
  local target
  for _, tr in ipairs(before) do if tr.entry_ts >= retape.time.session(D2) then target = tr.ticker; break end end
  local kv = assert(retape.kv.open(dir))
  local others = {}
  for _, prefix in ipairs { "v:", "t:", "tk:" } do
    for k, v in kv:scan(prefix) do
      if not k:find(target, 1, true) then others[#others + 1] = k .. "=" .. v end
    end
  end
  kv:close()
  local r = replay(dir, { date = D2, ticker = target, clean_slate = true })
  t.ok(r.tradesPurged >= 1, "clean slate by ticker purges that ticker's trades of the day", target)
  kv = assert(retape.kv.open(dir))
  local now = {}
  for _, prefix in ipairs { "v:", "t:", "tk:" } do
    for k, v in kv:scan(prefix) do
      if not k:find(target, 1, true) then now[#now + 1] = k .. "=" .. v end
    end
  end
  kv:close()
  t.ok(table.concat(now, "\n") == table.concat(others, "\n"), "clean slate by ticker: every other ticker's state and trades unchanged")
end

-- a malformed payload in the middle of a bucket
do
  local dir = t.tempdir()
  local bad_db = dir .. "/bad.db"
  local w = assert(retape.ingest.writer(bad_db))
  local b = 1770042600000
  local function row(ticker, ts, payload)
    w:insert { receipt_id = ticker .. ":" .. ts .. ":x", ticker = ticker, ts = ts, bucket_5m = b,
               received_ts = ts, payload_hash = "x", payload_json = payload }
  end
  row("AAA", b, '{"ticker":"AAA","price":10,"htf_score":20,"ltf_score":2,"state":"HTF_BULL_LTF_BULL","completion":0.1,"phase_pct":0.1}')
  row("BBB", b + 60000, '{"ticker":"BBB","price":10,"htf_score":')
  row("CCC", b + 120000, '{"ticker":"CCC","price":10,"htf_score":-20,"ltf_score":-2,"state":"HTF_BEAR_LTF_BEAR","completion":0.1,"phase_pct":0.1}')
  assert(w:close())
  local errors = {}
  local r = replay(dir .. "/s", { date = D1 }, { db = bad_db, on_error = function(m) errors[#errors + 1] = m end })
  t.eq(r.rowsProcessed, 2, "malformed payload: the other rows of the bucket are processed")
  t.eq(r.errors, 1, "malformed payload: counted")
  t.ok(errors[1] and errors[1]:find("receipt BBB:" .. (b + 60000) .. ":x: malformed payload_json", 1, true),
       "malformed payload: reported with its receipt id", errors[1])
  local st = assert(retape.store.open(dir .. "/s"))
  local latest = retape.results.latest(st)
  t.ok(latest.CCC ~= nil and latest.BBB and latest.BBB.receipt_id == nil,
       "malformed payload: later rows stored, the bad one counted but not processed")
  st:close()
end

-- a ruleset that raises mid-day: error with file:line, store at the last bucket boundary
do
  local dir = t.tempdir() .. "/s"
  local R = retape.rules.load()
  local classify = R.classify
  local fail_at = buckets[10].bucket
  R.classify = function(d)
    if d.ts >= fail_at then error("rule exploded") end
    return classify(d)
  end
  local rp = assert(retape.replay.open { db = db, state = dir, rules = R })
  local ok, err = pcall(rp.run, rp, { date = D1 })
  rp:close()
  t.ok(not ok and tostring(err):find("test_replay.lua:%d+: rule exploded") ~= nil, "failing rule: error names file:line", err)
  local kv = assert(retape.kv.open(dir))
  local cursor = json.decode(kv:get("retape:cursor"))
  local partial = false
  for k in kv:scan("v:") do
    if tonumber(k:sub(-13)) >= fail_at then partial = true end
  end
  kv:close()
  t.eq(cursor.next, buckets[10].bucket, "failing rule: cursor at the bucket after the last committed one")
  t.ok(not partial, "failing rule: nothing of the failing bucket was written")
  -- and a fixed ruleset resumes from there to the reference result
  replay(dir, { date = D1, resume = true })
  t.ok(dump(dir) == ref_dump, "after fixing the rule, --resume ends identical to a clean run")
end


-- a payload nested too deep is a malformed receipt: reported, skipped, the run goes on
do
  local dir = t.tempdir()
  local deep_db = dir .. "/deep.db"
  local w = assert(retape.ingest.writer(deep_db))
  local b = 1770042600000
  local deep = string.rep('{"a":', 70) .. "1" .. string.rep("}", 70)
  w:insert { receipt_id = "AAA:1:x", ticker = "AAA", ts = b, bucket_5m = b, received_ts = b, payload_hash = "x",
    payload_json = '{"ticker":"AAA","price":10,"state":"HTF_BULL_LTF_BULL","flags":' .. deep .. '}' }
  w:insert { receipt_id = "BBB:2:x", ticker = "BBB", ts = b + 1, bucket_5m = b, received_ts = b, payload_hash = "x",
    payload_json = '{"ticker":"BBB","price":10,"htf_score":20,"ltf_score":2,"state":"HTF_BULL_LTF_BULL"}' }
  assert(w:close())
  local errors = {}
  local r = replay(dir .. "/s", { date = D1 }, { db = deep_db, on_error = function(m) errors[#errors + 1] = m end })
  t.ok(r.rowsProcessed == 1 and r.errors == 1 and errors[1] and errors[1]:find("receipt AAA:1:x: malformed payload_json", 1, true)
    and errors[1]:find("nested", 1, true), "a payload nested 70 deep is reported with its receipt id and skipped", errors[1])
end

-- --resume: refused with nothing to resume, or for another scope than the interrupted run
do
  local dir = t.tempdir() .. "/s"
  replay(dir, { date = D1 })
  t.fails(function() replay(dir, { date = D1, resume = true }) end, "nothing to resume", "resume without an interrupted run is refused")
  local rp = assert(retape.replay.open { db = db, state = dir, on_bucket = function(p) if p.index == 5 then error("killed") end end })
  pcall(rp.run, rp, { date = D2 })
  rp:close()
  t.fails(function() replay(dir, { date = D1, resume = true }) end, "the interrupted run in this store is",
    "resume with another scope names the interrupted run")
  t.fails(function() replay(dir, { date = D2, resume = true }, { rules = "worker-2026-02-02" }) end, "rules: store default, this run worker-2026-02-02",
    "resume (or any run) with other rules is refused")
  local r = replay(dir, { date = D2, resume = true })
  t.ok(r.buckets > 0, "the same scope resumes")
end

-- one consistent snapshot of the receipts for a whole call: rows imported
-- while a replay runs are not seen by it (the import waits for it)
do
  local dir = t.tempdir()
  local snap_db = dir .. "/snap.db"
  local w = assert(retape.ingest.writer(snap_db))
  local b = 1770042600000
  for i = 0, 9 do
    local T = string.format("T%02d", i)
    w:insert { receipt_id = T .. ":" .. (b + i * 300000) .. ":x", ticker = T, ts = b + i * 300000, bucket_5m = b + i * 300000,
      received_ts = b, payload_hash = "x", payload_json = '{"price":10,"htf_score":20,"ltf_score":2,"state":"HTF_BULL_LTF_BULL"}' }
  end
  assert(w:close())
  local exe = os.getenv("RETAPE") or "./retape"
  local added = false
  local r = replay(dir .. "/s", { date = D1 }, { db = snap_db, on_bucket = function(p)
    if p.index == 2 and not added then
      added = true
      -- a second process imports a row into a later bucket, with a short wait
      local line = string.format('{"receipt_id":"LATE:%d:y","ticker":"LATE","ts":%d,"bucket_5m":%d,"payload":{"price":1}}',
        b + 3 * 300000, b + 3 * 300000, b + 3 * 300000)
      local f = assert(io.open(dir .. "/late.jsonl", "w")); f:write(line, "\n"); f:close()
      os.execute(string.format("(sleep 0.2; %s import --db %s %s/late.jsonl > %s/import.out 2>&1) &", exe, snap_db, dir, dir))
      os.execute("sleep 0.6")
    end
  end })
  t.eq(r.rowsProcessed, 10, "rows imported during a replay are not seen by it")
  os.execute("sleep 5.5")
  local r2 = replay(dir .. "/s2", { date = D1 }, { db = snap_db })
  t.eq(r2.rowsProcessed, 11, "the import went through after the replay")
end

-- parameters
t.fails(function() replay(t.tempdir() .. "/s", { date = "2026-13-45" }) end, "is not a date", "bad date rejected")
t.fails(function() replay(t.tempdir() .. "/s", { date = D1, limit = 5 }) end, "give bucket too", "limit without bucket rejected")
t.fails(function() return retape.replay.open { db = db, state = t.tempdir() .. "/s", rules = "nope" } end, "no ruleset 'nope'", "unknown ruleset named")

os.exit(t.done())
