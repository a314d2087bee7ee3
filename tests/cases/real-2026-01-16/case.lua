-- A real day not covered by the parity references: 2026-01-16, bundled
-- receipts with synthetic levels so trades open.  Expected files produced by
-- retape and reviewed (see README.md), then blessed.
return {
  description = "2026-01-16, all tickers, synthetic levels",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-01-16", to = "2026-01-16",
               levels = true },
  rules = "worker-2026-02-02",
  runs = { { date = "2026-01-16" } },
}
