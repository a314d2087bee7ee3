-- test_sandbox.lua — rule code runs in an allow-listed environment with
-- strict globals, an instruction budget and a memory cap per receipt; each
-- limit is tripped by a rule written to trip it, and the replay stops with
-- the rule's file:line, the receipt and ticker, and nothing of the bucket
-- written.
local t = require "tap"
local retape = require "retape"

local dir = t.tempdir()
local db = dir .. "/r.db"
assert(retape.import.run(db, { "tests/fixtures/day-2026-02-02.jsonl.gz" }, {}))

local n = 0
-- Writes a rule file whose classify() runs BODY for ticker CVNA from 10:00 ET.
local function rule_file(body)
  n = n + 1
  local path = string.format("%s/rule%d.lua", dir, n)
  local f = assert(io.open(path, "w"))
  f:write('local R = require("retape").rules.load("worker-2026-02-02")\n',
          "local classify = R.classify\n",
          "R.classify = function(d)\n",
          "  if d.ticker == 'CVNA' and d.ts >= 1770044400000 then\n", body, "\n  end\n",
          "  return classify(d)\nend\nreturn R\n")
  f:close()
  return path
end

-- Replays the day with the rule; returns the error (or nil) and the store's cursor bucket.
local runs = 0
local function run(path, limits)
  runs = runs + 1
  local state = string.format("%s/state%d", dir, runs)
  local rp, err = retape.replay.open { db = db, state = state, rules = path, limits = limits }
  if not rp then return err end
  local ok, e = pcall(rp.run, rp, { date = "2026-02-02" })
  rp:close()
  local kv = assert(retape.kv.open(state))
  local cursor = kv:get("retape:cursor")
  local late = false
  for k in kv:scan("v:") do
    if tonumber(k:sub(-13)) >= 1770044400000 then late = true end
  end
  kv:close()
  return not ok and tostring(e) or nil, cursor and retape.json.decode(cursor).next, late
end

local cases = {
  { "instruction budget", "while true do end", "exceeded its instruction budget" },
  { "budget survives the rule's own pcall", "pcall(function() while true do end end) return 'watch'",
    "exceeded its instruction budget" },
  { "budget survives xpcall", "xpcall(function() while true do end end, function() return 1 end) return 'watch'",
    "exceeded its instruction budget" },
  { "memory cap", "local t = {} for i = 1, 1e8 do t[i] = { i } end", "exceeded its memory cap" },
  { "strict globals: read", "if undefined_thing then return 'watch' end", "undeclared global 'undefined_thing'" },
  { "strict globals: write", "counter = (1)", "assignment to undeclared global 'counter'" },
  { "no io", "io.open('/etc/passwd')", "undeclared global 'io'" },
  { "no os.execute", "os.execute('true')", "undeclared global 'os'" },
  { "no debug", "debug.sethook()", "undeclared global 'debug'" },
  { "no load of chunks (text or binary)", "load('return 1')", "undeclared global 'load'" },
  { "require only the rule API", "require('retape.kv')", "require 'retape.kv' is not allowed" },
  { "a plain error", "error('bad threshold')", "bad threshold" },
}
for _, c in ipairs(cases) do
  local path = rule_file(c[2])
  local err, bucket, late = run(path)
  t.ok(err and err:find(c[3], 1, true), c[1] .. ": stops the replay with the reason", err)
  t.ok(err and err:find("receipt CVNA:1770044400000:", 1, true) and err:find("(CVNA)", 1, true),
       c[1] .. ": names the receipt and ticker", err)
  if c[1] ~= "memory cap" and not c[3]:find("budget") then
    t.ok(err and err:find(path:match("[^/]+$") .. ":%d+:") ~= nil, c[1] .. ": names the rule's file:line", err)
  end
  t.eq(bucket, 1770044400000, c[1] .. ": the store ends at the bucket before (the run's next bucket is the failing one)")
  t.ok(not late, c[1] .. ": nothing of the failing bucket written")
end

-- the limits are configurable: a tiny budget trips the parity rules themselves
local err = run("worker-2026-02-02", { instructions = 200 })
t.ok(err and err:find("instruction budget (200 per receipt)", 1, true), "a configured budget applies", err)
t.eq((run("worker-2026-02-02", { instructions = 1e7, memory_mb = 256 })), nil, "generous limits: the day runs")

-- a rule file cannot see the host's globals even through _G
local path = rule_file("if _G.io then return 'watch' end")
t.ok((run(path) or ""):find("undeclared global 'io'", 1, true), "_G is the sandbox, not the host's globals")

os.exit(t.done())
