-- retape.store — the one module that knows the state store's key layout.
-- Every other module (replay, views, diff, ledger, explain, status) reads
-- and writes through the functions here.
--
-- Layout 3 (RocksDB, byte-ordered keys; T = ticker, B = bucket start in ms
-- as 13 digits, E = entry time in ms as 13 digits):
--   retape:layout        "3" (M.LAYOUT)
--   retape:identity      the ruleset, its config and the receipts filter the results come from
--   retape:db            the receipts file last replayed into this store (for refresh and explain)
--   retape:recipe        how the results were made: the ruleset by content (its files' sources,
--                        paths and hashes), the overrides, the effective config, the shard
--   retape:receipts      the receipts file (absolute path) and a fingerprint of each day replayed
--   retape:merge         the shards a `retape merge` combined (a partial set is flagged here)
--   retape:cursor        the run in progress: scope, next bucket; or (phase "refresh") the
--                        recomputation of stale results it or --refresh started (absent when none)
--   retape:page          where the last page of a bucket stopped (paging within a bucket)
--   retape:follow        the live engine's place in the receipts file: {db, rowid} (retape.live)
--   retape:run:NNNNNN    run manifests;  retape:runs:last  the last sequence number
--   cov:DAY              what of a New York day has been replayed, per ticker and bucket (retape.coverage)
--   tk:T                 index of the tickers with versions
--   v:T\0B               T's version after bucket B: the rows covered, the declared state, the
--                        view fields, the open trade, the lane of every receipt of the bucket,
--                        the last receipt id; packed (retape.pack: binary, no JSON; layout 3)
--   t:T\0E\0NNNN         one trade (id T-E-N), as of T's last version
--   stale:T              T's versions from bucket B on depend on an earlier state that changed
--   rs:B\0T, rs:B\0*     clean-slate marks: T (or every ticker but the listed exceptions)
--                        starts bucket B with no position and no entry/cycle state
-- Every other value is JSON (trades are the export format).  Layout 2 held
-- the versions as JSON text: 3 reads the same records, packed.
-- A ticker's results are a fold over its versions in key order; a re-run of
-- a scope replaces the versions and trades inside it, which keeps every
-- scoped write inside its own keys and every read a prefix scan.
local kv = require "retape.kv"
local json = require "retape.json"
local cjson = require "cjson"
local fs = require "retape.fs"
local pack = require "retape.pack"

local M = {}
local Store = {}
Store.__index = Store

M.LAYOUT = "3"
-- RocksDB memtable of a store opened by path: a replay writes a day of
-- versions in a stream, and a smaller memtable flushes it sooner (a day of
-- full-size bodies: peak RSS 123 -> 72 MB, no measurable CPU cost).
M.WRITE_BUFFER_MB = 8
local K_LAYOUT, K_IDENTITY, K_DB, K_CURSOR, K_PAGE = "retape:layout", "retape:identity", "retape:db", "retape:cursor", "retape:page"
local K_FOLLOW = "retape:follow"
local K_RUN, K_RUNS_LAST = "retape:run:", "retape:runs:last"
local K_RECIPE, K_RECEIPTS, K_MERGE = "retape:recipe", "retape:receipts", "retape:merge"
local P_VERSION, P_TRADE, P_TICKER, P_STALE, P_COV, P_RESET = "v:", "t:", "tk:", "stale:", "cov:", "rs:"

local function b13(ms) return string.format("%013d", math.tointeger(ms) or error("store: bad time " .. tostring(ms), 2)) end
local function vkey(T, bucket) return P_VERSION .. T .. "\0" .. b13(bucket) end
local function vprefix(T) return P_VERSION .. T .. "\0" end
local function tprefix(T) return P_TRADE .. T .. "\0" end

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

local function decode(text, where)
  local ok, v = pcall(cjson.decode, text)
  if not ok or type(v) ~= "table" then
    error(string.format("store: %s holds no valid record (%s)", where, ok and "not an object" or v), 0)
  end
  return nulls_to_nil(v)
end

