-- kill_at.lua DB STATE RULES N PARAMS_JSON [THREADS] — one replay call
-- (PARAMS_JSON: the params of retape.replay's run, e.g. {"refresh":true}
-- or {"date":"2026-01-27","clean_slate":true}) that kills its own process
-- with SIGKILL right after its N-th committed bucket, counting the buckets
-- of the walk and of the recomputation that follows (a real crash: no
-- close, no flush).  N = 0, or a run with fewer buckets: it ends normally
-- and prints "done B" (B = buckets it committed).  Used by
-- test_rerun_property.lua for kills inside refresh and cascade.
local retape = require "retape"
local db, state, rules, n, params, threads = ...
n, threads = tonumber(n), tonumber(threads)
local f = assert(io.open("/proc/self/stat"))
local pid = f:read("a"):match("^(%d+)")
f:close()
local seen = 0
local rp = assert(retape.replay.open { db = db, state = state, rules = rules, threads = threads, on_bucket = function()
  seen = seen + 1
  if seen == n then os.execute("kill -9 " .. pid); os.execute("sleep 5") end
end })
rp:run(retape.json.decode(params))
rp:close()
print("done " .. seen)
