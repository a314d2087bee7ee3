-- Fault: receipts without trigger_ts get the row time as trigger, so the
-- lifecycle gate never matches and every management row is forced back to
-- enter_now (spec §3.7, §8; 961 of 1,689 rows on 2026-02-02).
return function(t)
  local function run(rules, overrides)
    return t.replay { receipts = "receipts.jsonl", rules = rules, overrides = overrides, runs = { { date = "2026-02-02" } } }
  end
  local function forced(r)
    local n = 0
    for _, rec in ipairs(r.records) do if rec.forced then n = n + 1 end end
    return n
  end
  local parity, fixed = run "worker-2026-02-02", run "default"
  t.eq(forced(parity), 5, "parity: 5 of 6 rows forced to enter_now")
  t.eq(forced(fixed), 0, "default: no forced row")
  t.eq(t.stage_at(fixed, "TST", "09:35"), "just_entered", "default: the position shows as Just Entered")
  t.eq(t.stage_at(fixed, "TST", "09:55"), "hold", "default: then Hold")
  t.eq(forced(run("default", { ["fixes.synthesize_trigger_ts"] = true })), 5, "default without the fix behaves like parity")
end
