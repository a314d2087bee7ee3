-- test_metrics.lua — the definitions every view shares (retape.metrics):
-- time formats (New York with its offset, across a DST change), outcome,
-- realized / unrealized of one trade (the figures of many: test_stats.lua).
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

os.exit(t.done())
