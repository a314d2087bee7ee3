-- parity.lua — helpers of the parity tests: build receipt databases from
-- the bundled real receipts and compare a replay with the references of
-- ../shared/data/parity/ (produced by the original code, see its README).
local retape = require "retape"
local cjson = require "cjson"

local M = {}

M.SHARED = os.getenv("RETAPE_SHARED") or "../shared"
M.RECEIPTS = M.SHARED .. "/data/receipts-2025-12-10_2026-02-09.jsonl.gz"
M.PARITY = M.SHARED .. "/data/parity/"

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

-- The documented recipe of the levels reference (data/README.md), for any
-- day: per ticker, anchor A = first session price; sl = A*0.97 (BULL) or
-- A*1.03, tp = A*1.04 or A*0.96 (2 decimals); trigger_ts/price = the row
-- where trigger_reason or BULL-ness last changed.  Returns synthetic_inputs.
function M.synth_levels(receipts_db, day)
  local open, close = retape.time.session(day)
  local src <close> = assert(retape.source.open(receipts_db))
  local scope = { from = open, to = close, script_version = "2.5.0" }
  local per, out = {}, {}
  local function r2(x) return tonumber(string.format("%.2f", x)) end -- exact decimal rounding
  for _, b in ipairs(src:buckets(scope)) do
    local cur <close> = src:cursor(b.bucket, scope)
    for _, r in ipairs(cur:fetch(100000)) do
      local p = r.payload
      local bull = type(p.state) == "string" and p.state:find("BULL", 1, true) ~= nil
      local s = per[r.ticker]
      if not s then s = { anchor = p.price }; per[r.ticker] = s end
      if s.reason ~= p.trigger_reason or s.bull ~= bull or not s.trigger_ts then
        s.reason, s.bull, s.trigger_ts, s.trigger_price = p.trigger_reason, bull, r.ts, p.price
      end
      local a = s.anchor
      out[#out + 1] = { ticker = r.ticker, ts = r.ts, sl = r2(bull and a * 0.97 or a * 1.03),
        tp = r2(bull and a * 1.04 or a * 0.96), trigger_ts = s.trigger_ts, trigger_price = s.trigger_price }
    end
  end
  return out
end

-- Writes the receipts of one day (09:30-16:00 ET) with `synthetic_inputs`
-- merged into their payloads to a new database, as the levels reference did.
-- `days` is a list of {day=, synthetic_inputs=}; all go into one database.
function M.levels_db(receipts_db, dir, days)
  if days.day then days = { days } end
  local jsonl = dir .. "/levels.jsonl"
  local out = assert(io.open(jsonl, "w"))
  local src <close> = assert(retape.source.open(receipts_db))
  local n = 0
  for _, levels in ipairs(days) do
  local by_key = {}
  for _, s in ipairs(levels.synthetic_inputs) do by_key[s.ticker .. ":" .. math.tointeger(s.ts)] = s end
  local open, close = retape.time.session(levels.day)
  local scope = { from = open, to = close, script_version = "2.5.0" }
  for _, b in ipairs(src:buckets(scope)) do
    local cur <close> = src:cursor(b.bucket, scope)
    for _, r in ipairs(cur:fetch(100000)) do
      local s = by_key[r.ticker .. ":" .. r.ts]
      local p = r.payload
      if s then
        p.sl, p.tp, p.trigger_ts, p.trigger_price = s.sl, s.tp, math.tointeger(s.trigger_ts), s.trigger_price
        n = n + 1
      end
      out:write(retape.json.encode(p), "\n")
    end
  end
  end
  out:close()
  local db = dir .. "/levels.db"
  assert(retape.import.run(db, { jsonl }, { report = function(m) error(m) end }))
  return db, n
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
