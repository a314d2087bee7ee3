-- retape.scope — what a replay call covers: days, tickers, one bucket or
-- a page of it, clean slate.  Bad parameters raise a ParamError (shown
-- without a traceback; the CLI exits 2 for them).
local rtime = require "retape.time"
local json = require "retape.json"
local validate = require "retape.validate"

local M = {}
M.BUCKET_MS = rtime.BUCKET_MS
-- The script_version of the receipts a replay reads unless told otherwise
-- (the original worker's); every other module asks here.
M.DEFAULT_SCRIPT_VERSION = "2.5.0"

local ParamError = { __tostring = function(e) return e.message end }
function M.param_error(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, ParamError), 0)
end
function M.is_param_error(e) return getmetatable(e) == ParamError end
local param_error = M.param_error

-- "AAPL", "aapl,amd" or a list -> sorted upper-case list (BRK.B -> BRK-B); nil = all.
-- A bad ticker (empty element, NUL, control byte...) is a ParamError
-- (retape.validate: the CLI and the server check alike).
function M.ticker_list(t)
  local list, why = validate.ticker_list(t)
  if why then param_error("ticker: %s", why) end
  return list
end

local function check_date(d, what)
  local day, why = validate.date(d)
  if not day then param_error("%s: %s", what, why) end
  return day
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
-- ticker, bucket, limit, offset, clean_slate, resume (see Replay:run),
-- known_tickers.
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
  if params.shard then
    local i, n = M.parse_shard(params.shard)
    if tickers then param_error("shard splits every ticker: give shard or ticker, not both") end
    scope.shard = { index = i, count = n }
  end
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
  -- (known_tickers: the caller took the tickers from the receipts themselves,
  -- as the live engine does; the check would scan the day once per ticker)
  if tickers and not params.known_tickers then
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
  -- a shard reads only its tickers, but is otherwise a scope of every ticker
  scope.reads = tickers
  if scope.shard then scope.reads = M.shard_tickers(src, scope, day_from, day_to) end
  -- the key that identifies this scope for --resume and page continuation
  scope.key = json.encode { tickers = tickers or false, from = first, to = last, bucket = scope.bucket or false,
                            script_version = script_version or false, limit = limit or false,
                            shard = scope.shard and (scope.shard.index .. "/" .. scope.shard.count) or false }
  return scope
end

-- "i/n" (0 <= i < n) or {index, count} -> i, n; a ParamError otherwise.
function M.parse_shard(spec)
  local i, n
  if type(spec) == "table" then i, n = spec.index, spec.count
  else i, n = tostring(spec):match("^(%d+)/(%d+)$") end
  i, n = math.tointeger(tonumber(i)), math.tointeger(tonumber(n))
  if not (i and n and n >= 1 and i >= 0 and i < n) then
    param_error("shard must be i/n with 0 <= i < n (got '%s')", tostring(type(spec) == "table" and (tostring(spec.index) .. "/" .. tostring(spec.count)) or spec))
  end
  return i, n
end

-- Which shard of n a ticker belongs to: a stable hash of its name, the C
-- function that also gives a threaded replay's parts (one definition).
function M.shard_of(T, n) return require("retape.pool").part_of(T, n) end

-- Does the scope cover ticker T (its ticker list, its shard, or all)?
function M.covers(scope, T)
  if scope.shard then return M.shard_of(T, scope.shard.count) == scope.shard.index end
  return true
end

-- The tickers of a shard that have receipts in [from, to], sorted.
function M.shard_tickers(src, scope, from, to)
  local seen, list = {}, {}
  for _, b in ipairs(assert(src:buckets { from = from, to = to, script_version = scope.script_version })) do
    local cur <close> = assert(src:cursor(b.bucket, { from = from, to = to, script_version = scope.script_version }))
    repeat
      local rows = cur:fetch(4096, false)
      for _, r in ipairs(rows) do
        local T = r.ticker
        if not seen[T] then
          seen[T] = true
          if M.covers(scope, T) then list[#list + 1] = T end
        end
      end
    until #rows == 0
  end
  table.sort(list)
  return list
end

-- work(scope, src) -> { {bucket=, day=, close=}, ... } the buckets with
-- receipts, in time order, and the rows per day.
function M.work(scope, src)
  local list, per_day = {}, {}
  if scope.bucket then
    for _, day in ipairs(scope.days) do
      local d_open, d_close = rtime.session(day)
      if not scope.outside and scope.bucket >= d_open and scope.bucket <= d_close then
        list[#list + 1] = { bucket = scope.bucket, day = day, close = d_close }
      end
    end
    return list, per_day
  end
  -- one listing of the whole range (a query per day cost 16 ms on the real
  -- days against 10), each bucket given to the day whose session holds it
  -- (the days are in order, their sessions apart)
  local from = rtime.session(scope.days[1])
  local _, to = rtime.session(scope.days[#scope.days])
  local listed = assert(src:buckets { from = from, to = to, script_version = scope.script_version, tickers = scope.reads })
  local i = 1
  for _, day in ipairs(scope.days) do
    local d_open, d_close = rtime.session(day)
    while listed[i] and listed[i].bucket < d_open do i = i + 1 end
    local n = 0
    while listed[i] and listed[i].bucket <= d_close do
      local b = listed[i]
      list[#list + 1] = { bucket = b.bucket, day = day, close = d_close, count = b.count }
      n = n + b.count
      i = i + 1
    end
    per_day[#per_day + 1] = { day = day, rows = n }
  end
  return list, per_day
end

return M
