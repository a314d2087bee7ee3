-- The `replay` command: re-run a scope of receipts into a state store.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local core = require "retape.core"
local json = require "retape.json"
local common = require "retape.cli_common"

local stderr, group = common.stderr, common.group

-- `replay --follow`, and `replay` without a day on a store kept by it:
-- the live engine (retape.live) over the receipts file.
local function live_replay(o, out, fail)
  if o.poll < 1 then args.usage_error("--poll must be a positive integer") end
  local ok_rules, R = pcall(common.load_rules, o.rules, o)
  if not ok_rules then return fail("replay", R) end
  local STOP = setmetatable({}, { __tostring = function() return "stopped" end })
  local stop
  if o.follow then core.hold_stop_signals() end
  local lv, err = require("retape.live").open {
    db = o.db, state = common.state_dir(o), rules = R, threads = o.threads,
    script_version = (not o.all_versions) and o.script_version or false,
    on_error = function(m) if not o.quiet then stderr("retape replay: %s\n", m) end end,
    -- a stop signal ends a long pass at a bucket boundary (the next start does it again)
    on_bucket = o.follow and function()
      stop = stop or core.wait_stop_signal(0)
      if stop then error(STOP, 0) end
    end or nil,
  }
  if not lv then return fail("replay", err) end
  local total = { rows = 0, recomputed = 0, passes = 0 }
  local function pass()
    local ok, done = pcall(lv.catch_up, lv)
    if not ok then
      if done == STOP then return end
      lv:close()
      error(done, 0)
    end
    if not done then return end
    total.passes, total.rows, total.recomputed = total.passes + 1, total.rows + done.rows, total.recomputed + done.recomputed
    local days = {}
    for d in pairs(done.days) do days[#days + 1] = d end
    table.sort(days)
    if not o.quiet or not o.follow then
      out("replayed %s: %s rows in %d run(s), %d later ticker-buckets recomputed (receipts up to rowid %d)",
        #days > 0 and table.concat(days, ", ") or "no session", group(done.rows), done.runs, done.recomputed, done.rowid)
      io.stdout:flush()
    end
  end
  pass()
  if o.follow then
    if not o.quiet then stderr("retape replay: following %s (SIGINT or SIGTERM to stop)\n", o.db) end
    while not stop do
      stop = core.wait_stop_signal(o.poll)
      if not stop then pass() end
    end
  elseif total.passes == 0 then
    out("nothing new since the last run")
  end
  local mark = lv.st:follow()
  lv:close()
  if o.follow then
    stderr("retape replay: %s: stopped cleanly (%d passes, %s rows; receipts replayed up to rowid %s)\n", tostring(stop),
      total.passes, group(total.rows), mark and math.tointeger(mark.rowid) or 0)
  end
  return 0
end

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("replay", {
    summary = "Re-run receipts bucket by bucket through the lane rules and the trade simulator",
    usage = "retape replay --db FILE [--state DIR] (--date D | --from D --to D | --follow) [OPTIONS]",
    details = "Walks the 09:30-16:00 ET buckets of the day(s) in (bucket, ts, receipt_id) order, classifies every\n"
           .. "receipt into the 8 lanes and simulates the trades the lanes imply.  The run replaces what the store\n"
           .. "held for its scope (days x tickers, or one bucket / page) and starts from the stored state just\n"
           .. "before it; later results that depended on the scope are recomputed (--no-cascade: marked stale).\n"
           .. "Any sequence of runs ends equal to one fresh replay of what the store covers, in time order.\n"
           .. "--clean-slate: the scope's tickers start it with no position and no entry/cycle state.\n"
           .. "--resume continues an interrupted run of the same scope and rules.  --bucket/--limit/--offset\n"
           .. "reproduce the original endpoint's paging; --json prints its response object.\n"
           .. "--follow replays every receipt of FILE, then the rows another process inserts (the app's sync, an\n"
           .. "import, `retape serve`'s webhooks) as they come, until SIGINT/SIGTERM (exit 0); the store stays equal\n"
           .. "to one fresh replay of the receipts so far.  Without a day, on a store that --follow or `retape serve`\n"
           .. "kept, replay processes only what is new since the last run (incremental).",
    options = {
      { name = "db", arg = "FILE", help = "receipts database (ingest_receipts)" },
      { name = "state", arg = "DIR", help = "state store directory (default: FILE.state)" },
      { name = "rules", arg = "NAME|FILE", help = "ruleset: bundled name or a .lua file", default = "default" },
      { name = "set", arg = "KEY=VALUE", repeat_ = true, help = "override one setting of the ruleset's config (repeatable)" },
      { name = "config", arg = "FILE.lua", help = "a Lua file returning a table of config overrides" },
      { name = "max-instructions", arg = "N", type = "integer", help = "rule budget per receipt (default 5,000,000; rule files always, shipped rules when given)" },
      { name = "max-memory-mb", arg = "N", type = "integer", help = "memory a rule may add per receipt (default 64)" },
      { name = "date", arg = "YYYY-MM-DD", help = "trading day" },
      { name = "from", arg = "YYYY-MM-DD", help = "first day of a range (state carries over)" },
      { name = "to", arg = "YYYY-MM-DD", help = "last day of a range" },
      { name = "ticker", arg = "T[,T...]", help = "only these tickers" },
      { name = "shard", arg = "I/N", help = "only the tickers of shard I of N (0 <= I < N; a stable hash of the ticker); retape merge combines the shard stores" },
      { name = "bucket", arg = "HH:MM|MS", help = "only this 5-minute bucket (New York time with --date, or ms)" },
      { name = "limit", arg = "N", type = "integer", help = "rows per page within --bucket" },
      { name = "offset", arg = "N", type = "integer", help = "first row of the page within --bucket", default = 0 },
      { name = "clean-slate", type = "flag", help = "the scope's tickers start it with no position and no entry/cycle state" },
      { name = "resume", type = "flag", help = "continue the interrupted run of this scope" },
      { name = "no-cascade", type = "flag", help = "leave later results that depended on the scope stale instead of recomputing them" },
      { name = "refresh", type = "flag", help = "recompute stale results (alone, or after the scope's run)" },
      { name = "rebuild", type = "flag", help = "recompute everything the store covers with these rules and config" },
      { name = "script-version", arg = "V", help = "keep script_version = V or NULL", default = "2.5.0" },
      { name = "all-versions", type = "flag", help = "no script_version filter" },
      { name = "batch", arg = "N", type = "integer", help = "rows fetched per round trip (results never depend on it)" },
      { name = "threads", arg = "N", type = "integer", help = "threads, each with its own Lua state (default: every core for runs of 4096 rows or more; results never depend on it)" },
      { name = "trace", arg = "FILE", help = "write one JSON line per processed receipt" },
      { name = "ledger", arg = "FILE", help = "sync trades and lanes to this SQLite ledger afterwards" },
      { name = "follow", type = "flag", help = "keep replaying the rows inserted into FILE until SIGINT/SIGTERM" },
      { name = "poll", arg = "MS", type = "integer", help = "with --follow: how often to look for new rows", default = 200 },
      { name = "json", type = "flag", help = "print the response object instead of the summary" },
      { name = "quiet", type = "flag", help = "no progress bar, no per-receipt error lines" },
    },
    run = function(o)
      if not o.db then args.usage_error("missing --db FILE") end
      if (o.from or o.to) and o.date then args.usage_error("give --date or --from/--to, not both") end
      if (o.from or o.to) and not (o.from and o.to) then args.usage_error("--from and --to go together") end
      for _, k in ipairs { "max_instructions", "max_memory_mb", "batch", "limit", "threads" } do
        if o[k] ~= nil and o[k] < 1 then args.usage_error("--%s must be a positive integer", k:gsub("_", "-")) end
      end
      if o.offset < 0 then args.usage_error("--offset must be a non-negative integer") end
      if o.threads and o.threads > 256 then args.usage_error("--threads must be 1..256") end
      local scoped = o.date or o.from or o.to or o.ticker or o.bucket or o.shard or o.limit or o.refresh or o.resume
        or o.rebuild or o.clean_slate
      if o.follow and scoped then
        args.usage_error("--follow replays every receipt of the file: no --date/--from/--to/--ticker/--bucket/--shard/"
          .. "--limit/--refresh/--resume/--rebuild/--clean-slate")
      end
      if o.follow or (not scoped and common.follows(common.state_dir(o))) then return live_replay(o, out, fail) end
      local bucket = o.bucket and common.parse_time(o.bucket, o.date, "--bucket", true)
      local trace_fh, trace_err
      local started = core.monotonic_ms()
      local show_progress = not o.quiet and not o.json and core.isatty(2)
      local errors_shown = 0
      local replay = require "retape.replay"
      local ok_rules, R = pcall(common.load_rules, o.rules, o)
      if not ok_rules then return fail("replay", R) end
      if o.trace then
        trace_fh, trace_err = io.open(o.trace, "w")
        if not trace_fh then return fail("replay", trace_err) end
      end
      local logs = {}
      require("retape.sandbox").set_log(trace_fh and function(msg, where) logs[#logs + 1] = { msg, where } end or nil)
      local rp, err = replay.open {
        db = o.db, state = common.state_dir(o), rules = R, batch = o.batch, cascade = not o.no_cascade, threads = o.threads,
        limits = (o.max_instructions or o.max_memory_mb)
          and { instructions = o.max_instructions, memory_mb = o.max_memory_mb } or nil,
        script_version = (not o.all_versions) and o.script_version or false,
        trace = trace_fh and function(r)
          trace_fh:write(json.encode_row(r, R.trace_columns), "\n")
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
        on_bucket = show_progress and common.progress_bar(started) or nil,
      }
      if not rp then
        if trace_fh then trace_fh:close() end
        return fail("replay", err)
      end
      local ok, resp = pcall(rp.run, rp, {
        date = o.date, from = o.from, to = o.to, ticker = o.ticker, bucket = bucket,
        limit = o.limit, offset = o.offset, clean_slate = o.clean_slate, resume = o.resume,
        rebuild = o.rebuild, refresh = o.refresh, shard = o.shard,
      })
      if ok and o.refresh and (o.date or o.from) and not resp.hasMore then
        ok, resp.refreshed = pcall(rp.run, rp, { refresh = true })
        if not ok then resp = resp.refreshed end
      end
      local threads_used = rp.pool and rp.pool:parts() -- nil: one thread
      if trace_fh then trace_fh:close() end
      local results = require "retape.results"
      local lanes, badges
      if ok then
        lanes = results.lanes(rp.store, rp.R)
        badges = results.badges(rp.store, rp.R)
      end
      local synced
      if ok and o.ledger then synced = require("retape.ledger").sync(rp.store, o.ledger) end
      rp:close()
      if not ok then
        if replay.is_param_error(resp) then args.usage_error("%s", tostring(resp)) end
        error(resp, 0)
      end
      if o.json then
        out("%s", json.encode(resp, { "ok", "date", "ticker", "bucketProcessed", "bucketOffset", "rowsProcessed",
          "tradesCreated", "tradesPurged", "nextBucket", "nextBucketOffset", "hasMore", "hasMoreInBucket" }))
        return 0
      end
      local secs = (core.monotonic_ms() - started) / 1000
      if resp.date == nil then
        out("recomputed %d ticker-buckets of stale results, %s rows, %d errors%s", resp.recomputed, group(resp.rowsProcessed),
          resp.errors, resp.stale and " (some results are still stale)" or "")
      else
        local what = resp.from and (resp.from .. " to " .. resp.to) or resp.date
        out("replayed %s%s: %d buckets, %s rows, %d errors", what,
          resp.ticker ~= json.null and (" (" .. resp.ticker .. ")") or "", resp.buckets, group(resp.rowsProcessed), resp.errors)
        if #resp.days > 1 then
          local parts = {}
          for _, d in ipairs(resp.days) do parts[#parts + 1] = string.format("%s %d", d.day, d.rows) end
          out("rows per day: %s", table.concat(parts, ", "))
        end
        out("trades: %d created, %d purged", resp.tradesCreated, resp.tradesPurged)
        if (resp.replaced or 0) > 0 or (resp.purged or 0) > 0 then
          out("replaced: %d earlier ticker-buckets and %d trades of this scope", resp.replaced, resp.purged)
        end
        if resp.recomputed > 0 then out("recomputed: %d later ticker-buckets that depended on it", resp.recomputed) end
        if resp.stale then out("stale: later results depend on this scope (retape replay --state DIR --refresh)") end
        if resp.hasMore then
          out("more: next bucket %s, offset %s", tostring(resp.nextBucket ~= json.null and resp.nextBucket or resp.bucketProcessed),
            tostring(resp.nextBucketOffset ~= json.null and resp.nextBucketOffset or 0))
        end
      end
      out("lanes at the end:")
      common.lane_lines(out, lanes, badges)
      if synced then out("ledger %s: %d trades, %d events, %d tickers", o.ledger, synced.trades, synced.events, synced.tickers) end
      io.stdout:flush()
      local threads = threads_used and string.format(" (%d threads)", threads_used) or ""
      io.stderr:write(string.format("time %.2f s, %s rows/s%s\n", secs, group(resp.rowsProcessed / math.max(secs, 1e-3)), threads))
      return 0
    end,
  })
end
