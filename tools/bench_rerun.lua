-- bench_rerun.lua DB STATE DAY [RULES [THREADS]] — re-runs one day of a
-- store that already holds it and the days around it (what a user does
-- after tweaking a threshold: `retape replay --state S --date D`): the
-- day's results cleared and walked again, the later days' dependence on it
-- settled.  STATE must hold a replay of DB made with RULES (the default
-- ruleset unless named); every run re-runs the same day and leaves the
-- same results (a run manifest more, and the store's files compacted
-- further).  Prints rows, trades, peak RSS and CPU time.
local retape = require "retape"
local db, state, day, rules, threads = ...
threads = threads == "all" and require("retape.pool").cores() or tonumber(threads) or 1
local rp = assert(retape.replay.open { db = db, state = state, script_version = false, rules = rules, threads = threads,
                                       durable = "run" }) -- as `retape replay` runs
local r = rp:run { date = day }
rp:close()
assert(r.errors == 0, "errors in the bench re-run")
print(string.format("rows=%d trades=%d peak_rss_kb=%d cpu_ms=%d", r.rowsProcessed, r.tradesCreated,
  retape.core.peak_rss_kb(), math.floor(os.clock() * 1000)))
