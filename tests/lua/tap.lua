-- tap.lua — assertions for the Lua tests; prints TAP lines.
local M = { n = 0, failed = 0 }

local function report(ok, what, detail)
  M.n = M.n + 1
  if not ok then M.failed = M.failed + 1 end
  print(("%sok %d - %s"):format(ok and "" or "not ", M.n, what))
  if not ok and detail then
    for line in tostring(detail):gmatch("[^\n]+") do print("#   " .. line) end
  end
  return ok
end

function M.ok(cond, what, detail) return report(cond and true or false, what, detail) end

function M.eq(got, expected, what)
  return report(got == expected, what, ("expected: %s\ngot:      %s"):format(tostring(expected), tostring(got)))
end

-- Passes when fn raises (or returns nil, msg) with a message containing frag.
function M.fails(fn, frag, what)
  local ok, a, b = pcall(fn)
  local msg = (not ok) and tostring(a) or (a == nil and tostring(b)) or nil
  return report(msg ~= nil and msg:find(frag, 1, true) ~= nil, what,
    ("expected an error containing: %s\ngot: %s"):format(frag, tostring(msg)))
end

-- A fresh directory under the runner's temp root.
function M.tempdir()
  return assert(require("retape.fs").tempdir("lua", os.getenv("RETAPE_TEST_TMP")))
end

function M.done()
  print("1.." .. M.n)
  return M.failed == 0 and 0 or 1
end

-- The directory of the test files, so tests can require helpers.
package.path = "tests/lua/?.lua;" .. package.path
return M
