-- test_parity.lua — the parity ruleset against the references produced by
-- the original worker code (data/parity/): every row's stages,
-- forcing rule, move status and score, and the 44 trades of the levels day.
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local cjson = require "cjson"

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)

local function replay_day(db, day, dir)
  local trace = {}
  local rp = assert(retape.replay.open { db = db, state = dir .. "/state", rules = "worker-2026-02-02",
    trace = function(r) trace[#trace + 1] = r end })
  local resp = rp:run { date = day }
  local trades = retape.replay.trades(rp:state_store())
  rp:close()
  return resp, trace, trades
end

local COLUMNS = { "ticker", "ts", "bucket_5m", "state", "stage", "finalStage", "forced", "move_status",
  "prevStage", "entry_ts", "entry_price", "rank_position" }

for _, day in ipairs { "2026-02-02", "2026-02-03" } do
  local dir = t.tempdir()
  local resp, trace = replay_day(receipts, day, dir)
  local n, bad, first = 0, 0, nil
  for line in io.lines(P.PARITY .. "stages-" .. day .. ".jsonl") do
    n = n + 1
    local want, got = cjson.decode(line), trace[n] or {}
    local diffs = {}
    for _, k in ipairs(COLUMNS) do
      local w = P.null(want[k])
      if got[k] ~= w then diffs[#diffs + 1] = k .. ": got " .. tostring(got[k]) .. ", want " .. tostring(w) end
    end
    if math.abs((got.score or -1) - want.score) > 0.005 + 1e-9 then
      diffs[#diffs + 1] = "score: got " .. tostring(got.score) .. ", want " .. want.score
    end
    if retape.json.encode(got.move_reasons or {}) ~= retape.json.encode(want.move_reasons) then
      diffs[#diffs + 1] = "move_reasons differ"
    end
    if #diffs > 0 then
      bad = bad + 1
      first = first or string.format("row %d (%s %s): %s", n, want.ticker, math.tointeger(want.ts), table.concat(diffs, "; "))
    end
  end
  t.eq(resp.rowsProcessed, n, day .. ": every reference row processed")
  t.eq(#trace, n, day .. ": one trace line per row")
  t.ok(bad == 0, day .. ": stage, finalStage, forced, move status, reasons, score, entry stamps match row for row", first)
  t.eq(resp.errors, 0, day .. ": no errors")
end

-- levels day: invented sl/tp/trigger merged in, trades open
do
  local dir = t.tempdir()
  local levels = P.read_json(P.PARITY .. "levels-2026-02-02.json")
  local db, merged = P.levels_db(receipts, dir, levels)
  t.eq(merged, levels.input_rows, "levels: every synthetic input merged into its receipt")
  local resp, trace, trades = replay_day(db, levels.day, dir)
  local bad, first = 0, nil
  for i, s in ipairs(levels.stages) do
    local g = trace[i] or {}
    local ok = g.ticker == s[1] and g.ts == math.tointeger(s[2]) and g.stage == P.null(s[3])
      and g.finalStage == P.null(s[4]) and g.forced == P.null(s[5]) and math.abs((g.score or -1) - s[6]) <= 0.005 + 1e-9
      and g.move_status == s[7]
    if not ok then bad = bad + 1; first = first or ("row " .. i .. " " .. s[1]) end
  end
  t.ok(bad == 0, "levels: stages match row for row", first)
  t.eq(resp.tradesCreated, #levels.trades, "levels: 44 trades created")
  local by_key = {}
  for _, tr in ipairs(trades) do by_key[P.trade_key(tr)] = tr end
  local missing, differ, detail = 0, 0, nil
  for _, want in ipairs(levels.trades) do
    local got = by_key[P.trade_key(want)]
    if not got then missing = missing + 1; detail = detail or ("missing " .. P.trade_key(want))
    else
      local d = P.trade_diffs(got, want)
      if #d > 0 then differ = differ + 1; detail = detail or (P.trade_key(want) .. ": " .. table.concat(d, "; ")) end
    end
  end
  t.eq(#trades, #levels.trades, "levels: no extra trades")
  t.ok(missing == 0 and differ == 0, "levels: all 44 trades match (entry, exit, status, trims, P&L, history)", detail)
  local statuses = {}
  for _, tr in ipairs(trades) do statuses[tr.status] = (statuses[tr.status] or 0) + 1 end
  t.eq(string.format("%d/%d/%d/%d", statuses.OPEN or 0, statuses.WIN or 0, statuses.LOSS or 0, statuses.TP_HIT_TRIM or 0),
       "13/13/11/7", "levels: 13 open, 13 wins, 11 losses, 7 trimmed")
  t.ok(trades[1].id:match("^[A-Z%-]+%-%d+%-%d+$") ~= nil, "trade ids are TICKER-entry_ts-seq", trades[1].id)
end

-- the documented recipe rebuilds the reference's synthetic inputs exactly
do
  local levels = P.read_json(P.PARITY .. "levels-2026-02-02.json")
  local synth = P.synth_levels(receipts, levels.day)
  local same = #synth == #levels.synthetic_inputs
  for i, s in ipairs(synth) do
    local w = levels.synthetic_inputs[i]
    if not w or s.ticker ~= w.ticker or s.ts ~= w.ts or s.sl ~= w.sl or s.tp ~= w.tp
       or s.trigger_ts ~= w.trigger_ts or s.trigger_price ~= w.trigger_price then
      same = false; break
    end
  end
  t.ok(same, "synthetic levels recipe reproduces the reference inputs (used by the clean-slate tests)")
end

-- every other trading day of the bundled receipts runs without an error
do
  local dir = t.tempdir()
  local resp
  for _, rules in ipairs { "worker-2026-02-02", "default" } do
    local rp = assert(retape.replay.open { db = receipts, state = dir .. "/" .. rules, rules = rules })
    resp = rp:run { from = "2025-12-10", to = "2026-02-09" }
    rp:close()
    t.eq(resp.errors, 0, rules .. ": all bundled days, no receipt fails")
  end
  t.ok(resp.rowsProcessed > 30000, "all bundled days: session rows processed", resp.rowsProcessed)
end

os.exit(t.done())
