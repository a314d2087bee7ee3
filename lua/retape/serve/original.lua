-- retape.serve.original — the original worker's endpoints (spec §4.4, §5,
-- §6.1-6.2) with their paths, parameters and response shapes:
--   POST /timed/admin/replay-ingest, /timed/admin/refresh-latest-from-ingest,
--        /timed/admin/force-sync            (key required; one writer at a time)
--   GET  /timed/all, /timed/latest, /timed/trades, /timed/ledger/trades,
--        /timed/health, /timed/version      (open, as in the original)
-- The admin handlers check their parameters here (400 names the parameter),
-- then hand the work to the writer state through http.exclusive().
local router = require "retape.serve.router"
local auth = require "retape.serve.auth"
local engine = require "retape.serve.engine"
local json = require "retape.json"
local rtime = require "retape.time"
local core = require "retape.core"
local http = require "retape.http"
local validate = require "retape.validate"

local M = {}
local fail = router.fail

M.INGEST_ORDER = { "ok", "date", "ticker", "bucketProcessed", "bucketOffset", "rowsProcessed", "tradesCreated",
  "tradesPurged", "nextBucket", "nextBucketOffset", "hasMore", "hasMoreInBucket", "debug", "rows", "enterNowCount" }
M.DEFAULT_LIMIT, M.MAX_LIMIT = 100, 200          -- e739's page: default 100, max 200
M.REFRESH_LIMIT, M.REFRESH_MAX = 25, 50

local BUCKET_MS = rtime.BUCKET_MS

local function flag(v) return v == "1" or v == "true" end

-- Every parameter goes through retape.validate, the CLI's validator: the
-- server accepts and refuses exactly what the CLI does.
local function int_param(q, name, min, max)
  local v = q[name]
  if v == nil or v == "" then return nil end
  local n, why = validate.integer(v, min, max)
  if not n then fail(400, "%s: %s", name, why) end
  return n
end

-- ticker_param(q) -> the checked ticker list as given | nil (every ticker);
-- "%00", ",", a control byte are 400, never every ticker.
local function ticker_param(q, required)
  local v = q.ticker
  if v == nil or v == "" then
    if required then fail(400, "ticker: missing (?ticker=)") end
    return nil
  end
  local list, why = validate.ticker_list(v)
  if not list then fail(400, "ticker: %s", why) end
  return v, list
end
M.ticker_param = ticker_param

-- The parameters of replay-ingest (spec §6.1), checked; defaults applied.
function M.ingest_params(q)
  local date = q.date
  if date == nil or date == "" then date = rtime.ny_date(core.now_ms())
  else
    local why
    date, why = validate.date(date)
    if not date then fail(400, "date: %s", why) end
  end
  local bucket
  if q.bucket ~= nil and q.bucket ~= "" then
    local why
    if not q.bucket:match("^%d+$") then fail(400, "bucket: '%s' is not a time in milliseconds", validate.shown(q.bucket)) end
    bucket, why = validate.instant(q.bucket, date, true)
    if not bucket then fail(400, "bucket: %s", why) end
  end
  bucket = bucket or (rtime.session(date)) -- default: the 09:30 bucket
  local p = {
    date = date, bucket = bucket,
    offset = int_param(q, "bucketOffset", 0) or 0,
    limit = int_param(q, "limit", 1, M.MAX_LIMIT) or M.DEFAULT_LIMIT,
    ticker = ticker_param(q),
    script_version = (q.scriptVersion and q.scriptVersion ~= "") and q.scriptVersion or nil,
    clean_slate = flag(q.cleanSlate), debug = flag(q.debug),
  }
  return p
end

-- Runs op through the writer state; 409 while another write runs.
local function exclusive(op, params)
  local reply, err = http.exclusive(json.encode { op = op, params = params })
  if not reply then
    if err == "busy" then
      if http.stopping() then fail(503, "the server is stopping") end
      fail(409, "a replay is already running (one writer at a time); retry when it ends")
    end
    if err == "stopping" then fail(503, "the server is stopping") end
    fail(500, "%s", err)
  end
  local status, body = reply:match("^(%d+)\n(.*)$")
  return math.tointeger(tonumber(status)), body
end
M.exclusive = exclusive

