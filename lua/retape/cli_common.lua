-- Helpers shared by the CLI's command files: option lists, parsing a time
-- of day, loading a ruleset with overrides, opening a store, printing lanes.
local args = require "retape.args"
local rtime = require "retape.time"

local M = {}

function M.stderr(fmt, ...) io.stderr:write(string.format(fmt, ...)) end

-- "HH:MM" (New York, on `date`), "YYYY-MM-DD HH:MM" or milliseconds -> ms.
-- With step5, the time must be a 5-minute boundary (a bucket).
function M.parse_time(value, date, what, step5)
  local ms = math.tointeger(tonumber(value))
  if ms then
    if step5 and ms % 300000 ~= 0 then args.usage_error("%s: %s is not a 5-minute boundary (ms)", what, value) end
    return ms
  end
  local d, h, m = tostring(value):match("^(%d%d%d%d%-%d%d%-%d%d)[ T](%d%d?):(%d%d)$")
  if d then date = d else h, m = tostring(value):match("^(%d%d?):(%d%d)$") end
  if not h then args.usage_error("%s expects HH:MM (New York), 'YYYY-MM-DD HH:MM' or milliseconds, got '%s'", what, value) end
  h, m = tonumber(h), tonumber(m)
  if h > 23 or m > 59 then args.usage_error("%s: '%s' is not a time of day", what, value) end
  if step5 and m % 5 ~= 0 then args.usage_error("%s: '%s' is not a 5-minute boundary", what, value) end
  if not date then args.usage_error("%s HH:MM needs --date (or give 'YYYY-MM-DD HH:MM')", what) end
  local y, mo, dd = rtime.parse_date(date)
  if not y then args.usage_error("--date: bad date '%s'", date) end
  return rtime.from_ny(y, mo, dd, h, m)
end

function M.group(n)
  local s = string.format("%d", math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^(-?),", "%1"))
end

-- follows(dir) -> true when the store at dir is kept by the live engine
-- (`replay --follow`, `retape serve`'s webhooks): it records a watermark.
function M.follows(dir)
  local fs = require "retape.fs"
  if fs.kind(dir .. "/CURRENT") ~= "file" then return false end
  local st = require("retape.store").open(dir, true)
  if not st then return false end
  local f = st:follow()
  st:close()
  return f ~= nil
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
