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

local rules = require "retape.rules"
local fs = require "retape.fs"
local fnv1a32 = require("retape.ingest").fnv1a32

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

---------------------------------------------------------------------------
-- the recipe: how the store's results were made

-- recipe_of(R, script_version, shard) -> the record a store keeps of its ruleset.
function M.recipe_of(R, script_version, shard)
  local files = {}
  for i, f in ipairs(rawget(R, "files") or {}) do
    files[i] = { spec = f.spec, path = f.path, hash = f.hash, source = f.source }
  end
  return { rules = R.name, spec = R.spec or R.name, files = files, overrides = json.object(R.overrides or {}),
           config = json.object(rules.config_paths(R.config or {})), script_version = script_version or false,
           shard = shard or false }
end

-- The recorded rule files that changed on disk since: { {spec, path, was, now}, ... }
-- (a missing file has moved: not a change; its recorded source is used).
function M.changed_files(recipe)
  local changed = {}
  for _, f in ipairs(recipe and recipe.files or {}) do
    local h = io.open(f.path, "rb")
    if h then
      local text = h:read("a")
      h:close()
      local now = rules.text_hash(text)
      if now ~= f.hash then changed[#changed + 1] = { spec = f.spec, path = f.path, was = f.hash, now = now } end
    end
  end
  return changed
end

-- The recorded overrides with integral floats back to integers (JSON).
local function overrides_of(recipe)
  local ov = {}
  for k, v in pairs(recipe.overrides or {}) do ov[k] = math.type(v) == "float" and math.tointeger(v) or v end
  return ov
end
M.overrides_of = overrides_of

-- rules_of(run [, where]) -> ruleset: the ruleset a run manifest or a
-- recipe names, freshly loaded, with its recorded overrides (`where` names
-- them in errors).  Raises.
function M.rules_of(run, where)
  local R = rules.load(run.spec or run.rules)
  local ov = overrides_of(run)
  if next(ov) then rules.apply_overrides(R, ov, where or "the run's overrides") end
  return R
end

-- load_recorded(recipe [, from_disk]) -> ruleset: the recorded ruleset from
-- its recorded sources (from_disk: the files as they are now), with the
-- recorded overrides.  Raises.
function M.load_recorded(recipe, from_disk)
  if not from_disk then rules.pin(recipe.files) end
  local ok, R = pcall(M.rules_of, recipe, "the store's overrides")
  rules.unpin()
  if not ok then error(R, 0) end
  return R
end

-- store_rules(st) -> ruleset, notes: the ruleset that made the store, for a
-- read (recorded sources; notes name the rule files changed since).  A
-- store without a recipe (older) names its ruleset in its last manifest.
function M.store_rules(st)
  local recipe = st:recipe()
  if recipe then
    local notes = {}
    for _, c in ipairs(M.changed_files(recipe)) do
      notes[#notes + 1] = string.format("%s changed since this store was made; reading with the recorded source", c.path)
    end
    return M.load_recorded(recipe), notes
  end
  local runs = M.runs(st)
  local last = runs[#runs]
  if not last then return rules.load(rules.default), {} end
  return M.rules_of(last), {}
end

local function show(v)
  if v == nil then return "(none)" end
  if type(v) == "table" then return json.encode(v) end
  if type(v) == "number" then return json.number(v) end
  return tostring(v)
end

local function file_names(files)
  local names = {}
  for _, f in ipairs(files or {}) do names[#names + 1] = f.path .. " (" .. f.hash .. ")" end
  return table.concat(names, ", ")
end

-- differences(recipe, R, script_version) -> { {key, store, run}, ... }:
-- what differs between the recorded recipe and a run's ruleset, setting by setting.
function M.differences(recipe, R, script_version)
  return M.recipe_differences(recipe, M.recipe_of(R, script_version))
end

-- recipe_differences(a, b) -> the same list between two recipes (b's as `run`).
function M.recipe_differences(recipe, run)
  local list = {}
  local function add(key, a, b) list[#list + 1] = { key = key, store = a, run = b } end
  if recipe.rules ~= run.rules then add("rules", recipe.rules, run.rules) end
  local function hashes(files)
    local h = {}
    for i, f in ipairs(files or {}) do h[i] = f.hash end
    return table.concat(h, ",")
  end
  if hashes(recipe.files) ~= hashes(run.files) then
    local fa, fb = file_names(recipe.files), file_names(run.files)
    add("rule files", fa ~= "" and fa or "(bundled)", fb ~= "" and fb or "(bundled)")
  end
  local keys, seen = {}, {}
  for k in pairs(recipe.config or {}) do keys[#keys + 1] = k; seen[k] = true end
  for k in pairs(run.config or {}) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local a, b = (recipe.config or {})[k], (run.config or {})[k]
    if show(a) ~= show(b) then add(k, show(a), show(b)) end
  end
  if (recipe.script_version or false) ~= (run.script_version or false) then
    add("script version", recipe.script_version or "any", run.script_version or "any")
  end
  return list
end

-- "corridor.long.ltf_max: store 25, this run 22; ..." (the first `max`).
function M.describe_differences(list, max)
  local parts = {}
  for i, d in ipairs(list) do
    if max and i > max then parts[#parts + 1] = string.format("and %d more", #list - max); break end
    parts[#parts + 1] = string.format("%s: store %s, this run %s", d.key, d.store, d.run)
  end
  return table.concat(parts, "; ")
end

---------------------------------------------------------------------------
-- the receipts file and a fingerprint of each day replayed

-- day_print(counts) -> {n, hash, buckets}: the fingerprint of one day's
-- receipts from {[bucket] = count} (its session's buckets): the count and a
-- hash of the (bucket, count) list in bucket order.
function M.day_print(counts)
  local buckets, n, parts = {}, 0, {}
  for b in pairs(counts) do buckets[#buckets + 1] = b end
  table.sort(buckets)
  for i, b in ipairs(buckets) do
    n = n + counts[b]
    parts[i] = string.format("%d:%d", b, counts[b])
  end
  return { n = n, hash = fnv1a32(table.concat(parts, ",")), buckets = parts }
end

-- day_prints(src, days, script_version) -> { [day] = {n, hash, buckets} }:
-- day_print of each day's session as the receipts file holds it now.
function M.day_prints(src, days, script_version)
  local prints = {}
  if #days == 0 then return prints end
  local sorted = table.move(days, 1, #days, 1, {})
  table.sort(sorted)
  local from = rtime.session(sorted[1])
  local _, to = rtime.session(sorted[#sorted])
  local want, acc = {}, {}
  for _, d in ipairs(sorted) do want[d] = true; acc[d] = {} end
  for _, b in ipairs(assert(src:buckets { from = from, to = to, script_version = script_version or nil })) do
    local day = rtime.ny_date(b.bucket)
    if want[day] then
      local open, close = rtime.session(day)
      if b.bucket >= open and b.bucket <= close then acc[day][b.bucket] = b.count end
    end
  end
  for _, d in ipairs(sorted) do prints[d] = M.day_print(acc[d]) end
  return prints
end

-- Did a day only gain receipts (every bucket's count the same or more)?
local function only_grew(was, now)
  if now.n <= was.n then return false end
  if not was.buckets then return true end
  local counts = {}
  for _, p in ipairs(now.buckets) do local b, c = p:match("^(%d+):(%d+)$"); counts[b] = tonumber(c) end
  for _, p in ipairs(was.buckets) do
    local b, c = p:match("^(%d+):(%d+)$")
    if (counts[b] or 0) < tonumber(c) then return false end
  end
  return true
end

-- receipt_changes(st, src) -> { grown = {{day, n, was}}, changed = {{day, n, was}} }:
-- the days the store covers whose receipts differ from those replayed.
function M.receipt_changes(st, src)
  local rec = st:receipts()
  local out = { grown = {}, changed = {} }
  if not (rec and rec.days) then return out end
  local days = {}
  for d in pairs(rec.days) do days[#days + 1] = d end
  table.sort(days)
  local now = M.day_prints(src, days, rec.script_version)
  for _, d in ipairs(days) do
    local was, cur = rec.days[d], now[d]
    if was.hash ~= cur.hash then
      local entry = { day = d, n = cur.n, was = math.tointeger(was.n) or was.n }
      if only_grew(was, cur) then out.grown[#out.grown + 1] = entry else out.changed[#out.changed + 1] = entry end
    end
  end
  return out
end

-- A store's recorded receipts file, absolute (nil for an older store).
function M.receipts_path(st)
  local rec = st:receipts()
  return rec and rec.path or nil
end

-- The days of a run's params that it replays whole (every ticker, every bucket).
local function whole_days(params)
  if params.ticker or params.bucket or params.limit or not (params.date or params.from) then return {} end
  if params.date then return { params.date } end
  return rtime.days(params.from, params.to) or {}
end

-- check_write(replay, params) -> grown | nil: before a write, refuses (a
-- ParamError) a receipts file other than the recorded one, and receipts
-- changed under days the store covers (but days this run replays whole,
-- or --rebuild: the error's `replay_again` names those days, "--date D" or
-- "--from A --to B"); returns the days that only gained receipts
-- ({day, n, was}; nil when the receipts were not compared).
function M.check_write(rp, params)
  local st = rp:state_store()
  local rec = st:receipts()
  local src, db_path = rp:receipts()
  if not rec or not db_path then return end
  local scopem = require "retape.scope"
  local abs = fs.absolute(db_path) or db_path
  if rec.path and abs ~= rec.path and not params.rebuild then
    scopem.param_error("this store was replayed from %s; this run reads %s (replay into another --state, or "
      .. "give --rebuild to recompute everything it covers from the new file)", rec.path, abs)
  end
  -- a page or a bucket of a day (the original client's calls, one per page) checks the file only
  if params.rebuild or params.bucket then return end
  local ch = M.receipt_changes(st, src)
  local whole = {}
  for _, d in ipairs(whole_days(params)) do whole[d] = true end
  local changed = {}
  for _, c in ipairs(ch.changed) do if not whole[c.day] then changed[#changed + 1] = c end end
  if #changed > 0 then
    local parts = {}
    for _, c in ipairs(changed) do parts[#parts + 1] = string.format("%s (%s receipts, %d now)", c.day, show(c.was), c.n) end
    local first, last = changed[1].day, changed[#changed].day
    local _, e = pcall(scopem.param_error, "receipts changed under days this store covers since they were replayed: %s; "
      .. "replay them again first", table.concat(parts, ", "))
    e.replay_again = first == last and ("--date " .. first) or ("--from " .. first .. " --to " .. last)
    error(e, 0)
  end
  local grown = {}
  for _, c in ipairs(ch.grown) do if not whole[c.day] then grown[#grown + 1] = c end end
  return grown
end

-- note_receipts(replay, params): after a run, the receipts file and the
-- fingerprints of the days it replayed whole (a day first covered by part
-- of a run is fingerprinted too; --rebuild keeps the days it did not re-read).
function M.note_receipts(rp, params)
  local st = rp:state_store()
  local src, db_path = rp:receipts()
  if not db_path or not src or not (params.date or params.from) then return end
  local rec = st:receipts() or { days = {} }
  local abs = fs.absolute(db_path) or db_path
  local known = (rec.path == nil or rec.path == abs) and rec.days or {} -- else: --rebuild from another file
  local days = params.date and { params.date } or (rtime.days(params.from, params.to) or {})
  local whole = {}
  for _, d in ipairs(whole_days(params)) do whole[d] = true end
  local recount = {}
  for _, d in ipairs(days) do if whole[d] or not known[d] then recount[#recount + 1] = d end end
  if #recount == 0 and rec.path == abs then return end
  M.note_day_prints(rp, M.day_prints(src, recount, rp:version_kept()))
end

-- note_day_prints(replay, {[day] = day_print}): records the fingerprints of
-- days replayed with the store's receipts file (the replay's), as
-- note_receipts does; for a caller that keeps them itself (the live engine
-- adds each pass's new receipts instead of counting the day again).
function M.note_day_prints(rp, prints)
  local st = rp:state_store()
  local _, db_path = rp:receipts()
  local rec = st:receipts() or { days = {} }
  rec.days = rec.days or {}
  local abs = fs.absolute(db_path) or db_path
  if rec.path and rec.path ~= abs then rec.days = {} end -- --rebuild from another file
  rec.path, rec.script_version = abs, rp:version_kept() or false
  for d, p in pairs(prints) do rec.days[d] = p end
  rec.days = json.object(rec.days)
  st:set_receipts(rec)
end

-- A fingerprint of every day's receipts a store replayed (for diff), or nil.
function M.receipts_print(st)
  local rec = st:receipts()
  if not (rec and rec.days) then return nil end
  local days = {}
  for d, p in pairs(rec.days) do days[#days + 1] = d .. "=" .. p.hash end
  table.sort(days)
  return fnv1a32(table.concat(days, ","))
end

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
