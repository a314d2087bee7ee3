-- Parity with trades: 2026-02-02 with the reference's synthetic levels
-- merged in (retape.levels rebuilds them exactly); the lanes and the 44
-- trades must be the original's (expected/ comes from levels-2026-02-02.json
-- through tools/parity_case.lua).
return {
  description = "original worker lanes and trades, 2026-02-02 with synthetic levels",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02", to = "2026-02-02",
               levels = true },
  rules = "worker-2026-02-02",
  runs = { { date = "2026-02-02" } },
}
