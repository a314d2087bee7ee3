-- Fault: replay has no cooldowns (spec §4.2, §6.3 #17): a ticker flapping
-- in and out of the corridor with a new trigger each time re-enters every
-- few minutes (PWR got 12 trades, §6.3 #16).  Default: 10-minute enter
-- cooldown on receipt time.
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  t.eq(#run("worker-2026-02-02").trades, 4, "parity: 4 entries in 14 minutes")
  local fixed = run "default"
  t.eq(#fixed.trades, 2, "default: 2 entries, 12 minutes apart")
  t.ok(fixed.trades[2].entry_ts - fixed.trades[1].entry_ts >= 10 * 60000, "default: entries at least 10 minutes apart")
  t.eq(#run("default", { ["fixes.cooldown.enter_ms"] = 0 }).trades, 3, "default without the cooldown: 3 entries")
end
