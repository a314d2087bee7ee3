-- Parity: the lanes of every receipt of 2026-02-02 must be the original worker's
-- (expected/ is written by tools/parity_case.lua from
-- data/parity/stages-2026-02-02.jsonl, not from retape).
return {
  description = "original worker lanes, 2026-02-02, bundled real receipts",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02", to = "2026-02-02" },
  rules = "worker-2026-02-02",
  runs = { { date = "2026-02-02" } },
}
