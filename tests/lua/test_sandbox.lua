-- test_sandbox.lua — rule code runs in an allow-listed environment with
-- strict globals, an instruction budget and a memory cap per receipt; each
-- limit is tripped by a rule written to trip it, and the replay stops with
-- the rule's file:line, the receipt and ticker, and nothing of the bucket
-- written.
local t = require "tap"
local retape = require "retape"
local sandbox = require "retape.sandbox" -- (an internal module: not in the retape table)

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
  { "an error that is a table", "error({})", "(error object is a table value)" },
  { "a nil error", "error()", "(error object is a nil value)" },
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
  { "a __close added later cannot outlive the limit",
    "local mt = {} local t = setmetatable({}, mt) mt.__close = function() string.rep('', 1e15) while true do end end "
      .. "local x <close> = t while true do end", "exceeded its instruction budget" },
  { "time.to_ny(math.maxinteger) raises, no overflow", "require('retape.time').to_ny(math.maxinteger)",
    "timestamp out of range" },
  { "string metatable locked", "getmetatable('').__index.rep = nil", "attempt to index a boolean value" },
  -- work inside one VM instruction or one library call is metered (issue 24 #16)
  { "strings doubled by concatenation", "local s = 'x' for i = 1, 30 do s = s .. s end",
    "exceeded its memory cap (64 MB per receipt): a string longer than 1048576 bytes" },
  { "a 2 MB string.rep", "local s = ('x'):rep(2^21)", "string.rep: a string longer than 1048576 bytes" },
  { "a 2 MB table.concat", "local t = {} for i = 1, 4 do t[i] = ('x'):rep(2^19) end local s = table.concat(t)",
    "table.concat: a string longer than 1048576 bytes" },
  { "copies of 1 MB strings by concatenation and sub are charged",
    "local s = ('x'):rep(2^20 - 64) for i = 1, 1e6 do local a = s:sub(2) .. 'y' end", "exceeded its instruction budget" },
  { "table.insert at the front of 200,000 elements",
    "local t = { string.byte(('x'):rep(200000), 1, -1) } for i = 1, 1e6 do table.insert(t, 1, i) end",
    "table.insert shifting" },
  { "table.remove from the front", "local t = { string.byte(('x'):rep(200000), 1, -1) } for i = 1, 1e6 do table.remove(t, 1) end",
    "exceeded its instruction budget" },
  { "table.sort of 200,000 elements in a loop", "local t = { string.byte(('x'):rep(200000), 1, -1) } for i = 1, 1e6 do table.sort(t) end",
    "table.sort of" },
  { "table.unpack of 200,000 elements in a loop", "local t = { string.byte(('x'):rep(200000), 1, -1) } for i = 1, 1e6 do local n = select('#', table.unpack(t)) end",
    "exceeded its instruction budget" },
  { "utf8.len of 1 MB in a loop", "local s = ('\u{e9}'):rep(2^19 - 64) for i = 1, 1e6 do local n = utf8.len(s) end",
    "exceeded its instruction budget" },
  { "string.byte of 1 MB in a loop", "local s = ('x'):rep(2^19) for i = 1, 1e6 do local n = select('#', s:byte(1, 200000)) end",
    "exceeded its instruction budget" },
}
for _, c in ipairs(cases) do
  local path = rule_file(c[2])
  local err, bucket, late = run(path)
  t.ok(err and err:find(c[3], 1, true), c[1] .. ": stops the replay with the reason", err)
  t.ok(err and err:find("receipt CVNA:1770044400000:", 1, true) and err:find("(CVNA)", 1, true),
       c[1] .. ": names the receipt and ticker", err)
  if c[1] ~= "memory survives pcall" and not c[1]:find("__close added later", 1, true) then
    t.ok(err and err:find(path:match("[^/]+$") .. ":%d+:") ~= nil, c[1] .. ": names the rule's file:line", err)
  end
  t.eq(bucket, 1770044400000, c[1] .. ": the store ends at the bucket before (the run's next bucket is the failing one)")
  t.ok(not late, c[1] .. ": nothing of the failing bucket written")
end

-- work no budget can count (comparing two 1 MB strings is one instruction):
-- the CPU-time safety net stops it, here at 0.3 s with a budget too large to
-- matter; the default is 10 s per call
do
  local path = rule_file("local a, b = ('x'):rep(2^20 - 64), ('x'):rep(2^20 - 65) .. 'x' while true do if a == b then end end")
  local err, bucket, late = run(path, { instructions = 2000000000, seconds = 0.3 })
  t.ok(err and err:find("exceeded its CPU time limit (0.3 s per receipt, a safety net", 1, true), "comparing 1 MB strings in a loop: stopped by the CPU-time safety net", err)
  t.ok(err and err:find(path:match("[^/]+$") .. ":%d+:") ~= nil, "the CPU-time limit names the rule's file:line", err)
  t.eq(bucket, 1770044400000, "and nothing of the failing bucket is written")
  t.eq(sandbox.DEFAULT_LIMITS.seconds, 10, "the safety net is 10 s by default")
  t.eq(select(2, sandbox.check_limits { seconds = 0 }), "the CPU time limit must be a positive number of seconds, got 0",
       "check_limits refuses a CPU time limit of 0")
end

-- a budget exceeded is exceeded at the same receipt and with the same
-- message in every run (the work of strings is charged by their length,
-- never by what the Lua state saw before)
do
  local path = rule_file("local s = ('x'):rep(4000) for i = 1, 1e6 do s = s:sub(2) .. 'y' end")
  local e1, e2 = run(path), run(path)
  t.ok(e1 and e1 == e2 and e1:find("instruction budget", 1, true), "the same limit error in two runs", e1)
end

-- the limits are configurable: a tiny budget trips the parity rules themselves
local err = run("worker-2026-02-02", { instructions = 200 })
t.ok(err and err:find("instruction budget (200 per receipt)", 1, true), "a configured budget applies", err)
t.eq((run("worker-2026-02-02", { instructions = 1e7, memory_mb = 256 })), nil, "generous limits: the day runs")

