-- The report commands of the CLI: `report` (one self-contained HTML file of
-- a state store) and `rules show` (every setting of a ruleset).
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"

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

  command("rules", {
    summary = "Show a ruleset's settings: every key with its default, type and meaning",
    usage = "retape rules show [NAME|FILE] [--json]",
    details = "Without NAME, the default ruleset.  Any key listed can be changed with replay --set KEY=VALUE\n"
           .. "or --config FILE; a rule file reads them as R.config.KEY.",
    options = {
      { name = "json", type = "flag", help = "print the settings as JSON" },
    },
    run = function(o, pos)
      if pos[1] ~= "show" then args.usage_error(pos[1] and ("unknown subcommand '" .. pos[1] .. "'") or "missing subcommand 'show'") end
      local rules = require "retape.rules"
      local ok, R = pcall(rules.load, pos[2] or rules.default)
      if not ok then return fail("rules", tostring(R)) end
      local list = require("retape.rules_doc").settings(R)
      if o.json then
        out("%s", require("retape.json").encode(list, { "key", "default", "type", "meaning" }))
        return 0
      end
      out("ruleset %s%s%s", R.name, R.extends and (" (extends " .. R.extends .. ")") or "",
        R.description and (": " .. R.description) or "")
      out("%d settings; change one with --set KEY=VALUE\n", #list)
      for _, r in ipairs(list) do
        if utf8.len(r.default) and utf8.len(r.default) > 28 then r.default = r.default:sub(1, 25) .. "..." end
      end
      out("%s", require("retape.views").text_table({ { "key", "setting" }, { "default", "default" }, { "type", "type" },
        { "meaning", "meaning" } }, list))
      return 0
    end,
  })
end
