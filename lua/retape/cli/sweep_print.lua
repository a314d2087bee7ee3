-- How `retape sweep` prints what it found: the variants as rows (JSON,
-- CSV) and text tables, for one pass, a walk-forward and a train/test
-- check.  Used by retape.cli.sweep.
local core = require "retape.core"
local json = require "retape.json"
local common = require "retape.cli.common"

local stderr, group = common.stderr, common.group

local M = {}

local function round(x, places)
  if x == nil then return json.null end
  local m = 10 ^ (places or 0)
  local v = math.floor(x * m + 0.5) / m
  if (places or 0) == 0 then return math.tointeger(v) or v end
  return v
end

-- One variant as the JSON/CSV row: figures rounded as the report rounds
-- them; overrides as an object (the label beside it, as text).
local function row_of(v, baseline)
  local m = v.metrics
  return { rank = v.rank, variant = v.index, baseline = v.index == baseline, trades = m.trades,
           win_rate = round(m.win_rate * 100, 1), realized = round(m.realized, 2), unrealized = round(m.unrealized, 2),
           total = round(m.total, 2), return_pct = round(m.return_pct * 100, 3), max_drawdown = round(m.max_drawdown, 2),
           max_drawdown_pct = round(m.max_drawdown_pct * 100, 3), sharpe = round(m.sharpe, 2), sortino = round(m.sortino, 2),
           calmar = round(m.calmar, 2), expectancy = round(m.expectancy, 2), profit_factor = round(m.profit_factor, 2),
           exposure = round((m.exposure or 0) * 100, 1), overrides = json.object(v.overrides or {}), label = v.label,
           state = v.state or json.null }
end
local ROW_ORDER = { "rank", "variant", "baseline", "trades", "win_rate", "realized", "unrealized", "total", "return_pct",
                    "max_drawdown", "max_drawdown_pct", "sharpe", "sortino", "calmar", "expectancy", "profit_factor",
                    "exposure", "overrides", "label", "state", "train", "test", "metric", "objective", "chosen", "variants",
                    "folds", "fold", "train_value", "test_rank", "oos", "baseline_oos", "anchored" }

-- "%.2f" without a minus on a figure that rounds to zero
local function f2(x) local t = string.format("%.2f", x); return t == "-0.00" and "0.00" or t end
local function opt2(x) return (x == json.null or x == nil) and "-" or f2(x) end
-- The text table's columns: header, figure of a row.
local TEXT_COLUMNS = {
  { "rank", function(r) return tostring(r.rank) end },
  { "var", function(r) return tostring(r.variant) end },
  { "trades", function(r) return tostring(r.trades) end },
  { "win%", function(r) return string.format("%.1f", r.win_rate) end },
  { "realized", function(r) return group(r.realized) end },
  { "unrealized", function(r) return group(r.unrealized) end },
  { "total", function(r) return group(r.total) end },
  { "return%", function(r) return f2(r.return_pct) end },
  { "max_dd", function(r) return group(r.max_drawdown) end },
  { "sharpe", function(r) return opt2(r.sharpe) end },
  { "pf", function(r) return opt2(r.profit_factor) end },
  { "exposure", function(r) return string.format("%.1f%%", r.exposure) end },
}
local function label_of(r) return r.label .. (r.baseline and r.label ~= "(base)" and "  (= base)" or "") end

