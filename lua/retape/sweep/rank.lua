-- retape.sweep.rank — a variant's figures (retape.stats) and the table's
-- order: columns, their aliases, ranking, the baseline variant.
local rules = require "retape.rules"
local stats = require "retape.stats"
local grid = require "retape.sweep.grid"

local M = {}

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
  for k, v in pairs(grid.flat_overrides(R0, o)) do
    if paths[k] ~= v then return false end
  end
  return true
end

return M
