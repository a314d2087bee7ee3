-- retape.ledger — mirrors the replay store into SQLite tables shaped like the
-- original D1 ledger (spec §4.4): `trades`, `trade_events`, and the latest
-- lanes per ticker in `ticker_latest`.  A sync makes the tables equal to the
-- store (rows of purged trades are deleted), in one transaction, so running
-- it twice changes nothing and a failure leaves the previous ledger intact.
local sqlm = require "retape.sql"
local json = require "retape.json"
local parse_iso = require("retape.time").parse_iso
local results = require "retape.results"

local M = {}

M.DDL = [[
CREATE TABLE IF NOT EXISTS trades (
  trade_id TEXT PRIMARY KEY, ticker TEXT NOT NULL, direction TEXT NOT NULL,
  entry_ts INTEGER NOT NULL, entry_price REAL, rank REAL, rr REAL, status TEXT,
  exit_ts INTEGER, exit_price REAL, exit_reason TEXT, trimmed_pct REAL,
  pnl REAL, pnl_pct REAL, script_version TEXT, created_at INTEGER, updated_at INTEGER,
  UNIQUE (ticker, direction, entry_ts));
CREATE TABLE IF NOT EXISTS trade_events (
  event_id TEXT PRIMARY KEY, trade_id TEXT NOT NULL, ts INTEGER, type TEXT, price REAL,
  qty_pct_delta REAL, qty_pct_total REAL, pnl_realized REAL, reason TEXT, meta_json TEXT);
CREATE INDEX IF NOT EXISTS idx_trade_events_trade ON trade_events (trade_id, ts);
CREATE TABLE IF NOT EXISTS ticker_latest (
  ticker TEXT PRIMARY KEY, ts INTEGER, kanban_stage TEXT, prev_kanban_stage TEXT,
  prev_kanban_stage_ts INTEGER, kanban_meta TEXT, move_status TEXT, score REAL, rank_position INTEGER,
  state TEXT, price REAL, htf_score REAL, ltf_score REAL, entry_ts INTEGER, entry_price REAL,
  payload_json TEXT);
CREATE TABLE IF NOT EXISTS runs (seq INTEGER PRIMARY KEY, finished TEXT, rules TEXT, manifest_json TEXT);
]]

local function trade_row(t)
  local exit_ts, exit_price, exit_reason
  for _, e in ipairs(t.history or {}) do
    if e.type == "EXIT" then exit_ts, exit_price, exit_reason = parse_iso(e.timestamp), e.price, e.reason end
  end
  local entry = math.tointeger(t.entry_ts) or t.entry_ts
  return t.id, t.ticker, t.direction, entry, t.entryPrice, t.rank, t.rr, t.status,
    exit_ts, exit_price, exit_reason, t.trimmedPct, t.pnl, t.pnlPct, t.scriptVersion,
    entry, parse_iso(t.lastUpdate)
end

-- qty fractions of an event: ENTRY opens 100 %, TRIM moves to trimPct,
-- EXIT closes what remained.
local function event_qty(e, trimmed)
  if e.type == "TRIM" then return e.trimDeltaPct, e.trimPct, e.trimPct end
  if e.type == "EXIT" then return 1 - trimmed, 1, 1 end
  if e.type == "ENTRY" then return 0, 0, 0 end
  return nil, nil, trimmed
end

-- sync(store, ledger_path [, trade_order]) -> {trades=, events=, tickers=}
-- (trade_order: the ruleset's key order for the events' meta_json)
function M.sync(st, path, trade_order)
  if not trade_order then -- the key order of the ruleset that made the store
    local ok, R = pcall(require("retape.manifest").store_rules, st)
    trade_order = ok and R.trade_order or nil
  end
  local db = assert(sqlm.open(path))
  local ok, result = pcall(function()
    db:exec(M.DDL)
    db:exec("BEGIN IMMEDIATE")
    db:exec("DELETE FROM trade_events; DELETE FROM trades; DELETE FROM ticker_latest; DELETE FROM runs")
    local ins_trade <close> = db:prepare("INSERT INTO trades VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    local ins_event <close> = db:prepare("INSERT INTO trade_events VALUES (?,?,?,?,?,?,?,?,?,?)")
    local ins_latest <close> = db:prepare("INSERT INTO ticker_latest VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    local counts = { trades = 0, events = 0, tickers = 0 }
    for _, t in ipairs(results.trades(st)) do
      ins_trade:run(trade_row(t))
      counts.trades = counts.trades + 1
      local trimmed = 0
      for i, e in ipairs(t.history or {}) do
        local delta, total
        delta, total, trimmed = event_qty(e, trimmed)
        ins_event:run(string.format("%s:%d", t.id, i), t.id, parse_iso(e.timestamp), e.type, e.price,
          delta, total, e.pnl_realized, e.reason, json.encode(e, trade_order))
        counts.events = counts.events + 1
      end
    end
    local latest = results.latest(st)
    local names = {}
    for T in pairs(latest) do names[#names + 1] = T end
    table.sort(names)
    for _, T in ipairs(names) do
      local p = latest[T]
      local ms = p.move_status or {}
      ins_latest:run(T, math.tointeger(p.ts), p.kanban_stage, p.prev_kanban_stage,
        math.tointeger(p.prev_kanban_stage_ts), p.kanban_meta and json.encode(p.kanban_meta) or nil, ms.status,
        p.score, math.tointeger(p.rank_position), p.state, p.price, p.htf_score, p.ltf_score,
        math.tointeger(p.entry_ts), p.entry_price, json.encode(p))
      counts.tickers = counts.tickers + 1
    end
    local ins_run <close> = db:prepare("INSERT INTO runs VALUES (?,?,?,?)")
    counts.runs = 0
    st:each_run(function(m, text)
      ins_run:run(math.tointeger(m.seq), m.finished, m.rules, text)
      counts.runs = counts.runs + 1
    end)
    db:exec("COMMIT")
    return counts
  end)
  if not ok then pcall(db.exec, db, "ROLLBACK") end
  db:close()
  if not ok then error(result, 0) end
  return result
end

return M
