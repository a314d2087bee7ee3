-- bench_fields.lua — prints the payload fields the parity ruleset declares
-- plus its state and view fields, space-separated (what the replay
-- decodes); fails on a build without retape.decode.
local retape = require "retape"
assert(retape.decode, "no retape.decode in this build")
local R = retape.rules.load("worker-2026-02-02")
local schema = retape.state.compile(R)
local all = {}
for _, f in ipairs(R.fields) do all[#all + 1] = f end
for _, f in ipairs(schema.names) do all[#all + 1] = f end
for _, f in ipairs(schema.view) do all[#all + 1] = f end
print(table.concat(all, " "))
