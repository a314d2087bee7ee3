-- test_sweep.lua — retape.sweep: grids (lists, ranges, the cartesian
-- product), every variant checked before anything runs, one pass whose
-- variants' stores are byte-identical to standalone replays of each variant
-- (first, middle and last of a grid; real receipts with synthetic levels over
-- two days), each receipt read once, the figures the report shows, ranking
-- on every column and its aliases, declared ranges, random draws, the
-- baseline, and a walk-forward over four bundled days (folds, out-of-sample
-- totals, the same with any number of threads).
local t = require "tap"
local retape = require "retape"
local stores = require "stores"
local P = require "parity"
local sweep = require "retape.sweep"
local stats = require "retape.stats"

-- grids ----------------------------------------------------------------
local k, v = sweep.parse_grid("corridor.long.ltf_max=20,25,30")
t.eq(k .. " " .. table.concat(v, ","), "corridor.long.ltf_max 20,25,30", "a list of values")
t.eq(math.type(v[1]), "integer", "integers stay integers (as --set types them)")
k, v = sweep.parse_grid("late.phase=0.5..0.8:0.1")
t.eq(table.concat(v, ","), "0.5,0.6,0.7,0.8", "a number range LO..HI:STEP, decimal steps without float noise")
k, v = sweep.parse_grid("classify.p1_score=70..80:5")
t.eq(table.concat(v, ",") .. " " .. math.type(v[2]), "70,75,80 integer", "an integer range gives integers")
k, v = sweep.parse_grid("fixes.both_crossed=pessimistic,optimistic")
t.eq(v[2], "optimistic", "strings")
t.fails(function() sweep.parse_grid("late.phase") end, "the ruleset declares no range for it", "a grid without values nor a declared range")
k, v = sweep.parse_grid("late.phase", { ["late.phase"] = { min = 0.5, max = 0.7, step = 0.1 } })
t.eq(k .. " " .. table.concat(v, ","), "late.phase 0.5,0.6,0.7", "KEY alone: the declared range's steps")
local declared = retape.rules.load("default").ranges
t.ok(declared and declared["corridor.long.ltf_max"] and #select(2, sweep.parse_grid("corridor.long.ltf_max", declared)) == 11,
  "the default ruleset declares corridor.long.ltf_max's range (10..30 step 2: 11 values)")
local doc = require "retape.rules_doc"
t.ok(pcall(doc.check_ranges, retape.rules.load("default")), "the shipped ranges name numeric settings, min <= max, step > 0")
t.fails(function() doc.check_ranges { config = { a = 1 }, ranges = { b = { min = 0, max = 1, step = 1 } } } end,
  "'b' is not a numeric setting", "a range for a setting the ruleset does not have")
t.fails(function() doc.check_ranges { config = { a = 1 }, ranges = { a = { min = 2, max = 1, step = 1 } } } end,
  "with A <= B and S > 0", "a reversed range")
