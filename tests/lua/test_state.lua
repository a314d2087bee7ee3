-- test_state.lua — the ruleset owns its state: what it declares is what
-- survives (in memory exactly as a store round trip returns it), undeclared
-- reads and writes to the previous state fail at the rule's line, the store
-- layout is refused when old, and the calendar does not depend on TZ.
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local json = retape.json

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)
local dir = t.tempdir()

local function rules_file(name, body)
  local path = dir .. "/" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write('local R = require("retape.rules").load("default")\nR.name = "' .. name .. '"\n', body, "\nreturn R\n")
  f:close()
  return path
end

local function replay(rules, state, params)
  local rp = assert(retape.replay.open { db = receipts, state = state, rules = rules })
  local ok, r = pcall(rp.run, rp, params)
  rp:close()
  return ok, r
end

-- an undeclared field read from the previous state: error at the rule's line
local undeclared = rules_file("undeclared", [[
local step = R.step
function R.step(p, row, ex, open_trade)
  p.counter = (ex.counter or 0) + 1
  return step(p, row, ex, open_trade)
end]])
local ok, err = replay(undeclared, dir .. "/s1", { date = "2026-02-02" })
t.ok(not ok and tostring(err):find("state field 'counter' is not declared", 1, true)
  and tostring(err):find("undeclared.lua:5:", 1, true) and tostring(err):find("receipt ", 1, true),
  "reading an undeclared state field names the field, the rule's file:line and the receipt", err)

-- writing into the previous state
local writes = rules_file("writes", [[
local step = R.step
function R.step(p, row, ex, open_trade)
  ex.kanban_stage = "watch"
  return step(p, row, ex, open_trade)
end]])
ok, err = replay(writes, dir .. "/s2", { date = "2026-02-02" })
t.ok(not ok and tostring(err):find("previous state is read-only", 1, true) and tostring(err):find("writes.lua:5:", 1, true),
  "writing to the previous state is an error at the rule's line", err)

-- a declared field of the wrong type
local wrong = rules_file("wrongtype", [[
R.state.fields.counter = "number"
local step = R.step
function R.step(p, row, ex, open_trade)
  p.counter = "many"
  return step(p, row, ex, open_trade)
end]])
ok, err = replay(wrong, dir .. "/s3", { date = "2026-02-02" })
t.ok(not ok and tostring(err):find("state field 'counter' is declared number but the rules left a string", 1, true),
  "a declared field of the wrong type is named", err)

-- a declared counter survives between receipts, in memory as in the store
local counting = rules_file("counting", [[
R.state.fields.counter = "number"
R.state.fields.seen = "table"
local step = R.step
function R.step(p, row, ex, open_trade)
  p.counter = (ex.counter or 0) + 1
  p.seen = { first = (ex.seen and ex.seen.first) or row.ts, list = { 1, 2.5, "x" } }
  assert(math.type(ex.counter or 0.0) == "float", "state numbers come back as floats")
  return step(p, row, ex, open_trade)
end]])
ok, err = replay(counting, dir .. "/s4", { date = "2026-02-02" })
t.ok(ok, "a declared counter and table survive", err)
local st = assert(retape.store.open(dir .. "/s4", true))
local _, last = st:last_version("CVNA")
local n = 0
for _, v in ipairs(st:versions("CVNA")) do n = n + #v.rec.lanes end
t.eq(last.state.counter, n, "the counter counts every receipt of the ticker")
t.eq(json.encode(last.state.seen.list), '[1,2.5,"x"]', "tables keep their shape")
st:close()

-- the book a rule sees is its own ticker's
local peeks = rules_file("peeks", [[
local simulate = R.simulate
function R.simulate(d, as_of, book)
  if d.ticker ~= "AAPL" then book.open("AAPL") end
  return simulate(d, as_of, book)
end]])
ok, err = replay(peeks, dir .. "/s6", { date = "2026-02-02" })
t.ok(not ok and tostring(err):find("may only see the trades of the ticker it is processing", 1, true)
  and tostring(err):find("peeks.lua:5:", 1, true), "a rule cannot reach another ticker's trades through the book", err)

-- a store of the old layout is refused with the command that rebuilds it
do
  local old = dir .. "/old"
  local kv = assert(retape.kv.open(old))
  kv:put("timed:latest:AAPL", "{}")
  kv:close()
  local s, msg = retape.store.open(old, true)
  t.ok(s == nil and msg:find("older retape", 1, true) and msg:find("rm -rf " .. old, 1, true)
    and msg:find("retape replay", 1, true), "an old store is refused, naming the command that rebuilds it", msg)
end

-- the calendar is C's: a Monday-Friday range has five days in any TZ
do
  local exe = os.getenv("RETAPE") or "./retape"
  local script = dir .. "/days.lua"
  local f = assert(io.open(script, "w"))
  f:write('local d = require("retape.time").days("2026-01-26", "2026-01-30"); io.write(#d, " ", d[#d])')
  f:close()
  local p = io.popen("TZ=Pacific/Kiritimati " .. exe .. " run " .. script)
  local out = p:read("a")
  p:close()
  t.eq(out, "5 2026-01-30", "Monday to Friday under TZ=Pacific/Kiritimati: five days, Friday included")
end

-- a ruleset that declares no state is refused before anything runs
do
  local R = retape.rules.load("default")
  R.state = nil
  local rp, msg = retape.replay.open { db = receipts, state = dir .. "/s5", rules = R }
  t.ok(rp == nil and tostring(msg):find("declares no state", 1, true), "a ruleset without R.state is refused", msg)
end

os.exit(t.done())
