-- The `retape` command line: subcommands, their options and help texts.
-- core/main.c calls main(argv) inside the host's protected call; a command
-- returns its exit status.  Usage errors exit 2, failures 1.
local args = require "retape.args"
local core = require "retape.core"

local M = {}
local commands, order = {}, {}

local function command(name, def)
  def.name = name
  commands[name] = def
  order[#order + 1] = name
end

local function out(fmt, ...) io.stdout:write(string.format(fmt, ...), "\n") end
local function err(fmt, ...) io.stderr:write(string.format(fmt, ...), "\n") end
M.out, M.err = out, err

-- Runs a command's body; an error value that is a string starting with
-- "retape:" or a usage error is shown without a traceback.
local function fail(name, message)
  err("retape %s: %s", name, message)
  return 1
end
M.fail = fail

---------------------------------------------------------------------------

command("help", {
  summary = "Show the commands, or the options of one command",
  usage = "retape help [COMMAND]",
  options = {},
  run = function(_, pos)
    if pos[1] then
      local c = commands[pos[1]]
      if not c then return fail("help", "no command '" .. pos[1] .. "' (see 'retape help')") end
      out("usage: %s\n\n%s", c.usage, c.summary .. ".")
      if c.details then out("\n%s", c.details) end
      if #c.options > 0 then out("\noptions:\n%s", args.describe(c.options)) end
      return 0
    end
    out("retape %s — replay TradingView receipts through Lua rules, bucket by bucket", core.version)
    out("\nusage: retape [--lua-dir DIR] COMMAND [OPTIONS] [ARGS]\n\ncommands:")
    local width = 0
    for _, n in ipairs(order) do width = math.max(width, #n) end
    for _, n in ipairs(order) do
      out("  %s%s  %s", n, string.rep(" ", width - #n), commands[n].summary)
    end
    out("\nglobal options:\n  --lua-dir DIR  load the Lua layer from DIR instead of the embedded one (also RETAPE_LUA_DIR)")
    out("  --version      print the version\n  --help         this text")
    out("\n'retape help COMMAND' shows the options of a command.")
    return 0
  end,
})

command("version", {
  summary = "Print the engine version",
  usage = "retape version",
  options = {},
  run = function()
    out("retape %s (Lua API %d, %s)", core.version, core.lua_api, _VERSION)
    return 0
  end,
})

-- The directories `retape run NAME` searches for a script given by a bare
-- name that is not in the current directory: $RETAPE_SCRIPT_PATH (colon
-- separated), then share/retape/scripts beside the installed binary, then
-- scripts/ of the source tree the binary was built in.
function M.script_dirs()
  local dirs = {}
  for d in (os.getenv("RETAPE_SCRIPT_PATH") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = d end
  local exe = core.exe_path and core.exe_path()
  local bin = exe and exe:match("^(.*)/[^/]*$")
  if bin then
    dirs[#dirs + 1] = bin .. "/../share/retape/scripts"
    dirs[#dirs + 1] = bin .. "/../../scripts"
  end
  return dirs
end

function M.find_script(name)
  local f = io.open(name)
  if f then f:close(); return name end
  if name:find("/", 1, true) then return name end
  for _, d in ipairs(M.script_dirs()) do
    local path = d .. "/" .. name
    f = io.open(path)
    if f then f:close(); return path end
  end
  return name
end

-- The option specs of a command (for rewriting its command line as advice).
function M.options_of(name) return commands[name] and commands[name].options or {} end

-- The commands in help order, for the man page and the shell completions.
function M.commands() return order, commands end

command("run", {
  summary = "Run a Lua script with the engine API (require \"retape\")",
  usage = "retape run SCRIPT.lua [ARGS...]",
  details = "The script gets its arguments as `...` and in the global `arg` (arg[0] = script);\n"
         .. "a bare NAME not found here is looked up in $RETAPE_SCRIPT_PATH and the installed scripts\n"
         .. "(levels.lua, replay-ingest.lua);\n"
         .. "modules in the script's directory can be required by name.\n"
         .. "If it returns an integer, that is the exit status.",
  options = {},
  raw_args = true,
  run = function(_, pos)
    local script = pos[1]
    if not script then args.usage_error("missing SCRIPT") end
    script = M.find_script(script)
    local chunk, lerr = loadfile(script, "t")
    if not chunk then return fail("run", lerr) end
    -- Modules next to the script can be required by name.
    local script_dir = script:match("^(.*)/[^/]*$") or "."
    package.path = script_dir .. "/?.lua;" .. package.path
    local script_args = table.move(pos, 2, #pos, 1, {})
    _G.arg = table.move(pos, 1, #pos, 0, {})
    local status = chunk(table.unpack(script_args))
    return math.type(status) == "integer" and status or 0
  end,
})

command("import", {
  summary = "Load receipts (JSON lines, .gz, or an SQL dump) into an SQLite file",
  usage = "retape import --db FILE [--format auto|jsonl|sql] INPUT...",
  details = "Creates ingest_receipts with the original DDL and indexes if absent; inserts with\n"
         .. "INSERT OR IGNORE (duplicate receipt ids are counted, not inserted). Bad lines are\n"
         .. "reported with their line number and skipped; so are lines longer than --max-line-bytes.\n"
         .. "A .gz is checked whole first: a damaged member is reported before anything else and\n"
         .. "nothing of it is imported (exit 1); bytes after the last member are reported (exit 1).\n"
         .. "Each statement of a dump stands alone: one cut short is rejected, the next one kept.",
  options = {
    { name = "db", arg = "FILE", help = "SQLite file to create or extend" },
    { name = "format", arg = "FMT", help = "input format: auto (by extension), jsonl, sql", default = "auto" },
    { name = "max-line-bytes", arg = "N", type = "integer", default = 16777216,
      help = "longest line (or dump statement) read; longer ones are skipped and reported" },
    { name = "quiet", type = "flag", help = "print only the totals" },
  },
  run = function(o, pos)
    if not o.db then args.usage_error("missing --db FILE") end
    if #pos == 0 then args.usage_error("missing INPUT file(s)") end
    if o.max_line_bytes < 1 then args.usage_error("--max-line-bytes must be positive") end
    local shown, limit = 0, 50
    local total, per_file = require("retape.import").run(o.db, pos, {
      format = o.format, max_line = o.max_line_bytes,
      report = function(msg, kind)
        if kind == "input" then return err("retape import: %s", msg) end -- an input's own problem: always shown
        shown = shown + 1
        if shown <= limit then err("retape import: %s", msg)
        elseif shown == limit + 1 then err("retape import: (further rejections not shown)") end
      end,
    })
    if not total then return fail("import", per_file) end
    if not o.quiet then
      for _, f in ipairs(per_file) do
        local c = f.counts
        out("%s: read %d, inserted %d, duplicate %d, rejected %d", f.path, c.read, c.inserted, c.duplicate, c.rejected)
      end
    end
    out("total: read %d, inserted %d, duplicate %d, rejected %d", total.read, total.inserted, total.duplicate, total.rejected)
    return (total.errors or 0) > 0 and 1 or 0 -- an input not read to its end fails the import
  end,
})

command("days", {
  summary = "Count the receipts per New York day (and inside the 09:30-16:00 session)",
  usage = "retape days --db FILE [--script-version V | --all-versions] [--json | --csv]",
  options = require("retape.cli.options").list({ name = "db", arg = "FILE", help = "receipts database" },
    require("retape.cli.options").versions(require("retape.scope").DEFAULT_SCRIPT_VERSION), {
    { name = "json", type = "flag", help = "JSON: [{day, receipts, session, open, close}] (open/close: ISO-8601 with offset)" },
    { name = "csv", type = "flag", help = "CSV with the same columns" },
  }),
  run = function(o)
    if not o.db then args.usage_error("missing --db FILE") end
    if o.json and o.csv then args.usage_error("give --json or --csv, not both") end
    local rtime = require "retape.time"
    local src, oerr = require("retape.source").open(o.db)
    if not src then return fail("days", oerr) end
    local sv = not o.all_versions and o.script_version or nil
    local buckets = assert(src:buckets { script_version = sv })
    -- rows no listing shows (ts out of range, not an integer, not in its bucket): named, never a traceback
    local n_bad, first_bad = assert(src:bad_rows { script_version = sv })
    src:close()
    if n_bad > 0 then
      err("retape days: %d bad row%s skipped: ts or bucket_5m not an integer, outside 2000..2100, or not matching (first: %s)",
        n_bad, n_bad == 1 and "" or "s", tostring(first_bad))
    end
    local days, order_ = {}, {}
    for _, b in ipairs(buckets) do
      local day = rtime.ny_date(b.bucket)
      local d = days[day]
      if not d then
        local open, close = rtime.session(day)
        d = { total = 0, session = 0, open = open, close = close }
        days[day] = d
        order_[#order_ + 1] = day
      end
      d.total = d.total + b.count
      if b.bucket >= d.open and b.bucket <= d.close then d.session = d.session + b.count end
    end
    if o.json or o.csv then
      local iso = require("retape.metrics").iso
      local rows = {}
      for i, day in ipairs(order_) do
        local d = days[day]
        rows[i] = { day = day, receipts = d.total, session = d.session, open = iso(d.open), close = iso(d.close) }
      end
      local cols = { { "day" }, { "receipts" }, { "session" }, { "open" }, { "close" } }
      if o.csv then out("%s", require("retape.views").csv(cols, rows))
      else out("%s", require("retape.json").encode(rows, { "day", "receipts", "session", "open", "close" })) end
      return 0
    end
    out("%-10s  %9s  %9s", "day (ET)", "receipts", "session")
    local sum, ses = 0, 0
    for _, day in ipairs(order_) do
      local d = days[day]
      out("%-10s  %9d  %9d", day, d.total, d.session)
      sum, ses = sum + d.total, ses + d.session
    end
    out("%-10s  %9d  %9d", "total", sum, ses)
    return 0
  end,
})

-- The other commands live in files of their own: replay; the readers of a
-- store (lanes, trades, ledger, runs, status, diff); regression cases and
-- explanations (test, explain).
M.command = command
require("retape.cli.replay")(M)
require("retape.cli.results")(M) -- lanes, trades, ledger
require("retape.cli.stores")(M) -- runs, status, merge, diff
require("retape.cli.regress")(M)
require("retape.cli.report")(M) -- report, rules show
require("retape.cli.serve")(M)
require("retape.cli.sweep")(M) -- sweep

---------------------------------------------------------------------------

-- An error that already carries its traceback: the host's message handler
-- prints it through __tostring without adding a second one.
local Traced = { __tostring = function(e) return e.text end }

-- One traceback, the user's frames first: frames of files outside the
-- engine's Lua layer (lua/...) and C are listed under "your code:", the
-- engine's once under "engine:" (repeated tracebacks are merged).
function M.user_first(text)
  local head, tb = text:match("^(.-)\nstack traceback:\n(.*)$")
  if not head then return text end
  local user, engine, seen = {}, {}, {}
  for line in tb:gmatch("[^\n]+") do
    if not line:match("^stack traceback:") and not seen[line] then
      seen[line] = true
      if line:match("^%s*lua/") or line:match("^%s*%[C%]") or line:match("^%s*%(%.%.%.") then engine[#engine + 1] = line
      else user[#user + 1] = line end
    end
  end
  if #user == 0 then return head .. "\nstack traceback:\n" .. table.concat(engine, "\n") end
  return head .. "\nyour code:\n" .. table.concat(user, "\n") .. "\nengine:\n" .. table.concat(engine, "\n")
end

local function traced(e)
  if args.is_usage_error(e) or getmetatable(e) == Traced then return e end
  local text = tostring(e)
  if not text:find("\nstack traceback:\n", 1, true) then text = debug.traceback(text, 2) end
  return setmetatable({ text = M.user_first(text) }, Traced)
end

function M.main(argv)
  require("retape.cli.common").argv = argv -- for the commands a refusal prints as advice
  local name = argv[1]
  if name == nil or name == "--help" or name == "-h" then name = "help"
  elseif name == "--version" or name == "-V" then name = "version" end
  local c = commands[name]
  if not c then
    err("retape: unknown command '%s' (see 'retape help')", tostring(name))
    return 2
  end
  if argv[2] == "--help" or argv[2] == "-h" then return commands.help.run({}, { name }) end
  local ok, status = xpcall(function()
    local o, pos
    if c.raw_args then pos = table.move(argv, 2, #argv, 1, {}) ; o = {}
    else o, pos = args.parse(c.options, argv, 2) end
    -- a sandbox limit of 0 or less would turn the limit off: refused
    for _, k in ipairs { "max_instructions", "max_memory_mb" } do
      if o[k] ~= nil and o[k] <= 0 then args.usage_error("--%s must be positive, got %s", k:gsub("_", "-"), tostring(o[k])) end
    end
    return c.run(o, pos)
  end, traced)
  if ok then return status or 0 end
  if args.is_usage_error(status) then
    err("retape %s: %s\nusage: %s\n(see 'retape help %s')", name, tostring(status), c.usage, name)
    return 2
  end
  error(status, 0) -- a real error: the host prints it, traceback included
end

return M
