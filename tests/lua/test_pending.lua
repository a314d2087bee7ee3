-- test_pending.lua — a store is either consistent or says exactly what is
-- pending, and any next write finishes it (or refuses, naming it and the
-- command that finishes it).  Kills here are real SIGKILLs of a child
-- process (kill_after.lua, kill_at.lua) after a given committed bucket;
-- test_rerun_property.lua kills at random points.
local t = require "tap"
local retape = require "retape"
local stores = require "stores"
local P = require "parity"
local json = retape.json

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)
local D1, D2, D3 = "2026-01-27", "2026-01-28", "2026-01-29"
local levels_dir = t.tempdir()
local db = P.levels_db(receipts, levels_dir, {
  { day = D1, synthetic_inputs = P.synth_levels(receipts, D1) },
  { day = D2, synthetic_inputs = P.synth_levels(receipts, D2) },
  { day = D3, synthetic_inputs = P.synth_levels(receipts, D3) },
})
local exe = os.getenv("RETAPE") or "./retape"

local function replay(state, params, opts)
  local o = { db = db, state = state }
  for k, v in pairs(opts or {}) do o[k] = v end
  local rp = assert(retape.replay.open(o))
  local ok, r = pcall(rp.run, rp, params)
  rp:close()
  if not ok then error(r, 0) end
  return r
end

local function results(dir) return table.concat(stores.results(dir), "\n") end
local function count(dir, prefix)
  local kv = assert(retape.kv.open(dir))
  local n = 0
  for _ in kv:scan(prefix) do n = n + 1 end
  kv:close()
  return n
end
local function status(dir)
  local s = assert(retape.store.open(dir, true))
  local st = retape.manifest.status(s)
  s:close()
  return st
end
local function kill_at(state, n, params, rules)
  local p = assert(io.popen(string.format("%s run tests/lua/kill_at.lua %s %s %s %d '%s' 2>/dev/null", exe, db, state,
    rules or "default", n, json.encode(params))))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("done (%d+)"))
end
local function copy(from, to) assert(os.execute(string.format("rm -rf %s && cp -r %s %s", to, from, to))) end

local root = t.tempdir()
local base = root .. "/base"
for _, d in ipairs { D1, D2, D3 } do replay(base, { date = d }) end
local want = root .. "/want" -- one fresh replay of the three days, D2 with a clean slate
for _, d in ipairs { D1, D2, D3 } do replay(want, { date = d, clean_slate = d == D2 }) end

