-- test_threads.lua — `--threads N`: the tickers spread over worker threads,
-- each with its own Lua state, meeting at every bucket.  The store a
-- history of runs leaves is byte-identical for 1, 2, 3 and 7 threads
-- (a range, a clean-slate re-run that recomputes later days over the
-- parts, a ticker re-run), and so are pages of a bucket, a SIGKILL and
-- --resume, the order of per-receipt problems, and the rule error that
-- stops a run (the first in row order, whatever thread met it).
local t = require "tap"
local retape = require "retape"
local pool = require "retape.pool" -- (an internal module: not in the retape table)
local P = require "parity"

local dir = t.tempdir()
local days = { "2026-01-27", "2026-01-28" }
local db = P.levels_db_for(os.getenv("RETAPE_TEST_TMP") or t.tempdir(), dir, days)
local exe = os.getenv("RETAPE") or "./retape"

-- Runs a command; returns stdout, stderr, exit status (each on its own).
local n_cmd = 0
local function sh(cmd)
  n_cmd = n_cmd + 1
  local err = string.format("%s/cmd%d.err", dir, n_cmd)
  local p = io.popen(cmd .. " 2>" .. err .. "; echo \"exit $?\"")
  local out = p:read("a")
  p:close()
  local f = assert(io.open(err))
  local e = f:read("a")
  f:close()
  local status = tonumber(out:match("exit (%d+)%s*$"))
  return out:gsub("exit %d+%s*$", ""), e, status
end

local stores = require "stores"
local dump, same = stores.dump, stores.same

