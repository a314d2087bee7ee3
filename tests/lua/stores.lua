-- stores.lua — comparing state stores in tests: their keys and values, and
-- where two of them first differ.
local retape = require "retape"

local M = {}

-- dump(path [, prefixes]) -> {"key=value", ...} in key order: every key but
-- the run log (manifests carry wall-clock times) and the fingerprints'
-- cache (kept as runs ask for fingerprints), or only those under the
-- given prefixes.  `path` may be an open retape.kv handle (left open).
function M.dump(path, prefixes)
  local kv = type(path) == "string" and assert(retape.kv.open(path)) or path
  local parts = {}
  for _, prefix in ipairs(prefixes or { "" }) do
    for k, v in kv:scan(prefix) do
      -- (the run log and the fingerprints' cached hashes are bookkeeping of
      -- how the store was made, not results)
      if prefixes or not (k:find("^retape:run") or k:find("^\xfffingerprint")) then parts[#parts + 1] = k .. "=" .. v end
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

-- results(path [, prefixes]) -> the results of a store as bytes:
-- versions, trades, the ticker index and stale marks (dump of those
-- prefixes, or of the given ones).
function M.results(path, prefixes)
  return M.dump(path, prefixes or { "v:", "t:", "tk:", "stale:" })
end

-- first_difference(got, want [, names]) -> nil when the dumps are equal, else
-- where they first differ: the entry, its key and ~240 bytes around the
-- first differing byte of both.  names: the two sides' labels ({"got", "fresh"}).
function M.first_difference(a, b, names)
  names = names or { "got", "fresh" }
  for i = 1, math.max(#a, #b) do
    if a[i] ~= b[i] then
      local x, y = a[i] or "(none)", b[i] or "(none)"
      local at = 1
      while at <= #x and x:sub(at, at) == y:sub(at, at) do at = at + 1 end
      local from = math.max(1, at - 100)
      return string.format("entry %d (%s), from byte %d:\n  %s: %s\n  %s: %s", i, x:match("^[^=]*"), at,
        names[1], x:sub(from, at + 140), names[2], y:sub(from, at + 140))
    end
  end
end

return M
