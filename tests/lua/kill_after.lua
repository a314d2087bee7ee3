-- kill_after.lua DB STATE DATE N [THREADS [DURABLE [PERSIST_AT [RULES]]]] — replays
-- DATE (on THREADS threads, default 1; DURABLE: retape.replay's durable,
-- default "bucket") and kills its own process with SIGKILL right after
-- bucket N was committed (a real crash: no close, no flush).  PERSIST_AT:
-- the store's persist() right after that bucket (durable "run").  RULES:
-- the ruleset (default: the default one).  Used by
-- test_replay.lua and test_threads.lua to test --resume.
local retape = require "retape"
local db, state, date, n, threads, durable, persist_at, rules = ...
n, threads, persist_at = tonumber(n), tonumber(threads), tonumber(persist_at)
local f = assert(io.open("/proc/self/stat"))
local pid = f:read("a"):match("^(%d+)")
f:close()
local rp
rp = assert(retape.replay.open { db = db, state = state, threads = threads, durable = durable,
                                 rules = rules ~= "" and rules or nil, on_bucket = function(p)
  if p.index == persist_at then rp:state_store():persist() end
  if p.index == n then os.execute("kill -9 " .. pid); os.execute("sleep 5") end
end })
rp:run { date = date }
error("not killed")
