-- bench_decode.lua DB [ROUNDS [LIMIT]] — an A/B of the payload decoders on
-- one corpus, in one process: the first LIMIT payloads (20000) are read once
-- (no decode), then each round (5) decodes every one with the parity
-- ruleset's field set through the hand-written scanner and through
-- simdjson, alternately.  Prints the median CPU µs per payload of each and
-- their ratio (alternating rounds in one process: the machine's load
-- weighs on both alike).
local retape = require "retape"
local decode = retape.decode
local db, rounds, limit = ...
rounds = math.tointeger(tonumber(rounds or 5))
limit = math.tointeger(tonumber(limit or 20000))
local fs = decode.compile(retape.rules.load("worker-2026-02-02").fields, retape.store.STATE_FIELDS)
local texts, bytes = {}, 0
local src = assert(retape.source.open(db))
for _, b in ipairs(src:buckets {}) do
  local cur <close> = src:cursor(b.bucket, {})
  while true do
    local got = cur:fetch(256, false)
    if #got == 0 or #texts >= limit then break end
    for i = 1, #got do texts[#texts + 1] = got[i].payload_json; bytes = bytes + #got[i].payload_json end
  end
  if #texts >= limit then break end
end
src:close()
assert(select(3, decode.decode(fs, texts[1], "simd")), "this build has one decoder")
local times = { scanner = {}, simd = {} }
for _ = 1, rounds do
  for _, engine in ipairs { "scanner", "simd" } do
    collectgarbage()
    local t0 = os.clock()
    for i = 1, #texts do assert(decode.decode(fs, texts[i], engine)) end
    local t = times[engine]
    t[#t + 1] = (os.clock() - t0) / #texts * 1e6
  end
end
local function median(t) table.sort(t); return t[(#t + 1) // 2] end
local a, b = median(times.scanner), median(times.simd)
print(string.format("%d payloads, %.0f bytes each: scanner %.2f µs, simd %.2f µs per payload (scanner/simd %.2fx)",
  #texts, bytes / #texts, a, b, a / b))
