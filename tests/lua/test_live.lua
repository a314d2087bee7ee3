-- test_live.lua — the live engine (retape.live): webhook bodies checked and
-- stored as the original's write path did, then replayed as they arrive; at
-- every point the store equals one fresh replay of the receipts stored so
-- far, whatever the arrival order, duplicates, late receipts or a pass that
-- failed half-way and was done again.
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local stores = require "stores"
local import = require "retape.import"
local live = require "retape.live"

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local D1, D2 = "2026-02-02", "2026-02-03"
local src_db = P.levels_db_for(tmp, t.tempdir(), { D1, D2 })

---------------------------------------------------------------------------
-- the write path's checks (spec §1.2): 400 material, naming the field

local ok_body = '{"ticker":"aapl","ts":1770042600000,"htf_score":12.5,"ltf_score":"3","price":1}'
local row = assert(import.row_from_webhook(ok_body, "ingest", 1770042601234))
t.eq(row.receipt_id, "AAPL:1770042600000:" .. retape.ingest.fnv1a32(ok_body), "receipt_id = T:ts:fnv(raw body)")
t.eq(row.payload_hash, retape.ingest.fnv1a32(ok_body), "payload_hash = fnv(raw body)")
t.eq(row.bucket_5m, 1770042600000, "bucket_5m from the payload's ts")
t.eq(row.received_ts, 1770042601234, "received_ts is the server's")
t.eq(row.payload_json, ok_body, "the raw body is kept byte for byte")
t.eq(row.script_version, nil, "no script_version in the body: NULL")
local spaced = ' {"ticker":"AAPL", "ts":1770042600000,"htf_score":1,"ltf_score":2}\n'
t.eq(assert(import.row_from_webhook(spaced, "ingest", 1770042601234)).payload_json, spaced, "white space around the body is kept too")
for _, c in ipairs {
  { '{"ts":1770042600000,"htf_score":1,"ltf_score":2}', "field 'ticker'" },
  { '{"ticker":"","ts":1770042600000,"htf_score":1,"ltf_score":2}', "field 'ticker'" },
  { '{"ticker":"A","htf_score":1,"ltf_score":2}', "field 'ts'" },
  { '{"ticker":"A","ts":"soon","htf_score":1,"ltf_score":2}', "field 'ts'" },
  { '{"ticker":"A","ts":1770042600000,"ltf_score":2}', "field 'htf_score'" },
  { '{"ticker":"A","ts":1770042600000,"htf_score":1,"ltf_score":{}}', "field 'ltf_score'" },
  { '{"ticker":"A","ts":1770042600000,"htf_score":1,"ltf_score":2', "not JSON (at byte 61)" },
  { '[1,2]', "not a JSON object" },
  { '{"ticker":"A","ts":5,"htf_score":1,"ltf_score":2}', "field 'ts' (5) is outside" },
} do
  local r, why = import.row_from_webhook(c[1], "ingest", 1770042601234)
  t.ok(r == nil and why and why:find(c[2], 1, true), "refused: " .. c[2], tostring(why))
end
local cap = assert(import.row_from_webhook('{"ticker":"AAPL","ts":1770042600000,"script_version":"capture_1.2.0"}',
  "capture", 1770042601234, "2.5.0"))
t.eq(cap.script_version, "capture_1.2.0", "ingest-capture: no scores needed, its own script_version")
t.eq(assert(import.row_from_webhook('{"ticker":"AAPL","ts":1770042600000}', "capture", 1770042601234, "2.5.0")).script_version,
  "capture", "ingest-capture without a script_version is stored as 'capture' (never classified)")
t.fails(function() return import.row_from_webhook('{"ticker":"AAPL","ts":1770042600000,"script_version":"2.5.0"}',
  "capture", 1770042601234, "2.5.0") end, "field 'script_version'", "a capture claiming the classified version is refused")

---------------------------------------------------------------------------
-- a whole day as webhooks: shuffled within buckets, duplicates, late ones

