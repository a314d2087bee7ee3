-- retape.embed — what the public C function retape_replay() runs: one
-- replay of a scope into a state store, the store closed afterwards; the
-- endpoint's response object comes back (rowsProcessed, tradesCreated, ...).
local M = {}

-- replay{db=, state=, date= | from=, to=, rules=, ticker=, clean_slate=,
-- resume=, threads=} -> response, or nil and a message for bad parameters or a file
-- that cannot be opened.  A failing rule raises (file:line and traceback).
function M.replay(p)
  local replay = require "retape.replay"
  local rp, err = replay.open { db = p.db, state = p.state or (p.db .. ".state"), rules = p.rules,
                                  threads = p.threads }
  if not rp then return nil, tostring(err) end
  local ok, res = pcall(rp.run, rp, { date = p.date, from = p.from, to = p.to, ticker = p.ticker,
                                      clean_slate = p.clean_slate or nil, resume = p.resume or nil })
  rp:close()
  if not ok then
    if replay.is_param_error(res) then return nil, tostring(res) end
    error(res, 0)
  end
  return res
end

return M
