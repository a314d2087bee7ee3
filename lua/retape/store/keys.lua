-- retape.store.keys — the state store's key layout and record encoding:
-- the one place that knows which key holds what.  retape.store and its
-- rooms (versions, trades) build every key through here.
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
--   retape:runs:seal     the receipts file's path, identity, size and times when its day
--                        fingerprints were last found to match it (retape.manifest: a
--                        later run that finds it unchanged need not count its days again)
--   cov:DAY              what of a New York day has been replayed, per ticker and bucket (retape.coverage)
--   tk:T                 index of the tickers with versions
--   v:T\0B               T's version after bucket B: the rows covered, the declared state, the
--                        view fields, the open trade, the lane of every receipt of the bucket,
--                        the last receipt id; packed (retape.pack: binary, no JSON; layout 3)
--   t:T\0E\0NNNN         one trade (id T-E-N), as of T's last version
--   stale:T              T's versions from bucket B on depend on an earlier state that changed
--   rs:B\0T, rs:B\0*     clean-slate marks: T (or every ticker but the listed exceptions)
--                        starts bucket B with no position and no entry/cycle state
--   \xff"fingerprint"...  the results fingerprints' cached hash of each ticker's versions and
--                        trades (core/kv_fingerprint.c owns them: bookkeeping, not results)
-- Every other value is JSON (trades are the export format).  Layout 2 held
-- the versions as JSON text: 3 reads the same records, packed.
-- A ticker's results are a fold over its versions in key order; a re-run of
-- a scope replaces the versions and trades inside it, which keeps every
-- scoped write inside its own keys and every read a prefix scan.
local json = require "retape.json"
local cjson = require "cjson"

local M = {}

M.LAYOUT = "3"
-- RocksDB memtable of a store opened by path: a replay writes a day of
-- versions in a stream, and a smaller memtable flushes it sooner (a day of
-- full-size bodies: peak RSS 123 -> 72 MB, no measurable CPU cost).
M.WRITE_BUFFER_MB = 8
local K_LAYOUT, K_IDENTITY, K_DB, K_CURSOR, K_PAGE = "retape:layout", "retape:identity", "retape:db", "retape:cursor", "retape:page"
local K_FOLLOW = "retape:follow"
local K_RUN, K_RUNS_LAST, K_RUNS_SEAL = "retape:run:", "retape:runs:last", "retape:runs:seal"
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

-- A store-wide JSON record of a store (its kv handle and write batch), read
-- and queued for writing.
local function get_json(self, key)
  local text = self.kv:get(key)
  return text and decode(text, key) or nil
end
local function put_json(self, key, v, order) self.batch:put(key, json.encode(v, order)) end

-- The bucket of a version key (its last 13 digits).
local function bucket_of(key) return tonumber(key:sub(-13)) end

-- what the rooms of retape.store use
M.K_LAYOUT, M.K_IDENTITY, M.K_DB, M.K_CURSOR, M.K_PAGE = K_LAYOUT, K_IDENTITY, K_DB, K_CURSOR, K_PAGE
M.K_FOLLOW, M.K_RUN, M.K_RUNS_LAST, M.K_RUNS_SEAL = K_FOLLOW, K_RUN, K_RUNS_LAST, K_RUNS_SEAL
M.K_RECIPE, M.K_RECEIPTS, M.K_MERGE = K_RECIPE, K_RECEIPTS, K_MERGE
M.P_VERSION, M.P_TRADE, M.P_TICKER, M.P_STALE, M.P_COV, M.P_RESET = P_VERSION, P_TRADE, P_TICKER, P_STALE, P_COV, P_RESET
M.b13, M.vkey, M.vprefix, M.tprefix, M.bucket_of = b13, vkey, vprefix, tprefix, bucket_of
M.decode, M.get_json, M.put_json = decode, get_json, put_json

return M
