-- retape.coverage — what a store covers of one New York day, per ticker and
-- bucket (what `retape status` reports).  The record of a day:
--   all      true: every ticker, the whole session
--   tickers  these tickers, the whole session
--   buckets  { {who, from, to}, ... }: whole buckets from..to (ms) of who
--            ("*" = every ticker, or one ticker)
--   pages    { {who, bucket, rows}, ... }: only the first `rows` rows of
--            that bucket (a page that did not reach the bucket's end), an
--            exception to what the fields above cover
-- A run replaces the results of its scope, so adding a scope makes its
-- buckets whole (or, for a page, partial) whatever they were before.
local M = {}
local BUCKET_MS = require("retape.time").BUCKET_MS

local function sorted_keys(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- Merges a list of {from, to} ranges (adjacent buckets join).
local function merge_ranges(list)
  table.sort(list, function(a, b) return a[1] < b[1] end)
  local out = {}
  for _, r in ipairs(list) do
    local last = out[#out]
    if last and r[1] <= last[2] + BUCKET_MS then
      if r[2] > last[2] then last[2] = r[2] end
    else
      out[#out + 1] = { r[1], r[2] }
    end
  end
  return out
end

-- add(c, open, close, tickers, bucket, rows) -> the day's new record.
--   c        the day's record (nil: nothing covered yet)
--   open, close  the day's first and last bucket
--   tickers  the scope's tickers (nil: every ticker)
--   bucket   the scope's one bucket (nil: the whole session)
--   rows     with bucket: the page stopped after this many rows (nil: the bucket's end)
function M.add(c, open, close, tickers, bucket, rows)
  c = c or {}
  local ranges, whole, pages = {}, {}, {}
  for _, T in ipairs(c.tickers or {}) do whole[T] = true end
  if c.all then whole["*"] = true end
  for _, b in ipairs(c.buckets or {}) do
    ranges[b[1]] = ranges[b[1]] or {}
    table.insert(ranges[b[1]], { b[2], b[3] })
  end
  for _, p in ipairs(c.pages or {}) do pages[p[1] .. "\0" .. p[2]] = p end
  local whos = tickers or { "*" }
  for _, who in ipairs(whos) do
    if not bucket then
      whole[who], ranges[who] = true, nil
      for k, p in pairs(pages) do if p[1] == who or who == "*" then pages[k] = nil end end
    else
      pages[who .. "\0" .. bucket] = nil
      if who == "*" then -- every ticker's page of this bucket is replaced
        for k, p in pairs(pages) do if p[2] == bucket then pages[k] = nil end end
      end
      if rows then pages[who .. "\0" .. bucket] = { who, bucket, rows }
      else
        ranges[who] = ranges[who] or {}
        table.insert(ranges[who], { bucket, bucket })
      end
    end
  end
  if not tickers and not bucket then whole, ranges = { ["*"] = true }, {} end
  -- ranges that reach over the whole session are whole days
  for who, list in pairs(ranges) do
    local merged = merge_ranges(list)
    ranges[who] = merged
    for _, r in ipairs(merged) do
      if r[1] <= open and r[2] >= close then whole[who], ranges[who] = true, nil; break end
    end
  end
  local out = { all = whole["*"] or false, tickers = {} }
  if not out.all then
    for _, T in ipairs(sorted_keys(whole)) do out.tickers[#out.tickers + 1] = T end
  end
  local buckets = {}
  for _, who in ipairs(sorted_keys(ranges)) do
    if not (out.all or whole[who]) then
      for _, r in ipairs(ranges[who]) do buckets[#buckets + 1] = { who, r[1], r[2] } end
    end
  end
  if #buckets > 0 then out.buckets = buckets end
  local plist = {}
  for _, k in ipairs(sorted_keys(pages)) do plist[#plist + 1] = pages[k] end
  if #plist > 0 then out.pages = plist end
  return out
end

-- Whether the record covers less than whole days (buckets or pages).
function M.partial(c) return (c.buckets ~= nil and #c.buckets > 0) or (c.pages ~= nil and #c.pages > 0) end

-- describe(c, hhmm) -> one line: "all tickers", "AAPL, AMD", "all tickers
-- 09:30-10:15; VST 11:00", a partial page "..., but VST 09:30 only its first 10 rows".
-- hhmm(ms) formats a bucket.
function M.describe(c, hhmm)
  local parts = {}
  if c.all then parts[#parts + 1] = "all tickers"
  elseif #(c.tickers or {}) > 0 then parts[#parts + 1] = table.concat(c.tickers, ", ") end
  local by_who, order = {}, {}
  for _, b in ipairs(c.buckets or {}) do
    if not by_who[b[1]] then by_who[b[1]] = {}; order[#order + 1] = b[1] end
    local r = b[2] == b[3] and hhmm(b[2]) or (hhmm(b[2]) .. "-" .. hhmm(b[3]))
    table.insert(by_who[b[1]], r)
  end
  for _, who in ipairs(order) do
    parts[#parts + 1] = (who == "*" and "all tickers" or who) .. " " .. table.concat(by_who[who], ", ")
  end
  local line = table.concat(parts, "; ")
  local pages = {}
  for _, p in ipairs(c.pages or {}) do
    local who = p[1] ~= "*" and (p[1] .. " ") or (line == "" and "all tickers " or "")
    pages[#pages + 1] = string.format("%s%s only its first %d rows", who, hhmm(p[2]), p[3])
  end
  if #pages > 0 then line = (line ~= "" and (line .. ", but ") or "") .. table.concat(pages, ", ") end
  return line
end

return M
