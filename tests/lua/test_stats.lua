-- test_stats.lua — retape.stats against figures computed by hand on a fixed
-- set of trades (the arithmetic is written out beside each check), the
-- drawdown case of issue 23 (two exits at one instant, in trade-id order a
-- peak the curve never shows), and the capital model (sizing, fees,
-- slippage).
local t = require "tap"
local stats = require "retape.stats"

local H = 3600000
local function at(day, hhmm) return string.format("2026-02-%02dT%s:00.000Z", day, hhmm) end
-- trade(id, dir, entry, shares, entry_time, events, extra): history ENTRY then events
local function trade(id, dir, entry, entry_time, events, extra)
  local h = { { type = "ENTRY", timestamp = entry_time, price = entry, shares = 10 } }
  local status, trimmed = "WIN", 0
  for _, e in ipairs(events) do
    h[#h + 1] = { type = e[1], timestamp = e[2], price = e[3], shares = e[4] }
    if e[1] == "TRIM" then trimmed = trimmed + e[4] / 10 end
  end
  local tr = { id = id, ticker = id:sub(1, 1), direction = dir, status = status, entryPrice = entry, shares = 10,
               trimmedPct = trimmed, history = h, currentPrice = entry,
               entry_ts = require("retape.views").iso_ms(entry_time) }
  for k, v in pairs(extra or {}) do tr[k] = v end
  return tr
end

-- Day 1 (Mon 2026-02-02, times UTC = ET + 5 h)
local A = trade("A-1", "LONG", 100, at(2, "15:00"), { { "EXIT", at(2, "16:00"), 103, 10 } })          -- +30
local B = trade("B-1", "SHORT", 50, at(2, "15:00"), { { "EXIT", at(2, "16:00"), 52, 10 } })           -- -20 (same instant as A)
local C = trade("C-1", "LONG", 20, at(2, "17:00"), { { "TRIM", at(2, "18:00"), 22, 5 },                -- +10
                                                     { "EXIT", at(2, "19:00"), 17, 5 } })             -- -15: net -5
-- Day 2
local D = trade("D-1", "LONG", 40, at(3, "15:00"), { { "EXIT", at(3, "16:00"), 38, 10 } })            -- -20
local E = trade("E-1", "LONG", 10, at(3, "16:30"), { { "EXIT", at(3, "17:00"), 9.5, 10 } })           -- -5
-- Day 3: no trade.  Day 4
local F = trade("F-1", "LONG", 30, at(5, "15:00"), { { "EXIT", at(5, "20:00"), 35, 10 } })            -- +50
local G = trade("G-1", "LONG", 60, at(5, "19:00"), {}, { status = "OPEN", currentPrice = 61 })        -- open, +10 unrealized
local trades = { G, F, E, D, C, B, A } -- newest first, as a store lists them
local days = { "2026-02-02", "2026-02-03", "2026-02-04", "2026-02-05" }
local s = stats.compute(trades, { capital = { start = 10000.0 }, days = days })

t.eq(string.format("%d/%d/%d/%d/%d", s.trades, s.wins, s.losses, s.flat, s.open), "7/2/4/0/1", "trades / wins / losses / flat / open")
t.eq(s.win_rate, 2 / 6, "win rate: 2 of 6 closed")
t.eq(s.realized, 30, "realized: 30 - 20 - 5 - 20 - 5 + 50")
t.eq(s.unrealized, 10, "unrealized: G marked at 61: (61 - 60) * 10")
t.eq(s.net_pnl, 40, "net P&L = realized + unrealized")
t.eq(s.return_pct, 40 / 10000, "% return: 40 on 10,000")
t.eq(s.avg_win, 40, "average win: (30 + 50) / 2")
t.eq(s.avg_loss, -12.5, "average loss: (-20 - 5 - 20 - 5) / 4")
t.eq(s.expectancy, 5, "expectancy: 30 / 6 closed trades (= 1/3 * 40 + 2/3 * -12.5)")
t.eq(s.profit_factor, 1.6, "profit factor: 80 / 50")
t.eq(s.payoff_ratio, 3.2, "payoff ratio: 40 / 12.5")
t.eq(s.best_trade.id .. " " .. s.best_trade.pnl, "F-1 50", "best trade: F +50")
t.eq(s.worst_trade.id .. " " .. s.worst_trade.pnl, "B-1 -20", "worst trade: B and D at -20, the lower id")
t.eq(s.holding_mean_ms, 1.75 * H, "holding time, mean: (1 + 1 + 2 + 1 + 0.5 + 5) h / 6")
t.eq(s.holding_median_ms, 1 * H, "holding time, median of 0.5 1 1 1 2 5 h: 1 h")
t.eq(s.max_losing_streak, 4, "longest losing streak: B C D E (by exit time, A before B by id)")
t.eq(s.max_winning_streak, 1, "longest winning streak: 1")

-- the curve: one point per instant, A and B netted at 16:00
local ys = {}
for i, p in ipairs(s.equity) do ys[i] = string.format("%g", p[2]) end
t.eq(table.concat(ys, ","), "0,10,20,5,-15,-20,30", "equity curve: 0, +10 (A and B at one instant), +20, +5, -15, -20, +30")
t.eq(s.max_drawdown, 40, "max drawdown off that curve: peak 20 to trough -20 (not 50: A's +30 alone is no state the curve shows)")
t.eq(s.max_drawdown_pct, 40 / 10020, "max drawdown %: 40 of the peak's equity 10,020")
t.eq(s.max_drawdown_duration_ms, 74 * H, "drawdown duration: peak 02-02 18:00Z to back above it 02-05 20:00Z, 74 h")
local uw = {}
for i, p in ipairs(s.underwater) do uw[i] = string.format("%g", p[2]) end
t.eq(table.concat(uw, ","), "0,0,0,-15,-35,-40,0", "underwater: below the running peak at each point")
local function max_fall(curve) -- the largest fall between any two points of the curve, recomputed
  local m = 0
  for i = 1, #curve do for j = i + 1, #curve do m = math.max(m, curve[i][2] - curve[j][2]) end end
  return m
end
t.eq(max_fall(s.equity), s.max_drawdown, "the drawdown is the chart's: largest fall between two plotted points")

-- daily and monthly returns on the equity at the start of each period
local dl = {}
for i, d in ipairs(s.daily) do dl[i] = d.day .. "=" .. string.format("%g", d.pnl) end
t.eq(table.concat(dl, " "), "2026-02-02=5 2026-02-03=-25 2026-02-04=0 2026-02-05=50", "daily P&L, a day without trades is 0")
t.eq(s.daily[2].ret, -25 / 10005, "daily return: -25 on the 10,005 the day started with")
t.eq(s.daily[4].ret, 50 / 9980, "daily return: +50 on 9,980")
t.eq(#s.monthly .. " " .. s.monthly[1].month .. " " .. string.format("%g %g", s.monthly[1].pnl, s.monthly[1].ret), "1 2026-02 30 0.003",
  "monthly: February, +30 on 10,000")
t.eq(s.best_day.day .. " " .. s.worst_day.day, "2026-02-05 2026-02-03", "best day 02-05 (+50), worst 02-03 (-25)")
local function near(a, b) return a and math.abs(a - b) <= 1e-12 * math.max(1, math.abs(b)) end
-- r = {0.0005, -0.00249875, 0, 0.00501002}; mean 0.000752817353848126,
-- sample sd 0.0031266126299539245; downside sqrt((0.00249875^2) / 4)
t.ok(near(s.sharpe, 3.8222211767216083), "Sharpe: mean / sample sd * sqrt(252) = 3.8222", s.sharpe)
t.ok(near(s.sortino, 9.56526424649435), "Sortino: mean / downside deviation * sqrt(252) = 9.5653", s.sortino)
t.ok(near(s.annual_return, 0.2076992046429842), "annual return: 1.003 ^ (252 / 4) - 1", s.annual_return)
t.ok(near(s.calmar, 52.028650763067546), "Calmar: annual return / max drawdown %", s.calmar)

-- the order of the trades given changes nothing
local shuffled = stats.compute({ A, C, E, G, B, D, F }, { capital = { start = 10000.0 }, days = days })
t.ok(shuffled.max_drawdown == s.max_drawdown and shuffled.sharpe == s.sharpe and shuffled.realized == s.realized,
  "figures do not depend on the order of the trades given")

-- the capital model: default = the ruleset's own P&L, bit for bit
local metrics = require "retape.metrics"
local plain = 0
for _, x in ipairs(trades) do plain = plain + metrics.realized(x) end
t.eq(stats.compute(trades).realized, plain, "default capital model: the ruleset's realized P&L exactly")

-- % of equity sizing with fees: X is 1,000 of stock, sized to 50 % of 10,000 (k = 5)
local X = trade("X-1", "LONG", 100, at(2, "15:00"), { { "EXIT", at(2, "16:00"), 110, 10 } })
local Y = trade("Y-1", "LONG", 50, at(2, "17:00"), { { "EXIT", at(2, "18:00"), 40, 10 } })
local cap = { start = 10000.0, sizing = "equity_pct", equity_pct = 50.0, fee_per_order = 1.0, fee_bps = 10.0 }
local c = stats.compute({ X, Y }, { capital = cap })
-- X: gross (110 - 100) * 10 * 5 = 500; fees: entry 1 + 0.001 * 100 * 50 = 6, exit 1 + 0.001 * 110 * 50 = 6.5
-- Y: equity 10,487.5 at entry, k = 0.5 * 10487.5 / 500 = 10.4875; gross -10 * 10 * k = -1048.75;
--    fees 1 + 0.001 * 50 * 10k = 6.24375 and 1 + 0.001 * 40 * 10k = 5.195
t.ok(near(c.realized, 487.5 - 1060.18875), "equity_pct sizing + fees: 487.5 then -1060.18875", c.realized)
t.ok(near(c.fees, 12.5 + 11.43875), "fees paid: 23.93875", c.fees)
t.ok(near(c.equity[2][2], -6) and near(c.equity[3][2], 487.5), "an entry fee is a point of the curve", c.equity[2][2])
-- slippage 100 bps and 0.01 $/share on the ruleset's sizes
local S = trade("S-1", "SHORT", 50, at(2, "15:00"), { { "EXIT", at(2, "16:00"), 45, 10 } })
local sl = stats.compute({ X, S }, { capital = { slippage_bps = 100.0, fee_per_share = 0.01 } })
-- X: bought 101, sold 108.9: 7.9 * 10 = 79, fees 0.1 + 0.1; S: sold 49.5, bought back 45.45: 40.5, fees 0.2
t.ok(near(sl.realized, 78.8 + 40.3), "slippage against each fill, per-share fees: 78.8 + 40.3", sl.realized)
t.fails(function() stats.compute({}, { capital = { sizing = "kelly" } }) end, "capital.sizing is one of", "a sizing nobody knows is refused")
t.fails(function() stats.compute({}, { capital = { start = 0 } }) end, "capital.start must be a positive", "a starting capital of 0 is refused")

-- nothing to compute on
local e = stats.compute({}, { days = { "2026-02-02" } })
t.ok(e.trades == 0 and e.max_drawdown == 0 and e.sharpe == nil and e.expectancy == nil and #e.equity == 0,
  "no trades: zero drawdown, no Sharpe, no expectancy")
t.eq(stats.duration(74 * H), "3 d 2 h", "a duration a person reads")
os.exit(t.done())
