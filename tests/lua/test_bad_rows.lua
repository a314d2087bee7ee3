-- test_bad_rows.lua — issue 24 #9, #10, #15 at replay: a receipt with a
-- non-finite number (1e400, NaN, -Infinity), a declared state field of the
-- wrong type ("entry_price": [] / true, "kanban_stage": null) or a far-future / non-integer
-- ts (a database not written by import) is reported with its receipt id,
-- the field and the byte offset, and skipped; the run goes on, with 1 and 2
-- threads alike, and the store equals that of a run without those receipts
-- for every other ticker.
local t = require "tap"
local retape = require "retape"

local dir = t.tempdir()
local db = dir .. "/r.db"
local total = assert(retape.import.run(db, { "tests/fixtures/day-2026-02-02.jsonl.gz" }, {}))
t.eq(total.inserted, 1689, "fixture day imported")

-- spoil one receipt of each of five tickers, written behind import's back
local h = assert(retape.sql.open(db))
local spoiled, n = {}, 0
local function spoil(T, edit)
  local r = h:rows("SELECT receipt_id, payload_json FROM ingest_receipts WHERE ticker = ? ORDER BY ts LIMIT 1 OFFSET 1", T)[1]
  local up <close> = h:prepare("UPDATE ingest_receipts SET payload_json = ? WHERE receipt_id = ?")
  up:run(edit(r.payload_json), r.receipt_id)
  spoiled[T] = r.receipt_id
  n = n + 1
end
spoil("TSLA", function(p) return (p:gsub('"price":', '"price":1e400,"was":', 1)) end)
spoil("NVDA", function(p) return (p:gsub('"htf_score":', '"htf_score":NaN,"was":', 1)) end)
spoil("AMD", function(p) return (p:gsub('"ltf_score":', '"ltf_score":-Infinity,"was":', 1)) end)
spoil("AVGO", function(p) return (p:gsub("^{", '{"entry_price":[],', 1)) end)
spoil("MU", function(p) return (p:gsub("^{", '{"entry_price":true,', 1)) end)
spoil("HII", function(p) return (p:gsub("^{", '{"kanban_stage":null,', 1)) end)
local B = 1770042600000
h:exec("INSERT INTO ingest_receipts VALUES('FAR:1','FAR',99999999999999999,99999999999999999,1,'h',NULL,'{}')")
h:exec("INSERT INTO ingest_receipts VALUES('TXT:1','TXT','soon'," .. B .. ",1,'h',NULL,'{}')")
h:exec("INSERT INTO ingest_receipts VALUES('OFF:1','OFF'," .. (B + 300000) .. "," .. B .. ",1,'h',NULL,'{}')")
h:close()

local function replay(threads)
  local errors = {}
  local rp = assert(retape.replay.open { db = db, state = dir .. "/s" .. threads, threads = threads,
    on_error = function(m) errors[#errors + 1] = m end })
  local ok, resp = pcall(rp.run, rp, { date = "2026-02-02" })
  rp:close()
  t.ok(ok, threads .. " thread(s): the run goes on to the end", resp)
  return ok and resp or {}, table.concat(errors, "\n")
end

for _, threads in ipairs { 1, 2 } do
  local resp, all = replay(threads)
  t.eq(resp.errors, n + 2, threads .. " thread(s): each bad receipt counted once")
  local function named(T, frag, what)
    t.ok(all:find("receipt " .. spoiled[T] .. ": " .. frag, 1, true), threads .. " thread(s): " .. what, all)
  end
  named("TSLA", "malformed payload_json: field 'price' holds 1e400, a number that is not finite as a double, at byte 45",
        "1e400: receipt, field, offset")
  named("NVDA", "malformed payload_json: Expected value but found invalid token at character 65 (field 'htf_score' holds NaN)",
        "NaN: receipt, offset, field")
  named("AMD", "malformed payload_json: Expected value but found invalid number at character 80 (field 'ltf_score' holds -Infinity)",
        "-Infinity: receipt, offset, field")
  named("AVGO", "field 'entry_price' is declared number (R.state.fields) but the payload holds a table (at byte 16)", "entry_price [] named with its offset")
  named("MU", "field 'entry_price' is declared number (R.state.fields) but the payload holds a boolean (at byte 16)", "entry_price true named")
  named("HII", "field 'kanban_stage' is declared string (R.state.fields) but the payload holds null (at byte 17)", "a declared field null named")
  t.ok(all:find("receipt TXT:1: field 'ts' is not an integer (ms)", 1, true), threads .. " thread(s): a text ts named", all)
  t.ok(all:find("receipt OFF:1: field 'bucket_5m' (" .. B .. ") does not match ts " .. (B + 300000), 1, true),
       threads .. " thread(s): a ts outside its bucket named", all)
  t.ok(not all:find("FAR:1", 1, true), threads .. " thread(s): a far-future row is in no day's scope")
end

-- the far-future row is named by the listing's side channel, never a traceback
local src = assert(retape.source.open(db))
local bad, first = src:bad_rows {}
local buckets = src:buckets {}
src:close()
t.ok(bad == 3 and first == "FAR:1", "bad_rows: the three rows written behind import's back", tostring(bad) .. " " .. tostring(first))
t.ok(buckets[#buckets].bucket < retape.time.TS_MAX, "listing: no bucket beyond 2100")

os.exit(t.done())
