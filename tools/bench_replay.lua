-- bench_replay.lua DB STATE FROM TO — a full replay (parity ruleset, fresh
-- store) of the days FROM..TO; prints rows, trades, peak RSS.
local retape = require "retape"
local db, state, from, to = ...
os.execute("rm -rf '" .. state .. "'")
local rp = assert(retape.replay.open { db = db, state = state, script_version = false })
local r = rp:run { from = from, to = to }
rp:close()
assert(r.errors == 0, "errors in the bench replay")
print(string.format("rows=%d trades=%d peak_rss_kb=%d", r.rowsProcessed, r.tradesCreated, retape.core.peak_rss_kb()))
