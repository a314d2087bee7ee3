-- retape.explain — why one stored receipt landed in its lane.  Reads the
-- run the store holds: the ticker's stored state just before the receipt's
-- bucket and the rules and config the store recorded (or, for a "what if",
-- a ruleset given by the caller), then replays the
-- ticker's receipts of that bucket on a scratch book up to the receipt and
-- asks the ruleset to explain its step (R.explain_step).  So it always
-- agrees with `retape lanes` and `retape trades` of the same store.
local source = require "retape.source"
local statem = require "retape.state"
local bookm = require "retape.book"
local manifest = require "retape.manifest"
local scopem = require "retape.scope"

local M = {}

-- Calls rule code: a rule file's under the sandbox limits, as a replay does.
local function rule_call(R, fn, ...)
  if R.trusted then return fn(...) end
  return require("retape.sandbox").guard(require("retape.sandbox").DEFAULT_LIMITS, fn, ...)
end

-- receipt(st, src, T, {at = ms} | {receipt = id} [, R]) -> explanation | nil,
-- message.  R: the ruleset to explain with (default: the store's recorded
-- one; another is a "what if").
function M.receipt(st, src, T, target, R)
  local id = st:identity()
  if not id then return nil, "the store holds no run" end
  R = R or manifest.store_rules(st)
  if not R.explain_step then return nil, string.format("ruleset '%s' cannot explain its steps (R.explain_step)", R.name) end
  local schema = statem.compile(R)

  -- the version that holds the receipt, and the receipt in it
  local bucket, rec, entry
  if target.receipt then
    for _, v in ipairs(st:versions(T)) do
      for _, e in ipairs(v.rec.lanes or {}) do
        if e[3] == target.receipt then bucket, rec, entry = v.bucket, v.rec, e end
      end
      if entry then break end
    end
    if not entry then return nil, string.format("the store holds no receipt %s of %s", target.receipt, T) end
  else
    bucket, rec = st:version_before(T, target.at + 1)
    if rec then
      for _, e in ipairs(rec.lanes or {}) do if e[1] <= target.at then entry = e end end
    end
    if not entry then return nil, string.format("the store holds no receipt of %s at or before that time", T) end
  end

  -- the state before the bucket, clean-slate marks applied
  local prev_b, prev = st:version_before(T, bucket)
  local state = schema.adopt(prev and prev.state)
  local open = prev and prev.open and rule_call(R, R.trade_is_open, prev.open) and prev.open or false
  if st:reset_between(T, prev_b or -1, bucket) then state, open = schema.cleared(state), false end

  local taken = {}
  local book = bookm.new({
    open = function() return open end,
    set_open = function(_, t) open = t end,
    taken = function(tid) return taken[tid] or st:has_trade(tid) end,
    changed = function(t, is_new) if is_new then taken[t.id] = true end end,
    is_open = R.trade_is_open,
  }, R.config and R.config.trade and R.config.trade.cash or 1e9)
  local cur <close> = assert(src:cursor(bucket, { from = bucket, to = bucket, tickers = { T },
    script_version = id.script_version or nil }))
  while true do
    local rows = cur:fetch(64)
    if #rows == 0 then break end
    for _, row in ipairs(rows) do
      if type(row.payload) == "table" then
        local p = row.payload
        p.ticker = T
        book.begin(T)
        if row.receipt_id == entry[3] then
          local why, stage, final, forced, rule = rule_call(R, R.explain_step, p, row, state, open or nil)
          why.stage, why.rule, why.final_stage, why.forced = stage, rule, final, forced
          why.receipt_id, why.ts, why.rules = row.receipt_id, row.ts, R.name
          why.stored_stage = entry[2]
          return why
        end
        rule_call(R, R.step, p, row, state, open or nil)
        rule_call(R, R.simulate, p, row.ts, book)
        state = schema.extract(p)
      end
    end
  end
  return nil, string.format("receipt %s is no longer in the receipts file", entry[3])
end

-- explain(state_store, db_path, ticker, target [, R]) -> explanation | nil, message
function M.explain(st, db, T, target, R)
  local src, err = source.open(db)
  if not src then return nil, err end
  local ok, why, msg = pcall(M.receipt, st, src, scopem.ticker_list(T)[1], target, R)
  src:close()
  if not ok then return nil, tostring(why) end
  return why, msg
end

return M
