-- retape.views — the original app's trade views, computed from the trades
-- (spec §4.5): Trade By Day, Trade By P&L, Trade History; plus the plain
-- text / CSV renderers the CLI uses.  Day keys are UTC dates, as the
-- original's (a quirk the parity ruleset keeps).
local json_number = require("retape.json").number
local rtime = require "retape.time"
local ny_date = rtime.ny_date
local metrics = require "retape.metrics" -- win/loss/flat, realized, unrealized: one definition

local M = {}

-- "2026-02-02T20:53:00.000Z" -> ms since epoch (nil if not that shape):
-- retape.time's parser, the one calendar.
M.iso_ms = rtime.parse_iso

-- Every trade's history flattened: {ts, day, ticker, direction, type, price,
-- shares, value, reason, trade_id}, deduplicated on ticker:direction:type:ts
-- and sorted by time (ties: trade id, then position in the history).
-- opts.day_key: "utc" (the original's) or "ny" (New York trading days).
function M.events(trades, opts)
  local ny = opts and opts.day_key == "ny"
  local out, seen = {}, {}
  for _, t in ipairs(trades) do
    for i, e in ipairs(t.history or {}) do
      local ts = M.iso_ms(e.timestamp)
      local key = string.format("%s:%s:%s:%s", t.ticker, t.direction, e.type, tostring(ts))
      if ts and not seen[key] then
        seen[key] = true
        out[#out + 1] = { ts = ts, day = ny and ny_date(ts) or e.timestamp:sub(1, 10), ticker = t.ticker, direction = t.direction,
          type = e.type, price = e.price, shares = e.shares,
          value = e.value or (e.price and e.shares and e.price * e.shares), reason = e.reason,
          trade_id = t.id, seq = i, trade = t }
      end
    end
  end
  return metrics.sort_events(out, "trade_id")
end

local function realized_of(e) return metrics.event_realized(e.trade, e) end

-- Trade By Day: per day, counts of entries/trims/exits, realized P&L of
-- that day's trims and exits, the trades that closed that day counted as
-- wins / losses / flat (retape.metrics.outcome, as every view), and one row
-- per trade active that day.  A row's `remaining` is the position left at
-- the end of that day; its `close` and `unrealized` use that day's closing
-- price: opts.closes[day][ticker] (views.day_closes, from the receipts)
-- when given, else the trade's last price on the run's last day only (the
-- store keeps no earlier closes: such a row stays empty rather than showing
-- a later price).
-- opts.rules (every view): the ruleset that made the trades, whose
-- trade_is_open says which are open (metrics.of; default: the default ruleset's).
function M.by_day(trades, opts)
  local m = metrics.of(opts and opts.rules)
  local closes = opts and opts.closes
  local days, order, sold = {}, {}, {}
  for _, e in ipairs(M.events(trades, opts)) do
    local d = days[e.day]
    if not d then
      d = { day = e.day, entries = 0, trims = 0, exits = 0, realized = 0, wins = 0, losses = 0, flat = 0,
            trades = {}, rows = {} }
      days[e.day] = d
      order[#order + 1] = e.day
    end
    local t = e.trade
    local row = d.rows[t.id]
    if not row then
      row = { trade_id = t.id, ticker = t.ticker, direction = t.direction, entry = t.entryPrice,
              status = t.status, realized = 0, t = t }
      d.rows[t.id] = row
      d.trades[#d.trades + 1] = row
    end
    local pnl = realized_of(e)
    if e.type == "ENTRY" then d.entries = d.entries + 1; row.entry_ts = e.ts
    elseif e.type == "TRIM" then
      d.trims = d.trims + 1; row.trim_price, row.trim_ts = e.price, e.ts
      sold[t.id] = (sold[t.id] or 0) + (e.shares or 0)
    elseif e.type == "EXIT" then
      d.exits = d.exits + 1
      row.exit_price, row.exit_ts, row.exit_reason = e.price, e.ts, e.reason
      sold[t.id] = t.shares
      local o = m.outcome(t)
      if o == "win" then d.wins = d.wins + 1 elseif o == "loss" then d.losses = d.losses + 1
      elseif o == "flat" then d.flat = d.flat + 1 end
    end
    row.realized = row.realized + pnl
    row.remaining = math.max(0, (t.shares or 0) - (sold[t.id] or 0))
    if row.remaining < 1e-9 then row.remaining = 0 end
    d.realized = d.realized + pnl
  end
  local out = {}
  for i, day in ipairs(order) do
    local d = days[day]
    d.rows = nil
    for _, row in ipairs(d.trades) do
      local t = row.t
      row.t = nil
      if row.remaining > 0 then
        local px = closes and closes[day] and closes[day][t.ticker]
        if px == nil and i == #order and m.is_open(t) then px = t.currentPrice end
        if px then
          row.close = px
          row.unrealized = (px - t.entryPrice) * row.remaining * (t.pointValue or 1) * metrics.direction_sign(t)
        end
      end
    end
    out[i] = d
  end
  return out
end

-- day_closes(db_path, days) -> { [day] = { [ticker] = price } }: each
-- ticker's price on its last receipt of the day's session (buckets 09:30 to
-- 16:00 New York time), read from a receipts database; nil, message if it
-- cannot be read.
function M.day_closes(db_path, days)
  local rtime = require "retape.time"
  local db, err = require("retape.sql").open(db_path)
  if not db then return nil, err end
  local ok, res = pcall(function()
    local out = {}
    for _, day in ipairs(days) do
      local open, close = rtime.session(day)
      local px = {}
      for _, r in ipairs(db:rows([[
        SELECT r.ticker AS ticker, json_extract(r.payload_json, '$.price') AS price
        FROM ingest_receipts r
        JOIN (SELECT ticker, max(ts) AS ts FROM ingest_receipts WHERE bucket_5m BETWEEN ? AND ? GROUP BY ticker) m
          ON r.ticker = m.ticker AND r.ts = m.ts
        ORDER BY r.receipt_id]], open, close)) do
        if type(r.price) == "number" then px[r.ticker] = r.price end
      end
      out[day] = px
    end
    return out
  end)
  db:close()
  if not ok then return nil, tostring(res) end
  return res
end

-- Trade By P&L: per ticker, realized P&L of trims and exits in the last
-- `ndays` UTC days present in the events (all when nil) plus the unrealized
-- P&L of open trades; sorted by total, best first (ties by ticker).
function M.by_pnl(trades, ndays, opts)
  local m = metrics.of(opts and opts.rules)
  local events = M.events(trades, opts)
  local window
  if ndays then
    local keys, seen = {}, {}
    for _, e in ipairs(events) do if not seen[e.day] then seen[e.day] = true; keys[#keys + 1] = e.day end end
    window = {}
    for i = math.max(1, #keys - ndays + 1), #keys do window[keys[i]] = true end
  end
  local per, order = {}, {}
  local function entry(ticker)
    local r = per[ticker]
    if not r then
      r = { ticker = ticker, realized = 0, unrealized = 0, trades = 0, open = 0 }
      per[ticker] = r
      order[#order + 1] = ticker
    end
    return r
  end
  for _, e in ipairs(events) do
    if not window or window[e.day] then
      local r = entry(e.ticker)
      r.realized = r.realized + realized_of(e)
      if e.type == "ENTRY" then r.trades = r.trades + 1 end
    end
  end
  for _, t in ipairs(trades) do
    if m.is_open(t) then
      local r = entry(t.ticker)
      r.open = r.open + 1
      r.unrealized = r.unrealized + metrics.unrealized_if(true, t)
    end
  end
  local out = {}
  for _, k in ipairs(order) do
    local r = per[k]
    r.total = r.realized + r.unrealized
    out[#out + 1] = r
  end
  table.sort(out, function(a, b)
    if a.total ~= b.total then return a.total > b.total end
    return a.ticker < b.ticker
  end)
  return out
end

-- Trade History: every event of every trade, oldest first.
function M.history(trades, opts)
  local out = {}
  for _, e in ipairs(M.events(trades, opts)) do
    local t = e.trade
    out[#out + 1] = { ts = e.ts, trade_id = e.trade_id, ticker = e.ticker, direction = e.direction, type = e.type,
      price = e.price, shares = e.shares, value = e.value, reason = e.reason, status = t.status }
  end
  return out
end

---------------------------------------------------------------------------
-- renderers

local function cell(v, fmt)
  if v == nil then return "" end
  if fmt and type(v) == "number" then return string.format(fmt, v) end
  return tostring(v)
end

-- Renders rows as an aligned text table.  columns: { {key, title, fmt, right} }.
function M.text_table(columns, rows)
  local widths, cells = {}, {}
  for i, c in ipairs(columns) do widths[i] = #c[2] end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(columns) do
      local s = cell(row[c[1]], c[3])
      cells[r][i] = s
      if utf8.len(s) and utf8.len(s) > widths[i] then widths[i] = utf8.len(s) end
    end
  end
  local function line(values)
    local parts = {}
    for i, c in ipairs(columns) do
      local s = values[i]
      local pad = string.rep(" ", widths[i] - (utf8.len(s) or #s))
      parts[i] = c[4] and (pad .. s) or (s .. pad)
    end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local titles = {}
  for i, c in ipairs(columns) do titles[i] = c[2] end
  local out = { line(titles) }
  for r = 1, #rows do out[#out + 1] = line(cells[r]) end
  return table.concat(out, "\n")
end

local function csv_field(s)
  if s:find('[,"\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

function M.csv(columns, rows)
  local out, head = {}, {}
  for i, c in ipairs(columns) do head[i] = c[1] end
  out[1] = table.concat(head, ",")
  for _, row in ipairs(rows) do
    local f = {}
    for i, c in ipairs(columns) do
      local v = row[c[1]]
      f[i] = csv_field(type(v) == "number" and json_number(v) or cell(v))
    end
    out[#out + 1] = table.concat(f, ",")
  end
  return table.concat(out, "\n")
end

return M
