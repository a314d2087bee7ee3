-- retape.store — a state store: every other module (replay, views, diff,
-- ledger, explain, status) reads and writes one through the functions here.
--
-- The key layout is retape.store.keys; the rooms are versions (tickers,
-- versions, stale and clean-slate marks) and trades.  This module opens a
-- store, keeps its store-wide records, merges shards and records runs.
local kv = require "retape.kv"
local json = require "retape.json"
local fs = require "retape.fs"
local keys = require "retape.store.keys"
local K_LAYOUT, K_IDENTITY, K_DB, K_CURSOR = keys.K_LAYOUT, keys.K_IDENTITY, keys.K_DB, keys.K_CURSOR
local K_PAGE, K_FOLLOW, K_RUN, K_RUNS_LAST = keys.K_PAGE, keys.K_FOLLOW, keys.K_RUN, keys.K_RUNS_LAST
local K_RUNS_SEAL = keys.K_RUNS_SEAL
local K_RECIPE, K_RECEIPTS, K_MERGE, P_VERSION = keys.K_RECIPE, keys.K_RECEIPTS, keys.K_MERGE, keys.P_VERSION
local P_TRADE, P_TICKER, P_STALE, P_COV = keys.P_TRADE, keys.P_TICKER, keys.P_STALE, keys.P_COV
local P_RESET, decode, get_json, put_json = keys.P_RESET, keys.decode, keys.get_json, keys.put_json

local M = {}
local Store = {}
Store.__index = Store

M.LAYOUT, M.WRITE_BUFFER_MB, M.nulls_to_nil = keys.LAYOUT, keys.WRITE_BUFFER_MB, keys.nulls_to_nil
M.trade_key, M.trade_id = keys.trade_key, keys.trade_id
require "retape.store.versions" (Store, M)
require "retape.store.trades" (Store, M)

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
-- unlogged: without the write-ahead log (a replay's buckets under durable =
-- "run"): durable at the next flush of the memtable (RocksDB's own when it
-- fills, persist(), the next logged write, close), so a killed process
-- loses the unlogged writes since the last flush and leaves the store at a
-- prefix of its writes (core/kv.c).
function Store:write(unlogged)
  if self.batch:count() > 0 then self.kv:write(self.batch, unlogged) end
end

-- Makes every unlogged write durable now.  Returns the flushes made so far.
function Store:persist() return self.kv:persist() end

-- Drops what was queued (after a failure: nothing of it reaches the store).
function Store:discard() self.batch:clear() end

---------------------------------------------------------------------------
-- store-wide records

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
-- (a new receipts record drops the seal: a run that vouches for it seals it again, after)
function Store:set_receipts(r)
  put_json(self, K_RECEIPTS, r, { "path", "script_version", "days", "n", "hash" })
  self.batch:delete(K_RUNS_SEAL)
end
-- The seal of the receipts record: {path, look} (retape.manifest.receipts_look) | nil (none).
function Store:receipts_seal() return get_json(self, K_RUNS_SEAL) end
function Store:set_receipts_seal(s)
  if s then put_json(self, K_RUNS_SEAL, s, { "path", "look" }) else self.batch:delete(K_RUNS_SEAL) end
end
function Store:merge_record() return get_json(self, K_MERGE) end
-- Copies the recipe and the receipts record of `src` byte for byte (a
-- merge), the recipe's shard replaced by `shard` (false: a whole store).
function Store:copy_records(src, shard)
  local recipe, receipts = src.kv:get(K_RECIPE), src.kv:get(K_RECEIPTS)
  if recipe then
    self.batch:put(K_RECIPE, (recipe:gsub('"shard":"[^"]*"', function() return '"shard":' .. json.encode(shard) end)))
  end
  if receipts then self.batch:put(K_RECEIPTS, receipts); self.batch:delete(K_RUNS_SEAL) end
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

-- is_batch_full(err): whether err is the bound on one batch of the store's
-- writes (RETAPE_BATCH_BYTES_MAX, raised by a batch's put or append in C,
-- core/lua_kv.c): the bucket's writes together are to blame, no one value.
function M.is_batch_full(err)
  return tostring(err):find("a batch of the store's writes past %d+ MB") ~= nil
end

-- Fingerprints of the results: every key and value under the versions'
-- and the trades' prefixes (bytes, no decoding; in C, kv:fingerprint), by
-- ticker, so that a run reads again only the tickers it wrote (the store
-- keeps each ticker's hash: a one-ticker re-run of a 5-day store spent 40 %
-- of its time hashing every record).
function Store:results_hashes()
  return { lanes_hash = self.kv:fingerprint(P_VERSION), trades_hash = self.kv:fingerprint(P_TRADE) }
end

return M
