-- test_metrics.lua — the definitions every view shares (retape.metrics):
-- time formats (New York with its offset, across a DST change), outcome,
-- realized / unrealized, totals, profit factor, equity curve and drawdown.
local t = require "tap"
local metrics = require "retape.metrics"

-- time: 14:30Z is 09:30 EST in February, 13:30Z is 09:30 EDT in July
t.eq(metrics.time(1770042600000), "2026-02-02 09:30 ET", "person-readable time: New York, with the zone")
t.eq(metrics.iso(1770042600000), "2026-02-02T09:30:00-05:00", "JSON/CSV time: ISO-8601 with the winter offset")
t.eq(metrics.iso(1783690200000), "2026-07-10T09:30:00-04:00", "ISO-8601 with the summer offset")
t.eq(metrics.time(nil), "", "no time: empty")

local function trade(id, dir, status, entry, events, extra)
  local h = { { type = "ENTRY", timestamp = "2026-02-02T15:00:00.000Z", price = entry, shares = 10 } }
  for _, e in ipairs(events) do h[#h + 1] = e end
  local tr = { id = id, ticker = id, direction = dir, status = status, entryPrice = entry, shares = 10, trimmedPct = 0,
               history = h, currentPrice = entry }
  for k, v in pairs(extra or {}) do tr[k] = v end
  return tr
end
local win = trade("W", "LONG", "WIN", 100, { { type = "EXIT", timestamp = "2026-02-02T16:00:00.000Z", price = 103, shares = 10 } })
local loss = trade("L", "SHORT", "LOSS", 50, { { type = "EXIT", timestamp = "2026-02-02T17:00:00.000Z", price = 52, shares = 10 } })
local flat = trade("F", "LONG", "FLAT", 20, { { type = "EXIT", timestamp = "2026-02-02T18:00:00.000Z", price = 20, shares = 10 } })
-- status says WIN but the money says loss: the sign of the money decides
local odd = trade("O", "LONG", "WIN", 10, { { type = "EXIT", timestamp = "2026-02-02T19:00:00.000Z", price = 9, shares = 10 } })
local open = trade("P", "SHORT", "TP_HIT_TRIM", 40, { { type = "TRIM", timestamp = "2026-02-02T16:30:00.000Z", price = 38, shares = 5 } },
  { trimmedPct = 0.5, currentPrice = 36 })
t.eq(metrics.outcome(win), "win", "realized > 0: win")
t.eq(metrics.outcome(loss), "loss", "a SHORT exiting above entry: loss")
t.eq(metrics.outcome(flat), "flat", "realized 0: flat")
t.eq(metrics.outcome(odd), "loss", "status WIN with a negative realized P&L: loss (one definition)")
t.eq(metrics.outcome(open), "open", "TP_HIT_TRIM: still open")
t.eq(metrics.realized(open), 10, "realized of a trim of a SHORT: (40 - 38) * 5")
t.eq(metrics.unrealized(open), 20, "unrealized: remaining half marked at 36: (40 - 36) * 10 * 0.5")
t.eq(metrics.unrealized(win), 0, "a closed trade has no unrealized P&L")
t.eq(metrics.trimmed(open), "50%", "trimmed is a percentage")

local tot = metrics.totals { win, loss, flat, odd, open }
t.eq(string.format("%d/%d/%d/%d", tot.wins, tot.losses, tot.flat, tot.open), "1/2/1/1", "totals: wins/losses/flat/open")
t.eq(tot.win_rate, 0.25, "win rate: wins / closed trades")
t.eq(tot.realized, 30 - 20 + 0 - 10 + 10, "realized: sum over trades")
t.eq(tot.pnl, tot.realized + 20, "total = realized + unrealized")
t.eq(tot.profit_factor, 30 / 30, "profit factor: gross win / gross loss of closed trades")

local curve, dd = metrics.equity { win, loss, odd, open }
-- events in time: W exit +30 (16:00), P trim +10 (16:30), L exit -20 (17:00), O exit -10 (19:00)
local ys = {}
for i, p in ipairs(curve) do ys[i] = p[2] end
t.eq(table.concat(ys, ","), "0,30,40,20,10", "equity curve: 0 at the first entry, then each trim and exit")
t.eq(dd, 30, "max drawdown: peak 40 to trough 10")
os.exit(t.done())
