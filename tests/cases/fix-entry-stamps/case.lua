-- Fault: entry stamps stick for the rest of the day, so a re-entry reuses
-- the first entry price (spec §3.7; lesson 2026-02-10 "Live entries MUST use
-- current market price").  Default: cleared when the position closes.
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  local parity, fixed = run "worker-2026-02-02", run "default"
  t.eq(#parity.trades, 2, "parity: two trades")
  t.eq(parity.trades[2].entryPrice, 100, "parity: the re-entry at 10:00 reuses the 09:30 price")
  t.eq(t.stage_at(parity, "TST", "09:40"), "exit", "parity: still 'in a move' after the exit")
  t.eq(#fixed.trades, 2, "default: two trades")
  t.eq(fixed.trades[2].entryPrice, 104, "default: the re-entry records its own price")
  t.eq(t.stage_at(fixed, "TST", "09:40"), "watch", "default: back to Watching after the exit")
  local without = run("default", { ["fixes.clear_entry_on_close"] = false, ["fixes.own_entry_per_cycle"] = false })
  t.eq(without.trades[2] and without.trades[2].entryPrice, 100, "default without the fix behaves like parity")
end
