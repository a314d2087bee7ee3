-- retape.serve.own — retape's own read endpoints; each body is byte for
-- byte what the matching CLI command prints with --json:
--   GET /retape/lanes[?date=D&at=HH:MM|MS]      retape lanes --json [--date D --at T]
--   GET /retape/trades[?by=day|pnl|history&days=N&ticker=T&day_key=ny|utc]
--                                               retape trades --json [--by ...]
--   GET /retape/runs                            retape runs --json
local router = require "retape.serve.router"
local auth = require "retape.serve.auth"
local engine = require "retape.serve.engine"
local json = require "retape.json"
local rtime = require "retape.time"

local M = {}
local fail = router.fail

local function at_param(q)
  local at = q.at
  if not at or at == "" then return nil end
  local ms = at:match("^%d+$") and math.tointeger(tonumber(at))
  if ms then return ms end
  local h, m = at:match("^(%d%d?):(%d%d)$")
  if not h then fail(400, "at: expects HH:MM (New York) or milliseconds, got '%s'", at) end
  if tonumber(h) > 23 or tonumber(m) > 59 then fail(400, "at: '%s' is not a time of day", at) end
  local y, mo, d = rtime.parse_date(q.date or "")
  if not y then fail(400, "date: '%s' is not a date (YYYY-MM-DD); at HH:MM needs it", tostring(q.date)) end
  return rtime.from_ny(y, mo, d, tonumber(h), tonumber(m))
end

function M.register(r, ctx)
  r:add("GET", "/retape/lanes", function(req)
    auth.check(req, ctx.key)
    local at = at_param(req.query)
    local lanes = engine.lanes(ctx.st, ctx.R, at)
    local badges = engine.badges(ctx.st, ctx.R, at)
    for _, l in ipairs(lanes) do -- one shape per array, as `retape lanes --json`
      for i, T in ipairs(l.tickers) do l.tickers[i] = { ticker = T, badge = badges[T] or json.null } end
    end
    return 200, json.encode(lanes, { "lane", "title", "stages", "tickers", "ticker", "badge" })
  end)

  r:add("GET", "/retape/trades", function(req)
    auth.check(req, ctx.key)
    local q = req.query
    local by = q.by ~= "" and q.by or nil
    if by and by ~= "day" and by ~= "pnl" and by ~= "history" then
      fail(400, "by: expects day, pnl or history, got '%s'", by)
    end
    local days
    if q.days and q.days ~= "" then
      days = math.tointeger(tonumber(q.days))
      if not days or days < 1 then fail(400, "days: '%s' is not a positive integer", q.days) end
    end
    local day_key = q.day_key ~= "" and q.day_key or nil
    if day_key and day_key ~= "ny" and day_key ~= "utc" then fail(400, "day_key: expects ny or utc, got '%s'", day_key) end
    local trades = engine.trades(ctx.st)
    day_key = day_key or engine.day_key(ctx.st)
    if q.ticker and q.ticker ~= "" then
      local keep, f = {}, {}
      for _, T in ipairs(engine.ticker_list(q.ticker)) do keep[T] = true end
      for _, t in ipairs(trades) do if keep[t.ticker] then f[#f + 1] = t end end
      trades = f
    end
    if not by then return 200, json.encode(trades, engine.TRADE_ORDER) end
    local rows = engine.view(by, trades, { day_key = day_key, days = days })
    if by == "day" then
      return 200, json.encode(rows, { "day", "entries", "trims", "exits", "wins", "losses", "flat", "realized", "trades" })
    end
    return 200, json.encode(rows)
  end)

  r:add("GET", "/retape/runs", function(req)
    auth.check(req, ctx.key)
    return 200, json.encode(engine.runs(ctx.st), engine.MANIFEST_ORDER)
  end)
end

return M
