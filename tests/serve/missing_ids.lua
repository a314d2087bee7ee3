-- missing_ids.lua DB IDS_FILE — exit 0 when every receipt id listed (one a
-- line) is in DB's ingest_receipts; else prints the missing ones, exit 1.
local retape = require "retape"
local db_path, ids_path = ...
local db = assert(retape.sql.open(db_path))
local have = {}
for _, r in ipairs(db:rows("SELECT receipt_id FROM ingest_receipts")) do have[r.receipt_id] = true end
db:close()
local missing, n = {}, 0
for id in io.lines(ids_path) do
  if id ~= "" then
    n = n + 1
    if not have[id] then missing[#missing + 1] = id end
  end
end
if n == 0 then print("no ids"); os.exit(1) end
if #missing > 0 then print(#missing .. " of " .. n .. " missing: " .. table.concat(missing, " ", 1, math.min(#missing, 10))); os.exit(1) end
