-- The extra enter path of examples/rules/elite-pullback.lua, on 2026-02-02
-- with synthetic levels: it fires, it opens trades the default rules do not,
-- and every other decision stays the default's.
return function(t)
  local receipts = { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02",
                     to = "2026-02-02", levels = true }
  local base = t.replay { receipts = receipts, rules = "default", runs = { { date = "2026-02-02" } } }
  local ext = t.replay { receipts = receipts, rules = "../../rules/elite-pullback.lua", runs = { { date = "2026-02-02" } } }
  local fired, other_changes, p6_at = 0, 0, {}
  for i, r in ipairs(ext.records) do
    if r.rule == "P6 elite pullback" then fired = fired + 1; p6_at[r.ticker .. r.ts] = true end
    local b = base.records[i]
    if r.rule ~= "P6 elite pullback" and b.ticker == r.ticker and b.stage ~= r.stage
       and not (r.stage == "just_entered" or r.stage == "hold" or r.stage == "trim" or r.stage == "exit") then
      other_changes = other_changes + 1
    end
  end
  t.ok(fired > 0, "P6 fires on the day", fired)
  local opened = 0
  for _, tr in ipairs(ext.trades) do if p6_at[tr.ticker .. math.tointeger(tr.entry_ts)] then opened = opened + 1 end end
  t.ok(opened > 0, "P6 opens trades", opened)
  t.eq(other_changes, 0, "no other enter decision changes")
end
