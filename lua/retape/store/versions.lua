-- retape.store.versions — a store's tickers, their versions (the packed
-- record after each bucket), stale marks and clean-slate marks: everything
-- keyed by ticker and bucket.
local pack = require "retape.pack"
local keys = require "retape.store.keys"
local P_VERSION, P_TICKER, P_STALE, P_RESET = keys.P_VERSION, keys.P_TICKER, keys.P_STALE, keys.P_RESET
local b13, vkey, vprefix, bucket_of = keys.b13, keys.vkey, keys.vprefix, keys.bucket_of
local decode, get_json, put_json = keys.decode, keys.get_json, keys.put_json
local BUCKET_MS = require("retape.time").BUCKET_MS

-- Adds the room's methods to Store and its functions to M (retape.store).
return function(Store, M)
  function Store:tickers()
    local list = {}
    for k in self.kv:scan(P_TICKER) do list[#list + 1] = k:sub(#P_TICKER + 1) end
    return list
  end
  function Store:add_ticker(T) self.batch:put(P_TICKER .. T, "") end

  -- A version record {n, receipt, state, view, lanes, open} as stored
  -- (packed), and back; raises naming what cannot be stored.  view_packed:
  -- the record's view given already packed (M.pack_view), rec.view unused.
  function M.encode_version(rec, view_packed)
    if view_packed then return pack.encode(rec, "view", view_packed) end
    return pack.encode(rec)
  end
  -- The view of a version, packed from the fields `names` of a payload (the
  -- bytes encode_version(rec) would write for rec.view = {k = p[k]}).
  M.pack_view = pack.pick
  local function decode_version(bytes, where)
    local ok, v = pcall(pack.decode, bytes)
    if not ok or type(v) ~= "table" then
      error(string.format("store: %s holds no valid record (%s)", where, ok and "not a record" or v), 0)
    end
    return v
  end
  function M.decode_version(bytes) return decode_version(bytes, "version") end

  -- version_before(T, bucket) -> bucket', record | nil: T's last version
  -- strictly before `bucket`.
  function Store:version_before(T, bucket)
    local b, v = self:version_text_before(T, bucket)
    if not b then return nil end
    return b, decode_version(v, vkey(T, b))
  end

  -- The same, undecoded: bucket', its packed text | nil (decode it with
  -- store.decode_version_of(T, bucket', text)).
  -- Versions sit at bucket starts, so before a bucket start the last one
  -- can only be the bucket before's: looked up first with a get (the
  -- bloom filters skip the sorted runs that do not hold it; most tickers
  -- have one there), else the ordered seek through every sorted run.
  function Store:version_text_before(T, bucket)
    if bucket % BUCKET_MS == 0 then
      local v = self:version_text_at(T, bucket - BUCKET_MS)
      if v then return bucket - BUCKET_MS, v end
    end
    local k, v = self.kv:last_before(vprefix(T), vkey(T, bucket))
    if not k then return nil end
    return bucket_of(k), v
  end
  -- T's version at `bucket` exactly, undecoded: its packed text | nil (a
  -- get: the bloom filters skip the sorted runs that do not hold it).
  function Store:version_text_at(T, bucket) return self.kv:get(vkey(T, bucket)) end
  function M.decode_version_of(T, bucket, bytes) return decode_version(bytes, vkey(T, bucket)) end

  -- The text of T's last version at or before `bucket` (no decoding).  A
  -- version at `bucket` itself is looked up first: a get, which the bloom
  -- filters answer for the sorted runs that do not hold it (settle_stale
  -- after a one-bucket re-run asks for the versions the run just wrote),
  -- where the ordered seek reads every sorted run of the store.
  function Store:version_text_upto(T, bucket)
    local v = self:version_text_at(T, bucket)
    if v then return v, bucket end
    local k
    k, v = self.kv:last_before(vprefix(T), vkey(T, bucket + 1))
    return v, k and bucket_of(k)
  end

  function Store:version_at(T, bucket)
    local key = vkey(T, bucket)
    local text = self.kv:get(key)
    return text and decode_version(text, key) or nil
  end

  -- versions(T [, from [, to]]) -> list of {bucket=, rec=} in time order.
  function Store:versions(T, from, to, raw)
    local list = {}
    local prefix = vprefix(T)
    for k, v in self.kv:scan(prefix, from and vkey(T, from) or nil) do
      local b = bucket_of(k)
      if to and b > to then break end
      list[#list + 1] = { bucket = b, rec = raw and v or decode_version(v, k) }
    end
    return list
  end

  -- The first version of T after `bucket`, or nil.
  function Store:first_version_after(T, bucket)
    for k in self.kv:scan(vprefix(T), vkey(T, bucket + 1)) do return bucket_of(k) end
    return nil
  end

  function Store:last_version(T)
    local k, v = self.kv:last_before(vprefix(T), vprefix(T) .. "\255")
    if not k then return nil end
    return bucket_of(k), decode_version(v, k)
  end

  function Store:put_version(T, bucket, bytes) self.batch:put(vkey(T, bucket), bytes) end
  -- Where the versions of `bucket` go: the batch, and the key of ticker T's
  -- as prefix .. T .. tail (for a writer that builds the keys itself: the
  -- replay's C step, step.versions, packs a bucket's versions into it).
  function Store:version_keys(bucket) return self.batch, P_VERSION, "\0" .. b13(bucket) end
  -- The key order the replay writes trades with (the ruleset's R.trade_order).
  function Store:set_order(trade_order) self.trade_order = trade_order end

  -- T's versions from bucket `from` on, read in one scan (what a re-run
  -- replaces, and what it may make stale): the keys of those in [from, to]
  -- (a list, for delete_version_keys), the text of the last of them (nil
  -- when none), and the bucket of T's first version after `to` (nil when
  -- none).
  function Store:versions_from(T, from, to)
    local keys, last, after = {}, nil, nil
    for k, v in self.kv:scan(vprefix(T), vkey(T, from)) do
      local b = bucket_of(k)
      if b > to then after = b; break end
      keys[#keys + 1], last = k, v
    end
    return keys, last, after
  end

  -- Queues the deletion of T's versions in [from, to]; returns how many.
  function Store:delete_versions(T, from, to)
    local keys = self:versions_from(T, from, to)
    self:delete_version_keys(keys)
    return #keys
  end

  -- Queues the deletion of the versions `keys` (as versions_from lists them).
  function Store:delete_version_keys(keys)
    for _, k in ipairs(keys) do self.batch:delete(k) end
  end

  -- Every version of every ticker: fn(T, bucket, record), tickers in order.
  function Store:each_version(fn)
    for k, v in self.kv:scan(P_VERSION) do
      local T = k:sub(#P_VERSION + 1, -15)
      fn(T, bucket_of(k), decode_version(v, k))
    end
  end

  -- Every bucket some ticker has a version after, in order (read from the
  -- keys: no record decoded).
  function Store:version_buckets()
    local set, list = {}, {}
    for k in self.kv:scan(P_VERSION) do
      local b = bucket_of(k)
      if not set[b] then set[b] = true; list[#list + 1] = b end
    end
    table.sort(list)
    return list
  end

  function Store:stale()
    local marks = {}
    for k, v in self.kv:scan(P_STALE) do marks[k:sub(#P_STALE + 1)] = decode(v, k) end
    return marks
  end
  function Store:stale_of(T) return get_json(self, P_STALE .. T) end
  function Store:set_stale(T, mark)
    if mark then put_json(self, P_STALE .. T, mark, { "from", "expect", "rest", "keep_id", "keep" }) else self.batch:delete(P_STALE .. T) end
  end

  ---------------------------------------------------------------------------
  -- clean-slate marks

  -- marks(from, to) -> { {bucket=, ticker=T|"*", except={T=true}}, ... } in key order.
  function Store:marks(from, to)
    local list = {}
    for k, v in self.kv:scan(P_RESET, P_RESET .. b13(from)) do
      local b, who = k:match("^rs:(%d+)\0(.*)$")
      b = tonumber(b)
      if b > to then break end
      local rec = decode(v, k)
      local except = {}
      for _, T in ipairs(rec.except or {}) do except[T] = true end
      list[#list + 1] = { bucket = b, ticker = who, except = except, text = v }
    end
    return list
  end

  function Store:put_mark(bucket, who, except)
    local list = {}
    for T in pairs(except or {}) do list[#list + 1] = T end
    table.sort(list)
    put_json(self, P_RESET .. b13(bucket) .. "\0" .. who, { except = list })
  end
  function Store:delete_mark(bucket, who) self.batch:delete(P_RESET .. b13(bucket) .. "\0" .. who) end

  -- Does a clean-slate mark in (after, upto] apply to T?
  function Store:reset_between(T, after, upto)
    if upto <= after then return false end
    for _, m in ipairs(self:marks(after + 1, upto)) do
      if m.ticker == T or (m.ticker == "*" and not m.except[T]) then return true end
    end
    return false
  end
end