-- a rule file cannot see the host's globals even through _G
local path = rule_file("if _G.io then return 'watch' end")
t.ok((run(path) or ""):find("undeclared global 'io'", 1, true), "_G is the sandbox, not the host's globals")

-- a file with free-form content (not wrapped in classify)
local function raw_file(text)
  n = n + 1
  local p = string.format("%s/raw%d.lua", dir, n)
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end
local BASE = 'local R = require("retape").rules.load("worker-2026-02-02")\n'

-- the top level of a rule file runs under the same limits
for _, c in ipairs {
  { "top-level endless loop", "while true do end\n", "instruction budget" },
  { "top-level memory bomb", "local t = {} for i = 1, 1e9 do t[i] = { i, i, i, i } end\n", "memory cap" },
  { "top-level string.rep bomb", "local s = string.rep('x', 2^31)\n", "memory cap" },
} do
  local p = raw_file(BASE .. c[2] .. "return R\n")
  local ok, e = pcall(retape.rules.load, p)
  t.ok(not ok and tostring(e):find(c[3], 1, true) and tostring(e):find(p .. ":2:", 1, true),
       c[1] .. ": loading stops with the limit and file:line", e)
end

-- trust comes from where a ruleset was loaded, never from the file
do
  local p = raw_file(BASE .. "R.trusted = true\nreturn R\n")
  t.eq(retape.rules.load(p).trusted, false, "a rule file setting trusted = true stays untrusted")
  p = raw_file(BASE .. "R.trusted = nil\nreturn setmetatable(R, { __index = { trusted = true } })\n")
  t.fails(function() return retape.rules.load(p) end, "a ruleset must be a plain table",
          "a metatable on the returned table is refused")
  t.eq(retape.rules.load("worker-2026-02-02").trusted, true, "a bundled ruleset is trusted")
  local rp = assert(retape.replay.open { db = db, state = dir .. "/trust", rules = raw_file(BASE .. "R.trusted = true return R\n") })
  t.ok(rp:rule_limits() and rp:rule_limits().instructions == 5000000, "a user file always runs under the limits")
  rp:close()
end

-- non-positive limits never turn a limit off
t.fails(function() return sandbox.guard({ instructions = 0, memory_mb = 64 }, function() end) end,
        "'instructions' must be a positive integer", "guard refuses an instruction budget of 0")
t.fails(function() return sandbox.guard({ instructions = -1, memory_mb = 64 }, function() end) end,
        "'instructions' must be a positive integer", "guard refuses a negative budget")
t.fails(function() return sandbox.guard({ instructions = 100, memory_mb = 0 }, function() end) end,
        "'memory_mb' must be a positive", "guard refuses a memory cap of 0")
-- a limit hit inside C code that swallows the error (cjson.safe returns
-- nil, message on a refused allocation) still fails the guarded call, even
-- when the call returns before the next hook tick could raise it
do
  local text = "[" .. string.rep('"abcdefghij",', 200000) .. '"x"]'
  local ok, err = pcall(sandbox.guard, { instructions = 1e6, memory_mb = 0.01 }, function()
    local v, e = require("cjson.safe").decode(text)
    return v and #v or e
  end)
  t.ok(not ok and type(err) == "table" and err.limit == "memory",
       "a memory limit hit under a swallowing C call is raised when the guarded call returns")
end
t.eq(select(2, sandbox.check_limits { instructions = 0 }),
     "the instruction budget must be a positive integer, got 0", "check_limits names the bad limit")

-- bundled names come only from the Lua layer: never ./rules/NAME.lua or .so
do
  local cwd = dir .. "/cwd"
  os.execute("mkdir -p " .. cwd .. "/rules && printf 'return {}' > " .. cwd .. "/rules/evil.lua && : > "
             .. cwd .. "/rules/evil2.so")
  local function cli(cmd)
    local pipe = io.popen("cd " .. cwd .. " && " .. os.getenv("RETAPE") .. " " .. cmd .. " 2>&1; echo \"exit $?\"")
    local out = pipe:read("a")
    pipe:close()
    return out
  end
  local out = cli("replay --db " .. db .. " --date 2026-02-02 --rules evil")
  t.ok(out:find("no ruleset 'evil'", 1, true) and out:find("exit 1", 1, true), "./rules/NAME.lua is not a bundled ruleset", out)
  out = cli("replay --db " .. db .. " --date 2026-02-02 --rules evil2")
  t.ok(out:find("no ruleset 'evil2'", 1, true), "./rules/NAME.so is never loaded", out)
  t.fails(function() return retape.rules.load("../rules/default") end, ".lua", "a path without .lua is refused")
end