-- A trade's id is TICKER-<entry ms>-<n>; its key sorts by ticker and entry time.
-- (memoized: a replay asks for the key of every touched trade several
-- times per bucket; at most TRADE_KEYS_MAX remembered, then forgotten)
local trade_keys, trade_keys_n, TRADE_KEYS_MAX = {}, 0, 65536
function M.trade_key(id)
  local key = trade_keys[id]
  if key then return key end
  local T, entry, n = tostring(id):match("^(.+)%-(%d+)%-(%d+)$")
  if not T then error("store: trade id '" .. tostring(id) .. "' is not TICKER-<entry ms>-<n>", 2) end
  key = string.format("%s%s\0%013d\0%04d", P_TRADE, T, tonumber(entry), tonumber(n))
  if trade_keys_n >= TRADE_KEYS_MAX then trade_keys, trade_keys_n = {}, 0 end
  trade_keys[id], trade_keys_n = key, trade_keys_n + 1
  return key
end
function M.trade_id(T, entry_ms, n) return string.format("%s-%d-%d", T, entry_ms, n) end

---------------------------------------------------------------------------
-- opening

-- open(path_or_kv [, must_exist]) -> store | nil, message.  A kv handle
-- passed in stays the caller's (close() leaves it open).  With must_exist,
-- a directory that holds no store is an error instead of a new empty store.
-- A store written by an older layout is refused with the command that
-- rebuilds it.
function M.open(where, must_exist)
  local handle, owned = where, false
  if type(where) == "string" then
    if must_exist and fs.kind(where .. "/CURRENT") ~= "file" then
      return nil, where .. ": no state store here (run 'retape replay' first)"
    end
    local h, err = kv.open(where, { write_buffer_mb = M.WRITE_BUFFER_MB })
    if not h then return nil, err end
    handle, owned = h, true
  end
  local self = setmetatable({ kv = handle, owned = owned, batch = handle:batch(), path = type(where) == "string" and where or nil }, Store)
  local layout = handle:get(K_LAYOUT)
  if layout ~= M.LAYOUT then
    local any = false
    for _ in handle:scan("") do any = true; break end
    if any then
      local name = self.path or "the store"
      self:close()
      return nil, string.format("%s was written by an older retape (store layout %s, this one reads %s); "
        .. "rebuild it: rm -rf %s && retape replay --db FILE --state %s --date D (or --from/--to)",
        name, layout or "1", M.LAYOUT, name, name)
    end
    handle:put(K_LAYOUT, M.LAYOUT)
  end
  return self
end

function Store:close()
  if self.batch then self.batch:free(); self.batch = nil end
  if self.owned and self.kv then self.kv:close() end
  self.kv = nil
end
Store.__close = Store.close

-- Applies every put and delete queued since the last write, atomically.
function Store:write()
  if self.batch:count() > 0 then self.kv:write(self.batch) end
end

-- Drops what was queued (after a failure: nothing of it reaches the store).
function Store:discard() self.batch:clear() end

---------------------------------------------------------------------------
-- store-wide records

local function get_json(self, key)
  local text = self.kv:get(key)
  return text and decode(text, key) or nil
end
local function put_json(self, key, v, order) self.batch:put(key, json.encode(v, order)) end

function Store:identity() return get_json(self, K_IDENTITY) end
function Store:set_identity(id) put_json(self, K_IDENTITY, id) end
function Store:db_path() return self.kv:get(K_DB) end
function Store:set_db_path(p) if p then self.batch:put(K_DB, fs.absolute(p) or p) end end

function Store:recipe() return get_json(self, K_RECIPE) end
function Store:set_recipe(r)
  put_json(self, K_RECIPE, r, { "rules", "spec", "files", "overrides", "config", "script_version", "shard",
                                "path", "hash", "source" })
end
function Store:receipts() return get_json(self, K_RECEIPTS) end
function Store:set_receipts(r) put_json(self, K_RECEIPTS, r, { "path", "script_version", "days", "n", "hash" }) end
function Store:merge_record() return get_json(self, K_MERGE) end
-- Copies the recipe and the receipts record of `src` byte for byte (a
-- merge), the recipe's shard replaced by `shard` (false: a whole store).
function Store:copy_records(src, shard)
  local recipe, receipts = src.kv:get(K_RECIPE), src.kv:get(K_RECEIPTS)
  if recipe then
    self.batch:put(K_RECIPE, (recipe:gsub('"shard":"[^"]*"', function() return '"shard":' .. json.encode(shard) end)))
  end
  if receipts then self.batch:put(K_RECEIPTS, receipts) end
