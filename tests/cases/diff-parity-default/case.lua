-- retape diff between the parity and the default ruleset on a real day
-- (2026-02-02, bundled receipts with synthetic levels) lists the differences
-- RULES.md predicts.
return function(t)
  local retape = require "retape"
  local db = t.receipts { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02",
                          to = "2026-02-02", levels = true }
  local raw = t.receipts { file = "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz", from = "2026-02-02",
                           to = "2026-02-02" }
  local root = os.tmpname()
  os.remove(root)
  local stores, forced = {}, {}
  for _, spec in ipairs { { "parity", "worker-2026-02-02", db }, { "default", "default", db },
                          { "parity-raw", "worker-2026-02-02", raw }, { "default-raw", "default", raw } } do
    local n = 0
    local rp = assert(retape.replay.open { db = spec[3], state = root .. "-" .. spec[1], rules = spec[2],
      trace = function(r) if r.forced == "forced_enter_now_gate" then n = n + 1 end end })
    rp:run { date = "2026-02-02" }
    rp:close()
    stores[spec[1]] = assert(retape.store.open(root .. "-" .. spec[1], true))
    forced[spec[1]] = n
  end
  local d = retape.diff.compare(stores.parity, stores.default)
  -- #3: receipts without trigger_ts: the forced Enter Now rows disappear
  t.ok(forced["parity-raw"] > 900, "parity forces ~960 rows back to Enter Now on the raw receipts", forced["parity-raw"])
  t.ok(forced["default-raw"] <= 5, "default forces only real cycle changes (side flips)", forced["default-raw"])
  -- #2: trades closed in Archived
  local archived = 0
  for _, c in ipairs(d.changed) do
    for _, f in ipairs(c.fields) do
      if f.field == "exitReason" and (f.b == "tp_reached" or f.b == "sl_breached") then archived = archived + 1 end
    end
  end
  t.ok(archived >= 1, "a trade the parity rules leave open closes in Archived", archived)
  -- #1: a re-entry at its own price
  local reentry = false
  for _, c in ipairs(d.changed) do
    for _, f in ipairs(c.fields) do if f.field == "entryPrice" then reentry = true end end
  end
  t.ok(reentry, "a re-entry records its own price")
  -- #4/#5/#8: fewer entries overall
  t.ok(d.totals.b.trades < d.totals.a.trades, "fewer trades with the default rules",
       d.totals.a.trades .. " -> " .. d.totals.b.trades)
  t.ok(#d.lanes > 0, "lane differences are reported per ticker with the first receipt where they part")
  for _, s in pairs(stores) do s:close() end
  for name in pairs(stores) do os.execute("rm -rf '" .. root .. "-" .. name .. "'") end
end
