-- kill_after.lua DB STATE DATE N [THREADS] — replays DATE (on THREADS
-- threads, default 1) and kills its own process
-- with SIGKILL right after bucket N was committed (a real crash: no close,
-- no flush).  Used by test_replay.lua to test --resume.
local retape = require "retape"
local db, state, date, n, threads = ...
n, threads = tonumber(n), tonumber(threads)
local f = assert(io.open("/proc/self/stat"))
local pid = f:read("a"):match("^(%d+)")
f:close()
local rp = assert(retape.replay.open { db = db, state = state, threads = threads, on_bucket = function(p)
  if p.index == n then os.execute("kill -9 " .. pid); os.execute("sleep 5") end
end })
rp:run { date = date }
error("not killed")
