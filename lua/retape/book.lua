-- retape.book — the trade book handed to a ruleset's simulate():
--
--   book.open(T) -> the ticker's open trade | nil      book.add(trade)
--   book.touch(trade)   (the trade changed)            book.next_id(T, entry_ms) -> id
--   book.iso(ms) -> ISO-8601 UTC                       book.weekend(ms) -> bool (New York)
--   book.cash                                          (starts at config.trade.cash for each receipt)
--
-- A rule sees only the trades of the ticker whose receipt it is processing.
-- The engine gives the book its hooks (where open trades come from, whether
-- an id is taken, what to do with a changed trade), so the same book serves
-- a replay and a scratch run such as explain.
local rtime = require "retape.time"

local M = {}
local BUCKET_MS = rtime.BUCKET_MS

-- new(hooks, cash) -> book.  hooks:
--   open(T) -> trade | nil        the ticker's open trade
--   set_open(T, trade | false)    the ticker's open trade changed
--   taken(id) -> bool             an id already used (stored or created in this run)
--   changed(trade, is_new)        a trade was created or touched
--   is_open(trade) -> bool        the ruleset's definition of an open trade
function M.new(hooks, cash)
  local book = { cash = cash, created = 0, ticker = nil }
  local current -- the ticker of the receipt being simulated

  function book.begin(T)
    current = T
    book.ticker = T
    book.cash = cash
  end

  -- (called only when T is another ticker: the check itself is inline,
  -- sparing a call on every use of the book)
  local function own(T)
    if T ~= current then
      error(string.format("a rule may only see the trades of the ticker it is processing (%s, asked for %s)",
        tostring(current), tostring(T)), 3)
    end
  end

  -- A trade is plain data that the engine reads, keys and stores outside
  -- the rule's guard: one with a metatable (whose __index or __tostring
  -- would run there) or without a string id is refused here, at the
  -- rule's line.  (Its nested tables are only ever walked raw.)
  local function plain(t, what)
    if type(t) ~= "table" or getmetatable(t) ~= nil or type(rawget(t, "id")) ~= "string" then
      error(string.format("book.%s: a trade is a plain table (no metatable) with a string id", what), 3)
    end
  end

  function book.open(T)
    if T ~= current then own(T) end
    return hooks.open(T) or nil
  end
  function book.touch(t)
    plain(t, "touch")
    local T = t.ticker
    if T ~= current then own(T) end
    hooks.changed(t, false)
    if not hooks.is_open(t) and hooks.open(t.ticker) == t then hooks.set_open(t.ticker, false) end
  end
  function book.add(t)
    plain(t, "add")
    local T = t.ticker
    if T ~= current then own(T) end
    hooks.set_open(t.ticker, t)
    book.created = book.created + 1
    hooks.changed(t, true)
  end
  -- TICKER-<entry ms>-<n>: the first free n for that ticker and time.
  function book.next_id(T, entry_ts)
    if T ~= current then own(T) end
    local n = 1
    while true do
      local id = string.format("%s-%d-%d", T, entry_ts, n)
      if not hooks.taken(id) then return id end
      n = n + 1
    end
  end
  book.iso = rtime.iso_utc
  -- New York Saturday/Sunday; every receipt of a bucket shares its day, so
  -- the calendar lookup runs once per 5-minute bucket, not per receipt.
  local weekend_bucket, weekend_value
  function book.weekend(ms)
    local b = ms - ms % BUCKET_MS
    if b ~= weekend_bucket then
      local wday = rtime.to_ny(ms).wday
      weekend_bucket, weekend_value = b, wday == 0 or wday == 6
    end
    return weekend_value
  end
  return book
end

return M
