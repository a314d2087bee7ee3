-- The trim ladder of examples/rules/gentle-trims.lua: every trim lands on
-- one of its rungs and none goes past its 60 % cap.
return function(t)
  local r = t.replay {
    receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02",
                 to = "2026-02-02", levels = true },
    rules = "../../rules/gentle-trims.lua",
    runs = { { date = "2026-02-02" } },
  }
  local rungs, trims = { [0.2] = true, [0.33] = true, [0.5] = true }, 0
  for _, tr in ipairs(r.trades) do
    for _, e in ipairs(tr.history) do
      if e.type == "TRIM" then
        trims = trims + 1
        t.ok(rungs[e.trimPct], "trim on a rung of the ladder", tr.id .. " " .. e.trimPct)
      end
    end
    t.ok(tr.trimmedPct <= 0.6, "never past the 60 % cap", tr.id)
  end
  t.ok(trims > 0, "the day has trims", trims)
end
