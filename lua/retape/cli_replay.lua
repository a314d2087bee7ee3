-- The replay commands of the CLI: replay, lanes, trades, ledger.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local core = require "retape.core"
local rtime = require "retape.time"
local json = require "retape.json"

local function stderr(fmt, ...) io.stderr:write(string.format(fmt, ...)) end

-- "HH:MM" (New York, on `date`) or milliseconds -> bucket ms
local function parse_bucket(value, date)
  local ms = math.tointeger(tonumber(value))
  if ms then return ms end
  local h, m = tostring(value):match("^(%d%d?):(%d%d)$")
  if not h then args.usage_error("--bucket expects HH:MM (New York) or milliseconds, got '%s'", value) end
  if not date then args.usage_error("--bucket HH:MM needs --date") end
  local y, mo, d = rtime.parse_date(date)
  if not y then args.usage_error("--date: bad date '%s'", date) end
  return rtime.from_ny(y, mo, d, tonumber(h), tonumber(m))
end

local function group(n)
  local s = string.format("%d", math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^(-?),", "%1"))
end

-- Progress bar on stderr: buckets done/total, rows/s, trades so far.
local function progress_bar(started)
  local last = 0
  return function(p)
    local now = core.monotonic_ms()
    if p.index < p.total and now - last < 100 then return end
    last = now
    local width = 30
    local filled = math.floor(width * p.index / p.total)
    local secs = math.max((now - started) / 1000, 1e-3)
    stderr("\r[%s%s] %d/%d buckets  %s rows/s  %d trades%s", string.rep("#", filled), string.rep(".", width - filled),
      p.index, p.total, group(p.rows / secs), p.trades, p.errors > 0 and ("  " .. p.errors .. " errors") or "")
    if p.index == p.total then stderr("\n") end
  end
end

local function state_dir(o)
  if o.state then return o.state end
  if o.db then return o.db .. ".state" end
  args.usage_error("missing --state DIR")
end

local function lane_lines(out, lanes, meta_of)
  for _, l in ipairs(lanes) do
    local names = {}
    for i, T in ipairs(l.tickers) do
      local m = meta_of and meta_of[T]
      names[i] = (m and m.bucket == "defend") and (T .. " 🛡") or T
    end
    out("%-13s %3d  %s", l.title, #l.tickers, table.concat(names, " "))
  end
end

-- --state / --db, shared by the commands that read a store
local function with_store_options(list)
  table.insert(list, 1, { name = "db", arg = "FILE", help = "receipts database (for the default --state FILE.state)" })
  table.insert(list, 1, { name = "state", arg = "DIR", help = "state store of a replay" })
  return list
end

-- Loads a ruleset and applies --config FILE then every --set KEY=VALUE;
-- any unknown key or wrong type is an error before anything runs.
local function load_rules(spec, o)
  local rules = require "retape.rules"
  local ok, R = pcall(rules.load, spec)
  if not ok then error(R, 0) end
  if o and o.config then
    local t, where = rules.load_config_file(o.config)
    rules.apply_overrides(R, t, where)
  end
  if o and o.set and #o.set > 0 then
    local sets = {}
    for _, text in ipairs(o.set) do
      local k, v = rules.parse_set(text)
      sets[k] = v
    end
    rules.apply_overrides(R, sets, "--set")
  end
  return R
end

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("replay", {
    summary = "Re-run receipts bucket by bucket through the lane rules and the trade simulator",
    usage = "retape replay --db FILE [--state DIR] [--date D | --from D --to D] [OPTIONS]",
    details = "Walks the 09:30-16:00 ET buckets of the day(s) in (bucket, ts, receipt_id) order, classifies every\n"
           .. "receipt into the 8 lanes and simulates the trades the lanes imply.  State and trades live in the\n"
           .. "RocksDB store (--state, default FILE.state), committed once per bucket with the replay cursor;\n"
           .. "--resume continues an interrupted run of the same scope.  --bucket/--limit/--offset reproduce the\n"
           .. "original endpoint's paging (one call = one page); --json prints its response object.",
    options = {
      { name = "db", arg = "FILE", help = "receipts database (ingest_receipts)" },
      { name = "state", arg = "DIR", help = "state store directory (default: FILE.state)" },
      { name = "rules", arg = "NAME|FILE", help = "ruleset: bundled name or a .lua file", default = "default" },
      { name = "set", arg = "KEY=VALUE", repeat_ = true, help = "override one setting of the ruleset's config (repeatable)" },
      { name = "config", arg = "FILE.lua", help = "a Lua file returning a table of config overrides" },
      { name = "max-instructions", arg = "N", type = "integer", help = "rule budget per receipt (default 5,000,000; rule files always, shipped rules when given)" },
      { name = "max-memory-mb", arg = "N", type = "integer", help = "memory a rule may add per receipt (default 64)" },
      { name = "date", arg = "YYYY-MM-DD", help = "trading day (default: today in New York)" },
      { name = "from", arg = "YYYY-MM-DD", help = "first day of a range (state carries over)" },
      { name = "to", arg = "YYYY-MM-DD", help = "last day of a range" },
      { name = "ticker", arg = "T[,T...]", help = "only these tickers" },
      { name = "bucket", arg = "HH:MM|MS", help = "only this 5-minute bucket (New York time with --date, or ms)" },
      { name = "limit", arg = "N", type = "integer", help = "rows per page within --bucket" },
      { name = "offset", arg = "N", type = "integer", help = "first row of the page within --bucket", default = 0 },
      { name = "clean-slate", type = "flag", help = "first purge the scope's trades and entry stamps" },
      { name = "resume", type = "flag", help = "continue after the last committed bucket of this scope" },
      { name = "script-version", arg = "V", help = "keep script_version = V or NULL", default = "2.5.0" },
      { name = "all-versions", type = "flag", help = "no script_version filter" },
      { name = "batch", arg = "N", type = "integer", help = "rows fetched per round trip (results never depend on it)" },
      { name = "trace", arg = "FILE", help = "write one JSON line per processed receipt" },
      { name = "ledger", arg = "FILE", help = "sync trades and lanes to this SQLite ledger afterwards" },
      { name = "json", type = "flag", help = "print the response object instead of the summary" },
      { name = "quiet", type = "flag", help = "no progress bar, no per-receipt error lines" },
    },
    run = function(o)
      if not o.db then args.usage_error("missing --db FILE") end
      if (o.from or o.to) and o.date then args.usage_error("give --date or --from/--to, not both") end
      local trace_fh, trace_err
      if o.trace then
        trace_fh, trace_err = io.open(o.trace, "w")
        if not trace_fh then return fail("replay", trace_err) end
      end
      local started = core.monotonic_ms()
      local show_progress = not o.quiet and not o.json and core.isatty(2)
      local errors_shown = 0
      local replay = require "retape.replay"
      local ok_rules, R = pcall(load_rules, o.rules, o)
      if not ok_rules then return fail("replay", R) end
      local logs = {}
      require("retape.sandbox").set_log(trace_fh and function(msg, where) logs[#logs + 1] = { msg, where } end or nil)
      local rp, err = replay.open {
        db = o.db, state = state_dir(o), rules = R, batch = o.batch,
        limits = (o.max_instructions or o.max_memory_mb)
          and { instructions = o.max_instructions, memory_mb = o.max_memory_mb } or nil,
        script_version = (not o.all_versions) and o.script_version or false,
        trace = trace_fh and function(r)
          trace_fh:write(json.encode_row(r, replay.TRACE_COLUMNS), "\n")
          for _, l in ipairs(logs) do -- the rule's log() lines of this receipt follow its line
            trace_fh:write(json.encode({ receipt_id = r.receipt_id, ticker = r.ticker, log = l[1], where = l[2] },
              { "receipt_id", "ticker", "log", "where" }), "\n")
          end
          logs = {}
        end,
        on_error = function(m)
          errors_shown = errors_shown + 1
          if not o.quiet and errors_shown <= 20 then stderr("%sretape replay: %s\n", show_progress and "\n" or "", m) end
        end,
        on_bucket = show_progress and progress_bar(started) or nil,
      }
      if not rp then
        if trace_fh then trace_fh:close() end
        return fail("replay", err)
      end
      local ok, resp = pcall(rp.run, rp, {
        date = o.date, from = o.from, to = o.to, ticker = o.ticker,
        bucket = o.bucket and parse_bucket(o.bucket, o.date or o.from),
        limit = o.limit, offset = o.offset, clean_slate = o.clean_slate, resume = o.resume,
      })
      if trace_fh then trace_fh:close() end
      local lanes, meta_of
      if ok then
        meta_of = {}
        rp.store:each_latest(function(T, p) meta_of[T] = p.kanban_meta end)
        lanes = replay.lanes(rp.store, rp.R)
      end
      local store_ref = rp.store
      local synced
      if ok and o.ledger then synced = require("retape.ledger").sync(store_ref, o.ledger) end
      rp:close()
      if not ok then
        if replay.is_param_error(resp) then return fail("replay", tostring(resp)) end
        error(resp, 0)
      end
      if o.json then
        out("%s", json.encode(resp, { "ok", "date", "ticker", "bucketProcessed", "bucketOffset", "rowsProcessed",
          "tradesCreated", "tradesPurged", "nextBucket", "nextBucketOffset", "hasMore", "hasMoreInBucket" }))
        return 0
      end
      local secs = (core.monotonic_ms() - started) / 1000
      local what = resp.from and (resp.from .. " to " .. resp.to) or resp.date
      out("replayed %s%s: %d buckets, %s rows, %d errors", what,
        resp.ticker ~= json.null and (" (" .. resp.ticker .. ")") or "", resp.buckets, group(resp.rowsProcessed), resp.errors)
      out("trades: %d created, %d purged", resp.tradesCreated, resp.tradesPurged)
      if resp.hasMore then
        out("more: next bucket %s, offset %s", tostring(resp.nextBucket ~= json.null and resp.nextBucket or resp.bucketProcessed),
          tostring(resp.nextBucketOffset ~= json.null and resp.nextBucketOffset or 0))
      end
      out("lanes at the end:")
      lane_lines(out, lanes, meta_of)
      if synced then out("ledger %s: %d trades, %d events, %d tickers", o.ledger, synced.trades, synced.events, synced.tickers) end
      io.stdout:flush()
      io.stderr:write(string.format("time %.2f s, %s rows/s\n", secs, group(resp.rowsProcessed / math.max(secs, 1e-3))))
      return 0
    end,
  })

  command("lanes", {
    summary = "Show the 8 Kanban lanes and their tickers (end of the run, or as of a time of day)",
    usage = "retape lanes --state DIR [--date D --at HH:MM] [--json | --csv]",
    options = with_store_options {
      { name = "rules", arg = "NAME|FILE", help = "ruleset defining the lanes", default = "worker-2026-02-02" },
      { name = "date", arg = "YYYY-MM-DD", help = "day of --at" },
      { name = "at", arg = "HH:MM|MS", help = "lanes as of the end of this bucket (New York time with --date)" },
      { name = "json", type = "flag", help = "print the lanes as JSON" },
      { name = "csv", type = "flag", help = "one CSV line per ticker: lane,title,ticker,badge" },
    },
    run = function(o)
      if o.json and o.csv then args.usage_error("give --json or --csv, not both") end
      local R = load_rules(o.rules)
      local st, err = require("retape.store").open(state_dir(o), true)
      if not st then return fail("lanes", err) end
      local at = o.at and parse_bucket(o.at, o.date)
      local replay = require "retape.replay"
      local lanes = replay.lanes(st, R, at)
      local meta_of = {}
      if not at then st:each_latest(function(T, p) meta_of[T] = p.kanban_meta end) end
      st:close()
      if o.json or o.csv then -- one shape per array: every ticker an object {ticker, badge}
        local csv = {}
        for _, l in ipairs(lanes) do
          for i, T in ipairs(l.tickers) do
            local m = meta_of[T]
            local badge = (m and m.bucket == "defend") and "defend" or json.null
            l.tickers[i] = { ticker = T, badge = badge }
            csv[#csv + 1] = { lane = l.lane, title = l.title, ticker = T, badge = badge ~= json.null and badge or nil }
          end
        end
        if o.csv then
          out("%s", require("retape.views").csv({ { "lane" }, { "title" }, { "ticker" }, { "badge" } }, csv))
        else
          out("%s", json.encode(lanes, { "lane", "title", "stages", "tickers", "ticker", "badge" }))
        end
      else
        if at then out("lanes as of %s", rtime.format_ny(at)) end
        lane_lines(out, lanes, meta_of)
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
      local st, err = require("retape.store").open(state_dir(o), true)
      if not st then return fail("trades", err) end
      local replay, views = require "retape.replay", require "retape.views"
      local trades = replay.trades(st)
      local day_key = o.day_key
      if not day_key then -- the day keys of the ruleset that made the store (UTC for the parity one)
        local runs = replay.runs(st)
        local last = runs[#runs]
        local ok, R = pcall(require("retape.rules").load, last and last.rules or "worker-2026-02-02")
        day_key = ok and R.views and R.views.day_key or "utc"
      end
      if day_key ~= "ny" and day_key ~= "utc" then args.usage_error("--day-key expects ny or utc, got '%s'", day_key) end
      local vopts = { day_key = day_key }
      st:close()
      if o.ticker then
        local keep = {}
        for _, T in ipairs(replay.ticker_list(o.ticker)) do keep[T] = true end
        local f = {}
        for _, t in ipairs(trades) do if keep[t.ticker] then f[#f + 1] = t end end
        trades = f
      end
      local rows, columns
      local metrics = require "retape.metrics"
      local stamp = o.csv and metrics.iso or metrics.time
      if not o.by then
        if o.json then out("%s", json.encode(trades, require("retape.store").TRADE_ORDER)); return 0 end
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
      local st, err = require("retape.store").open(state_dir(o), true)
      if not st then return fail("ledger", err) end
      local ok, res = pcall(require("retape.ledger").sync, st, o.out)
      st:close()
      if not ok then return fail("ledger", res) end
      out("ledger %s: %d trades, %d events, %d tickers", o.out, res.trades, res.events, res.tickers)
      return 0
    end,
  })

  command("test", {
    summary = "Run regression cases (golden lanes and trades, script cases) and report the first divergence",
    usage = "retape test [PATH...] [--diff] [--bless] [--repeat N] [--page-sizes]",
    details = "A case is a directory with a case.lua (a manifest with expected/lanes.txt and expected/trades.txt,\n"
           .. "or a function(t) making assertions); with no PATH, every case under ./tests.  Ends with\n"
           .. "'N passed, N failed'.  --bless rewrites the expected files from the current results.",
    options = {
      { name = "diff", type = "flag", help = "list every difference, not only the first" },
      { name = "bless", type = "flag", help = "rewrite the expected files of the cases from the current results" },
      { name = "repeat", arg = "N", type = "integer", help = "run each case N times; any byte of difference fails" },
      { name = "page-sizes", type = "flag", help = "rerun with pages of 7 and 50 and a crash+resume; any difference fails" },
    },
    run = function(o, pos)
      local ok = require("retape.regress").run(pos, { diff = o.diff, bless = o.bless, ["repeat"] = o["repeat"],
                                                      page_sizes = o.page_sizes })
      return ok and 0 or 1
    end,
  })

  command("explain", {
    summary = "Show why one receipt landed in its lane: inputs, score parts, enter paths, deciding rule",
    usage = "retape explain --db FILE --date D --ticker T --at HH:MM [--rules NAME|FILE] [--json]",
    details = "Replays the day on a scratch store and explains the ticker's last receipt at or before --at.",
    options = {
      { name = "db", arg = "FILE", help = "receipts database" },
      { name = "date", arg = "YYYY-MM-DD", help = "trading day" },
      { name = "ticker", arg = "T", help = "ticker" },
      { name = "at", arg = "HH:MM", help = "New York time" },
      { name = "rules", arg = "NAME|FILE", help = "ruleset", default = "default" },
      { name = "set", arg = "KEY=VALUE", repeat_ = true, help = "override one setting of the ruleset's config (repeatable)" },
      { name = "config", arg = "FILE.lua", help = "a Lua file returning a table of config overrides" },
      { name = "json", type = "flag", help = "print the explanation as JSON" },
    },
    run = function(o)
      for _, k in ipairs { "db", "date", "ticker", "at" } do
        if not o[k] then args.usage_error("missing --%s", k) end
      end
      local at = parse_bucket(o.at, o.date) + 299999
      local T = require("retape.replay").ticker_list(o.ticker)[1]
      local ok_rules, R = pcall(load_rules, o.rules, o)
      if not ok_rules then return fail("explain", R) end
      local classify, inside, captured = R.classify, false, nil
      R.classify = function(d)
        if not inside and d.ticker == T and d.ts <= at then
          inside = true
          local ok, e = pcall(R.explain, d)
          inside = false
          if not ok then error(e, 0) end
          captured = e
          captured.ts = d.ts
        end
        return classify(d)
      end
      local final
      local dir = os.tmpname()
      os.remove(dir)
      local rp, err = require("retape.replay").open { db = o.db, state = dir, rules = R,
        on_row = function(row, p, ex, _, _, forced)
          if row.ticker == T and row.ts <= at then
            final = { stage = p.kanban_stage, prev = ex.kanban_stage, receipt_id = row.receipt_id, forced = forced }
          end
        end }
      if not rp then return fail("explain", err) end
      local ok, res = pcall(rp.run, rp, { date = o.date, ticker = T })
      rp:close()
      os.execute("rm -rf '" .. dir .. "'")
      if not ok then
        if require("retape.replay").is_param_error(res) then return fail("explain", tostring(res)) end
        error(res, 0)
      end
      if not captured or not final then return fail("explain", string.format("no receipt of %s on %s at or before %s", T, o.date, o.at)) end
      captured.final_stage, captured.forced, captured.prev_stage, captured.receipt_id =
        final.stage, final.forced, final.prev, final.receipt_id
      if o.json then out("%s", json.encode(captured)); return 0 end
      local x = captured
      out("%s at %s  (receipt %s)", T, rtime.format_ny(math.tointeger(x.ts), true), x.receipt_id)
      out("\ninputs:")
      local keys = {}
      for k in pairs(x.inputs) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = x.inputs[k]
        out("  %-15s %s", k, type(v) == "number" and json.number(v) or tostring(v))
      end
      out("\nmove status: %s, severity %s%s", x.move.status, x.move.severity,
        #x.move.reasons > 0 and (", reasons: " .. table.concat(x.move.reasons, ", ")) or "")
      if x.score_parts then
        out("\nscore fallback: base %s", json.number(x.score_base))
        for _, part in ipairs(x.score_parts) do out("  %+8.2f  %s", part[2], part[1]) end
      end
      out("\nenter paths (momentum names only):")
      for _, path in ipairs(x.paths or {}) do out("  %s  %-5s  %s", path[1], tostring(path[3]), path[2]) end
      out("\nstage %s, by rule: %s", tostring(x.stage), x.rule)
      out("final stage %s%s (previous: %s)", tostring(x.final_stage), x.forced and (", forced by " .. x.forced) or "",
        tostring(x.prev_stage))
      return 0
    end,
  })

  command("runs", {
    summary = "List the run manifests recorded in a state store",
    usage = "retape runs --state DIR [--json]",
    options = with_store_options {
      { name = "json", type = "flag", help = "print the manifests as JSON (with the effective config)" },
    },
    run = function(o)
      local st, err = require("retape.store").open(state_dir(o), true)
      if not st then return fail("runs", err) end
      local replay = require "retape.replay"
      local list = replay.runs(st)
      st:close()
      if o.json then out("%s", json.encode(list, replay.MANIFEST_ORDER)); return 0 end
      local rows = {}
      for i, m in ipairs(list) do
        local p = m.params or {}
        local scope = p.date ~= nil and p.date ~= json.null and p.date or ((p.from or "?") .. ".." .. (p.to or "?"))
        if p.ticker and p.ticker ~= json.null then scope = scope .. " " .. p.ticker end
        if p.bucket and p.bucket ~= json.null then scope = scope .. " @" .. rtime.format_ny(p.bucket):match("%d%d:%d%d") end
        local r = m.response or {}
        local n = 0
        for _ in pairs(m.overrides or {}) do n = n + 1 end
        local int = math.tointeger
        local fin = require("retape.views").iso_ms(m.finished)
        rows[i] = { seq = int(m.seq), finished = fin and require("retape.metrics").time(fin, true) or m.finished, rules = m.rules .. (n > 0 and (" +" .. n .. " overrides") or ""),
          scope = scope, rows = int(r.rowsProcessed), trades = int(r.tradesCreated), receipts = m.receipts and m.receipts.hash,
          results = m.results and (m.results.lanes_hash .. "/" .. m.results.trades_hash) or "(partial)" }
      end
      out("%s", require("retape.views").text_table({
        { "seq", "run", nil, true }, { "finished", "finished" }, { "rules", "rules" }, { "scope", "scope" },
        { "rows", "rows", nil, true }, { "trades", "trades", nil, true }, { "receipts", "receipts hash" },
        { "results", "lanes/trades hash" } }, rows))
      return 0
    end,
  })

  command("diff", {
    summary = "Compare two replays of the same receipts: trades, lanes per ticker, totals",
    usage = "retape diff STATE_A STATE_B [--json] [--all]",
    details = "Names A and B (path, ruleset, overrides, settings that differ) and warns when they replayed\n"
           .. "different receipts.  Exits 0 when trades and lanes are the same, 1 when they differ (as diff(1)).",
    options = {
      { name = "json", type = "flag", help = "print the report as JSON" },
      { name = "all", type = "flag", help = "list every ticker whose lanes differ (default: the first 20)" },
    },
    run = function(o, pos)
      if #pos ~= 2 then args.usage_error("expected two state stores") end
      local storem = require "retape.store"
      local a, err = storem.open(pos[1], true)
      if not a then return fail("diff", err) end
      local b, err2 = storem.open(pos[2], true)
      if not b then a:close(); return fail("diff", err2) end
      local diff = require "retape.diff"
      local report = diff.compare(a, b)
      local da, db = diff.describe(a, pos[1]), diff.describe(b, pos[2])
      a:close()
      b:close()
      local status = diff.differs(report) and 1 or 0
      local same_receipts = da.receipts ~= nil and da.receipts == db.receipts
      if not same_receipts then
        io.stderr:write(string.format("retape diff: warning: A and B replayed different receipts (A %s, B %s)\n",
          tostring(da.receipts), tostring(db.receipts)))
      end
      if o.json then
        report.a = { path = da.path, rules = da.rules, overrides = da.overrides, receipts = da.receipts or json.null }
        report.b = { path = db.path, rules = db.rules, overrides = db.overrides, receipts = db.receipts or json.null }
        report.same_receipts = same_receipts
        report.config = diff.config_differences(da, db)
        -- what was compared (paths) goes last, after the differences
        out("%s", json.encode(report, { "added", "removed", "changed", "lanes", "totals", "same_receipts", "config",
          "trade", "fields", "field", "ticker", "first", "ts", "receipts", "of", "a", "b" })); return status
      end
      for _, d in ipairs { { "A", da }, { "B", db } } do
        out("%s: %s  rules %s%s", d[1], d[2].path, d[2].rules,
          #d[2].overrides > 0 and ("  (" .. table.concat(d[2].overrides, ", ") .. ")") or "")
      end
      local cd = diff.config_differences(da, db)
      for i, c in ipairs(cd) do
        if i > 10 and not o.all then out("  ... %d more settings differ (--all)", #cd - 10); break end
        out("  setting %s: A %s, B %s", c.key, c.a, c.b)
      end
      out("")
      local ta, tb = report.totals.a, report.totals.b
      out("%-18s %14s %14s", "", "A", "B")
      for _, row in ipairs {
        { "trades", "%14d", "trades" }, { "wins", "%14d", "wins" }, { "losses", "%14d", "losses" },
        { "flat", "%14d", "flat" }, { "open", "%14d", "open" }, { "win rate", "%13.1f%%", "win_rate", 100 },
        { "realized P&L", "%14.2f", "realized" }, { "unrealized P&L", "%14.2f", "unrealized" }, { "total P&L", "%14.2f", "pnl" } } do
        local k, scale = row[3], row[4] or 1
        out("%-18s " .. row[2] .. " " .. row[2], row[1], ta[k] * scale, tb[k] * scale)
      end
      out("\ntrades: %d only in A, %d only in B, %d changed", #report.removed, #report.added, #report.changed)
      for _, k in ipairs(report.removed) do out("  - %s", k) end
      for _, k in ipairs(report.added) do out("  + %s", k) end
      for _, c in ipairs(report.changed) do
        local parts = {}
        for _, f in ipairs(c.fields) do
          local function show(v)
            if v == json.null then return "-" end
            return type(v) == "number" and json.number(v) or tostring(v)
          end
          parts[#parts + 1] = string.format("%s %s -> %s", f.field, show(f.a), show(f.b))
        end
        out("  ~ %s: %s", c.trade, table.concat(parts, "; "))
      end
      out("\nlanes differ for %d tickers (first receipt where they part):", #report.lanes)
      for i, l in ipairs(report.lanes) do
        if i > 20 and not o.all then out("  ... %d more (--all)", #report.lanes - 20); break end
        out("  %-6s %s  A %s, B %s  (%d of %d receipts differ)", l.ticker, rtime.format_ny(math.tointeger(l.first.ts), true),
          l.first.a, l.first.b, l.receipts, l.of)
      end
      return status
    end,
  })
end
