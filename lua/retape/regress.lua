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
local retape = require "retape"
local rtime = require "retape.time"
local json = require "retape.json"

local M = {}

-- $DATA in a case's receipts file: the bundled data folder (RETAPE_DATA or
-- DATA, else data/ of the working directory: the repository's own).
local function data_dir()
  return os.getenv("RETAPE_DATA") or os.getenv("DATA") or "data"
end

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
local tmp_root, tmp_count = nil, 0
local function tempdir()
  if not tmp_root then tmp_root = assert(fs.tempdir("retape-cases", os.getenv("RETAPE_TEST_TMP"))) end
  tmp_count = tmp_count + 1
  local d = string.format("%s/%d", tmp_root, tmp_count)
  assert(fs.mkdirs(d))
  return d
end

function M.cleanup()
  if tmp_root then fs.remove_tree(tmp_root) end
  tmp_root = nil
end

---------------------------------------------------------------------------
-- receipts of a case

local receipts_cache = {}

-- Builds (once per process) an SQLite file with the receipts a spec names.
function M.receipts_db(spec, case_dir)
  if type(spec) == "string" then spec = { file = spec } end
  local file = spec.file:gsub("%$DATA", data_dir())
  if not file:match("^/") and not spec.file:match("^%$DATA") then file = case_dir .. "/" .. file end
  local key = json.encode { file, spec.from or false, spec.to or false, spec.tickers or false, spec.levels or false }
  if receipts_cache[key] then return receipts_cache[key] end
  if not io.open(file) then error(string.format("%s: receipts file %s not found", case_dir, file), 0) end
  local import = require "retape.import"
  local dir = tempdir()
  local db = dir .. "/receipts.db"
  local keep
  if spec.tickers then keep = {}; for _, t in ipairs(spec.tickers) do keep[import.normalize_ticker(t)] = true end end
  local lo = spec.from and rtime.session(spec.from) - 86400000 or nil
  local hi = spec.to and select(2, rtime.session(spec.to)) + 86400000 or nil
  local w = assert(retape.ingest.writer(db))
  for lineno, line in retape.ingest.lines(file) do
    if line:find("%S") then
      local row, err = import.row_from_line(line)
      if not row then error(string.format("%s:%d: %s", file, lineno, err), 0) end
      if (not keep or keep[row.ticker]) and (not lo or row.ts >= lo) and (not hi or row.ts <= hi) then w:insert(row) end
    end
  end
  assert(w:close())
  if spec.levels then
    local levels = require "retape.levels"
    local days = {}
    for _, day in ipairs(require("retape.replay").days_between(spec.from, spec.to or spec.from)) do
      days[#days + 1] = { day = day, synthetic_inputs = levels.synth(db, day) }
    end
    db = levels.build(db, dir, days)
  end
  receipts_cache[key] = db
  return db
end

---------------------------------------------------------------------------
-- rules with overrides

function M.load_rules(case, case_dir)
  local spec = case.rules or require("retape.rules").default
  if type(spec) == "string" and spec:match("%.lua$") and not spec:match("^/") then spec = case_dir .. "/" .. spec end
  local rules = require "retape.rules"
  local R = rules.load(spec)
  if case.overrides then rules.apply_overrides(R, case.overrides, case_dir .. "/case.lua") end
  return R
end

---------------------------------------------------------------------------
-- running a case: plain, paged, or crashed and resumed

local function days_of(params)
  if params.from or params.to then
    return require("retape.replay").days_between(params.from or params.to, params.to or params.from)
  end
  return { params.date }
end

-- Runs the case's replays on a fresh store; returns lane records and trades.
-- mode: nil (plain), {page = N}, or {resume = true} (a crash injected half-way
-- through each run, then resume).
function M.run_case(case, case_dir, mode)
  local db = M.receipts_db(case.receipts, case_dir)
  local R = M.load_rules(case, case_dir)
  local state = tempdir() .. "/state"
  local records = {}
  local replay = require "retape.replay"
  local function open(extra)
    local opts = { db = db, state = state, rules = R, trace = function(r) records[#records + 1] = r end,
      script_version = case.script_version }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(replay.open(opts))
  end
  for _, params in ipairs(case.runs or {}) do
    if mode and mode.page then
      local rp = open()
      local first = true
      for _, day in ipairs(days_of(params)) do
        local d_open, d_close = rtime.session(day)
        for _, b in ipairs(assert(rp:receipts():buckets { from = d_open, to = d_close, script_version = rp:version_kept(),
                                                   tickers = replay.ticker_list(params.ticker) })) do
          local offset = 0
          repeat
            local r = rp:run { date = day, ticker = params.ticker, bucket = b.bucket, limit = mode.page, offset = offset,
                               clean_slate = first and params.clean_slate }
            first = false
            offset = r.nextBucketOffset ~= json.null and r.nextBucketOffset or 0
          until not r.hasMoreInBucket
        end
      end
      rp:close()
    elseif mode and mode.resume then
      local crashed = false
      local rp = open { on_bucket = function(p)
        if not crashed and p.index == math.max(1, p.total // 2) then crashed = true; error("injected crash") end
      end }
      local ok, err = pcall(rp.run, rp, params)
      rp:close()
      if ok ~= not crashed then error(ok and "crash not injected" or err, 0) end
      if crashed then
        local again = open()
        local resumed = {}
        for k, v in pairs(params) do resumed[k] = v end
        resumed.resume = true
        again:run(resumed)
        again:close()
      end
    else
      local rp = open()
      rp:run(params)
      rp:close()
    end
  end
  local st = assert(require("retape.store").open(state, true))
  local trades = replay.trades(st)
  st:close()
  return records, trades
end

---------------------------------------------------------------------------
-- expected files

local function dash(v) return v == nil and "-" or tostring(v) end

function M.lane_line(r)
  local t = rtime.to_ny(r.ts)
  return string.format("%04d-%02d-%02d %02d:%02d:%02d  %-6s  %-12s  %-12s  %s", t.year, t.month, t.day, t.hour, t.min, t.sec,
    r.ticker, dash(r.stage), dash(r.finalStage), dash(r.forced))
end

local function num(x) return x == nil and "-" or json.number(x) end

local function et(ms) return ms and rtime.format_ny(math.tointeger(ms), true) or "-" end

function M.trade_line(t)
  local events, exit_ts = {}, nil
  for i, e in ipairs(t.history or {}) do
    events[i] = e.type
    if e.type == "EXIT" then exit_ts = rtime.parse_iso(e.timestamp) end
  end
  return string.format("%s %s entry=%s @%s status=%s trimmed=%s exit=%s @%s (%s) realized=%s pnl=%s sl=%s events=%s",
    t.ticker, t.direction, et(t.entry_ts), num(t.entryPrice), t.status, num(t.trimmedPct), et(exit_ts), num(t.exitPrice),
    dash(t.exitReason), num(t.realizedPnl), num(t.pnl), num(t.sl), table.concat(events, ","))
end

function M.render(records, trades)
  local lanes = {}
  for i, r in ipairs(records) do lanes[i] = M.lane_line(r) end
  local sorted = table.move(trades, 1, #trades, 1, {})
  table.sort(sorted, function(a, b)
    if a.entry_ts ~= b.entry_ts then return a.entry_ts < b.entry_ts end
    return a.id < b.id
  end)
  local tl = {}
  for i, t in ipairs(sorted) do tl[i] = M.trade_line(t) end
  local header = "# time (ET)           ticker  stage         final         forced\n"
  return header .. table.concat(lanes, "\n") .. (#lanes > 0 and "\n" or ""),
         "# one trade per line, by entry time\n" .. table.concat(tl, "\n") .. (#tl > 0 and "\n" or ""),
         sorted
end

---------------------------------------------------------------------------
-- comparing

local function lines(text)
  local out = {}
  for l in (text or ""):gmatch("[^\n]*") do if l ~= "" and not l:match("^#") then out[#out + 1] = l end end
  return out
end

local LANE_FIELDS = { "time", "ticker", "stage", "final", "forced" }
local function split_lane(l)
  local date, time, ticker, stage, final, forced = l:match("^(%S+) (%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
  return { time = (date or "") .. " " .. (time or ""), ticker = ticker, stage = stage, final = final, forced = forced }
end

local TRADE_FIELDS = { "entry", "status", "trimmed", "exit", "realized", "pnl", "sl", "events" }
local function split_trade(l)
  local t = { key = l:match("^(%S+ %S+ entry=%S+ %S+ %S+ @%S+)") or l }
  t.entry = l:match("entry=(.- @%S+)")
  for _, f in ipairs { "status", "trimmed", "realized", "pnl", "sl", "events" } do t[f] = l:match(" " .. f .. "=(%S+)") end
  t.exit = l:match(" exit=(.- @%S+ %b())")
  return t
end

-- Compares actual with expected; returns nil when equal, else a report
-- table {first = text, counts = {kind = n}, all = {text...}}.
function M.compare(exp_lanes, act_lanes, exp_trades, act_trades, records)
  local report = { counts = {}, all = {} }
  local function count(kind) report.counts[kind] = (report.counts[kind] or 0) + 1 end
  local el, al = lines(exp_lanes), lines(act_lanes)
  for i = 1, math.max(#el, #al) do
    local e, a = el[i], al[i]
    if e ~= a then
      local r = records[i]
      local text
      if e and a then
        local es, as = split_lane(e), split_lane(a)
        local diffs = {}
        for _, f in ipairs(LANE_FIELDS) do
          if es[f] ~= as[f] then diffs[#diffs + 1] = f; count("lanes: " .. f) end
        end
        text = string.format("lanes row %d: %s ET %s%s: %s", i, as.time, as.ticker,
          r and (" (receipt " .. r.receipt_id .. ")") or "",
          table.concat((function()
            local parts = {}
            for _, f in ipairs(diffs) do parts[#parts + 1] = string.format("%s expected %s, got %s", f, es[f], as[f]) end
            return parts
          end)(), "; "))
        if r then text = text .. string.format("\n    decided by: %s", r.rule or "?") end
      else
        count(e and "lanes: missing row" or "lanes: extra row")
        text = string.format("lanes row %d: %s", i, e and ("missing: " .. e) or ("extra: " .. a))
      end
      report.all[#report.all + 1] = text
      report.first = report.first or text
    end
  end
  local et_, at_ = lines(exp_trades), lines(act_trades)
  local exp_by, act_by, order = {}, {}, {}
  for _, l in ipairs(et_) do local t = split_trade(l); exp_by[t.key] = t; order[#order + 1] = t.key end
  for _, l in ipairs(at_) do
    local t = split_trade(l)
    act_by[t.key] = t
    if not exp_by[t.key] then order[#order + 1] = t.key end
  end
  local first_trade
  for _, key in ipairs(order) do
    local e, a = exp_by[key], act_by[key]
    local text
    if not a then count("trades: missing"); text = "trade missing: " .. key
    elseif not e then count("trades: extra"); text = "trade extra: " .. key
    else
      local parts = {}
      for _, f in ipairs(TRADE_FIELDS) do
        if e[f] ~= a[f] then
          count("trades: " .. f)
          parts[#parts + 1] = string.format("%s expected %s, got %s", f, tostring(e[f]), tostring(a[f]))
        end
      end
      if #parts > 0 then text = "trade " .. key .. ": " .. table.concat(parts, "; ") end
    end
    if text then
      report.all[#report.all + 1] = text
      first_trade = first_trade or text
    end
  end
  report.first_trade = first_trade
  if #report.all == 0 then return nil end
  return report
end

---------------------------------------------------------------------------
-- script cases: the helper handed to function(t)

local function caller()
  local info = debug.getinfo(3, "Sl")
  return info and (info.short_src .. ":" .. info.currentline) or "?"
end

function M.script_helper(case_dir)
  local t = { failures = {}, count = 0 }
  function t.ok(cond, what, detail)
    t.count = t.count + 1
    if not cond then
      t.failures[#t.failures + 1] = string.format("%s: %s%s", caller(), what or "assertion failed",
        detail and ("\n    " .. tostring(detail)) or "")
    end
    return cond
  end
  function t.eq(got, want, what)
    t.count = t.count + 1
    if got ~= want then
      t.failures[#t.failures + 1] = string.format("%s: %s\n    expected: %s\n    got:      %s", caller(),
        what or "values differ", tostring(want), tostring(got))
      return false
    end
    return true
  end
  function t.receipts(spec) return M.receipts_db(spec, case_dir) end
  -- replay(case_table) -> {records=, trades=, lanes=(text), trades_text=}
  function t.replay(case)
    local records, trades = M.run_case(case, case_dir)
    local lanes, trades_text, sorted = M.render(records, trades)
    return { records = records, trades = sorted, lanes = lanes, trades_text = trades_text }
  end
  -- the final stage of a ticker after its last receipt at or before HH:MM ET
  function t.stage_at(result, ticker, hhmm, date)
    local h, m = hhmm:match("^(%d%d?):(%d%d)$")
    local found
    for _, r in ipairs(result.records) do
      local ny = rtime.to_ny(r.ts)
      local day = string.format("%04d-%02d-%02d", ny.year, ny.month, ny.day)
      if r.ticker == ticker and (not date or day == date) and (ny.hour * 60 + ny.min) <= tonumber(h) * 60 + tonumber(m) then
        found = r.finalStage or "none"
      end
    end
    return found
  end
  return t
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
  return true, out, string.format("%d receipts, %d trades", #records, #lines(trades_text))
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
