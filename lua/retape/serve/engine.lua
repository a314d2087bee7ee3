-- retape.serve.engine — the one adapter between `retape serve` and the
-- replay engine.  Every call the server makes into retape.replay,
-- retape.store, retape.results, retape.manifest, retape.ledger,
-- retape.views and retape.rules is here, so the server follows the engine
-- by changing this file only.
local replay = require "retape.replay"
local store = require "retape.store"
local results = require "retape.results"
local manifest = require "retape.manifest"
local json = require "retape.json"

local M = {}

M.DEFAULT_SCRIPT_VERSION = require("retape.scope").DEFAULT_SCRIPT_VERSION

-- rules(cfg) -> ruleset: cfg.rules (name or file), then cfg.config (file)
-- and cfg.sets ({ "KEY=VALUE", ... }) as `retape replay` applies them;
-- cfg.files: the rule files by content (the store's recorded ruleset).
function M.rules(cfg)
  local rules = require "retape.rules"
  rules.pin(cfg.files or nil)
  local ok, R = pcall(rules.load_configured, cfg.rules, cfg.config or nil, cfg.sets)
  rules.unpin()
  if not ok then error(R, 0) end
  return R
end

-- open_store(kv) -> store over an open kv handle (the server's, not closed by it)
function M.open_store(kv) return assert(store.open(kv)) end

---------------------------------------------------------------------------
-- writing (the writer state only)

local Writer = {}
Writer.__index = Writer

-- writer(cfg, kv, on_bucket) -> writer.  One replay per script version; the
-- store stays open for the life of the server.
function M.writer(cfg, kv, on_bucket)
  local self = setmetatable({ cfg = cfg, st = M.open_store(kv), R = M.rules(cfg), on_bucket = on_bucket }, Writer)
  return self
end

function Writer:replay_for(script_version)
  if self.rp and self.sv == script_version then return self.rp end
  if self.rp then self.rp:close() end
  self.rp = nil
  local rp, err = replay.open { db = self.cfg.db, state = self.st, rules = self.R,
    script_version = script_version, on_bucket = self.on_bucket,
    on_row = function(row, _, ex, stage, final, forced)
      local d = self.debug
      if not d or final ~= "enter_now" then return end
      d.enterNowCount = d.enterNowCount + 1
      if #d.rows < 15 then
        d.rows[#d.rows + 1] = { ticker = row.ticker, ts = row.ts, receipt_id = row.receipt_id, stage = stage,
          finalStage = final, forced = forced or json.null,
          prevStage = type(ex) == "table" and ex.kanban_stage or json.null }
      end
    end }
  if not rp then error(err, 0) end
  self.rp, self.sv = rp, script_version
  return rp
end

-- ingest(p) -> the original endpoint's response table.  p: date, ticker,
-- bucket, limit, offset, clean_slate, script_version.  Raises; a bad
-- parameter raises an error for which is_param_error() is true.
-- With p.debug, resp.debug = {rows = up to 15 enter_now rows, enterNowCount}.
function Writer:ingest(p)
  local rp = self:replay_for(p.script_version or M.DEFAULT_SCRIPT_VERSION)
  self.debug = p.debug and { rows = {}, enterNowCount = 0 } or nil
  local ok, resp = pcall(rp.run, rp, { date = p.date, ticker = p.ticker, bucket = p.bucket, limit = p.limit,
    offset = p.offset, clean_slate = p.clean_slate })
  if ok and self.debug then resp.debug = self.debug end
  self.debug = nil
  if not ok then
    -- a failed run leaves the replay's caches dropped; reopen on the next call
    if self.rp then self.rp:close(); self.rp = nil end
    error(resp, 0)
  end
  return resp
end

---------------------------------------------------------------------------
-- live: webhooks stored and replayed as they arrive (retape.live)

-- The live engine of this server, opened on the first pass, or at start
-- when the store is already a live one (it holds a watermark), so that
-- receipts stored before a kill are replayed before anything is answered.
-- It only replays: the ingest state stores (M.receiver).
function Writer:live()
  if not self.lv then
    self.lv = assert(require("retape.live").open { db = self.cfg.db, state = self.st, rules = self.R,
      on_bucket = self.on_bucket, checkpoint = true })
  end
  return self.lv
end
function Writer:is_live() return self.lv ~= nil or self.st:follow() ~= nil end

-- catch_up() -> the live engine's catch-up pass (see retape.live): what
-- the receipts file gained since the last one, replayed.  Raises.
function Writer:catch_up() return self:live():catch_up() end

-- receiver(cfg) -> the ingest state's receiver: stores webhook rows
-- (retape.live's receiver: {true | false | error message, ...} for stored,
-- duplicate, failed), the receipts file created if needed.
function M.receiver(cfg)
  return assert(require("retape.live").receiver(cfg.db))
end

-- webhook_row(body, kind, now) -> row | nil, message (retape.import's checks)
function M.webhook_row(body, kind, now)
  return require("retape.import").row_from_webhook(body, kind, now, M.DEFAULT_SCRIPT_VERSION)
end

-- receipts_header(st) -> "X-Retape-Receipts: ROWID" | nil: the receipts a
-- live store's results cover (the receipts file's rows up to ROWID: its
-- last pass's watermark, read in the request's snapshot), for a read's answer.
function M.receipts_header(st)
  local mark = st:follow()
  local rowid = mark and math.tointeger(mark.rowid)
  return rowid and ("X-Retape-Receipts: " .. rowid) or nil
end

-- The tickers whose latest state the store holds, sorted.
function Writer:tickers() return self.st:tickers() end

-- sync(path) -> {trades=, events=, tickers=}: the ledger made equal to the store.
function Writer:sync(path) return require("retape.ledger").sync(self.st, path) end

M.is_param_error = replay.is_param_error

---------------------------------------------------------------------------
-- reading (reader states; the kv handle is pinned to a snapshot per request)

-- Every ticker's latest state (its declared state and view fields, as the
-- original's timed:latest), in ticker order: fn(T, record).
function M.each_latest(st, fn)
  local latest = results.latest(st)
  for _, T in ipairs(st:tickers()) do if latest[T] then fn(T, latest[T]) end end
end
function M.latest(st, T) return results.latest(st)[T] end
function M.badges(st, R, at) return results.badges(st, R, at) end
function M.trades(st) return results.trades(st) end
function M.lanes(st, R, at) return results.lanes(st, R, at) end
-- { T = ts of the last receipt of its last version } (the live board's chips)
function M.last_receipts(st)
  local out = {}
  for _, T in ipairs(st:tickers()) do
    local _, rec = st:last_version(T)
    local l = rec and rec.lanes and rec.lanes[#rec.lanes]
    if l then out[T] = l[1] end
  end
  return out
end
function M.runs(st) return manifest.runs(st) end
M.MANIFEST_ORDER = manifest.ORDER
-- the shipped rulesets' trade key order (the original's record format)
M.TRADE_ORDER = require("retape.rules").load("worker-2026-02-02").trade_order
M.ticker_list = replay.ticker_list

-- views: by_day / by_pnl / history over a trades list (opts.rules: the
-- server's ruleset, whose trade_is_open says which trades are open)
function M.view(by, trades, opts)
  local views = require "retape.views"
  if by == "day" then return views.by_day(trades, opts) end
  if by == "pnl" then return views.by_pnl(trades, opts.days, opts) end
  local rows = views.history(trades, opts)
  local metrics = require "retape.metrics"
  for _, r in ipairs(rows) do r.time = metrics.iso(r.ts) end
  return rows
end

-- The day keys of the ruleset that made the store ("utc" | "ny"), as `retape trades`.
function M.day_key(st)
  local ok, R = pcall(manifest.store_rules, st)
  if ok and not st:recipe() and #manifest.runs(st) == 0 then R = require("retape.rules").load("worker-2026-02-02") end
  return ok and R.views and R.views.day_key or "utc"
end

-- ledger_trades(path) -> rows of the ledger's trades table (entry_ts desc) | nil, message
function M.ledger_trades(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  f:close()
  local sql = require "retape.sql"
  local db, err = sql.open(path)
  if not db then return nil, err end
  local ok, rows = pcall(function()
    return db:rows("SELECT trade_id, ticker, direction, entry_ts, entry_price, rank, rr, status, exit_ts, "
      .. "exit_price, exit_reason, trimmed_pct, pnl, pnl_pct, script_version, created_at, updated_at FROM trades "
      .. "ORDER BY entry_ts DESC, trade_id")
  end)
  db:close()
  if not ok then return nil, rows end
  return rows
end

return M
