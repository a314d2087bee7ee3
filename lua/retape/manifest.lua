-- retape.manifest — what each run did, recorded in the store: engine,
-- rules (name, source hashes, effective config), parameters, the receipts
-- read (count, hash of their ids in order), wall-clock start and end, the
-- response, and hashes of the resulting lanes and trades.  Also the
-- store's status: coverage, the interrupted run, stale tickers.
--
-- And the store's recipe, which later commands reuse: the ruleset by
-- content (each rule file's source, path and hash), the overrides, the
-- effective config, the receipts file (absolute path) with a fingerprint
-- of each day replayed.  Reads load the recorded sources (the file may have
-- moved or changed since); writes refuse a different ruleset, config or
-- receipts file by naming what differs.
local json = require "retape.json"
local core = require "retape.core"
local rtime = require "retape.time"

local M = {}

M.ORDER = { "seq", "engine", "rules", "rules_sources", "script_version", "params", "overrides", "receipts",
  "threads", "started", "finished", "duration_ms", "results", "response", "config", "read", "hash", "lanes_hash", "trades_hash" }

local PARAMS = { "date", "from", "to", "ticker", "bucket", "limit", "offset", "clean_slate", "resume", "rebuild", "refresh",
  "shard" }

-- record(replay, params, response, counters, started_ms): one manifest.
function M.record(rp, params, resp, counters, started)
  local st, R = rp:state_store(), rp:ruleset()
  local seq = st:next_run_seq()
  local p = {}
  for _, k in ipairs(PARAMS) do p[k] = params[k] end
  local m = {
    seq = seq, engine = core.version, rules = R.name, rules_sources = R.sources or json.object(),
    config = R.config, overrides = R.overrides or json.object(), params = json.object(p),
    script_version = rp:version_kept() or false,
    receipts = { read = counters.seen, hash = string.format("%08x", rp:rows_read_sum() or 0) },
    threads = rp:threads_used(),
    started = rtime.iso_utc(math.floor(started)), finished = rtime.iso_utc(math.floor(core.now_ms())),
    duration_ms = math.floor(core.now_ms() - started), response = resp,
  }
  if not resp.hasMore then m.results = st:results_hashes() end
  M.note_receipts(rp, params)
  M.seal_receipts(rp)
  st:put_run(seq, json.encode(m, M.ORDER))
  st:write()
end

-- record_merge(store, paths, counts, first_shard): the manifest of a
-- `retape merge`; it keeps the shards' scope, rules and receipts (those of
-- the first shard's last run: the check made them one replay's).
function M.record_merge(st, paths, counts, first)
  local seq = st:next_run_seq()
  local id = st:identity() or {}
  local runs = first and M.runs(first) or {}
  local last = runs[#runs] or {}
  local params = json.object {}
  for k, v in pairs(last.params or {}) do if k ~= "shard" then params[k] = v end end
  local m = { seq = seq, engine = core.version, rules = id.rules, rules_sources = last.rules_sources,
              overrides = json.object(last.overrides or {}), config = last.config, params = params,
              script_version = last.script_version, receipts = last.receipts, merged = paths, counts = counts,
              finished = rtime.iso_utc(math.floor(core.now_ms())), results = st:results_hashes() }
  st:put_run(seq, json.encode(m, M.ORDER))
  st:write()
end

local function show(v)
  if v == nil then return "(none)" end
  if type(v) == "table" then return json.encode(v) end
  if type(v) == "number" then return json.number(v) end
  return tostring(v)
end

-- The rooms: recipe (how the results were made) and receipts (the file
-- and each day's fingerprint); this module records runs and reads status.
require "retape.manifest.recipe" (M, show)
require "retape.manifest.receipts" (M, show)

-- The run manifests of a store, oldest first.
function M.runs(st)
  local list = {}
  st:each_run(function(m) list[#list + 1] = m end)
  return list
end

-- status(store) -> { identity, db, days = {{day, all, tickers, buckets, pages, partial, covers}}, interrupted,
-- stale = {{ticker, from}} }.  A day's coverage is per ticker and bucket (retape.coverage); covers says it in words.
function M.status(st)
  local coverage = require "retape.coverage"
  local function hhmm(ms) return rtime.format_ny(math.tointeger(ms)):match("%d%d:%d%d") end
  local s = { identity = st:identity(), db = st:db_path(), days = {}, stale = {}, runs = 0 }
  st:each_coverage(function(day, c)
    s.days[#s.days + 1] = { day = day, all = c.all, tickers = c.tickers or {}, buckets = c.buckets, pages = c.pages,
                            partial = coverage.partial(c), covers = coverage.describe(c, hhmm) }
  end)
  local cur = st:cursor()
  if cur then
    s.interrupted = { params = cur.params, next = cur.next, rules = cur.identity and cur.identity.rules,
                      phase = cur.phase or "run" }
  end
  local marks = st:stale()
  local names = {}
  for T in pairs(marks) do names[#names + 1] = T end
  table.sort(names)
  for _, T in ipairs(names) do s.stale[#s.stale + 1] = { ticker = T, from = marks[T].from } end
  local runs = M.runs(st)
  s.runs = #runs
  s.last_run = runs[#runs]
  return s
end

return M
