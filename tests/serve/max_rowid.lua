-- max_rowid.lua DB — prints the last rowid of ingest_receipts.
local db = assert(require("retape").sql.open((...)))
print(math.tointeger(db:rows("SELECT COALESCE(MAX(rowid), 0) AS top FROM ingest_receipts")[1].top))
db:close()
