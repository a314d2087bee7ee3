-- test_rerun_property.lua — a store's results never depend on how they were
-- produced.  Random sequences of replays over five real days with synthetic
-- levels (days in any order, repeats, single tickers with and without a
-- clean slate, single buckets and pages of a bucket, runs killed half-way
-- and resumed) must end byte-identical to one fresh replay, in time order,
-- of what the sequence covers.  Rulesets: the default, the parity one, and
-- a user ruleset that keeps extra per-ticker state.
--
-- Then bucket orders (every bucket of three days in round robin from an
-- empty store; a round robin and random bucket orders over a replayed store,
-- then a refresh) and SIGKILLs at random points inside a refresh, inside a
-- re-run's recomputation of later days, inside `merge` and inside
-- `sweep --keep`, each followed by any next write: all must equal one fresh replay.  And late
-- receipts (a ticker's receipts arriving in small batches, some late, the
-- touched buckets run after each batch as the live engine does).
--
-- The seeds are printed; CI runs a fixed set, RETAPE_PROPERTY_SEEDS=N adds
-- N more (random) ones, RETAPE_PROPERTY_SEED=S runs only seed S.
-- RETAPE_ORDER_TRIALS=N (CI: 2) bucket-order trials; RETAPE_KILL_TRIALS=N
-- (CI: 3) kill trials each of refresh and cascade, N/2 of sweep --keep;
-- RETAPE_LATE_TRIALS=N (CI: 4) late-receipt trials; the kill trials print "kill trials (KIND): N tried, N identical".
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local merge_mod = require "retape.merge"
local stores = require "stores"

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)
local DAYS = { "2026-01-26", "2026-01-27", "2026-01-28", "2026-01-29", "2026-01-30" }

local levels_dir = t.tempdir()
local specs = {}
for i, d in ipairs(DAYS) do specs[i] = { day = d, synthetic_inputs = P.synth_levels(receipts, d) } end
local db = P.levels_db(receipts, levels_dir, specs)

-- a user ruleset keeping one extra field per ticker (a receipt counter that
-- holds back every third enter_now), shared with its regression case
local user_rules = "tests/cases/state-extra-counter/rules.lua"

