-- A case to copy: what does widening the LONG corridor's upper LTF band from
-- 22 to 25 change on 2026-02-02 (with synthetic levels so trades open)?
-- Workflow: edit a number below -> `retape test examples/cases` -> read the
-- first divergence -> `retape test --bless examples/cases/wider-long-corridor`
-- -> `git diff` shows exactly the lanes and trades the change moved.
return {
  description = "parity rules with corridor.long.ltf_max = 25 instead of 22",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02", to = "2026-02-02",
               levels = true },
  rules = "worker-2026-02-02",
  overrides = { ["corridor.long.ltf_max"] = 25 },
  runs = { { date = "2026-02-02" } },
}
