-- retape.regress — regression cases: golden lanes and trades, first
-- divergence reports, bless, and determinism checks (`retape test`).
--
-- A case is a directory with a `case.lua`.  It returns either a manifest:
--   return {
--     description = "...",
--     receipts = "receipts.jsonl"                       -- a file beside case.lua, or a slice:
--              | { file = "$DATA/receipts-....jsonl.gz", from = "2026-02-02", to = "2026-02-02",
--                  tickers = { "AAPL", ... }, levels = true },   -- levels: add synthetic sl/tp (retape.levels)
--     rules = "worker-2026-02-02" | "my-rules.lua",
--     overrides = { ["corridor.long.ltf_max"] = 25 },    -- dotted paths into rules.config
--     runs = { { date = "2026-02-02" }, { date = ..., ticker = "BE", clean_slate = true } },
--   }
-- whose expected results are expected/lanes.txt and expected/trades.txt, or
-- a function(t) (a script case) that runs replays through t.replay and
-- asserts with t.eq / t.ok / t.stage_at.

local M = {}

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local fs = require "retape.fs"

-- The rooms: case (running one case) and golden (expected files and the
-- first divergence); this module finds cases, runs them and reports, and
-- lends the rooms' functions under its own name.
for _, room in ipairs { require "retape.regress.case", (require "retape.regress.golden") } do
  for name, value in pairs(room) do M[name] = value end
end

---------------------------------------------------------------------------
-- discovery and the runner

-- Every directory below `dir` that holds a case.lua, in name order.
local function find_below(dir, out)
  for _, name in ipairs(fs.list(dir) or {}) do
    local path = dir .. "/" .. name
    if name == "case.lua" and fs.kind(path) == "file" then out[#out + 1] = dir end
  end
  for _, name in ipairs(fs.list(dir) or {}) do
    local path = dir .. "/" .. name
    if fs.kind(path) == "dir" then find_below(path, out) end
  end
end

function M.find_cases(paths)
  local out = {}
  for _, p in ipairs(paths) do
    if fs.kind(p .. "/case.lua") == "file" then out[#out + 1] = p
    else
      local found = {}
      find_below(p, found)
      table.sort(found)
      for _, d in ipairs(found) do out[#out + 1] = d end
    end
  end
  return out
end

local function load_case(dir)
  local chunk, err = loadfile(dir .. "/case.lua", "t")
  if not chunk then error(err, 0) end
  return chunk()
end

-- run_one(dir, opts) -> ok, lines (report lines)
function M.run_one(dir, opts)
  local case = load_case(dir)
  local out = {}
  if type(case) == "function" then
    local t = M.script_helper(dir)
    case(t)
    for _, f in ipairs(t.failures) do out[#out + 1] = f end
    return #t.failures == 0, out, t.count .. " assertions"
  end
  if type(case) ~= "table" or not case.receipts or not case.runs then
    error(dir .. "/case.lua: a case returns a table with receipts and runs, or a function(t)", 0)
  end
  local records, trades = M.run_case(case, dir)
  local lanes, trades_text = M.render(records, trades)
  local exp_dir = dir .. "/expected"
  if opts.bless then
    assert(fs.mkdirs(exp_dir))
    local changed = read_file(exp_dir .. "/lanes.txt") ~= lanes or read_file(exp_dir .. "/trades.txt") ~= trades_text
    write_file(exp_dir .. "/lanes.txt", lanes)
    write_file(exp_dir .. "/trades.txt", trades_text)
    return true, out, changed and "blessed" or "unchanged"
  end
  local exp_l, exp_t = read_file(exp_dir .. "/lanes.txt"), read_file(exp_dir .. "/trades.txt")
  if not exp_l or not exp_t then
    return false, { "no expected/lanes.txt or expected/trades.txt (run with --bless to create them)" }
  end
  local report = M.compare(exp_l, lanes, exp_t, trades_text, records)
  if report then
    if report.first then out[#out + 1] = "first divergence: " .. report.first end
    if report.first_trade then out[#out + 1] = "first differing trade: " .. report.first_trade end
    local kinds = {}
    for k in pairs(report.counts) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    local parts = {}
    for _, k in ipairs(kinds) do parts[#parts + 1] = string.format("%s %d", k, report.counts[k]) end
    out[#out + 1] = string.format("%d differences: %s", #report.all, table.concat(parts, ", "))
    if opts.diff then
      for _, d in ipairs(report.all) do out[#out + 1] = "  " .. d:gsub("\n", "\n  ") end
    end
    return false, out
  end
  -- determinism checks
  local reference = lanes .. trades_text
  for i = 2, opts["repeat"] or 1 do
    local r2, t2 = M.run_case(case, dir)
    local l2, tt2 = M.render(r2, t2)
    if l2 .. tt2 ~= reference then return false, { string.format("run %d differs from run 1 (not deterministic)", i) } end
  end
  if opts.page_sizes then
    for _, mode in ipairs { { page = 7 }, { page = 50 }, { resume = true } } do
      local r2, t2 = M.run_case(case, dir, mode)
      local l2, tt2 = M.render(r2, t2)
      if l2 .. tt2 ~= reference then
        local what = mode.page and ("pages of " .. mode.page) or "a crash and resume half-way"
        local rep = M.compare(lanes, l2, trades_text, tt2, r2)
        return false, { string.format("%s changes the result: %s", what, rep and (rep.first or rep.first_trade) or "?") }
      end
    end
  end
  return true, out, string.format("%d receipts, %d trades", #records, #M.lines(trades_text))
end

function M.run(paths, opts)
  opts = opts or {}
  if #paths == 0 then paths = { "tests" } end
  local cases = M.find_cases(paths)
  local passed, failed = 0, 0
  for n, dir in ipairs(cases) do
    local ok, okv, lines_, summary = pcall(M.run_one, dir, opts)
    if not ok then
      failed = failed + 1
      print(string.format("not ok %d - %s\n#   error: %s", n, dir, tostring(okv)))
    elseif okv then
      passed = passed + 1
      print(string.format("ok %d - %s%s", n, dir, summary and ("  (" .. summary .. ")") or ""))
    else
      failed = failed + 1
      print(string.format("not ok %d - %s", n, dir))
      for _, l in ipairs(lines_) do print("#   " .. l:gsub("\n", "\n#   ")) end
    end
  end
  M.cleanup()
  if #cases == 0 then print("no cases found under " .. table.concat(paths, ", ")) end
  print(string.format("%d passed, %d failed", passed, failed))
  return failed == 0 and #cases > 0
end

return M

