-- day_bodies.lua DB DAY OUT — the webhook bodies of a New York day (every
-- receipt of the day, in and out of the session, as the app received them:
-- payload_json byte for byte) as JSON lines {"bucket": ms, "body": text}
-- in (ts, receipt_id) order; prints how many.
local db_path, day, out_path = ...
local retape = require "retape"
local json = retape.json
local db = assert(retape.sql.open(db_path))
local rows = db:rows("SELECT ts, bucket_5m, payload_json FROM ingest_receipts ORDER BY ts, receipt_id")
db:close()
local out = assert(io.open(out_path, "w"))
local n = 0
for _, r in ipairs(rows) do
  if retape.time.ny_date(r.ts) == day then
    out:write(json.encode({ bucket = r.bucket_5m, body = r.payload_json }, { "bucket", "body" }), "\n")
    n = n + 1
  end
end
out:close()
print(n)