-- shared tables: rule code gets read-only views; a write is refused at its
-- line and the damage never reaches the engine
do
  local key_before = retape.time.ny_date(1770044400000)
  for _, c in ipairs {
    { 'local time = require("retape.time")\ntime.ny_date = function() return "1970-01-01" end\n',
      "module 'retape.time' is read-only in rule code (assignment to 'ny_date')" },
    { 'require("retape").time.to_ny = function() error("broken") end\n', "module 'retape.time' is read-only" },
    { 'string.lower = function() return "x" end\n', "string is read-only in rule code (assignment to 'lower')" },
    { 'string.x = 1\n', "string is read-only in rule code (assignment to 'x')" },
    { 'rawset(string, "x", 1)\n', "rawset: string is read-only" },
    { 'rawset(_ENV, "x", 1)\n', "rawset: the global environment is read-only" },
    { 'rawset(_G, "x", 1)\n', "rawset: the global environment is read-only" },
    { 'pairs = nil\n', "assignment to global 'pairs': the globals of rule code are read-only" },
    { 'require("retape.rules").load = nil\n', "module 'retape.rules' is read-only" },
    { 'setmetatable(string, {})\n', "setmetatable: this table's metatable belongs to the engine" },
    { 'getmetatable("").__index.format = function() return "" end\n', "attempt to index a boolean value" },
  } do
    local p = raw_file(BASE .. c[1] .. "return R\n")
    local ok, e = pcall(retape.rules.load, p)
    local line = select(2, c[1]:gsub("\n", "")) + 1 -- the last line of the case
    t.ok(not ok and tostring(e):find(c[2], 1, true) and tostring(e):find(p .. ":" .. line .. ":", 1, true),
         "refused at the rule's line: " .. c[1]:gsub("\n", " "), e)
  end
  t.eq(retape.time.ny_date(1770044400000), key_before, "retape.time of the engine unchanged by a rule file")
  t.eq(("ABC"):lower(), "abc", "string library of the engine unchanged")
  t.eq(getmetatable(""), false, "the string metatable is locked")
  -- reading is unaffected
  local p = raw_file(BASE .. [[
local n = 0
for k in pairs(string) do n = n + 1 end
assert(n > 10 and #"abc" == 3 and string.format("%d", 3) == "3" and require("retape").rules == require("retape.rules"))
return R
]])
  t.ok(pcall(retape.rules.load, p), "the read-only views read like the tables (pairs, identity of modules)")
end

-- rule state kept outside the declared per-ticker state (upvalues, nested
-- tables, the ruleset's own fields and config) is refused at the receipt
-- that changed it, naming what changed; a weak table (a memo) and what
-- changed before the first receipt (overrides, setters) are not state
local function refused(name, body, what, line)
  local path = raw_file(BASE .. body .. "return R\n")
  local err, bucket, late = run(path)
  t.ok(err and err:find("rule state kept outside the ruleset's declared per-ticker state: " .. what, 1, true)
       and err:find("--threads", 1, true) and err:find("--resume", 1, true) and err:find("^receipt %S+ %(%u+%)"),
       name .. ": refused at the receipt, naming what changed", err)
  if line then
    t.ok(err and err:find("^receipt %S+ %(%u+%): " .. path:gsub("%p", "%%%0") .. ":" .. line .. ": rule state"),
         name .. ": names the rule's line", err)
  end
  t.ok(bucket ~= nil and not late, name .. ": nothing of the failing bucket written")
end
refused("an upvalue counter", [[
local classify = R.classify
local count = 0
R.classify = function(d)
  count = count + 1
  return classify(d)
end
]], "upvalue 'count' of the function at " .. dir .. "/raw")
refused("a table nested in an upvalue", [[
local classify = R.classify
local S = { seen = { by = {} } }
R.classify = function(d)
  S.seen.by[d.ticker] = true
  return classify(d)
end
]], "upvalue 'S' (function at " .. dir .. "/raw", 5)
refused("writing R.config", [[
local classify = R.classify
R.classify = function(d)
  R.config.corridor.long.ltf_max = R.config.corridor.long.ltf_max + 1
  return classify(d)
end
]], "R.config.corridor.long.ltf_max is read-only during a replay", 4)
refused("a field of R", [[
local classify = R.classify
R.classify = function(d)
  R.seen = (R.seen or 0) + 1
  return classify(d)
end
]], "R.seen is read-only during a replay", 4)
refused("a function that replaces itself (in R)", [[
local classify = R.classify
local function second(d) return classify(d) end
R.classify = function(d)
  R.classify = second
  return classify(d)
end
]], "R.classify is read-only during a replay", 5)
refused("a function that replaces itself (in an upvalue)", [[
local classify = R.classify
local pick
local function other(d) return classify(d) end
pick = function(d) pick = other return classify(d) end
R.classify = function(d) return pick(d) end
]], "upvalue 'pick' of the function at ")
refused("a toggle (changed and changed back in the next call)", [[
local classify = R.classify
local flip = false
R.classify = function(d)
  flip = not flip
  return classify(d)
end
]], "upvalue 'flip'")
do -- more than 64 upvalues: the 70th changes
  local decl, uses = {}, {}
  for i = 1, 70 do decl[#decl + 1] = "local u" .. i .. " = " .. i; uses[#uses + 1] = "u" .. i end
  refused("the 70th of 70 upvalues", table.concat(decl, "\n") .. [[

local classify = R.classify
R.classify = function(d)
  local sum = ]] .. table.concat(uses, " + ") .. [[

  u70 = u70 + 1
  return classify(d)
end
]], "upvalue 'u70'")
end
refused("state kept in the book", [[
local simulate = R.simulate
R.simulate = function(d, as_of, book)
  book.seen = (book.seen or 0) + 1
  return simulate(d, as_of, book)
end
]], "book.seen changed during this call (the book is the engine's; a rule may change book.cash only")
refused("a book function replaced", [[
local simulate = R.simulate
R.simulate = function(d, as_of, book)
  book.iso = function(ms) return "x" end
  return simulate(d, as_of, book)
end
]], "book.iso changed during this call")

do -- a metatable is no hiding place: rule code cannot reach it through a view
  local err = run(raw_file(BASE .. [[
local classify = R.classify
local S = setmetatable({}, { count = 0 })
R.classify = function(d)
  local mt = getmetatable(S)
  mt.count = mt.count + 1
  return classify(d)
end
return R
]]))
  t.ok(err and err:find("attempt to index a boolean value (local 'mt')", 1, true), "a table's metatable is not reachable during a replay", err)
  err = run(raw_file(BASE .. [[
local classify = R.classify
local memo = setmetatable({}, { __mode = "k", count = 0 })
R.classify = function(d)
  local mt = getmetatable(memo)
  mt.count = mt.count + 1
  return classify(d)
end
return R
]]))
  t.ok(err and err:find("a weak table (a memo) reachable from the ruleset has a metatable with more than __mode", 1, true),
       "nor a memo's: a memo's metatable holds __mode only", err)
  -- a memo starts empty (filled at load it would hand out the ruleset's own
  -- tables as they are) ...
  err = run(raw_file(BASE .. [[
local classify = R.classify
local memo = setmetatable({}, { __mode = "k" })
memo.lanes = R.lanes
R.classify = function(d) local l = memo.lanes return classify(d) end
return R
]]))
  t.ok(err and err:find('a weak table (a memo) reachable from the ruleset holds entries (key "lanes") when the run starts',
       1, true), "a memo filled at load is refused", err)
  -- ... and is the memo it was found to be: a table whose metatable turns
  -- weak during the run stays read-only
  err = run(raw_file(BASE .. [[
local classify = R.classify
local mt = setmetatable({}, { __mode = "k" })
local U = { T = setmetatable({ r = R }, mt) }
R.classify = function(d) mt.__mode = "k" local x = U.T x.r.name = "changed" return classify(d) end
return R
]]))
  t.ok(err and err:find("r.name is read-only during a replay", 1, true), "a table turned weak is still read-only", err)
  -- a memo the rules fill during a run does not stop a second run in the
  -- same process (replay --follow, serve)
  local p = raw_file(BASE .. [[
local classify = R.classify
local memo = setmetatable({}, { __mode = "k" })
R.classify = function(d) memo[d.ticker] = (memo[d.ticker] or 0) + 1 return classify(d) end
return R
]])
  local rp = assert(retape.replay.open { db = db, state = dir .. "/memo_twice", rules = p })
  local ok1, e1 = pcall(rp.run, rp, { date = "2026-02-02" })
  local ok2, e2 = pcall(rp.run, rp, { date = "2026-02-02", clean_slate = true })
  rp:close()
  t.ok(ok1 and ok2, "a memo filled by a run, then a second run", e1 or e2)
end

-- not state: a weak memo, a setter called before the run, overrides
local function fingerprint(state)
  local kv = assert(retape.kv.open(state))
  local keys = {}
  for _, prefix in ipairs { "v:", "t:", "tk:" } do -- the results: versions, trades, tickers
    for k, v in kv:scan(prefix) do keys[#keys + 1] = k .. "=" .. v end
  end
  kv:close()
  return #keys, retape.ingest.fnv1a32(table.concat(keys, "\n"))
end
do
  local memo = raw_file(BASE .. [[
local classify = R.classify
local memo = setmetatable({}, { __mode = "k" })
R.classify = function(d)
  local st = d.state
  if type(st) == "string" then
    local v = memo[st]
    if v == nil then v = st:lower(); memo[st] = v end
  end
  return classify(d)
end
return R
]])
  t.eq(run(memo), nil, "a weak memo table in an upvalue is a cache, not state: the day runs")
  local warnings = {}
  local saved = sandbox.warn
  sandbox.warn = function(m) warnings[#warnings + 1] = m end
  local outs = {}
  for _, threads in ipairs { 1, 2 } do
    local R = retape.rules.load("examples/rules/elite-pullback.lua")
    retape.rules.apply_overrides(R, { ["elite_pullback.score"] = 70, ["corridor.long.ltf_max"] = 25 }, "--set")
    local state = string.format("%s/override%d", dir, threads)
    local rp = assert(retape.replay.open { db = db, state = state, rules = R, threads = threads })
    local ok, e = pcall(rp.run, rp, { date = "2026-02-02" })
    rp:close()
    t.ok(ok, "a rule file with overrides runs on " .. threads .. " thread(s)", e)
    outs[threads] = { fingerprint(state) }
  end
  sandbox.warn = saved
  t.eq(#warnings, 0, "overrides are not rule state: no warning")
  t.ok(outs[1][1] > 79 and outs[1][1] == outs[2][1] and outs[1][2] == outs[2][2],
       "and the results are identical on 1 and 2 threads")
end

-- a setter called between two runs of one replay is the ruleset as run
do
  local p = raw_file(BASE .. [[
local classify = R.classify
local bias = 0
R.classify = function(d)
  if bias ~= 0 and type(d.ltf_score) == "number" then d.ltf_score = d.ltf_score + bias end
  return classify(d)
end
R.set_bias = function(b) bias = b end
return R
]])
  local R = retape.rules.load(p)
  local rp = assert(retape.replay.open { db = db, state = dir .. "/setter", rules = R })
  local ok1, e1 = pcall(rp.run, rp, { date = "2026-02-02" })
  R.set_bias(30)
  local ok2, e2 = pcall(rp.run, rp, { date = "2026-02-02", clean_slate = true })
  rp:close()
  t.ok(ok1 and ok2, "a setter between two runs of one replay is not rule state", e1 or e2)
end

-- no address reaches rule code: tostring, string.format, the payload's metatable
for _, c in ipairs {
  { "tostring of a table", "if tostring({}) ~= 'table' or tostring(tostring) ~= 'function' then error('address: ' .. tostring({})) end" },
  { "string.format %s of a table", "if string.format('%s', {}) ~= 'table' then error('address') end" },
  { "the payload's metatable is not the rule's", "if getmetatable(d) ~= false and getmetatable(d) ~= nil then error('shared metatable') end" },
} do
  t.eq(run(rule_file(c[2])), nil, c[1] .. ": no address")
end
for _, c in ipairs {
  { "string.format %p", "local s = string.format('%p', {})", "'%p' is not allowed in rule code" },
  { "string.format %p as a method", "local s = ('%5p'):format(d)", "'%p' is not allowed in rule code" },
  -- (a payload with an undeclared object, flags: partial, its metatable the
  -- engine's; with at most four undeclared scalars it comes out a plain table)
  { "replacing the payload's metatable", "setmetatable(d, nil)", "setmetatable: this table's metatable belongs to the engine",
    "for i = #R.fields, 1, -1 do local f = R.fields[i]\n" ..
    "  if f == 'flags' then table.remove(R.fields, i) end end\n" },
} do
  local path = rule_file(c[2])
  if c[4] then -- the ruleset's own changes first
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    text = text:gsub("\nlocal classify = R.classify\n", function(s) return "\n" .. c[4] .. s:sub(2) end, 1)
    f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
  end
  local err = run(path)
  t.ok(err and err:find(c[3], 1, true) and err:find("rule%d+%.lua:%d+:"), c[1] .. ": refused at the rule's line", err)
end
-- a payload that decoded whole (a plain table) is the rule's to change
do
  local err = run(rule_file("if getmetatable(d) ~= nil then error('partial') end setmetatable(d, nil)"))
  t.eq(err, nil, "a payload decoded whole has no metatable: setmetatable on it is allowed")
end

-- Writes DIR/NAME.lua: the default ruleset as BODY changes it.
local function default_rules(name, body)
  local path = string.format("%s/%s.lua", dir, name)
  local f = assert(io.open(path, "w"))
  f:write('local R = require("retape").rules.load("default")\n', body, "\nreturn R\n")
  f:close()
  return path
end

-- shared references: {a = t, b = t} 24 levels deep is 2^25 values in a
-- handful of tables; what the engine keeps of a rule's values (a state
-- field, a trade, a view field) is bounded (100,000 values), so such a
-- value is refused, naming it, instead of expanding outside every limit
do
  local DAG = "local b = { 1 } for _ = 1, 24 do b = { a = b, b = b } end\n"
  local dag_rules = default_rules
  local function replay(path, threads)
    runs = runs + 1
    local state = string.format("%s/state%d", dir, runs)
    local reports = {}
    local rp = assert(retape.replay.open { db = db, state = state, rules = path, threads = threads,
                                           on_error = function(m) reports[#reports + 1] = m end })
    local ok, e = pcall(rp.run, rp, { date = "2026-02-02" })
    rp:close()
    return not ok and tostring(e) or nil, reports, state
  end
  local state_dag = dag_rules("dag_state", [[
R.state.fields.blob = "table"
local step = R.step
function R.step(p, row, ex, open_trade)
  if p.ticker == "CVNA" then ]] .. DAG .. [[ p.blob = b end
  return step(p, row, ex, open_trade)
end]])
  local err = replay(state_dag)
  t.ok(err and err:find("state field 'blob' takes the state past 100000 values", 1, true) and err:find("(CVNA)", 1, true),
       "a state field of shared tables past 100,000 values stops the run, naming the receipt and the field", err)

  local trade_dag = dag_rules("dag_trade", [[
local sim = R.simulate
function R.simulate(p, ts, book)
  sim(p, ts, book)
  if p.ticker == "CVNA" and not book.open("CVNA") then
    ]] .. DAG .. [[ book.add { id = book.next_id("CVNA", ts), ticker = "CVNA", status = "OPEN", entry_ts = ts, blob = b }
  end
end]])
  err = replay(trade_dag)
  t.ok(err and err:find("cannot be stored: 'blob' takes it past 100000 values", 1, true) and err:find("dag_trade.lua"),
       "a trade of shared tables past 100,000 values stops the run, naming the trade, its field and the simulate", err)

  -- the bound holds for the whole state, however many fields share it
  local many = dag_rules("dag_state_many", [[
for i = 1, 40 do R.state.fields["f" .. i] = "table" end
local step = R.step
function R.step(p, row, ex, open_trade)
  if p.ticker == "CVNA" then local b = { 1 } for _ = 1, 12 do b = { a = b, b = b } end for i = 1, 40 do p["f" .. i] = b end end
  return step(p, row, ex, open_trade)
end]])
  err = replay(many)
  t.ok(err and err:find("takes the state past 100000 values", 1, true) and err:find("(CVNA)", 1, true),
       "forty state fields of 12,287 values each pass the bound together: the run stops naming the field", err)

  -- a final lane is a name: a table returned as one is refused, not stored
  local lane = dag_rules("dag_lane", [[
local step = R.step
function R.step(p, row, ex, open_trade)
  local stage, final, forced, rule = step(p, row, ex, open_trade)
  if p.ticker == "CVNA" then ]] .. DAG .. [[ final = b end
  return stage, final, forced, rule
end]])
  err = replay(lane)
  t.ok(err and err:find("step returned a final lane that is a table", 1, true) and err:find("(CVNA)", 1, true),
       "a final lane that is not a string stops the run, naming the receipt", err)

  -- a trade is plain data: a metatable on it (its __tostring, __index or
  -- __pairs would run outside the guard where the engine keys and stores
  -- it) or an id that is not a string is refused at the rule's line
  for i, c in ipairs {
    { "an id with __tostring", [[book.add { id = setmetatable({}, { __tostring = function() while true do end end }),
      ticker = "CVNA", status = "CLOSED", entry_ts = ts }]] },
    { "a trade with __index", [[book.add(setmetatable({ ticker = "CVNA", status = "CLOSED", entry_ts = ts },
      { __index = function() while true do end end }))]] },
  } do
    local path = dag_rules("trade_mt" .. i, [[
local sim = R.simulate
function R.simulate(p, ts, book)
  sim(p, ts, book)
  if p.ticker == "CVNA" then ]] .. c[2] .. [[ end
end]])
    err = replay(path)
    t.ok(err and err:find("book.add: a trade is a plain table (no metatable) with a string id", 1, true)
         and err:find("trade_mt" .. i .. ".lua:%d+:"), c[1] .. ": refused at the rule's line", err)
  end
  local pairs_in = dag_rules("trade_pairs", [[
local sim = R.simulate
function R.simulate(p, ts, book)
  sim(p, ts, book)
  if p.ticker == "CVNA" then
    book.add { id = book.next_id("CVNA", ts), ticker = "CVNA", status = "CLOSED", entry_ts = ts,
               a = setmetatable({}, { __pairs = function() while true do end end }), z = function() end }
  end
end]])
  err = replay(pairs_in)
  t.ok(err and err:find("'z' is a function", 1, true),
       "a nested table's own __pairs is not run when the engine names what a trade cannot store", err)

  -- a rule file keeping `b` (made by the code `make`) in a view field
  -- 'blob' of CVNA's receipts in the quarter hour from 10:00
  local function view_blob_rules(name, make)
    return dag_rules(name, [[
R.state.view[#R.state.view + 1] = "blob"
R.fields[#R.fields + 1] = "blob"
local step = R.step
function R.step(p, row, ex, open_trade)
  if p.ticker == "CVNA" and p.ts >= 1770044400000 and p.ts < 1770044400000 + 900000 then ]] .. make .. [[ p.blob = b end
  return step(p, row, ex, open_trade)
end]])
  end
  local view_dag = view_blob_rules("dag_view", DAG)
  local reports, state
  err, reports, state = replay(view_dag)
  t.eq(err, nil, "a view field of shared tables past 100,000 values does not stop the run")
  t.ok(#reports > 0 and reports[1]:find("field 'blob' cannot be stored", 1, true) and reports[1]:find("(CVNA)", 1, true),
       "it is reported, naming the receipt and the field", reports[1])
  local st = assert(retape.store.open(state, true))
  local versions = st:versions("CVNA")
  st:close()
  local kept, viewed = 0, 0
  for _, v in ipairs(versions) do
    local view = v.rec.view or {}
    if view.blob ~= nil then kept = kept + 1 end
    if view.price ~= nil then viewed = viewed + 1 end
  end
  t.ok(#versions > 0 and viewed == #versions and kept == 0, "the versions are kept without it (their other view fields kept)",
       #versions .. " versions, " .. viewed .. " with a view, " .. kept .. " with the field")

  -- view fields each within the bound but over it together: the ones past
  -- it (in key order) are reported and left out, the run goes on
  local view3 = dag_rules("dag_view3", [[
for _, k in ipairs { "v1", "v2", "v3" } do R.state.view[#R.state.view + 1] = k; R.fields[#R.fields + 1] = k end
local step = R.step
function R.step(p, row, ex, open_trade)
  if p.ticker == "CVNA" and p.ts >= 1770044400000 and p.ts < 1770044400000 + 900000 then
    local b = { 1 } for _ = 1, 14 do b = { a = b, b = b } end p.v1, p.v2, p.v3 = b, b, b
  end
  return step(p, row, ex, open_trade)
end]])
  err, reports, state = replay(view3)
  t.eq(err, nil, "three view fields of 49,151 values each do not stop the run")
  t.ok(#reports > 0 and reports[1]:find("field 'v3' cannot be stored", 1, true), "the one past the bound is reported", reports[1])
  st = assert(retape.store.open(state, true))
  local last
  for _, v in ipairs(st:versions("CVNA")) do if v.rec.view and v.rec.view.v1 then last = v.rec end end
  st:close()
  t.ok(last and last.view.v2 and last.view.v3 == nil, "the versions keep the fields within it (v1, v2; not v3)")

  -- bytes too: a megabyte string (a rule's longest) held a hundred times is
  -- a hundred values but 100 MB written; past 4 MB a view field is
  -- reported and left out, a trade stops the run naming it
  local MB = "local s = string.rep('x', 1 << 20) local b = {} for i = 1, 100 do b[i] = s end\n"
  local view_mb = view_blob_rules("mb_view", MB)
  err, reports, state = replay(view_mb)
  t.eq(err, nil, "a view field of 100 MB written does not stop the run")
  t.ok(#reports > 0 and reports[1]:find("field 'blob' cannot be stored", 1, true)
       and reports[1]:find("more than 4194304 bytes", 1, true), "it is reported, naming the field and the bound", reports[1])
  local trade_mb = dag_rules("mb_trade", [[
local sim = R.simulate
function R.simulate(p, ts, book)
  sim(p, ts, book)
  if p.ticker == "CVNA" then ]] .. MB .. [[
    book.add { id = book.next_id("CVNA", ts), ticker = "CVNA", status = "CLOSED", entry_ts = ts, blob = b }
  end
end]])
  err = replay(trade_mb)
  t.ok(err and err:find("(CVNA)", 1, true) and err:find("cannot be stored", 1, true) and err:find("4194304 bytes", 1, true),
       "a trade of 100 MB written stops the run, naming it", err)
  -- each trade within the bound but many of them: a bucket's batch of
  -- writes stops at 256 MB (RocksDB aborted the host at ~1 GB)
  err = replay(dag_rules("mb_trades", [[
local s = string.rep('x', 1 << 20)
local sim = R.simulate
function R.simulate(p, ts, book)
  sim(p, ts, book)
  if p.ticker == "CVNA" then
    for i = 1, 90 do book.add { id = book.next_id("CVNA", ts + i), ticker = "CVNA", status = "CLOSED", entry_ts = ts, a = s, b = s, c = s } end
  end
end]]))
  t.ok(err and err:find("^receipt CVNA:%d+:%x+ %(CVNA%): a batch of the store's writes past 256 MB") and
       not err:find("cannot be stored", 1, true), "90 trades of 3 MB stop the run, blaming the batch, not a trade", err)
  -- on two threads, each part's batch of a bucket within the bound but
  -- the round's writes of both past it where the main state gathers them
  -- (CVNA and NVDA: in different parts of two, both in the bucket of 12:30 ET)
  local pool = require "retape.pool"
  local other = "NVDA"
  t.ok(pool.part_of(other, 2) ~= pool.part_of("CVNA", 2), "NVDA and CVNA walk in different parts of two")
  err = replay(dag_rules("mb_parts", [[
local s = string.rep('x', 1 << 20)
local sim = R.simulate
function R.simulate(p, ts, book)
  sim(p, ts, book)
  if (p.ticker == "CVNA" or p.ticker == "]] .. other .. [[") and ts == 1770053400000 then -- their one receipt there
    for i = 1, 44 do book.add { id = book.next_id(p.ticker, ts + i), ticker = p.ticker, status = "CLOSED", entry_ts = ts, a = s, b = s, c = s } end
  end
end]]), 2)
  t.ok(err and err:find("^bucket 2026%-02%-02 12:30 ET: a batch of the store's writes past 256 MB") and
       err:find("the parts' writes together", 1, true) and not err:find("cannot be stored", 1, true),
       "two parts' 132 MB of one bucket stop a two-thread run where they are gathered, naming the bucket", err)
  -- a key's __tostring never runs where the engine names a key it cannot store
  local keyed = view_blob_rules("key_tostring_view",
    "local b = { [setmetatable({}, { __tostring = function() error('called') end })] = 1 }")
  err, reports = replay(keyed)
  t.ok(err == nil and #reports > 0 and reports[1]:find("key a table", 1, true) and not reports[1]:find("called", 1, true),
       "a view field with a table key is reported by the key's type", reports[1] or err)
  -- a final lane is a stage name: a megabyte one would be written in every
  -- version of its bucket
  err = replay(dag_rules("long_lane", [[
local step = R.step
function R.step(p, row, ex, open_trade)
  local stage, final, forced, rule = step(p, row, ex, open_trade)
  if p.ticker == "CVNA" then final = string.rep("x", 1000) end
  return stage, final, forced, rule
end]]))
  t.ok(err and err:find("returned a final lane that is a string too long (a lane is a name of at most 256 bytes", 1, true),
       "a final lane of 1,000 bytes is refused", err)
end

-- what the engine reads of a ruleset and of rule values outside a replay's
-- step (its tables at load, R.badge, trace records, explanations) runs no
-- rule code unguarded and expands nothing without bound: a metamethod that
-- would be called raises "called" (so a message without it shows it was
-- not), a shared table would take seconds and gigabytes to expand
do
  local rules_file = default_rules
  local function load_error(name, body)
    local ok, err = pcall(retape.rules.load, rules_file(name, body))
    return not ok and tostring(err) or nil
  end
  local CALLED = 'function() error("called") end'
  local DAG = "local b = { 1 } for _ = 1, 24 do b = { a = b, b = b } end\n"
  for _, c in ipairs {
    { "config_index", "R.config.zzz = { sub = setmetatable({}, { __index = " .. CALLED .. " }) }",
      "R.config.zzz.sub has a metatable (__index)" },
    { "ruleset_pairs", "R.extra = setmetatable({}, { __pairs = " .. CALLED .. " })", "R.extra has a metatable (__pairs)" },
    { "key_tostring", "R.extra = { [setmetatable({}, { __tostring = " .. CALLED .. " })] = 1 }",
      "R.extra[table key] has a metatable (__tostring)" },
    { "hidden_metatable", "R.extra = setmetatable({}, { __index = " .. CALLED .. ", __metatable = false })",
      "R.extra has a metatable (__index, __metatable)" },
    { "config_shared", "local b = { 1 } for _ = 1, 18 do b = { a = b, b = b } end R.config.zzz = b",
      "R.config, R.lanes, R.state, R.fields, R.trace_columns, R.overrides, R.sources, R.glossary hold more than "
      .. "100000 values (a table held twice counts twice)" },
    { "overrides_shared", "local b = { 1 } for _ = 1, 40 do b = { a = b, b = b } end R.overrides = b",
      "R.config, R.lanes, R.state, R.fields, R.trace_columns, R.overrides, R.sources, R.glossary hold more than" },
    { "weak_lanes", 'setmetatable(R.lanes, { __mode = "k" })', "R.lanes has a metatable (__mode): the engine reads it as "
      .. "plain data, so it may have none" },
    { "view_in_config", "R.config.zzz = { lib = string }", "R.config.zzz.lib has a metatable" },
    { "name_table", "R.name = { R.name }", "R.name must be a string, got a table" },
    { "columns_twice", 'R.trace_columns = { "ticker", "ts", "ticker" }',
      "R.trace_columns must list distinct column names (entry 3 is 'ticker' again)" },
    { "config_cycle", "local c = {} c.again = c R.config.zzz = c", "R.config.zzz.again.again", "nests tables deeper than 64 levels" },
    { "deep_chain", "local c = {} for _ = 1, 30000 do c = { a = c } end R.chain = c",
      "R.chain.a.a.a.a", "... nests tables deeper than 64 levels" },
  } do
    local err = load_error(c[1], c[2])
    t.ok(err and err:find(c[1] .. ".lua: " .. c[3], 1, true) and not err:find("called", 1, true)
         and (c[4] == nil or err:find(c[4], 1, true)),
         "refused at load, naming it, without running it: " .. c[1], err)
  end
  t.eq(load_error("plain_data", [[R.memo = setmetatable({}, { __mode = "k" })
R.config.zzz = { list = { 1, 2, 3 }, nested = { deeper = { yes = true } } }]]), nil,
       "a weak memo table and nested settings load")
  -- a megabyte key 60 levels deep over 2,000 tables: the ruleset's shape
  -- (to load it again on threads) once built a path string per table
  -- (60 MB each); it keys its entries by table now
  local started = os.clock()
  t.eq(load_error("long_keys", [[local K = string.rep("k", 1000000) local top = {} local x = top
for _ = 1, 60 do local n = {} x[K] = n x = n end for i = 1, 2000 do x[i] = {} end R.junk = top]]), nil,
       "tables under long keys load")
  t.ok(os.clock() - started < 5, "in a moment, not a path per table", os.clock() - started)

  -- R.badge: run under the sandbox's limits, its answer checked; the first
  -- ticker in order is named whatever the store's order
  local function replayed(path)
    runs = runs + 1
    local state = string.format("%s/state%d", dir, runs)
    local rp = assert(retape.replay.open { db = db, state = state, rules = path })
    rp:run { date = "2026-02-02" }
    rp:close()
    return state
  end
  local function badge_error(body)
    local state = replayed(rules_file("badge" .. runs, body))
    local st = assert(retape.store.open(state, true))
    local R = retape.manifest.store_rules(st)
    local ok, err = pcall(retape.results.badges, st, R)
    local ok2, err2 = pcall(retape.results.badge_history, st, R)
    st:close()
    return not ok and tostring(err) or nil, not ok2 and tostring(err2) or nil, state
  end
  local e1, e2, looping = badge_error("function R.badge(r) while true do end end")
  t.ok(e1 and e1:find("^R.badge of AAPL: rule exceeded its instruction budget") and e1:find("badge%d+%.lua:2:"),
       "a looping R.badge stops at its budget, naming the first ticker and the rule's line", e1)
  t.ok(e2 and e2:find("^R.badge of AAPL: rule exceeded its instruction budget"), "so does the badge history", e2)
  e1 = badge_error("function R.badge(r) return string.rep('d', 101) end")
  t.eq(e1, "R.badge of AAPL returned a string of 101 bytes: a badge is a name of at most 100 bytes (nil or false: none)",
       "a badge is a short name")
  e1 = badge_error("function R.badge(r) return { 'defend' } end")
  t.eq(e1, "R.badge of AAPL returned a table: a badge is a name of at most 100 bytes (nil or false: none)",
       "a badge that is not a string is refused")
  -- R.badge may be the ruleset's first call in a process (`retape lanes`):
  -- it sees R read-only too, so it cannot lift its own limits or plant a
  -- metatable for the engine to meet
  e1 = badge_error("function R.badge(r) R.trusted = true while true do end end")
  t.ok(e1 and e1:find("^R.badge of AAPL: [^\n]*badge%d+%.lua:2: rule state kept outside the ruleset's declared "
       .. "per%-ticker state: R.trusted is read%-only during a replay"), "a badge cannot mark its ruleset trusted", e1)
  e1 = badge_error("function R.badge(r) setmetatable(R.lanes, { __index = " .. CALLED .. " }) end")
  t.ok(e1 and e1:find("^R.badge of AAPL: .*setmetatable: this table.s metatable belongs to the engine"), "nor give the lanes a metatable", e1)
  local cli = io.popen(os.getenv("RETAPE") .. " lanes --state " .. looping .. " 2>&1 >/dev/null; echo \"exit: $?\""):read("a")
  t.ok(cli:find("retape: R.badge of AAPL: rule exceeded its instruction budget", 1, true) and cli:find("exit: 1\n$"),
       "`retape lanes` with it: the error on stderr, exit 1", cli)

  -- trace records and explanations are checked before the engine reads them
  local function trace_error(body)
    runs = runs + 1
    local rp = assert(retape.replay.open { db = db, state = string.format("%s/state%d", dir, runs),
      rules = rules_file("trace" .. runs, body), trace = function(r) assert(r.ticker) end })
    local ok, e = pcall(rp.run, rp, { date = "2026-02-02" })
    rp:close()
    return not ok and tostring(e) or nil
  end
  local TRACE = "local tr = R.trace_record\nfunction R.trace_record(row, ...)\n  local r = tr(row, ...)\n"
  local err = trace_error(TRACE .. "  return setmetatable({}, { __index = " .. CALLED .. " })\nend")
  t.ok(err and err:find("^receipt AU:%d+:%x+ %(AU%): R.trace_record's record has a metatable %(__index%)")
       and not err:find("called", 1, true), "a trace record with __index is refused, naming the receipt", err)
  err = trace_error(TRACE .. "  if row.ticker == 'CVNA' then " .. DAG .. " r.ticker = b end\n  return r\nend")
  t.ok(err and err:find("^receipt CVNA:%d+:%x+ %(CVNA%): R.trace_record's record holds more than 100000 values"),
       "a trace record of shared tables is refused, naming the receipt", err)
  t.eq(trace_error(""), nil, "the shipped trace records pass")
  -- a table the rule reaches through its upvalues is a read-only view in
  -- rule code: the record holds what it stands for
  runs = runs + 1
  local lines = {}
  local rp = assert(retape.replay.open { db = db, state = string.format("%s/state%d", dir, runs),
    rules = rules_file("trace_tags", 'local TAGS = { "parity", "v2" }\n' .. TRACE .. "  r.tags = TAGS\n  return r\nend"),
    trace = function(r, row) lines[#lines + 1] = retape.json.encode(r.tags) .. " " .. row.receipt_id end })
  rp:run { date = "2026-02-02", ticker = "CVNA" }
  rp:close()
  t.ok(#lines > 10 and lines[1]:find('^%["parity","v2"%] CVNA:'), "a trace record keeps the tables it holds", lines[1])

  local function explain_error(body)
    local state = replayed(rules_file("explain" .. runs, body))
    local st = assert(retape.store.open(state, true))
    local why, werr = retape.explain.explain(st, db, "CVNA", { at = 1770044400000 })
    st:close()
    return why, werr
  end
  local EX = "local ex = R.explain_step\nfunction R.explain_step(...)\n  local why, stage, final, forced, rule = ex(...)\n"
  local why, werr = explain_error(EX .. "  return why, setmetatable({}, { __tostring = " .. CALLED
    .. " }), final, forced, rule\nend")
  t.ok(why == nil and werr == "R.explain_step returned a table as its stage (a string, number or boolean is expected)",
       "an explanation's stage that is a table is refused", werr)
  why, werr = explain_error(EX .. DAG .. "  why.blob = b\n  return why, stage, final, forced, rule\nend")
  t.ok(why == nil and werr == "R.explain_step's explanation holds more than 100000 values (a table held twice counts twice)",
       "an explanation of shared tables is refused", werr)
  why, werr = explain_error(EX .. "  why.inputs = setmetatable({}, { __pairs = " .. CALLED
    .. " })\n  return why, stage, final, forced, rule\nend")
  t.ok(why == nil and werr and werr:find("^R.explain_step's explanation.inputs has a metatable %(__pairs%)"),
       "an explanation with a metatable is refused", werr)
  why, werr = explain_error(EX .. "  setmetatable(R, { __index = " .. CALLED .. " })\n  return why, stage, final, forced, rule\nend")
  t.ok(why == nil and werr and werr:find("setmetatable: this table's metatable belongs to the engine", 1, true),
       "explain_step sees its ruleset read-only, though it may be the first call of a process", werr)
  why, werr = explain_error("")
  t.ok(why and why.final_stage and werr == nil, "the shipped explanation passes", werr)
end

-- after all the hostile rules, the shipped rules in this process give the same results
do
  local rp = assert(retape.replay.open { db = db, state = dir .. "/after", rules = "default" })
  rp:run { date = "2026-02-02" }
  rp:close()
  local n1, h1 = fingerprint(dir .. "/after")
  local out = io.popen(os.getenv("RETAPE") .. " replay --db " .. db .. " --state " .. dir
                       .. "/fresh --date 2026-02-02 --quiet >/dev/null 2>&1; echo $?"):read("a")
  local n2, h2 = fingerprint(dir .. "/fresh")
  t.ok(out:match("^0") and n1 == n2 and h1 == h2 and n1 > 79,
       "later runs in the same process match a fresh process byte for byte", n1 .. " " .. n2)
end

os.exit(t.done())
