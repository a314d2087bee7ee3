-- Three days in one run (2026-01-21 to 01-23): lanes, entry stamps and open
-- trades carry from day to day.  Synthetic levels so trades open.
return {
  description = "2026-01-21..23 as one range, state carried over",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-01-21", to = "2026-01-23",
               levels = true },
  rules = "worker-2026-02-02",
  runs = { { from = "2026-01-21", to = "2026-01-23" } },
}
