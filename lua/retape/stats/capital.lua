-- retape.stats.capital — the capital model: an account laid over the
-- simulated trades (starting capital, sizing, fees, slippage), and the
-- fills it turns the trades' ENTRY, TRIM and EXIT events into, in the one
-- deterministic order every figure is read in.  The front door is
-- retape.stats (its header describes the model).
local rtime = require "retape.time"
local metrics = require "retape.metrics"

local M = {}

-- The capital model's settings and their defaults (a ruleset declares them
-- in config.capital; --set capital.KEY=V changes one).
M.CAPITAL_DEFAULTS = {
  start = 100000,        -- starting capital ($): the base of every % figure
  sizing = "ruleset",    -- "ruleset": the trade's own size; "equity_pct": equity_pct % of equity at entry
  equity_pct = 10,       -- with sizing "equity_pct": % of the account's equity put into each trade
  fee_per_order = 0,     -- $ per fill (entry, each trim, exit)
  fee_per_share = 0,     -- $ per share (or contract) filled
  fee_bps = 0,           -- basis points of each fill's value
  slippage_bps = 0,      -- each fill moves this many basis points against the trade
}
M.SIZINGS = { "ruleset", "equity_pct" }

-- capital(c) -> the effective model: the defaults under the given table
-- (R.config.capital, or nil).  Raises on a value that cannot be used.
function M.capital(c)
  local m = {}
  for k, v in pairs(M.CAPITAL_DEFAULTS) do m[k] = v end
  if type(c) == "table" then
    for k in pairs(M.CAPITAL_DEFAULTS) do
      local v = rawget(c, k)
      if v ~= nil then m[k] = v end
    end
  end
  if type(m.start) ~= "number" or not (m.start > 0) then error("capital.start must be a positive number", 0) end
  if m.sizing ~= "ruleset" and m.sizing ~= "equity_pct" then
    error("capital.sizing is one of ruleset, equity_pct, got '" .. tostring(m.sizing) .. "'", 0)
  end
  for _, k in ipairs { "equity_pct", "fee_per_order", "fee_per_share", "fee_bps", "slippage_bps" } do
    if type(m[k]) ~= "number" or m[k] < 0 then error("capital." .. k .. " must be a number >= 0", 0) end
  end
  return m
end

-- The capital model of a ruleset (its config.capital, else the defaults).
function M.capital_of(R)
  local c = R and type(R.config) == "table" and rawget(R.config, "capital") or nil
  return M.capital(c)
end

local parse_iso = rtime.parse_iso
local function event_ms(e) return parse_iso(e.timestamp) end
-- fills(trades, cap) -> the events in order, each { ts, trade, event, kind,
-- price (after slippage), shares (scaled), fee, pnl }, and the per-trade
-- factor table { [trade] = k }.  pnl of an ENTRY is -fee; of a TRIM or
-- EXIT the gross P&L of its shares against the (slipped) entry price, minus
-- its fee.  Equity for "equity_pct" sizing: start + every pnl before.
function M.fills(trades, cap)
  local ev = {}
  for _, t in ipairs(trades) do
    for i, e in ipairs(t.history or {}) do
      local ty = e.type
      if ty == "ENTRY" or ty == "TRIM" or ty == "EXIT" then
        local ts = event_ms(e)
        if ts then ev[#ev + 1] = { ts = ts, id = t.id, seq = i, trade = t, event = e, kind = ty } end
      end
    end
  end
  metrics.sort_events(ev, "id")
  local slip = cap.slippage_bps / 10000
  local fee_bps = cap.fee_bps / 10000
  local factor, entry_px = {}, {}
  local equity = cap.start
  for _, f in ipairs(ev) do
    local t, e = f.trade, f.event
    local dir = metrics.direction_sign(t)
    local pv = t.pointValue or 1
    local k = factor[t]
    if k == nil then -- sized at its first event (its ENTRY)
      k = 1
      if cap.sizing == "equity_pct" then
        local value = (t.entryPrice or 0) * (t.shares or 0) * pv
        k = value > 0 and (cap.equity_pct / 100 * equity) / value or 0
      end
      factor[t] = k
      entry_px[t] = slip == 0 and t.entryPrice or t.entryPrice * (1 + dir * slip)
    end
    local shares = (e.shares or 0) * k
    local fee = 0
    if cap.fee_per_order ~= 0 or cap.fee_per_share ~= 0 or fee_bps ~= 0 then
      fee = cap.fee_per_order + cap.fee_per_share * shares + fee_bps * (e.price or 0) * shares * pv
    end
    if f.kind == "ENTRY" then
      f.price, f.pnl = entry_px[t], -fee
    else
      local px = e.price or t.entryPrice
      if slip ~= 0 then px = px * (1 - dir * slip) end
      f.price = px
      -- the same product as metrics.event_realized, times k (1: bit for bit)
      f.pnl = (px - entry_px[t]) * (e.shares or 0) * pv * dir * k - fee
    end
    f.shares, f.fee = shares, fee
    equity = equity + f.pnl
  end
  return ev, factor, entry_px
end

return M
