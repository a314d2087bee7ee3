-- retape.sweep — many variants of a ruleset over the same receipts in one
-- pass.
--
--   local sweep = require "retape.sweep"
--   local variants = sweep.grid { "corridor.long.ltf_max=20,25,30", "late.phase=0.6..0.8:0.1" }
--   local res = assert(sweep.run { db = "lv.db", from = "2026-02-02", to = "2026-02-06",
--                                  rules = "default", variants = variants })
--   for _, v in ipairs(res.variants) do print(v.label, v.metrics.total) end
--
-- How.  Every variant is a normal retape.replay object over its own store,
-- and its run goes on inside its own coroutine.  They all read through one
-- shared source (below) that mimics what the replay calls on a
-- retape.source: buckets(scope), cursor(bucket, scope) -> fetch(n) / close,
-- snapshot(hold).  A bucket's rows are read and decoded ONCE from the real
-- source when every running variant has asked for it; each variant gets its
-- own copy of each payload's top level and of the nested tables the ruleset
-- writes into (R.payload_writes; a deep copy when it does not say), sharing
-- the nested tables it only reads; a variant that asks
-- for a bucket not loaded yet yields to the scheduler; a bucket's rows are
-- dropped when the next one is loaded.  Memory: one bucket of payloads plus
-- the variants' own state.  So each variant's store is, by construction,
-- what a standalone `retape replay --set ...` of it writes (tested byte for
-- byte); stores nobody keeps (no `dir`) hold its trades only (replay's
-- trades_only: the same trades, no versions).  One Lua state per group of
-- variants, one group per thread (run_groups).
local source = require "retape.source"
local rules = require "retape.rules"
local json = require "retape.json"
local core = require "retape.core"
local fs = require "retape.fs"
local stats = require "retape.stats"
local kv = require "retape.kv"
local store = require "retape.store"

local M = {}

---------------------------------------------------------------------------
-- grids: the variants to run

-- Formats a number the way a person typed it: 0.1 + 0.2 steps give "0.3".
local function tidy(x)
  if math.type(x) == "integer" then return x end
  local v = tonumber(string.format("%.12g", x))
  return v
end

