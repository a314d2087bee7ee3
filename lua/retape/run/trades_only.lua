-- retape.run.trades_only — a replay into a scratch store read only for its
-- trades (replay.open{trades_only = true}, a sweep's variants): no
-- per-ticker versions, the trades held as their last bucket left them and
-- written every replay.HOLD_BUCKETS buckets and at the end, so the store's
-- trades are those of a full run.  (stage_bucket, run/bucket.lua, holds them.)
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local scopem = require "retape.scope"

local Replay = {}

-- Refuses (a param error) what a store of trades only cannot take: it
-- keeps no versions to continue from, so one whole run into a new store.
function Replay:check_trades_only_run(params)
  local st = self.store
  if self.trades_only_ran or params.resume or params.refresh or params.rebuild or params.limit or params.offset
     or st:cursor() or #st:tickers() > 0 then
    scopem.param_error("trades_only: one whole run into a new, empty store (it keeps no versions to continue from)")
  end
  self.trades_only_ran = true
end

-- Trades only: the trades touched since the last put, each as its last
-- bucket left it, queued in key order (a later put of a trade replaces an
-- earlier one, so the store ends with what a full run writes); every
-- replay.HOLD_BUCKETS buckets, so an open trade is encoded once an hour instead
-- of once a bucket, and the copies held stay few.
function Replay:put_held_trades()
  local held = self.held_trades
  local keys, by_key = {}, {}
  for id, t in pairs(held) do
    local k = store.trade_key(id)
    keys[#keys + 1], by_key[k] = k, t
  end
  table.sort(keys)
  local st = self.store
  for _, k in ipairs(keys) do
    local t = by_key[k]
    local ok, err = pcall(st.put_trade, st, t)
    if not ok then error(self:trade_error(t, err), 0) end
  end
  self.held_trades, self.held_buckets = {}, 0
end

function Replay:store_held_trades()
  if not self.held_trades then return end
  self:put_held_trades()
  self.store:write(self.unlogged)
end

return Replay
