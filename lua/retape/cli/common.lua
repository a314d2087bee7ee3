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
  local options = require "retape.cli.options"
  return options.list(options.store_read(), list)
end

---------------------------------------------------------------------------
-- advice: commands printed as they must be typed (each one runs as printed)

-- One shell word, quoted when it needs to be.
function M.quote(word)
  word = tostring(word)
  if word:match("^[%w%._/:=,@%%+%-]+$") then return word end
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

-- command(words) -> "retape W1 W2 ..." (quoted).
function M.command_line(words)
  local q = { "retape" }
  for _, w in ipairs(words) do q[#q + 1] = M.quote(w) end
  return table.concat(q, " ")
end

-- The words of this command line (after "retape"), with the options named
-- in `drop` removed (with their values) and `add` appended.  `valued`: the
-- options of the command that take a value.
function M.rewrite(drop, add, valued)
  local argv, words, i = M.argv or {}, {}, 1
  local dropset = {}
  for _, d in ipairs(drop or {}) do dropset[d] = true end
  while i <= #argv do
    local a = argv[i]
    local name, value = a:match("^%-%-([^=]+)=(.*)$")
    name = name or a:match("^%-%-(.+)$")
    local takes = name and valued[name] and not value
    if name and dropset[name] then
      if takes then i = i + 1 end
    else
      words[#words + 1] = a
      if takes and argv[i + 1] then words[#words + 1] = argv[i + 1]; i = i + 1 end
    end
    i = i + 1
  end
  for _, w in ipairs(add or {}) do words[#words + 1] = w end
  return words
end

-- refuse(cmd, message, advice) -> 2: prints the message and each {what,
-- command} of advice on stderr (a refusal is the user's call to make).
function M.refuse(cmd, message, advice)
  io.stderr:write(string.format("retape %s: %s\n", cmd, message))
  for _, a in ipairs(advice or {}) do io.stderr:write(string.format("  %s:\n    %s\n", a[1], a[2])) end
  return 2
end

-- The options of a command that take a value (for rewrite()).
function M.valued(options)
  local v = {}
  for _, s in ipairs(options) do if s.type ~= "flag" then v[s.name] = true end end
  return v
end

-- A message naming the `retape serve` that holds a store, if one does.
function M.served_by(dir)
  local f = io.open(dir .. "/SERVED_BY")
  if not f then return nil end
  local url = f:read("l")
  f:close()
  return url
end

-- The message of a store that could not be opened: naming the `retape
-- serve` that holds it, or the interrupted merge into it, when so.
function M.held_message(dir, err)
  local url = tostring(err):find("in use by another process", 1, true) and M.served_by(dir)
  local pending = require("retape.merge").pending(dir)
  if pending and not url then
    err = string.format("%s: no store here; a merge into it was interrupted (see 'retape status --state %s')", dir, M.quote(dir))
  elseif url then
    err = string.format("%s is held by 'retape serve' at %s; read it there (GET %s/retape/lanes, /retape/trades, "
      .. "/retape/runs with ?key=), or stop the server first", dir, url, url)
  end
  return err
end

-- Opens the store of a read command; warns on stderr about stale results.
function M.open_store(o)
  local dir = M.state_dir(o)
  local st, err = require("retape.store").open(dir, true)
  if not st then return nil, M.held_message(dir, err) end
  local stale = require("retape.results").stale(st)
  if #stale > 0 then
    local names = {}
    for i, s in ipairs(stale) do
      if i > 5 then names[#names + 1] = "..."; break end
      names[#names + 1] = string.format("%s from %s", s.ticker, rtime.format_ny(math.tointeger(s.from)))
    end
    M.stderr("retape: note: results of %d ticker(s) are stale (%s): they depend on an earlier state that a re-run "
      .. "changed; recompute them with '%s'\n", #stale, table.concat(names, ", "), M.refresh_command(st, dir))
  end
  return st
end

-- Loads a ruleset and applies --config FILE then every --set KEY=VALUE;
-- any unknown key or wrong type is an error before anything runs.
function M.load_rules(spec, o)
  return M.apply_settings(require("retape.rules").load(spec), o)
end

-- Applies --config FILE then every --set KEY=VALUE of `o` to R; a bad key
-- or value is a usage error (exit 2), naming it.
function M.apply_settings(R, o)
  if not o then return R end
  local ok, err = pcall(require("retape.rules").configure, R, o.config, o.set)
  if not ok then args.usage_error("%s", tostring(err)) end
  return R
end

-- The command that recomputes a store's stale results, as it must be typed
-- (--db only when the store does not record its receipts file).
function M.refresh_command(st, dir)
  local words = { "replay", "--state", dir, "--refresh" }
  if not require("retape.manifest").receipts_path(st) then
    local db = st:db_path()
    words = { "replay", "--db", db or "FILE", "--state", dir, "--refresh" }
  end
  return M.command_line(words)
end

-- The ruleset that made a store, with its recorded config, for a read; a
-- rule file changed since is named on stderr once.
function M.store_rules(st, fallback)
  local manifest = require "retape.manifest"
  if not st:recipe() and #manifest.runs(st) == 0 then
    local ok, R = pcall(require("retape.rules").load, fallback or "default")
    if not ok then return nil, R end
    return R
  end
  local ok, R, notes = pcall(manifest.store_rules, st)
  if not ok then return nil, R end
  for _, n in ipairs(notes or {}) do
    if not M.noted then M.stderr("retape: note: %s\n", n) end
  end
  M.noted = true
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

-- progress(started, width, line [, columns]) -> function(p): the one
-- progress bar on stderr, redrawn at most every 100 ms and at the end
-- (p.index of p.total).  line(p, bar, secs) -> the text around the bar
-- ("[####....]", width characters inside); columns: the line padded and cut
-- to that many.
function M.progress(started, width, line, columns)
  local core = require "retape.core"
  local last = 0
  return function(p)
    local now = core.monotonic_ms()
    if p.index < p.total and now - last < 100 then return end
    last = now
    local filled = math.floor(width * p.index / p.total)
    local bar = "[" .. string.rep("#", filled) .. string.rep(".", width - filled) .. "]"
    local text = line(p, bar, math.max((now - started) / 1000, 1e-3))
    if columns then M.stderr("\r%-" .. columns .. "s", text:sub(1, columns)) else M.stderr("\r%s", text) end
    if p.index == p.total then M.stderr("\n") end
  end
end

-- The replay's bar: buckets done/total, rows/s, trades so far (in 79 columns).
function M.progress_bar(started)
  return M.progress(started, 16, function(p, bar, secs)
    return string.format("%s%s %d/%d %s rows/s %d trades%s", p.recomputing and "recomputing " or "", bar,
      p.index, p.total, M.group(p.rows / secs), p.trades, p.errors > 0 and (" " .. p.errors .. " errors") or "")
  end, 79)
end

return M