t.eq(doc.range_text({ ranges = { a = { min = 1, max = 9, step = 2 } }, enums = { b = { "x", "y" } } }, "a"), "1..9 step 2", "rules show: a range")
-- random draws: distinct, within the values, the same for the same seed
local specs = { "corridor.long.ltf_max=10..30:2", "late.phase=0.5..0.9:0.1" }
local r1, r2, r3 = sweep.random(specs, 6, 42), sweep.random(specs, 6, 42), sweep.random(specs, 6, 43)
local function labels(list) local o = {}; for i, x in ipairs(list) do o[i] = sweep.label(x) end; return table.concat(o, "|") end
t.ok(#r1 == 6 and labels(r1) == labels(r2) and labels(r1) ~= labels(r3), "--random: 6 draws, the same for the same seed", labels(r1))
local distinct, inside = {}, true
for _, x in ipairs(r1) do
  distinct[sweep.label(x)] = true
  local lm, ph = x["corridor.long.ltf_max"], x["late.phase"]
  if lm % 2 ~= 0 or lm < 10 or lm > 30 or ph < 0.5 or ph > 0.9 then inside = false end
end
local nd = 0
for _ in pairs(distinct) do nd = nd + 1 end
t.ok(nd == 6 and inside, "--random: distinct variants, every value one of its axis'")
t.eq(#sweep.random({ "late.phase=0.5,0.6" }, 10, 1), 2, "--random N over a smaller space: all of it, once")
-- walk-forward windows
local days4 = { "d1", "d2", "d3", "d4", "d5" }
local function wins(w) local o = {}; for i, x in ipairs(w) do o[i] = x.train[1] .. "-" .. x.train[2] .. ">" .. x.test[1] .. "-" .. x.test[2] end; return table.concat(o, " ") end
t.eq(wins(sweep.fold_windows(days4, 2, false)), "d1-d2>d3-d4 d3-d4>d5-d5", "rolling folds: 5 days in 3 blocks (2, 2, 1)")
t.eq(wins(sweep.fold_windows(days4, 2, true)), "d1-d2>d3-d4 d1-d4>d5-d5", "anchored folds: every training window starts on the first day")
t.fails(function() sweep.fold_windows(days4, 5, false) end, "--folds 5 needs at least 6 days", "more folds than days")
t.fails(function() sweep.parse_grid("late.phase=1..0:0.1") end, "HI is below LO", "a reversed range")
t.fails(function() sweep.parse_grid("late.phase=0..1:0") end, "STEP must be positive", "a zero step")
t.fails(function() sweep.parse_grid("late.phase=1,,2") end, "an empty value", "an empty value in a list")
local g = sweep.grid { "corridor.long.ltf_max=20,25,30", "fixes.both_crossed=pessimistic,optimistic" }
t.eq(#g, 6, "the cartesian product: 3 x 2 variants")
t.eq(sweep.label(g[1]) .. " | " .. sweep.label(g[6]),
  "corridor.long.ltf_max=20 fixes.both_crossed=pessimistic | corridor.long.ltf_max=30 fixes.both_crossed=optimistic",
  "the first grid key varies slowest")
t.fails(function() sweep.grid { "late.phase=1,2", "late.phase=3" } end, "given twice", "a key given twice")

-- each variant's own payload ------------------------------------------------
local copy = require("retape.jsonenc").copy
local orig = retape.cjson.decode('{"a":1,"flags":{"x":true},"tf_tech":{"30":{"ema":{"stack":2}}},"tp_levels":[{"price":1},{"price":2}]}')
local c = copy(orig)
c.flags.x, c.tf_tech["30"].ema.stack, c.tp_levels[2].price = false, -1, 9
t.eq(string.format("%s %g %g", orig.flags.x, orig.tf_tech["30"].ema.stack, orig.tp_levels[2].price), "true 2 2",
  "jsonenc.copy: writes into the copy, at any depth, leave the original alone")
t.eq(string.format("%d %g %s", #c.tp_levels, c.tp_levels[1].price, copy("five")), "2 1 five", "jsonenc.copy: lists and plain values")
local mt = {}
t.ok(getmetatable(copy(setmetatable({}, mt))) == mt, "jsonenc.copy keeps metatables (JSON object / array markers)")
local sc = sweep.shared_copy(orig, { "flags" })
sc.flags.y, sc.a, sc.ticker = true, 2, "X"
t.eq(string.format("%s %g %s", orig.flags.y, orig.a, orig.ticker), "nil 1 nil",
  "shared_copy: the top level and the declared written tables are the variant's own")
t.ok(sc.tf_tech == orig.tf_tech, "shared_copy: the tables the ruleset only reads are shared")
t.eq(table.concat(sweep.payload_writes(retape.rules.load("default")), ","), "flags", "the shipped rulesets write only flags")
t.eq(sweep.payload_writes({ name = "mine", trusted = false }), nil, "a rule file without R.payload_writes: deep copies")
t.eq(sweep.payload_writes({ name = "mine", trusted = false, payload_writes = { "flags", "x" } })[2], "x", "R.payload_writes declares them")

-- each variant's store: a small memtable
local kdir = t.tempdir() .. "/kv"
local h = retape.kv.open(kdir, { write_buffer_mb = 1 })
t.ok(h and h:put("a", string.rep("x", 3 << 20)) and h:get("a") == string.rep("x", 3 << 20), "kv.open with write_buffer_mb: a store")
if h then h:close() end
t.fails(function() retape.kv.open(kdir, { write_buffer_mb = -1 }) end, "write_buffer_mb must be 0..4096", "a bad memtable size")

-- validation before anything runs -----------------------------------------
local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)
local D1, D2 = "2026-02-02", "2026-02-03"
local db = P.levels_db(receipts, t.tempdir(), { { day = D1, synthetic_inputs = P.synth_levels(receipts, D1) },
                                               { day = D2, synthetic_inputs = P.synth_levels(receipts, D2) } })
local never = t.tempdir() .. "/never"
local function bad(variants, frag, what)
  local res, err = sweep.run { db = db, date = D1, variants = variants, dir = never }
  t.ok(res == nil and tostring(err):find(frag, 1, true) ~= nil, what, err)
end
bad({ { ["corridor.long.ltf_max"] = 20 }, { ["corridor.long.ltf_maxx"] = 20 } },
  "variant 2 (corridor.long.ltf_maxx=20): --grid: unknown setting 'corridor.long.ltf_maxx' (did you mean corridor.long.ltf_max",
  "an unknown key names the variant and the close matches")
bad({ { ["corridor.long.ltf_max"] = 20.5 } }, "setting 'corridor.long.ltf_max' expects an integer", "a wrong type")
bad({ { ["fixes.both_crossed"] = "pessimistic" }, { ["fixes.both_crossed"] = "optimist" } },
  "variant 2 (fixes.both_crossed=optimist): --grid: setting 'fixes.both_crossed' is one of pessimistic, optimistic",
  "an enum value out of range")
bad({ { late = { phasee = 0.5 } } }, "unknown setting 'late.phasee'", "nested override tables are checked too")
local res0, err0 = sweep.run { db = db, date = D1, rules = retape.rules.load("default"), variants = { {}, {} }, dir = never }
t.ok(res0 == nil and tostring(err0):find("each variant loads its own copy", 1, true), "a ruleset table is refused: variants cannot share one", err0)
t.eq(retape.fs.kind(never), nil, "nothing ran: no store was created")

-- one pass, byte-identical to standalone replays ----------------------------
local variants = sweep.grid { "corridor.long.ltf_max=16..24:2" }
local dir = t.tempdir() .. "/sw"
assert(retape.fs.mkdirs(dir))
local progress, last_total = 0, nil
-- three threads: variants 1 and 4 here, 2 and 5 in one worker, 3 in another
local groups_seen
local res, err = sweep.run { db = db, from = D1, to = D2, variants = variants, dir = dir, threads = 3,
                             on_progress = function(p) progress, last_total, groups_seen = progress + 1, p.total, p end }
t.ok(res ~= nil and res.threads == 3, "a sweep of 5 variants over two days runs on 3 threads", err)
t.eq(string.format("%d of %d, group %d of %d", groups_seen.variants, groups_seen.all, groups_seen.group, groups_seen.groups),
  "2 of 5, group 1 of 3", "the progress is this thread's share: 2 of the 5 variants, group 1 of 3")
local src = assert(retape.source.open(db))
local rows, nb = 0, 0
for _, d in ipairs { D1, D2 } do
  local open, close = retape.time.session(d)
  for _, b in ipairs(assert(src:buckets { from = open, to = close, script_version = "2.5.0" })) do
    rows, nb = rows + b.count, nb + 1
  end
end
src:close()
t.eq(res.rows, rows, "every receipt of the scope read and decoded once for all the variants")
t.eq(res.buckets .. " " .. progress .. " " .. tostring(last_total), nb .. " " .. nb .. " " .. nb,
  "one progress call per bucket of the pass, out of the buckets of both days")

local function results(d) return stores.results(d, { "v:", "t:", "tk:" }) end
local function first_difference(a, b) return stores.first_difference(a, b, { "sweep", "alone" }) end
local by_index = {}
for _, x in ipairs(res.variants) do by_index[x.index] = x end
local trade_counts = {}
for _, i in ipairs { 1, 3, 5 } do
  local R = retape.rules.load("default")
  retape.rules.apply_overrides(R, variants[i], "--set")
  local alone = t.tempdir() .. "/alone"
  local rp = assert(retape.replay.open { db = db, state = alone, rules = R })
  rp:run { from = D1, to = D2 }
  local json_alone = retape.json.encode(retape.results.trades(rp:state_store()), R.trade_order)
  rp:close()
  local a, b = results(by_index[i].state), results(alone)
  local diff = first_difference(a, b)
  t.ok(#a > 0 and diff == nil, string.format("variant %d (%s): its store's v:, t:, tk: keys are byte-identical to a standalone replay",
    i, by_index[i].label), diff)
  local st = assert(retape.store.open(by_index[i].state, true))
  local json_sweep = retape.json.encode(retape.results.trades(st), R.trade_order)
  st:close()
  t.eq(json_sweep, json_alone, string.format("variant %d: the trades as JSON are identical", i))
  trade_counts[#trade_counts + 1] = by_index[i].metrics.trades
end
t.ok(trade_counts[1] > 0 and (trade_counts[1] ~= trade_counts[3] or trade_counts[3] ~= trade_counts[5]),
  "the variants trade (and differently): the comparison is not between empty stores", table.concat(trade_counts, ","))

-- stores nobody keeps hold trades only: the same trades, the same figures --
do
  local lean, lerr = sweep.run { db = db, from = D1, to = D2, variants = variants, threads = 2, trades = true }
  t.ok(lean ~= nil, "a sweep without a directory runs", lerr)
  local same_trades, same_figures = true, true
  local order = retape.rules.load("default").trade_order
  for _, x in ipairs(lean and lean.variants or {}) do
    local st = assert(retape.store.open(by_index[x.index].state, true))
    local kept = retape.results.trades(st)
    st:close()
    if retape.json.encode(x.trades, order) ~= retape.json.encode(kept, order) then same_trades = false end
    if retape.json.encode(x.metrics) ~= retape.json.encode(by_index[x.index].metrics) then same_figures = false end
  end
  t.ok(lean and #lean.variants == #variants and same_trades,
    "every variant's trades as JSON equal those of its kept store (a full replay's)")
  t.ok(lean and same_figures, "and so do its figures")
  -- the mechanism on its own: a replay into a new store with trades_only
  local full_dir, lean_dir = t.tempdir() .. "/full", t.tempdir() .. "/lean"
  local R = retape.rules.load("default")
  retape.rules.apply_overrides(R, variants[5], "--set")
  local a = assert(retape.replay.open { db = db, state = full_dir, rules = R, threads = 1 })
  a:run { from = D1, to = D2 }
  a:close()
  local b = assert(retape.replay.open { db = db, state = lean_dir, rules = R, threads = 2, trades_only = true })
  b:run { from = D1, to = D2 }
  b:close()
  local function keys(d, prefix)
    local kv = assert(retape.kv.open(d))
    local out = {}
    for key, val in kv:scan(prefix) do out[#out + 1] = key .. "=" .. val end
    kv:close()
    return out
  end
  local ta, tb = keys(full_dir, "t:"), keys(lean_dir, "t:")
  t.ok(#ta > 10 and first_difference(tb, ta) == nil, "replay trades_only: its t: keys are byte-identical to a full replay's",
    first_difference(tb, ta))
  t.eq(#keys(lean_dir, "v:"), 0, "replay trades_only: no versions written")
  -- it keeps no versions to continue from: one whole run into a new store
  local again = assert(retape.replay.open { db = db, state = lean_dir, rules = R, trades_only = true })
  t.fails(function() again:run { date = D2 } end, "trades_only: one whole run into a new, empty store",
    "replay trades_only into a store that already holds results: refused")
  again:close()
  local fresh = assert(retape.replay.open { db = db, state = t.tempdir() .. "/lean2", rules = R, trades_only = true })
  t.fails(function() fresh:run { date = D1, bucket = "10:00", limit = 5 } end, "trades_only: one whole run",
    "replay trades_only: a page is refused")
  fresh:run { date = D1 }
  t.fails(function() fresh:run { date = D2 } end, "trades_only: one whole run", "replay trades_only: a second run is refused")
  fresh:close()
end

-- any number of threads: the same figures, the same stores ----------------
local function dump(d) -- every key but the run manifests (timings, threads)
  local kv = assert(retape.kv.open(d))
  local parts = {}
  for key, val in kv:scan("") do
    if not key:find("^retape:run") and not key:find("^\xfffingerprint") then -- (and the fingerprints' cache)
      parts[#parts + 1] = key .. "=" .. val:gsub(d:gsub("%p", "%%%0"), "DIR") -- a store that names its path
    end
  end
  kv:close()
  return table.concat(parts, "\n")
end
local wire = require "retape.wire"
local function figures(r)
  local out = {}
  for i, x in ipairs(r.variants) do out[i] = { x.index, x.label, x.metrics, x.resp.rowsProcessed } end
  return wire.encode { out, r.rows, r.buckets }
end
local runs = {}
for _, n in ipairs { 1, 2, 4 } do
  local d = t.tempdir() .. "/t" .. n
  assert(retape.fs.mkdirs(d))
  local r, e = sweep.run { db = db, from = D1, to = D2, variants = variants, dir = d, threads = n }
  t.ok(r ~= nil and r.threads == n, string.format("threads = %d runs", n), e)
  runs[n] = r
end
runs[3] = res
for _, n in ipairs { 2, 3, 4 } do
  t.eq(figures(runs[n]), figures(runs[1]), string.format("threads = %d: every variant's figures and response as on one thread", n))
  local same = true
  for i = 1, #variants do
    local a, b = dump(runs[1].variants[i].state), dump(runs[n].variants[i].state)
    if a ~= b or #a == 0 then same = false end
  end
  t.ok(same, string.format("threads = %d: every variant's store byte-identical to one thread's (all but the run manifests)", n))
end
local plain = retape.rules.load("default")
t.eq(sweep.threads_for({ threads = 8 }, { plain, plain, plain }), 3, "never more threads than variants")
local changed = retape.rules.load("default")
changed.step = function() end
local n1, why = sweep.threads_for({ threads = 4 }, { changed, changed })
t.ok(n1 == 1 and why:find("changed in Lua", 1, true), "a ruleset changed in Lua: one thread", why)

-- the figures are the report's ---------------------------------------------
local data = require "retape.report.data"
local m = assert(data.build(by_index[3].state))
local f = by_index[3].metrics
local function r0(x) return math.floor(x + 0.5) end
t.eq(string.format("%d %.0f %.0f %.1f %.1f", f.trades, r0(f.total), r0(f.max_drawdown), f.win_rate * 100, f.exposure * 100),
  string.format("%d %.0f %.0f %.1f %.1f", m.summary.trades, m.summary.total, m.summary.max_drawdown, m.summary.win_rate,
    m.summary.exposure),
  "trades, total P&L, max drawdown, win rate and exposure agree with the HTML report's summary")
local st5 = assert(retape.store.open(by_index[5].state, true))
local tot = stats.compute(retape.results.trades(st5))
st5:close()
t.eq(by_index[5].metrics.realized, tot.realized, "realized P&L is retape.stats'")
t.eq(by_index[5].metrics.max_drawdown, tot.max_drawdown, "max drawdown is retape.stats' (off the plotted curve)")
t.eq(string.format("%.2f", f.max_drawdown), string.format("%.2f", m.summary.max_drawdown), "sweep's max_dd = the report's card, to the cent")

-- the equity chart of --report -------------------------------------------------
local rep = require "retape.sweep.report"
local with_trades = assert(sweep.run { db = db, date = D1, variants = { variants[1], variants[5] }, trades = true })
local curves = rep.curves(with_trades.variants)
local c1 = stats.compute(with_trades.variants[1].trades).equity
t.ok(#c1 > 1 and #curves[1] == #c1 and curves[1][#c1][2] == c1[#c1][2], "--report: a variant's curve is retape.stats' of its trades", #c1)
local page = rep.html("t", with_trades.variants, {}, {}, { buckets = with_trades.loaded,
  axes = { { key = "corridor.long.ltf_max", values = { 16, 24 } }, { key = "late.phase", values = { 0.7 } } } })
local _, lines = page:gsub('<polyline class="variant"', "")
t.eq(lines, 2, "--report: one curve per variant on the chart")
t.ok(not page:find('id="heatmap"', 1, true), "--report: no heatmap when no variant sets both settings")
local hv = {}
for i, combo in ipairs { { 16, 0.6 }, { 16, 0.7 }, { 24, 0.6 } } do
  hv[i] = { index = i, label = "v" .. i, trades = {}, metrics = { total = i * 10.0 },
            overrides = { ["corridor.long.ltf_max"] = combo[1], ["late.phase"] = combo[2] } }
end
local hpage = rep.html("t", hv, {}, {}, { axes = { { key = "corridor.long.ltf_max", values = { 16, 24 } },
  { key = "late.phase", values = { 0.6, 0.7 } } }, objective = "total" })
local got = {}
for variant, value in hpage:gmatch('data%-variant="(%d+)" data%-value="([^"]*)"') do got[#got + 1] = variant .. "=" .. value end
t.eq(table.concat(got, " "), "1=10.0 2=20.0 3=30.0", "--report heatmap: a cell per variant with both settings, its objective (row 24 x 0.7: none)")

-- ranking --------------------------------------------------------------------
sweep.rank(res.variants, "total")
local ok_desc = true
for i = 2, #res.variants do
  if res.variants[i].metrics.total > res.variants[i - 1].metrics.total then ok_desc = false end
end
t.ok(ok_desc and res.variants[1].rank == 1, "ranked by total P&L, larger first")
sweep.rank(res.variants, "max_drawdown")
t.ok(res.variants[1].metrics.max_drawdown <= res.variants[#res.variants].metrics.max_drawdown, "max_drawdown: smaller first")
sweep.rank(res.variants, "variant:desc")
t.eq(res.variants[1].index, 5, "variant:desc")
t.fails(function() sweep.rank(res.variants, "totl") end, "--sort 'totl': one of variant, trades", "an unknown column")
-- every column the table shows, by its header too
for _, spec in ipairs { "max_dd", "win%", "pf", "return%", "sharpe", "var", "exposure", "sortino:asc", "expect", "pnl" } do
  local okr, why = pcall(sweep.rank, res.variants, spec)
  t.ok(okr, "--sort " .. spec .. " is accepted", why)
end
sweep.rank(res.variants, "max_dd")
t.ok(res.variants[1].metrics.max_drawdown <= res.variants[2].metrics.max_drawdown, "--sort max_dd: the header, smallest first")
local fake = { { index = 1, metrics = { sharpe = nil } }, { index = 2, metrics = { sharpe = 1.5 } }, { index = 3, metrics = { sharpe = -2 } } }
sweep.rank(fake, "sharpe")
t.eq(fake[1].index .. fake[2].index .. fake[3].index, "231", "a missing Sharpe ranks last")
-- the baseline: a variant that changes nothing in the current settings
local R0 = retape.rules.load("default")
t.ok(sweep.is_baseline(R0, { ["corridor.long.ltf_max"] = 22 }) and not sweep.is_baseline(R0, { ["corridor.long.ltf_max"] = 20 })
  and sweep.is_baseline(R0, {}), "the baseline: overrides equal to the current settings, or none")

-- walk-forward over four bundled days ---------------------------------------------
local D3, D4 = "2026-02-04", "2026-02-05"
local db4 = P.levels_db(receipts, t.tempdir(), { { day = D1, synthetic_inputs = P.synth_levels(receipts, D1) },
  { day = D2, synthetic_inputs = P.synth_levels(receipts, D2) }, { day = D3, synthetic_inputs = P.synth_levels(receipts, D3) },
  { day = D4, synthetic_inputs = P.synth_levels(receipts, D4) } })
local wf_variants = { { ["corridor.long.ltf_max"] = 16 }, { ["corridor.long.ltf_max"] = 24 }, {} }
local function wf(threads, anchored)
  local vs = {}
  for i, x in ipairs(wf_variants) do vs[i] = x end
  return assert(sweep.walk_forward { db = db4, from = D1, to = D4, folds = 3, anchored = anchored, objective = "total",
    variants = vs, threads = threads, baseline = 3, script_version = "2.5.0" })
end
local w1 = wf(1)
t.eq(#w1.folds, 3, "walk-forward: 3 folds over 4 days")
local windows, sum, trades_n = {}, 0, 0
for i, f in ipairs(w1.folds) do
  windows[i] = f.train[1] .. ">" .. f.test_window[1]
  sum, trades_n = sum + f.test.realized, trades_n + f.test.trades
end
t.eq(table.concat(windows, " "), "2026-02-02>2026-02-03 2026-02-03>2026-02-04 2026-02-04>2026-02-05",
  "rolling: each fold trains on one day and tests on the next")
t.ok(math.abs(w1.oos.realized - sum) < 1e-6 and w1.oos.trades == trades_n,
  "out of sample in total: the sum of every fold's chosen variant on its test days", string.format("%.4f %.4f", w1.oos.realized, sum))
-- each fold's choice is the best of its training window, replayed alone
local alone = assert(sweep.run { db = db4, from = D2, to = D2, variants = { wf_variants[1], wf_variants[2], {} } })
sweep.rank(alone.variants, "total")
t.eq(w1.folds[2].chosen, alone.variants[1].index, "fold 2's choice: the best variant on its training day, run on its own")
local alone_test = assert(sweep.run { db = db4, from = D3, to = D3, variants = { wf_variants[1], wf_variants[2], {} } })
local tv
for _, x in ipairs(alone_test.variants) do if x.index == w1.folds[2].chosen then tv = x end end
t.eq(string.format("%.6f", w1.folds[2].test.total), string.format("%.6f", tv.metrics.total), "fold 2's out-of-sample figure: that variant replayed on its test day")
t.ok(w1.baseline_oos and w1.baseline_oos.trades > 0, "the baseline's out-of-sample total beside it")
-- train/test through the API (retape.sweep.oos): the choice is fold 2's, its test figures those replayed alone
local phases = {}
local tt = assert(require("retape.sweep.oos").train_test { db = db4, train = { D2, D2 }, test = { D3, D3 },
  objective = "total", variants = { wf_variants[1], wf_variants[2], {} }, on_pass = function(phase) phases[#phases + 1] = phase end })
t.eq(table.concat(phases, ","), "train,test", "train_test: the training window first, then the test window")
t.eq(tt.chosen.index, alone.variants[1].index, "train_test: the best variant on the training days")
t.eq(string.format("%.6f", tt.test_of[tt.chosen.index].metrics.total), string.format("%.6f", tv.metrics.total),
  "train_test: the chosen variant's test figures are those of a sweep of the test days")
local w2 = wf(2)
local function sig(w)
  local o = {}
  for i, f in ipairs(w.folds) do o[i] = string.format("%d:%d:%.6f:%.6f", i, f.chosen, f.test.total, f.test.max_drawdown) end
  return table.concat(o, " ") .. string.format(" oos %.6f %.6f", w.oos.net_pnl, w.oos.max_drawdown)
end
t.eq(sig(w2), sig(w1), "walk-forward on 2 threads: the same folds, choices and out-of-sample figures as on 1")


-- a failing variant stops the pass and is named ------------------------------
-- a default ruleset whose step fails from boom.at on
local bad_rules = "tests/fixtures/boom_rules.lua"
local res2, err2 = sweep.run { db = db, date = D1, rules = bad_rules, variants = { { ["boom.at"] = 0 }, { ["boom.at"] = 1770045000000 } } }
t.ok(res2 == nil and tostring(err2):find("variant 2 (boom.at=1770045000000)", 1, true) and tostring(err2):find("boom at", 1, true),
  "a rule error in one variant names the variant and the rule's message", err2)
local boom = { { ["boom.at"] = 0 }, { ["boom.at"] = 1770045000000 }, { ["boom.at"] = 0 }, { ["boom.at"] = 1770040000000 } }
local r1, e1 = sweep.run { db = db, date = D1, rules = bad_rules, variants = boom, threads = 1 }
local r2, e2 = sweep.run { db = db, date = D1, rules = bad_rules, variants = boom, threads = 2 }
t.ok(r1 == nil and r2 == nil and tostring(e1):find("variant 4 (boom.at=1770040000000)", 1, true) and e2 == e1,
  "two variants failing in a worker thread: the one a single pass meets first is named, as on one thread", e2)

os.exit(t.done())
