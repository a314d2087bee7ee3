-- retape.run.step — one receipt through the ruleset, for a replay and for
-- `retape explain` alike: the C step (core/lua_step.c, `retape.step`) set
-- up with the sandbox's guard and the replay's messages, and the explain
-- of one receipt after the same step over the receipts before it.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local sandbox = require "retape.sandbox"
local stepc = require "retape.step"

local Replay = {}

-- What a rule error says: the receipt and ticker, the rule's file:line
-- and its traceback (a limit error: which limit).  Raises.
local function rule_failed(row, e)
  error(string.format("receipt %s (%s): %s", row.receipt_id, row.ticker, sandbox.describe(e)), 0)
end

-- One receipt runs in C (core/lua_step.c: step.walk): the ticker's working
-- record from self.ticks (self:ticker on its first receipt of the run), the
-- ruleset's step and simulate in protected calls under the sandbox limits,
-- the declared state extracted, its view fields packed (the payload dies with
-- the receipt), the receipt's lane logged; a malformed
-- payload, or one holding a declared state field of another type
-- (schema.payload_error), is reported (self:report) and skipped.
stepc.setup { guard = sandbox.guard, traceback = sandbox.traceback, extract = require("retape.jsonenc").extract,
              pick = store.pack_view, rule_failed = rule_failed }

-- Calls rule code for the receipt `row` as the C step calls step and
-- simulate: protected, under the sandbox guard when the replay has limits
-- (else with the rule's traceback); a failure raises through rule_failed.
local function call_rule(rp, row, fn, ...)
  local r
  if rp.limits then r = table.pack(pcall(sandbox.guard, rp.limits, fn, ...))
  else r = table.pack(xpcall(fn, sandbox.traceback, ...)) end
  if not r[1] then rule_failed(row, r[2]) end
  return table.unpack(r, 2, r.n)
end

-- explain_receipt(T, bucket, receipt_id) -> row, why, stage, final, forced,
-- rule, or nil when the receipts file no longer holds the receipt: the
-- receipt's row and the ruleset's explanation (R.explain_step) of that receipt of ticker T in `bucket`,
-- from the working state a replay has there.  T starts the bucket as in a
-- run (self:ticker: its stored version before it, clean-slate marks), its
-- receipts before this one go through the replay's own step (step.walk:
-- the same decoding, stamping, guard, limits and state extraction), and
-- this one is stamped as the step stamps it and explained under the same
-- guard.  Reads the store, writes nothing (the bucket is never staged).
function Replay:explain_receipt(T, bucket, receipt_id)
  self:begin_run(false)
  self:begin_bucket()
  local counters = { rows = 0, seen = 0, errors = 0, trades = 0 }
  local cur <close> = assert(self.src:cursor(bucket, { from = bucket, to = bucket, tickers = { T },
    script_version = self.script_version }))
  while true do
    local rows = cur:fetch(self.batch, self.fields)
    if #rows == 0 then return nil end
    local before, target = {}, nil
    for _, row in ipairs(rows) do
      if row.receipt_id == receipt_id and type(row.payload) == "table" and not row.error then target = row; break end
      before[#before + 1] = row
    end
    stepc.walk(self, before, bucket, counters)
    if target then
      local tk = self:ticker(T, bucket)
      local p = target.payload
      p.ticker = target.ticker
      self.book.begin(T)
      self.current = tk
      return target, call_rule(self, target, self.R.explain_step, p, target, tk.state, tk.open or nil)
    end
  end
end

return Replay
