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
--
-- The rooms (each its own module under retape.sweep.*): grid (the
-- variants), shared (the one read of the receipts), pass (one group's
-- pass), part (a group in a worker thread), rank (figures and order), keep
-- (kept stores), oos (walk-forward), report (the HTML page).  This module
-- runs a sweep (run) and lends every room's functions under its own name.
local rules = require "retape.rules"
local core = require "retape.core"
local fs = require "retape.fs"
local store = require "retape.store"
local grid = require "retape.sweep.grid"
local pass = require "retape.sweep.pass"
local part = require "retape.sweep.part"

local M = {}
for _, room in ipairs { grid, require "retape.sweep.shared", pass, require "retape.sweep.keep",
                        require "retape.sweep.rank", (require "retape.sweep.oos") } do
  for name, value in pairs(room) do M[name] = value end
end
M.ruleset_identity, M.to_wire, M.from_wire = part.ruleset_identity, part.to_wire, part.from_wire

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

-- The fields of opts a group's pass uses, for the workers.
local PASS_FIELDS = { "db", "date", "from", "to", "ticker", "clean_slate", "batch", "script_version", "copy",
                      "write_buffer_mb", "trades_only" }

-- Runs the variants over G groups: group 0 here, the others in worker
-- threads (retape.pool, retape.sweep.part), each with its own source (its
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
      list[n] = { index = i, overrides = variants[i], identity = part.ruleset_identity(Rs[i]) }
    end
    config.groups[g] = list
  end
  local p, perr = pool.start { parts = G, module = "retape.sweep.part", config = wire.encode(config) }
  if not p then return nil, "sweep: threads: " .. tostring(perr) end
  p:post("run")
  local out = {}
  local mine, f0, at0, i0 = pass.pass(opts, Rs, variants, groups[0], dir, progress, opts.trades)
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
        out[g] = part.from_wire(r.group)
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
--   write_buffer_mb  memtable of each variant's store (default retape.sweep.pass.WRITE_BUFFER_MB)
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
  local ok, Rs = pcall(grid.rulesets, opts.rules, opts.base, variants)
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
    local g0, f = pass.pass(opts, Rs, variants, all, dir, progress, opts.trades)
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

return M
