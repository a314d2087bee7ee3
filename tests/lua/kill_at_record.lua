-- kill_at_record.lua DB STATE PARAMS_JSON [THREADS] — one replay call under
-- durable = "run" (as `retape replay` runs) that kills its own process with
-- SIGKILL when the run's manifest is about to be recorded: after the walk
-- and what follows it (settle_stale, the refresh), before the fingerprints
-- and the manifest's logged write (a real crash: no close, no flush).
-- Used by test_replay.lua.
local retape = require "retape"
local db, state, params, threads = ...
local f = assert(io.open("/proc/self/stat"))
local pid = f:read("a"):match("^(%d+)")
f:close()
retape.manifest.record = function() os.execute("kill -9 " .. pid); os.execute("sleep 5") end
local rp = assert(retape.replay.open { db = db, state = state, durable = "run", threads = tonumber(threads) })
rp:run(retape.json.decode(params))
error("not killed")
