-- bench_fields.lua — prints the payload fields the parity ruleset declares
-- plus the store's state fields, space-separated (what the replay decodes);
-- fails on a build without retape.decode.
local retape = require "retape"
assert(retape.decode, "no retape.decode in this build")
local all = {}
for _, f in ipairs(retape.rules.load("worker-2026-02-02").fields) do all[#all + 1] = f end
for _, f in ipairs(retape.store.STATE_FIELDS) do all[#all + 1] = f end
print(table.concat(all, " "))