function M.register(r, ctx)
  r:add("POST", "/timed/admin/replay-ingest", function(req)
    auth.check(req, ctx.key)
    return exclusive("ingest", M.ingest_params(req.query))
  end)

  r:add("POST", "/timed/admin/refresh-latest-from-ingest", function(req)
    auth.check(req, ctx.key)
    local q = req.query
    return exclusive("refresh", { limit = int_param(q, "limit", 1, M.REFRESH_MAX) or M.REFRESH_LIMIT,
      offset = int_param(q, "offset", 0) or 0 })
  end)

  r:add("POST", "/timed/admin/force-sync", function(req)
    auth.check(req, ctx.key)
    return exclusive("sync", {})
  end)

  r:add("GET", "/timed/health", function()
    return 200, { ok = true, service = "retape", version = core.version, time = rtime.iso_utc(math.floor(core.now_ms())),
      replay = http.writing() and "running" or "idle" },
      { "ok", "service", "version", "time", "replay" }
  end)

  r:add("GET", "/timed/version", function()
    return 200, { ok = true, version = core.version, engine = "retape", lua_api = core.lua_api,
      scriptVersion = engine.DEFAULT_SCRIPT_VERSION, rules = ctx.R.name },
      { "ok", "version", "engine", "lua_api", "scriptVersion", "rules" }
  end)

  r:add("GET", "/timed/all", function()
    local data, n = json.object(), 0
    engine.each_latest(ctx.st, function(T, p) data[T] = p; n = n + 1 end)
    return 200, { ok = true, count = n, data = data }, { "ok", "count", "data" }
  end)

  r:add("GET", "/timed/latest", function(req)
    local _, list = ticker_param(req.query, true)
    local T = list[1]
    local p = engine.latest(ctx.st, T)
    if not p then fail(404, "no latest state for %s", T) end
    return 200, { ok = true, ticker = T, data = p }, { "ok", "ticker", "data" }
  end)

  r:add("GET", "/timed/trades", function(req)
    local trades = engine.trades(ctx.st)
    local _, list = ticker_param(req.query)
    if list then
      local keep, f = {}, {}
      for _, T in ipairs(list) do keep[T] = true end
      for _, t in ipairs(trades) do if keep[t.ticker] then f[#f + 1] = t end end
      trades = f
    end
    local order = { "ok", "count", "trades", table.unpack(engine.TRADE_ORDER) }
    return 200, { ok = true, count = #trades, trades = trades }, order
  end)

  r:add("GET", "/timed/ledger/trades", function()
    local rows, err = engine.ledger_trades(ctx.ledger)
    if not rows then fail(500, "ledger: %s", err) end
    return 200, { ok = true, count = #rows, trades = rows }, { "ok", "count", "trades", "trade_id", "ticker",
      "direction", "entry_ts", "entry_price", "rank", "rr", "status", "exit_ts", "exit_price", "exit_reason",
      "trimmed_pct", "pnl", "pnl_pct", "script_version", "created_at", "updated_at" }
  end)
end

---------------------------------------------------------------------------
-- the writer state's side of the admin endpoints

-- writer_ops(w) -> { op = function(params) -> status, value, order }
function M.writer_ops(w, ledger)
  return {
    ingest = function(p)
      local resp = w:ingest(p)
      local out = {}
      for _, k in ipairs { "ok", "date", "ticker", "bucketProcessed", "bucketOffset", "rowsProcessed",
        "tradesCreated", "tradesPurged", "nextBucket", "nextBucketOffset", "hasMore", "hasMoreInBucket", "debug" } do
        out[k] = resp[k]
      end
      return 200, out, M.INGEST_ORDER
    end,
    refresh = function(p)
      local tickers = w:tickers()
      local last = math.min(#tickers, p.offset + p.limit)
      local refreshed = math.max(0, last - p.offset)
      local more = last < #tickers
      return 200, { ok = true, refreshed = refreshed, offset = p.offset, limit = p.limit, total = #tickers,
        hasMore = more, nextOffset = more and last or json.null },
        { "ok", "refreshed", "offset", "limit", "total", "hasMore", "nextOffset" }
    end,
    sync = function()
      local c = w:sync(ledger)
      return 200, { ok = true, synced = c.tickers, trades = c.trades, events = c.events, ledger = ledger },
        { "ok", "synced", "trades", "events", "ledger" }
    end,
  }
end

return M
