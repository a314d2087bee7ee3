-- parity.lua — helpers of the parity tests: build receipt databases from
-- the bundled real receipts and compare a replay with the references of
-- data/parity/ (produced by the original code, see its README).
local retape = require "retape"
local cjson = require "cjson"

local M = {}

M.DATA = os.getenv("RETAPE_DATA") or os.getenv("DATA") or "data"
M.RECEIPTS = M.DATA .. "/receipts-2025-12-10_2026-02-09.jsonl.gz"
M.PARITY = M.DATA .. "/parity/"

local function null(v) if v == cjson.null then return nil end return v end
M.null = null

-- The bundled receipts imported once per test run (cached in RETAPE_TEST_TMP).
function M.receipts_db(tmp)
  local db = tmp .. "/receipts.db"
  local f = io.open(db)
  if f then f:close(); return db end
  assert(retape.import.run(db, { M.RECEIPTS }, { report = function(m) error(m) end }))
  return db
end

-- Synthetic levels (the levels reference's documented recipe) live in
-- retape.levels, which the demo and scripts/levels.lua use too.
local levels_mod = require "retape.levels"
M.synth_levels = levels_mod.synth
M.levels_db = levels_mod.build

-- levels_db_for(tmp, dir, days) -> the bundled receipts of `days` with the
-- synthetic levels of each day, in dir/levels.db (tmp caches the import).
function M.levels_db_for(tmp, dir, days)
  local receipts = M.receipts_db(tmp)
  local specs = {}
  for i, d in ipairs(days) do specs[i] = { day = d, synthetic_inputs = M.synth_levels(receipts, d) } end
  return (M.levels_db(receipts, dir, specs)), receipts
end

function M.read_json(path)
  local f = assert(io.open(path))
  local v = cjson.decode(f:read("a"))
  f:close()
  return v
end

-- Relative comparison of two numbers (absolute near zero).
function M.close_enough(a, b, rel)
  if a == b then return true end
  if type(a) ~= "number" or type(b) ~= "number" then return false end
  local scale = math.max(math.abs(a), math.abs(b), 1e-9)
  return math.abs(a - b) / scale <= rel or math.abs(a - b) <= 1e-9
end

local TRADE_FIELDS = { "ticker", "direction", "entryPrice", "entryTime", "entry_ts", "triggerTimestamp", "sl", "tp",
  "status", "trimmedPct", "exitPrice", "exitReason", "realizedPnl", "pnl", "pnlPct", "notional", "shares",
  "confidence", "currentPrice", "lastUpdate", "sl_protect_reason", "sl_last_tighten_ts" }
local EVENT_FIELDS = { "type", "timestamp", "price", "shares", "value", "reason", "note", "trimPct", "trimDeltaPct",
  "pnl_realized", "oldSl", "newSl", "pnlPct" }

local function compare_fields(a, b, fields, prefix, diffs)
  for _, k in ipairs(fields) do
    local x, y = null(a[k]), null(b[k])
    if not M.close_enough(x, y, 1e-6) and x ~= y then
      diffs[#diffs + 1] = string.format("%s%s: got %s, want %s", prefix, k, tostring(x), tostring(y))
    end
  end
end

-- Compares one trade with its reference; returns a list of differences.
function M.trade_diffs(got, want)
  local diffs = {}
  compare_fields(got, want, TRADE_FIELDS, "", diffs)
  local gh, wh = got.history or {}, want.history or {}
  if #gh ~= #wh then diffs[#diffs + 1] = string.format("history: %d events, want %d", #gh, #wh) end
  for i = 1, math.min(#gh, #wh) do compare_fields(gh[i], wh[i], EVENT_FIELDS, "history[" .. i .. "].", diffs) end
  return diffs
end

-- Key of a trade for matching (ids differ by design).
function M.trade_key(t)
  return string.format("%s|%s|%d", t.ticker, t.direction, math.tointeger(t.entry_ts))
end

return M
