-- The commands that read a store's results: lanes, trades, ledger.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local rtime = require "retape.time"
local json = require "retape.json"
local common = require "retape.cli.common"

local with_store_options = common.with_store_options

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("lanes", {
    summary = "Show the 8 Kanban lanes and their tickers (end of the run, or as of a time of day)",
    usage = "retape lanes --state DIR [--date D --at HH:MM] [--json | --csv]",
    options = with_store_options {
      { name = "rules", arg = "NAME|FILE", help = "ruleset defining the lanes (default: the store's)" },
      { name = "date", arg = "YYYY-MM-DD", help = "day of --at" },
      { name = "at", arg = "HH:MM|MS", help = "lanes as of the end of this bucket (New York time with --date, or 'YYYY-MM-DD HH:MM')" },
      { name = "json", type = "flag", help = "print the lanes as JSON" },
      { name = "csv", type = "flag", help = "one CSV line per ticker: lane,title,ticker,badge" },
    },
    run = function(o)
      if o.json and o.csv then args.usage_error("give --json or --csv, not both") end
      local at = o.at and common.parse_time(o.at, o.date, "--at")
      local st, err = common.open_store(o)
      if not st then return fail("lanes", err) end
      local R, rerr
      if o.rules then R = common.load_rules(o.rules) else R, rerr = common.store_rules(st) end
      if not R then st:close(); return fail("lanes", rerr) end
      local results = require "retape.results"
      local lanes = results.lanes(st, R, at)
      local badges = results.badges(st, R, at)
      st:close()
      if o.json or o.csv then -- one shape per array: every ticker an object {ticker, badge}
        local csv = {}
        for _, l in ipairs(lanes) do
          for i, T in ipairs(l.tickers) do
            local badge = badges[T] or json.null
            l.tickers[i] = { ticker = T, badge = badge }
            csv[#csv + 1] = { lane = l.lane, title = l.title, ticker = T, badge = badges[T] }
          end
        end
        if o.csv then
          out("%s", require("retape.views").csv({ { "lane" }, { "title" }, { "ticker" }, { "badge" } }, csv))
        else
          out("%s", json.encode(lanes, { "lane", "title", "stages", "tickers", "ticker", "badge" }))
        end
      else
        if at then out("lanes as of %s", rtime.format_ny(at)) end
        common.lane_lines(out, lanes, badges)
      end
      return 0
    end,
  })

  -- times: New York with the zone in text, ISO-8601 with the offset in CSV (retape.metrics)
  local TRADE_COLUMNS = {
    { "id", "trade" }, { "ticker", "ticker" }, { "direction", "dir" }, { "status", "status" },
    { "entry_time", "entry time" }, { "entryPrice", "entry", "%.2f", true }, { "trimmed", "trimmed", nil, true },
    { "exitPrice", "exit", "%.2f", true }, { "exitReason", "exit reason" }, { "pnl", "P&L", "%.2f", true },
  }
  local VIEW_COLUMNS = {
    day = {
      { "day", "day" }, { "entries", "entries", nil, true }, { "trims", "trims", nil, true }, { "exits", "exits", nil, true },
      { "wins", "wins", nil, true }, { "losses", "losses", nil, true }, { "flat", "flat", nil, true },
      { "realized", "realized P&L", "%.2f", true },
    },
    pnl = {
      { "ticker", "ticker" }, { "trades", "trades", nil, true }, { "open", "open", nil, true },
      { "realized", "realized", "%.2f", true }, { "unrealized", "unrealized", "%.2f", true }, { "total", "total", "%.2f", true },
    },
    history = {
      { "time", "time" }, { "ticker", "ticker" }, { "direction", "dir" }, { "type", "event" },
      { "price", "price", "%.2f", true }, { "shares", "shares", "%.4f", true }, { "value", "value", "%.2f", true },
      { "reason", "reason" }, { "trade_id", "trade" },
    },
  }

  command("trades", {
    summary = "Show the simulated trades: Trade By Day, Trade By P&L, Trade History",
    usage = "retape trades --state DIR [--by day|pnl|history] [--json | --csv]",
    details = "Without --by: one line per trade; with --json the trades in the original's timed:trades:all\n"
           .. "array format (entryTime descending).  Days are the ruleset's day keys: UTC dates for the\n"
           .. "parity ruleset (as the original), New York trading days for the default one (--day-key).\n"
           .. "--by day with --db: open positions are marked at each day's close, read from the receipts.",
    options = with_store_options {
      { name = "by", arg = "VIEW", help = "day | pnl | history" },
      { name = "days", arg = "N", type = "integer", help = "--by pnl: only the last N days" },
      { name = "day-key", arg = "ny|utc", help = "day of an event: New York or UTC date (default: the ruleset's)" },
      { name = "ticker", arg = "T[,T...]", help = "only these tickers" },
      { name = "json", type = "flag", help = "JSON output" },
      { name = "csv", type = "flag", help = "CSV output" },
    },
    run = function(o)
      if o.json and o.csv then args.usage_error("give --json or --csv, not both") end
      if o.by and not VIEW_COLUMNS[o.by] then args.usage_error("--by expects day, pnl or history, got '%s'", o.by) end
      local st, err = common.open_store(o)
      if not st then return fail("trades", err) end
      local views = require "retape.views"
      local trades = require("retape.results").trades(st)
      local store_R = common.store_rules(st, "worker-2026-02-02")
      local day_key = o.day_key
      if not day_key then -- the day keys of the ruleset that made the store (UTC for the parity one)
        day_key = store_R and store_R.views and store_R.views.day_key or "utc"
      end
      if day_key ~= "ny" and day_key ~= "utc" then args.usage_error("--day-key expects ny or utc, got '%s'", day_key) end
      local vopts = { day_key = day_key, rules = store_R } -- its trade_is_open says which trades are open
      st:close()
      if o.ticker then
        local keep = {}
        for _, T in ipairs(require("retape.scope").ticker_list(o.ticker)) do keep[T] = true end
        local f = {}
        for _, t in ipairs(trades) do if keep[t.ticker] then f[#f + 1] = t end end
        trades = f
      end
      local rows, columns
      local metrics = require "retape.metrics"
      local stamp = o.csv and metrics.iso or metrics.time
      if not o.by then
        if o.json then out("%s", json.encode(trades, store_R and store_R.trade_order)); return 0 end
        rows, columns = {}, TRADE_COLUMNS
        for i, t in ipairs(trades) do
          rows[i] = setmetatable({ entry_time = stamp(t.entry_ts), trimmed = o.csv and (t.trimmedPct or 0) * 100 or metrics.trimmed(t) },
            { __index = t })
        end
      elseif o.by == "day" then
        if o.db then -- each day's closing prices from the receipts
          local ds = {}
          for _, d in ipairs(views.by_day(trades, vopts)) do ds[#ds + 1] = d.day end
          local closes, cerr = views.day_closes(o.db, ds)
          if not closes then return fail("trades", cerr) end
          vopts.closes = closes
        end
        rows = views.by_day(trades, vopts)
        if o.json then
          out("%s", json.encode(rows, { "day", "entries", "trims", "exits", "wins", "losses", "flat", "realized", "trades" }))
          return 0
        end
        columns = VIEW_COLUMNS.day
      elseif o.by == "pnl" then
        rows, columns = views.by_pnl(trades, o.days, vopts), VIEW_COLUMNS.pnl
      else
        rows, columns = views.history(trades, vopts), VIEW_COLUMNS.history
        for _, r in ipairs(rows) do r.time = (o.csv or o.json) and metrics.iso(r.ts) or metrics.time(r.ts) end
      end
      if o.json then out("%s", json.encode(rows)); return 0 end
      if o.csv then out("%s", views.csv(columns, rows)); return 0 end
      out("%s", views.text_table(columns, rows))
      if o.by == "day" then
        for _, d in ipairs(rows) do
          out("\n%s", d.day)
          out("%s", views.text_table({
            { "ticker", "ticker" }, { "direction", "dir" }, { "entry", "entry", "%.2f", true },
            { "close", "close", "%.2f", true }, { "trim_price", "trim price", "%.2f", true },
            { "exit_price", "exit", "%.2f", true }, { "exit_reason", "exit reason" },
            { "remaining", "remaining", "%.4f", true }, { "realized", "realized", "%.2f", true },
            { "unrealized", "unrealized", "%.2f", true } }, d.trades))
        end
      end
      return 0
    end,
  })

  command("ledger", {
    summary = "Sync trades, trade events and latest lanes from a state store into an SQLite ledger",
    usage = "retape ledger --state DIR --out FILE",
    details = "Tables trades, trade_events (the original D1 ledger's shape) and ticker_latest are made equal\n"
           .. "to the store in one transaction: running it twice changes nothing.",
    options = with_store_options {
      { name = "out", arg = "FILE", help = "ledger database (may be the receipts file)" },
    },
    run = function(o)
      if not o.out then args.usage_error("missing --out FILE") end
      local st, err = common.open_store(o)
      if not st then return fail("ledger", err) end
      local ok, res = pcall(require("retape.ledger").sync, st, o.out)
      st:close()
      if not ok then return fail("ledger", res) end
      out("ledger %s: %d trades, %d events, %d tickers", o.out, res.trades, res.events, res.tickers)
      return 0
    end,
  })
end
