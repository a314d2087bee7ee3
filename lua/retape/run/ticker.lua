-- retape.run.ticker — a ticker's working record during a run: where it
-- starts (a stored version, clean-slate marks), the book whose open trade
-- lives in it, how its version is packed for the store, and the problems
-- that do not stop a run (a view field or a trade the store cannot keep).
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local json = require "retape.json"
local sandbox = require "retape.sandbox"
local bookm = require "retape.book"
local pack_view = store.pack_view

local Replay = {}


-- A ticker's working record, started from a stored version (or nothing).
function Replay:ticker_from(T, bucket, rec)
  local tk = { ticker = T, bucket = bucket }
  if rec then
    tk.state = self.schema.adopt(rec.state)
    tk.open = rec.open and self:trade_is_open(rec.open) and rec.open or false
    tk.view, tk.receipt = rec.view, rec.receipt
  else
    tk.state, tk.open = self.schema.adopt(nil), false
  end
  return tk
end

-- R.trade_is_open(trade), under the sandbox limits when the rules have them
-- (rule code, called here outside a receipt's guard).
function Replay:trade_is_open(t)
  if self.limits then return sandbox.guard(self.limits, self.R.trade_is_open, t) end
  return self.R.trade_is_open(t)
end

-- Applies the clean-slate marks between T's previous version and `bucket`.
function Replay:apply_marks(tk, bucket)
  if self.store:reset_between(tk.ticker, tk.bucket or -1, bucket) then
    tk.state = self.schema.cleared(tk.state)
    tk.open = false
  end
  tk.bucket = bucket
end

-- The ticker's working record for a receipt of `bucket` in the main walk.
function Replay:ticker(T, bucket)
  local tk = self.ticks[T]
  if tk then return tk end
  local st = self.store
  if self.continuing then
    local rec = st:version_at(T, bucket)
    if rec then
      tk = self:ticker_from(T, bucket, rec)
      tk.n, tk.lanes = rec.n, rec.lanes or {}
      self.ticks[T] = tk
      return tk
    end
  end
  local b, rec
  local handed = self.before_start and self.before_start[T] -- read by clear_ticker (run/clear.lua)
  if handed and bucket >= handed.start then
    self.before_start[T] = nil
    b, rec = handed.bucket, handed.rec
  else
    b, rec = st:version_before(T, bucket)
  end
  tk = self:ticker_from(T, b, rec)
  self:apply_marks(tk, bucket)
  self.ticks[T] = tk
  return tk
end


-- Packs a ticker's version (store.encode_version).  Its view: the view
-- fields of the ticker's last receipt, packed once (store.pack_view) into
-- tk.view_packed for this version and the ones after it until its next
-- receipt; or tk.view, a table (from the store, or when a field cannot be
-- packed).  View fields that cannot be stored (a function, nested too deep)
-- are reported and dropped, never the whole bucket.
function Replay:encode_version(tk)
  local p = tk.last_p
  if p then
    tk.last_p = nil
    local ok, packed = pcall(pack_view, p, self.schema.view)
    if ok then tk.view, tk.view_packed = nil, packed
    else tk.view, tk.view_packed = self.schema.view_of(p), nil end
  end
  local rec = { n = tk.n or 0, receipt = tk.receipt, state = tk.state or {}, lanes = tk.lanes or {}, open = tk.open or nil }
  local ok, bytes
  if tk.view_packed then
    ok, bytes = pcall(store.encode_version, rec, tk.view_packed)
    if ok then return bytes end
    rec.view = store.decode_version(tk.view_packed) -- (what fails is elsewhere: raised below)
  else
    rec.view = tk.view or {}
    ok, bytes = pcall(store.encode_version, rec)
    if ok then return bytes end
  end
  -- the fields one by one in key order (the same ones dropped in every
  -- run), each kept if the view so far still packs as one member
  local view, names = {}, {}
  for k in pairs(rec.view) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    view[k] = rec.view[k]
    local vok, err = pcall(store.encode_version, { view = view })
    if not vok then
      view[k] = nil
      self:report(string.format("receipt %s (%s): field '%s' cannot be stored (%s); kept without it",
        tostring(tk.receipt), tk.ticker, k, sandbox.engine_message(err)), nil, tk.ticker)
    end
  end
  rec.view = view
  local vok, out = pcall(store.encode_version, rec)
  if not vok then
    error(string.format("receipt %s (%s): its version cannot be stored: %s", tostring(tk.receipt), tk.ticker,
      sandbox.engine_message(out)), 0)
  end
  return out
end

-- Problems that do not stop a run (a malformed payload, a view field that
-- cannot be stored) go to on_error, in row order; a part on another thread
-- keeps them with the row's index for the main thread to put in order.
function Replay:report(msg, index, ticker)
  local out = self.reports
  if out then out[#out + 1] = { index or math.maxinteger, ticker or "", msg }
  elseif self.on_error then self.on_error(msg) end
end

-- Where a trade holds what JSON cannot ("history[3].note is a function",
-- "'legs' takes it past 100000 values in all"), or nil; keys in order, so the
-- answer is the same every run.  count: {n = values seen so far}.
local function unstorable(v, path, depth, count)
  local tv = type(v)
  if tv == "function" or tv == "thread" or (tv == "userdata" and v ~= json.null) then
    return string.format("'%s' is a %s", path, tv)
  end
  count.n = count.n + 1
  if count.n > json.KEPT_VALUES_MAX then -- named by its top-level field
    return string.format("'%s' takes it past %d values in all (a table held twice counts twice)",
      path == "" and "the trade" or path:match("^[^.%[]+"), json.KEPT_VALUES_MAX)
  end
  if tv ~= "table" or depth > 64 then return nil end
  local keys = {}
  for k in next, v do keys[#keys + 1] = k end -- raw: a nested table's own __pairs never runs here
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  for _, k in ipairs(keys) do
    local p = type(k) == "string" and (path == "" and k or path .. "." .. k)
      or string.format("%s[%s]", path, type(k) == "number" and tostring(k) or "a " .. type(k) .. " key") -- (never a rule's __tostring)
    local found = unstorable(v[k], p, depth + 1, count)
    if found then return found end
  end
end

-- The error of a trade that cannot be stored: the receipt and ticker that
-- last changed it, the field, and the rule code that leaves trades.
function Replay:trade_error(t, err)
  -- (a rule's value as text: never its __tostring, outside the guard here)
  local function text(v) return (type(v) == "string" or type(v) == "number") and tostring(v) or "a " .. type(v) end
  local tk = self.ticks and type(t.ticker) == "string" and self.ticks[t.ticker]
  if store.is_batch_full(err) then -- the bucket's writes together, not this trade
    return string.format("receipt %s (%s): %s", text(tk and tk.receipt or "?"), text(t.ticker), tostring(err))
  end
  local where = unstorable(t, "", 0, { n = 0 })
  local simulate = type(self.R.simulate) == "function" and debug.getinfo(self.R.simulate, "S")
  return string.format("receipt %s (%s): trade %s cannot be stored: %s%s", tostring(tk and tk.receipt or "?"),
    text(t.ticker), text(t.id),
    where and (where .. " (a trade holds only JSON values)") or sandbox.engine_message(err),
    simulate and string.format(" -- left by the rules' simulate (%s:%d)", simulate.short_src, simulate.linedefined) or "")
end


-- The book of a run: open trades live in the tickers' working records.
function Replay:make_book()
  local rp, R = self, self.R
  local cash = R.config and R.config.trade and R.config.trade.cash or 1e9
  return bookm.new({
    open = function() return rp.current.open end,
    set_open = function(_, t) rp.current.open = t end,
    taken = function(id)
      if rp.new_ids[id] or (rp.held_trades and rp.held_trades[id] ~= nil) then return true end
      local held = rp.open_held[rp.current.ticker] -- (an id is always of the current ticker: book.next_id)
      if held and held[id] then return true end
      if rp.replacing and next(rp.replacing) then -- a refresh: an old trade it replaces does not hold its id
        local T, entry = tostring(id):match("^(.+)%-(%d+)%-%d+$")
        local from = T and rp.replacing[T]
        if from and tonumber(entry) >= from then return false end
      end
      return rp.store:has_trade(id)
    end,
    changed = function(t, is_new)
      if is_new then rp.new_ids[t.id] = true end
      if not rp.trades[t.id] then
        rp.trades[t.id] = t
        rp.trade_list[#rp.trade_list + 1] = t
      end
    end,
    is_open = R.trade_is_open,
  }, cash)
end

return Replay