-- the receipts of each day: buckets and tickers, for picking scopes
local src = assert(retape.source.open(db))
local day_buckets, day_tickers = {}, {}
for _, d in ipairs(DAYS) do
  local open, close = retape.time.session(d)
  local list = assert(src:buckets { from = open, to = close, script_version = "2.5.0" })
  day_buckets[d] = {}
  local seen, names = {}, {}
  for _, b in ipairs(list) do
    day_buckets[d][#day_buckets[d] + 1] = b.bucket
    local cur <close> = assert(src:cursor(b.bucket, { from = open, to = close, script_version = "2.5.0" }))
    for _, r in ipairs(cur:fetch(10000, false)) do
      if not seen[r.ticker] then seen[r.ticker] = true; names[#names + 1] = r.ticker end
    end
  end
  table.sort(names)
  day_tickers[d] = names
end
src:close()

-- xorshift(start) -> rng(n): a small deterministic generator of 1..n,
-- independent of Lua's math.random (the same sequence on every build).
local function xorshift(start)
  local x = start
  return function(n)
    x = x ~ (x << 13) & 0xffffffff
    x = x ~ (x >> 17)
    x = x ~ (x << 5) & 0xffffffff
    return x % n + 1
  end
end

-- The results of a store as bytes (versions, trades, the ticker index,
-- stale marks) and where two of them first differ.
local results, first_difference = stores.results, stores.first_difference

local function open(state, rules, extra)
  local opts = { db = db, state = state, rules = rules }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(retape.replay.open(opts))
end

local function run(state, rules, params, extra)
  local rp = open(state, rules, extra)
  local r = rp:run(params)
  rp:close()
  return r
end

-- One random sequence.  Returns the log of operations and the model of
-- what it covers: days (all tickers or a set), clean-slate marks at day
-- starts (for all tickers, and per ticker).
local function random_sequence(rng, state, rules)
  local log, cover, global_clean, ticker_clean = {}, {}, {}, {}
  local function note(fmt, ...) log[#log + 1] = string.format(fmt, ...) end
  local function covered_days()
    local out = {}
    for _, d in ipairs(DAYS) do if cover[d] then out[#out + 1] = d end end
    return out
  end
  local n_ops = 6 + rng(4)
  for _ = 1, n_ops do
    local kind = rng(100)
    local d = DAYS[rng(#DAYS)]
    local covered = covered_days()
    if kind <= 35 or #covered == 0 then
      -- a whole day, all tickers, sometimes with a clean slate, sometimes killed and resumed
      local clean = rng(4) == 1
      if rng(5) == 1 then
        local total, killed = #day_buckets[d], false
        local at = 1 + rng(math.max(1, total - 2))
        local rp = open(state, rules, { on_bucket = function(p)
          if p.index == at and not p.recomputing then killed = true; error("killed") end
        end })
        local ok = pcall(rp.run, rp, { date = d, clean_slate = clean })
        rp:close()
        if not ok and killed then
          run(state, rules, { date = d, clean_slate = clean, resume = true })
          note("day %s%s killed after bucket %d, resumed", d, clean and " clean" or "", at)
        else
          note("day %s%s", d, clean and " clean" or "")
        end
      else
        run(state, rules, { date = d, clean_slate = clean })
        note("day %s%s", d, clean and " clean" or "")
      end
      cover[d] = "all"
      global_clean[d] = clean
      ticker_clean[d] = {}
    elseif kind <= 60 then
      -- one ticker of a day
      local names = day_tickers[d]
      local T = names[rng(#names)]
      local clean = rng(2) == 1
      run(state, rules, { date = d, ticker = T, clean_slate = clean })
      note("day %s ticker %s%s", d, T, clean and " clean" or "")
      if cover[d] ~= "all" then cover[d] = cover[d] or {}; cover[d][T] = true end
      ticker_clean[d] = ticker_clean[d] or {}
      ticker_clean[d][T] = clean
    elseif kind <= 85 then
      -- one bucket of a covered day, all tickers or one, sometimes in pages of 7
      d = covered[rng(#covered)]
      if cover[d] == "all" then
        local b = day_buckets[d][rng(#day_buckets[d])]
        local T = rng(2) == 1 and day_tickers[d][rng(#day_tickers[d])] or nil
        if rng(2) == 1 then
          local offset, pages = 0, 0
          repeat
            local r = run(state, rules, { date = d, bucket = b, ticker = T, limit = 7, offset = offset })
            pages = pages + 1
            offset = r.nextBucketOffset ~= retape.json.null and r.nextBucketOffset or 0
          until not r.hasMoreInBucket
          note("bucket %s %s%s in %d pages of 7", d, retape.time.format_ny(b):match("%d%d:%d%d"), T and (" " .. T) or "", pages)
        else
          run(state, rules, { date = d, bucket = b, ticker = T })
          note("bucket %s %s%s", d, retape.time.format_ny(b):match("%d%d:%d%d"), T and (" " .. T) or "")
        end
      end
    else
      -- the same day again
      d = covered[rng(#covered)]
      if cover[d] == "all" then
        run(state, rules, { date = d, clean_slate = global_clean[d] })
        ticker_clean[d] = {}
        note("day %s again%s", d, global_clean[d] and " clean" or "")
      end
    end
  end
  -- what a reader does: stale results (bucket calls mid-day) are recomputed
  run(state, rules, { refresh = true })
  note("refresh")
  return log, cover, global_clean, ticker_clean
end

-- One fresh replay, in time order, of what a sequence covers.
local function fresh(state, rules, cover, global_clean, ticker_clean)
  for _, d in ipairs(DAYS) do
    if cover[d] == "all" then
      run(state, rules, { date = d, clean_slate = global_clean[d] })
      local names = {}
      for T in pairs(ticker_clean[d] or {}) do names[#names + 1] = T end
      table.sort(names)
      for _, T in ipairs(names) do
        if ticker_clean[d][T] ~= global_clean[d] then run(state, rules, { date = d, ticker = T, clean_slate = ticker_clean[d][T] }) end
      end
    elseif cover[d] then
      local names = {}
      for T in pairs(cover[d]) do names[#names + 1] = T end
      table.sort(names)
      for _, T in ipairs(names) do run(state, rules, { date = d, ticker = T, clean_slate = ticker_clean[d][T] }) end
    end
  end
end

local seeds = {
  { 1, "default" }, { 2, "default" }, { 3, "worker-2026-02-02" }, { 4, user_rules },
}
local extra = tonumber(os.getenv("RETAPE_PROPERTY_SEEDS") or "0") or 0
local base = os.time()
for i = 1, extra do seeds[#seeds + 1] = { base + i, ({ "default", "worker-2026-02-02", user_rules })[i % 3 + 1] } end
local only = tonumber(os.getenv("RETAPE_PROPERTY_SEED") or "")
if only then seeds = { { only, os.getenv("RETAPE_PROPERTY_RULES") or "default" } } end

for _, s in ipairs(seeds) do
  local seed, rules = s[1], s[2]
  local rng = xorshift(seed * 2654435761 % 4294967296 + 1)
  local dir = t.tempdir()
  local log, cover, global_clean, ticker_clean = random_sequence(rng, dir .. "/seq", rules)
  fresh(dir .. "/fresh", rules, cover, global_clean, ticker_clean)
  local got, want = results(dir .. "/seq"), results(dir .. "/fresh")
  local name = rules:match("([^/]+)$")
  local diff = first_difference(got, want)
  t.ok(diff == nil and #got > 100,
    string.format("seed %d (%s): %d operations end equal to one fresh replay of what they cover", seed, name, #log),
    (diff or string.format("only %d result keys", #got)) .. "\nsequence: " .. table.concat(log, "; "))
  -- the views agree too: lanes at a fixed time of every covered day, trades
  local a = assert(retape.store.open(dir .. "/seq", true))
  local b = assert(retape.store.open(dir .. "/fresh", true))
  local R = retape.rules.load(rules)
  local same = true
  for _, d in ipairs(DAYS) do
    local at = retape.time.session(d) + 90 * 60000
    local _, sa = retape.results.lanes(a, R, at)
    local _, sb = retape.results.lanes(b, R, at)
    if retape.json.encode(sa) ~= retape.json.encode(sb) then same = false end
  end
  t.ok(same and retape.json.encode(retape.results.trades(a)) == retape.json.encode(retape.results.trades(b)),
    string.format("seed %d (%s): lanes at 11:00 of every day and the trades agree", seed, name))
  a:close()
  b:close()
  retape.fs.remove_tree(dir)
end

---------------------------------------------------------------------------
-- Bucket orders: buckets of several days in round robin (what concurrent
-- clients paging different days do), from an empty store and over a
-- replayed one, and buckets in random order followed by a refresh.

local function session_buckets(d)
  local open, close = retape.time.session(d)
  local list = {}
  for b = open, close, 300000 do list[#list + 1] = b end
  return list
end

local function tickers_in_all(days)
  local count, list = {}, {}
  for _, d in ipairs(days) do for _, T in ipairs(day_tickers[d]) do count[T] = (count[T] or 0) + 1 end end
  for T, c in pairs(count) do if c == #days then list[#list + 1] = T end end
  table.sort(list)
  return list
end

local function same_as_fresh(got_dir, want_dir, what, log)
  local got, want = results(got_dir), results(want_dir)
  local diff = first_difference(got, want)
  t.ok(diff == nil and #got > 0, what, (diff or "no results") .. (log and ("\nsequence: " .. log) or ""))
  return diff == nil
end

do
  -- the issue's shape: one ticker, three days, every bucket time in round robin, from an empty store
  local days = { DAYS[1], DAYS[2], DAYS[3] }
  local names = tickers_in_all(days)
  local T = names[1 + (#names // 2)]
  local dir = t.tempdir()
  local per_day = {}
  for i, d in ipairs(days) do per_day[i] = session_buckets(d) end
  for k = 1, #per_day[1] do
    for i, d in ipairs(days) do run(dir .. "/rr", "default", { date = d, ticker = T, bucket = per_day[i][k] }) end
  end
  for _, d in ipairs(days) do run(dir .. "/fresh", "default", { date = d, ticker = T }) end
  same_as_fresh(dir .. "/rr", dir .. "/fresh",
    string.format("%s: every bucket of %s in round robin from an empty store equals one fresh replay", T, table.concat(days, ", ")))
  local s = assert(retape.store.open(dir .. "/rr", true))
  local status = retape.manifest.status(s)
  s:close()
  local covers = {}
  for _, x in ipairs(status.days) do covers[#covers + 1] = x.day .. " " .. x.covers end
  t.eq(table.concat(covers, "; "), string.format("%s %s; %s %s; %s %s", days[1], T, days[2], T, days[3], T),
    "status: the three days whole for that ticker, from its buckets")
  t.ok(not status.interrupted and #status.stale == 0, "status: nothing pending, nothing stale")
  retape.fs.remove_tree(dir)
end

-- Round robin over a replayed store and random bucket orders, then a refresh.
local order_trials = tonumber(os.getenv("RETAPE_ORDER_TRIALS") or "2") or 2
for trial = 1, order_trials do
  local rng = xorshift((trial * 40503 + 17) % 4294967296 + 1)
  local days = { DAYS[1 + rng(2)], DAYS[4] }
  local dir = t.tempdir()
  for _, d in ipairs(days) do run(dir .. "/s", "default", { date = d }); run(dir .. "/fresh", "default", { date = d }) end
  local names = tickers_in_all(days)
  local log = {}
  -- round robin over a window of bucket times, one ticker or all, days alternating
  local T = rng(2) == 1 and names[rng(#names)] or nil
  local a = { session_buckets(days[1]), session_buckets(days[2]) }
  local k0 = rng(60)
  for k = k0, k0 + 6 + rng(12) do
    for i, d in ipairs(days) do run(dir .. "/s", "default", { date = d, ticker = T, bucket = a[i][k] }) end
  end
  log[#log + 1] = string.format("round robin %s from bucket %d%s", table.concat(days, "/"), k0, T and (" " .. T) or "")
  -- then buckets in random order, a ticker or all, some in pages of 5
  for _ = 1, 12 + rng(12) do
    local i = rng(2)
    local b = a[i][rng(#a[i])]
    local U = rng(3) == 1 and names[rng(#names)] or nil
    if rng(4) == 1 then
      local offset = 0
      repeat
        local r = run(dir .. "/s", "default", { date = days[i], ticker = U, bucket = b, limit = 5, offset = offset })
        offset = r.nextBucketOffset ~= retape.json.null and r.nextBucketOffset or 0
      until not r.hasMoreInBucket
    else
      run(dir .. "/s", "default", { date = days[i], ticker = U, bucket = b })
    end
    log[#log + 1] = string.format("%s %s%s", days[i], retape.time.format_ny(b):match("%d%d:%d%d"), U and (" " .. U) or "")
  end
  run(dir .. "/s", "default", { refresh = true })
  same_as_fresh(dir .. "/s", dir .. "/fresh",
    string.format("order trial %d: a round robin and %d buckets in random order, then refresh, equal one fresh replay", trial, #log - 1),
    table.concat(log, "; "))
  retape.fs.remove_tree(dir)
end

-- Late receipts (what the live engine meets): one ticker's receipts of a
-- day arrive in small batches, about one in seven a few places late; after
-- each batch the buckets it touched are run in bucket order (ticker and
-- bucket scope), so later buckets run on results a late receipt left stale.
-- Then a refresh: equal to one fresh replay of all the receipts.
local late_trials = tonumber(os.getenv("RETAPE_LATE_TRIALS") or "4") or 4
local LATE_DAY = "2026-02-02"
local late_src = P.levels_db_for(tmp, t.tempdir(), { LATE_DAY })
local late_tickers = { "W" }
for trial = 1, late_trials do
  local rng = xorshift((trial * 2654435761 + 12345) % 4294967296 + 1)
  local dir = t.tempdir()
  local late_db = dir .. "/late.db"
  do
    local from <close> = assert(io.open(late_src, "rb"))
    local to <close> = assert(io.open(late_db, "wb"))
    to:write(from:read("a"))
  end
  local d = LATE_DAY
  local T = late_tickers[rng(#late_tickers)]
  local open_ms, close_ms = retape.time.session(d)
  local h = assert(retape.sql.open(late_db))
  h:exec("CREATE TABLE held AS SELECT * FROM ingest_receipts WHERE 0")
  local rows = h:rows("SELECT receipt_id AS id, bucket_5m AS b FROM ingest_receipts WHERE ticker = ? AND ts BETWEEN ? AND ? "
    .. "ORDER BY bucket_5m, ts, receipt_id", T, open_ms, close_ms + 300000)
  do
    local ins <close> = h:prepare("INSERT INTO held SELECT * FROM ingest_receipts WHERE ticker = ? AND ts BETWEEN ? AND ?")
    ins:run(T, open_ms, close_ms + 300000)
    local del <close> = h:prepare("DELETE FROM ingest_receipts WHERE ticker = ? AND ts BETWEEN ? AND ?")
    del:run(T, open_ms, close_ms + 300000)
  end
  local order, later = {}, {}
  for _, r in ipairs(rows) do
    if rng(7) == 1 then later[#later + 1] = { at = #order + 1 + rng(4), r = r } else order[#order + 1] = r end
  end
  for i = #later, 1, -1 do table.insert(order, math.min(later[i].at, #order + 1), later[i].r) end
  local back <close> = h:prepare("INSERT INTO ingest_receipts SELECT * FROM held WHERE receipt_id = ?")
  -- one replay open throughout, as the live engine keeps it
  local rp = open(dir .. "/s", "default", { db = late_db })
  local pos = 1
  while pos <= #order do
    local touched, list = {}, {}
    for m = pos, math.min(#order, pos + rng(6) - 1) do
      back:run(order[m].id)
      if not touched[order[m].b] then touched[order[m].b] = true; list[#list + 1] = order[m].b end
      pos = m + 1
    end
    table.sort(list)
    for _, b in ipairs(list) do rp:run { date = d, ticker = T, bucket = b } end
    if trial % 2 == 0 then rp:run { refresh = true } end -- (the live engine ends each pass so)
  end
  h:close()
  rp:run { refresh = true }
  rp:close()
  run(dir .. "/fresh", "default", { date = d, ticker = T }, { db = late_db })
  same_as_fresh(dir .. "/s", dir .. "/fresh",
    string.format("late trial %d: %s %s, %d of %d receipts late, the touched buckets run after each batch, then refresh, "
      .. "equals one fresh replay", trial, d, T, #later, #rows))
  retape.fs.remove_tree(dir)
end

---------------------------------------------------------------------------
-- Kills (SIGKILL, a real process) at random points inside a refresh, inside
-- a re-run's recomputation of later days (cascade), and inside a
-- `sweep --keep`; then any next write (a refresh, --resume alone, a run of
-- another scope), itself killed now and then.  Each must end equal to one
-- fresh replay.  RETAPE_KILL_TRIALS=N trials of each kind (CI: a few).

local exe = os.getenv("RETAPE") or "./retape"
local KILL_TRIALS = tonumber(os.getenv("RETAPE_KILL_TRIALS") or "3") or 3
local KD = { DAYS[1], DAYS[2], DAYS[3], DAYS[4] }
local kill_root = t.tempdir()
local function sh(cmd) return os.execute(cmd .. " >/dev/null 2>&1") end
local function kill_run(state, n, params, threads)
  local cmd = string.format("%s run tests/lua/kill_at.lua %s %s default %d '%s' %s 2>/dev/null", exe, db, state, n,
    retape.json.encode(params), threads and tostring(threads) or "")
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("done (%d+)"))
end
local function pending_of(state)
  local s = assert(retape.store.open(state, true))
  local st = retape.manifest.status(s)
  s:close()
  return st.interrupted, #st.stale
end

-- the stores: the four days replayed; one fresh replay with the second day's clean slate
local base = kill_root .. "/base"
for _, d in ipairs(KD) do run(base, "default", { date = d }) end
local want = kill_root .. "/want"
for i, d in ipairs(KD) do run(want, "default", { date = d, clean_slate = i == 2 }) end
-- how many buckets a refresh and a cascade commit (where the kills fall)
sh(string.format("cp -r %s %s/count", base, kill_root))
run(kill_root .. "/count", "default", { date = KD[2], clean_slate = true }, { cascade = false })
local refresh_buckets = kill_run(kill_root .. "/count", 0, { refresh = true })
retape.fs.remove_tree(kill_root .. "/count")
sh(string.format("cp -r %s %s/count", base, kill_root))
local cascade_buckets = kill_run(kill_root .. "/count", 0, { date = KD[2], clean_slate = true })
retape.fs.remove_tree(kill_root .. "/count")
t.ok(refresh_buckets and refresh_buckets > 50 and cascade_buckets and cascade_buckets > refresh_buckets,
  string.format("a refresh commits %s buckets, a re-run with its cascade %s", tostring(refresh_buckets), tostring(cascade_buckets)))

-- the next writes after a kill: each leaves the store as one fresh replay of the same days
local NEXT = {
  { "refresh", { refresh = true } },
  { "--resume alone", { resume = true } },
  { "a run of the last day", { date = KD[4] } },
  { "a run of one ticker of the first day", { date = KD[1], ticker = day_tickers[KD[1]][3] } },
}

local function kill_trials(kind, total, first)
  local tried, identical, seed = 0, 0, os.time()
  local rng = xorshift((seed * 2654435761 + #kind) % 4294967296 + 1)
  for trial = 1, KILL_TRIALS do
    local dir = string.format("%s/%s%d", kill_root, kind, trial)
    sh(string.format("rm -rf %s && cp -r %s %s", dir, base, dir))
    local log = {}
    local killed_at = rng(total - 1) -- after the last commit nothing is pending
    local threads = rng(2) == 1 and 2 or nil
    if kind == "refresh" then
      run(dir, "default", { date = KD[2], clean_slate = true }, { cascade = false })
      kill_run(dir, killed_at, { refresh = true }, threads)
    else
      kill_run(dir, killed_at, { date = KD[2], clean_slate = true }, threads)
    end
    log[#log + 1] = string.format("%s killed after bucket %d of %d%s", kind, killed_at, total, threads and " (2 threads)" or "")
    local interrupted = pending_of(dir)
    local says = interrupted ~= nil
    -- the next write, killed itself now and then, then another one
    local nxt = NEXT[rng(#NEXT)]
    if rng(3) == 1 then
      local at = rng(60)
      local done = kill_run(dir, at, nxt[2])
      log[#log + 1] = string.format("%s %s", nxt[1], done and "(ended before its kill)" or ("killed after bucket " .. at))
      nxt = NEXT[rng(#NEXT)]
    end
    if nxt[2].resume and not pending_of(dir) then nxt = NEXT[1] end -- (nothing left to resume)
    local ok, err = pcall(run, dir, "default", nxt[2])
    log[#log + 1] = nxt[1] .. (ok and "" or (": " .. tostring(err)))
    local left, stale = pending_of(dir)
    tried = tried + 1
    local same = ok and says and not left and stale == 0 and
      same_as_fresh(dir, want, string.format("%s kill trial %d (seed %d) ends equal to one fresh replay", kind, trial, seed),
        table.concat(log, "; "))
    if not (ok and says and not left and stale == 0) then
      t.ok(false, string.format("%s kill trial %d (seed %d): the kill is flagged and the next write finishes it", kind, trial, seed),
        string.format("interrupted flagged: %s, left pending: %s, stale: %d; %s", tostring(says), tostring(left), stale,
          table.concat(log, "; ")))
    end
    if same then identical = identical + 1 end
    retape.fs.remove_tree(dir)
  end
  print(string.format("# kill trials (%s): %d tried, %d identical", kind, tried, identical))
end
kill_trials("refresh", refresh_buckets)
kill_trials("cascade", cascade_buckets)

-- merge killed after a random shard (and now and then killed again), then
-- merge again into the same OUT: one store equal to the single replay
do
  local SHARDS = 3
  local parts = {}
  for i = 0, SHARDS - 1 do
    parts[#parts + 1] = string.format("%s/shard%d", kill_root, i)
    for _, d in ipairs(KD) do run(parts[#parts], "default", { date = d, shard = i .. "/" .. SHARDS }) end
  end
  local function merge_killed_at(out, k)
    local p = assert(io.popen(string.format("%s run tests/lua/kill_merge_at.lua %s %d %s 2>/dev/null", exe, out, k,
      table.concat(parts, " "))))
    local done = p:read("a"):find("done", 1, true) ~= nil
    p:close()
    return done
  end
  local tried, identical = 0, 0
  local x = os.time() % 4294967296 + 11
  for trial = 1, KILL_TRIALS do
    x = (x * 1103515245 + 12345) % 2147483648
    local out = string.format("%s/merged%d", kill_root, trial)
    local k = 1 + x % SHARDS
    local log = { string.format("merge killed after shard %d of %d", k, SHARDS) }
    local done = merge_killed_at(out, k)
    -- killed, OUT holds nothing that looks whole
    local flagged = not done and retape.fs.kind(out) == nil and merge_mod.pending(out) ~= nil
    if (x >> 8) % 3 == 0 then
      local k2 = 1 + (x >> 4) % SHARDS
      done = merge_killed_at(out, k2)
      log[#log + 1] = string.format("merge again killed after shard %d", k2)
      flagged = flagged and not done and retape.fs.kind(out) == nil
    end
    local ok, err = pcall(merge_mod.run, out, parts, {})
    log[#log + 1] = "merge again" .. (ok and "" or (": " .. tostring(err)))
    tried = tried + 1
    local same = ok and flagged and merge_mod.pending(out) == nil
      and first_difference(results(out), results(base)) == nil
    t.ok(same, string.format("merge kill trial %d: flagged while killed (no OUT, the leftover named), merged again "
      .. "equal to the single replay", trial), table.concat(log, "; ") .. string.format(" (flagged: %s)", tostring(flagged)))
    if same then identical = identical + 1 end
    retape.fs.remove_tree(out)
  end
  print(string.format("# kill trials (merge): %d tried, %d identical", tried, identical))
end

-- sweep --keep killed at a random time, then the same sweep again into the same directory
do
  local function sweep_cmd(keep)
    return string.format("%s sweep --db %s --from %s --to %s --grid classify.p1_score=70,75 --keep %s --quiet",
      exe, db, KD[1], KD[2], keep)
  end
  local ref = kill_root .. "/sweep-ref"
  local t0 = retape.core.monotonic_ms()
  sh(sweep_cmd(ref))
  local full_ms = retape.core.monotonic_ms() - t0
  local tried, identical = 0, 0
  local x = os.time() % 4294967296 + 7
  for trial = 1, math.max(1, KILL_TRIALS // 2) do
    x = (x * 1103515245 + 12345) % 2147483648
    local after = math.max(0.05, (x % 1000) / 1000 * full_ms / 1000)
    local keep = string.format("%s/sweep%d", kill_root, trial)
    local ended = sh(string.format("timeout -s KILL %.3f %s", after, sweep_cmd(keep)))
    -- killed, the directory is absent, empty, or says it is incomplete
    local marked = retape.fs.kind(keep .. "/SWEEP-INCOMPLETE") == "file"
    local left = #(retape.fs.list(keep) or {})
    -- killed after its last store was complete (the mark already removed):
    -- as complete as a sweep that ended
    local complete = ended or (not marked and left > 0)
    local flagged = complete or marked or left == 0
    -- (a complete sweep's directory is not written over: a second run is
    -- refused, and its stores are compared as they are)
    local again = complete or sh(sweep_cmd(keep))
    tried = tried + 1
    local same = again and retape.fs.kind(keep .. "/SWEEP-INCOMPLETE") == nil and flagged
    for _, v in ipairs { "v01", "v02" } do
      same = same and first_difference(results(keep .. "/" .. v), results(ref .. "/" .. v)) == nil
    end
    t.ok(same, string.format("sweep --keep killed after %.2f s (of %.2f), run again into the same directory: every store "
      .. "equal to an uninterrupted sweep's", after, full_ms / 1000),
      string.format("first run ended: %s, left flagged (absent, empty or marked): %s, second run ok: %s", tostring(ended),
        tostring(flagged), tostring(again)))
    if same then identical = identical + 1 end
    retape.fs.remove_tree(keep)
  end
  print(string.format("# kill trials (sweep --keep): %d tried, %d identical", tried, identical))
end
retape.fs.remove_tree(kill_root)

os.exit(t.done())
