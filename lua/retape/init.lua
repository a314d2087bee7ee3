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
-- receipts does not pay for the replay machinery.
local lazy = {
  import = "retape.import",
  replay = "retape.replay",
  rules  = "retape.rules",
  views  = "retape.views",
  store  = "retape.store",
  ledger = "retape.ledger",
  levels = "retape.levels",
  regress = "retape.regress",
  diff    = "retape.diff",
  sandbox = "retape.sandbox",
  results = "retape.results",
  manifest = "retape.manifest",
  explain = "retape.explain",
  state   = "retape.state",
  scope   = "retape.scope",
  fs      = "retape.fs",
  pool    = "retape.pool",     -- worker threads of a replay (SCRIPTING.md)
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
