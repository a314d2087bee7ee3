-- bench_walk.lua DB [BATCH] — the engine's own walk: every bucket, every
-- receipt streamed through retape.source and its payload decoded into a Lua
-- table, as the replay reads them (no rules).  Prints rows, bytes, peak RSS.
local retape = require "retape"
local db, batch = ...
batch = math.tointeger(tonumber(batch or 256))
local src = assert(retape.source.open(db))
local rows, bytes = 0, 0
for _, b in ipairs(src:buckets {}) do
  local cur <close> = src:cursor(b.bucket, {})
  while true do
    local got = cur:fetch(batch)
    if #got == 0 then break end
    for i = 1, #got do
      local r = got[i]
      assert(r.payload, r.error)
      bytes = bytes + #r.payload_json
    end
    rows = rows + #got
  end
end
src:close()
print(string.format("rows=%d bytes=%d peak_rss_kb=%d", rows, bytes, retape.core.peak_rss_kb()))
