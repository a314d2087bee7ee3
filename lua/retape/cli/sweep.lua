-- The `sweep` command: many variants of a ruleset over the same receipts in
-- one pass (retape.sweep), ranked; --train/--test for an out-of-sample check.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local core = require "retape.core"
local json = require "retape.json"
local fs = require "retape.fs"
local common = require "retape.cli.common"
local options = require "retape.cli.options"
local sweep_print = require "retape.cli.sweep_print"
local row_of, ROW_ORDER, TEXT_COLUMNS, CSV_COLUMNS = sweep_print.row_of, sweep_print.ROW_ORDER, sweep_print.TEXT_COLUMNS, sweep_print.CSV_COLUMNS
local label_of, text_table, csv = sweep_print.label_of, sweep_print.text_table, sweep_print.csv

local stderr, group = common.stderr, common.group

-- "D1..D2" -> from, to (a usage error otherwise).
local function day_range(text, what)
  local a, b = tostring(text):match("^(%d%d%d%d%-%d%d%-%d%d)%.%.(%d%d%d%d%-%d%d%-%d%d)$")
  if not a then
    a = tostring(text):match("^(%d%d%d%d%-%d%d%-%d%d)$")
    b = a
  end
  if not a then args.usage_error("%s expects YYYY-MM-DD..YYYY-MM-DD, got '%s'", what, tostring(text)) end
  return a, b
