-- retape.validate — the one validator of the values a user gives, for the
-- CLI's options (retape.args types, retape.scope) and the server's query
-- parameters alike, so both accept and refuse exactly the same values.
-- Each function returns the value (converted) or nil, why; `why` names no
-- option or parameter: the caller prefixes it (--date: ... / date: ...).
local rtime = require "retape.time"

local M = {}

-- Days a receipt can have: the plausible receipt times (retape.time.TS_MIN
-- .. TS_MAX, 2000-01-01 .. 2099-12-31 UTC), so a day outside them can never
-- be recorded as replayed.
M.FIRST_DAY, M.LAST_DAY = "2000-01-01", "2099-12-31"

-- date("2026-02-02") -> "2026-02-02": a real calendar day (no Feb 30) in range.
function M.date(v)
  if type(v) ~= "string" or not v:match("^%d%d%d%d%-%d%d%-%d%d$") or not rtime.parse_date(v) then
    return nil, ("'%s' is not a date (YYYY-MM-DD)"):format(M.shown(v))
  end
  if v < M.FIRST_DAY or v > M.LAST_DAY then
    return nil, ("'%s' is outside the days receipts can have (%s..%s)"):format(v, M.FIRST_DAY, M.LAST_DAY)
  end
  return v
end

-- time_of_day("9:30") -> 9, 30: H:MM or HH:MM, 00:00..23:59.
function M.time_of_day(v)
  local h, m = tostring(v):match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if not h or h > 23 or m > 59 then return nil, ("'%s' is not a time of day (HH:MM, 00:00..23:59)"):format(M.shown(v)) end
  return h, m
end

-- ms(v) -> integer milliseconds within the plausible receipt times.
function M.ms(v)
  local n = type(v) == "string" and v:match("^%d+$") and math.tointeger(tonumber(v)) or math.tointeger(v)
  if not n then return nil, ("'%s' is not a time in milliseconds"):format(M.shown(v)) end
  if n < rtime.TS_MIN or n >= rtime.TS_MAX then
    return nil, ("%d is outside the times receipts can have (2000-01-01..2100-01-01 in ms)"):format(n)
  end
  return n
end

-- instant(v, date) -> ms: "HH:MM" (New York, on `date`), "YYYY-MM-DD HH:MM"
-- or milliseconds.  With step5, a 5-minute boundary (a bucket).
function M.instant(v, date, step5)
  v = tostring(v)
  if v:match("^%d+$") then
    local n, why = M.ms(v)
    if not n then return nil, why end
    if step5 and n % rtime.BUCKET_MS ~= 0 then return nil, ("%d is not a 5-minute boundary (ms)"):format(n) end
    return n
  end
  local d, hm = v:match("^(%d%d%d%d%-%d%d%-%d%d)[ T](%d%d?:%d%d)$")
  if d then date = d else hm = v end
  if not hm:match("^%d%d?:%d%d$") then
    return nil, ("expects HH:MM (New York), 'YYYY-MM-DD HH:MM' or milliseconds, got '%s'"):format(M.shown(v))
  end
  local h, m = M.time_of_day(hm)
  if not h then return nil, m end
  if step5 and m % 5 ~= 0 then return nil, ("'%s' is not a 5-minute boundary"):format(v) end
  if date == nil then return nil, "HH:MM needs a date (or give 'YYYY-MM-DD HH:MM')" end
  local day, why = M.date(date)
  if not day then return nil, "its date " .. why end
  local y, mo, dd = rtime.parse_date(day)
  return rtime.from_ny(y, mo, dd, h, m)
end

-- ticker_list("aapl, brk.b") -> {"AAPL", "BRK-B"} (sorted, upper case, "."
-- as "-"); nil or "" -> nil (every ticker).  Each ticker is 1-20 of
-- A-Z 0-9 . - _ ! / (a NUL or control byte is never a ticker, and an empty
-- element never widens the scope).
function M.ticker_list(v)
  if v == nil or v == "" then return nil end
  local names = {}
  if type(v) == "string" then
    for name in (v .. ","):gmatch("([^,]*),") do names[#names + 1] = name:match("^[ \t]*(.-)[ \t]*$") end
  elseif type(v) == "table" then
    for i, name in ipairs(v) do names[i] = name end
  else
    return nil, ("'%s' is not a list of tickers"):format(M.shown(v))
  end
  local list = {}
  for _, name in ipairs(names) do
    if type(name) ~= "string" or not name:match("^[%w%.%-_!/]+$") or #name > 20 then
      return nil, ("'%s' is not a ticker (1-20 of A-Z 0-9 . - _ ! /)"):format(M.shown(name))
    end
    list[#list + 1] = (name:upper():gsub("%.", "-"))
  end
  table.sort(list)
  return list
end

-- integer(v, min, max) -> n: decimal digits (an optional '-'), within [min, max].
function M.integer(v, min, max)
  local n = type(v) == "string" and v:match("^%-?%d+$") and math.tointeger(tonumber(v)) or math.tointeger(v)
  if not n then return nil, ("'%s' is not an integer"):format(M.shown(v)) end
  if (min and n < min) or (max and n > max) then
    return nil, ("%d is out of range (%s..%s)"):format(n, min and ("%d"):format(min) or "", max and ("%d"):format(max) or "")
  end
  return n
end

-- A value as it may be shown in a message: control bytes escaped, cut at 60.
function M.shown(v)
  local s = tostring(v)
  if #s > 60 then s = s:sub(1, 60) .. "..." end
  return (s:gsub("[%c\127-\255]", function(c) return ("\\x%02X"):format(c:byte()) end))
end

return M
