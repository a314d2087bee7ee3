-- The `sweep` command: many variants of a ruleset over the same receipts in
-- one pass (retape.sweep), ranked; --train/--test for an out-of-sample check.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local core = require "retape.core"
local json = require "retape.json"
local fs = require "retape.fs"
local common = require "retape.cli_common"

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

local function round(x, places)
  if x == nil then return json.null end
  local m = 10 ^ (places or 0)
  local v = math.floor(x * m + 0.5) / m
  if (places or 0) == 0 then return math.tointeger(v) or v end
  return v
end

-- One variant as the JSON/CSV row: figures rounded as the report rounds them.
local function row_of(v)
  local m = v.metrics
  return { rank = v.rank, variant = v.index, trades = m.trades, win_rate = round(m.win_rate * 100, 1),
           realized = round(m.realized, 2), unrealized = round(m.unrealized, 2), total = round(m.total, 2),
           max_drawdown = round(m.max_drawdown, 2), profit_factor = round(m.profit_factor, 2),
           exposure = round(m.exposure * 100, 1), overrides = v.label, state = v.state or json.null }
end
local ROW_ORDER = { "rank", "variant", "trades", "win_rate", "realized", "unrealized", "total", "max_drawdown",
                    "profit_factor", "exposure", "overrides", "state", "train", "test", "metric", "chosen", "variants" }

