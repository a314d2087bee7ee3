-- retape.serve.auth — the original's `?key=` check.
local M = {}

-- equal(given, expected) -> boolean, in time that depends only on the length
-- of the expected key (every byte is compared; no early exit).
function M.equal(given, expected)
  local diff = #given ~ #expected
  local n = #given
  for i = 1, #expected do
    local g = n > 0 and given:byte((i - 1) % n + 1) or 0
    diff = diff | (g ~ expected:byte(i))
  end
  return diff == 0
end

-- check(req, key) raises 401 unless the request carries the key (key false = no auth).
function M.check(req, key)
  if not key then return end
  local given = req.query.key
  if not given or given == "" then require("retape.serve.router").fail(401, "missing key (?key=)") end
  if not M.equal(given, key) then require("retape.serve.router").fail(401, "wrong key") end
end

return M
