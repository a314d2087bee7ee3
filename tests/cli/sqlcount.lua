-- sqlcount.lua DB TABLE... — prints the row count and an order-independent
-- digest of every listed table (used to check that a ledger sync is idempotent).
local retape = require "retape"
local db = assert(retape.sql.open(arg[1]))
for i = 2, #arg do
  local rows = db:rows("SELECT * FROM " .. arg[i] .. " ORDER BY 1")
  local parts = {}
  for _, r in ipairs(rows) do parts[#parts + 1] = retape.json.encode(r) end
  print(string.format("%s: %d rows, digest %s", arg[i], #rows, retape.ingest.fnv1a32(table.concat(parts, "\n"))))
end
db:close()
