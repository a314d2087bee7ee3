-- Fault found while porting: an entry checks only that sl and tp are
-- positive (spec §4.2), so a LONG opens at 111 with its target at 110,
-- already reached; it then closes "at the target" for a loss.
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  t.eq(#run("worker-2026-02-02").trades, 1, "parity: opens beyond its own target")
  t.eq(#run("default").trades, 0, "default: no entry with levels on the wrong side")
  t.eq(#run("default", { ["fixes.entry_levels_on_side"] = false }).trades, 1, "default without the fix: opens")
end