end

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("sweep", {
    summary = "Run many variants of a ruleset over the same receipts in one pass, ranked",
    usage = "retape sweep --db FILE (--date D | --from D --to D [--folds K] | --train D1..D2 --test D3..D4) "
         .. "--grid KEY=V1,V2,... | --grid KEY=LO..HI:STEP | --grid KEY | --grid-file FILE.lua [--random N] [OPTIONS]",
    details = "Every variant (the cartesian product of the --grid options, or the list a --grid-file returns) is\n"
           .. "checked like --set before anything runs.  Then one pass over the receipts: each receipt is read and\n"
           .. "decoded once and handed to every variant, each with its own state store; each variant's results\n"
           .. "are what 'retape replay --set ...' of it gives.  A baseline row (the current settings: the ruleset\n"
           .. "with --set/--config) is always there: a variant that changes nothing is it, else one is added.\n"
           .. "The figures are retape.stats' (docs/statistics.md) with each variant's capital model.  The table is\n"
           .. "ranked by --sort, any column shown (its header or name, COLUMN:asc or :desc; default: the\n"
           .. "--objective, itself total P&L by default).  --grid KEY alone takes the range the ruleset declares\n"
           .. "for KEY (rules show); --random N --seed S draws N distinct variants from the grid's values instead\n"
           .. "of running all of them.  --train/--test: the best variant on the training days by --objective,\n"
           .. "beside every variant's figures on the test days (each period replayed from a fresh state).\n"
           .. "--folds K walks forward over --from..--to: the days with receipts cut into K+1 blocks, fold i\n"
           .. "chooses on block i (--anchored: blocks 1..i) and is scored on block i+1; the out-of-sample total\n"
           .. "is every fold's chosen variant on its test block, beside the baseline's.\n"
           .. "--keep DIR keeps every variant's store (DIR/v01 ...; DIR/train/.. and DIR/test/.. with --train);\n"
           .. "DIR says it is incomplete (DIR/SWEEP-INCOMPLETE) until the sweep ends; the same sweep run again into\n"
           .. "it replaces what a killed one left.\n"
           .. "without it the stores are scratch and hold only the trades the table is computed from.\n"
           .. "--threads N (default: every core) deals the variants round-robin over N threads, each reading and\n"
           .. "decoding the receipts once for its share; the output is the same for any N (a ruleset changed in\n"
           .. "Lua runs on one thread).",
    options = options.list(options.store()[1], options.scope(),
      options.ruleset { rules_help = "ruleset: bundled name or a .lua file", rules_default = "default",
                        set_help = "override a setting in every variant",
                        config_help = "a Lua file returning config overrides for every variant" }, {
      { name = "grid", arg = "KEY=V1,V2,..|KEY=LO..HI:STEP|KEY", repeat_ = true, help = "values of one setting (KEY alone: its declared range); several: their cartesian product" },
      { name = "grid-file", arg = "FILE.lua", help = "a Lua file returning a list of override tables" },
      { name = "random", arg = "N", type = "integer", help = "run N distinct variants drawn from the --grid values instead of all of them" },
      { name = "seed", arg = "S", type = "integer", help = "seed of --random (same seed, same variants)", default = 1 },
      { name = "sort", arg = "COLUMN[:asc|:desc]", help = "order the table by any column shown (trades, win%, realized, unrealized, total, return%, max_dd, sharpe, pf, exposure, var) or sortino, calmar, expectancy (default: the objective)" },
      { name = "objective", arg = "COLUMN[:asc|:desc]", help = "what the best variant is chosen by (--train, --folds) and the default --sort: total (pnl), return, sharpe, sortino, calmar, max_dd, expectancy, pf, win% ...", default = "total" },
      { name = "train", arg = "D1..D2", help = "choose the best variant on these days" },
      { name = "test", arg = "D3..D4", help = "and report every variant on these days beside it" },
      { name = "folds", arg = "K", type = "integer", help = "walk forward over --from..--to in K folds (out-of-sample figures per fold and in total)" },
      { name = "anchored", type = "flag", help = "--folds: every fold trains from the first day (default: rolling windows)" },
      { name = "keep", arg = "DIR", help = "keep each variant's state store under DIR (new or empty; or where this same sweep was interrupted: it runs again)" },
      { name = "clean-slate", type = "flag", help = "the scope's tickers start with no position (as replay --clean-slate)" },
    }, options.versions(require("retape.scope").DEFAULT_SCRIPT_VERSION), {
      { name = "report", arg = "FILE.html", help = "also write one HTML page: every variant's equity curve on one chart, and the table" },
      { name = "json", type = "flag", help = "print the table as JSON" },
      { name = "csv", type = "flag", help = "print the table as CSV" },
      { name = "threads", arg = "N", type = "integer", help = "threads, each running a share of the variants with its own Lua state and its own read of the receipts (default: every core; results never depend on it)" },
      { name = "quiet", type = "flag", help = "no progress bar, no throughput line" },
    }),
    run = function(o)
      local sweep = require "retape.sweep"
      local rules = require "retape.rules"
      if not o.db then args.usage_error("missing --db FILE") end
      if o.threads ~= nil and o.threads < 1 then args.usage_error("--threads must be a positive integer") end
      if o.json and o.csv then args.usage_error("give --json or --csv, not both") end
      local oos = o.train or o.test
      if oos and not (o.train and o.test) then args.usage_error("--train and --test go together") end
      if oos and o.report then args.usage_error("--report goes with --date or --from/--to (one period)") end
      if oos and (o.date or o.from or o.to) then args.usage_error("give --train/--test or --date/--from/--to, not both") end
      if (o.from or o.to) and o.date then args.usage_error("give --date or --from/--to, not both") end
      if (o.from or o.to) and not (o.from and o.to) then args.usage_error("--from and --to go together") end
      if not oos and not o.date and not o.from then args.usage_error("no day given (--date, --from/--to, or --train/--test)") end
      if o.folds ~= nil then
        if o.folds < 1 then args.usage_error("--folds must be a positive integer") end
        if not o.from then args.usage_error("--folds walks forward over --from D1 --to D2") end
        if o.report then args.usage_error("--report goes with one period, not --folds") end
      end
      if o.anchored and not o.folds then args.usage_error("--anchored goes with --folds") end
      if #o.grid == 0 and not o.grid_file then args.usage_error("no variants: give --grid KEY=V1,V2,... or --grid-file FILE.lua") end
      if #o.grid > 0 and o.grid_file then args.usage_error("give --grid or --grid-file, not both") end
      if o.random ~= nil and (o.random < 1 or o.grid_file) then args.usage_error("--random N (N >= 1) draws from the --grid values") end
      -- --sort and --objective are checked before anything runs
      for _, c in ipairs { { o.objective, "--objective" }, { o.sort, "--sort" } } do
        if c[1] then
          local cok, cerr = pcall(sweep.column, c[1], c[2])
          if not cok then args.usage_error("%s", tostring(cerr)) end
        end
      end
      local sort = o.sort or o.objective
      -- the base overrides (--config, --set), checked like replay's: a typo is a usage error
      local base = {}
      if o.config then
        local cok, t = pcall(rules.load_config_file, o.config)
        if not cok then return fail("sweep", t) end
        for k, v in pairs(t) do base[k] = v end
      end
      for _, text in ipairs(o.set) do
        local pok, k, v = pcall(rules.parse_set, text)
        if not pok then args.usage_error("%s", tostring(k)) end
        base[k] = v
      end
      local lok, R0 = pcall(rules.load, o.rules)
      if not lok then return fail("sweep", R0) end
      local bok, berr = pcall(rules.apply_overrides, R0, base, "--set")
      if not bok then args.usage_error("%s", tostring(berr)) end
      local rok, rerr = pcall(require("retape.rules_doc").check_ranges, R0)
      if not rok then return fail("sweep", rerr) end
      local ok, variants = pcall(function()
        if o.grid_file then return sweep.load_grid_file(o.grid_file) end
        if o.random then return sweep.random(o.grid, o.random, o.seed, R0.ranges) end
        return sweep.grid(o.grid, R0.ranges)
      end)
      if not ok then args.usage_error("%s", tostring(variants)) end
      -- every variant checked (unknown key, type, enum) before anything runs
      local vok, verr = pcall(sweep.rulesets, o.rules, base, variants)
      if not vok then
        if tostring(verr):find("^variant %d") then args.usage_error("%s", tostring(verr)) end
        return fail("sweep", verr)
      end
      -- the baseline: a variant that changes nothing, else one more
      local baseline
      for i, v in ipairs(variants) do if not baseline and sweep.is_baseline(R0, v) then baseline = i end end
      if not baseline then variants[#variants + 1] = {}; baseline = #variants end
      if o.keep then
        -- what the kept stores are the results of: a sweep killed half-way is finished by running it again
        local kok, kerr = sweep.claim_dir(o.keep, {
          db = o.db, date = o.date, from = o.from, to = o.to, train = o.train, test = o.test, ticker = o.ticker,
          rules = o.rules, base = base, variants = table.move(variants, 1, #variants, 1, {}), clean_slate = o.clean_slate or false,
          folds = o.folds or false, anchored = o.anchored or false, objective = o.folds and o.objective or false,
          script_version = (not o.all_versions) and o.script_version or false })
        if not kok then return fail("sweep", kerr) end
        if kok == "again" and not o.quiet then
          stderr("%s holds the stores of this sweep, interrupted; running it again into it\n", o.keep)
        end
      end
      local show = not o.quiet and not o.json and not o.csv and core.isatty(2)
      local function progress_bar(what, started)
        return common.progress(started, 30, function(p, bar, secs)
          -- with several threads the bar follows this thread's share of the variants
          local share = p.groups > 1 and string.format(" (thread 1 of %d; %d variants in all)", p.groups, p.all) or ""
          local label = p.fold and string.format("fold %d %-5s ", p.fold, p.phase)
            or (p.phase and string.format("%-6s", p.phase)) or (what or "")
          return string.format("%s%s %d/%d buckets  %s rows x %d variants%s  %s variant-rows/s", label, bar, p.index,
            p.total, group(p.rows), p.variants, share, group(p.rows * p.variants / secs))
        end)
      end
      local function run_opts(from, to, date, keep)
        return { db = o.db, date = date, from = from, to = to, ticker = o.ticker, rules = o.rules, base = base,
                 variants = variants, dir = keep, clean_slate = o.clean_slate, threads = o.threads,
                 script_version = (not o.all_versions) and o.script_version or false }
      end
      -- the time line after a pass (what: "train " / "test  " for an out-of-sample check)
      local function time_line(what, res)
        if o.quiet then return end
        local secs = math.max(res.ms / 1000, 1e-3)
        if res.threads > 1 then
          stderr("%stime %.2f s: %s rows read and decoded once by each of %d threads for %d variants, %s variant-rows/s\n",
            what or "", secs, group(res.rows), res.threads, #res.variants, group(res.rows * #res.variants / secs))
        else
          stderr("%stime %.2f s: %s rows read and decoded once for %d variants, %s variant-rows/s\n", what or "", secs,
            group(res.rows), #res.variants, group(res.rows * #res.variants / secs))
        end
      end
      local function pass(from, to, date, keep, what)
        local started = core.monotonic_ms()
        local ro = run_opts(from, to, date, keep)
        ro.trades = o.report and true or nil
        ro.on_progress = show and progress_bar(what, started) or nil
        local res, err = sweep.run(ro)
        if not res then return nil, err end
        time_line(what, res)
        return res
      end
      local function failed(err)
        if require("retape.replay").is_param_error(err) then args.usage_error("%s", tostring(err)) end
        if tostring(err):find("^%-%-folds") then args.usage_error("%s", tostring(err)) end
        return fail("sweep", err)
      end
      local scope_text = o.date or (o.from and (o.from .. ".." .. o.to))

      if o.folds then -- walk forward
        local wo = run_opts(o.from, o.to, nil, nil)
        wo.folds, wo.anchored, wo.objective, wo.baseline = o.folds, o.anchored, o.objective, baseline
        wo.keep = o.keep
        wo.on_progress = show and progress_bar(nil, core.monotonic_ms()) or nil
        local started = core.monotonic_ms()
        local res, err = sweep.walk_forward(wo)
        if not res then return failed(err) end
        if o.keep then sweep.release_dir(o.keep) end
        return sweep_print.folds(out, o, res, variants, baseline, started)
      end

      if not oos then
        local res, err = pass(o.from, o.to, o.date, o.keep)
        if not res then return failed(err) end
        if o.keep then sweep.release_dir(o.keep) end
        local _, col = sweep.rank(res.variants, sort)
        local rows = {}
        for i, v in ipairs(res.variants) do rows[i] = row_of(v, baseline) end
        if o.report then
          local cols = { "rank", "var" }
          for i = 3, #TEXT_COLUMNS do cols[#cols + 1] = TEXT_COLUMNS[i][1] end
          cols[#cols + 1] = "overrides"
          local cells = {}
          for i, r in ipairs(rows) do
            local c = {}
            for j, tc in ipairs(TEXT_COLUMNS) do c[j] = tc[2](r) end
            c[#c + 1] = label_of(r)
            cells[i] = { variant = r.variant, baseline = r.baseline, cells = c }
          end
          local axes = #o.grid == 2 and not o.random and sweep.axes(o.grid, R0.ranges) or nil
          local page = require("retape.sweep.report").html(string.format("retape sweep %s: %d variants, ranked by %s",
            scope_text, #rows, col), res.variants, cells, cols, { buckets = res.loaded, axes = axes, objective = o.objective,
            baseline = baseline })
          local fh, ferr = io.open(o.report, "w")
          if not fh then return fail("sweep", ferr) end
          fh:write(page)
          fh:close()
          if not o.quiet then stderr("report %s: %d variants' equity curves and the table, %d bytes\n", o.report, #rows, #page) end
        end
        if o.json then out("%s", json.encode(rows, ROW_ORDER)); return 0 end
        if o.csv then out("%s", csv(CSV_COLUMNS, rows)); return 0 end
        out("sweep %s: %d variants (baseline: variant %d), %d buckets, %s rows read once; ranked by %s", scope_text,
          #rows, baseline, res.buckets, group(res.rows), col)
        text_table(out, rows)
        if o.keep then out("stores: %s/vNN (NN = variant)", o.keep) end
        return 0
      end
      -- out of sample: choose on the training days, look at the test days
      local t1, t2 = day_range(o.train, "--train")
      local s1, s2 = day_range(o.test, "--test")
      local started = core.monotonic_ms()
      local tt_opts = run_opts(nil, nil, nil, nil)
      tt_opts.train, tt_opts.test, tt_opts.objective, tt_opts.keep = { t1, t2 }, { s1, s2 }, o.objective, o.keep
      tt_opts.trades = o.report and true or nil
      tt_opts.on_progress = show and progress_bar(nil, started) or nil
      tt_opts.on_pass = function(phase, res) time_line(string.format("%-6s", phase), res) end
      local tt, err = require("retape.sweep.oos").train_test(tt_opts)
      if not tt then return failed(err) end
      if o.keep then sweep.release_dir(o.keep) end
      local train, test_of = tt.train, tt.test_of
      local rows = {}
      for i, v in ipairs(train.variants) do
        local r = row_of(v, baseline)
        local tv = test_of[v.index]
        r.test = row_of(tv, baseline)
        r.test.overrides, r.test.variant, r.test.label, r.test.baseline = nil, nil, nil, nil
        rows[i] = r
      end
      return sweep_print.train_test(out, o, tt, rows, baseline)
    end,
  })
end
