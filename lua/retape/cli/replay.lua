-- The `replay` command: re-run a scope of receipts into a state store.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local core = require "retape.core"
local json = require "retape.json"
local common = require "retape.cli.common"
local options = require "retape.cli.options"
local write_plan = require "retape.cli.write_plan"

local stderr, group = common.stderr, common.group

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("replay", {
    summary = "Re-run receipts bucket by bucket through the lane rules and the trade simulator",
    usage = "retape replay [--db FILE] [--state DIR] (--date D | --from D --to D | --refresh | --resume | --follow) [OPTIONS]",
    details = "Walks the 09:30-16:00 ET buckets of the day(s) in (bucket, ts, receipt_id) order, classifies every\n"
           .. "receipt into the 8 lanes and simulates the trades the lanes imply.  The run replaces what the store\n"
           .. "held for its scope (days x tickers, or one bucket / page) and starts from the stored state just\n"
           .. "before it; later results that depended on the scope are recomputed (--no-cascade: marked stale).\n"
           .. "Any sequence of runs ends equal to one fresh replay of what the store covers, in time order.\n"
           .. "--clean-slate: the scope's tickers start it with no position and no entry/cycle state.\n"
           .. "A run killed half-way (or its recomputation of later results) is finished by the next replay into the\n"
           .. "store before anything else, or by --resume alone.  --bucket/--limit/--offset\n"
           .. "reproduce the original endpoint's paging; --json prints its response object.\n"
           .. "A store records how it was made: the ruleset by content, the overrides, the receipts file.  A later\n"
           .. "write into it reuses them (--db, --rules, --set may be left out); different ones are refused,\n"
           .. "naming the settings that differ and the command that would do what was meant (--rebuild, or a\n"
           .. "new --state).  A rule file changed since needs --rebuild (or the same file back); receipts\n"
           .. "changed under replayed days are refused, receipts added to them leave those days to replay again.\n"
           .. "--follow replays every receipt of FILE, then the rows another process inserts (the app's sync, an\n"
           .. "import, `retape serve`'s webhooks) as they come, until SIGINT/SIGTERM (exit 0); the store stays equal\n"
           .. "to one fresh replay of the receipts so far.  Without a day, on a store that --follow or `retape serve`\n"
           .. "kept, replay processes only what is new since the last run (incremental).",
    options = options.list(options.store(), options.ruleset(), {
      { name = "max-instructions", arg = "N", type = "integer", help = "rule budget per receipt (default 5,000,000; rule files always, shipped rules when given)" },
      { name = "max-memory-mb", arg = "N", type = "integer", help = "memory a rule may add per receipt (default 64)" },
    }, options.scope(), {
      { name = "shard", arg = "I/N", help = "only the tickers of shard I of N (0 <= I < N; a stable hash of the ticker); retape merge combines the shard stores" },
      { name = "bucket", arg = "HH:MM|MS", help = "only this 5-minute bucket (New York time with --date, or ms)" },
      { name = "limit", arg = "N", type = "integer", help = "rows per page within --bucket" },
      { name = "offset", arg = "N", type = "integer", help = "first row of the page within --bucket", default = 0 },
      { name = "clean-slate", type = "flag", help = "the scope's tickers start it with no position and no entry/cycle state" },
      { name = "resume", type = "flag", help = "finish the interrupted run (alone: whatever is pending; with a scope: the interrupted run of that scope)" },
      { name = "no-cascade", type = "flag", help = "leave later results that depended on the scope stale instead of recomputing them" },
      { name = "refresh", type = "flag", help = "recompute stale results (alone, or after the scope's run)" },
      { name = "rebuild", type = "flag", help = "recompute everything the store covers with these rules and config" },
    }, options.versions(), {
      { name = "batch", arg = "N", type = "integer", help = "rows fetched per round trip (results never depend on it)" },
      { name = "threads", arg = "N", type = "integer", help = "threads, each with its own Lua state (default: every core for runs of 4096 rows or more; results never depend on it)" },
      { name = "durable", arg = "bucket|run", help = "when committed buckets are durable: run (default; at the run's end and whenever the store's memtable fills, ~5 % less CPU) or bucket (each one through the store's write-ahead log); a killed run resumes from the last durable one; --follow always logs each pass; results never depend on it", default = "run" },
      { name = "trace", arg = "FILE", help = "write one JSON line per processed receipt" },
      { name = "ledger", arg = "FILE", help = "sync trades and lanes to this SQLite ledger afterwards" },
      { name = "follow", type = "flag", help = "keep replaying the rows inserted into FILE until SIGINT/SIGTERM" },
      { name = "poll", arg = "MS", type = "integer", help = "with --follow: how often to look for new rows", default = 200 },
      { name = "json", type = "flag", help = "print the response object instead of the summary" },
      { name = "quiet", type = "flag", help = "print only the one summary line (no progress bar, lanes or error lines)" },
    }),
    run = function(o)
      if not o.db and not o.state then args.usage_error("missing --db FILE (or --state DIR of a store that records it)") end
      if (o.from or o.to) and o.date then args.usage_error("give --date or --from/--to, not both") end
      if (o.from or o.to) and not (o.from and o.to) then args.usage_error("--from and --to go together") end
      for _, k in ipairs { "max_instructions", "max_memory_mb", "batch", "limit", "threads" } do
        if o[k] ~= nil and o[k] < 1 then args.usage_error("--%s must be a positive integer", k:gsub("_", "-")) end
      end
      if o.offset < 0 then args.usage_error("--offset must be a non-negative integer") end
      if o.threads and o.threads > 256 then args.usage_error("--threads must be 1..256") end
      if o.durable ~= "run" and o.durable ~= "bucket" then args.usage_error("--durable is bucket or run, not %s", o.durable) end
      local scoped = o.date or o.from or o.to or o.ticker or o.bucket or o.shard or o.limit or o.refresh or o.resume
        or o.rebuild or o.clean_slate
      if o.follow and scoped then
        args.usage_error("--follow replays every receipt of the file: no --date/--from/--to/--ticker/--bucket/--shard/"
          .. "--limit/--refresh/--resume/--rebuild/--clean-slate")
      end
      if o.follow or (not scoped and common.follows(common.state_dir(o))) then return require("retape.cli.follow").replay(o, out, fail, cli.options_of("replay")) end
      local bucket = o.bucket and common.parse_time(o.bucket, o.date, "--bucket", true)
      local trace_fh, trace_err
      local started = core.monotonic_ms()
      local show_progress = not o.quiet and not o.json and core.isatty(2)
      local errors_shown = 0
      local replay = require "retape.replay"
      local state = common.state_dir(o)
      -- a new store is created only once the run is planned (a refused run leaves no directory)
      local storem = require "retape.store"
      local st, serr
      if require("retape.fs").kind(state .. "/CURRENT") then
        st, serr = storem.open(state)
        if not st then return fail("replay", common.held_message(state, serr)) end
      end
      local ok_plan, p, refused = write_plan.protected(st, o, state, cli.options_of("replay"))
      if not ok_plan then
        if st then st:close() end
        if args.is_usage_error(p) then error(p, 0) end
        return fail("replay", tostring(p))
      end
      if not p then if st then st:close() end; return refused end
      write_plan.no_session_check(o, p)
      if not st then
        st, serr = storem.open(state)
        if not st then return fail("replay", serr) end
      end
      local R = p.R
      if o.trace then
        trace_fh, trace_err = io.open(o.trace, "w")
        if not trace_fh then return fail("replay", trace_err) end
      end
      -- the rule's log() lines of a receipt, kept for its trace line: at
      -- most LOG_LINES, each cut at LOG_BYTES (a rule logging a megabyte a
      -- hundred times a receipt would write gigabytes)
      local LOG_LINES, LOG_BYTES = 256, 4096
      local logs, dropped = {}, 0
      require("retape.sandbox").set_log(trace_fh and function(msg, where)
        if #logs >= LOG_LINES then dropped = dropped + 1; return end
        if #msg > LOG_BYTES then
          local cut = LOG_BYTES
          while cut > 0 and msg:byte(cut + 1) >= 0x80 and msg:byte(cut + 1) < 0xC0 do cut = cut - 1 end -- whole characters
          msg = string.format("%s... (%d bytes more)", msg:sub(1, cut), #msg - cut)
        end
        logs[#logs + 1] = { msg, where }
      end or nil)
      local rp, err = replay.open {
        db = p.db, state = st, rules = R, batch = o.batch, cascade = not o.no_cascade, threads = o.threads,
        durable = o.durable,
        limits = (o.max_instructions or o.max_memory_mb)
          and { instructions = o.max_instructions, memory_mb = o.max_memory_mb } or nil,
        script_version = p.script_version,
        trace = trace_fh and function(r, row)
          local ok, line = pcall(json.encode_row, r, R.trace_columns, json.KEPT_VALUES_MAX)
          if not ok then
            error(string.format("receipt %s (%s): its trace line: %s", row.receipt_id, row.ticker,
              require("retape.sandbox").engine_message(line)), 0)
          end
          trace_fh:write(line, "\n")
          if dropped > 0 then
            logs[#logs + 1] = { string.format("(%d more log lines of this receipt left out: --trace keeps %d)", dropped,
              LOG_LINES), json.null }
          end
          for _, l in ipairs(logs) do -- the rule's log() lines of this receipt follow its line
            trace_fh:write(json.encode({ receipt_id = row.receipt_id, ticker = row.ticker, log = l[1], where = l[2] },
              { "receipt_id", "ticker", "log", "where" }), "\n")
          end
          logs, dropped = {}, 0
        end,
        on_error = function(m)
          errors_shown = errors_shown + 1
          if not o.quiet and errors_shown <= 20 then stderr("%sretape replay: %s\n", show_progress and "\n" or "", m) end
        end,
        on_bucket = show_progress and common.progress_bar(started) or nil,
      }
      if not rp then
        if trace_fh then trace_fh:close() end
        st:close()
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
      local threads_used = rp:threads_used() > 1 and rp:threads_used() or nil -- nil: one thread
      if trace_fh then trace_fh:close() end
      local results = require "retape.results"
      local lanes, badges
      if ok then
        lanes = results.lanes(rp:state_store(), rp:ruleset())
        badges = results.badges(rp:state_store(), rp:ruleset())
      end
      local synced
      if ok and o.ledger then synced = require("retape.ledger").sync(rp:state_store(), o.ledger) end
      local grown = rp:grown_days()
      local refusal_hint = not ok and replay.is_param_error(resp) and resp.replay_again or nil
      rp:close()
      st:close()
      if not ok then
        if refusal_hint then
          return common.refuse("replay", tostring(resp), { { "replay those days again",
            common.command_line(common.rewrite({ "date", "from", "to", "ticker", "bucket", "limit", "offset", "shard",
              "refresh", "resume" }, (function()
                local w = {}
                for word in refusal_hint:gmatch("%S+") do w[#w + 1] = word end
                return w
              end)(), common.valued(cli.options_of("replay")))) } })
        end
        if replay.is_param_error(resp) then args.usage_error("%s", tostring(resp)) end
        error(resp, 0)
      end
      for i, g in ipairs(grown) do
        if i > 5 then stderr("retape replay: note: and %d more days with new receipts (retape status --state %s)\n",
          #grown - 5, common.quote(state)); break end
        stderr("retape replay: note: %d receipts were added under %s since it was replayed; its results are stale "
          .. "until it is replayed again: %s\n", g.n - g.was, g.day, common.command_line { "replay", "--state", state, "--date", g.day })
      end
      local f = resp.finished or (resp.refreshed and resp.refreshed.finished)
      if f and not o.json then
        out("finished first: the interrupted %s %s (%s rows, %d ticker-buckets recomputed)",
          f.phase == "refresh" and "recomputation of what depends on" or "run", f.params or "", group(f.rows or 0), f.recomputed or 0)
      end
      if o.quiet and not o.json then -- the one summary line (--json prints the response object)
        local what = resp.date == nil and "stale results" or (resp.from and (resp.from .. " to " .. resp.to) or resp.date)
        if resp.date == nil then
          out("recomputed %d ticker-buckets of stale results, %s rows, %d errors", resp.recomputed, group(resp.rowsProcessed), resp.errors)
        else
          out("replayed %s%s: %d buckets, %s rows, %d errors, %d trades created, %d purged%s", what,
            resp.ticker ~= json.null and (" (" .. resp.ticker .. ")") or "", resp.buckets, group(resp.rowsProcessed),
            resp.errors, resp.tradesCreated, resp.tradesPurged, resp.stale and ", later results stale" or "")
        end
        return 0
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
          local parts, shown = {}, resp.days
          if #shown > 10 then -- a long range: its first and last days, and the busiest and quietest
            local min, max = shown[1], shown[1]
            for _, d in ipairs(shown) do
              if d.rows < min.rows then min = d end
              if d.rows > max.rows then max = d end
            end
            out("rows per day: %d days, %s to %s, fewest %d (%s), most %d (%s)", #shown, shown[1].day, shown[#shown].day,
              min.rows, min.day, max.rows, max.day)
          else
            for _, d in ipairs(shown) do parts[#parts + 1] = string.format("%s %d", d.day, d.rows) end
            out("rows per day: %s", table.concat(parts, ", "))
          end
        end
        out("trades: %d created, %d purged", resp.tradesCreated, resp.tradesPurged)
        if (resp.replaced or 0) > 0 or (resp.purged or 0) > 0 then
          out("replaced: %d earlier ticker-buckets and %d trades of this scope", resp.replaced, resp.purged)
        end
        if resp.recomputed > 0 then out("recomputed: %d later ticker-buckets that depended on it", resp.recomputed) end
        if resp.stale then
          out("stale: later results depend on this scope (%s)", common.command_line { "replay", "--state", state, "--refresh" })
        end
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
