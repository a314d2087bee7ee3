-- retape.serve.router — routes (method, path) to handlers, turns what they
-- return or raise into an HTTP status and a JSON body.
--
--   local r = router.new()
--   r:add("GET", "/timed/all", function(req) return 200, { ok = true } end)
--   local status, body, ctype = r:dispatch(req)
--
-- A handler returns status, value [, key order] (value is encoded as JSON,
-- or sent as is when it is a string; then a third string is its content
-- type), or raises router.fail(status, msg).
-- Any other error answers 500 {ok:false, error} and the server goes on.
local json = require "retape.json"

local M = {}
local Router = {}
Router.__index = Router

local HttpError = { __tostring = function(e) return e.message end }

-- fail(status, fmt, ...) raises an error the router answers with that status.
function M.fail(status, fmt, ...)
  error(setmetatable({ status = status, message = string.format(fmt, ...) }, HttpError), 0)
end
function M.is_http_error(e) return getmetatable(e) == HttpError end

function M.error_body(message)
  return json.encode({ ok = false, error = message }, { "ok", "error" })
end

function M.new() return setmetatable({ routes = {}, order = {} }, Router) end

function Router:add(method, path, fn)
  local r = self.routes[path]
  if not r then r = {}; self.routes[path] = r; self.order[#self.order + 1] = path end
  r[method] = fn
end

-- dispatch(req) -> status, body text, content type
function Router:dispatch(req, ctx)
  local r = self.routes[req.path]
  if not r then return 404, M.error_body("no endpoint " .. req.path), "application/json" end
  local fn = r[req.method]
  if not fn then
    local allowed = {}
    for m in pairs(r) do allowed[#allowed + 1] = m end
    table.sort(allowed)
    return 405, M.error_body(string.format("method %s not allowed on %s (use %s)", req.method, req.path,
      table.concat(allowed, ", "))), "application/json"
  end
  local ok, status, value, order = pcall(fn, req, ctx)
  if not ok then
    local e = status
    if M.is_http_error(e) then return e.status, M.error_body(e.message), "application/json" end
    return 500, M.error_body(tostring(e)), "application/json"
  end
  if type(value) == "string" then return status, value, type(order) == "string" and order or "application/json" end
  local eok, text = pcall(json.encode, value, order)
  if not eok then return 500, M.error_body("cannot encode the response: " .. tostring(text)), "application/json" end
  return status, text, "application/json"
end

return M
