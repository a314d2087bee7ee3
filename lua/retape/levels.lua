-- retape.levels — adds invented but documented price levels to real
-- receipts, so that trades can open (the bundled receipts carry no
-- sl/tp/trigger).  The recipe is the one of the parity reference
-- levels-2026-02-02.json: per ticker and day, anchor A = the first price at
-- or after 09:30 ET; sl = A*0.97 (BULL state) or A*1.03, tp = A*1.04 or
-- A*0.96, rounded to 2 decimals; trigger_ts/trigger_price = the row at which
-- the ticker's trigger_reason or BULL-ness last changed.  The parity tests
-- check that it rebuilds that file's synthetic_inputs exactly.
local retape = require "retape"

local M = {}

-- The documented recipe of the levels reference (data/README.md), for any
-- day: per ticker, anchor A = first session price; sl = A*0.97 (BULL) or
-- A*1.03, tp = A*1.04 or A*0.96 (2 decimals); trigger_ts/price = the row
-- where trigger_reason or BULL-ness last changed.  Returns synthetic_inputs.
function M.synth(receipts_db, day)
  local open, close = retape.time.session(day)
  local src <close> = assert(retape.source.open(receipts_db))
  local scope = { from = open, to = close, script_version = require("retape.scope").DEFAULT_SCRIPT_VERSION }
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

-- Appends the session receipts of one day, with its synthetic inputs
-- merged into the payloads, to `out` as raw payload lines.
local function write_day(src, out, levels)
  local by_key = {}
  for _, s in ipairs(levels.synthetic_inputs) do by_key[s.ticker .. ":" .. math.tointeger(s.ts)] = s end
  local open, close = retape.time.session(levels.day)
  local scope = { from = open, to = close, script_version = require("retape.scope").DEFAULT_SCRIPT_VERSION }
  local n = 0
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
  return n
end

-- Builds dir/levels.db from the session receipts of `days` (a list of
-- {day=, synthetic_inputs=}, or one such table) with the levels merged in.
function M.build(receipts_db, dir, days)
  if days.day then days = { days } end
  local jsonl = dir .. "/levels.jsonl"
  local out = assert(io.open(jsonl, "w"))
  local src <close> = assert(retape.source.open(receipts_db))
  local n = 0
  for _, levels in ipairs(days) do n = n + write_day(src, out, levels) end
  out:close()
  local db = dir .. "/levels.db"
  assert(retape.import.run(db, { jsonl }, { report = function(m) error(m) end }))
  return db, n
end

return M