-- The text table: right-aligned figures, the overrides last.
local function text_table(out, rows, extra_head, extra_of)
  local head = { "rank", "var", "trades", "win%", "realized", "unrealized", "total", "max_dd", "pf", "exposure" }
  for _, h in ipairs(extra_head or {}) do head[#head + 1] = h end
  head[#head + 1] = "overrides"
  local lines = { head }
  for _, r in ipairs(rows) do
    local pf = r.profit_factor == json.null and "-" or string.format("%.2f", r.profit_factor)
    local line = { tostring(r.rank), tostring(r.variant), tostring(r.trades), string.format("%.1f", r.win_rate),
                   group(r.realized), group(r.unrealized), group(r.total), group(r.max_drawdown), pf,
                   string.format("%.1f%%", r.exposure) }
    for _, x in ipairs(extra_of and extra_of(r) or {}) do line[#line + 1] = x end
    line[#line + 1] = r.overrides
    lines[#lines + 1] = line
  end
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

local CSV_COLUMNS = { { "rank" }, { "variant" }, { "trades" }, { "win_rate" }, { "realized" }, { "unrealized" },
                      { "total" }, { "max_drawdown" }, { "profit_factor" }, { "exposure" }, { "overrides" } }

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("sweep", {
    summary = "Run many variants of a ruleset over the same receipts in one pass, ranked",
    usage = "retape sweep --db FILE (--date D | --from D --to D | --train D1..D2 --test D3..D4) "
         .. "--grid KEY=V1,V2,... | --grid KEY=LO..HI:STEP | --grid-file FILE.lua [OPTIONS]",
    details = "Every variant (the cartesian product of the --grid options, or the list a --grid-file returns) is\n"
           .. "checked like --set before anything runs.  Then one pass over the receipts: each receipt is read and\n"
           .. "decoded once and handed to every variant, each with its own state store; each variant's results\n"
           .. "are what 'retape replay --set ...' of it gives.  The table is ranked by --sort (default total P&L;\n"
           .. "COLUMN:asc or :desc).  --train/--test: the best variant on the training days by --sort, beside\n"
           .. "every variant's figures on the test days (each period replayed from a fresh state).\n"
           .. "--keep DIR keeps every variant's store (DIR/v01 ...; DIR/train/.. and DIR/test/.. with --train);\n"
           .. "DIR says it is incomplete (DIR/SWEEP-INCOMPLETE) until the sweep ends; the same sweep run again into\n"
           .. "it replaces what a killed one left.\n"
           .. "without it the stores are scratch and hold only the trades the table is computed from.\n"
           .. "--threads N (default: every core) deals the variants round-robin over N threads, each reading and\n"
           .. "decoding the receipts once for its share; the output is the same for any N (a ruleset changed in\n"
           .. "Lua runs on one thread).",
    options = {
      { name = "db", arg = "FILE", help = "receipts database (ingest_receipts)" },
      { name = "date", arg = "YYYY-MM-DD", help = "trading day" },
      { name = "from", arg = "YYYY-MM-DD", help = "first day of a range" },
      { name = "to", arg = "YYYY-MM-DD", help = "last day of a range" },
      { name = "ticker", arg = "T[,T...]", help = "only these tickers" },
      { name = "rules", arg = "NAME|FILE", help = "ruleset: bundled name or a .lua file", default = "default" },
      { name = "set", arg = "KEY=VALUE", repeat_ = true, help = "override a setting in every variant" },
      { name = "config", arg = "FILE.lua", help = "a Lua file returning config overrides for every variant" },
      { name = "grid", arg = "KEY=V1,V2,..|KEY=LO..HI:STEP", repeat_ = true, help = "values of one setting; several: their cartesian product" },
      { name = "grid-file", arg = "FILE.lua", help = "a Lua file returning a list of override tables" },
      { name = "sort", arg = "COLUMN[:asc|:desc]", help = "rank by trades, win_rate, realized, unrealized, total, max_drawdown, profit_factor, exposure or variant", default = "total" },
      { name = "train", arg = "D1..D2", help = "choose the best variant on these days" },
      { name = "test", arg = "D3..D4", help = "and report every variant on these days beside it" },
      { name = "keep", arg = "DIR", help = "keep each variant's state store under DIR (new or empty; or where this same sweep was interrupted: it runs again)" },
      { name = "clean-slate", type = "flag", help = "the scope's tickers start with no position (as replay --clean-slate)" },
      { name = "script-version", arg = "V", help = "keep script_version = V or NULL", default = "2.5.0" },
      { name = "all-versions", type = "flag", help = "no script_version filter" },
      { name = "report", arg = "FILE.html", help = "also write one HTML page: every variant's equity curve on one chart, and the table" },
      { name = "json", type = "flag", help = "print the table as JSON" },
      { name = "csv", type = "flag", help = "print the table as CSV" },
      { name = "threads", arg = "N", type = "integer", help = "threads, each running a share of the variants with its own Lua state and its own read of the receipts (default: every core; results never depend on it)" },
      { name = "quiet", type = "flag", help = "no progress bar, no throughput line" },
    },
    run = function(o)
      local sweep = require "retape.sweep"
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
      if #o.grid == 0 and not o.grid_file then args.usage_error("no variants: give --grid KEY=V1,V2,... or --grid-file FILE.lua") end
      if #o.grid > 0 and o.grid_file then args.usage_error("give --grid or --grid-file, not both") end
      local ok, variants = pcall(function()
        if o.grid_file then return sweep.load_grid_file(o.grid_file) end
        return sweep.grid(o.grid)
      end)
      if not ok then args.usage_error("%s", tostring(variants)) end
      -- --sort is checked before anything runs
      local sok, serr = pcall(sweep.rank, {}, o.sort)
      if not sok then args.usage_error("%s", tostring(serr)) end
      -- the base overrides (--config, --set), checked like replay's
      local base = {}
      local rules = require "retape.rules"
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
      -- every variant checked (unknown key, type, enum) before anything runs
      local vok, verr = pcall(sweep.rulesets, o.rules, base, variants)
      if not vok then
        if tostring(verr):find("^variant %d") then args.usage_error("%s", tostring(verr)) end
        return fail("sweep", verr)
      end
      if o.keep then
        -- what the kept stores are the results of: a sweep killed half-way is finished by running it again
        local kok, kerr = sweep.claim_dir(o.keep, {
          db = o.db, date = o.date, from = o.from, to = o.to, train = o.train, test = o.test, ticker = o.ticker,
          rules = o.rules, base = base, variants = table.move(variants, 1, #variants, 1, {}), clean_slate = o.clean_slate or false,
          script_version = (not o.all_versions) and o.script_version or false })
        if not kok then return fail("sweep", kerr) end
        if kok == "again" and not o.quiet then
          stderr("%s holds the stores of this sweep, interrupted; running it again into it\n", o.keep)
        end
      end
      local show = not o.quiet and not o.json and not o.csv and core.isatty(2)
      local function pass(from, to, date, keep, what)
        local started = core.monotonic_ms()
        local last = 0
        local res, err = sweep.run {
          db = o.db, date = date, from = from, to = to, ticker = o.ticker, rules = o.rules, base = base,
          variants = variants, dir = keep, clean_slate = o.clean_slate, trades = o.report and true or nil,
          threads = o.threads,
          script_version = (not o.all_versions) and o.script_version or false,
          on_progress = show and function(p)
            local now = core.monotonic_ms()
            if p.index < p.total and now - last < 100 then return end
            last = now
            local width = 30
            local filled = math.floor(width * p.index / p.total)
            local secs = math.max((now - started) / 1000, 1e-3)
            -- with several threads the bar follows this thread's share of the variants
            local share = p.groups > 1 and string.format(" (thread 1 of %d; %d variants in all)", p.groups, p.all) or ""
            stderr("\r%s[%s%s] %d/%d buckets  %s rows x %d variants%s  %s variant-rows/s", what or "",
              string.rep("#", filled), string.rep(".", width - filled), p.index, p.total, group(p.rows), p.variants,
              share, group(p.rows * p.variants / secs))
            if p.index == p.total then stderr("\n") end
          end or nil,
        }
        if not res then return nil, err end
        if not o.quiet then
          local secs = math.max(res.ms / 1000, 1e-3)
          if res.threads > 1 then
            stderr("%stime %.2f s: %s rows read and decoded once by each of %d threads for %d variants, %s variant-rows/s\n",
              what or "", secs, group(res.rows), res.threads, #res.variants, group(res.rows * #res.variants / secs))
          else
            stderr("%stime %.2f s: %s rows read and decoded once for %d variants, %s variant-rows/s\n", what or "", secs,
              group(res.rows), #res.variants, group(res.rows * #res.variants / secs))
          end
        end
        return res
      end
      local keep_train, keep_test = o.keep, nil
      if oos and o.keep then
        keep_train, keep_test = o.keep .. "/train", o.keep .. "/test"
        assert(fs.mkdirs(keep_train)); assert(fs.mkdirs(keep_test))
      end
      local function failed(err)
        if require("retape.replay").is_param_error(err) then args.usage_error("%s", tostring(err)) end
        return fail("sweep", err)
      end
      if not oos then
        local res, err = pass(o.from, o.to, o.date, o.keep)
        if not res then return failed(err) end
        if o.keep then sweep.release_dir(o.keep) end
        local _, col = sweep.rank(res.variants, o.sort)
        local rows = {}
        for i, v in ipairs(res.variants) do rows[i] = row_of(v) end
        if o.report then
          local cols = { "rank", "var", "trades", "win%", "realized", "unrealized", "total", "max_dd", "pf", "exposure", "overrides" }
          local cells = {}
          for i, r in ipairs(rows) do
            cells[i] = { variant = r.variant, cells = { r.rank, r.variant, r.trades, string.format("%.1f", r.win_rate),
              group(r.realized), group(r.unrealized), group(r.total), group(r.max_drawdown),
              r.profit_factor == json.null and "-" or string.format("%.2f", r.profit_factor),
              string.format("%.1f%%", r.exposure), r.overrides } }
          end
          local page = require("retape.sweep.report").html(string.format("retape sweep %s: %d variants, ranked by %s",
            o.date or (o.from .. ".." .. o.to), #rows, col), res.variants, cells, cols)
          local fh, ferr = io.open(o.report, "w")
          if not fh then return fail("sweep", ferr) end
          fh:write(page)
          fh:close()
          if not o.quiet then stderr("report %s: %d variants' equity curves and the table, %d bytes\n", o.report, #rows, #page) end
        end
        if o.json then out("%s", json.encode(rows, ROW_ORDER)); return 0 end
        if o.csv then out("%s", require("retape.views").csv(CSV_COLUMNS, rows)); return 0 end
        out("sweep %s: %d variants, %d buckets, %s rows read once; ranked by %s", o.date or (o.from .. ".." .. o.to),
          #rows, res.buckets, group(res.rows), col)
        text_table(out, rows)
        if o.keep then out("stores: %s/vNN (NN = variant)", o.keep) end
        return 0
      end
      -- out of sample: choose on the training days, look at the test days
      local t1, t2 = day_range(o.train, "--train")
      local s1, s2 = day_range(o.test, "--test")
      local train, err = pass(t1, t2, nil, keep_train, "train ")
      if not train then return failed(err) end
      local test
      test, err = pass(s1, s2, nil, keep_test, "test  ")
      if not test then return failed(err) end
      if o.keep then sweep.release_dir(o.keep) end
      local _, col = sweep.rank(train.variants, o.sort)
      sweep.rank(test.variants, o.sort)
      local test_of = {}
      for _, v in ipairs(test.variants) do test_of[v.index] = v end
      local rows = {}
      for i, v in ipairs(train.variants) do
        local r = row_of(v)
        local tv = test_of[v.index]
        r.test = row_of(tv)
        r.test.overrides, r.test.variant = nil, nil
        rows[i] = r
      end
      local chosen = train.variants[1]
      if o.json then
        out("%s", json.encode({ metric = col, train = o.train, test = o.test, chosen = chosen.index, variants = rows }, ROW_ORDER))
        return 0
      end
      if o.csv then
        local flat = {}
        for i, r in ipairs(rows) do
          flat[i] = { variant = r.variant, train_rank = r.rank, test_rank = r.test.rank, overrides = r.overrides }
          for _, c in ipairs(CSV_COLUMNS) do
            local k = c[1]
            if k ~= "rank" and k ~= "variant" and k ~= "overrides" then
              flat[i]["train_" .. k], flat[i]["test_" .. k] = r[k], r.test[k]
            end
          end
        end
        local cols = { { "variant" }, { "train_rank" }, { "test_rank" } }
        for _, c in ipairs(CSV_COLUMNS) do
          local k = c[1]
          if k ~= "rank" and k ~= "variant" and k ~= "overrides" then cols[#cols + 1] = { "train_" .. k }; cols[#cols + 1] = { "test_" .. k } end
        end
        cols[#cols + 1] = { "overrides" }
        out("%s", require("retape.views").csv(cols, flat))
        return 0
      end
      local function fmt(v, c)
        if c == "profit_factor" then return v == json.null and "-" or string.format("%.2f", v) end
        if c == "win_rate" or c == "exposure" then return string.format("%.1f", v) end
        return group(v)
      end
      out("out of sample: chosen on %s by %s: variant %d (%s)", o.train, col, chosen.index, chosen.label)
      out("%s on the training days; every figure after it on the test days (%s)", col, o.test)
      -- the training metric beside the test figures, in training rank order
      local lines = {}
      for _, r in ipairs(rows) do
        local tr = r.test
        lines[#lines + 1] = { tostring(r.rank), tostring(r.variant), fmt(r[col] or r.rank, col), tostring(tr.rank),
          tostring(tr.trades), fmt(tr.win_rate, "win_rate"), group(tr.total), group(tr.max_drawdown),
          fmt(tr.profit_factor, "profit_factor"), fmt(tr.exposure, "exposure") .. "%", r.overrides }
      end
      table.insert(lines, 1, { "train_rank", "var", "train_" .. col, "test_rank", "trades", "win%", "total", "max_dd",
        "pf", "exposure", "overrides" })
      local width = {}
      for _, l in ipairs(lines) do for i, c in ipairs(l) do width[i] = math.max(width[i] or 0, #c) end end
      for _, l in ipairs(lines) do
        local cells = {}
        for i, c in ipairs(l) do cells[i] = i == #l and c or (string.rep(" ", width[i] - #c) .. c) end
        out("%s", table.concat(cells, "  "))
      end
      local best_test = test.variants[1]
      out("chosen variant %d ranks %d of %d on the test days (best there: variant %d)", chosen.index,
        test_of[chosen.index].rank, #test.variants, best_test.index)
      return 0
    end,
  })
end
