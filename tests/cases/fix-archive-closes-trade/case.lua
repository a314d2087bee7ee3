-- Fault: a stop-loss breach moves the ticker to Archived but the trade stays
-- OPEN (spec §0.6, §8).  Default: archive closes it at the stop (95).
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  local parity, fixed = run "worker-2026-02-02", run "default"
  local without = run("default", { ["fixes.archive_closes_trade"] = false })
  t.eq(t.stage_at(parity, "TST", "09:40"), "archive", "parity: the SL breach archives the ticker")
  t.eq(parity.trades[1].status, "OPEN", "parity: the trade stays open in Archived")
  t.eq(fixed.trades[1].status, "LOSS", "default: archive closes the trade")
  t.eq(fixed.trades[1].exitPrice, 95, "default: filled at the stop (level fill)")
  t.eq(fixed.trades[1].exitReason, "sl_breached", "default: exit reason names the breach")
  t.eq(without.trades[1].status, "OPEN", "default without the fix behaves like parity")
  local at_price = run("default", { ["fixes.archive_fill"] = "price" })
  t.eq(at_price.trades[1].exitPrice, 94, "fill rule 'price': at the receipt's price")
end
