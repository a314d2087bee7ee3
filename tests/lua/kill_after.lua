-- kill_after.lua DB STATE DATE N — replays DATE and kills its own process
-- with SIGKILL right after bucket N was committed (a real crash: no close,
-- no flush).  Used by test_replay.lua to test --resume.
local retape = require "retape"
local db, state, date, n = ...
n = tonumber(n)
local f = assert(io.open("/proc/self/stat"))
local pid = f:read("a"):match("^(%d+)")
f:close()
local rp = assert(retape.replay.open { db = db, state = state, on_bucket = function(p)
  if p.index == n then os.execute("kill -9 " .. pid); os.execute("sleep 5") end
end })
rp:run { date = date }
error("not killed")
