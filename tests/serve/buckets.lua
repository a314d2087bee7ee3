-- buckets.lua DB DAY — {"<bucket ms>": [tickers of its receipts], ...} for
-- the session of DAY (script 2.5.0 or NULL), for the torn-read check of the
-- load test.
local db, day = ...
local retape = require "retape"
local json = require "retape.json"
local open, close = retape.time.session(day)
local src <close> = assert(retape.source.open(db))
local scope = { from = open, to = close, script_version = "2.5.0" }
local out = json.object()
for _, b in ipairs(src:buckets(scope)) do
  local cur <close> = src:cursor(b.bucket, scope)
  local seen, list = {}, {}
  for _, r in ipairs(cur:fetch(100000, false)) do
    if not seen[r.ticker] then seen[r.ticker] = true; list[#list + 1] = r.ticker end
  end
  table.sort(list)
  out[tostring(b.bucket)] = list
end
print(json.encode(out))
