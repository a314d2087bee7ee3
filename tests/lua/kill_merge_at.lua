-- kill_merge_at.lua OUT K SHARD... — `retape merge` of the shards into OUT
-- that kills its own process with SIGKILL right after the K-th shard was
-- copied (a real crash: no close, no rename).  K past the last shard: the
-- merge ends normally and prints "done".  Used by test_rerun_property.lua.
local out, k = ...
k = tonumber(k)
local shards = table.move({ ... }, 3, select("#", ...), 1, {})
local f = assert(io.open("/proc/self/stat"))
local pid = f:read("a"):match("^(%d+)")
f:close()
require("retape.merge").run(out, shards, { on_shard = function(i)
  if i == k then os.execute("kill -9 " .. pid); os.execute("sleep 5") end
end })
print("done")
