-- retape.explain — why one stored receipt landed in its lane.  Reads the
-- run the store holds: the ticker's stored state just before the receipt's
-- bucket and the rules and config the store recorded (or, for a "what if",
-- a ruleset given by the caller), then replays the
-- ticker's receipts of that bucket up to the receipt through the replay's
-- own step (rp:explain_receipt, lua/retape/run/step.lua: the same working
-- state, stamping, sandbox guard and limits) and asks the ruleset to
-- explain its step (R.explain_step).  So it always agrees with
-- `retape lanes` and `retape trades` of the same store.
local source = require "retape.source"
local manifest = require "retape.manifest"
local scopem = require "retape.scope"
local replay = require "retape.replay"
local json = require "retape.json"

local M = {}

-- receipt(st, src, T, {at = ms} | {receipt = id} [, R]) -> explanation | nil,
-- message.  R: the ruleset to explain with (default: the store's recorded
-- one; another is a "what if").
function M.receipt(st, src, T, target, R)
  local id = st:identity()
  if not id then return nil, "the store holds no run" end
  R = R or manifest.store_rules(st)
  if not R.explain_step then return nil, string.format("ruleset '%s' cannot explain its steps (R.explain_step)", R.name) end

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

  -- the receipts of the bucket up to it, as a replay of the store walks them
  local rp <close>, err = replay.open { db = src, state = st, rules = R, script_version = id.script_version or false,
                                       manifest = false }
  if not rp then return nil, err end
  local row, why, stage, final, forced, rule = rp:explain_receipt(T, bucket, entry[3])
  if not row then return nil, string.format("receipt %s is no longer in the receipts file", entry[3]) end
  -- the rule's answer is read (printed, encoded) outside its guard: plain
  -- data within the values the engine keeps of a rule's value, or refused
  local copy, err = require("retape.rules.load").plain_value(why, "R.explain_step's explanation")
  if not copy then return nil, err end
  why = copy
  local answers = { stage, final, forced, rule }
  for i = 1, 4 do
    local x = answers[i]
    if x ~= nil and x ~= json.null and type(x) ~= "string" and type(x) ~= "number" and type(x) ~= "boolean" then
      return nil, string.format("R.explain_step returned a %s as its %s (a string, number or boolean is expected)",
                                type(x), ({ "stage", "final stage", "forcing rule", "rule" })[i])
    end
  end
  why.stage, why.rule, why.final_stage, why.forced = stage, rule, final, forced
  why.receipt_id, why.ts, why.rules = row.receipt_id, row.ts, R.name
  why.stored_stage = entry[2]
  return why
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
