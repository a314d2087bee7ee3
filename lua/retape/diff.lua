-- retape.diff — what changed between two replays of the same receipts
-- (two stores, e.g. the parity and the default ruleset, or two threshold
-- variants): trades added, removed and changed by field; per ticker, the
-- first receipt where the lanes part and how many receipts differ; totals
-- side by side.
local json = require "retape.json"
local results = require "retape.results"
local manifest = require "retape.manifest"

local M = {}

M.TRADE_FIELDS = { "entryPrice", "status", "trimmedPct", "exitPrice", "exitReason", "realizedPnl", "pnl", "sl", "events" }

local function trade_key(t)
  return string.format("%s %s %s", t.ticker, t.direction, require("retape.time").format_ny(math.tointeger(t.entry_ts), true))
end

local function field(t, f)
  if f == "events" then
    local ev = {}
    for i, e in ipairs(t.history or {}) do ev[i] = e.type end
    return table.concat(ev, ",")
  end
  return t[f]
end

local function same(a, b)
  if type(a) == "number" and type(b) == "number" then
    return a == b or math.abs(a - b) <= 1e-9 * math.max(math.abs(a), math.abs(b))
  end
  return a == b
end

-- Each ticker's lane log in a store, one ticker at a time (never every
-- receipt of both stores at once): a coroutine reading the store, and a
-- function returning its next T, {{ts, stage, receipt_id}, ...} (nil at
-- the end; a store error raised as it was, not behind this file's name).
-- Tickers come in the store's key order, which is byte order: Lua's `<` on
-- them (strcmp: the engine never changes the C locale) agrees with it.
local function ticker_logs(st)
  local co = coroutine.create(function()
    results.each_ticker_versions(st, function(T, versions)
      local log = {}
      for _, v in ipairs(versions) do
        for _, e in ipairs(v.rec.lanes or {}) do log[#log + 1] = e end
      end
      coroutine.yield(T, log)
    end)
  end)
  return co, function()
    if coroutine.status(co) == "dead" then return nil end
    local ok, T, log = coroutine.resume(co)
    if not ok then error(T, 0) end
    return T, log
  end
end

local function stage_name(s) return (s == nil or s == false or s == json.null) and "none" or s end

-- Totals of a list of trades: the shared definitions of retape.stats
-- (wins/losses/flat by the sign of the realized P&L), as every view.
function M.totals(trades, R)
  local s = require("retape.stats").compute(trades, { rules = R })
  return { trades = s.trades, wins = s.wins, losses = s.losses, flat = s.flat, open = s.open, closed = s.closed,
           win_rate = s.win_rate, realized = s.realized, unrealized = s.unrealized, pnl = s.net_pnl }
end

-- describe(store, path) -> { path, rules, overrides = {"k=v",...},
-- receipts = hash or nil, read }: what the diff calls A or B, from the
-- store's latest run manifest.
function M.describe(st, path)
  local runs = manifest.runs(st)
  local last = runs[#runs] or {}
  local ov = require("retape.rules").texts(last.overrides)
  -- the receipts: the file and the fingerprints of the days the store replayed (a merged
  -- store has those of its shards); an older store, the hash of its last run's reads
  local rec = st.receipts and st:receipts()
  local receipts = manifest.receipts_print(st)
  if receipts and rec and rec.path then
    -- and what of them: the tickers of each day (a one-ticker re-run read other receipts)
    local cov = {}
    st:each_coverage(function(day, c) cov[#cov + 1] = day .. (c.all and "*" or table.concat(c.tickers or {}, ",")) end)
    receipts = receipts .. "-" .. require("retape.ingest").fnv1a32(table.concat(cov, " "))
  end
  return { path = path, rules = last.rules or "(no run)", overrides = ov,
           receipts = receipts or (last.receipts and last.receipts.hash) or nil, read = last.receipts and last.receipts.read or nil,
           config = last.config }
end

-- Settings whose effective values differ between two described stores:
-- { {key, a, b}, ... } sorted by key.
function M.config_differences(da, db)
  local rules = require "retape.rules"
  local pa, pb = rules.config_paths(type(da.config) == "table" and da.config or {}),
                 rules.config_paths(type(db.config) == "table" and db.config or {})
  local keys, seen = {}, {}
  for k in pairs(pa) do keys[#keys + 1] = k; seen[k] = true end
  for k in pairs(pb) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = {}
  local function show(v)
    if v == nil or v == json.null then return "-" end
    if type(v) == "table" then return json.encode(v) end
    return type(v) == "number" and json.number(v) or tostring(v)
  end
  for _, k in ipairs(keys) do
    local x, y = show(pa[k]), show(pb[k])
    if x ~= y then out[#out + 1] = { key = k, a = x, b = y } end
  end
  return out
end

-- True when the report shows any difference in trades or lanes.
function M.differs(report)
  return #report.added > 0 or #report.removed > 0 or #report.changed > 0 or #report.lanes > 0
end

-- Adds to report.lanes the tickers whose receipts' lanes differ, reading
-- two ticker_logs iterators in step.
local function compare_lanes(report, next_a, next_b)
  local Ta, xa = next_a()
  local Tb, xb = next_b()
  while Ta or Tb do
    local T, x, y
    if Tb == nil or (Ta ~= nil and Ta < Tb) then T, x, y = Ta, xa, {}; Ta, xa = next_a()
    elseif Ta == nil or Tb < Ta then T, x, y = Tb, {}, xb; Tb, xb = next_b()
    else T, x, y = Ta, xa, xb; Ta, xa = next_a(); Tb, xb = next_b() end
    local first, n = nil, 0
    for i = 1, math.max(#x, #y) do
      local u, v = x[i], y[i]
      local differ = not u or not v or u[1] ~= v[1] or stage_name(u[2]) ~= stage_name(v[2])
      if differ then
        n = n + 1
        if not first then
          first = { ts = (u or v)[1], a = u and stage_name(u[2]) or "(no receipt)", b = v and stage_name(v[2]) or "(no receipt)" }
        end
      end
    end
    if n > 0 then report.lanes[#report.lanes + 1] = { ticker = T, first = first, receipts = n, of = math.max(#x, #y) } end
  end
  return report
end

-- compare(store_a, store_b) -> report
function M.compare(a, b)
  local ta, tb = results.trades(a), results.trades(b)
  -- each store's totals with its own ruleset's "open" (the default ruleset's if it records none)
  local function rules_of(st)
    local ok, R = pcall(manifest.store_rules, st)
    return ok and R or nil
  end
  local report = { added = {}, removed = {}, changed = {}, lanes = {},
                   totals = { a = M.totals(ta, rules_of(a)), b = M.totals(tb, rules_of(b)) } }
  local by_a, by_b = {}, {}
  for _, t in ipairs(ta) do by_a[trade_key(t)] = t end
  for _, t in ipairs(tb) do by_b[trade_key(t)] = t end
  local keys = {}
  for k in pairs(by_a) do keys[#keys + 1] = k end
  for k in pairs(by_b) do if not by_a[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local x, y = by_a[k], by_b[k]
    if not y then report.removed[#report.removed + 1] = k
    elseif not x then report.added[#report.added + 1] = k
    else
      local fields = {}
      for _, f in ipairs(M.TRADE_FIELDS) do
        local u, v = field(x, f), field(y, f)
        if not same(u, v) then fields[#fields + 1] = { field = f, a = u == nil and json.null or u, b = v == nil and json.null or v } end
      end
      if #fields > 0 then report.changed[#report.changed + 1] = { trade = k, fields = fields } end
    end
  end
  -- the two stores' tickers merged in order (a store's versions come by ticker)
  local co_a, next_a = ticker_logs(a)
  local co_b, next_b = ticker_logs(b)
  local ok, err = pcall(compare_lanes, report, next_a, next_b)
  for _, co in ipairs { co_a, co_b } do
    if coroutine.status(co) == "suspended" then coroutine.close(co) end -- (an error left it reading)
  end
  if not ok then error(err, 0) end
  return report
end

return M
