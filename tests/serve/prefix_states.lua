-- prefix_states.lua DB DAY OUT — what a fresh replay gives each ticker's
-- latest state after each receipt, in the order the receipts file stored
-- them: for every row of DB's ingest_receipts (by rowid), one line
-- "ROWID<TAB>TICKER<TAB>JSON" in OUT, where JSON is the ticker's latest state
-- (GET /timed/latest's data) after a fresh replay of DAY over that ticker's
-- rows up to this one ("null": none).  Tickers are independent, so the state
-- of ticker T over the rows up to rowid W is the line of T's last row at or
-- before W: what a read that covers the receipts up to W must show.  Each
-- ticker gets a receipts file and a store of its own; each of its rows is
-- added and the day replayed for it again.
local db_path, day, out_path = ...
local retape = require "retape"
local live = require "retape.live"
local replay = require "retape.replay"
local results = require "retape.results"
local json = retape.json

local db = assert(retape.sql.open(db_path))
local rows = db:rows("SELECT rowid AS rowid_, receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash,"
  .. " script_version, payload_json FROM ingest_receipts ORDER BY rowid")
db:close()
local by_ticker, order = {}, {}
for _, r in ipairs(rows) do
  if not by_ticker[r.ticker] then by_ticker[r.ticker] = {}; order[#order + 1] = r.ticker end
  local list = by_ticker[r.ticker]
  list[#list + 1] = r
end

local tmp = assert(os.getenv("TMPDIR") or "/tmp") .. "/prefix_states." .. os.time() .. "." .. math.random(1e9)
assert(os.execute("mkdir -p '" .. tmp .. "'"))
local lines = {}
for i, T in ipairs(order) do
  local dir = tmp .. "/" .. i
  local receiver = assert(live.receiver(dir .. ".db"))
  local rp = assert(replay.open { db = dir .. ".db", state = dir .. ".state", manifest = false })
  for _, r in ipairs(by_ticker[T]) do
    local stored = receiver:store { r }
    assert(stored[1] == true, "prefix_states: row " .. r.rowid_ .. " not stored: " .. tostring(stored[1]))
    rp:run { date = day, ticker = T }
    local p = results.latest(rp:state_store())[T]
    lines[#lines + 1] = { r.rowid_, T .. "\t" .. (p and json.encode(p) or "null") }
  end
  rp:close()
  receiver:close()
end
os.execute("rm -rf '" .. tmp .. "'")
table.sort(lines, function(a, b) return a[1] < b[1] end)
local out = assert(io.open(out_path, "w"))
for _, l in ipairs(lines) do out:write(l[1], "\t", l[2], "\n") end
out:close()
print(#lines)
