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
local function run(path, limits)
  local state = string.format("%s/state%d", dir, n)
  local rp, err = retape.replay.open { db = db, state = state, rules = path, limits = limits }
  if not rp then return err end
  local ok, e = pcall(rp.run, rp, { date = "2026-02-02" })
  rp:close()
  local kv = assert(retape.kv.open(state))
  local cursor = kv:get("retape:cursor")
  local late = false
  for _, v in kv:scan("timed:latest:") do
    if retape.json.decode(v).ts >= 1770044400000 + 300000 then late = true end
  end
  kv:close()
  return not ok and tostring(e) or nil, cursor and retape.json.decode(cursor).bucket, late
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
  -- C library calls are inside the limits (issue 11)
  { "string.rep of 1 GB", "local s = string.rep('x', 2^30)", "exceeded its memory cap (64 MB per receipt)" },
  { "string.rep as a method", "local s = ('x'):rep(2^30)", "exceeded its memory cap" },
  { "table.concat of 100 MB", "local t, s = {}, string.rep('x', 2^20) for i = 1, 100 do t[i] = s end local r = table.concat(t)",
    "exceeded its memory cap" },
  { "gsub to 64 MB", "local s = string.rep('x', 2^24) s = s:gsub('x', 'xxxxx')", "exceeded its memory cap" },
  { "memory cap survives pcall", "pcall(string.rep, 'x', 2^30) return 'watch'", "exceeded its memory cap" },
  { "backtracking find", "string.find(string.rep('a', 5000), '.-.-.-.-b')", "exceeded its instruction budget" },
  { "backtracking find as a method", "local s = string.rep('a', 5000) s:find('.-.-.-.-b')",
    "string.find of a pattern" },
  { "empty string.rep of 1e15 copies", "string.rep('', 1e15)", "exceeded its instruction budget" },
  { "table.move over 1e12 slots", "table.move({}, 1, 1e12, 1, {})", "table.move over" },
  { "no __gc finalizer", "setmetatable({}, { __gc = function() while true do end end })", "__gc and __close are not allowed" },
  { "no __close handler", "local x <close> = setmetatable({}, { __close = function() while true do end end })",
    "__gc and __close are not allowed" },
  { "string metatable locked", "getmetatable('').__index.rep = nil", "attempt to index a boolean value" },
}
for _, c in ipairs(cases) do
  local path = rule_file(c[2])
  local err, bucket, late = run(path)
  t.ok(err and err:find(c[3], 1, true), c[1] .. ": stops the replay with the reason", err)
  t.ok(err and err:find("receipt CVNA:1770044400000:", 1, true) and err:find("(CVNA)", 1, true),
       c[1] .. ": names the receipt and ticker", err)
  if c[1] ~= "memory survives pcall" then
    t.ok(err and err:find(path:match("[^/]+$") .. ":%d+:") ~= nil, c[1] .. ": names the rule's file:line", err)
  end
  t.eq(bucket, 1770044100000, c[1] .. ": the store ends at the bucket before")
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
