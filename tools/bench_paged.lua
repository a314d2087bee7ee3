-- bench_paged.lua DB STATE DAY LIMIT — the replay of one day in the calls
-- the app's client makes (pages of LIMIT rows, bucket after bucket, clean
-- slate first), in-process: what `retape serve` does minus HTTP.  Prints
-- rows, calls, peak RSS.
local retape = require "retape"
local db, state, day, limit = ...
limit = math.tointeger(tonumber(limit or "200"))
assert(retape.fs.remove_tree(state))
local rp = assert(retape.replay.open { db = db, state = state })
local bucket, offset, rows, calls, first = (retape.time.session(day)), 0, 0, 0, true
while true do
  local r = rp:run { date = day, bucket = bucket, limit = limit, offset = offset, clean_slate = first }
  first = false
  calls, rows = calls + 1, rows + r.rowsProcessed
  if r.hasMoreInBucket then offset = r.nextBucketOffset
  elseif r.hasMore and r.nextBucket ~= retape.json.null then bucket, offset = r.nextBucket, 0
  else break end
end
rp:close()
print(string.format("rows=%d calls=%d peak_rss_kb=%d", rows, calls, retape.core.peak_rss_kb()))
