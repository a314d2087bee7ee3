-- The report commands of the CLI: `report` (one self-contained HTML file of
-- a state store) and `rules show` (every setting of a ruleset).
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local with_store_options = require("retape.cli.common").with_store_options

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("report", {
    summary = "Write a one-file HTML report of a replay: statistics, charts, lanes, trades, manifest",
    usage = "retape report --state DIR [--db FILE] [-o FILE.html] [--vs OTHER_STATE ...] [--benchmark TICKER]",
    details = "The file has its CSS, JavaScript and SVG inline (no network; it opens from disk): the statistics\n"
           .. "(net P&L and % return on the capital model's starting capital, drawdown and its duration, Sharpe,\n"
           .. "Sortino, Calmar, expectancy, average win and loss, holding time, streaks, best and worst trade and\n"
           .. "day; docs/statistics.md), the equity curve beside a buy-and-hold of --benchmark, the underwater\n"
           .. "chart, P&L per day, daily and monthly returns, breakdowns by exit reason, enter rule, direction\n"
           .. "and ticker with the ruleset's glossary; the 8 lanes at any bucket (slider or arrow keys) and each\n"
           .. "ticker's lanes over the run; a ticker's price with its entries, trims, exits, stop-loss and\n"
           .. "take-profit; Trade By Day, By P&L and History as sortable, filterable tables; the run manifest.\n"
           .. "--vs (repeatable) compares other stores replayed over the same receipts, each named with its\n"
           .. "overrides.  A store without trades says why (e.g. receipts without levels).",
    options = {
      { name = "state", arg = "DIR", help = "state store of a replay" },
      { name = "db", arg = "FILE", help = "receipts database: each day's closing prices in Trade By Day (and --state FILE.state by default)" },
      { name = "out", short = "o", arg = "FILE", help = "output file (default: report.html)", default = "report.html" },
      { name = "vs", arg = "DIR", repeat_ = true, help = "another state store to compare with (repeat for several)" },
      { name = "benchmark", arg = "TICKER", help = "the ticker bought and held beside the equity curve (default SPY)", default = "SPY" },
    },
    run = function(o)
      local dir = o.state or (o.db and o.db .. ".state")
      if not dir then args.usage_error("missing --state DIR") end
      local model, err = require("retape.report.data").build(dir, { vs = o.vs, db = o.db, benchmark = o.benchmark })
      if not model then return fail("report", err) end
      local html = require("retape.report.html").render(model)
      local f, ferr = io.open(o.out, "wb")
      if not f then return fail("report", ferr) end
      local ok, werr = f:write(html)
      f:close()
      if not ok then return fail("report", werr) end
      local s = model.summary
      out("%s: %d trades, net P&L %.2f (%.2f%% of %.2f), max drawdown %.2f, %d tickers, %d buckets, %d bytes", o.out,
        s.trades, s.total, s.return_pct, s.start, s.max_drawdown, #model.tickers, #model.buckets, #html)
      return 0
    end,
  })

  command("stats", {
    summary = "Print a replay's statistics: P&L and % return, drawdown, Sharpe, Sortino, Calmar, trades",
    usage = "retape stats --state DIR [--set capital.KEY=VALUE ...] [--json]",
    details = "The figures of the report's statistics block (retape.stats; every formula in docs/statistics.md),\n"
           .. "with the capital model the store was made with (its ruleset's config.capital and overrides).\n"
           .. "--set capital.KEY=VALUE lays another account over the same trades without replaying: starting\n"
           .. "capital, sizing (ruleset | equity_pct), fees (per order, per share, bps) and slippage (bps).\n"
           .. "--json adds the daily and monthly returns and the equity curve.",
    options = with_store_options {
      { name = "set", arg = "capital.KEY=VALUE", repeat_ = true, help = "change the capital model (capital.start, capital.sizing, capital.equity_pct, capital.fee_per_order, capital.fee_per_share, capital.fee_bps, capital.slippage_bps)" },
      { name = "json", type = "flag", help = "print every figure as JSON" },
    },
    run = function(o)
      local common = require "retape.cli.common"
      local rules = require "retape.rules"
      local stats = require "retape.stats"
      local sets = {}
      for _, text in ipairs(o.set) do
        local pok, k, v = pcall(rules.parse_set, text)
        if not pok then args.usage_error("%s", tostring(k)) end
        if not k:match("^capital%.") then
          args.usage_error("stats --set changes the capital model only (capital.KEY=VALUE); '%s' is a rule setting: replay with it", k)
        end
        sets[#sets + 1] = { k, v }
      end
      local st, err = common.open_store(o)
      if not st then return fail("stats", err) end
      local trades = require("retape.results").trades(st)
      local runs = require("retape.manifest").runs(st)
      local R = common.store_rules(st, "default")
      local buckets = st:version_buckets()
      st:close()
      local last = runs[#runs]
      local cap = {}
      local recorded = last and type(last.config) == "table" and last.config.capital
      for k, v in pairs(stats.capital(type(recorded) == "table" and recorded or (R and R.config and rawget(R.config, "capital")))) do cap[k] = v end
      for _, kv in ipairs(sets) do
        local key = kv[1]:sub(#"capital." + 1)
        if stats.CAPITAL_DEFAULTS[key] == nil then
          local near = rules.close_matches(stats.CAPITAL_DEFAULTS, key)
          args.usage_error("--set: unknown setting 'capital.%s'%s", key, #near > 0 and (" (did you mean capital." .. table.concat(near, ", capital.") .. "?)") or "")
        end
        local v = kv[2]
        if type(v) == "number" then v = v + 0.0 end
        cap[key] = v
      end
      local ok, s = pcall(stats.compute, trades, { capital = cap, buckets = buckets, rules = R })
      if not ok then args.usage_error("--set: %s", tostring(s)) end
      local json = require "retape.json"
      local function opt(x) if x == nil then return json.null end return x end
      if o.json then
        local out_t = {}
        for _, k in ipairs(stats.FIELDS) do out_t[k] = opt(s[k]) end
        out_t.capital = s.capital
        local order = { "capital" }
        for _, k in ipairs(stats.FIELDS) do order[#order + 1] = k end
        for _, k in ipairs { "start", "sizing", "equity_pct", "fee_per_order", "fee_per_share", "fee_bps", "slippage_bps",
                             "id", "ticker", "day", "month", "pnl", "ret", "equity", "days" } do order[#order + 1] = k end
        out("%s", json.encode(out_t, order))
        return 0
      end
      out("%s", stats.text(s))
      return 0
    end,
  })

  command("rules", {
    summary = "Show a ruleset's settings: every key with its default, type and meaning",
    usage = "retape rules show [NAME|FILE] [--json]",
    details = "Without NAME, the default ruleset.  Any key listed can be changed with replay --set KEY=VALUE\n"
           .. "or --config FILE; a rule file reads them as R.config.KEY.  The range column is what the ruleset\n"
           .. "declares worth searching (R.ranges: min..max step; sweep --grid KEY and --random use it) or the\n"
           .. "words a setting takes (R.enums).",
    options = {
      { name = "json", type = "flag", help = "print the settings as JSON" },
    },
    run = function(o, pos)
      if pos[1] ~= "show" then args.usage_error(pos[1] and ("unknown subcommand '" .. pos[1] .. "'") or "missing subcommand 'show'") end
      local rules = require "retape.rules"
      local ok, R = pcall(rules.load, pos[2] or rules.default)
      if not ok then return fail("rules", tostring(R)) end
      local doc = require "retape.rules_doc"
      local rok, rerr = pcall(doc.check_ranges, R)
      if not rok then return fail("rules", tostring(rerr)) end
      local list = doc.settings(R)
      if o.json then
        out("%s", require("retape.json").encode(list, { "key", "default", "type", "range", "meaning" }))
        return 0
      end
      out("ruleset %s%s%s", R.name, R.extends and (" (extends " .. R.extends .. ")") or "",
        R.description and (": " .. R.description) or "")
      out("%d settings; change one with --set KEY=VALUE\n", #list)
      for _, r in ipairs(list) do
        if utf8.len(r.default) and utf8.len(r.default) > 28 then r.default = r.default:sub(1, 25) .. "..." end
      end
      out("%s", require("retape.views").text_table({ { "key", "setting" }, { "default", "default" }, { "type", "type" },
        { "range", "range" }, { "meaning", "meaning" } }, list))
      return 0
    end,
  })
end