-- parse_grid("KEY=V1,V2,..." | "KEY=LO..HI:STEP") -> key, { values }.
-- Values are typed as --set types them (numbers, booleans, strings); a
-- range of integers gives integers.  Raises on a malformed spec.
function M.parse_grid(text, ranges)
  local key, rhs = tostring(text):match("^%s*([%w_.]+)%s*=%s*(.-)%s*$")
  if not key and tostring(text):match("^%s*[%w_.]+%s*$") then
    -- KEY alone: the range the ruleset declares for it (R.ranges)
    key = tostring(text):match("^%s*([%w_.]+)%s*$")
    local r = ranges and ranges[key]
    if not r then
      error(string.format("--grid '%s': the ruleset declares no range for it; give KEY=V1,V2,... or KEY=LO..HI:STEP", key), 0)
    end
    rhs = string.format("%s..%s:%s", M.num_text(r.min), M.num_text(r.max), M.num_text(r.step))
  end
  if not key or rhs == "" then
    error(string.format("--grid '%s': expected KEY=V1,V2,... or KEY=LO..HI:STEP (or KEY with a declared range)", tostring(text)), 0)
  end
  local lo, hi, step = rhs:match("^([-+%d.eE]+)%.%.([-+%d.eE]+):([-+%d.eE]+)$")
  local values = {}
  if lo then
    local a, b, s = tonumber(lo), tonumber(hi), tonumber(step)
    if not (a and b and s) then error(string.format("--grid '%s': LO..HI:STEP must be numbers", text), 0) end
    if s <= 0 then error(string.format("--grid '%s': STEP must be positive", text), 0) end
    if b < a then error(string.format("--grid '%s': HI is below LO", text), 0) end
    local ints = math.type(a) == "integer" and math.type(b) == "integer" and math.type(s) == "integer"
    local n = math.floor((b - a) / s + 1e-9)
    if n >= 10000 then error(string.format("--grid '%s': more than 10,000 values", text), 0) end
    for i = 0, n do values[#values + 1] = ints and (a + i * s) or tidy(a + i * s) end
  else
    for part in (rhs .. ","):gmatch("(.-),") do
      if part:match("^%s*$") then error(string.format("--grid '%s': an empty value", text), 0) end
      local _, v = rules.parse_set(key .. "=" .. part)
      values[#values + 1] = v
    end
  end
  return key, values
end

-- A number as --grid reads it back ("0.1", "5", "1e-05").
function M.num_text(x)
  if math.type(x) == "integer" then return tostring(x) end
  return string.format("%.12g", x)
end

-- axes(specs [, ranges]) -> { {key, values}, ... } (parse_grid of each;
-- ranges: the ruleset's declared ranges, for a KEY given alone).
function M.axes(specs, ranges)
  local axes, seen = {}, {}
  for _, s in ipairs(specs) do
    local key, values
    if type(s) == "table" then key, values = s[1], s[2] else key, values = M.parse_grid(s, ranges) end
    if seen[key] then error(string.format("--grid: '%s' is given twice", key), 0) end
    seen[key] = true
    axes[#axes + 1] = { key = key, values = values }
  end
  return axes
end

-- A small deterministic generator (splitmix64): the same seed gives the
-- same variants on every machine and Lua build.
local function splitmix(seed)
  local x = math.tointeger(seed) or 0
  return function(n) -- an integer in 1..n
    x = x + 0x9E3779B97F4A7C15
    local z = x
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 1) % n + 1
  end
end

-- random(specs, n, seed [, ranges]) -> variants: n distinct draws (fewer
-- when the space holds fewer), each value drawn uniformly from its axis'
-- values (a range's steps, a list, or the declared range), in draw order.
function M.random(specs, n, seed, ranges)
  local axes = M.axes(specs, ranges)
  local space = 1
  for _, a in ipairs(axes) do space = space * #a.values end
  n = math.min(n, space)
  local draw = splitmix(seed)
  local out, seen = {}, {}
  local tries = 0
  while #out < n and tries < n * 50 do
    tries = tries + 1
    local o, key = {}, {}
    for i, a in ipairs(axes) do
      local j = draw(#a.values)
      o[a.key] = a.values[j]
      key[i] = j
    end
    local k = table.concat(key, ",")
    if not seen[k] then seen[k] = true; out[#out + 1] = o end
  end
  out.keys = {}
  for i, a in ipairs(axes) do out.keys[i] = a.key end
  return out
end

-- grid(specs [, ranges]) -> { {["a.b"] = v, ...}, ... }: the cartesian
-- product of the specs (strings for parse_grid, or {key, {values}}), the
-- first spec varying slowest.  A key given twice is an error.
function M.grid(specs, ranges)
  local axes = {}
  for _, a in ipairs(M.axes(specs, ranges)) do
    local key, values = a.key, a.values
    axes[#axes + 1] = { key = key, values = values }
  end
  local out = { {} }
  for _, axis in ipairs(axes) do
    local nxt = {}
    for _, base in ipairs(out) do
      for _, v in ipairs(axis.values) do
        local o = {}
        for k, x in pairs(base) do o[k] = x end
        o[axis.key] = v
        nxt[#nxt + 1] = o
      end
    end
    out = nxt
  end
  out.keys = {}
  for i, a in ipairs(axes) do out.keys[i] = a.key end
  return out
end

-- load_grid_file(path) -> variants: a Lua file returning a list of override
-- tables (flat {["a.b"] = v} or nested {a = {b = v}}).  Raises naming the file.
function M.load_grid_file(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then error(err, 0) end
  local ok, list = pcall(chunk)
  if not ok then error(tostring(list), 0) end
  if type(list) ~= "table" or #list == 0 then error(path .. ": a grid file returns a non-empty list of override tables", 0) end
  local out = {}
  for i, v in ipairs(list) do
    if type(v) ~= "table" then error(string.format("%s: entry %d is a %s, not a table of overrides", path, i, type(v)), 0) end
    out[i] = v
  end
  return out
end

-- Flattens nested overrides to {["a.b"] = v} against the config's paths.
local function flat_overrides(R, o) return rules.flat_overrides(o, rules.config_paths(R.config or {})) end

-- "a.b=1 c=x": a variant's overrides, keys sorted.
function M.label(o)
  local keys = {}
  for k in pairs(o) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. tostring(o[k]) end
  return #parts > 0 and table.concat(parts, " ") or "(base)"
end

-- rulesets(spec, base, variants) -> { R, ... }: one freshly loaded ruleset
-- per variant with the base overrides (--set/--config) and then the
-- variant's applied.  Every variant is checked before any runs; an error
-- names the variant: "variant 3 (a.b=x): --grid: unknown setting ...".
function M.rulesets(spec, base, variants)
  if spec ~= nil and type(spec) ~= "string" then
    error("sweep: rules must be a ruleset name or a .lua file (each variant loads its own copy)", 0)
  end
  local list = {}
  for i, o in ipairs(variants) do
    local R = rules.load(spec)
    if base and next(base) then rules.apply_overrides(R, base, "--set") end
    local flat = flat_overrides(R, o)
    local ok, err = pcall(rules.apply_overrides, R, flat, "--grid")
    if not ok then error(string.format("variant %d (%s): %s", i, M.label(flat), tostring(err)), 0) end
    list[i] = R
    variants[i] = flat
  end
  return list
end

---------------------------------------------------------------------------
-- the shared source

-- A deep copy of a decoded payload (C: lua_json.c), one per variant.
local deep_copy = require("retape.jsonenc").copy
M.deep_copy = deep_copy

-- What a ruleset writes into its payload below the top level: the nested
-- tables each variant needs its own copy of (everything else it only reads,
-- so the variants share it).  A ruleset declares them as R.payload_writes
-- (a list of top-level keys); the shipped rulesets write only into `flags`.
-- Without a declaration every variant gets a deep copy of every payload.
M.SHIPPED_WRITES = { ["worker-2026-02-02"] = { "flags" }, default = { "flags" } }

function M.payload_writes(R)
  if type(R.payload_writes) == "table" then return R.payload_writes end
  if R.trusted then return M.SHIPPED_WRITES[R.name] end
  return nil
end

-- A variant's copy of a payload: the top level copied, the tables named
-- in `writes` deep-copied, the other nested tables shared (read-only).
local function shared_copy(p, writes)
  local c = {}
  for k, v in next, p do c[k] = v end
  for i = 1, #writes do
    local k = writes[i]
    local v = c[k]
    if type(v) == "table" then c[k] = deep_copy(v) end
  end
  return setmetatable(c, getmetatable(p))
end
M.shared_copy = shared_copy
-- The same for a payload decoded selectively (retape.decode): the copy keeps
-- the fields not decoded yet pending, so they still decode on first read.
local partial_copy = require("retape.decode").copy

local Shared = {}
Shared.__index = Shared
local Cursor = {}
Cursor.__index = Cursor

-- shared(src) -> a source for the variants' replays.  src: an open
-- retape.source (borrowed; the caller closes it).
function M.shared(src)
  return setmetatable({ src = src, bucket = nil, rows = nil, lists = {}, reads = 0, loaded = {} }, Shared)
end

local function scope_key(scope)
  scope = scope or {}
  return json.encode { scope.from or false, scope.to or false, scope.script_version or false, scope.tickers or false }
end

-- The buckets of a scope (cached: every variant asks for the same ones).
function Shared:buckets(scope)
  local key = scope_key(scope)
  local list = self.lists[key]
  if not list then
    local err
    list, err = self.src:buckets(scope)
    if not list then return nil, err end
    self.lists[key] = list
  end
  return list
end

-- The shared pass holds one read snapshot for all variants (see run()).
function Shared:snapshot() return true end

-- A cursor over the cached rows of `bucket`; its first fetch waits (yields
-- to the scheduler) until the bucket is loaded.
function Shared:cursor(bucket, scope)
  return setmetatable({ shared = self, bucket = bucket, key = scope_key(scope), scope = scope, pos = 0 }, Cursor)
end

-- cur:fetch(n [, decode]) -> up to n rows: the shared row fields with the
-- variant's own copy of the decoded payload.
function Cursor:fetch(n, decode)
  local sh = self.shared
  while sh.bucket ~= self.bucket or sh.key ~= self.key do
    coroutine.yield(self)
  end
  local rows, out = sh.rows, {}
  local last = math.min(#rows, self.pos + n)
  local fields, writes = sh.fields, sh.writes
  for i = self.pos + 1, last do
    local r = rows[i]
    local c = {}
    for k, v in next, r do c[k] = v end
    if decode ~= false and type(r.payload) == "table" then
      if fields then c.payload = partial_copy(fields, r.payload, writes)
      else c.payload = writes and shared_copy(r.payload, writes) or deep_copy(r.payload) end
    elseif decode == false then c.payload = nil end
    out[#out + 1] = c
  end
  self.pos = last
  return out
end
function Cursor:close() self.pos = math.huge end
Cursor.__close = Cursor.close

-- Reads and decodes one bucket for every variant waiting on it.
function Shared:load(bucket, scope, key)
  local cur <close> = assert(self.src:cursor(bucket, scope))
  local rows = {}
  repeat
    local batch = cur:fetch(1024, self.fields or true)
    for i = 1, #batch do rows[#rows + 1] = batch[i] end
  until #batch == 0
  self.bucket, self.key, self.rows = bucket, key, rows
  self.reads = self.reads + #rows
  self.loaded[#self.loaded + 1] = bucket
  return #rows
end

---------------------------------------------------------------------------
-- one pass

-- Memtable of each variant's store (MB): RocksDB's default, 64 MB, times
-- 64 variants would hold gigabytes of results in memory.
M.WRITE_BUFFER_MB = 8
-- ... and of a store that holds trades only (a few MB a day): 1 MB.
M.TRADES_ONLY_BUFFER_MB = 1

-- M.pass(opts, Rs, variants, idx, dir, progress, want_trades) -> group | nil, failure, at, index
-- One group's pass: the variants idx (a list of indices into Rs/variants,
-- in order) over one shared source of their own, in this Lua state.  Each
-- variant's store is DIR/vNN (NN = its index).  group: { list = { {index,
-- overrides, label, state, resp, metrics, trades?, rows_sum}, ... },
-- reads, loaded = {bucket, ...} }.  A failure comes with where it happened:
-- `at` the bucket being run (-1 before the first) and the variant's index,
-- so that of several groups the one a single pass would have met first is
-- reported.  Everything it opened is closed.
local pass_body
function M.pass(opts, Rs, variants, idx, dir, progress, want_trades)
  -- many variants' garbage: collected at the Lua default of 200 % heap
  -- growth instead of the host's 130 % (16 variants: 12 % less CPU for
  -- 2 MB more per variant); the host's pause is restored afterwards
  local pause = collectgarbage("setpause", M.GC_PAUSE)
  local r = table.pack(pcall(pass_body, opts, Rs, variants, idx, dir, progress, want_trades))
  collectgarbage("setpause", pause)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end
M.GC_PAUSE = 200

function pass_body(opts, Rs, variants, idx, dir, progress, want_trades)
  local replay = require "retape.replay"
  local src, err = source.open(opts.db)
  if not src then return nil, err, -1, 0 end
  local shared = M.shared(src)
  local list, threads = {}, {}
  local deep, writes_set = false, {}
  local function cleanup()
    -- variants left waiting (another one failed): close their pending cursors
    for _, co in ipairs(threads) do
      if coroutine.status(co) == "suspended" then coroutine.close(co) end
    end
    for _, v in ipairs(list) do
      if v.rp then v.rp:close(); v.rp = nil end
      if v.store then v.store:close(); v.store = nil end
      if v.kv then v.kv:close(); v.kv = nil end
    end
    src:close()
  end
  for n, i in ipairs(idx) do
    local R = Rs[i]
    local state = string.format("%s/v%02d", dir, i)
    -- many stores at once: smaller memtables bound the memory per variant
    local handle, kerr = kv.open(state, { write_buffer_mb = opts.write_buffer_mb
      or (opts.trades_only and M.TRADES_ONLY_BUFFER_MB or M.WRITE_BUFFER_MB) })
    if not handle then cleanup(); return nil, string.format("variant %d: %s", i, kerr), -1, i end
    local st, serr = store.open(handle)
    if not st then handle:close(); cleanup(); return nil, string.format("variant %d: %s", i, serr), -1, i end
    st.path = state
    list[n] = { index = i, kv = handle, store = st }
    local rp, oerr = replay.open { db = shared, state = st, rules = R, batch = opts.batch,
                                   script_version = opts.script_version, trades_only = opts.trades_only }
    if not rp then cleanup(); return nil, string.format("variant %d: %s", i, oerr), -1, i end
    rp.db_path = opts.db -- what a standalone replay records: refresh and explain find the receipts
    local w = opts.copy ~= "deep" and M.payload_writes(R)
    if not w then deep = true else for _, k in ipairs(w) do writes_set[k] = true end end
    local v = list[n]
    v.overrides, v.label, v.state, v.rp = variants[i], M.label(variants[i]), state, rp
    local params = { date = opts.date, from = opts.from, to = opts.to, ticker = opts.ticker,
                     clean_slate = opts.clean_slate }
    threads[n] = coroutine.create(function() return rp:run(params) end)
  end
  if not deep then
    shared.writes = {}
    for k in pairs(writes_set) do shared.writes[#shared.writes + 1] = k end
    table.sort(shared.writes)
    -- one selective decode for all when every variant reads the same fields
    local spec
    for _, v in ipairs(list) do
      local rp = v.rp
      local ok, mine = pcall(json.encode, { rp.R.fields, rp.schema.names, rp.schema.view })
      if not (ok and rp.fields) then mine = "" end
      if spec == nil then spec = mine elseif spec ~= mine then spec = "" end
    end
    if spec ~= "" then shared.fields = list[1].rp.fields end
  end
  -- the scheduler: run every variant until it waits for a bucket; load the
  -- earliest bucket asked for; resume the variants waiting on it
  assert(src:snapshot(true))
  local waiting, runnable = {}, {}
  for n = 1, #list do runnable[n] = true end
  local failure, fail_at, fail_index
  local total_buckets
  local index = 0
  while not failure do
    for n = 1, #list do
      if runnable[n] then
        runnable[n] = nil
        local co = threads[n]
        local rok, a = coroutine.resume(co)
        if not rok then
          -- a bad scope (day, ticker) is the same for every variant: shown as is
          failure = replay.is_param_error(a) and a or string.format("variant %d (%s): %s", list[n].index, list[n].label, tostring(a))
          fail_at, fail_index = shared.bucket or -1, list[n].index
          break
        elseif coroutine.status(co) == "dead" then
          list[n].resp = a
        else
          waiting[n] = a
        end
      end
    end
    if failure then break end
    local want
    for _, c in pairs(waiting) do
      if not want or c.bucket < want.bucket then want = c end
    end
    if not want then break end
    local lok, lerr = pcall(shared.load, shared, want.bucket, want.scope, want.key)
    if not lok then failure, fail_at, fail_index = tostring(lerr), want.bucket, 0; break end
    index = index + 1
    for n, c in pairs(waiting) do
      if c.bucket == want.bucket and c.key == want.key then waiting[n] = nil; runnable[n] = true end
    end
    if progress then
      if not total_buckets then -- the buckets of the scope, as the replays walk them
        local scopem = require "retape.scope"
        local sok, sc = pcall(scopem.resolve, { date = opts.date, from = opts.from, to = opts.to, ticker = opts.ticker },
          shared, list[1].rp.script_version)
        local wok, work = false, nil
        if sok then wok, work = pcall(scopem.work, sc, shared) end
        total_buckets = wok and #work or 0
      end
      progress { bucket = want.bucket, index = index, total = math.max(total_buckets, index),
                 rows = shared.reads, variants = #list }
    end
  end
  shared.rows = nil
  src:snapshot(false)
  if failure then cleanup(); return nil, failure, fail_at, fail_index end
  -- the figures of every variant, from its store
  local results = require "retape.results"
  for _, v in ipairs(list) do
    local trades = results.trades(v.rp.store)
    v.capital = stats.capital_of(v.rp.R)
    v.metrics = M.figures(trades, shared.loaded, v.capital, v.rp.R)
    if want_trades then v.trades = trades end
    v.rows_sum = v.rp.rows_sum
    v.rp:close(); v.rp = nil
    v.store:close(); v.store = nil
    v.kv:close(); v.kv = nil
  end
  cleanup()
  return { list = list, reads = shared.reads, loaded = shared.loaded }
end

-- The threads a sweep of these rulesets uses: opts.threads (nil: every
-- core), at most one per variant; 1 when a ruleset cannot be loaded again
-- in another Lua state (built or changed in Lua) -- with why.
function M.threads_for(opts, Rs)
  local n = opts.threads
  if n == nil then n = require("retape.pool").cores() end
  n = math.min(math.max(math.tointeger(n) or 1, 1), #Rs)
  if n <= 1 then return 1 end
  local spec = rules.reloadable(Rs[1])
  for _, R in ipairs(Rs) do
    if not rules.reloadable(R) or rules.reloadable(R) ~= spec then
      return 1, "the ruleset was built or changed in Lua (nothing to load it again from)"
    end
  end
  return n
end

-- What a variant's ruleset must be in a worker to be this one: its name,
-- sources and effective config, and the overrides recorded in manifests.
function M.ruleset_identity(R)
  return json.encode { R.name or false, R.sources or json.object(), R.config or json.object(),
                       R.overrides or json.object() }
end

-- Carries json.null (in a replay's response) over retape.wire and back.
local NULL_MARK = "\0null"
function M.to_wire(v)
  if v == json.null then return NULL_MARK end
  if type(v) ~= "table" then return v end
  local o = {}
  for k, x in pairs(v) do o[k] = M.to_wire(x) end
  return o
end
function M.from_wire(v)
  if v == NULL_MARK then return json.null end
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do v[k] = M.from_wire(x) end
  return v
end

-- The fields of opts a group's pass uses, for the workers.
local PASS_FIELDS = { "db", "date", "from", "to", "ticker", "clean_slate", "batch", "script_version", "copy",
                      "write_buffer_mb", "trades_only" }

-- Runs the variants over G groups: group 0 here, the others in worker
-- threads (retape.pool, retape.sweep_part), each with its own source (its
-- own read snapshot) and its own Lua state.  -> groups (index 0..G-1) |
-- nil, failure.
local function run_groups(opts, Rs, variants, G, dir, progress)
  local pool = require "retape.pool"
  local wire = require "retape.wire"
  local groups = {}
  for g = 0, G - 1 do groups[g] = {} end
  for i = 1, #Rs do local g = (i - 1) % G; groups[g][#groups[g] + 1] = i end
  local config = { spec = rules.reloadable(Rs[1]), base = opts.base, dir = dir, opts = {}, groups = {} }
  for _, k in ipairs(PASS_FIELDS) do config.opts[k] = opts[k] end
  for g = 1, G - 1 do
    local list = {}
    for n, i in ipairs(groups[g]) do
      list[n] = { index = i, overrides = variants[i], identity = M.ruleset_identity(Rs[i]) }
    end
    config.groups[g] = list
  end
  local p, perr = pool.start { parts = G, module = "retape.sweep_part", config = wire.encode(config) }
  if not p then return nil, "sweep: threads: " .. tostring(perr) end
  p:post("run")
  local out = {}
  local mine, f0, at0, i0 = M.pass(opts, Rs, variants, groups[0], dir, progress, opts.trades)
  local replies, _, errors = p:collect()
  p:close()
  -- the failure a single pass would have met first: the earliest bucket,
  -- then the lowest variant
  local failure, fat, fidx
  local function consider(f, at, index)
    if f == nil then return end
    if not failure or at < fat or (at == fat and index < fidx) then failure, fat, fidx = f, at, index end
  end
  if mine then out[0] = mine else consider(f0, at0, i0) end
  local scopem = require "retape.scope"
  for g = 1, G - 1 do
    if errors[g] then
      consider(string.format("sweep: thread %d (variants %s): %s", g + 1, table.concat(groups[g], ","), errors[g]),
        math.huge, groups[g][1])
    else
      local r = wire.decode(replies[g])
      if r.group then
        out[g] = M.from_wire(r.group)
        for _, v in ipairs(out[g].list) do v.overrides = variants[v.index] end
      elseif r.param then
        consider(select(2, pcall(scopem.param_error, "%s", r.param)), r.at, r.index)
      else
        consider(r.failure, r.at, r.index)
      end
    end
  end
  if failure then return nil, failure end
  -- one snapshot of the receipts for all: every group read the same rows
  local function seen(gr)
    local v = gr.list[1]
    return wire.encode { gr.reads, gr.loaded, v.rows_sum or 0, v.resp and v.resp.rowsProcessed or 0 }
  end
  local want = seen(out[0])
  for g = 1, G - 1 do
    if seen(out[g]) ~= want then
      return nil, "the receipts changed while the sweep ran (its threads read different receipts); run it again"
    end
  end
  return out
end

-- run(opts) -> result | nil, message.  opts:
--   db         receipts SQLite file
--   date | from, to, ticker   the scope (as retape.replay's run)
--   rules      ruleset name or .lua path (each variant loads its own copy)
--   base       {["a.b"] = v} overrides for every variant (--set)
--   variants   list of override tables (the grid)
--   dir        where the variants' stores go (DIR/v01 ...); default a temp
--              directory removed afterwards, its stores holding the
--              trades only (the figures need nothing else)
--   script_version, clean_slate, batch   as retape.replay
--   write_buffer_mb  memtable of each variant's store (default M.WRITE_BUFFER_MB)
--   threads    how many threads (nil: every core; never more than the
--              variants).  With G > 1 the variants are dealt round-robin
--              (variant i to group (i-1) % G); group 0 runs here, the others
--              each in a worker thread with its own Lua state (the ruleset
--              loaded again from its name or file, with the same overrides)
--              and its own read of the receipts (decoded once per group).
--              The results are the same for any number; a ruleset changed
--              in Lua runs on one thread.
--   on_progress function{bucket, index, total, rows, variants, group, groups}
--              (group 0's pass: `variants` it runs, of `all`)
--   trades     true: keep each variant's trades (v.trades), for the equity chart
-- result: { variants = { {index, overrides, label, state, resp, metrics, capital}, ... },
--           rows, buckets (how many), loaded (their starts, ms), ms, threads }
-- Variants that fail stop the pass: the error names the variant.  If the
-- groups read different receipts (written to while the sweep ran), it fails.
function M.run(opts)
  local variants = opts.variants or { {} }
  local ok, Rs = pcall(M.rulesets, opts.rules, opts.base, variants)
  if not ok then return nil, Rs end
  local tmp, err
  local dir = opts.dir
  if not dir then
    tmp, err = fs.tempdir("retape-sweep")
    if not tmp then return nil, err end
    dir = tmp
  end
  local started = core.monotonic_ms()
  -- stores nobody keeps are read only for their trades: no versions written
  -- (the trades are the same; what a kept store holds is a full replay's)
  local given = opts
  opts = {}
  for k, v in pairs(given) do opts[k] = v end
  opts.trades_only = tmp ~= nil
  local G = M.threads_for(opts, Rs)
  local progress
  if opts.on_progress then
    progress = function(p)
      p.group, p.groups, p.all = 1, G, #Rs
      return opts.on_progress(p)
    end
  end
  local all = {}
  for i = 1, #Rs do all[i] = i end
  local groups, failure
  if G > 1 then
    groups, failure = run_groups(opts, Rs, variants, G, dir, progress)
  else
    local g0, f = M.pass(opts, Rs, variants, all, dir, progress, opts.trades)
    groups, failure = g0 and { [0] = g0 }, f
  end
  if not groups then
    if tmp then fs.remove_tree(tmp) end
    return nil, failure
  end
  local list = {}
  for g = 0, G - 1 do
    for _, v in ipairs(groups[g].list) do list[v.index] = v end
  end
  if opts.trades and G > 1 then -- the other groups' trades, from their stores
    local results = require "retape.results"
    for _, v in ipairs(list) do
      if not v.trades then
        local st, serr = store.open(v.state, true)
        if not st then if tmp then fs.remove_tree(tmp) end; return nil, string.format("variant %d: %s", v.index, serr) end
        v.trades = results.trades(st)
        st:close()
      end
    end
  end
  for _, v in ipairs(list) do v.rows_sum = nil end
  local g0 = groups[0]
  local res = { variants = list, rows = g0.reads, buckets = #g0.loaded, loaded = g0.loaded, ms = core.monotonic_ms() - started,
                kept = tmp == nil and dir or nil, threads = G }
  if tmp then
    fs.remove_tree(tmp)
    for _, v in ipairs(list) do v.state = nil end
  end
  return res
end

---------------------------------------------------------------------------
-- a directory of kept stores

-- The file that says a directory of kept stores is incomplete, and of which sweep.
M.INCOMPLETE = "SWEEP-INCOMPLETE"

-- claim_dir(dir, description) -> "new" | "again" | nil, message.  Takes a
-- directory for the stores of the sweep `description` (a table of what
-- decides its results): a new or empty one, or one where the same sweep
-- was killed (its INCOMPLETE file holds the same description), whose
-- partial stores are removed to be written again.  The INCOMPLETE file
-- stays until release_dir: a kept store is only ever read as complete.
function M.claim_dir(dir, description)
  local text = json.encode(description) .. "\n"
  local kind = fs.kind(dir)
  if kind and kind ~= "dir" then return nil, dir .. " exists and is not a directory" end
  local how = "new"
  local names = kind and fs.list(dir) or {}
  if #names > 0 then
    local fh = io.open(dir .. "/" .. M.INCOMPLETE)
    local held = fh and fh:read("a")
    if fh then fh:close() end
    if not held then return nil, dir .. " is not empty (--keep needs a new or empty directory)" end
    if held ~= text then
      return nil, string.format("%s holds the stores of another sweep, interrupted (%s); give another directory, "
        .. "or run that sweep again to finish it", dir, (held:gsub("\n$", "")))
    end
    for _, name in ipairs(names) do
      if name ~= M.INCOMPLETE then
        local ok, err = fs.remove_tree(dir .. "/" .. name)
        if not ok then return nil, err end
      end
    end
    how = "again"
  end
  local ok, err = fs.mkdirs(dir)
  if not ok then return nil, err end
  local fh, ferr = io.open(dir .. "/" .. M.INCOMPLETE, "w")
  if not fh then return nil, ferr end
  fh:write(text)
  fh:close()
  return how
end

-- The sweep's stores in dir are complete.
function M.release_dir(dir) os.remove(dir .. "/" .. M.INCOMPLETE) end

-- figures(trades, buckets [, capital, R]) -> the table's columns for one
-- variant: retape.stats over its trades with its capital model and its
-- ruleset's "open" (the same numbers as diff and the report).
function M.figures(trades, buckets, capital, R)
  local s = stats.compute(trades, { buckets = buckets, capital = capital, rules = R })
  return { trades = s.trades, wins = s.wins, losses = s.losses, open = s.open, closed = s.closed,
           win_rate = s.win_rate, realized = s.realized, unrealized = s.unrealized, total = s.net_pnl,
           return_pct = s.return_pct, max_drawdown = s.max_drawdown, max_drawdown_pct = s.max_drawdown_pct,
           sharpe = s.sharpe, sortino = s.sortino, calmar = s.calmar, expectancy = s.expectancy,
           profit_factor = s.profit_factor, exposure = s.exposure, fees = s.fees }
end

---------------------------------------------------------------------------
-- ranking

-- The figures a variant is ranked by, with the header the table shows.
M.COLUMNS = { "trades", "win_rate", "realized", "unrealized", "total", "return_pct", "max_drawdown", "sharpe",
              "sortino", "calmar", "expectancy", "profit_factor", "exposure" }
-- Columns where smaller is better (ranked ascending unless :desc is given).
M.ASCENDING = { max_drawdown = true, variant = true }
-- The names a person may use: the table's headers and short words.
M.ALIASES = { var = "variant", ["win%"] = "win_rate", max_dd = "max_drawdown", dd = "max_drawdown", pf = "profit_factor",
              ["return%"] = "return_pct", ["return"] = "return_pct", pnl = "total", expect = "expectancy",
              winrate = "win_rate", drawdown = "max_drawdown" }

-- column(spec, what) -> column, ascending: "COLUMN[:asc|:desc]" resolved
-- (aliases included); raises "WHAT 'x': one of ..." when unknown.
function M.column(spec, what)
  local name, dir = tostring(spec or "total"):match("^([%w_%%]+):?(%a*)$")
  local col = name and (M.ALIASES[name] or name)
  local known = { variant = true }
  for _, c in ipairs(M.COLUMNS) do known[c] = true end
  if not col or not known[col] or (dir ~= "" and dir ~= "asc" and dir ~= "desc") then
    error(string.format("%s '%s': one of variant, %s (or a header: var, win%%, max_dd, pf, return%%; pnl = total), "
      .. "optionally :asc or :desc", what or "--sort", tostring(spec), table.concat(M.COLUMNS, ", ")), 0)
  end
  return col, dir == "asc" or (dir == "" and M.ASCENDING[col] == true)
end

-- rank(variants, spec) sorts in place by "COLUMN[:asc|:desc]" (default
-- total, larger first; max_drawdown smaller first); ties by variant number.
-- A missing profit factor (no losing trade) ranks above any number; any
-- other missing figure (a Sharpe without two days) ranks last.
function M.rank(list, spec, what)
  local col, asc = M.column(spec, what)
  local function value(v)
    if col == "variant" then return v.index end
    local x = v.metrics[col]
    if x == nil then
      if col == "profit_factor" then return asc and -math.huge or math.huge end
      return asc and math.huge or -math.huge
    end
    return x
  end
  table.sort(list, function(a, b)
    local x, y = value(a), value(b)
    if x ~= y then if asc then return x < y end return x > y end
    return a.index < b.index
  end)
  for i, v in ipairs(list) do v.rank = i end
  return list, col
end

-- is_baseline(R0, overrides) -> true when a variant's overrides change
-- nothing in R0's config (the current settings).
function M.is_baseline(R0, o)
  local paths = rules.config_paths(R0.config or {})
  for k, v in pairs(flat_overrides(R0, o)) do
    if paths[k] ~= v then return false end
  end
  return true
end

---------------------------------------------------------------------------
-- walk-forward

-- fold_windows(days, K, anchored) -> { {train = {first, last}, test = {first, last}}, ... }:
-- the days cut into K + 1 consecutive blocks (the first ones a day longer
-- when they do not divide evenly); fold i trains on block i (rolling) or
-- blocks 1..i (anchored) and tests on block i + 1.  Raises when there are
-- fewer days than blocks.
function M.fold_windows(days, K, anchored)
  local n = #days
  if K < 1 then error("--folds must be at least 1", 0) end
  if n < K + 1 then
    error(string.format("--folds %d needs at least %d days with receipts in the range, it has %d", K, K + 1, n), 0)
  end
  local blocks, at = {}, 1
  for b = 1, K + 1 do
    local size = n // (K + 1) + (b <= n % (K + 1) and 1 or 0)
    blocks[b] = { first = at, last = at + size - 1 }
    at = at + size
  end
  local out = {}
  for i = 1, K do
    local tr = blocks[i]
    local first = anchored and 1 or tr.first
    out[i] = { train = { days[first], days[tr.last] }, test = { days[blocks[i + 1].first], days[blocks[i + 1].last] } }
  end
  return out
end

-- days_with_receipts(db, from, to, script_version) -> sorted New York days.
function M.days_with_receipts(db, from, to, script_version)
  local src, err = source.open(db)
  if not src then return nil, err end
  local ok, list = pcall(function() return assert(src:buckets { script_version = script_version or nil }) end)
  src:close()
  if not ok then return nil, list end
  local starts = {}
  for i, b in ipairs(list) do starts[i] = type(b) == "table" and b.bucket or b end
  local out = {}
  for _, d in ipairs(stats.days_of(starts)) do
    if d >= from and d <= to then out[#out + 1] = d end
  end
  return out
end

-- walk_forward(opts) -> result | nil, message.  opts: those of run() (db,
-- rules, base, variants, threads, ...) plus from, to, folds (K), anchored,
-- objective ("COLUMN[:asc|:desc]"), keep (a directory: each fold's stores
-- under KEEP/foldN/train and /test).  Each fold replays its training days
-- and its test days from a fresh state, every variant; the variant best on
-- the training days by the objective is the fold's choice, and its figures
-- on the test days are the out-of-sample result.  result: { folds = { {
-- train, test, chosen (variant), train_value, test (its figures), test_rank,
-- trades (its test trades) }, ... }, oos (retape.stats over every fold's
-- chosen test trades), baseline_oos (the same for the baseline variant, when
-- opts.baseline names one), objective }.
function M.walk_forward(opts)
  local days, err = M.days_with_receipts(opts.db, opts.from, opts.to, opts.script_version)
  if not days then return nil, err end
  local ok, windows = pcall(M.fold_windows, days, opts.folds, opts.anchored)
  if not ok then return nil, windows end
  local col = M.column(opts.objective, "--objective")
  local folds, chosen_trades, base_trades = {}, {}, {}
  local capital
  for i, w in ipairs(windows) do
    local run_opts = {}
    for k, v in pairs(opts) do run_opts[k] = v end
    run_opts.date, run_opts.from, run_opts.to = nil, w.train[1], w.train[2]
    if opts.keep then -- KEEP/foldN/train and KEEP/foldN/test
      run_opts.dir = string.format("%s/fold%d/train", opts.keep, i)
      assert(fs.mkdirs(run_opts.dir))
    end
    run_opts.trades, run_opts.on_progress = nil, opts.on_progress and function(p) p.fold, p.phase = i, "train"; return opts.on_progress(p) end
    local train, terr = M.run(run_opts)
    if not train then return nil, terr end
    M.rank(train.variants, opts.objective, "--objective")
    local best = train.variants[1]
    run_opts.from, run_opts.to, run_opts.trades = w.test[1], w.test[2], true
    if opts.keep then
      run_opts.dir = string.format("%s/fold%d/test", opts.keep, i)
      assert(fs.mkdirs(run_opts.dir))
    end
    run_opts.on_progress = opts.on_progress and function(p) p.fold, p.phase = i, "test"; return opts.on_progress(p) end
    local test, serr = M.run(run_opts)
    if not test then return nil, serr end
    M.rank(test.variants, opts.objective, "--objective")
    local tv, bv
    for _, v in ipairs(test.variants) do
      if v.index == best.index then tv = v end
      if v.index == opts.baseline then bv = v end
    end
    capital = capital or tv.capital
    for _, t in ipairs(tv.trades) do chosen_trades[#chosen_trades + 1] = t end
    if bv then for _, t in ipairs(bv.trades) do base_trades[#base_trades + 1] = t end end
    folds[i] = { fold = i, train = w.train, test_window = w.test, chosen = best.index, label = best.label,
                 train_value = col == "variant" and best.index or best.metrics[col], test = tv.metrics, test_rank = tv.rank,
                 baseline_test = bv and bv.metrics or nil, variants = #test.variants }
  end
  -- every fold's test days, one after the other: the days the totals cover
  local oos_days = {}
  for _, f in ipairs(folds) do
    for _, d in ipairs(days) do if d >= f.test_window[1] and d <= f.test_window[2] then oos_days[#oos_days + 1] = d end end
  end
  local res = { folds = folds, objective = col, days = days, anchored = opts.anchored and true or false,
                oos = stats.compute(chosen_trades, { capital = capital, days = oos_days }) }
  if opts.baseline then res.baseline_oos = stats.compute(base_trades, { capital = capital, days = oos_days }) end
  return res
end

return M
