-- The commands that read a store's results: lanes, trades, ledger, runs,
-- status, diff.  Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local rtime = require "retape.time"
local json = require "retape.json"
local common = require "retape.cli.common"

local with_store_options, state_dir = common.with_store_options, common.state_dir
-- a recorded override's value as JSON writes it (an integral number without ".0")
local function json_value(v) return type(v) == "number" and json.number(v) or tostring(v) end

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

  command("runs", {
    summary = "List the run manifests recorded in a state store",
    usage = "retape runs --state DIR [--json]",
    options = with_store_options {
      { name = "json", type = "flag", help = "print the manifests as JSON (with the effective config)" },
    },
    run = function(o)
      local st, err = common.open_store(o)
      if not st then return fail("runs", err) end
      local manifest = require "retape.manifest"
      local list = manifest.runs(st)
      st:close()
      if o.json then out("%s", json.encode(list, manifest.ORDER)); return 0 end
      local rows = {}
      for i, m in ipairs(list) do
        local p = m.params or {}
        local scope = p.date ~= nil and p.date ~= json.null and p.date or p.from and (p.from .. ".." .. (p.to or "?"))
          or (p.refresh and "(refresh)" or "?")
        if p.ticker and p.ticker ~= json.null then scope = scope .. " " .. p.ticker end
        if p.bucket and p.bucket ~= json.null then scope = scope .. " @" .. rtime.format_ny(p.bucket):match("%d%d:%d%d") end
        local r = m.response or {}
        local n = 0
        for _ in pairs(m.overrides or {}) do n = n + 1 end
        local int = math.tointeger
        local fin, start = rtime.parse_iso(m.finished), rtime.parse_iso(m.started)
        if p.clean_slate == true then scope = scope .. " clean slate" end
        if m.merged then scope = scope .. " (merge of " .. #m.merged .. " shards)" end
        local ov = require("retape.rules").texts(m.overrides, json_value)
        rows[i] = { seq = int(m.seq), finished = fin and require("retape.metrics").time(fin, true) or m.finished,
          took = m.duration_ms and string.format("%.1f s", m.duration_ms / 1000)
            or (fin and start) and string.format("%d s", (fin - start) // 1000) or "",
          rules = m.rules .. (n > 0 and (" " .. table.concat(ov, " ")) or ""),
          scope = scope, rows = int(r.rowsProcessed), trades = int(r.tradesCreated), receipts = m.receipts and m.receipts.hash,
          results = m.results and (m.results.lanes_hash .. "/" .. m.results.trades_hash) or "(partial)" }
      end
      out("%s", require("retape.views").text_table({
        { "seq", "run", nil, true }, { "finished", "finished" }, { "took", "took", nil, true }, { "rules", "rules + overrides" },
        { "scope", "scope" }, { "rows", "rows", nil, true }, { "trades", "trades", nil, true }, { "receipts", "receipts hash" },
        { "results", "lanes/trades hash" } }, rows))
      return 0
    end,
  })

  command("status", {
    summary = "What a state store covers: days and tickers, rules, receipts, interrupted run, stale results",
    usage = "retape status --state DIR [--json]",
    options = with_store_options {
      { name = "json", type = "flag", help = "print the status as JSON" },
    },
    run = function(o)
      local dir = state_dir(o)
      local command_line = common.command_line
      local pending = require("retape.merge").pending(dir)
      local fs = require "retape.fs"
      if pending and not fs.kind(dir .. "/CURRENT") then
        out("store %s: none; a merge into it was interrupted (its partial work is in %s)", dir,
          require("retape.merge").pending_dir(dir))
        if #pending > 0 then
          local words = { "merge", "--state", dir }
          for _, p in ipairs(pending) do words[#words + 1] = p end
          out("run the merge again (it starts over): %s", command_line(words))
        end
        return 1
      end
      local st, err = require("retape.store").open(dir, true)
      if not st then return fail("status", err) end
      local manifest = require "retape.manifest"
      local s = manifest.status(st)
      local recipe, merged = st:recipe(), st:merge_record()
      local changes
      local rec_path = manifest.receipts_path(st)
      if rec_path and fs.kind(rec_path) == "file" then
        local src = require("retape.source").open(rec_path)
        if src then
          local cok, ch = pcall(manifest.receipt_changes, st, src)
          src:close()
          if cok then changes = ch end
        end
      end
      local refresh = common.refresh_command(st, dir)
      st:close()
      if o.json then
        s.recipe = recipe and { rules = recipe.rules, spec = recipe.spec, overrides = recipe.overrides, shard = recipe.shard,
                                files = (function()
                                  local l = {}
                                  for i, f in ipairs(recipe.files or {}) do l[i] = { path = f.path, hash = f.hash } end
                                  return l
                                end)() } or nil
        s.merge = merged
        s.receipt_changes = changes
        out("%s", json.encode(s)); return 0
      end
      local id = s.identity
      out("store %s", dir)
      if not id then out("empty: nothing replayed yet"); return 0 end
      out("rules: %s (config %s, sources %s), script version %s", id.rules, id.config, id.sources,
        id.script_version == false and "any" or tostring(id.script_version))
      if recipe then
        for _, f in ipairs(recipe.files or {}) do out("  rule file %s (%s)", f.path, f.hash) end
        local ov = require("retape.rules").texts(recipe.overrides, json_value)
        if #ov > 0 then out("  overrides: %s", table.concat(ov, ", ")) end
        for _, c in ipairs(manifest.changed_files(recipe)) do
          out("  note: %s changed since (now %s): reads use the recorded source; a write needs it back or --rebuild", c.path, c.now)
        end
      end
      out("receipts: %s", rec_path or s.db or "(not recorded)")
      if merged and merged.partial then
        local have = {}
        for i, x in ipairs(merged.shards or {}) do have[i] = tostring(math.tointeger(x) or x) end
        out("partial merge: shards %s of %d only; the tickers of the others are missing", table.concat(have, ", "),
          math.tointeger(merged.of) or merged.of)
      elseif recipe and recipe.shard then
        out("shard %s of a sharded replay (retape merge combines the shards)", recipe.shard)
      end
      local days = s.days
      out("days replayed: %d", #days)
      local all = "all tickers"
      if merged and merged.partial then all = "the tickers of the merged shards"
      elseif recipe and recipe.shard then all = "the tickers of shard " .. recipe.shard end
      -- consecutive days replayed alike are one line (a two-month range is one or a few lines)
      local groups = {}
      for _, d in ipairs(days) do
        local text = d.covers
        if all ~= "all tickers" then text = text:gsub("all tickers", all) end
        local g = groups[#groups]
        if g and g.text == text then g.last, g.n = d.day, g.n + 1
        else groups[#groups + 1] = { first = d.day, last = d.day, n = 1, text = text } end
      end
      for i, g in ipairs(groups) do
        if i > 20 then out("  ... %d more (--json lists every day)", #groups - 20); break end
        if g.n == 1 then out("  %s  %s", g.first, g.text)
        else out("  %s to %s (%d days)  %s", g.first, g.last, g.n, g.text) end
      end
      if changes then
        for _, c in ipairs(changes.grown) do
          out("receipts added under %s since it was replayed (%d now, %s then): stale until replayed again: %s", c.day, c.n,
            tostring(c.was), command_line { "replay", "--state", dir, "--date", c.day })
        end
        for _, c in ipairs(changes.changed) do
          out("receipts changed under %s since it was replayed (%d now, %s then): replay it again: %s", c.day, c.n,
            tostring(c.was), command_line { "replay", "--state", dir, "--date", c.day })
        end
      elseif rec_path then
        out("receipts file %s is not readable here: added or changed receipts cannot be checked", rec_path)
      end
      if s.interrupted then
        local p = s.interrupted.params and json.decode(s.interrupted.params) or {}
        local words = { "replay", "--state", dir }
        if not rec_path then words[#words + 1] = "--db"; words[#words + 1] = s.db or "FILE" end
        if s.interrupted.phase ~= "refresh" then
          for _, k in ipairs { "date", "from", "to", "ticker", "shard" } do
            if type(p[k]) == "string" then words[#words + 1] = "--" .. k; words[#words + 1] = p[k] end
          end
          if math.tointeger(p.bucket) then words[#words + 1] = "--bucket"; words[#words + 1] = tostring(math.tointeger(p.bucket)) end
          if p.clean_slate == true then words[#words + 1] = "--clean-slate" end
        end
        words[#words + 1] = "--resume"
        if s.interrupted.phase == "refresh" then
          out("interrupted: the recomputation of stale results (started by %s); any next replay into this store "
            .. "finishes it first, or finish it: %s", s.interrupted.params, command_line(words))
        else
          out("interrupted run: %s, stopped before %s; any next replay into this store finishes it first, or continue it: %s",
            s.interrupted.params, rtime.format_ny(math.tointeger(s.interrupted.next)), command_line(words))
        end
      end
      if #s.stale > 0 then
        out("stale: %d ticker(s), recompute with '%s':", #s.stale, refresh)
        for i, x in ipairs(s.stale) do
          if i > 20 then out("  ... %d more", #s.stale - 20); break end
          out("  %-8s from %s", x.ticker, rtime.format_ny(math.tointeger(x.from)))
        end
      else
        out("stale: none")
      end
      out("runs: %d (%s)", s.runs, command_line { "runs", "--state", dir })
      return 0
    end,
  })

  command("merge", {
    summary = "Combine the stores of a sharded replay (--shard i/n) into one",
    usage = "retape merge --state OUT SHARD_STATE... [--partial] [--ledger FILE]",
    details = "Each shard replayed the tickers of its shard over the same receipts with the same rules; the\n"
           .. "merged store is byte-identical in its results to one single-process replay (versions, trades,\n"
           .. "lanes, marks, coverage) and keeps its scope, rules and receipts file.  The inputs must be shards\n"
           .. "0..n-1 of one replay, each once (--partial merges an incomplete set; status then says so).  OUT\n"
           .. "must be new; the store is built in OUT.merging and renamed when complete, so a killed merge\n"
           .. "leaves no OUT (run it again).  --ledger syncs a ledger from the merged store.",
    options = {
      { name = "state", arg = "DIR", help = "the merged store (a new directory)" },
      { name = "partial", type = "flag", help = "merge shards that are not the whole set 0..n-1 (the store says so)" },
      { name = "ledger", arg = "FILE", help = "sync trades and lanes of the merged store to this SQLite ledger" },
    },
    run = function(o, pos)
      if not o.state then args.usage_error("missing --state OUT") end
      if #pos == 0 then args.usage_error("expected the shard stores to merge") end
      local ok, counts, set = pcall(require("retape.merge").run, o.state, pos, { partial = o.partial })
      if not ok then return fail("merge", tostring(counts)) end
      local synced
      if o.ledger then
        local st, err = require("retape.store").open(o.state, true)
        if not st then return fail("merge", err) end
        local lok, res = pcall(require("retape.ledger").sync, st, o.ledger)
        st:close()
        if not lok then return fail("merge", tostring(res)) end
        synced = res
      end
      out("merged %d shards into %s: %d tickers, %d ticker-buckets, %d trades%s", #pos, o.state, counts.tickers,
        counts.versions, counts.trades, set.missing > 0 and string.format(" (partial: %d of %d shards)", #set.have, set.n) or "")
      if synced then out("ledger %s: %d trades, %d events, %d tickers", o.ledger, synced.trades, synced.events, synced.tickers) end
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
      local fs = require "retape.fs"
      if (fs.absolute(pos[1]) or pos[1]) == (fs.absolute(pos[2]) or pos[2]) then
        args.usage_error("A and B are the same store (%s)", pos[1])
      end
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
