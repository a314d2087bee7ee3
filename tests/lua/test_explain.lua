-- test_explain.lua — `retape explain` takes the replay's own step
-- (rp:explain_receipt, lua/retape/run/step.lua): for every receipt of a
-- replayed day, clean slates and a receipt the replay skips (a declared
-- state field of the wrong type) included, the explanation's final stage
-- is the lane the store holds for it; rule code runs under the same guard
-- as in a replay (a limit error names the receipt); the store is only read.
local t = require "tap"
local retape = require "retape"

local dir = t.tempdir()
local db, state = dir .. "/r.db", dir .. "/s"
assert(retape.import.run(db, { "tests/fixtures/day-2026-02-02.jsonl.gz" }, {}))

-- a receipt the replay skips: MU's second one holds entry_price = true (a
-- number by the ruleset's declaration), so the step never runs it
local h = assert(retape.sql.open(db))
local spoilt = h:rows("SELECT receipt_id, payload_json FROM ingest_receipts WHERE ticker = 'MU' ORDER BY ts LIMIT 1 OFFSET 1")[1]
do
  local up <close> = h:prepare("UPDATE ingest_receipts SET payload_json = ? WHERE receipt_id = ?")
  up:run((spoilt.payload_json:gsub("^{", '{"entry_price":true,', 1)), spoilt.receipt_id)
end
h:close()

local rp = assert(retape.replay.open { db = db, state = state, rules = "worker-2026-02-02", on_error = function() end })
assert(rp:run { date = "2026-02-02" })
-- a clean slate from 11:00 for two tickers: their versions after it start cleared
assert(rp:run { date = "2026-02-02", ticker = "CVNA,MU", bucket = 1770048000000, clean_slate = true })
rp:close()

local st = assert(retape.store.open(state))
local hashes = retape.json.encode(st:results_hashes())
local logs = retape.results.lane_logs(st)
local tickers = {}
for T in pairs(logs) do tickers[#tickers + 1] = T end
table.sort(tickers)
local explained, agree, first_wrong, skipped_seen = 0, 0, nil, false
for _, T in ipairs(tickers) do
  for _, e in ipairs(logs[T]) do
    if e[3] == spoilt.receipt_id then skipped_seen = true end
    local why, err = retape.explain.explain(st, db, T, { receipt = e[3] })
    explained = explained + 1
    if why and (why.final_stage or false) == e[2] and why.receipt_id == e[3] and why.ts == e[1] then agree = agree + 1
    elseif not first_wrong then
      first_wrong = string.format("%s: stored %s, explained %s (%s)", e[3], tostring(e[2]), tostring(why and why.final_stage), tostring(err))
    end
  end
end
t.ok(explained > 1600, "every stored receipt explained (" .. explained .. ")")
t.eq(agree, explained, "every explanation's final stage is the stored lane")
t.ok(first_wrong == nil, "no disagreement", first_wrong)
t.ok(not skipped_seen, "the receipt the replay skipped has no lane in the store")
local why = retape.explain.explain(st, db, "MU", { receipt = logs.MU[2][3] })
t.ok(why and why.final_stage == logs.MU[2][2], "MU's receipt after the skipped one: the stored lane (the skipped one not run)")
t.eq(retape.json.encode(st:results_hashes()), hashes, "explaining writes nothing to the store")

-- a what-if ruleset from a user file: its rule code runs under the
-- sandbox's limits, and a limit error names the receipt, as in a replay
local loop = dir .. "/loop.lua"
local f = assert(io.open(loop, "w"))
f:write('local R = require("retape").rules.load("worker-2026-02-02")\n',
        "local classify = R.classify\n",
        "R.classify = function(d)\n",
        "  if d.ticker == 'CVNA' and d.ts >= 1770044400000 then while true do end end\n",
        "  return classify(d)\nend\nreturn R\n")
f:close()
local target = logs.CVNA[#logs.CVNA]
local R = retape.rules.load(loop)
local none, err = retape.explain.explain(st, db, "CVNA", { receipt = target[3] }, R)
t.ok(none == nil and tostring(err):find("instruction budget", 1, true) ~= nil, "an endless rule stops at the instruction budget", err)
t.ok(tostring(err):find("^receipt CVNA:%d+:%x+ %(CVNA%)") ~= nil, "and the error names the receipt and ticker", err)
t.ok(tostring(err):find("loop.lua:4", 1, true) ~= nil, "and the rule's file:line", err)
t.eq(retape.json.encode(st:results_hashes()), hashes, "a failing explain writes nothing either")
st:close()
t.done()
