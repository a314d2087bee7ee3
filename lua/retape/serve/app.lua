-- retape.serve.app — what each Lua state of `retape serve` runs.
-- retape.http.serve calls init(role, config_json, kv) once per state:
--   "reader": returns handler(req) -> status, body, content type, header.
--             The router, auth, the endpoints and the access log; admin
--             endpoints pass their work to the writer through http.exclusive;
--             a read of results first waits for the live pass that covers
--             the webhooks answered so far (http.settle), and its answer
--             says which receipts they cover (X-Retape-Receipts).
--   "writer": returns handler(text) -> "STATUS\nBODY", the one state that
--             runs replays and ledger syncs (one call at a time); called
--             with no text, one live replay pass (the classify thread's).
--   "ingest": returns handler({texts}) -> {replies}: http.defer's batch of
--             webhooks stored in one transaction (the live thread's).
local cjson = require "cjson"
local router = require "retape.serve.router"
local engine = require "retape.serve.engine"
local original = require "retape.serve.original"
local log = require "retape.serve.log"
local core = require "retape.core"
local http = require "retape.http"

local M = {}

local STOPPED = setmetatable({}, { __tostring = function() return "the server is stopping" end })

local function writer(cfg, kv)
  -- between two buckets of a long call: stop if SIGTERM/SIGINT came (the
  -- bucket just committed stays committed)
  local passing = false
  local w = engine.writer(cfg, kv, function(p)
    -- (a live pass always ends: the one after SIGTERM leaves nothing stored unreplayed)
    if p.index < p.total and http.stopping() and not passing then error(STOPPED, 0) end
  end)
  local ops = original.writer_ops(w, cfg.ledger)
  local json = require "retape.json"
  local live = require "retape.serve.live"
  -- a live store replays what was stored before a kill before anything is answered
  if w:is_live() then live.pass(w) end
  return function(text)
    if text == nil then -- a live pass (the classify thread)
      passing = true
      live.pass(w)
      passing = false
      return
    end
    local msg = cjson.decode(text)
    local op = ops[msg.op]
    if not op then return "400\n" .. router.error_body("unknown operation " .. tostring(msg.op)) end
    local ok, status, value, order = pcall(op, msg.params)
    if not ok then
      local e = status
      if engine.is_param_error(e) then return "400\n" .. router.error_body(tostring(e)) end
      if e == STOPPED then return "503\n" .. router.error_body(tostring(e)) end
      return "500\n" .. router.error_body(tostring(e))
    end
    return status .. "\n" .. json.encode(value, order)
  end
end

local function ingest(cfg)
  local receiver = engine.receiver(cfg)
  local live = require "retape.serve.live"
  return function(texts) return live.batch(receiver, texts, cfg.quiet) end
end

-- Requests that read no results (or must not wait: the event stream) go
-- without http.settle.
local UNSETTLED = { ["/live/events"] = true, ["/timed/health"] = true, ["/timed/version"] = true }

local function reader(cfg, kv)
  local ctx = { key = cfg.key or false, ledger = cfg.ledger, st = engine.open_store(kv), R = engine.rules(cfg) }
  local r = router.new()
  original.register(r, ctx)
  require("retape.serve.own").register(r, ctx)
  require("retape.serve.live").register(r, ctx)
  local quiet = cfg.quiet
  return function(req)
    local t0 = core.monotonic_ms()
    req.t0 = t0
    local status, body, ctype, header
    if req.over_limit == 413 then
      status, body, ctype = 413, router.error_body("request body too large"), "application/json"
    elseif req.over_limit == 431 then
      status, body, ctype = 431, router.error_body("request line and headers too large"), "application/json"
    else
      local settled = req.method == "GET" and not UNSETTLED[req.path]
      if settled then http.settle() end
      status, body, ctype = r:dispatch(req, ctx)
      -- which receipts the results read cover (a live store: the pass's watermark)
      if settled then header = engine.receipts_header(ctx.st) end
    end
    -- a deferred request (a webhook) is logged by the writer when it answers
    if not quiet and not req.deferred then log.write(req, status, core.monotonic_ms() - t0, ctx.key or nil) end
    return status, body, ctype, header
  end
end

function M.init(role, config, kv)
  local cfg = cjson.decode(config)
  for k, v in pairs(cfg) do if v == cjson.null then cfg[k] = nil end end
  if role == "writer" then return writer(cfg, kv) end
  if role == "ingest" then return ingest(cfg) end
  return reader(cfg, kv)
end

return M
