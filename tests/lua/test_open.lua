-- test_open.lua — one definition of "this trade is open": the ruleset's
-- (R.trade_is_open).  metrics, the views (By Day, By P&L), the statistics
-- and the serve views (serve.engine.view, behind /retape/trades?by= and
-- /live/board) all take it from the ruleset that made the trades, so they
-- agree with each other and with the replay, also on an empty or missing
-- status and on a status word only a user ruleset knows.
local t = require "tap"
local metrics = require "retape.metrics"
local views = require "retape.views"
local stats = require "retape.stats"
local rules = require "retape.rules"
local engine = require "retape.serve.engine"

local function trade(id, status)
  return { id = id, ticker = id, direction = "LONG", status = status, entryPrice = 100, shares = 10, trimmedPct = 0,
           currentPrice = 104, pointValue = 1,
           history = { { type = "ENTRY", timestamp = "2026-02-02T15:00:00.000Z", price = 100, shares = 10 } } }
end
-- C has no status at all (nil)
local trades = { trade("A", "OPEN"), trade("B", ""), trade("C", nil), trade("D", "WIN"), trade("E", "RUNNING"),
                 trade("F", "TP_HIT_TRIM") }
trades[4].history[2] = { type = "EXIT", timestamp = "2026-02-02T16:00:00.000Z", price = 101, shares = 10 }

-- a rule file with its own status words: only RUNNING is open
local dir = t.tempdir()
local path = dir .. "/running.lua"
local f = assert(io.open(path, "w"))
f:write([[
local R = require("retape.rules").load("worker-2026-02-02")
R.name = "running"
function R.trade_is_open(t) return t.status == "RUNNING" end
return R
]])
f:close()

local cases = {
  { "the parity ruleset", rules.load("worker-2026-02-02"), { A = true, B = true, C = true, F = true } },
  { "the default ruleset", rules.load("default"), { A = true, B = true, C = true, F = true } },
  { "a rule file's own words", rules.load(path), { E = true } },
  { "no ruleset given (the default ruleset's)", nil, { A = true, B = true, C = true, F = true } },
}
for _, c in ipairs(cases) do
  local name, R, want = c[1], c[2], c[3]
  local m = metrics.of(R)
  local n_open = 0
  for _ in pairs(want) do n_open = n_open + 1 end
  -- the ruleset itself (what the replay asks) and metrics
  local is, outcome, unreal = {}, {}, {}
  for _, tr in ipairs(trades) do
    local id = tr.id
    if R then t.eq(R.trade_is_open(tr) and true or false, want[id] == true, name .. ": the ruleset on " .. id) end
    is[#is + 1] = tostring(m.is_open(tr))
    outcome[#outcome + 1] = m.outcome(tr) == "open" and "open" or "closed"
    unreal[#unreal + 1] = m.unrealized(tr) ~= 0 and "marked" or "0"
  end
  local want_is, want_outcome, want_unreal = {}, {}, {}
  for _, tr in ipairs(trades) do
    want_is[#want_is + 1] = tostring(want[tr.id] == true)
    want_outcome[#want_outcome + 1] = want[tr.id] and "open" or "closed"
    want_unreal[#want_unreal + 1] = want[tr.id] and "marked" or "0"
  end
  t.eq(table.concat(is, " "), table.concat(want_is, " "), name .. ": metrics.is_open, status OPEN '' nil WIN RUNNING TP_HIT_TRIM")
  t.eq(table.concat(outcome, " "), table.concat(want_outcome, " "), name .. ": metrics.outcome")
  t.eq(table.concat(unreal, " "), table.concat(want_unreal, " "), name .. ": only open trades are marked to market")
  -- By P&L, directly and as the server shows it
  local function open_of(rows)
    local got = {}
    for _, r in ipairs(rows) do if r.open > 0 then got[#got + 1] = r.ticker end end
    table.sort(got)
    return table.concat(got, ",")
  end
  local want_list = {}
  for id in pairs(want) do want_list[#want_list + 1] = id end
  table.sort(want_list)
  t.eq(open_of(views.by_pnl(trades, nil, { rules = R })), table.concat(want_list, ","), name .. ": By P&L counts these open")
  t.eq(open_of(engine.view("pnl", trades, { rules = R })), table.concat(want_list, ","), name .. ": serve's By P&L agrees")
  -- the statistics: open count and unrealized P&L (each open trade: (104 - 100) * 10)
  local s = stats.compute(trades, { rules = R })
  t.eq(s.open, n_open, name .. ": stats count the same open trades")
  t.eq(s.unrealized, 40 * n_open, name .. ": stats mark the same open trades")
  -- By Day: D closed that day as a win; an open trade keeps its last price on the last day
  local day = views.by_day(trades, { rules = R })[1]
  local marked = {}
  for _, r in ipairs(day.trades) do if r.close then marked[#marked + 1] = r.ticker end end
  table.sort(marked)
  t.eq(table.concat(marked, ","), table.concat(want_list, ","), name .. ": By Day marks the same open trades")
  local dview = engine.view("day", trades, { rules = R })[1]
  t.eq(dview.wins, day.wins, name .. ": serve's By Day agrees")
end
t.done()
