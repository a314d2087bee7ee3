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
local validate = require "retape.validate"

local M = {}
local fail = router.fail

-- ?at= as `retape lanes --at` reads it (retape.validate.instant, the CLI's
-- check): HH:MM with ?date=, 'YYYY-MM-DD HH:MM', or ms; 25:99 is a 400.
local function at_param(q)
  local at = q.at
  if not at or at == "" then return nil end
  local ms, why = validate.instant(at, q.date ~= "" and q.date or nil)
  if not ms then fail(400, "at: %s", why) end
  return ms
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
    local _, list = require("retape.serve.original").ticker_param(q)
    if list then
      local keep, f = {}, {}
      for _, T in ipairs(list) do keep[T] = true end
      for _, t in ipairs(trades) do if keep[t.ticker] then f[#f + 1] = t end end
      trades = f
    end
    if not by then return 200, json.encode(trades, engine.TRADE_ORDER) end
    local rows = engine.view(by, trades, { day_key = day_key, days = days, rules = ctx.R })
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
