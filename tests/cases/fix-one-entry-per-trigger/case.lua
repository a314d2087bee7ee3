-- Fault: nothing stops a second entry on the same trigger once the first
-- trade closed (the PWR re-entries, spec §6.3 #16).  Default: one entry per
-- trigger cycle and side.
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  local fixed = run "default"
  t.eq(t.stage_at(fixed, "TST", "09:50"), "enter_now", "default: back in Enter Now at 09:50")
  t.eq(#fixed.trades, 1, "default: no second entry on the same trigger")
  t.eq(#run("default", { ["fixes.one_entry_per_trigger"] = false }).trades, 2, "default without the fix: a second entry")
end
