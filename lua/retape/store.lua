-- retape.store — the replay's durable state on the RocksDB key-value store.
--
-- Keys (the `timed:` names are the original worker's, so its users know them):
--   timed:latest:{T}   last processed payload of ticker T with its lane fields:
--                      {"ticker", <state fields>, "payload": <receipt text verbatim>}
--   timed:trade:{id}   one trade per key, in the original record format
--   timed:open:{T}     id of T's open trade (absent when none)
--   retape:cursor      the last committed bucket of the run in progress
-- Everything a bucket changed is written in one atomic batch together with
-- the cursor, so the store is always at a bucket boundary.
local kv = require "retape.kv"
local json = require "retape.json"
local cjson = require "cjson"

local M = {}
local Store = {}
Store.__index = Store

M.LATEST, M.TRADE, M.OPEN, M.CURSOR = "timed:latest:", "timed:trade:", "timed:open:", "retape:cursor"

-- Key order of a trade record and of its history events, as the original wrote them.
M.TRADE_ORDER = {
  "id", "ticker", "direction", "entryPrice", "entryTime", "entry_ts", "triggerTimestamp", "sl", "tp", "rr",
  "rank", "state", "flags", "scriptVersion", "status", "trimmedPct", "history", "notional", "confidence",
  -- history events interleave here: one rank list serves trades and events
  "type", "timestamp", "price", "shares", "value", "trimPct", "trimDeltaPct", "oldSl", "newSl", "reason",
  "pnl_realized",
  "pointValue", "realizedPnl", "currentPrice", "lastUpdate", "source", "exitReason", "exitPrice",
  "pnl", "pnlPct", "sl_protect_reason", "sl_last_tighten_ts", "note",
}

-- The fields a ruleset stamps on a payload; stored beside the raw payload.
M.STATE_FIELDS = {
  "ts", "ingest_ts", "trigger_ts", "sl", "tp", "score", "rank_position", "move_status", "flags",
  "kanban_stage", "kanban_meta", "prev_kanban_stage", "prev_kanban_stage_ts", "entry_ts", "entry_price",
  "kanban_cycle_enter_now_ts", "kanban_cycle_trigger_ts", "kanban_cycle_side",
  "exec", -- executor state of rulesets that keep one (cooldowns), absent otherwise
}
local STATE_ORDER = { "ticker", table.unpack(M.STATE_FIELDS) }
STATE_ORDER[#STATE_ORDER + 1] = "payload"
STATE_ORDER[#STATE_ORDER + 1] = "status"; STATE_ORDER[#STATE_ORDER + 1] = "severity"
STATE_ORDER[#STATE_ORDER + 1] = "reasons"

-- open(path_or_kv [, must_exist]) -> store | nil, message.  A kv handle
-- passed in stays the caller's (close() leaves it open).  With must_exist,
-- a directory that holds no store is an error instead of a new empty store.
function M.open(where, must_exist)
  local handle, owned = where, false
  if type(where) == "string" then
    if must_exist then
      local f = io.open(where .. "/CURRENT")
      if not f then return nil, where .. ": no state store here (run 'retape replay' first)" end
      f:close()
    end
    local h, err = kv.open(where)
    if not h then return nil, err end
    handle, owned = h, true
  end
  return setmetatable({ kv = handle, owned = owned, batch = handle:batch() }, Store)
end

function Store:close()
  if self.batch then self.batch:free(); self.batch = nil end
  if self.owned and self.kv then self.kv:close() end
  self.kv = nil
end
Store.__close = Store.close

local function nulls_to_nil(v)
  if v == cjson.null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do
      if x == cjson.null then v[k] = nil elseif type(x) == "table" then nulls_to_nil(x) end
    end
  end
  return v
end
M.nulls_to_nil = nulls_to_nil

-- Encodes a ticker state: `p` is the stamped payload, `raw` the receipt's text.
function M.encode_state(p, raw)
  local rec = { ticker = p.ticker, payload = json.raw(raw) }
  for _, k in ipairs(M.STATE_FIELDS) do rec[k] = p[k] end
  return json.encode(rec, STATE_ORDER)
end

-- Decodes a stored state back into a stamped payload and its raw text.
function M.decode_state(text, where)
  local ok, rec = pcall(cjson.decode, text)
  if not ok or type(rec) ~= "table" or type(rec.payload) ~= "table" then
    error(string.format("store: %s holds no valid state (%s)", where, ok and "not a state record" or rec), 0)
  end
  nulls_to_nil(rec)
  local p = rec.payload
  for _, k in ipairs(M.STATE_FIELDS) do p[k] = rec[k] end
  return p
end

-- latest(T) -> payload, raw | nil
function Store:latest(ticker)
  local key = M.LATEST .. ticker
  local text = self.kv:get(key)
  if not text then return nil end
  local p = M.decode_state(text, key)
  -- the raw payload is what follows "payload": up to the record's closing brace
  local raw = text:match('"payload":(.*)}$')
  return p, raw
end

function M.encode_trade(t) return json.encode(t, M.TRADE_ORDER) end

function M.decode_trade(text, where)
  local ok, t = pcall(cjson.decode, text)
  if not ok or type(t) ~= "table" or type(t.id) ~= "string" then
    error(string.format("store: %s holds no valid trade (%s)", where, ok and "no id" or t), 0)
  end
  return nulls_to_nil(t)
end

function Store:trade(id)
  local text = self.kv:get(M.TRADE .. id)
  return text and M.decode_trade(text, M.TRADE .. id) or nil
end

function Store:has_trade(id) return self.kv:get(M.TRADE .. id) ~= nil end

-- open_trade(T) -> trade | nil
function Store:open_trade(ticker)
  local id = self.kv:get(M.OPEN .. ticker)
  return id and self:trade(id) or nil
end

-- Iterates every stored trade (decoded), in key order.
function Store:each_trade(fn)
  for k, v in self.kv:scan(M.TRADE) do fn(M.decode_trade(v, k), k) end
end

-- Iterates every stored ticker state: fn(ticker, payload).
function Store:each_latest(fn)
  for k, v in self.kv:scan(M.LATEST) do fn(k:sub(#M.LATEST + 1), M.decode_state(v, k)) end
end

function Store:cursor()
  local text = self.kv:get(M.CURSOR)
  return text and nulls_to_nil(cjson.decode(text)) or nil
end

local CURSOR_ORDER = { "scope", "bucket", "offset", "done" }

-- Commits one unit of work atomically: states {T = {p=, raw=}}, trades
-- (list), and the cursor (table, or false to delete it).
function Store:commit(states, trades, cursor)
  local b = self.batch
  if states then
    local tickers = {}
    for t in pairs(states) do tickers[#tickers + 1] = t end
    table.sort(tickers)
    for _, t in ipairs(tickers) do
      local s = states[t]
      b:put(M.LATEST .. t, M.encode_state(s.p, s.raw))
    end
  end
  -- puts in key order: RocksDB takes sorted batches several times faster
  local sorted = table.move(trades or {}, 1, #(trades or {}), 1, {})
  table.sort(sorted, function(x, y) return x.id < y.id end)
  for _, t in ipairs(sorted) do
    b:put(M.TRADE .. t.id, M.encode_trade(t))
    local open = t.status == "OPEN" or t.status == "TP_HIT_TRIM" or t.status == "" or t.status == nil
    if open then b:put(M.OPEN .. t.ticker, t.id)
    elseif self.kv:get(M.OPEN .. t.ticker) == t.id then b:delete(M.OPEN .. t.ticker) end
  end
  if cursor then b:put(M.CURSOR, json.encode(cursor, CURSOR_ORDER))
  elseif cursor == false then b:delete(M.CURSOR) end
  self.kv:write(b)
end

-- Clean slate (spec §5).  Removes the trades whose entry time lies in
-- [from, to] (and, with a ticker set, belongs to it), then nulls the entry
-- and cycle stamps of `tickers` plus every ticker that lost a trade.  One
-- atomic batch.  Returns the number of trades purged.
local ENTRY_FIELDS = { "entry_ts", "entry_price", "kanban_cycle_enter_now_ts", "kanban_cycle_trigger_ts", "kanban_cycle_side" }
function Store:clean_slate(from, to, only, tickers)
  local b, purged, touched = self.batch, 0, {}
  for _, t in ipairs(tickers or {}) do touched[t] = true end
  self:each_trade(function(t, key)
    local entry = tonumber(t.entry_ts)
    if entry and entry < 1e12 then entry = entry * 1000 end
    if entry and entry >= from and entry <= to and (not only or only[t.ticker]) then
      b:delete(key)
      if self.kv:get(M.OPEN .. t.ticker) == t.id then b:delete(M.OPEN .. t.ticker) end
      touched[t.ticker] = true
      purged = purged + 1
    end
  end)
  local names = {}
  for t in pairs(touched) do names[#names + 1] = t end
  table.sort(names)
  for _, t in ipairs(names) do
    local p, raw = self:latest(t)
    if p then
      for _, k in ipairs(ENTRY_FIELDS) do p[k] = nil end
      b:put(M.LATEST .. t, M.encode_state(p, raw))
    end
  end
  self.kv:write(b)
  return purged
end

return M
