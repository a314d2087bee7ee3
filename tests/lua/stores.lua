-- stores.lua — comparing state stores in tests: their keys and values, and
-- where two of them first differ.
local retape = require "retape"

local M = {}

-- dump(path [, prefixes]) -> {"key=value", ...} in key order: every key but
-- the run log (manifests carry wall-clock times), or only those under the
-- given prefixes.  `path` may be an open retape.kv handle (left open).
function M.dump(path, prefixes)
  local kv = type(path) == "string" and assert(retape.kv.open(path)) or path
  local parts = {}
  for _, prefix in ipairs(prefixes or { "" }) do
    for k, v in kv:scan(prefix) do
      if prefixes or not k:find("^retape:run") then parts[#parts + 1] = k .. "=" .. v end
    end
  end
  if kv ~= path then kv:close() end
  return parts
end

-- same(a, b) -> true, or false and the first differing entry of both dumps.
function M.same(a, b)
  for i = 1, math.max(#a, #b) do
    if a[i] ~= b[i] then
      return false, string.format("entry %d:\n%s\n%s", i, (a[i] or "-"):sub(1, 300), (b[i] or "-"):sub(1, 300))
    end
  end
  return true
end

return M
