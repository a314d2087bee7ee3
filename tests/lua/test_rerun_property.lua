-- test_rerun_property.lua — a store's results never depend on how they were
-- produced.  Random sequences of replays over five real days with synthetic
-- levels (days in any order, repeats, single tickers with and without a
-- clean slate, single buckets and pages of a bucket, runs killed half-way
-- and resumed) must end byte-identical to one fresh replay, in time order,
-- of what the sequence covers.  Rulesets: the default, the parity one, and
-- a user ruleset that keeps extra per-ticker state.
--
-- The seeds are printed; CI runs a fixed set, RETAPE_PROPERTY_SEEDS=N adds
-- N more (random) ones, RETAPE_PROPERTY_SEED=S runs only seed S.
local t = require "tap"
local retape = require "retape"
local P = require "parity"

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

-- The results of a store as bytes: versions, trades, the ticker index.
local function results(dir)
  local kv = assert(retape.kv.open(dir))
  local parts = {}
  for _, prefix in ipairs { "v:", "t:", "tk:", "stale:" } do
    for k, v in kv:scan(prefix) do parts[#parts + 1] = k .. "=" .. v end
  end
  kv:close()
  return parts
end

local function first_difference(a, b)
  for i = 1, math.max(#a, #b) do
    if a[i] ~= b[i] then
      local x, y = a[i] or "(none)", b[i] or "(none)"
      local at = 1
      while at <= #x and x:sub(at, at) == y:sub(at, at) do at = at + 1 end
      local from = math.max(1, at - 100)
      return string.format("entry %d (%s), from byte %d:\n  got:   %s\n  fresh: %s", i, x:match("^[^=]*"), at,
        x:sub(from, at + 140), y:sub(from, at + 140))
    end
  end
end

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
  -- a small deterministic generator (xorshift), independent of Lua's math.random
  local x = seed * 2654435761 % 4294967296 + 1
  local function rng(n)
    x = x ~ (x << 13) & 0xffffffff
    x = x ~ (x >> 17)
    x = x ~ (x << 5) & 0xffffffff
    return x % n + 1
  end
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

os.exit(t.done())
