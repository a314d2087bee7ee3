-- bench_rerun.lua DB STATE DAY [RULES [THREADS [TICKER [BUCKET]]]] —
-- re-runs one day of a store that already holds it and the days around it
-- (what a user does after tweaking a threshold: `retape replay --state S
-- --date D`, or with `--ticker T` / `--bucket HH:MM`: TICKER and BUCKET
-- as those options, "-" for none): the scope's results cleared and walked
-- again, the later days' dependence on it settled, the run's manifest
-- (with its results fingerprints) recorded.  STATE must hold a replay of DB made with RULES (the default
-- ruleset unless named); every run re-runs the same day and leaves the
-- same results (a run manifest more, and the store's files compacted
-- further).  Prints rows, trades, peak RSS and CPU time.
local retape = require "retape"
local db, state, day, rules, threads, ticker, bucket = ...
-- THREADS: a number, "all" (every core) or "auto" (as the CLI: by the rows)
if threads == "auto" then threads = nil
else threads = threads == "all" and require("retape.pool").cores() or tonumber(threads) or 1 end
local rp = assert(retape.replay.open { db = db, state = state, script_version = false, rules = rules, threads = threads,
                                       durable = "run" }) -- as `retape replay` runs
local params = { date = day }
if ticker and ticker ~= "-" then params.ticker = ticker end
if bucket and bucket ~= "-" then params.bucket = assert(require("retape.validate").instant(bucket, day, true)) end
local r = rp:run(params)
rp:close()
assert(r.errors == 0, "errors in the bench re-run")
print(string.format("rows=%d trades=%d peak_rss_kb=%d cpu_ms=%d", r.rowsProcessed, r.tradesCreated,
  retape.core.peak_rss_kb(), math.floor(os.clock() * 1000)))