-- Prints lines of cells: right-aligned, the last left-aligned.
local function aligned(out, lines)
  local width = {}
  for _, l in ipairs(lines) do
    for i, c in ipairs(l) do width[i] = math.max(width[i] or 0, #c) end
  end
  for _, l in ipairs(lines) do
    local cells = {}
    for i, c in ipairs(l) do
      if i == #l then cells[i] = c else cells[i] = string.rep(" ", width[i] - #c) .. c end
    end
    out("%s", table.concat(cells, "  "))
  end
end

-- The text table: right-aligned figures, the overrides last.
local function text_table(out, rows)
  local head = {}
  for i, c in ipairs(TEXT_COLUMNS) do head[i] = c[1] end
  head[#head + 1] = "overrides"
  local lines = { head }
  for _, r in ipairs(rows) do
    local line = {}
    for i, c in ipairs(TEXT_COLUMNS) do line[i] = c[2](r) end
    line[#line + 1] = label_of(r)
    lines[#lines + 1] = line
  end
  aligned(out, lines)
end

local CSV_COLUMNS = { { "rank" }, { "variant" }, { "baseline" }, { "trades" }, { "win_rate" }, { "realized" }, { "unrealized" },
                      { "total" }, { "return_pct" }, { "max_drawdown" }, { "max_drawdown_pct" }, { "sharpe" }, { "sortino" },
                      { "calmar" }, { "expectancy" }, { "profit_factor" }, { "exposure" }, { "label", "overrides" } }

-- CSV: rows with json.null as an empty cell.
local function csv(columns, rows)
  local clean = {}
  for i, r in ipairs(rows) do
    local c = {}
    for k, v in pairs(r) do if v ~= json.null then c[k] = v end end
    clean[i] = c
  end
  return require("retape.views").csv(columns, clean)
end

-- The out-of-sample figures of a walk-forward (retape.stats) as a row.
local function oos_row(s)
  return { trades = s.trades, total = round(s.net_pnl, 2), return_pct = round(s.return_pct * 100, 3),
           max_drawdown = round(s.max_drawdown, 2), sharpe = round(s.sharpe, 2), win_rate = round(s.win_rate * 100, 1),
           profit_factor = round(s.profit_factor, 2), expectancy = round(s.expectancy, 2) }
end

M.round, M.row_of, M.ROW_ORDER, M.TEXT_COLUMNS, M.CSV_COLUMNS = round, row_of, ROW_ORDER, TEXT_COLUMNS, CSV_COLUMNS
M.label_of, M.text_table, M.csv, M.oos_row = label_of, text_table, csv, oos_row

-- folds(out, o, res, variants, baseline, started): what a walk-forward
-- (--folds) prints: JSON, CSV, or the folds' table and the out-of-sample
-- figures beside the baseline's.
function M.folds(out, o, res, variants, baseline, started)
  local sweep = require "retape.sweep"
  local col = res.objective
  local folds = {}
  for i, f in ipairs(res.folds) do
    local tv = { metrics = f.test, index = f.chosen, rank = f.test_rank, label = f.label, overrides = variants[f.chosen] }
    local r = row_of(tv, baseline)
    folds[i] = { fold = i, train = f.train[1] .. ".." .. f.train[2], test = f.test_window[1] .. ".." .. f.test_window[2],
                 chosen = f.chosen, label = f.label, overrides = json.object(variants[f.chosen]),
                 train_value = round(f.train_value, 4), test_rank = f.test_rank, variants = f.variants,
                 trades = r.trades, total = r.total, return_pct = r.return_pct, max_drawdown = r.max_drawdown,
                 sharpe = r.sharpe, win_rate = r.win_rate,
                 baseline_total = f.baseline_test and round(f.baseline_test.total, 2) or json.null }
  end
  if not o.quiet then stderr("time %.2f s: %d folds x 2 passes of %d variants\n", (core.monotonic_ms() - started) / 1000, #folds, #variants) end
  if o.json then
    out("%s", json.encode({ objective = col, anchored = res.anchored, folds = folds, oos = oos_row(res.oos),
      baseline_oos = res.baseline_oos and oos_row(res.baseline_oos) or json.null, baseline = baseline },
      { "objective", "anchored", "folds", "fold", "train", "test", "chosen", "label", "overrides", "train_value",
        "test_rank", "variants", "trades", "total", "return_pct", "max_drawdown", "sharpe", "win_rate", "baseline_total",
        "oos", "baseline_oos", "baseline" }))
    return 0
  end
  if o.csv then
    out("%s", csv({ { "fold" }, { "train" }, { "test" }, { "chosen" }, { "train_value" }, { "test_rank" },
      { "trades" }, { "total" }, { "return_pct" }, { "max_drawdown" }, { "sharpe" }, { "baseline_total" }, { "label", "overrides" } }, folds))
    return 0
  end
  out("walk-forward %s..%s: %d fold%s (%s), %d variants, chosen by %s on each training window", o.from, o.to, #folds, #folds == 1 and "" or "s",
    res.anchored and "anchored" or "rolling", #variants, col)
  local lines = { { "fold", "train", "test", "chosen", "train_" .. col, "test_rank", "trades", "total", "return%", "max_dd", "sharpe", "base_total", "overrides" } }
  for _, f in ipairs(folds) do
    lines[#lines + 1] = { tostring(f.fold), f.train, f.test, tostring(f.chosen), f.train_value == json.null and "-" or json.number(f.train_value),
      string.format("%d/%d", f.test_rank, f.variants), tostring(f.trades), group(f.total), f2(f.return_pct),
      group(f.max_drawdown), opt2(f.sharpe), f.baseline_total == json.null and "-" or group(f.baseline_total), f.label }
  end
  aligned(out, lines)
  local t, bt = oos_row(res.oos), res.baseline_oos and oos_row(res.baseline_oos)
  out("out of sample, every fold's choice on its test days: %d trades, total %s (%.2f%%), max drawdown %s, Sharpe %s",
    t.trades, group(t.total), t.return_pct, group(t.max_drawdown), opt2(t.sharpe))
  if bt then
    out("the baseline (variant %d%s) on the same days: %d trades, total %s (%.2f%%), max drawdown %s, Sharpe %s",
      baseline, next(variants[baseline]) and (", " .. sweep.label(variants[baseline])) or "", bt.trades, group(bt.total), bt.return_pct, group(bt.max_drawdown), opt2(bt.sharpe))
  end
  return 0
end

-- train_test(out, o, tt, rows, baseline): what an out-of-sample check
-- (--train/--test) prints: JSON, CSV, or the training objective beside the
-- test figures, in training rank order.
function M.train_test(out, o, tt, rows, baseline)
  local test, col, test_of = tt.test, tt.column, tt.test_of
  local chosen = tt.chosen
  if o.json then
    out("%s", json.encode({ metric = col, train = o.train, test = o.test, chosen = chosen.index, baseline = baseline, variants = rows }, ROW_ORDER))
    return 0
  end
  if o.csv then
    local flat = {}
    for i, r in ipairs(rows) do
      flat[i] = { variant = r.variant, train_rank = r.rank, test_rank = r.test.rank, label = r.label, baseline = r.baseline }
      for _, c in ipairs(CSV_COLUMNS) do
        local k = c[1]
        if k ~= "rank" and k ~= "variant" and k ~= "label" and k ~= "baseline" then
          flat[i]["train_" .. k], flat[i]["test_" .. k] = r[k], r.test[k]
        end
      end
    end
    local cols = { { "variant" }, { "baseline" }, { "train_rank" }, { "test_rank" } }
    for _, c in ipairs(CSV_COLUMNS) do
      local k = c[1]
      if k ~= "rank" and k ~= "variant" and k ~= "label" and k ~= "baseline" then cols[#cols + 1] = { "train_" .. k }; cols[#cols + 1] = { "test_" .. k } end
    end
    cols[#cols + 1] = { "label", "overrides" }
    out("%s", csv(cols, flat))
    return 0
  end
  local function fmt(v, c)
    if v == json.null or v == nil then return "-" end
    if c == "win_rate" or c == "exposure" then return string.format("%.1f", v) end
    if c == "total" or c == "realized" or c == "unrealized" or c == "max_drawdown" or c == "trades" then return group(v) end
    return string.format("%.2f", v)
  end
  out("out of sample: chosen on %s by %s: variant %d %s", o.train, col, chosen.index,
    chosen.label == "(base)" and "(base)" or ("(" .. chosen.label .. ")"))
  out("%s on the training days; every figure after it on the test days (%s)", col, o.test)
  -- the training objective beside the test figures, in training rank order
  local lines = { { "train_rank", "var", "train_" .. col, "test_rank", "trades", "win%", "total", "return%", "max_dd", "sharpe",
    "pf", "exposure", "overrides" } }
  for _, r in ipairs(rows) do
    local tr = r.test
    lines[#lines + 1] = { tostring(r.rank), tostring(r.variant), col == "variant" and tostring(r.variant) or fmt(r[col], col), tostring(tr.rank),
      tostring(tr.trades), fmt(tr.win_rate, "win_rate"), group(tr.total), f2(tr.return_pct),
      group(tr.max_drawdown), opt2(tr.sharpe), opt2(tr.profit_factor), fmt(tr.exposure, "exposure") .. "%", label_of(r) }
  end
  aligned(out, lines)
  local best_test = test.variants[1]
  out("chosen variant %d ranks %d of %d on the test days (best there: variant %d; the baseline, variant %d, ranks %d)",
    chosen.index, test_of[chosen.index].rank, #test.variants, best_test.index, baseline, test_of[baseline].rank)
  return 0
end

return M
