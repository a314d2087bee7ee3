-- retape.serve.live — the live endpoints of `retape serve`:
--   POST /timed/ingest?key=          a TradingView webhook (spec §1.2): checked,
--                                    stored, replayed at once; 200 once committed
--   POST /timed/ingest-capture?key=  the capture script's body: stored, never replayed
--   GET  /?key=                      the live board (lanes, Trade By Day / By P&L / History)
--   GET  /live/board?key=            the board's data (JSON)
--   GET  /live/events?key=           server-sent events: one per replay pass that classified receipts
-- Readers check the body and hand the row to the ingest state through
-- http.defer (group commit: a burst of webhooks on many connections is one
-- call and one transaction, and a waiting connection holds no thread); it
-- stores the batch, answers every request of it and writes their
-- access-log lines (batch).  The writer state's passes (pass) replay what
-- the receipts file gained since the last one (retape.live through
-- engine.lua), in a thread of their own, and publish an event; reads wait
-- for the pass that covers the webhooks answered before them
-- (http.settle, in app.lua), so a read after a 200 reflects it.
local router = require "retape.serve.router"
local auth = require "retape.serve.auth"
local engine = require "retape.serve.engine"
local json = require "retape.json"
local core = require "retape.core"
local http = require "retape.http"
local log = require "retape.serve.log"

local M = {}
local fail = router.fail

M.REPLY_ORDER = { "ok", "receipt_id", "ticker", "ts", "bucket_5m", "duplicate" }

---------------------------------------------------------------------------
-- a webhook as the reader hands it to the writer: one line of tab-separated
-- fields (none can hold a tab or a line break: import's checks refuse
-- control characters), then the body as received

local FIELDS = { "receipt_id", "ticker", "ts", "bucket_5m", "received_ts", "payload_hash" }

function M.encode(row, req, secret)
  local parts = {}
  for i, k in ipairs(FIELDS) do parts[i] = tostring(row[k]) end
  parts[#parts + 1] = row.script_version and ("=" .. row.script_version) or "-"
  parts[#parts + 1] = req.method
  parts[#parts + 1] = log.mask(log.target(req), secret) -- without the key, nor the server's anywhere
  parts[#parts + 1] = req.remote or "-"
  parts[#parts + 1] = string.format("%.3f", req.t0 or 0)
  return table.concat(parts, "\t") .. "\n" .. row.payload_json
end

-- decode(text) -> row, req (for the access log)
function M.decode(text)
  local nl = text:find("\n", 1, true)
  local f, i = {}, 0
  for v in text:sub(1, nl - 1):gmatch("[^\t]+") do i = i + 1; f[i] = v end
  local row = { receipt_id = f[1], ticker = f[2], ts = math.tointeger(f[3]), bucket_5m = math.tointeger(f[4]),
    received_ts = math.tointeger(f[5]), payload_hash = f[6], script_version = f[7] ~= "-" and f[7]:sub(2) or nil,
    payload_json = text:sub(nl + 1) }
  return row, { method = f[8], path = f[9], query = {}, remote = f[10], t0 = tonumber(f[11]) }
end

---------------------------------------------------------------------------
-- the writer state's side: the replay passes

local seq = 0

-- pass(w) -> done | nil: one catch-up pass (retape.live), then one event:
-- the receipts it classified, their tickers, the time it committed.  A
-- failed pass is reported; its receipts stay stored and the next pass
-- replays them.  Also at the writer's start: what a kill left unreplayed.
function M.pass(w)
  local ok, done = pcall(w.catch_up, w)
  if not ok then
    io.stderr:write("retape serve: live replay: " .. tostring(done) .. "\n")
    return nil
  end
  if done and done.receipts > 0 then
    seq = seq + 1
    http.publish("data: " .. json.encode({ seq = seq, at = math.floor(core.now_ms()), receipts = done.receipts,
      tickers = done.tickers }, { "seq", "at", "receipts", "tickers" }) .. "\n\n")
  end
  return done
end

---------------------------------------------------------------------------
-- the ingest state's side: storing

-- batch(receiver, texts, quiet) -> replies ("STATUS\nBODY"): the ingest
-- state's handler for http.defer's batch, stored in one transaction
-- (engine.receiver).  Each text carries the row and the request's
-- access-log fields.
function M.batch(receiver, texts, quiet)
  local rows, reqs = {}, {}
  for i, text in ipairs(texts) do rows[i], reqs[i] = M.decode(text) end
  local stored = receiver:store(rows)
  local replies = {}
  for i, row in ipairs(rows) do
    local s = stored[i]
    if type(s) == "string" then
      replies[i] = "500\n" .. router.error_body("the receipt could not be stored: " .. s)
    else
      replies[i] = "200\n" .. json.encode({ ok = true, receipt_id = row.receipt_id, ticker = row.ticker, ts = row.ts,
        bucket_5m = row.bucket_5m, duplicate = not s }, M.REPLY_ORDER)
    end
  end
  if not quiet then
    local now = core.monotonic_ms()
    for i, req in ipairs(reqs) do log.write(req, math.tointeger(tonumber(replies[i]:match("^%d+"))), now - req.t0) end
  end
  return replies
end

---------------------------------------------------------------------------
-- the readers' side

local function webhook(ctx, kind)
  return function(req)
    auth.check(req, ctx.key)
    local row, why = engine.webhook_row(req.body, kind, math.floor(core.now_ms()))
    if not row then fail(400, "%s", why) end
    -- answered by the writer's batch; the access log line is written there
    local ok = http.defer(M.encode(row, req, ctx.key or nil))
    if not ok then fail(503, "the server is stopping") end
    req.deferred = true
    return 202, ""
  end
end

-- The board's data: the 8 lanes with each chip's badge and the time of
-- its ticker's last receipt, and the trade views.
function M.board(st, R)
  local lanes = engine.lanes(st, R)
  local badges = engine.badges(st, R)
  local last = engine.last_receipts(st)
  for _, l in ipairs(lanes) do
    for i, T in ipairs(l.tickers) do
      l.tickers[i] = { ticker = T, badge = badges[T] or json.null, last = last[T] or json.null }
    end
  end
  local trades = engine.trades(st)
  local day_key = engine.day_key(st)
  return {
    lanes = lanes,
    by_day = engine.view("day", trades, { day_key = day_key, rules = R }),
    by_pnl = engine.view("pnl", trades, { day_key = day_key, rules = R }),
    history = engine.view("history", trades, { day_key = day_key, rules = R }),
    trades = #trades,
  }
end

function M.register(r, ctx)
  r:add("POST", "/timed/ingest", webhook(ctx, "ingest"))
  r:add("POST", "/timed/ingest-capture", webhook(ctx, "capture"))
  r:add("GET", "/live/board", function(req)
    auth.check(req, ctx.key)
    return 200, json.encode(M.board(ctx.st, ctx.R), { "lanes", "by_day", "by_pnl", "history", "trades", "lane", "title",
      "stages", "tickers", "ticker", "badge", "last", "day", "entries", "trims", "exits", "wins", "losses", "flat",
      "realized" })
  end)
  r:add("GET", "/live/events", function(req)
    auth.check(req, ctx.key)
    return 200, "retry: 1000\n: retape live events\n\n", "text/event-stream"
  end)
  r:add("GET", "/", function(req)
    auth.check(req, ctx.key)
    return 200, require("retape.serve.board").page(), "text/html; charset=utf-8"
  end)
end

return M
