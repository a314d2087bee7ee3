-- A single-ticker re-run with clean slate over a store that holds every
-- other ticker: the whole day first, then CVNA again with cleanSlate.  The
-- lanes file holds both passes; the trades are the store's at the end.
return {
  description = "2026-02-04 all tickers, then CVNA re-run with clean slate",
  receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-04", to = "2026-02-04",
               levels = true },
  rules = "worker-2026-02-02",
  runs = { { date = "2026-02-04" }, { date = "2026-02-04", ticker = "CVNA", clean_slate = true } },
}