local src = assert(retape.sql.open(src_db))
local all = src:rows("SELECT ticker, ts, bucket_5m, payload_json FROM ingest_receipts ORDER BY ts, receipt_id")
src:close()
local D1_open = retape.time.session(D1)
local D2_open, D2_close = retape.time.session(D2)
local bodies = {}
for _, r in ipairs(all) do
  -- the first day whole (in and out of session) and the first hour of the second
  if retape.time.ny_date(r.ts) == D1 or (r.ts >= D2_open and r.ts < D2_open + 3600000) then bodies[#bodies + 1] = r end
end
local seed = 7
local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
-- arrival order: by bucket, shuffled within it; 1 % sent again at once, 1 % held back 1-6 buckets
local arrivals, held = {}, {}
local i = 1
while i <= #bodies do
  local j = i
  while j < #bodies and bodies[j + 1].bucket_5m == bodies[i].bucket_5m do j = j + 1 end
  local b = {}
  for k = i, j do b[#b + 1] = bodies[k] end
  for k = #b, 2, -1 do local m = rand(k); b[k], b[m] = b[m], b[k] end
  for _, h in ipairs(held[bodies[i].bucket_5m] or {}) do arrivals[#arrivals + 1] = h end
  for _, r in ipairs(b) do
    if rand(100) == 1 then
      local at = r.bucket_5m + 300000 * rand(6)
      held[at] = held[at] or {}
      table.insert(held[at], r)
    else
      arrivals[#arrivals + 1] = r
      if rand(100) == 1 then arrivals[#arrivals + 1] = r end
    end
  end
  i = j + 1
end
for _, list in pairs(held) do for _, r in ipairs(list) do arrivals[#arrivals + 1] = r end end -- the ones held past the end
t.ok(#arrivals > #bodies, "arrivals: every receipt, some twice", #arrivals .. " of " .. #bodies)

local dir = t.tempdir()
local live_db, live_state = dir .. "/live.db", dir .. "/live.state"
local function fresh(state, days)
  local rp = assert(retape.replay.open { db = live_db, state = state })
  local resp = rp:run(days[2] and { from = days[1], to = days[#days] } or { date = days[1] })
  rp:close()
  return resp
end
local function compare(what, days, kv)
  local ref = t.tempdir() .. "/ref"
  fresh(ref, days)
  local a = stores.dump(kv or live_state)
  local b = stores.dump(ref)
  -- the watermark is the live engine's bookkeeping, as the run log is
  for k = #a, 1, -1 do if a[k]:find("^retape:follow=") then table.remove(a, k) end end
  local same, where = stores.same(a, b)
  t.ok(same and #a > 50, what, where)
end

local lv = assert(live.open { db = live_db, state = live_state, writable = true })
local stored, dups, refused, n, checks, failed_once = 0, 0, 0, 0, 0, false
local k, recomputed = 1, 0
while k <= #arrivals do
  local size = rand(40)
  local rows = {}
  for m = k, math.min(#arrivals, k + size - 1) do
    local r, why = import.row_from_webhook(arrivals[m].payload_json, "ingest", 1770000000000 + m)
    if r then rows[#rows + 1] = r else refused = refused + 1; print("# refused: " .. why) end
  end
  k = k + size
  for _, v in ipairs(lv:store(rows)) do
    if v == true then stored = stored + 1 elseif v == false then dups = dups + 1 else error(v) end
  end
  n = n + 1
  if not failed_once and k > #arrivals / 2 then
    -- a pass that fails half-way (as a kill would stop it) is done again from the same watermark
    failed_once = true
    local calls = 0
    lv.rp:set_on_bucket(function() calls = calls + 1; if calls == 1 then error("stopped half-way") end end)
    local ok = pcall(lv.catch_up, lv)
    lv.rp:set_on_bucket(nil)
    t.ok(not ok, "a pass stopped half-way raises")
  end
  local d = lv:catch_up()
  recomputed = recomputed + (d and d.recomputed or 0)
  if n % 25 == 0 and checks < 3 then
    checks = checks + 1
    compare(("after %d receipts: the live store equals a fresh replay of them"):format(stored), { D1 }, lv.st.kv)
  end
end
lv:record { date = D1 }
lv:close()
t.eq(refused, 0, "no real receipt is refused by the write path")
t.eq(stored, #bodies, "every receipt stored once")
t.ok(dups > 0, "exact duplicate bodies ignored", dups)
t.ok(recomputed > 0, "late receipts recomputed the later results they changed", recomputed)
compare("in the end: the live store equals a fresh replay of the two days (byte for byte)", { D1, D2 })

-- the watermark: nothing new, nothing done; the store says where it is
local lv2 = assert(live.open { db = live_db, state = live_state })
t.eq(lv2:catch_up(), nil, "a second pass with nothing new does nothing")
local mark = lv2.st:follow()
t.ok(mark and mark.db == live_db and mark.rowid == stored, "the store records the receipts file and the last rowid", mark and mark.rowid)
lv2:close()

-- rows written by another writer (an import) are picked up the same way
local more = {}
for _, r in ipairs(all) do
  if r.ts >= D2_open + 3600000 and r.ts <= D2_close then more[#more + 1] = r end
end
local w = assert(retape.ingest.writer(live_db))
for m, r in ipairs(more) do assert(w:insert(assert(import.row_from_webhook(r.payload_json, "ingest", 1770042601234 + m)))) end
w:close()
local lv3 = assert(live.open { db = live_db, state = live_state })
local done = lv3:catch_up()
t.ok(done and done.runs == 1, "a backlog of a day is one whole-day run", done and done.runs)
lv3:close()
compare("after an import by another writer: still one fresh replay", { D1, D2 })

-- Late receipts often, small batches, one ticker: a late receipt and the
-- ticker's next buckets in one batch (the later runs must not start from
-- the results the late one made stale: a trade closed by the late receipt
-- came back open).  Found by the serve load test; 30 orders tried.
-- A ticker's rows of D1, and an order of them with about 15 % arriving
-- up to 4 places late (seeded by `seed`).
local function day_rows(ticker)
  local rows = {}
  for _, r in ipairs(all) do if r.ticker == ticker and retape.time.ny_date(r.ts) == D1 then rows[#rows + 1] = r end end
  return rows
end
local function late_order(rows)
  local order, later = {}, {}
  for _, r in ipairs(rows) do
    if rand(100) <= 15 then table.insert(later, { at = #order + 1 + rand(4), r = r }) else order[#order + 1] = r end
  end
  for idx = #later, 1, -1 do table.insert(order, math.min(later[idx].at, #order + 1), later[idx].r) end
  return order
end
-- The order as webhook rows in batches of 1-6, as a receiver stores them.
local function batches_of(order)
  local batches, pos = {}, 1
  while pos <= #order do
    local batch = {}
    for m = pos, math.min(#order, pos + rand(6) - 1) do
      batch[#batch + 1] = assert(import.row_from_webhook(order[m].payload_json, "ingest", 1770042601234 + m))
    end
    pos = pos + #batch
    batches[#batches + 1] = batch
  end
  return batches
end
local w_rows = day_rows("W")
local bad_orders = 0
for trial = 1, 30 do
  seed = 1000 + trial
  local order = late_order(w_rows)
  local wdir = t.tempdir()
  local wdb = wdir .. "/w.db"
  local wl = assert(live.open { db = wdb, state = wdir .. "/w.state", writable = true })
  for _, batch in ipairs(batches_of(order)) do
    wl:store(batch)
    wl:catch_up()
  end
  local rp = assert(retape.replay.open { db = wdb, state = wdir .. "/w.fresh" })
  rp:run { date = D1 }
  rp:close()
  local a, b = stores.dump(wl.st.kv, { "t:", "v:", "stale:" }), stores.dump(wdir .. "/w.fresh", { "t:", "v:", "stale:" })
  wl:close()
  if not stores.same(a, b) then bad_orders = bad_orders + 1 end
end
t.eq(bad_orders, 0, "one ticker, 15 % late, batches of 1-6: every order ends equal to a fresh replay")

-- the source's snapshot, as a pass holds it: nested holds read the outer
-- one's, and its last rowid says which receipts it holds
do
  local sdir = t.tempdir()
  local rx = assert(live.receiver(sdir .. "/s.db"))
  local function add(m)
    local r = assert(import.row_from_webhook(w_rows[m].payload_json, "ingest", 1770042601234 + m))
    assert(rx:store { r }[1] == true)
  end
  add(1)
  local src = assert(retape.source.open(sdir .. "/s.db"))
  t.eq(src:last_rowid(), 1, "last_rowid without a snapshot: the file's")
  assert(src:snapshot(true))
  add(2)
  assert(src:snapshot(true)) -- nested: a run inside a pass
  t.eq(src:last_rowid(), 1, "a nested hold reads the outer snapshot")
  assert(src:snapshot(false))
  add(3)
  t.eq(src:last_rowid(), 1, "the inner release keeps the outer snapshot")
  assert(src:snapshot(false))
  t.eq(src:last_rowid(), 3, "the last release ends it")
  src:close()
  rx:close()
end

-- Receipts stored while a pass runs (webhooks of neighbouring buckets in
-- flight together): the pass's first committed bucket stores the next
-- batch.  Whatever a pass ends with must equal a fresh replay of exactly
-- the rows up to its watermark (what a read between two passes sees): the
-- rows stored meanwhile wait for the next pass, even those in buckets the
-- pass runs later.  (Before one snapshot held the whole pass, each run took
-- its own and a later one saw them: 8 of 8 orders failed.)
local function prefix_store(db_path, upto)
  local pdir = t.tempdir()
  local rx = assert(live.receiver(pdir .. "/p.db"))
  local sdb = assert(retape.sql.open(db_path))
  local rows = sdb:rows("SELECT receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash, script_version, payload_json"
    .. " FROM ingest_receipts WHERE rowid <= ? ORDER BY rowid", upto)
  sdb:close()
  rx:store(rows)
  rx:close()
  local rp = assert(retape.replay.open { db = pdir .. "/p.db", state = pdir .. "/p.state" })
  rp:run { date = D1 }
  rp:close()
  return pdir .. "/p.state"
end
-- ASTS: about 4 receipts a bucket on D1, so a batch stored mid-pass often
-- holds more of a bucket the pass runs later
local a_rows = day_rows("ASTS")
local mid_bad, mid_passes, mid_first = 0, 0, nil
for trial = 1, 8 do
  seed = 2000 + trial
  local batches = batches_of(late_order(a_rows))
  local wdir = t.tempdir()
  local wdb = wdir .. "/w.db"
  local wl = assert(live.open { db = wdb, state = wdir .. "/w.state", writable = true })
  wl:store(batches[1])
  local bad = false
  for b = 2, #batches + 1 do
    wl.rp:set_on_bucket(function()
      if batches[b] then wl:store(batches[b]); batches[b] = nil end
    end)
    wl:catch_up()
    wl.rp:set_on_bucket(nil)
    if batches[b] then wl:store(batches[b]); batches[b] = nil end -- (a pass with no bucket to commit)
    mid_passes = mid_passes + 1
    local mark = wl.st:follow()
    local ref = prefix_store(wdb, mark.rowid)
    local a, c = stores.dump(wl.st.kv, { "t:", "v:", "stale:" }), stores.dump(ref, { "t:", "v:", "stale:" })
    local same, where = stores.same(a, c)
    if not same and not bad then
      bad = true
      mid_first = mid_first or ("order " .. trial .. ", pass " .. (b - 1) .. ", rows up to " .. mark.rowid .. ": " .. where)
    end
  end
  wl:close()
  if bad then mid_bad = mid_bad + 1 end
end
t.eq(mid_bad, 0, ("receipts stored during a pass: every pass ends equal to a fresh replay of the rows up to its "
  .. "watermark (8 orders, %d passes)"):format(mid_passes), mid_first)

os.exit(t.done())