-- 1. a refresh killed half-way commits no deletion it has not replaced
do
  local dir = root .. "/r1"
  copy(base, dir)
  replay(dir, { date = D1, clean_slate = true, ticker = "CVNA" }, { cascade = false })
  replay(dir, { date = D2, clean_slate = true }, { cascade = false })
  local versions, stale = count(dir, "v:"), #status(dir).stale
  t.ok(stale > 10, "a clean-slate re-run with --no-cascade leaves later results stale", stale)
  t.ok(kill_at(dir, 40, { refresh = true }) == nil, "the refresh was killed after its 40th bucket")
  local s = status(dir)
  t.ok(s.interrupted and s.interrupted.phase == "refresh", "status says the recomputation is interrupted",
    json.encode(s.interrupted))
  t.eq(count(dir, "v:"), versions, "no version lost: every stale version is still there, recomputed or not")
  local r = replay(dir, { refresh = true })
  t.ok(r.recomputed > 0 and not r.stale, "the next refresh continues where the killed one stopped", r.recomputed)
  local s2 = status(dir)
  t.ok(not s2.interrupted and #s2.stale == 0, "then nothing is pending")
  local ref = root .. "/r1ref"
  for _, d in ipairs { D1, D2, D3 } do replay(ref, { date = d, clean_slate = d == D2 }) end
  replay(ref, { date = D1, clean_slate = true, ticker = "CVNA" })
  replay(ref, { date = D2, clean_slate = true })
  t.ok(results(dir) == results(ref), "equal to the same re-runs with their cascade")
end

-- 1. a re-run's cascade killed half-way is pending work; --resume alone finishes it
do
  local dir = root .. "/c1"
  copy(base, dir)
  copy(base, root .. "/c1count") -- how many buckets the re-run and its recomputation commit
  local with_cascade = kill_at(root .. "/c1count", 0, { date = D2, clean_slate = true })
  t.ok(with_cascade and with_cascade > 100, "the re-run commits its buckets and the recomputation's", tostring(with_cascade))
  kill_at(dir, with_cascade - 20, { date = D2, clean_slate = true })
  local s = status(dir)
  t.ok(s.interrupted and s.interrupted.phase == "refresh" and s.interrupted.params:find(D2, 1, true),
    "killed in its cascade: status names the recomputation and the run that started it", json.encode(s.interrupted))
  local r = replay(dir, { resume = true })
  t.ok(r.recomputed > 0, "--resume alone finishes the recomputation", r.recomputed)
  t.ok(results(dir) == results(want), "equal to one fresh replay")
  t.ok(not status(dir).interrupted, "nothing pending after it")
end

-- 4. after a killed run, a run of another scope finishes it first
do
  local dir = root .. "/k4"
  kill_at(dir, 100, { from = D1, to = D3 })
  local s = status(dir)
  t.ok(s.interrupted and s.interrupted.phase == "run", "killed in its walk: the run is interrupted", json.encode(s.interrupted))
  local r = replay(dir, { date = D3 })
  t.ok(r.finished and r.finished.phase == "run" and r.finished.params:find(D1, 1, true) and r.finished.rows > 0,
    "a plain run of another day finishes the interrupted one first and says so", json.encode(r.finished))
  local ref = root .. "/k4ref"
  replay(ref, { from = D1, to = D3 })
  t.ok(results(dir) == results(ref), "equal to one fresh replay of the range")
  local s2 = status(dir)
  t.ok(not s2.interrupted and #s2.days == 3 and s2.days[1].all and s2.days[3].all,
    "status lists the three days, nothing pending", json.encode(s2.days))
end

-- 4. pending work of other rules is refused, naming it and the command; --rebuild supersedes it
do
  local dir = root .. "/k4b"
  kill_at(dir, 30, { date = D1 })
  t.fails(function() replay(dir, { date = D2 }, { rules = "worker-2026-02-02" }) end,
    "holds an interrupted run ({\"date\":\"2026-01-27\"}) of rules 'default'",
    "a run with other rules is refused, naming the interrupted run")
  t.fails(function() replay(dir, { date = D2 }, { rules = "worker-2026-02-02" }) end,
    "'retape replay --state " .. dir .. " --resume' (it reuses the store's recorded rules", "and the command that finishes it (the recorded rules: it runs as printed)")
  local r = replay(dir, { date = D2, rebuild = true }, { rules = "worker-2026-02-02" })
  t.ok(r.finished and r.finished.params:find(D1, 1, true), "--rebuild with other rules first replays the interrupted scope with them")
  local ref = root .. "/k4bref"
  replay(ref, { date = D1 }, { rules = "worker-2026-02-02" })
  replay(ref, { date = D2 }, { rules = "worker-2026-02-02" })
  t.ok(results(dir) == results(ref), "equal to one fresh replay of both days with the new rules")
end

-- 5. coverage per ticker and bucket
do
  local dir = root .. "/c5"
  local open = retape.time.session(D1)
  replay(dir, { date = D1, bucket = open, limit = 3 })
  local s = status(dir)
  t.eq(s.days[1] and s.days[1].covers, "all tickers 09:30 only its first 3 rows",
    "one page of a bucket: status says so, not 'all tickers'")
  t.ok(not s.days[1].all and s.days[1].partial, "the day is not covered whole")
  replay(dir, { date = D1, bucket = open, limit = 1000 })
  replay(dir, { date = D1, bucket = open + 300000, ticker = "CVNA" })
  replay(dir, { date = D2, ticker = "CVNA" })
  s = status(dir)
  t.eq(s.days[1].covers .. " | " .. s.days[2].covers, "all tickers 09:30; CVNA 09:35 | CVNA",
    "whole buckets for all tickers or one; a whole day of one ticker")
  replay(dir, { date = D1 })
  replay(dir, { date = D1, bucket = open + 600000, limit = 2 })
  s = status(dir)
  t.eq(s.days[1].covers, "all tickers, but 09:40 only its first 2 rows", "a page inside a whole day is named")
end

-- 6. --resume on a store killed before its first commit runs the scope
do
  local dir = root .. "/e6"
  local st = assert(retape.store.open(dir)) -- what a kill before the first commit leaves
  st:close()
  t.ok(status(dir).identity == nil, "status: empty")
  local r = replay(dir, { date = D1, resume = true })
  t.ok(r.rowsProcessed > 0 and r.buckets > 0, "--resume of it runs the scope", r.rowsProcessed)
  t.fails(function() replay(dir, { date = D1, resume = true }) end, "nothing to resume",
    "a completed store has nothing to resume")
  t.fails(function() replay(root .. "/e6b", { resume = true }) end, "nothing to resume", "--resume alone on an empty store")
end

-- 8. sweep --keep: a directory says it is incomplete; the same sweep again finishes it, another is refused
do
  local sweep = require "retape.sweep"
  local dir = root .. "/sw"
  local desc = { db = db, date = D1, variants = { { ["classify.p1_score"] = 70 } } }
  t.eq(sweep.claim_dir(dir, desc), "new", "a new directory is claimed")
  t.eq(retape.fs.kind(dir .. "/" .. sweep.INCOMPLETE), "file", "it says it is incomplete")
  assert(retape.fs.mkdirs(dir .. "/v01"))
  t.eq(sweep.claim_dir(dir, desc), "again", "the same sweep claims it again")
  t.ok(retape.fs.kind(dir .. "/v01") == nil, "what the killed sweep left is removed")
  local ok, err = sweep.claim_dir(dir, { db = db, date = D2, variants = desc.variants })
  t.ok(not ok and err:find("holds the stores of another sweep, interrupted", 1, true) and err:find(D1, 1, true),
    "another sweep is refused, naming the interrupted one", err)
  sweep.release_dir(dir)
  assert(retape.fs.mkdirs(dir .. "/v01"))
  ok, err = sweep.claim_dir(dir, desc)
  t.ok(not ok and err:find("is not empty", 1, true), "a complete directory is not written over", err)
end

retape.fs.remove_tree(root)
os.exit(t.done())
