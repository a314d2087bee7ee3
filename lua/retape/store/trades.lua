-- retape.store.trades — a store's trades: one JSON record per trade, keyed
-- by ticker and entry time (the export format).
local json = require "retape.json"
local keys = require "retape.store.keys"
local P_TRADE, b13, tprefix, decode = keys.P_TRADE, keys.b13, keys.tprefix, keys.decode

-- Adds the room's methods to Store and its functions to M (retape.store).
return function(Store, M)
  -- (bounded: a trade is the rules' value, and shared tables in it would
  -- otherwise expand without limit)
  function M.encode_trade(t, order) return json.encode(t, order, json.KEPT_VALUES_MAX) end
  -- Whether encode_trade(t) surely succeeds (false: not sure; encode it).
  function M.trade_fits(t) return json.fits(t, json.KEPT_VALUES_MAX) end

  function M.decode_trade(text, where)
    local t = decode(text, where)
    if type(t.id) ~= "string" then error(string.format("store: %s holds no valid trade (no id)", where), 0) end
    return t
  end

  function Store:put_trade(t) self.batch:put(M.trade_key(t.id), M.encode_trade(t, self.trade_order)) end
  function Store:trade_text(id) return self.kv:get(M.trade_key(id)) end
  function Store:put_trade_text(id, text) self.batch:put(M.trade_key(id), text) end
  function Store:has_trade(id) return self.kv:get(M.trade_key(id)) ~= nil end
  function Store:trade(id)
    local key = M.trade_key(id)
    local text = self.kv:get(key)
    return text and M.decode_trade(text, key) or nil
  end

  -- Queues the deletion of T's trades entered in [from, to]; returns how many.
  function Store:delete_trades(T, from, to)
    local n = 0
    for k in self.kv:scan(tprefix(T), tprefix(T) .. b13(from)) do
      local entry = tonumber(k:sub(#tprefix(T) + 1, #tprefix(T) + 13))
      if to and entry > to then break end
      self.batch:delete(k)
      n = n + 1
    end
    return n
  end

  -- Iterates every stored trade (decoded), by ticker then entry time:
  -- fn(trade, key, entry_ms).
  function Store:each_trade(fn)
    for k, v in self.kv:scan(P_TRADE) do fn(M.decode_trade(v, k), k, tonumber(k:sub(-18, -6))) end
  end
end
