-- retape.sweep.oos — out-of-sample figures: walk-forward folds (train on
-- some days, test the chosen variant on the next ones).
local source = require "retape.source"
local stats = require "retape.stats"
local fs = require "retape.fs"
local rank = require "retape.sweep.rank"

local M = {}


-- fold_windows(days, K, anchored) -> { {train = {first, last}, test = {first, last}}, ... }:
-- the days cut into K + 1 consecutive blocks (the first ones a day longer
-- when they do not divide evenly); fold i trains on block i (rolling) or
-- blocks 1..i (anchored) and tests on block i + 1.  Raises when there are
-- fewer days than blocks.
function M.fold_windows(days, K, anchored)
  local n = #days
  if K < 1 then error("--folds must be at least 1", 0) end
  if n < K + 1 then
    error(string.format("--folds %d needs at least %d days with receipts in the range, it has %d", K, K + 1, n), 0)
  end
  local blocks, at = {}, 1
  for b = 1, K + 1 do
    local size = n // (K + 1) + (b <= n % (K + 1) and 1 or 0)
    blocks[b] = { first = at, last = at + size - 1 }
    at = at + size
  end
  local out = {}
  for i = 1, K do
    local tr = blocks[i]
    local first = anchored and 1 or tr.first
    out[i] = { train = { days[first], days[tr.last] }, test = { days[blocks[i + 1].first], days[blocks[i + 1].last] } }
  end
  return out
end

-- days_with_receipts(db, from, to, script_version) -> sorted New York days.
function M.days_with_receipts(db, from, to, script_version)
  local src, err = source.open(db)
  if not src then return nil, err end
  local ok, list = pcall(function() return assert(src:buckets { script_version = script_version or nil }) end)
  src:close()
  if not ok then return nil, list end
  local starts = {}
  for i, b in ipairs(list) do starts[i] = type(b) == "table" and b.bucket or b end
  local out = {}
  for _, d in ipairs(stats.days_of(starts)) do
    if d >= from and d <= to then out[#out + 1] = d end
  end
  return out
end

-- walk_forward(opts) -> result | nil, message.  opts: those of run() (db,
-- rules, base, variants, threads, ...) plus from, to, folds (K), anchored,
-- objective ("COLUMN[:asc|:desc]"), keep (a directory: each fold's stores
-- under KEEP/foldN/train and /test).  Each fold replays its training days
-- and its test days from a fresh state, every variant; the variant best on
-- the training days by the objective is the fold's choice, and its figures
-- on the test days are the out-of-sample result.  result: { folds = { {
-- train, test, chosen (variant), train_value, test (its figures), test_rank,
-- trades (its test trades) }, ... }, oos (retape.stats over every fold's
-- chosen test trades), baseline_oos (the same for the baseline variant, when
-- opts.baseline names one), objective }.
function M.walk_forward(opts)
  local days, err = M.days_with_receipts(opts.db, opts.from, opts.to, opts.script_version)
  if not days then return nil, err end
  local ok, windows = pcall(M.fold_windows, days, opts.folds, opts.anchored)
  if not ok then return nil, windows end
  local col = rank.column(opts.objective, "--objective")
  local folds, chosen_trades, base_trades = {}, {}, {}
  local capital
  for i, w in ipairs(windows) do
    local run_opts = {}
    for k, v in pairs(opts) do run_opts[k] = v end
    run_opts.date, run_opts.from, run_opts.to = nil, w.train[1], w.train[2]
    if opts.keep then -- KEEP/foldN/train and KEEP/foldN/test
      run_opts.dir = string.format("%s/fold%d/train", opts.keep, i)
      assert(fs.mkdirs(run_opts.dir))
    end
    run_opts.trades, run_opts.on_progress = nil, opts.on_progress and function(p) p.fold, p.phase = i, "train"; return opts.on_progress(p) end
    local train, terr = require("retape.sweep").run(run_opts)
    if not train then return nil, terr end
    rank.rank(train.variants, opts.objective, "--objective")
    local best = train.variants[1]
    run_opts.from, run_opts.to, run_opts.trades = w.test[1], w.test[2], true
    if opts.keep then
      run_opts.dir = string.format("%s/fold%d/test", opts.keep, i)
      assert(fs.mkdirs(run_opts.dir))
    end
    run_opts.on_progress = opts.on_progress and function(p) p.fold, p.phase = i, "test"; return opts.on_progress(p) end
    local test, serr = require("retape.sweep").run(run_opts)
    if not test then return nil, serr end
    rank.rank(test.variants, opts.objective, "--objective")
    local tv, bv
    for _, v in ipairs(test.variants) do
      if v.index == best.index then tv = v end
      if v.index == opts.baseline then bv = v end
    end
    capital = capital or tv.capital
    for _, t in ipairs(tv.trades) do chosen_trades[#chosen_trades + 1] = t end
    if bv then for _, t in ipairs(bv.trades) do base_trades[#base_trades + 1] = t end end
    folds[i] = { fold = i, train = w.train, test_window = w.test, chosen = best.index, label = best.label,
                 train_value = col == "variant" and best.index or best.metrics[col], test = tv.metrics, test_rank = tv.rank,
                 baseline_test = bv and bv.metrics or nil, variants = #test.variants }
  end
  -- every fold's test days, one after the other: the days the totals cover
  local oos_days = {}
  for _, f in ipairs(folds) do
    for _, d in ipairs(days) do if d >= f.test_window[1] and d <= f.test_window[2] then oos_days[#oos_days + 1] = d end end
  end
  local res = { folds = folds, objective = col, days = days, anchored = opts.anchored and true or false,
                oos = stats.compute(chosen_trades, { capital = capital, days = oos_days }) }
  if opts.baseline then res.baseline_oos = stats.compute(base_trades, { capital = capital, days = oos_days }) end
  return res
end
-- train_test(opts) -> result | nil, message.  An out-of-sample check: opts
-- are those of run() (db, rules, base, variants, threads, ...) plus train =
-- {first, last} and test = {first, last} (days), objective ("COLUMN[:asc|
-- :desc]"), keep (a directory: the stores under KEEP/train and KEEP/test),
-- on_progress (its p.phase says "train" or "test") and on_pass(phase, res)
-- after each window.  Both windows are replayed from a fresh state, every
-- variant, and ranked by the objective.  result: { train, test (run()'s
-- results, ranked), chosen (the best variant on the training days),
-- column (the objective's), test_of = {[index] = the variant's test result} }.
function M.train_test(opts)
  local col = rank.column(opts.objective, "--objective")
  local out = { column = col, test_of = {} }
  for _, phase in ipairs { "train", "test" } do
    local run_opts = {}
    for k, v in pairs(opts) do run_opts[k] = v end
    run_opts.train, run_opts.test, run_opts.objective, run_opts.keep, run_opts.on_pass = nil, nil, nil, nil, nil
    run_opts.date, run_opts.from, run_opts.to = nil, opts[phase][1], opts[phase][2]
    if opts.keep then
      run_opts.dir = opts.keep .. "/" .. phase
      local ok, err = fs.mkdirs(run_opts.dir)
      if not ok then return nil, err end
    end
    run_opts.on_progress = opts.on_progress and function(p) p.phase = phase; return opts.on_progress(p) end
    local res, err = require("retape.sweep").run(run_opts)
    if not res then return nil, err end
    if opts.on_pass then opts.on_pass(phase, res) end
    rank.rank(res.variants, opts.objective, "--objective")
    out[phase] = res
  end
  for _, v in ipairs(out.test.variants) do out.test_of[v.index] = v end
  out.chosen = out.train.variants[1]
  return out
end

return M
