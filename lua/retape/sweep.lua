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
-- byte).  One process, one Lua state: the variants share one core.
local source = require "retape.source"
local rules = require "retape.rules"
local json = require "retape.json"
local core = require "retape.core"
local fs = require "retape.fs"
local metrics = require "retape.metrics"
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
function M.parse_grid(text)
  local key, rhs = tostring(text):match("^%s*([%w_.]+)%s*=%s*(.-)%s*$")
  if not key or rhs == "" then
    error(string.format("--grid '%s': expected KEY=V1,V2,... or KEY=LO..HI:STEP", tostring(text)), 0)
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

-- grid(specs) -> { {["a.b"] = v, ...}, ... }: the cartesian product of the
-- specs (strings for parse_grid, or {key, {values}}), the first spec
-- varying slowest.  A key given twice is an error.
function M.grid(specs)
  local axes, seen = {}, {}
  for _, s in ipairs(specs) do
    local key, values
    if type(s) == "table" then key, values = s[1], s[2] else key, values = M.parse_grid(s) end
    if seen[key] then error(string.format("--grid: '%s' is given twice", key), 0) end
    seen[key] = true
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
local function flat_overrides(R, o)
  local paths = rules.config_paths(R.config or {})
  local flat = {}
  local function walk(t, prefix)
    for k, v in pairs(t) do
      local key = prefix .. tostring(k)
      if type(v) == "table" and v[1] == nil and next(v) ~= nil and paths[key] == nil then walk(v, key .. ".")
      else flat[key] = v end
    end
  end
  walk(o, "")
  return flat
end

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
  for i = self.pos + 1, last do
    local r = rows[i]
    local c = {}
    for k, v in next, r do c[k] = v end
    if decode ~= false and type(r.payload) == "table" then
      c.payload = sh.writes and shared_copy(r.payload, sh.writes) or deep_copy(r.payload)
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
    local batch = cur:fetch(1024)
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

