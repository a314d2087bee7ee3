-- same_store.lua LIVE_STATE FRESH_STATE — exit 0 when the two stores hold the
-- same keys and values byte for byte, apart from the run log and the live
-- engine's watermark (retape:run*, retape:follow: bookkeeping, not results);
-- else prints the first difference and exits 1.
package.path = "tests/lua/?.lua;" .. package.path
local stores = require "stores"
local a, b = ...
local A, B = stores.dump(a), stores.dump(b)
for i = #A, 1, -1 do if A[i]:find("^retape:follow=") then table.remove(A, i) end end
local same, where = stores.same(A, B)
print(("%d keys live, %d fresh"):format(#A, #B))
if not same then print(where); os.exit(1) end
