-- test_views.lua — Trade By Day / By P&L / History on hand-made trades:
-- realized P&L from trims and exits, wins/losses by the trade's realized
-- P&L (retape.metrics.outcome, as every view), unrealized from open trades, and UTC vs New York day keys.
local t = require "tap"
local views = require("retape").views

local trades = {
  { id = "A-1", ticker = "A", direction = "LONG", entryPrice = 100, shares = 10, trimmedPct = 0.5, status = "LOSS",
    currentPrice = 98, history = {
      { type = "ENTRY", timestamp = "2026-02-02T15:00:00.000Z", price = 100, shares = 10, value = 1000 },
      { type = "TRIM", timestamp = "2026-02-02T16:00:00.000Z", price = 110, shares = 5, value = 550 },
      { type = "EXIT", timestamp = "2026-02-03T02:30:00.000Z", price = 98, shares = 5, value = 490 } } },
  { id = "B-1", ticker = "B", direction = "SHORT", entryPrice = 50, shares = 20, trimmedPct = 0, status = "OPEN",
    currentPrice = 45, history = {
      { type = "ENTRY", timestamp = "2026-02-02T15:30:00.000Z", price = 50, shares = 20, value = 1000 } } },
}
local utc = views.by_day(trades)
t.eq(#utc, 2, "UTC day keys: the 21:30 ET exit falls on the next UTC day")
t.eq(utc[1].realized, 50, "day 1 realized: the trim (+50)")
t.eq(utc[2].wins .. "/" .. utc[2].losses, "1/0", "day 2: the trade closes +40 (trim +50, exit -10): a win, as in diff and the report")
local ny = views.by_day(trades, { day_key = "ny" })
t.eq(#ny, 1, "New York day keys: one trading day")
t.eq(ny[1].realized, 40, "realized = trim +50, exit -10")
t.eq(ny[1].entries .. "/" .. ny[1].trims .. "/" .. ny[1].exits, "2/1/1", "counts of entries, trims, exits")
local marked = views.by_day(trades, { day_key = "ny", closes = { ["2026-02-02"] = { A = 120, B = 48 } } })
local rows = {}
for _, r in ipairs(marked[1].trades) do rows[r.ticker] = r end
t.eq(rows.B.close .. " " .. rows.B.unrealized, "48 40", "By Day: an open SHORT marked at that day's close: (50 - 48) * 20")
t.eq(rows.A.remaining .. " " .. tostring(rows.A.close), "0 nil", "By Day: a trade closed that day has nothing left to mark")
local half = views.by_day({ trades[1] }, { day_key = "utc" })
t.eq(half[1].trades[1].remaining, 5, "By Day: remaining at the end of the day (the trim sold 5 of 10)")
t.eq(half[1].trades[1].close, nil, "By Day: no close price for an earlier day without the receipts")
local pnl = views.by_pnl(trades)
t.eq(pnl[1].ticker, "B", "by P&L: the open SHORT first")
t.eq(pnl[1].unrealized, 100, "unrealized of a SHORT: (50 - 45) * 20")
t.eq(pnl[2].total, 40, "A: realized only")
local hist = views.history(trades)
t.eq(#hist, 4, "history: every event")
t.eq(hist[1].type .. hist[4].type, "ENTRYEXIT", "history: oldest first")
t.eq(views.iso_ms("2026-02-02T14:30:00.000Z"), 1770042600000, "ISO timestamps to ms")
os.exit(t.done())
