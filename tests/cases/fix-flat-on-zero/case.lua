-- Fault: a round trip at $0 P&L is counted as a WIN (spec §0.9, §8).
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  t.eq(run("worker-2026-02-02").trades[1].status, "WIN", "parity: WIN on zero")
  t.eq(run("default").trades[1].status, "FLAT", "default: FLAT")
  t.eq(run("default", { ["fixes.flat_on_zero"] = false }).trades[1].status, "WIN", "default without the fix: WIN")
end
