-- retape.serve.log — one access-log line per request on stderr:
--   2026-02-02T15:04:05.123Z 127.0.0.1 POST /timed/admin/replay-ingest?bucket=...&date=... 200 12.4ms
-- No credential ever reaches the log, whatever its case or place: a query
-- parameter whose name looks like one (key, KEY, api_key, token, secret,
-- password, auth..., in any case) is left out; a parameter the API does not
-- know is shown by name only; and the server's key itself is masked
-- wherever it would appear (path, names, values).  Headers are never
-- logged.  Everything shown is escaped, so no request can forge a line.
local rtime = require "retape.time"
local core = require "retape.core"

local M = {}

-- Parameters of the endpoints whose values are shown.
local SHOWN = { date = true, ticker = true, bucket = true, bucketOffset = true, limit = true, offset = true,
  scriptVersion = true, cleanSlate = true, debug = true, at = true, by = true, days = true, day_key = true }

-- Does a parameter name look like a credential?  (letters only, any case)
function M.is_credential(name)
  local n = tostring(name):lower():gsub("[^%l]", "")
  return n:find("key", 1, true) ~= nil and n ~= "daykey" or n:find("token", 1, true) ~= nil
    or n:find("secret", 1, true) ~= nil or n:find("pass", 1, true) ~= nil or n:find("auth", 1, true) ~= nil
    or n == "sig" or n == "signature" or n == "credential" or n == "credentials"
end

local function escape(s, keep)
  return (tostring(s):gsub(keep or "[^%w%-%._~:,]", function(c) return string.format("%%%02X", c:byte()) end))
end

function M.target(req)
  local names = {}
  for k in pairs(req.query or {}) do if not M.is_credential(k) then names[#names + 1] = k end end
  table.sort(names)
  local path = escape(req.path, "[^%w%-%._~:,/]")
  if #names == 0 then return path end
  for i, k in ipairs(names) do
    names[i] = escape(k) .. (SHOWN[k] and ("=" .. escape(req.query[k])) or "=-")
  end
  return path .. "?" .. table.concat(names, "&")
end

-- line(req, status, ms[, secret]): secret (the server's key) is masked in
-- the line, raw or escaped, wherever it appears.
function M.line(req, status, ms, secret)
  local line = string.format("%s %s %s %s %d %.1fms\n", rtime.iso_utc(math.floor(core.now_ms())),
    escape(req.remote or "-"), escape(req.method), M.target(req), status, ms)
  return M.mask(line, secret)
end

-- mask(text, secret) -> text with secret (raw or escaped) shown as [key]
-- wherever it appears; a secret shorter than 4 bytes (or none) is left.
function M.mask(text, secret)
  if secret and #secret >= 4 then
    for _, form in ipairs { secret, escape(secret) } do
      local at = 1
      repeat
        local s, e = text:find(form, at, true)
        if s then text = text:sub(1, s - 1) .. "[key]" .. text:sub(e + 1); at = s + 5 end
      until not s
    end
  end
  return text
end

function M.write(req, status, ms, secret) io.stderr:write(M.line(req, status, ms, secret)) end

return M
