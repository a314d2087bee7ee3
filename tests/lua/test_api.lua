-- test_api.lua — the engine API as a script sees it: source, kv, time,
-- ingest/import, including the error messages.
local t = require "tap"
local retape = require "retape"
local dir = t.tempdir()
local db = dir .. "/r.db"

-- import: receipt lines, raw payload lines, bad lines, duplicates
local rejected = {}
local total = assert(retape.import.run(db, { "tests/fixtures/mixed.jsonl" }, {
  report = function(m) rejected[#rejected + 1] = m end }))
t.eq(total.read, 7, "import reads every non-blank line")
t.eq(total.inserted, 3, "three rows inserted (receipt, raw payload, capture)")
t.eq(total.duplicate, 1, "the repeated receipt id is a duplicate")
t.eq(total.rejected, 3, "three bad lines rejected")
t.ok(rejected[1] and rejected[1]:find("mixed.jsonl:3: malformed JSON", 1, true), "bad JSON named with its line", rejected[1])
t.ok(rejected[2] and rejected[2]:find("mixed.jsonl:4: field 'ts' is missing", 1, true), "missing ts named with its line", rejected[2])
t.ok(rejected[3] and rejected[3]:find("mixed.jsonl:5: field 'bucket_5m'", 1, true), "wrong bucket named", rejected[3])

local sql_total = assert(retape.import.run(db, { "tests/fixtures/dump.sql" }, { report = function(m) rejected[#rejected + 1] = m end }))
t.eq(sql_total.inserted, 2, "SQL dump: two rows inserted")
t.eq(sql_total.rejected, 3, "SQL dump: a bad row, an INSERT into another table and a DELETE rejected")
t.ok(rejected[4]:find("dump.sql:5: receipt BE:1770043200000:cc: field 'ts'", 1, true), "dump row error names line, receipt and field", rejected[4])

-- source: scope, order, decoding
local src = assert(retape.source.open(db))
local buckets = src:buckets { script_version = "2.5.0" }
t.eq(#buckets, 2, "two buckets with 2.5.0/NULL receipts")
t.eq(buckets[1].count, 3, "first bucket: AU, BRK-B and BE (capture excluded)")
local all = src:buckets {}
t.eq(all[1].count, 4, "no filter: the capture row counts too")
do
  local cur <close> = src:cursor(buckets[1].bucket, { script_version = "2.5.0" })
  local rows = cur:fetch(10)
  t.eq(#rows, 3, "fetch returns the bucket's rows")
  t.eq(rows[1].ticker .. "," .. rows[2].ticker .. "," .. rows[3].ticker, "AU,BE,BRK-B", "ordered by ts then receipt id; ticker normalised")
  t.eq(rows[3].payload.price, 501.2, "payload decoded")
  t.eq(rows[3].receipt_id, "BRK-B:1770042660000:" .. retape.ingest.fnv1a32(rows[3].payload_json), "raw line: id from ticker, ts and FNV hash")
  t.eq(#cur:fetch(10), 0, "then empty")
end
do
  local cur <close> = src:cursor(buckets[1].bucket, { tickers = { "BE" } })
  t.eq(#cur:fetch(10), 1, "ticker scope")
end
do -- a ticker scope's statement (its own SQL) is never reused for a scope of every ticker, nor the reverse
  local function tickers_of(scope)
    local cur <close> = src:cursor(buckets[1].bucket, scope)
    local out = {}
    for _, r in ipairs(cur:fetch(10, false)) do out[#out + 1] = r.ticker end
    return table.concat(out, ",")
  end
  local seen = { tickers_of { script_version = "2.5.0" }, tickers_of { script_version = "2.5.0", tickers = { "BRK-B", "AU" } },
    tickers_of { script_version = "2.5.0" } }
  do -- a ticker scope's cursor closed while one of every ticker is open
    local open_one <close> = src:cursor(buckets[1].bucket, { script_version = "2.5.0" })
    seen[#seen + 1] = tickers_of { tickers = { "BE" } }
  end
  seen[#seen + 1] = tickers_of { script_version = "2.5.0" }
  t.eq(table.concat(seen, " "), "AU,BE,BRK-B AU,BRK-B AU,BE,BRK-B BE AU,BE,BRK-B",
    "cursors of every ticker and of some, one after the other: each its own rows, in (ts, receipt_id) order")
end
t.fails(function() return src:cursor(1, { tickers = "BE" }) end, "scope.tickers must be a list", "bad scope is a usage error")
src:close()
t.fails(function() return src:buckets {} end, "closed receipts source", "a closed source refuses use")

-- a malformed payload becomes a row error with the receipt id and offset
local w = assert(retape.ingest.writer(db))
w:insert { receipt_id = "BAD:1770042600001:0", ticker = "BAD", ts = 1770042600001, bucket_5m = 1770042600000,
           received_ts = 0, payload_hash = "0", payload_json = '{"price": 1,, }' }
w:close()
src = assert(retape.source.open(db))
do
  local cur <close> = src:cursor(1770042600000, { tickers = { "BAD" } })
  local row = cur:fetch(5)[1]
  t.ok(row.payload == nil and row.error:find("receipt BAD:1770042600001:0: malformed payload_json", 1, true)
       and row.error:find("character 13", 1, true), "malformed payload: receipt id and byte offset", row.error)
end
src:close()

local s2, e2 = retape.source.open(dir .. "/missing/x.db")
t.ok(s2 == nil and e2:find("cannot open receipts database", 1, true), "open failure returns nil, message", e2)

-- kv
local store = assert(retape.kv.open(dir .. "/state"))
store:put("k:1", "a"); store:put("k:2", "b"); store:put("z", "c")
t.eq(store:get("k:2"), "b", "kv get")
t.eq(store:get("nope"), nil, "kv get of an absent key is nil")
local keys = {}
for k, v in store:scan("k:") do keys[#keys + 1] = k .. "=" .. v end
t.eq(table.concat(keys, ","), "k:1=a,k:2=b", "kv scan by prefix")
for k in store:scan("k:") do break end -- the iterator is closed on break
local b = store:batch()
b:put("k:3", "c"); b:delete("k:1")
t.eq(b:count(), 2, "batch count")
store:write(b)
t.eq(store:get("k:1"), nil, "batch applied: delete")
t.eq(store:get("k:3"), "c", "batch applied: put")
t.fails(function() store:put("x", nil) end, "bad argument #2 to 'put' (string expected, got nil)", "misuse raises with the argument")
local again, lock_err = retape.kv.open(dir .. "/state")
t.ok(again == nil and lock_err:find("in use by another process", 1, true), "a held store gives a clear error", lock_err)
do
  local it_store = assert(retape.kv.open(dir .. "/state2"))
  it_store:put("a", "1")
  local step, it = it_store:scan("")
  it_store:close() -- closing the store closes its open iterators first
  t.eq(step(it), nil, "an iterator of a closed store ends")
end
store:close()

-- time
local open, close = retape.time.session("2026-02-02")
t.eq(open, 1770042600000, "session open 09:30 ET")
t.eq((close - open) // 300000 + 1, 79, "79 buckets")
t.eq(retape.time.ny_date(1770080400000), "2026-02-02", "NY day of 01:00 UTC is the day before")
t.eq(retape.time.utc_date(1770080400000), "2026-02-03", "UTC day")
t.eq(retape.time.iso_utc(1770065580000), "2026-02-02T20:53:00.000Z", "ISO time as JavaScript's")
t.fails(function() retape.time.session("2026-13-01") end, "bad date '2026-13-01'", "bad date raises")

os.exit(t.done())