-- run(opts) -> result | nil, message.  opts:
--   db         receipts SQLite file
--   date | from, to, ticker   the scope (as retape.replay's run)
--   rules      ruleset name or .lua path (each variant loads its own copy)
--   base       {["a.b"] = v} overrides for every variant (--set)
--   variants   list of override tables (the grid)
--   dir        where the variants' stores go (DIR/v01 ...); default a temp
--              directory removed afterwards
--   script_version, clean_slate, batch   as retape.replay
--   write_buffer_mb  memtable of each variant's store (default M.WRITE_BUFFER_MB)
--   on_progress function{bucket, index, total, rows, variants}
--   trades     true: keep each variant's trades (v.trades), for the equity chart
-- result: { variants = { {index, overrides, label, state, resp, metrics}, ... },
--           rows, buckets, reads, ms }
-- Variants that fail stop the pass: the error names the variant.
function M.run(opts)
  local replay = require "retape.replay"
  local variants = opts.variants or { {} }
  local ok, Rs = pcall(M.rulesets, opts.rules, opts.base, variants)
  if not ok then return nil, Rs end
  local src, err = source.open(opts.db)
  if not src then return nil, err end
  local tmp
  local dir = opts.dir
  if not dir then
    tmp, err = fs.tempdir("retape-sweep")
    if not tmp then src:close(); return nil, err end
    dir = tmp
  end
  local started = core.monotonic_ms()
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
    if tmp then fs.remove_tree(tmp) end
  end
  for i, R in ipairs(Rs) do
    local state = string.format("%s/v%02d", dir, i)
    -- many stores at once: smaller memtables bound the memory per variant
    local handle, kerr = kv.open(state, { write_buffer_mb = opts.write_buffer_mb or M.WRITE_BUFFER_MB })
    if not handle then cleanup(); return nil, string.format("variant %d: %s", i, kerr) end
    local st, serr = store.open(handle)
    if not st then handle:close(); cleanup(); return nil, string.format("variant %d: %s", i, serr) end
    st.path = state
    list[i] = { index = i, kv = handle, store = st }
    local rp, oerr = replay.open { db = shared, state = st, rules = R, batch = opts.batch,
                                   script_version = opts.script_version }
    if not rp then cleanup(); return nil, string.format("variant %d: %s", i, oerr) end
    rp.db_path = opts.db -- what a standalone replay records: refresh and explain find the receipts
    local w = opts.copy ~= "deep" and M.payload_writes(R)
    if not w then deep = true else for _, k in ipairs(w) do writes_set[k] = true end end
    local v = list[i]
    v.overrides, v.label, v.state, v.rp = variants[i], M.label(variants[i]), state, rp
    local params = { date = opts.date, from = opts.from, to = opts.to, ticker = opts.ticker,
                     clean_slate = opts.clean_slate }
    threads[i] = coroutine.create(function() return rp:run(params) end)
  end
  if not deep then
    shared.writes = {}
    for k in pairs(writes_set) do shared.writes[#shared.writes + 1] = k end
    table.sort(shared.writes)
  end
  -- the scheduler: run every variant until it waits for a bucket; load the
  -- earliest bucket asked for; resume the variants waiting on it
  assert(src:snapshot(true))
  local waiting, runnable = {}, {}
  for i = 1, #list do runnable[i] = true end
  local failure
  local total_buckets
  local index = 0
  while not failure do
    for i = 1, #list do
      if runnable[i] then
        runnable[i] = nil
        local co = threads[i]
        local rok, a = coroutine.resume(co)
        if not rok then
          -- a bad scope (day, ticker) is the same for every variant: shown as is
          failure = replay.is_param_error(a) and a or string.format("variant %d (%s): %s", i, list[i].label, tostring(a))
          break
        elseif coroutine.status(co) == "dead" then
          list[i].resp = a
        else
          waiting[i] = a
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
    if not lok then failure = tostring(lerr); break end
    index = index + 1
    for i, c in pairs(waiting) do
      if c.bucket == want.bucket and c.key == want.key then waiting[i] = nil; runnable[i] = true end
    end
    if opts.on_progress then
      if not total_buckets then -- the buckets of the scope, as the replays walk them
        local scopem = require "retape.scope"
        local sok, sc = pcall(scopem.resolve, { date = opts.date, from = opts.from, to = opts.to, ticker = opts.ticker },
          shared, list[1].rp.script_version)
        local wok, work = false, nil
        if sok then wok, work = pcall(scopem.work, sc, shared) end
        total_buckets = wok and #work or 0
      end
      opts.on_progress { bucket = want.bucket, index = index, total = math.max(total_buckets, index),
                         rows = shared.reads, variants = #list }
    end
  end
  shared.rows = nil
  src:snapshot(false)
  if failure then cleanup(); return nil, failure end
  -- the figures of every variant, from its store
  local results = require "retape.results"
  for _, v in ipairs(list) do
    local trades = results.trades(v.rp.store)
    v.metrics = M.figures(trades, shared.loaded)
    if opts.trades then v.trades = trades end
    v.rp:close(); v.rp = nil
    v.store:close(); v.store = nil
    v.kv:close(); v.kv = nil
  end
  local res = { variants = list, rows = shared.reads, buckets = #shared.loaded, ms = core.monotonic_ms() - started,
                kept = tmp == nil and dir or nil }
  cleanup()
  if tmp then for _, v in ipairs(list) do v.state = nil end end
  return res
end

-- figures(trades, buckets) -> the table's columns for one variant, with the
-- definitions of retape.metrics (the same numbers as diff and the report).
function M.figures(trades, buckets)
  local tot = metrics.totals(trades)
  local _, dd = metrics.equity(trades)
  return { trades = tot.trades, wins = tot.wins, losses = tot.losses, open = tot.open, closed = tot.closed,
           win_rate = tot.win_rate, realized = tot.realized, unrealized = tot.unrealized, total = tot.pnl,
           max_drawdown = dd, profit_factor = tot.profit_factor, exposure = metrics.exposure(trades, buckets) }
end

---------------------------------------------------------------------------
-- ranking

M.COLUMNS = { "trades", "win_rate", "realized", "unrealized", "total", "max_drawdown", "profit_factor", "exposure" }
-- Columns where smaller is better (ranked ascending unless :desc is given).
M.ASCENDING = { max_drawdown = true, variant = true }

-- rank(variants, spec) sorts in place by "COLUMN[:asc|:desc]" (default
-- total, larger first; max_drawdown smaller first); ties by variant number.
-- A missing profit factor (no losing trade) ranks above any number.
function M.rank(list, spec)
  local col, dir = tostring(spec or "total"):match("^([%w_]+):?(%a*)$")
  local known = { variant = true }
  for _, c in ipairs(M.COLUMNS) do known[c] = true end
  if not col or not known[col] or (dir ~= "" and dir ~= "asc" and dir ~= "desc") then
    error(string.format("--sort '%s': one of variant, %s (optionally :asc or :desc)", tostring(spec),
      table.concat(M.COLUMNS, ", ")), 0)
  end
  local asc = dir == "asc" or (dir == "" and M.ASCENDING[col])
  local function value(v)
    if col == "variant" then return v.index end
    local x = v.metrics[col]
    if x == nil then return math.huge end
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

return M
