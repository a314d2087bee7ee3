-- bench_sweep.lua DB FROM TO N [DIR] — one `retape sweep` pass of N variants
-- of the default ruleset (corridor.long.ltf_max = 10, 11, ... and, past 16
-- variants, late.phase = 0.6, 0.7, ...) over the days FROM..TO; prints rows,
-- variants, threads and peak RSS.  With DIR the stores are kept there;
-- SWEEP_WRITE_BUFFER_MB sets the memtable of each store (default retape.sweep's);
-- SWEEP_THREADS the threads (default every core).
local retape = require "retape"
local sweep = require "retape.sweep"
local db, from, to, n, dir = ...
n = math.tointeger(tonumber(n))
local variants = {}
for i = 0, n - 1 do
  variants[#variants + 1] = { ["corridor.long.ltf_max"] = 10 + i % 16, ["late.phase"] = 0.6 + (i // 16) / 10 }
end
if dir then assert(retape.fs.remove_tree(dir)); assert(retape.fs.mkdirs(dir)) end
local res = assert(sweep.run { db = db, from = from, to = to, variants = variants, script_version = false, dir = dir,
                               write_buffer_mb = tonumber(os.getenv("SWEEP_WRITE_BUFFER_MB") or ""),
                               threads = math.tointeger(tonumber(os.getenv("SWEEP_THREADS") or "")) })
print(string.format("rows=%d variants=%d threads=%d peak_rss_kb=%d", res.rows, #res.variants, res.threads,
  retape.core.peak_rss_kb()))
