-- A ruleset with extra per-ticker state over two days with synthetic levels:
-- `make test` runs it three times, in pages of 7 and 50 and with a crash and
-- resume half-way; any byte of difference fails.
return {
  description = "default rules + a declared per-ticker counter, 2026-02-02..03",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02", to = "2026-02-03",
               levels = true },
  rules = "rules.lua",
  runs = { { from = "2026-02-02", to = "2026-02-03" } },
}
