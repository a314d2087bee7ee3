-- Helpers shared by the CLI's command files: option lists, parsing a time
-- of day, loading a ruleset with overrides, opening a store, printing lanes.
local args = require "retape.args"
local rtime = require "retape.time"

local M = {}

function M.stderr(fmt, ...) io.stderr:write(string.format(fmt, ...)) end

-- "HH:MM" (New York, on `date`), "YYYY-MM-DD HH:MM" or milliseconds -> ms.
-- With step5, the time must be a 5-minute boundary (a bucket).
-- The check is retape.validate.instant, the server's too.
function M.parse_time(value, date, what, step5)
  local ms, why = require("retape.validate").instant(value, date, step5)
  if not ms then args.usage_error("%s: %s", what, why) end
  return ms
end

function M.group(n)
  local s = string.format("%d", math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^(-?),", "%1"))
end

function M.state_dir(o)
  if o.state then return o.state end
  if o.db then return o.db .. ".state" end
  args.usage_error("missing --state DIR")
end

-- --state / --db, shared by the commands that read a store
function M.with_store_options(list)
  table.insert(list, 1, { name = "db", arg = "FILE", help = "receipts database (for the default --state FILE.state)" })
  table.insert(list, 1, { name = "state", arg = "DIR", help = "state store of a replay" })
  return list
end

-- Opens the store of a read command; warns on stderr about stale results.
function M.open_store(o)
  local st, err = require("retape.store").open(M.state_dir(o), true)
  if not st then return nil, err end
  local stale = require("retape.results").stale(st)
  if #stale > 0 then
    local names = {}
    for i, s in ipairs(stale) do
      if i > 5 then names[#names + 1] = "..."; break end
      names[#names + 1] = string.format("%s from %s", s.ticker, rtime.format_ny(math.tointeger(s.from)))
    end
    M.stderr("retape: note: results of %d ticker(s) are stale (%s): they depend on an earlier state that a re-run "
      .. "changed; recompute them with 'retape replay --state %s --refresh'\n", #stale, table.concat(names, ", "), M.state_dir(o))
  end
  return st
end

-- Loads a ruleset and applies --config FILE then every --set KEY=VALUE;
-- any unknown key or wrong type is an error before anything runs.
function M.load_rules(spec, o)
  return require("retape.rules").load_configured(spec, o and o.config, o and o.set)
end

-- The ruleset that made a store (its last run's), with the recorded config.
function M.store_rules(st, fallback)
  local runs = require("retape.manifest").runs(st)
  local last = runs[#runs]
  if not last then
    local ok, R = pcall(require("retape.rules").load, fallback or "default")
    if not ok then return nil, R end
    return R
  end
  local ok, R = pcall(require("retape.explain").rules_of, last)
  if not ok then return nil, R end
  return R
end

function M.lane_lines(out, lanes, badge_of)
  for _, l in ipairs(lanes) do
    local names = {}
    for i, T in ipairs(l.tickers) do
      local b = badge_of and badge_of[T]
      names[i] = b == "defend" and (T .. " 🛡") or b and (T .. " [" .. b .. "]") or T
    end
    out("%-13s %3d  %s", l.title, #l.tickers, table.concat(names, " "))
  end
end

-- Progress bar on stderr: buckets done/total, rows/s, trades so far.
function M.progress_bar(started)
  local core = require "retape.core"
  local last = 0
  return function(p)
    local now = core.monotonic_ms()
    if p.index < p.total and now - last < 100 then return end
    last = now
    local width = 30
    local filled = math.floor(width * p.index / p.total)
    local secs = math.max((now - started) / 1000, 1e-3)
    M.stderr("\r%s[%s%s] %d/%d buckets  %s rows/s  %d trades%s", p.recomputing and "recomputing " or "",
      string.rep("#", filled), string.rep(".", width - filled),
      p.index, p.total, M.group(p.rows / secs), p.trades, p.errors > 0 and ("  " .. p.errors .. " errors") or "")
    if p.index == p.total then M.stderr("\n") end
  end
end

return M
