-- bench_replay.lua DB STATE FROM TO [RULES [THREADS]] — a full replay (fresh
-- store) of the days FROM..TO with RULES (default: the default ruleset) on
-- THREADS threads (default 1; "all": every core); prints rows,
-- payload bytes of the rows read, trades, peak RSS.
local retape = require "retape"
local db, state, from, to, rules, threads = ...
threads = threads == "all" and retape.pool.cores() or tonumber(threads) or 1
os.execute("rm -rf '" .. state .. "'")
local rp = assert(retape.replay.open { db = db, state = state, script_version = false, rules = rules,
                                                threads = threads })
local r = rp:run { from = from, to = to }
rp:close()
assert(r.errors == 0, "errors in the bench replay")
print(string.format("rows=%d trades=%d peak_rss_kb=%d cpu_ms=%d", r.rowsProcessed, r.tradesCreated, retape.core.peak_rss_kb(), math.floor(os.clock() * 1000)))
