-- gen_corpus.lua OUT.db DAYS TEMPLATE.json — the bench corpus: 500 tickers x
-- 79 buckets x DAYS trading days (from 2026-03-02), one full-shape 2.5.0
-- payload per ticker per bucket, built from the template (payload A of
-- data/payloads) with every core value moved by a seeded random
-- walk.  Same arguments, same bytes: the generator has its own PRNG.
local retape = require "retape"
local out, ndays, template_path = ...
ndays = math.tointeger(tonumber(ndays))
assert(out and ndays and template_path, "usage: gen_corpus.lua OUT.db DAYS TEMPLATE.json")

local f = assert(io.open(template_path))
local template = retape.json.decode(f:read("a"))
f:close()

-- xorshift64*, fixed seed
local state = 0x2545F4914F6CDD1D
local function rand()         -- uniform in [0, 1)
  state = state ~ (state >> 12)
  state = state ~ (state << 25)
  state = state ~ (state >> 27)
  return ((state * 0x2545F4914F6CDD1D) >> 11) / 9007199254740992.0
end
local function r2(x) return math.floor(x * 100 + 0.5) / 100 end
local function clamp(x, lo, hi) return x < lo and lo or x > hi and hi or x end

local NT = 500
local tickers = {}
for i = 1, NT do
  local name = ""
  local n = i
  repeat name = string.char(65 + n % 26) .. name; n = n // 26 until n == 0
  tickers[i] = { name = "T" .. name, price = 20 + rand() * 480, htf = (rand() - 0.5) * 60, ltf = (rand() - 0.5) * 40,
                 completion = rand() * 0.5, phase = rand() * 0.6 }
end

-- The template minus the fields that move, encoded once; each row prepends
-- its own values as text (encoding the whole table per row would dominate).
local MOVING = { "ticker", "ts", "time_close", "price", "htf_score", "ltf_score", "completion", "phase_pct", "state",
  "sl", "tp", "trigger_price", "trigger_ts", "trigger_reason", "trigger_dir", "rr", "tp_levels", "flags", "daily_ema_cloud" }
local static = {}
for k, v in pairs(template) do static[k] = v end
for _, k in ipairs(MOVING) do static[k] = nil end
local STATIC = retape.json.encode(static):sub(2)
local n_levels = #(template.tp_levels or {})
local flag_names = {}
for name in pairs(template.flags or {}) do flag_names[#flag_names + 1] = name end
table.sort(flag_names)

local fmt = string.format
local TRIGGERS = { "SQUEEZE_RELEASE", "EMA_CROSS_30M_13_48", "EMA_CROSS_1H_13_48", "OTHER" }
local function payload(t, ts)
  t.price = math.max(1, t.price * (1 + (rand() - 0.5) * 0.01))
  t.htf = clamp(t.htf + (rand() - 0.5) * 4, -50, 50)
  t.ltf = clamp(t.ltf + (rand() - 0.5) * 8, -50, 50)
  t.completion = clamp(t.completion + (rand() - 0.45) * 0.05, 0, 1)
  t.phase = clamp(t.phase + (rand() - 0.5) * 0.05, 0, 1)
  local bull = t.htf >= 0
  local px = r2(t.price)
  local state_ = (bull and "HTF_BULL_LTF_" or "HTF_BEAR_LTF_") .. ((t.ltf >= 0) == bull and (bull and "BULL" or "BEAR") or "PULLBACK")
  local levels = {}
  for i = 1, n_levels do
    levels[i] = fmt('{"price":%.2f,"label":"TP%d","source":"%d.0%% ATR Daily","type":"ATR_FIB","multiplier":%.3f,"timeframe":"D","confidence":0.75}',
      t.price * (1 + (bull and 1 or -1) * 0.01 * i), i, 50 + 10 * i, 0.382 * i)
  end
  local flags = {}
  for i, name in ipairs(flag_names) do flags[i] = fmt('"%s":%s', name, rand() < 0.1 and "true" or "false") end
  local dynamic = fmt('{"ticker":"%s","ts":%d,"time_close":%d,"price":%.2f,"htf_score":%.2f,"ltf_score":%.2f,'
      .. '"completion":%.2f,"phase_pct":%.2f,"state":"%s","sl":%.2f,"tp":%.2f,"trigger_price":%.2f,"trigger_ts":%d,'
      .. '"trigger_reason":"%s","trigger_dir":"%s","rr":%.2f,"tp_levels":[%s],"flags":{%s},'
      .. '"daily_ema_cloud":{"upper":%.2f,"lower":%.2f,"price":%.2f,"position":"above"},',
    t.name, ts, ts + 300000, px, t.htf, t.ltf, t.completion, t.phase, state_,
    px * (bull and 0.97 or 1.03), px * (bull and 1.04 or 0.96), px * (1 + (rand() - 0.5) * 0.01),
    ts - math.floor(rand() * 12) * 300000, TRIGGERS[1 + math.floor(rand() * #TRIGGERS)], bull and "BULL" or "BEAR",
    rand() * 3, table.concat(levels, ","), table.concat(flags, ","), px * 0.995, px * 0.985, px)
  return dynamic .. STATIC
end

os.remove(out)
local w = assert(retape.ingest.writer(out, 20000))
local rows, bytes = 0, 0
local day = 0
local y, m, d = 2026, 3, 2
while day < ndays do
  local date = string.format("%04d-%02d-%02d", y, m, d)
  local wd = tonumber(os.date("!%w", os.time { year = y, month = m, day = d, hour = 12 }))
  if wd ~= 0 and wd ~= 6 then
    day = day + 1
    local open = retape.time.session(date)
    for b = 0, 78 do
      local bucket = open + b * 300000
      for i, t in ipairs(tickers) do
        local ts = bucket + (i % 240) * 1000
        local text = payload(t, ts)
        local hash = retape.ingest.fnv1a32(text)
        w:insert { receipt_id = t.name .. ":" .. ts .. ":" .. hash, ticker = t.name, ts = ts, bucket_5m = bucket,
                   received_ts = ts, payload_hash = hash, script_version = "2.5.0", payload_json = text }
        rows, bytes = rows + 1, bytes + #text
      end
    end
  end
  d = d + 1
  if d > 31 then d, m = 1, m + 1 end
end
assert(w:close())
print(string.format("%s: %d rows, %.1f MB of payloads (%.0f bytes each)", out, rows, bytes / 1e6, bytes / rows))
