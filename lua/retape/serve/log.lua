-- retape.serve.log — one access-log line per request on stderr:
--   2026-02-02T15:04:05.123Z 127.0.0.1 POST /timed/admin/replay-ingest?bucket=...&date=... 200 12.4ms
-- The query is shown without the key.
local rtime = require "retape.time"
local core = require "retape.core"

local M = {}

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~:,]", function(c) return string.format("%%%02X", c:byte()) end))
end

function M.target(req)
  local names = {}
  for k in pairs(req.query or {}) do if k ~= "key" then names[#names + 1] = k end end
  table.sort(names)
  if #names == 0 then return req.path end
  for i, k in ipairs(names) do names[i] = escape(k) .. "=" .. escape(req.query[k]) end
  return req.path .. "?" .. table.concat(names, "&")
end

function M.line(req, status, ms)
  return string.format("%s %s %s %s %d %.1fms\n", rtime.iso_utc(math.floor(core.now_ms())), req.remote or "-",
    req.method, M.target(req), status, ms)
end

function M.write(req, status, ms) io.stderr:write(M.line(req, status, ms)) end

return M
