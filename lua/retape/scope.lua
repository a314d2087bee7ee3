-- retape.scope — what a replay call covers: days, tickers, one bucket or
-- a page of it, clean slate.  Bad parameters raise a ParamError (shown
-- without a traceback; the CLI exits 2 for them).
local rtime = require "retape.time"
local json = require "retape.json"

local M = {}
M.BUCKET_MS = 300000

local ParamError = { __tostring = function(e) return e.message end }
function M.param_error(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, ParamError), 0)
end
function M.is_param_error(e) return getmetatable(e) == ParamError end
local param_error = M.param_error

-- "AAPL", "aapl,amd" or a list -> sorted upper-case list (BRK.B -> BRK-B); nil = all.
function M.ticker_list(t)
  if t == nil or t == "" then return nil end
  local list = {}
  if type(t) == "string" then
    for name in t:gmatch("[^,%s]+") do list[#list + 1] = name end
  else
    for _, name in ipairs(t) do list[#list + 1] = name end
  end
  for i, name in ipairs(list) do list[i] = name:upper():gsub("%.", "-") end
  table.sort(list)
  return list
end

local function check_date(d, what)
  if type(d) ~= "string" or not rtime.parse_date(d) then
    param_error("%s: '%s' is not a date (YYYY-MM-DD)", what, tostring(d))
  end
  return d
end

-- Every calendar day from..to (the calendar is C's; weekends are the
-- ruleset's business, and days without receipts simply have no buckets).
function M.days_between(from, to)
  local days, err = rtime.days(from, to)
  if not days then param_error("%s", err) end
  return days
end

-- The names closest to a misspelled one ("did you mean").
function M.close_matches(word, candidates)
  local rules = require "retape.rules"
  return rules.close_matches(rules.names_set(candidates), word)
end

-- The New York days that have receipts in their session, as one line.
function M.listing(src, script_version)
  local days, seen = {}, {}
  for _, b in ipairs(assert(src:buckets { script_version = script_version })) do
    local day = rtime.ny_date(b.bucket)
    if not seen[day] then
      local open, close = rtime.session(day)
      if b.bucket >= open and b.bucket <= close then seen[day] = true; days[#days + 1] = day end
    end
  end
  return #days > 0 and table.concat(days, " ") or "none"
end

-- resolve(params, src, script_version) -> scope.  params: date | from+to,
-- ticker, bucket, limit, offset, clean_slate, resume (see Replay:run).
function M.resolve(params, src, script_version)
  local first, last
  if params.from or params.to then
    if not (params.from and params.to) then param_error("give both from and to (a range of days)") end
    if params.date then param_error("give date or from/to, not both") end
    first, last = check_date(params.from, "from"), check_date(params.to, "to")
  elseif params.date then
    first = check_date(params.date, "date")
    last = first
  else
    param_error("no day given (date, or from and to); days with receipts: %s", M.listing(src, script_version))
  end
  local days = M.days_between(first, last)
  local tickers = M.ticker_list(params.ticker)
  local limit = params.limit and math.tointeger(params.limit)
  local offset = math.tointeger(params.offset or 0)
  if params.limit and (not limit or limit < 1) then param_error("limit must be a positive integer") end
  if not offset or offset < 0 then param_error("offset must be a non-negative integer") end
  if (limit or offset > 0) and not params.bucket then param_error("limit/offset page within one bucket: give bucket too") end

  local scope = { first = first, last = last, days = days, tickers = tickers, limit = limit, offset = offset,
                  clean = params.clean_slate and true or false, script_version = script_version }
  scope.from = rtime.session(first)
  local _, close_last = rtime.session(last)
  scope.to = close_last
  local day_from, day_to = scope.from, scope.to
  if params.bucket then
    local b = math.tointeger(params.bucket)
    if not b or b % M.BUCKET_MS ~= 0 then param_error("bucket must be a 5-minute boundary in ms (got %s)", tostring(params.bucket)) end
    if first ~= last then param_error("bucket selects one bucket of one day: give date, not a range") end
    -- a bucket outside the session is an empty call (hasMore false), as the original answered
    if b < scope.from or b > scope.to then scope.outside = true end
    scope.bucket, scope.from, scope.to = b, b, b
  end
  if tickers then
    for _, T in ipairs(tickers) do
      if #assert(src:buckets { from = day_from, to = day_to, script_version = script_version, tickers = { T } }) == 0 then
        local known, seen = {}, {}
        for _, b in ipairs(assert(src:buckets { from = day_from, to = day_to, script_version = script_version })) do
          local cur <close> = assert(src:cursor(b.bucket, { from = day_from, to = day_to, script_version = script_version }))
          repeat
            local rows = cur:fetch(4096, false)
            for _, r in ipairs(rows) do
              if not seen[r.ticker] then seen[r.ticker] = true; known[#known + 1] = r.ticker end
            end
          until #rows == 0
        end
        table.sort(known)
        local near = M.close_matches(T, known)
        param_error("no receipts for ticker '%s' in %s%s", T, first == last and first or (first .. ".." .. last),
          #near > 0 and ("; close matches: " .. table.concat(near, ", ")) or "")
      end
    end
  end
  -- the key that identifies this scope for --resume and page continuation
  scope.key = json.encode { tickers = tickers or false, from = first, to = last, bucket = scope.bucket or false,
                            script_version = script_version or false, limit = limit or false }
  return scope
end

-- work(scope, src) -> { {bucket=, day=, close=}, ... } the buckets with
-- receipts, in time order, and the rows per day.
function M.work(scope, src)
  local list, per_day = {}, {}
  for _, day in ipairs(scope.days) do
    local d_open, d_close = rtime.session(day)
    if scope.bucket then
      if not scope.outside and scope.bucket >= d_open and scope.bucket <= d_close then
        list[#list + 1] = { bucket = scope.bucket, day = day, close = d_close }
      end
    else
      local n = 0
      for _, b in ipairs(assert(src:buckets { from = d_open, to = d_close, script_version = scope.script_version,
                                               tickers = scope.tickers })) do
        list[#list + 1] = { bucket = b.bucket, day = day, close = d_close, count = b.count }
        n = n + b.count
      end
      per_day[#per_day + 1] = { day = day, rows = n }
    end
  end
  return list, per_day
end

return M
