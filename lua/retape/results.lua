-- retape.results — reading a replay's results back from its store: the
-- lanes (now or as of a time), the trades, the latest state per ticker, the
-- lane of every receipt.  Views, diff, ledger and the CLI read through here.
local json = require "retape.json"

local M = {}

-- The stage a ruleset keeps in its state (R.state.stage), from a version.
local function stage_of_version(R, rec)
  local field = R.state and R.state.stage
  return field and rec and rec.state and rec.state[field] or nil
end

-- lanes(st, R [, at_ms]) -> { {lane=, title=, stages=, tickers={...}}, ... }, stage_of
-- The lane of every ticker at the end of what the store covers, or as of a
-- bucket (the ticker's last version at or before it).
function M.lanes(st, R, at)
  local stage_of = {}
  for _, T in ipairs(st:tickers()) do
    local rec
    if at then _, rec = st:version_before(T, at + 1) else _, rec = st:last_version(T) end
    if rec then stage_of[T] = stage_of_version(R, rec) end
  end
  return M.group_lanes(R, stage_of), stage_of
end

function M.group_lanes(R, stage_of)
  local lane_of = {}
  for _, lane in ipairs(R.lanes) do
    for _, s in ipairs(lane.stages) do lane_of[s] = lane end
  end
  local out, index = {}, {}
  for i, lane in ipairs(R.lanes) do
    out[i] = { lane = lane.id, title = lane.title, stages = lane.stages, tickers = {} }
    index[lane] = i
  end
  local names = {}
  for T in pairs(stage_of) do names[#names + 1] = T end
  table.sort(names)
  for _, T in ipairs(names) do
    local lane = lane_of[stage_of[T]]
    if lane then local l = out[index[lane]]; l.tickers[#l.tickers + 1] = T end
  end
  return out
end

-- latest(st [, at]) -> { T = record } where record merges the ticker's
-- declared state and view fields (what the original kept in timed:latest),
-- plus `receipt_id`.
function M.latest(st, at)
  local out = {}
  for _, T in ipairs(st:tickers()) do
    local rec
    if at then _, rec = st:version_before(T, at + 1) else _, rec = st:last_version(T) end
    if rec then
      local r = {}
      for k, v in pairs(rec.view or {}) do r[k] = v end
      for k, v in pairs(rec.state or {}) do r[k] = v end
      r.ticker, r.receipt_id = T, rec.receipt
      out[T] = r
    end
  end
  return out
end

-- badge_fn(R) -> function(record, T) -> badge name | nil, or nil when R shows
-- no badges: R.badge called as rule code (sandbox.call: under the sandbox's
-- limits for a rule file).  A failure, or a badge that is not a string,
-- raises naming the ticker.
function M.badge_fn(R)
  local fn = rawget(R, "badge")
  if fn == nil then return nil end
  local sandbox = require "retape.sandbox"
  if type(fn) ~= "function" then
    error(string.format("ruleset '%s': R.badge is a %s, not a function", tostring(R.name), type(fn)), 0)
  end
  return function(r, T)
    T = T or r.ticker
    local b = sandbox.call(R, "R.badge of " .. T, fn, r)
    if b ~= nil and b ~= false and (type(b) ~= "string" or #b > 100) then
      error(string.format("R.badge of %s returned a %s: a badge is a name of at most 100 bytes (nil or false: none)",
        T, type(b) == "string" and "string of " .. #b .. " bytes" or type(b)), 0)
    end
    return b or nil
  end
end

-- Badges a ruleset shows next to a ticker (R.badge(latest_record) -> name
-- | nil), at the end or as of a bucket.
function M.badges(st, R, at)
  local out = {}
  local badge = M.badge_fn(R)
  if not badge then return out end
  local latest, tickers = M.latest(st, at), {}
  for T in pairs(latest) do tickers[#tickers + 1] = T end
  table.sort(tickers) -- a failing badge names the same ticker every time
  for _, T in ipairs(tickers) do out[T] = badge(latest[T], T) end
  return out
end

-- badge_history(st, R) -> { T = { {bucket, badge or false}, ... } }: the
-- badge of each ticker after every bucket it had receipts in (from the
-- view fields of its versions), for boards at any time.
function M.badge_history(st, R)
  local out = {}
  local badge = M.badge_fn(R)
  if not badge then return out end
  st:each_version(function(T, bucket, rec)
    local r = {}
    for k, v in pairs(rec.view or {}) do r[k] = v end
    for k, v in pairs(rec.state or {}) do r[k] = v end
    local l = out[T]
    if not l then l = {}; out[T] = l end
    l[#l + 1] = { bucket, badge(r, T) or false }
  end)
  return out
end

-- All stored trades, sorted as the original ledger: entry time descending
-- (the time in the trade's key; ties by id, for determinism).
function M.trades(st)
  local list, entry = {}, {}
  st:each_trade(function(t, _, ms) list[#list + 1] = t; entry[t] = ms end)
  table.sort(list, function(a, b)
    if entry[a] ~= entry[b] then return entry[a] > entry[b] end
    return a.id < b.id
  end)
  return list
end

-- each_ticker_versions(st, fn): fn(T, versions) for every ticker with
-- versions, in ticker order; versions = { {bucket=, rec=}, ... } in time
-- order.  Holds one ticker's versions at a time (a report of many days
-- never holds every receipt's lane at once).
function M.each_ticker_versions(st, fn)
  local cur, list = nil, {}
  st:each_version(function(T, bucket, rec)
    if T ~= cur then
      if cur then fn(cur, list) end
      cur, list = T, {}
    end
    list[#list + 1] = { bucket = bucket, rec = rec }
  end)
  if cur then fn(cur, list) end
end

-- lane_logs(st) -> { T = { {ts, stage, receipt_id}, ... } } every receipt's final stage, in order.
function M.lane_logs(st)
  local per = {}
  st:each_version(function(T, _, rec)
    local l = per[T]
    if not l then l = {}; per[T] = l end
    for _, e in ipairs(rec.lanes or {}) do l[#l + 1] = e end
  end)
  return per
end

-- stale(st) -> list of {ticker=, from=} (results that depend on a state that changed).
function M.stale(st)
  local marks, list = st:stale(), {}
  for T, m in pairs(marks) do list[#list + 1] = { ticker = T, from = m.from } end
  table.sort(list, function(a, b) return a.ticker < b.ticker end)
  return list
end

M.null = json.null
return M