end
function Store:set_merge_record(m) put_json(self, K_MERGE, m) end

local CURSOR_ORDER = { "phase", "scope", "identity", "start", "next", "clean", "params" }
function Store:cursor() return get_json(self, K_CURSOR) end
function Store:set_cursor(c)
  if c then put_json(self, K_CURSOR, c, CURSOR_ORDER) else self.batch:delete(K_CURSOR) end
end
function Store:page() return get_json(self, K_PAGE) end
function Store:set_page(p)
  if p then put_json(self, K_PAGE, p) else self.batch:delete(K_PAGE) end
end

-- The live engine's watermark: { db = path, rowid = N } (every receipt of db
-- up to rowid N has been replayed into this store).
function Store:follow() return get_json(self, K_FOLLOW) end
function Store:set_follow(f) put_json(self, K_FOLLOW, f, { "db", "rowid" }) end

-- Coverage of a New York day: { all = bool, tickers = {...} }.
function Store:coverage(day) return get_json(self, P_COV .. day) end
function Store:set_coverage(day, c) put_json(self, P_COV .. day, c, { "all", "tickers", "buckets", "pages" }) end
function Store:each_coverage(fn)
  for k, v in self.kv:scan(P_COV) do fn(k:sub(#P_COV + 1), decode(v, k)) end
end

---------------------------------------------------------------------------
-- tickers, versions, stale marks

function Store:tickers()
  local list = {}
  for k in self.kv:scan(P_TICKER) do list[#list + 1] = k:sub(#P_TICKER + 1) end
  return list
end
function Store:add_ticker(T) self.batch:put(P_TICKER .. T, "") end

-- A version record {n, receipt, state, view, lanes, open} as stored
-- (packed), and back; raises naming what cannot be stored.
function M.encode_version(rec) return pack.encode(rec) end
local function decode_version(bytes, where)
  local ok, v = pcall(pack.decode, bytes)
  if not ok or type(v) ~= "table" then
    error(string.format("store: %s holds no valid record (%s)", where, ok and "not a record" or v), 0)
  end
  return v
end
function M.decode_version(bytes) return decode_version(bytes, "version") end

local function bucket_of(key) return tonumber(key:sub(-13)) end

-- version_before(T, bucket) -> bucket', record | nil: T's last version
-- strictly before `bucket`.
function Store:version_before(T, bucket)
  local k, v = self.kv:last_before(vprefix(T), vkey(T, bucket))
  if not k then return nil end
  return bucket_of(k), decode_version(v, k)
end

-- The text of T's last version at or before `bucket` (no decoding).
function Store:version_text_upto(T, bucket)
  local k, v = self.kv:last_before(vprefix(T), vkey(T, bucket + 1))
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
-- The key order the replay writes trades with (the ruleset's R.trade_order).
function Store:set_order(trade_order) self.trade_order = trade_order end

-- Queues the deletion of T's versions in [from, to]; returns how many.
function Store:delete_versions(T, from, to)
  local n = 0
  for k in self.kv:scan(vprefix(T), vkey(T, from)) do
    if bucket_of(k) > to then break end
    self.batch:delete(k)
    n = n + 1
  end
  return n
end

-- Every version of every ticker: fn(T, bucket, record), tickers in order.
function Store:each_version(fn)
  for k, v in self.kv:scan(P_VERSION) do
    local T = k:sub(#P_VERSION + 1, -15)
    fn(T, bucket_of(k), decode_version(v, k))
  end
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

---------------------------------------------------------------------------
-- trades

function M.encode_trade(t, order) return json.encode(t, order) end

function M.decode_trade(text, where)
  local t = decode(text, where)
  if type(t.id) ~= "string" then error(string.format("store: %s holds no valid trade (no id)", where), 0) end
  return t
end

function Store:put_trade(t) self.batch:put(M.trade_key(t.id), M.encode_trade(t, self.trade_order)) end
function Store:trade_text(id) return self.kv:get(M.trade_key(id)) end
function Store:put_trade_text(id, text) self.batch:put(M.trade_key(id), text) end
function Store:has_trade(id) return self.kv:get(M.trade_key(id)) ~= nil end
function Store:trade(id)
  local key = M.trade_key(id)
  local text = self.kv:get(key)
  return text and M.decode_trade(text, key) or nil
end

-- Queues the deletion of T's trades entered in [from, to]; returns how many.
function Store:delete_trades(T, from, to)
  local n = 0
  for k in self.kv:scan(tprefix(T), tprefix(T) .. b13(from)) do
    local entry = tonumber(k:sub(#tprefix(T) + 1, #tprefix(T) + 13))
    if to and entry > to then break end
    self.batch:delete(k)
    n = n + 1
  end
  return n
end

-- Iterates every stored trade (decoded), by ticker then entry time:
-- fn(trade, key, entry_ms).
function Store:each_trade(fn)
  for k, v in self.kv:scan(P_TRADE) do fn(M.decode_trade(v, k), k, tonumber(k:sub(-18, -6))) end
end

---------------------------------------------------------------------------
-- merging shard stores

-- merge(dst, sources) -> counts.  Copies the results of shard stores (each
-- replayed with --shard i/n over the same receipts with the same rules) into
-- an empty store: versions, trades, tickers, stale and clean-slate marks as
-- they are, day coverage united.  Raises naming a shard that holds another
-- ruleset, another receipts file or an interrupted run.  One atomic batch per
-- source.
function Store:merge(sources, on_shard)
  for k in self.kv:scan("") do
    if k ~= K_LAYOUT then
      error(string.format("%s is not empty; merge into a new directory", self.path or "the store"), 0)
    end
  end
  local identity, db, counts = nil, nil, { versions = 0, trades = 0, tickers = 0 }
  local cov = {}
  for i, src in ipairs(sources) do
    local name = src.path or ("shard " .. i)
    local id = src:identity()
    if not id then error(name .. ": holds no replay", 0) end
    if src:cursor() then error(name .. ": holds an interrupted run; finish it (--resume) before merging", 0) end
    if identity and json.encode(id) ~= json.encode(identity) then
      error(string.format("%s holds results of rules '%s' (config %s, sources %s), the first shard of '%s' (config %s, sources %s)",
        name, id.rules, id.config, id.sources, identity.rules, identity.config, identity.sources), 0)
    end
    identity = identity or id
    local d = src:db_path()
    if db and d and d ~= db then error(string.format("%s replayed %s, the first shard %s", name, d, db), 0) end
    db = db or d
    for _, prefix in ipairs { P_VERSION, P_TRADE, P_TICKER, P_STALE, P_RESET } do
      for k, v in src.kv:scan(prefix) do
        self.batch:put(k, v)
        if prefix == P_VERSION then counts.versions = counts.versions + 1
        elseif prefix == P_TRADE then counts.trades = counts.trades + 1
        elseif prefix == P_TICKER then counts.tickers = counts.tickers + 1 end
      end
    end
    src:each_coverage(function(day, c)
      local m = cov[day] or { all = false, tickers = {} }
      m.all = m.all or c.all
      for _, T in ipairs(c.tickers or {}) do m.tickers[#m.tickers + 1] = T end
      cov[day] = m
    end)
    self:write()
    if on_shard then on_shard(i) end
  end
  for day, c in pairs(cov) do
    local set, list = {}, {}
    if not c.all then
      for _, T in ipairs(c.tickers) do if not set[T] then set[T] = true; list[#list + 1] = T end end
      table.sort(list)
    end
    self:set_coverage(day, { all = c.all, tickers = list })
  end
  if identity then self:set_identity(identity) end
  self:set_db_path(db)
  self:write()
  return counts
end

---------------------------------------------------------------------------
-- run manifests

function Store:next_run_seq() return (math.tointeger(tonumber(self.kv:get(K_RUNS_LAST) or "0")) or 0) + 1 end
function Store:put_run(seq, text)
  self.batch:put(string.format("%s%06d", K_RUN, seq), text)
  self.batch:put(K_RUNS_LAST, tostring(seq))
end
function Store:each_run(fn)
  for _, v in self.kv:scan(K_RUN) do fn(json.decode(v), v) end
end

-- Fingerprints of the results: every key and value under the versions'
-- and the trades' prefixes (bytes, no decoding; FNV-1a 64 in C).
function Store:results_hashes()
  return { lanes_hash = self.kv:hash(P_VERSION), trades_hash = self.kv:hash(P_TRADE) }
end

return M