-- The thread counts the runs of a store used (from its manifests).
local function threads_of(path)
  local st = assert(retape.store.open(path, true))
  local list = {}
  for _, m in ipairs(retape.manifest.runs(st)) do list[#list + 1] = string.format("%d", m.threads) end
  st:close()
  return table.concat(list, ",")
end

local function replay(state, threads, extra, db_path)
  return sh(string.format("%s replay --db %s --state %s --threads %d --quiet %s", exe, db_path or db, state, threads, extra))
end

---------------------------------------------------------------------------
-- a history of runs, on 1, 2, 3 and 7 threads

local two = "AU,CLS"
local function history(state, threads)
  local ok = true
  for _, extra in ipairs {
    string.format("--from %s --to %s", days[1], days[2]),
    string.format("--date %s --clean-slate", days[1]), -- day 2 depended on it: recomputed
    string.format("--date %s --ticker %s --clean-slate", days[2], two),
  } do
    local _, e, status = replay(state, threads, extra)
    if status ~= 0 then ok = false; print(("# " .. e):gsub("\n", "\n# ")) end
  end
  return ok
end

local base = dir .. "/t1"
t.ok(history(base, 1), "a history of three runs on one thread")
local reference = dump(base)
t.ok(#reference > 1000, "the history left results (" .. #reference .. " keys)")
local has_trades = false
for _, kv in ipairs(reference) do if kv:find("^t:") then has_trades = true; break end end
t.ok(has_trades, "the history made trades (synthetic levels)")
for _, n in ipairs { 2, 3, 7 } do
  local state = string.format("%s/t%d", dir, n)
  t.ok(history(state, n), string.format("the same history on %d threads", n))
  local ok, diff = same(reference, dump(state))
  t.ok(ok, string.format("%d threads: the store is byte-identical to one thread's", n), diff)
  t.eq(threads_of(state), string.format("%d,%d,%d", n, n, n), string.format("%d threads: every run used them (manifests)", n))
end

---------------------------------------------------------------------------
-- pages of a bucket on 3 threads = the whole bucket on one

local D, B = days[1], "11:00"
-- the bucket of D at HH:MM New York time (ms)
local function at(day, h, m)
  local y, mo, d = day:match("(%d+)-(%d+)-(%d+)")
  return retape.time.from_ny(tonumber(y), tonumber(mo), tonumber(d), h, m, 0)
end
local whole = dir .. "/whole"
replay(whole, 1, string.format("--date %s --bucket %s", D, B))
local paged = dir .. "/paged"
local pages, offset = 0, 0
while pages < 100 do
  local out = replay(paged, 3, string.format("--date %s --bucket %s --limit 7 --offset %d --json", D, B, offset))
  pages = pages + 1
  local resp = retape.cjson.decode(out)
  if not resp.hasMoreInBucket then break end
  offset = resp.nextBucketOffset
end
t.ok(pages > 2, "the bucket took several pages of 7 (" .. pages .. ")")
local ok_p, diff_p = same(dump(whole), dump(paged))
t.ok(ok_p, "pages of 7 on 3 threads = the whole bucket on one thread", diff_p)

---------------------------------------------------------------------------
-- SIGKILL half-way on 2 threads, then --resume on 2 threads

local fresh = dir .. "/fresh"
replay(fresh, 1, "--date " .. D)
local killed = dir .. "/killed"
os.execute(string.format("%s run tests/lua/kill_after.lua %s %s %s 30 2 2>/dev/null", exe, db, killed, D))
local st = assert(retape.store.open(killed, true))
local cursor = st:cursor()
st:close()
t.ok(cursor and cursor.next, "the killed run left a cursor at a bucket boundary")
local _, e_r, s_r = replay(killed, 2, "--date " .. D .. " --resume")
t.ok(s_r == 0, "--resume on 2 threads exits 0", e_r)
local ok_k, diff_k = same(dump(fresh), dump(killed))
t.ok(ok_k, "killed on 2 threads and resumed = one uninterrupted run", diff_k)

---------------------------------------------------------------------------
-- problems reported in row order, whatever thread met them

local broken = dir .. "/broken.db"
os.execute(string.format("cp %s %s", db, broken))
local sql = assert(retape.sql.open(broken))
local victims = sql:rows(string.format(
  "SELECT receipt_id, ticker FROM ingest_receipts WHERE bucket_5m = %d ORDER BY ts, receipt_id",
  at(D, 10, 30)))
local n_broken = 0
for i, r in ipairs(victims) do
  if i % 2 == 1 and n_broken < 8 then
    sql:exec(string.format("UPDATE ingest_receipts SET payload_json = '{\"price\": 1,' WHERE receipt_id = '%s'", r.receipt_id))
    n_broken = n_broken + 1
  end
end
sql:close()
local parts_hit = {}
for i, r in ipairs(victims) do if i % 2 == 1 and i <= 15 then parts_hit[pool.part_of(r.ticker, 3)] = true end end
local n_parts = 0
for _ in pairs(parts_hit) do n_parts = n_parts + 1 end
t.ok(n_broken >= 4 and n_parts >= 2, string.format("%d malformed receipts in one bucket, owned by %d of 3 parts", n_broken, n_parts))
local sh_problems = function(state, threads)
  return sh(string.format("%s replay --db %s --state %s --threads %d --date %s", exe, broken, state, threads, D))
end
local o1, e1, s1 = sh_problems(dir .. "/b1", 1)
local o3, e3, s3 = sh_problems(dir .. "/b3", 3)
local lines = {}
for l in e1:gmatch("retape replay: receipt[^\n]*") do lines[#lines + 1] = l end
t.eq(#lines, n_broken, "one thread: each malformed receipt reported once")
local lines3 = {}
for l in e3:gmatch("retape replay: receipt[^\n]*") do lines3[#lines3 + 1] = l end
t.eq(table.concat(lines3, "\n"), table.concat(lines, "\n"), "3 threads: the same problems, in the same (row) order")
t.eq(s3, s1, "the same exit status")
t.eq(o3:gsub("time [^\n]*", ""), o1:gsub("time [^\n]*", ""), "the same summary")
t.ok(same(dump(dir .. "/b1"), dump(dir .. "/b3")), "the same store, good rows around the bad ones kept")

---------------------------------------------------------------------------
-- a rule error met in two parts: the first in row order stops the run

local rsql = assert(retape.sql.open(db))
local rows = rsql:rows(string.format(
  "SELECT ticker, ts FROM ingest_receipts WHERE bucket_5m = %d ORDER BY ts, receipt_id", at(D, 11, 30)))
rsql:close()
local fail_a, fail_b
for _, r in ipairs(rows) do
  if not fail_a then fail_a = r
  elseif pool.part_of(r.ticker, 3) ~= pool.part_of(fail_a.ticker, 3) then fail_b = r; break end
end
t.ok(fail_a and fail_b, "two tickers of one bucket in different parts")
local rule = dir .. "/failing.lua"
local f = assert(io.open(rule, "w"))
f:write('local R = require("retape").rules.load("worker-2026-02-02")\n',
        "local classify = R.classify\n",
        "R.classify = function(d)\n",
        string.format("  if (d.ticker == %q and d.ts >= %d) or (d.ticker == %q and d.ts >= %d) then\n",
          fail_b.ticker, fail_b.ts, fail_a.ticker, fail_a.ts),
        "    error('boom on ' .. d.ticker)\n  end\n",
        "  return classify(d)\nend\nreturn R\n")
f:close()
-- replays D with a rule file on N threads: stdout, stderr, status
local function with_rules(path, state, threads)
  return sh(string.format("%s replay --db %s --state %s --threads %d --rules %s --date %s --quiet", exe, db, state, threads, path, D))
end
local fo1, fe1, fs1 = with_rules(rule, dir .. "/f1", 1)
local fo3, fe3, fs3 = with_rules(rule, dir .. "/f3", 3)
t.ok(fs1 ~= 0 and fe1:find("boom on " .. fail_a.ticker, 1, true), "one thread: the run stops at the first failing row", fe1)
t.ok(fe1:find("failing.lua:", 1, true), "the error names the rule file and line", fe1)
-- the engine's part of the traceback names other frames on threads
local function rule_part(e) return (e:gsub("\nengine:.*", "")) end
t.eq(rule_part(fe3), rule_part(fe1), "3 threads: the same error, the first in row order, with the rule's traceback")
t.eq(fs3, fs1, "the same exit status")
t.eq(fo3, fo1, "the same stdout")
local ok_f, diff_f = same(dump(dir .. "/f1"), dump(dir .. "/f3"))
t.ok(ok_f, "the same store: buckets before the failing one committed, the cursor at it", diff_f)

---------------------------------------------------------------------------
-- a record that cannot be stored (a trade with a function in it): the same
-- error and store on 1 and 3 threads, the buckets before it committed

local unstorable = dir .. "/unstorable.lua"
f = assert(io.open(unstorable, "w"))
f:write('local R = require("retape").rules.load("worker-2026-02-02")\n',
        "local sim = R.simulate\n",
        "R.simulate = function(p, ts, book)\n",
        "  local a, b, c, d = sim(p, ts, book)\n",
        string.format("  local t = book.open(p.ticker)\n  if t and ts >= %d then t.bad = function() end; book.touch(t) end\n", at(D, 12, 0)),
        "  return a, b, c, d\nend\nreturn R\n")
f:close()
local uo1, ue1, us1 = with_rules(unstorable, dir .. "/u1", 1)
local uo3, ue3, us3 = with_rules(unstorable, dir .. "/u3", 3)
t.ok(us1 == 1 and ue1:find("^retape: receipt %S+ %(%u+%): trade %S+ cannot be stored: 'bad' is a function %(a trade holds only JSON values%) %-%- left by the rules' simulate %(.*unstorable%.lua:3%)"),
  "one thread: a trade that cannot be stored stops the run, naming the receipt, the trade, the field and the rule", ue1)
-- (the engine's traceback below the message names other frames on threads)
t.eq(ue3:match("^[^\n]*"), ue1:match("^[^\n]*"), "3 threads: the same error, the first trade in key order")
t.eq(us3, us1, "the same exit status")
t.eq(uo3, uo1, "the same stdout")
local ok_u, diff_u = same(dump(dir .. "/u1"), dump(dir .. "/u3"))
t.ok(ok_u, "the same store: committed up to the bucket before it", diff_u)

---------------------------------------------------------------------------
-- progress (on_bucket) says the same on any number of threads

local function progress(threads)
  local out = {}
  local rp = assert(retape.replay.open { db = db, state = string.format("%s/prog%d", dir, threads),
    rules = "worker-2026-02-02", threads = threads,
    on_bucket = function(b) out[#out + 1] = string.format("%d:%d:%d:%d", b.index, b.rows, b.trades, b.errors) end })
  rp:run { date = D }
  local used = rp:threads_used()
  rp:close()
  return table.concat(out, " "), used
end
local p1 = progress(1)
local p2, used2 = progress(2)
t.ok(used2 == 2 and p2 == p1, "on_bucket reports the same rows and trades after each bucket on 2 threads")

---------------------------------------------------------------------------
-- a ruleset changed through its own setter, and a config that shortens a list

local setter = dir .. "/setter.lua"
f = assert(io.open(setter, "w"))
f:write('local R = require("retape").rules.load("worker-2026-02-02")\n',
        "local bias = 0\nlocal classify = R.classify\n",
        "R.classify = function(d)\n  if bias ~= 0 and type(d.ltf_score) == 'number' then d.ltf_score = d.ltf_score + bias end\n",
        "  return classify(d)\nend\nR.set_bias = function(b) bias = b end\nreturn R\n")
f:close()
local function biased(threads)
  local R = retape.rules.load(setter)
  R.set_bias(30)
  local state = string.format("%s/bias%d", dir, threads)
  local rp = assert(retape.replay.open { db = db, state = state, rules = R, threads = threads })
  rp:run { date = D }
  local used = rp:threads_used()
  rp:close()
  return dump(state), used, retape.rules.reloadable(R)
end
local b1 = biased(1)
local b2, bused, breload = biased(2)
t.ok(breload == nil and bused == 1, "a ruleset whose file's upvalue was changed by a setter is not loaded again: one thread")
t.ok(same(b1, b2), "and its results are those of the changed ruleset")
local short = dir .. "/short.lua"
f = assert(io.open(short, "w"))
f:write("return { score = { rr = { {2, 8} } } }\n")
f:close()
replay(dir .. "/short1", 1, "--date " .. D .. " --rules default --config " .. short)
local _, e_s2, s_s2 = replay(dir .. "/short2", 2, "--date " .. D .. " --rules default --config " .. short)
t.ok(s_s2 == 0 and threads_of(dir .. "/short2") == "2", "a config that shortens a list runs on 2 threads", e_s2)
t.ok(same(dump(dir .. "/short1"), dump(dir .. "/short2")), "with the results of one thread")

---------------------------------------------------------------------------
-- one thread when it must; every core by default for a large run

local cross = dir .. "/cross.lua"
f = assert(io.open(cross, "w"))
f:write('local R = require("retape").rules.load("worker-2026-02-02")\nR.cross_ticker = true\nreturn R\n')
f:close()
local _, e_c, s_c = sh(string.format("%s replay --db %s --state %s/cross --threads 3 --rules %s --date %s --quiet", exe, db, dir, cross, D))
t.ok(s_c == 0, "a cross-ticker ruleset runs", e_c)
t.eq(threads_of(dir .. "/cross"), "1", "R.cross_ticker = true: one thread despite --threads 3")

-- a ruleset changed in Lua after loading cannot be loaded again elsewhere
local changed = retape.rules.load("worker-2026-02-02")
local classify = changed.classify
changed.classify = function(d) return classify(d) end
local rp = assert(retape.replay.open { db = db, state = dir .. "/table", rules = changed, threads = 2 })
rp:run { date = D }
t.ok(rp:threads_used() == 1, "a ruleset with a function replaced in Lua runs on one thread")
rp:close()
-- one loaded and configured (--set) is loaded again on each thread
local configured = retape.rules.load_configured("worker-2026-02-02", nil, { "corridor.long.ltf_max=25" })
rp = assert(retape.replay.open { db = db, state = dir .. "/configured", rules = configured, threads = 2 })
rp:run { date = D }
t.ok(rp:threads_used() == 2, "a ruleset loaded and configured with overrides runs on 2 threads")
rp:close()
local rp1 = assert(retape.replay.open { db = db, state = dir .. "/configured1", rules = retape.rules.load_configured("worker-2026-02-02", nil, { "corridor.long.ltf_max=25" }), threads = 1 })
rp1:run { date = D }
rp1:close()
local ok_c, diff_c = same(dump(dir .. "/configured1"), dump(dir .. "/configured"))
t.ok(ok_c, "with its overrides, on 2 threads = on one", diff_c)

-- rounds in flight: small rounds, 1 or 5 in flight, a byte cap that lets
-- one through or none limits (with one through, the next round is posted
-- into the other slot before the last one's writes are written), rounds
-- cut by their bytes (one bucket each after the first): the same store as
-- one thread
do
  local tun = retape.replay
  local saved = { tun.ROUND_ROWS, tun.ROUND_DEPTH, tun.ROUND_BYTES, nil, tun.ROUND_TARGET_BYTES }
  local function run_with(name, rows, depth, bytes, threads, target)
    tun.ROUND_ROWS, tun.ROUND_DEPTH, tun.ROUND_BYTES = rows, depth, bytes
    tun.ROUND_TARGET_BYTES = target or saved[5]
    local r = assert(retape.replay.open { db = db, state = dir .. "/" .. name, rules = "worker-2026-02-02", threads = threads })
    r:run { from = days[1], to = days[2] }
    local used = r:threads_used()
    r:close()
    return used
  end
  run_with("rounds1", 512, 3, 2 << 20, 1)
  for _, c in ipairs { { 16, 1, 1 << 40 }, { 16, 5, 1 << 40 }, { 16, 5, 1 }, { 4096, 2, 1 }, { 4096, 2, 1 << 40 }, { 4096, 3, 1 << 40, 1 } } do
    local name = string.format("rounds_%d_%d_%d_%d", c[1], c[2], c[3] > 1 and 1 or 0, c[4] or 0)
    local used = run_with(name, c[1], c[2], c[3], 2, c[4])
    local ok_r, diff_r = same(dump(dir .. "/rounds1"), dump(dir .. "/" .. name))
    t.ok(used == 2 and ok_r, string.format("rounds of %d rows, up to %d in flight%s%s, on 2 threads = one thread",
      c[1], c[2], c[3] == 1 and " (a byte cap that keeps one)" or "",
      c[4] and " (a round's byte target that keeps one bucket)" or ""), diff_r)
  end
  tun.ROUND_ROWS, tun.ROUND_DEPTH, tun.ROUND_BYTES, tun.ROUND_TARGET_BYTES = saved[1], saved[2], saved[3], saved[5]
end

-- a bucket listed for 3 parts (src:list_parts) and each part's rows read
-- by rowid (src:rows_cursor, on another connection): every window of a
-- bucket's rows (from a first row, up to a stop) gives back exactly the
-- plain cursor's rows of it, each once, in order, at its position, in the
-- part of its ticker
do
  local src, other = assert(retape.source.open(db)), assert(retape.source.open(db))
  assert(src:snapshot(true))
  local scope = {}
  local good, checked = true, 0
  for bi, b in ipairs(src:buckets { from = at(D, 9, 30), to = at(D, 16, 0) }) do
    local plain = {}
    local cur <close> = src:cursor(b.bucket, scope)
    for i, r in ipairs(cur:fetch(100000, false)) do plain[i - 1] = r.receipt_id end
    local first, stop = bi % 3, (bi % 2 == 0) and (bi % 3) + 5 or nil
    local lists, n, more = src:list_parts(b.bucket, scope, 3, first, stop)
    local expect = math.max(0, math.min(stop or b.count, b.count) - first)
    good = good and #lists == 3 and n == expect and more == (stop ~= nil and b.count > stop)
    local seen = {}
    for part = 0, 2 do
      local pc <close> = assert(other:rows_cursor(lists[part + 1]))
      local last = -1
      for _, r in ipairs(pc:fetch(100000, false)) do
        good = good and plain[r.index] == r.receipt_id and r.index > last and not seen[r.index]
          and pool.part_of(r.ticker, 3) == part and r.index >= first and (not stop or r.index < stop)
        seen[r.index], last = true, r.index
      end
    end
    for i = first, math.min(stop or b.count, b.count) - 1 do good = good and seen[i] == true end
    checked = checked + 1
  end
  src:snapshot(false)
  t.ok(good and checked > 50, string.format("buckets listed for 3 parts give back every window's rows, each once, in order (%d buckets)", checked))
  t.fails(function() return other:rows_cursor("12345") end, "not a list of src:list_parts", "a list of another shape is refused")
  src:close(); other:close()
end

-- the parts read their own rows (forced: the fixture's rows are small, and
-- are routed otherwise): a history of runs, a rule error met in two parts,
-- progress, on 2 and 3 threads = one thread; rows committed to the receipts
-- file during the run (WAL) are not read; rows deleted during it stop the
-- run, naming the bucket; a part that cannot open the file lets the rows
-- be routed.
do
  local tun = retape.replay
  local saved = { tun.PART_READS_MIN_BYTES, tun.ROUND_ROWS }
  tun.PART_READS_MIN_BYTES, tun.ROUND_ROWS = 0, 64
  -- runs `params` (a list of run params) into a fresh store: whether every
  -- run's parts read their rows, the error (if any), the progress lines
  local function history(name, threads, list, opts)
    opts = opts or {}
    local progress, read, err = {}, true, nil
    local r = assert(retape.replay.open { db = opts.db or db, state = dir .. "/" .. name, threads = threads,
      rules = opts.rules or "worker-2026-02-02",
      on_bucket = function(b)
        progress[#progress + 1] = string.format("%d:%d:%d:%d", b.index, b.rows, b.trades, b.errors)
        if opts.on_bucket then opts.on_bucket(b) end
      end })
    for _, params in ipairs(list) do
      local ok, e = pcall(r.run, r, params)
      read = read and r:parts_read_rows()
      if not ok then err = tostring(e); break end
    end
    r:close()
    return read, err, table.concat(progress, " ")
  end
  local runs = { { from = days[1], to = days[2] }, { date = days[1], clean_slate = true },
                 { date = days[2], ticker = "AU,CLS" } }
  local _, _, prog1 = history("reads1", 1, runs)
  for _, n in ipairs { 2, 3 } do
    local read, err, prog = history("reads" .. n, n, runs)
    t.ok(read and not err, string.format("%d threads: every run's parts read their own rows", n), err)
    local ok_r, diff_r = same(dump(dir .. "/reads1"), dump(dir .. "/reads" .. n))
    t.ok(ok_r, string.format("%d threads reading their own rows: the store is byte-identical to one thread's", n), diff_r)
    t.eq(prog, prog1, string.format("%d threads reading their own rows: the same progress", n))
  end
  -- rounds in flight with the part reads: one at a time, a byte cap that
  -- keeps one, rounds of one bucket: the same store as one thread
  for _, c in ipairs { { 16, 1, 1 << 40 }, { 4096, 2, 1 }, { 4096, 3, 1 << 40, 1 } } do
    local saved_r = { tun.ROUND_ROWS, tun.ROUND_DEPTH, tun.ROUND_BYTES, tun.ROUND_TARGET_BYTES }
    tun.ROUND_ROWS, tun.ROUND_DEPTH, tun.ROUND_BYTES, tun.ROUND_TARGET_BYTES = c[1], c[2], c[3], c[4] or saved_r[4]
    local name = string.format("readrounds_%d_%d", c[1], c[2])
    local read, err = history(name, 2, { { from = days[1], to = days[2] } })
    tun.ROUND_ROWS, tun.ROUND_DEPTH, tun.ROUND_BYTES, tun.ROUND_TARGET_BYTES = saved_r[1], saved_r[2], saved_r[3], saved_r[4]
    local ok_r, diff_r = same(dump(dir .. "/rounds1"), dump(dir .. "/" .. name))
    t.ok(read and not err and ok_r, string.format("parts reading their rows, rounds of %d rows, up to %d in flight%s: = one thread",
      c[1], c[2], c[3] == 1 and " (a byte cap that keeps one)" or ""), err or diff_r)
  end
  -- the rule error met in two parts
  local _, e1 = history("readf1", 1, { { date = D } }, { rules = rule })
  local read3, e3 = history("readf3", 3, { { date = D } }, { rules = rule })
  t.ok(e1 and e1:find("boom on " .. fail_a.ticker, 1, true), "one thread: the first failing row stops the run", e1)
  t.ok(read3, "3 threads: the failing run's parts read their own rows")
  t.eq(e3 and e3:match("^[^\n]*"), e1:match("^[^\n]*"), "3 threads reading their own rows: the same error, the first in row order")
  local ok_f2, diff_f2 = same(dump(dir .. "/readf1"), dump(dir .. "/readf3"))
  t.ok(ok_f2, "and the same store", diff_f2)
  -- what the parts read when the receipts file they open is not what the
  -- main state listed (told of a changed copy): rows it did not list are
  -- never read; a listed row deleted or rewritten stops the run, naming it
  local function changed_copy(name, sql)
    local path = dir .. "/" .. name .. ".db"
    local from, to = assert(io.open(db, "rb")), assert(io.open(path, "wb"))
    to:write(from:read("a"))
    from:close(); to:close()
    local w = assert(retape.sql.open(path))
    w:exec(sql)
    w:close()
    return path
  end
  local last_bucket = at(days[2], 15, 55)
  local function run_told(name, path)
    local src = assert(retape.source.open(db))
    local r = assert(retape.replay.open { db = src, db_path = path, state = dir .. "/" .. name, threads = 2,
                                          rules = "worker-2026-02-02" })
    local ok, e = pcall(r.run, r, { from = days[1], to = days[2] })
    local read = r:parts_read_rows()
    r:close()
    src:close()
    return ok, e, read
  end
  local ok_i, err_i, read_i = run_told("readi", changed_copy("inserted", string.format(
    "INSERT INTO ingest_receipts SELECT receipt_id || '-late', ticker, ts, bucket_5m, received_ts, payload_hash," ..
    " script_version, payload_json FROM ingest_receipts WHERE bucket_5m = %d", last_bucket)))
  t.ok(ok_i and read_i, "rows the main state did not list (committed after its snapshot): the parts read their rows", err_i)
  local ok_r, diff_r = same(stores.results(dir .. "/rounds1"), stores.results(dir .. "/readi"))
  t.ok(ok_r, "and leave them out: the results of the snapshot", diff_r)
  local ok_d, err_d = run_told("readd", changed_copy("deleted",
    string.format("DELETE FROM ingest_receipts WHERE bucket_5m = %d", last_bucket)))
  t.ok(not ok_d and tostring(err_d):find(string.format("^reading receipts: row %%d+ of bucket %d %%(rowid %%d+%%) is not the one " ..
    "listed for this run: the receipts file changed under it %%(run it again%%)", last_bucket)),
    "a listed row deleted from the file the parts read stops the run, naming it", err_d)
  for _, c in ipairs { { "ts", "ts = ts + 1" }, { "payload", "payload_json = payload_json || ' ', payload_hash = 'x'" },
                       { "ticker", "ticker = 'ZZZ'" }, { "receipt id", "receipt_id = receipt_id || '-b'" } } do
    local ok_u, err_u = run_told("readu", changed_copy("rewritten",
      string.format("UPDATE ingest_receipts SET %s WHERE bucket_5m = %d", c[2], last_bucket)))
    t.ok(not ok_u and tostring(err_u):find("is not the one listed for this run", 1, true),
      string.format("and so does a listed row whose %s was rewritten", c[1]), err_u)
  end
  -- one replay, two runs, rows committed to the file between them: the
  -- second run's parts read them (each walk takes a new snapshot)
  do
    local path = changed_copy("between", "SELECT 1")
    local r = assert(retape.replay.open { db = path, state = dir .. "/between", threads = 2, rules = "worker-2026-02-02" })
    r:run { date = days[1] }
    local w = assert(retape.sql.open(path))
    w:exec(string.format("INSERT INTO ingest_receipts SELECT receipt_id || '-late', ticker, ts + 1, bucket_5m, received_ts," ..
      " payload_hash, script_version, payload_json FROM ingest_receipts WHERE bucket_5m = %d", last_bucket))
    w:close()
    local ok_b, err_b = pcall(r.run, r, { date = days[2] })
    local read_b = r:parts_read_rows()
    r:close()
    local r1 = assert(retape.replay.open { db = path, state = dir .. "/between1", threads = 1, rules = "worker-2026-02-02" })
    r1:run { date = days[1] }; r1:run { date = days[2] }
    r1:close()
    local ok_s, diff_s = same(stores.results(dir .. "/between1"), stores.results(dir .. "/between"))
    t.ok(ok_b and read_b and ok_s, "rows committed between two runs of one replay: its parts read them (= one thread)", err_b or diff_s)
  end
  -- a part that cannot open the receipts file: the rows are routed
  local ok_m, err_m, read_m = run_told("readm", dir .. "/no-such-file.db")
  t.ok(ok_m and not read_m, "a receipts file the parts cannot open: the rows are routed", err_m)
  local ok_m2, diff_m = same(stores.results(dir .. "/rounds1"), stores.results(dir .. "/readm"))
  t.ok(ok_m2, "with the same results", diff_m)
  tun.PART_READS_MIN_BYTES, tun.ROUND_ROWS = saved[1], saved[2]
end

-- a pool's rounds: posted ahead up to its depth, collected in order, each
-- slot refused while in flight
do
  local pl = assert(pool.start { parts = 1, depth = 2 })
  pl:post("a"); pl:post("b")
  t.eq(pl:in_flight(), 2, "a pool of depth 2 holds two rounds in flight")
  t.fails(function() pl:post("c") end, "post before the last round was collected", "a third post is refused")
  t.fails(function() pl:reset() end, "in use until the round is collected", "and so is filling a third round's inboxes")
  pl:collect()
  t.eq(pl:in_flight(), 1, "collect takes the oldest round")
  pl:post("c"); pl:collect(); pl:collect()
  t.eq(pl:in_flight(), 0, "every round collected")
  pl:close()
end

local min = retape.replay.MIN_THREADED_ROWS
retape.replay.MIN_THREADED_ROWS = 10
rp = assert(retape.replay.open { db = db, state = dir .. "/default", rules = "worker-2026-02-02" })
rp:run { date = D }
local cores = pool.cores()
t.eq(rp:threads_used(), cores, "no --threads: every core (" .. cores .. ") for a run of enough rows")
rp:close()
retape.replay.MIN_THREADED_ROWS = min

local _, e_bad, s_bad = sh(string.format("%s replay --db %s --state %s/bad --threads 0 --date %s", exe, db, dir, D))
t.eq(s_bad, 2, "--threads 0 is a usage error (exit 2)")
t.ok(e_bad:find("--threads must be a positive integer", 1, true), "and says so", e_bad)
local _, e_big, s_big = sh(string.format("%s replay --db %s --state %s/big --threads 300 --date %s", exe, db, dir, D))
t.ok(s_big == 2 and e_big:find("--threads must be 1..256", 1, true), "--threads 300 is a usage error", e_big)

-- the caller's inbox is not usable once its pool is closed
local pl = assert(pool.start { parts = 1 })
local inbox = pl:inbox()
t.eq(inbox:count(), 0, "the caller's inbox of a new pool is empty")
pl:close()
t.fails(function() return inbox:count() end, "closed pool", "the inbox of a closed pool raises instead of reading freed memory")

-- retape.wire, the messages between the states: every byte of a string
-- (short ones through %q, long ones beside the constructor), integers and
-- floats to the bit, nested tables, a short string that reads "B[1]"
local wire = require "retape.wire"
local all_bytes = {}
for b = 0, 255 do all_bytes[#all_bytes + 1] = string.char(b) end
all_bytes = table.concat(all_bytes)
local msg = {
  op = "walk", steps = { { bucket = 1769437800000, lists = { all_bytes, string.rep("\0", wire.BLOB_BYTES) } },
                         { bucket = 1769438100000, lists = { "", "B[1]" } } },
  x = 0.1 + 0.2, neg = -0.0, big = math.maxinteger, tiny = 5e-324, flag = false,
  short = string.sub(all_bytes, 1, wire.BLOB_BYTES - 1),
}
local back = wire.decode(wire.encode(msg))
t.eq(back.steps[1].lists[1], all_bytes, "wire: a long string of every byte arrives as it left")
t.eq(back.steps[1].lists[2], string.rep("\0", wire.BLOB_BYTES), "wire: a long string of NULs too")
t.eq(back.short, msg.short, "wire: a short string of control bytes too (through %q)")
t.ok(back.steps[2].lists[1] == "" and back.steps[2].lists[2] == "B[1]", "wire: an empty string and a short \"B[1]\" are strings")
t.ok(back.x == msg.x and math.type(back.big) == "integer" and back.big == math.maxinteger and back.tiny == 5e-324
     and 1 / back.neg == -math.huge and back.flag == false and back.steps[1].bucket == 1769437800000,
     "wire: integers stay integers, floats keep every bit (-0.0 too), false stays false")
t.eq(wire.encode(msg), wire.encode(back), "wire: the same data encodes to the same text")
local nuls = string.rep("\0", 1000)
t.ok(#wire.encode({ l = nuls }) < 1100, "wire: a long binary string is carried as it is, not escaped (twice its size)",
     #wire.encode({ l = nuls }))
-- a worker whose ruleset has another identity than the run's says which
-- (both in the message, readable: no wire text, whose NULs cut a message
-- short on its way through C)
do
  local part, rules = require "retape.part", require "retape.rules"
  local R = rules.load("default")
  local st = assert(retape.store.open(dir .. "/identity"))
  local ok, err = pcall(part.init, wire.encode {
    spec = rules.reloadable(R), sources = rules.sources_of(R), parts = 2, first = 1, batch = 500, script_version = false,
    identity = { rules = "other", sources = 1, config = 2, script_version = false } }, st.kv, nil, 1)
  st:close()
  t.ok(not ok and err:find('"rules":"default"', 1, true) and err:find('"rules":"other"', 1, true) and not err:find("\0", 1, true),
       "a worker's identity check names both identities", err)
end

os.exit(t.done())
