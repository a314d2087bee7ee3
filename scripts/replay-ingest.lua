-- replay-ingest.lua — the original client script (scripts/replay-ingest.js)
-- for the bundled host: walks a day bucket by bucket and page by page
-- through the replay endpoint, prints one line per bucket, then syncs the
-- ledger.
--
--   retape run scripts/replay-ingest.lua DB=receipts.db DATE=2026-02-02 [TICKER=AAPL]
--       [BUCKET=09:45] [CLEAN_SLATE=0] [LIMIT=100] [STATE=dir] [LEDGER=file] [RULES=name|file]
--
-- Every knob can also come from the environment (DATE=... retape run ...);
-- arguments win.  CLEAN_SLATE defaults to on, and is sent only with the
-- very first request, as the original client did.
local retape = require "retape"

local knobs = {}
for _, a in ipairs { ... } do
  local k, v = a:match("^([%u_]+)=(.*)$")
  if not k then
    io.stderr:write("replay-ingest: arguments are KEY=VALUE (DB, DATE, TICKER, BUCKET, CLEAN_SLATE, LIMIT, STATE, LEDGER, RULES), got '" .. a .. "'\n")
    return 2
  end
  knobs[k] = v
end
local function knob(name, default)
  local v = knobs[name] or os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local db = knob("DB")
if not db then io.stderr:write("replay-ingest: DB=receipts.db is required\n"); return 2 end
local date = knob("DATE", retape.time.ny_date(retape.core.now_ms()))
local clean = knob("CLEAN_SLATE", "1")
clean = not (clean == "0" or clean == "false")
local limit = math.tointeger(tonumber(knob("LIMIT", "100")))
if not limit or limit < 1 then io.stderr:write("replay-ingest: LIMIT must be a positive integer\n"); return 2 end
local state = knob("STATE", db .. ".state")
local ledger = knob("LEDGER")
local ticker = knob("TICKER")

local open, close = retape.time.session(date)
local bucket = open
local bucket_knob = knob("BUCKET")
if bucket_knob then
  local h, m = bucket_knob:match("^(%d%d?):(%d%d)$")
  if h then
    local y, mo, d = retape.time.parse_date(date)
    bucket = retape.time.from_ny(y, mo, d, tonumber(h), tonumber(m))
  else
    bucket = math.tointeger(tonumber(bucket_knob))
  end
  if not bucket then io.stderr:write("replay-ingest: BUCKET is HH:MM or ms\n"); return 2 end
end

local rp = assert(retape.replay.open { db = db, state = state, rules = knob("RULES"),
  on_error = function(msg) io.stderr:write("replay-ingest: ", msg, "\n") end })
print(string.format("replay-ingest %s%s, pages of %d, clean slate %s", date,
  ticker and (" ticker " .. ticker) or "", limit, clean and "on" or "off"))

local first, n, totals = true, 0, { rows = 0, trades = 0, purged = 0 }
while bucket do
  n = n + 1
  local offset, rows, trades, purged, pages = 0, 0, 0, 0, 0
  local resp
  repeat
    resp = rp:run { date = date, ticker = ticker, bucket = bucket, limit = limit, offset = offset,
                    clean_slate = first and clean }
    first = false
    pages = pages + 1
    rows, trades, purged = rows + resp.rowsProcessed, trades + resp.tradesCreated, purged + resp.tradesPurged
    if resp.hasMoreInBucket then offset = resp.nextBucketOffset end
  until not resp.hasMoreInBucket
  print(string.format("bucket %d (%s): %d rows, +%d trades%s%s", n,
    retape.time.format_ny(bucket):match("%d%d:%d%d"), rows, trades,
    pages > 1 and string.format(" (pages to %d)", offset + limit) or "",
    purged > 0 and string.format(", purged %d", purged) or ""))
  totals.rows, totals.trades, totals.purged = totals.rows + rows, totals.trades + trades, totals.purged + purged
  if bucket_knob or resp.nextBucket == retape.json.null then break end
  bucket = resp.nextBucket
end
print(string.format("done: %d buckets, %d rows, %d trades created, %d purged", n, totals.rows, totals.trades, totals.purged))
if ledger then
  local c = retape.ledger.sync(rp:state_store(), ledger)
  print(string.format("ledger %s: %d trades, %d events, %d tickers", ledger, c.trades, c.events, c.tickers))
end
rp:close()
return 0
