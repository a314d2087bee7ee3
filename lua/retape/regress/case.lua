-- retape.regress.case — running one regression case: its receipts (a
-- file, or a slice of the bundled data with synthetic levels), its rules
-- with overrides, its runs (plain, paged, or crashed and resumed), and the
-- helper a script case gets.  Lent by retape.regress.
local retape = require "retape"
local rtime = require "retape.time"
local json = require "retape.json"
local fs = require "retape.fs"
local golden = require "retape.regress.golden"

local M = {}

-- $DATA in a case's receipts file: the bundled data folder (RETAPE_DATA or
-- DATA, else data/ of the working directory: the repository's own).
local function data_dir()
  return os.getenv("RETAPE_DATA") or os.getenv("DATA") or "data"
end

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
      local rp = open { durable = "run" } -- as retape replay (the pages above: a flush per page would cost more)
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
    local lanes, trades_text, sorted = golden.render(records, trades)
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

return M
