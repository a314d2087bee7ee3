-- bench_walk.lua DB [BATCH [MODE]] — the engine's own walk: every bucket,
-- every receipt streamed through retape.source and its payload decoded, as
-- the replay reads them (no rules).  MODE: "full" (default: lua-cjson, the
-- whole payload), "fields" (retape.decode with the parity ruleset's declared
-- fields, as the replay does), "none" (no decode).  Prints rows, bytes, peak RSS.
local retape = require "retape"
local db, batch, mode = ...
batch = math.tointeger(tonumber(batch or 256))
mode = mode or "full"
local how = true
if mode == "fields" then
  how = retape.decode.compile(retape.rules.load("worker-2026-02-02").fields, retape.store.STATE_FIELDS)
elseif mode == "none" then
  how = false
end
local src = assert(retape.source.open(db))
local rows, bytes = 0, 0
for _, b in ipairs(src:buckets {}) do
  local cur <close> = src:cursor(b.bucket, {})
  while true do
    local got = cur:fetch(batch, how)
    if #got == 0 then break end
    for i = 1, #got do
      local r = got[i]
      assert(r.payload or not how, r.error)
      bytes = bytes + #r.payload_json
    end
    rows = rows + #got
  end
end
src:close()
print(string.format("rows=%d bytes=%d peak_rss_kb=%d cpu_ms=%d", rows, bytes, retape.core.peak_rss_kb(), math.floor(os.clock() * 1000)))
