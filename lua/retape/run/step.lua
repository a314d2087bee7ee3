-- retape.run.step — one receipt through the ruleset: the C step
-- (core/lua_step.c, `retape.step`) set up with the sandbox's guard and the
-- replay's messages.
-- Methods of a replay (see retape.replay: how run/ modules add them).
local store = require "retape.store"
local sandbox = require "retape.sandbox"
local stepc = require "retape.step"

local Replay = {}

-- What a rule error says: the receipt and ticker, the rule's file:line
-- and its traceback (a limit error: which limit).  Raises.
local function rule_failed(row, e)
  local text = sandbox.is_limit_error(e) and ((not e.traceback and e.where and e.where .. ": " or "") .. e.message
    .. (e.traceback or "")) or tostring(e)
  error(string.format("receipt %s (%s): %s", row.receipt_id, row.ticker, text), 0)
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


return Replay
