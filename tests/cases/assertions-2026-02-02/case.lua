-- A script case: assertions on the levels day instead of golden files.
return function(t)
  local r = t.replay {
    receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02", to = "2026-02-02",
                 levels = true },
    rules = "worker-2026-02-02",
    runs = { { date = "2026-02-02" } },
  }
  t.eq(#r.trades, 44, "44 trades on the levels day")
  t.eq(t.stage_at(r, "EWBC", "15:53"), "enter_now", "EWBC enters at 15:53 ET")
  t.eq(t.stage_at(r, "CLS", "15:59"), "exit", "CLS is in Exit before the close")
  local cls = 0
  for _, tr in ipairs(r.trades) do if tr.ticker == "CLS" then cls = cls + 1 end end
  t.eq(cls, 2, "exactly 2 trades for CLS")
  for _, tr in ipairs(r.trades) do
    for _, e in ipairs(tr.history) do
      if e.type == "EXIT" then
        t.ok(e.timestamp >= tr.entryTime, "no trade exits before its entry", tr.id)
      end
    end
    t.ok(tr.trimmedPct <= 0.95, "trims never exceed 95 %", tr.id)
  end
end
