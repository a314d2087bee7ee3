-- retape.cli.options — the option groups several commands share, each
-- defined once (name, argument, type, help): the receipts and the store,
-- the ruleset, the scope and the script-version filter.  A command builds
-- its list with options.list(group or spec, ...); a group's help may be
-- adjusted where a command means something of its own (a sweep's --set
-- applies to every variant).
local M = {}

-- --db and --state of a command that writes a store (db: its help).
function M.store(db_help)
  return {
    { name = "db", arg = "FILE", help = db_help or "receipts database (ingest_receipts)" },
    { name = "state", arg = "DIR", help = "state store directory (default: FILE.state)" },
  }
end

-- --state and --db of a command that reads a store.
function M.store_read(db_help)
  return {
    { name = "state", arg = "DIR", help = "state store of a replay" },
    { name = "db", arg = "FILE", help = db_help or "receipts database (for the default --state FILE.state)" },
  }
end

-- --rules, --set, --config.  o (optional): rules_help, rules_default,
-- set_help, config_help.
function M.ruleset(o)
  o = o or {}
  return {
    { name = "rules", arg = "NAME|FILE", default = o.rules_default,
      help = o.rules_help or "ruleset: bundled name or a .lua file (default: the store's, else default)" },
    { name = "set", arg = "KEY=VALUE", repeat_ = true,
      help = o.set_help or "override one setting of the ruleset's config" },
    { name = "config", arg = "FILE.lua", help = o.config_help or "a Lua file returning a table of config overrides" },
  }
end

-- --date, --from, --to, --ticker (checked by retape.validate).
function M.scope()
  return {
    { name = "date", arg = "YYYY-MM-DD", type = "date", help = "trading day" },
    { name = "from", arg = "YYYY-MM-DD", type = "date", help = "first day of a range (state carries over)" },
    { name = "to", arg = "YYYY-MM-DD", type = "date", help = "last day of a range" },
    { name = "ticker", arg = "T[,T...]", type = "tickers", help = "only these tickers" },
  }
end

-- --script-version, --all-versions.  default: the filter's default value
-- (nil: the store's, else scope.DEFAULT_SCRIPT_VERSION, resolved by the command).
function M.versions(default)
  return {
    { name = "script-version", arg = "V", default = default,
      help = default and "keep script_version = V or NULL"
        or ("keep script_version = V or NULL (default: the store's, else "
            .. require("retape.scope").DEFAULT_SCRIPT_VERSION .. ")") },
    { name = "all-versions", type = "flag", help = "no script_version filter" },
  }
end

-- list(...) -> one list of specs: each argument a group (a list of specs)
-- or a single spec (a table with a name).
function M.list(...)
  local out = {}
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if x.name then out[#out + 1] = x
    else for _, spec in ipairs(x) do out[#out + 1] = spec end end
  end
  return out
end

return M
