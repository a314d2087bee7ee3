-- dump_ledger.lua FILE — prints the ledger tables trades, trade_events and
-- ticker_latest, ordered by key, one JSON row per line (runs are left out:
-- their manifests record how the replay was called, which differs).
local path = ...
local sql = require "retape.sql"
local json = require "retape.json"
local db = assert(sql.open(path))
for _, q in ipairs {
  { "trades", "SELECT * FROM trades ORDER BY trade_id" },
  { "trade_events", "SELECT * FROM trade_events ORDER BY event_id" },
  { "ticker_latest", "SELECT * FROM ticker_latest ORDER BY ticker" },
} do
  local rows = db:rows(q[2])
  print(q[1] .. " " .. #rows)
  for _, r in ipairs(rows) do print(json.encode(r)) end
end
db:close()
