-- The engine API for scripts: `local retape = require "retape"`.
-- Each field is one subsystem; SCRIPTING.md documents every function.
local core = require "retape.core"

local retape = {
  version = core.version,
  core    = core,                      -- process facts (clocks for display, isatty, peak RSS)
  source  = require "retape.source",   -- receipts in SQLite (read-only, streaming)
  kv      = require "retape.kv",       -- RocksDB state store
  time    = require "retape.time",     -- New York wall time, sessions, buckets
  ingest  = require "retape.ingest",   -- writing receipts, readers for import
  sql     = require "retape.sql",      -- read-write SQLite (ledger, scripts)
  decode  = require "retape.decode",   -- selective payload decoding (field sets)
  json    = require "retape.json",     -- deterministic encode (sorted keys), decode by lua-cjson
  cjson   = require "cjson",           -- lua-cjson itself (raises on bad input)
  cjson_safe = require "cjson.safe",   -- lua-cjson returning nil, message
}

-- Lua-level modules are loaded on first use, so a script that only reads
-- receipts does not pay for the replay machinery.  These are the API
-- (SCRIPTING.md, "The API"); the engine's other modules (retape.scope,
-- retape.sandbox, retape.pool, retape.wire, retape.part, retape.cli.*,
-- retape.sweep.*, ...) are internals: require them by name, knowing they
-- may change.
local lazy = {
  import   = "retape.import",    -- receipts into SQLite (JSON lines, dumps, webhooks)
  replay   = "retape.replay",    -- the re-run
  live     = "retape.live",      -- receipts replayed as they arrive
  rules    = "retape.rules",     -- rulesets: load, overrides, docs
  state    = "retape.state",     -- the declared state a rule keeps
  store    = "retape.store",     -- a state store, read
  results  = "retape.results",   -- lanes and trades of a store
  manifest = "retape.manifest",  -- what a store was made of (status, runs)
  explain  = "retape.explain",   -- why a ticker is in its lane
  views    = "retape.views",     -- Trade By Day, By P&L, History
  metrics  = "retape.metrics",   -- one definition for every view
  stats    = "retape.stats",     -- the figures of a set of trades
  ledger   = "retape.ledger",    -- the app's SQLite ledger
  diff     = "retape.diff",      -- two replays compared
  sweep    = "retape.sweep",     -- many variants in one pass
  regress  = "retape.regress",   -- regression cases
  levels   = "retape.levels",    -- synthetic price levels
  fs       = "retape.fs",        -- files and directories
}
return setmetatable(retape, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})
