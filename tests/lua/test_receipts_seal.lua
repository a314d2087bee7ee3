-- test_receipts_seal.lua — a write checks that the receipts under the days
-- its store covers are those it replayed (retape.manifest.check_write).
-- Counting them scans every covered day; when the receipts file has not
-- changed since they last matched (the store's seal: the file's identity,
-- size and times, looked at before the run's snapshot), a run skips the
-- count.  Any change to the file is still found and named, in rollback and
-- in WAL mode; the seal is bookkeeping, not results (stores equal with or
-- without it); a look that cannot vouch (a file changed within the settle
-- time, a snapshot begun before the look) seals nothing.
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local manifest = require "retape.manifest"
local fs = retape.fs
local sql = require "retape.sql"

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local D1 = "2026-02-02"
local dir = t.tempdir()
local db = P.levels_db_for(tmp, dir, { D1 })
local abs_db = fs.absolute(db)
local settle = manifest.SEAL_SETTLE_MS

-- fs.stat: what a look is made of
do
  local s = assert(fs.stat(db))
  t.ok(s.size > 0 and s.ino > 0 and s.mtime_ns > 1.7e18 and s.ctime_ns >= s.mtime_ns, "fs.stat: size, inode, times in ns")
  t.eq(fs.stat(dir .. "/no-such-file"), false, "fs.stat: a missing file is false")
  t.eq(fs.stat(db .. "/x"), false, "fs.stat: a path through a file is missing too")
end

-- Every key of a store but the run log and the fingerprints' cache.
local function dump(state)
  local kv = assert(retape.kv.open(state))
  local parts = {}
  for k, v in kv:scan("") do
    if not k:find("^retape:run") and not k:find("^\xfffingerprint") then parts[#parts + 1] = k .. "=" .. v end
  end
  kv:close()
  return table.concat(parts, "\n")
end

-- The seal of the store an open replay writes.
local function seal_of_open(rp)
  return rp:state_store():receipts_seal()
end

local function seal_of(state)
  local st = assert(retape.store.open(state))
  local s = st:receipts_seal()
  st:close()
  return s
end

-- One run; returns its response, how many times it counted the covered
-- days, and the days it found grown.  opts.hold: run inside a snapshot the
-- caller began first.
local function run(state, params, opts)
  opts = opts or {}
  local rp = assert(retape.replay.open { db = opts.db or db, state = state, rules = "worker-2026-02-02" })
  local before = manifest.days_counted
  local src = rp:receipts()
  if opts.hold then assert(src:snapshot(true)) end
  local ok, resp = pcall(rp.run, rp, params)
  if opts.hold then src:snapshot(false) end
  local grown = rp:grown_days()
  rp:close()
  if not ok then error(resp, 0) end
  return resp, manifest.days_counted - before, grown
end

local function exec(path, text)
  local h = assert(sql.open(path))
  h:exec(text)
  h:close()
end

-- the files of these tests are fresh: a look vouches for a file at once
manifest.SEAL_SETTLE_MS = 0

-- 1. a new store is sealed by its first run; a re-run of one ticker then
-- counts nothing, and leaves what a run that counts leaves
local s1 = dir .. "/s1"
local r, counted = run(s1, { date = D1 })
t.ok(r.rowsProcessed > 1000, "the day replayed", r.rowsProcessed)
t.eq(counted, 0, "a new store: nothing recorded to count")
local seal = seal_of(s1)
t.ok(seal and seal.path == abs_db and seal.look:find("^%d+:%d+:%d+:%d+:%d+$"),
  "the first run seals the receipts record (device, inode, size, times)", seal and seal.look)
local unsealed = dir .. "/unsealed"
assert(os.execute(string.format("cp -r %q %q", s1, unsealed)))
do -- the copy without its seal
  local kv = assert(retape.kv.open(unsealed))
  kv:delete("retape:runs:seal")
  kv:close()
end
t.eq(seal_of(unsealed), nil, "the copy holds no seal")
_, counted = run(s1, { date = D1, ticker = "AMD" })
t.eq(counted, 0, "a sealed store, the file unchanged: a ticker's re-run counts no day")
_, counted = run(unsealed, { date = D1, ticker = "AMD" })
t.eq(counted, 1, "the unsealed copy: the same re-run counts the days")
t.ok(seal_of(unsealed) ~= nil, "... and seals them")
t.ok(dump(s1) == dump(unsealed), "the same results with and without the seal")
_, counted = run(s1, { date = D1 })
t.eq(counted, 0, "a whole day re-run on a sealed store counts nothing either")
t.eq(seal_of(s1) and seal_of(s1).look, seal.look, "... and keeps the seal (its fingerprint noted anew)")

-- 2. a receipt added under the covered day (rollback journal): found and
-- noted, as without a seal; the store is not sealed until the day is replayed
exec(db, [[INSERT INTO ingest_receipts (receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash, script_version, payload_json)
  VALUES ('ZZZ:1770045000000:1', 'ZZZ', 1770045000000, 1770045000000, 1770045000000, '1', '2.5.0',
  '{"ticker":"ZZZ","ts":1770045000000,"price":10,"htf_score":1,"ltf_score":1,"state":"HTF_BULL_LTF_BULL"}')]])
local grown
_, counted, grown = run(s1, { date = D1, ticker = "AMD" })
t.eq(counted, 1, "the file changed: the re-run counts the days")
t.eq(#grown == 1 and grown[1].day, D1, "... and names the day that gained a receipt")
t.eq(seal_of(s1), nil, "a day that grew and was not replayed: no seal")
_, counted, grown = run(s1, { date = D1, ticker = "AMD" })
t.ok(counted == 1 and #grown == 1, "the next re-run counts again and names it again")
_, counted = run(s1, { date = D1 })
t.ok(seal_of(s1) ~= nil, "the day replayed whole: sealed again")
_, counted, grown = run(s1, { date = D1, ticker = "AMD" })
t.ok(counted == 0 and #grown == 0, "then a re-run counts nothing", counted)

-- 3. a receipt removed: the write is refused as without a seal
exec(db, "DELETE FROM ingest_receipts WHERE receipt_id = 'ZZZ:1770045000000:1'")
t.fails(function() run(s1, { date = D1, ticker = "AMD" }) end, "receipts changed under days this store covers",
  "a receipt removed under a sealed day: refused")

-- 4. WAL mode: a write lands in the -wal file, which the look includes
local wdir = t.tempdir()
local wdb = wdir .. "/wal.db"
assert(os.execute(string.format("cp %q %q", db, wdb)))
exec(wdb, "PRAGMA journal_mode = WAL")
local s4 = wdir .. "/s4"
run(s4, { date = D1 }, { db = wdb })
local wseal = seal_of(s4)
t.ok(wseal ~= nil, "a receipts file in WAL mode: sealed", wseal and wseal.look)
do -- a writer keeps the WAL open, so its change is in the -wal file when the run looks
  local h = assert(sql.open(wdb))
  h:exec("PRAGMA journal_mode = WAL")
  h:exec([[INSERT INTO ingest_receipts (receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash, script_version, payload_json)
    VALUES ('ZZZ:1770045000000:2', 'ZZZ', 1770045000000, 1770045000000, 1770045000000, '1', '2.5.0',
    '{"ticker":"ZZZ","ts":1770045000000,"price":10,"htf_score":1,"ltf_score":1,"state":"HTF_BULL_LTF_BULL"}')]])
  _, counted, grown = run(s4, { date = D1, ticker = "AMD" }, { db = wdb })
  h:close()
end
t.ok(counted == 1 and #grown == 1 and grown[1].day == D1, "a receipt added through the WAL: counted and named", counted)

-- 5. looks that cannot vouch seal nothing
manifest.SEAL_SETTLE_MS = 3600 * 1000
local s5 = dir .. "/s5"
run(s5, { date = D1 })
t.eq(seal_of(s5), nil, "a file changed within the settle time: no seal")
manifest.SEAL_SETTLE_MS = 0
local s6 = dir .. "/s6"
run(s6, { date = D1 }, { hold = true })
t.eq(seal_of(s6), nil, "a run inside a snapshot begun before it: no seal")
run(s6, { date = D1 })
t.ok(seal_of(s6) ~= nil, "the same store's next run on its own: sealed")

-- 5b. a write between the look and the snapshot: the look after the
-- snapshot differs, so nothing is vouched for and the change is found
do
  local s7 = dir .. "/s7"
  run(s7, { date = D1 })
  t.ok(seal_of(s7) ~= nil, "a store sealed")
  local orig, wrote = manifest.receipts_look, false
  manifest.receipts_look = function(...)
    local look = orig(...)
    if not wrote then
      wrote = true
      exec(db, "DELETE FROM ingest_receipts WHERE rowid = (SELECT min(rowid) FROM ingest_receipts WHERE ticker = 'CVNA')")
    end
    return look
  end
  local ok, err = pcall(run, s7, { date = D1, ticker = "AMD" })
  manifest.receipts_look = orig
  t.ok(wrote and not ok and tostring(err):find("receipts changed under days", 1, true),
    "a receipt removed between the look and the snapshot: counted and refused", tostring(err))
  t.eq(seal_of(s7) and "sealed" or "none", "sealed", "... the refused run wrote nothing (its seal as it was)")
  t.fails(function() run(s7, { date = D1, ticker = "AMD" }) end, "receipts changed under days", "the next run counts and refuses too")
end

-- 5c. the file renamed over while a replay keeps the old one open: its
-- next run does not vouch for the new file with the old one's counts
do
  local rdir = t.tempdir()
  local rdb = rdir .. "/r.db"
  assert(os.execute(string.format("cp %q %q", db, rdb)))
  local s8 = rdir .. "/s8"
  local rp = assert(retape.replay.open { db = rdb, state = s8, rules = "worker-2026-02-02" })
  rp:run { date = D1 }
  local sealed = seal_of_open(rp)
  local new = rdir .. "/r.db.new"
  assert(os.execute(string.format("cp %q %q", rdb, new)))
  exec(new, "DELETE FROM ingest_receipts WHERE rowid = (SELECT min(rowid) FROM ingest_receipts WHERE ticker = 'CVNA')")
  assert(os.rename(new, rdb))
  local before = manifest.days_counted
  -- (the new file is fresh: let a look vouch for it all the same, so that
  -- only its identity can refuse)
  manifest.SEAL_SETTLE_MS = -60000
  rp:run { date = D1, ticker = "AMD" } -- reads the file it has open: the old one
  manifest.SEAL_SETTLE_MS = 0
  rp:close()
  t.ok(sealed and manifest.days_counted - before == 1, "the replay's next run counts (the path names another file now)")
  t.eq(seal_of(s8), nil, "... and leaves no seal")
  t.fails(function() run(s8, { date = D1, ticker = "AMD" }, { db = rdb }) end, "receipts changed under days",
    "a new process reads the new file: counted and refused")
end

-- 5d. a symbolic link to a file in WAL mode: its WAL is the target's, and
-- a commit there (a writer keeping it open) is seen
do
  local ldir = t.tempdir()
  local target = ldir .. "/real.db"
  assert(os.execute(string.format("cp %q %q", db, target)))
  exec(target, "PRAGMA journal_mode = WAL")
  local link = ldir .. "/link.db"
  assert(os.execute(string.format("ln -s %q %q", target, link)))
  local s9 = ldir .. "/s9"
  run(s9, { date = D1 }, { db = link })
  t.ok(seal_of(s9) ~= nil, "replayed through a link: sealed")
  local h = assert(sql.open(target))
  h:exec("PRAGMA journal_mode = WAL")
  h:exec("DELETE FROM ingest_receipts WHERE rowid = (SELECT min(rowid) FROM ingest_receipts WHERE ticker = 'CVNA')")
  local ok, err = pcall(run, s9, { date = D1, ticker = "AMD" }, { db = link })
  h:close()
  t.ok(not ok and tostring(err):find("receipts changed under days", 1, true),
    "a commit in the target's WAL, read through the link: counted and refused", tostring(err))
end

-- 6. another receipts file (--rebuild): the receipts record is replaced, the seal names the new file
local other = dir .. "/other.db"
assert(os.execute(string.format("cp %q %q", db, other)))
t.fails(function() run(s6, { date = D1 }, { db = other }) end, "this store was replayed from", "another file: refused")
run(s6, { date = D1, rebuild = true }, { db = other })
t.eq(seal_of(s6), nil, "--rebuild from another file: the old seal is gone (no count made, nothing sealed)")
_, counted = run(s6, { date = D1, ticker = "AMD" }, { db = other })
t.eq(counted, 1, "the next re-run counts the new file's days")
local s6seal = seal_of(s6)
t.ok(s6seal and s6seal.path == fs.absolute(other), "... and seals them with the new file", s6seal and s6seal.path)

manifest.SEAL_SETTLE_MS = settle
t.done()
