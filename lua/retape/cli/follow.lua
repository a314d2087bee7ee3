-- `replay --follow`, and `replay` without a day on a store kept by it:
-- the live engine (retape.live) over the receipts file.  Used by
-- retape.cli.replay.
local args = require "retape.args"
local core = require "retape.core"
local common = require "retape.cli.common"
local write_plan = require "retape.cli.write_plan"

local stderr, group = common.stderr, common.group

local M = {}

-- The ruleset, overrides and receipts file: as plan() decides for any
-- write (the ones given, else the store's recorded ones; a mismatch refused).
function M.replay(o, out, fail, options)
  if o.poll < 1 then args.usage_error("--poll must be a positive integer") end
  local state = common.state_dir(o)
  local st
  if require("retape.fs").kind(state .. "/CURRENT") then
    local serr
    st, serr = require("retape.store").open(state, true)
    if not st then return fail("replay", common.held_message(state, serr)) end
  end
  local ok_plan, p, refused = write_plan.protected(st, o, state, options)
  if st then st:close() end
  if not ok_plan then
    if args.is_usage_error(p) then error(p, 0) end
    return fail("replay", tostring(p))
  end
  if not p then return refused end
  local STOP = setmetatable({}, { __tostring = function() return "stopped" end })
  local stop
  if o.follow then core.hold_stop_signals() end
  local lv, err = require("retape.live").open {
    db = p.db, state = state, rules = p.R, threads = o.threads, script_version = p.script_version,
    on_error = function(m) if not o.quiet then stderr("retape replay: %s\n", m) end end,
    -- a stop signal ends a long pass at a bucket boundary (the next start does it again)
    on_bucket = o.follow and function()
      stop = stop or core.wait_stop_signal(0)
      if stop then error(STOP, 0) end
    end or nil,
  }
  if not lv then return fail("replay", err) end
  local total = { rows = 0, recomputed = 0, passes = 0 }
  local function pass()
    local ok, done = pcall(lv.catch_up, lv)
    if not ok then
      if done == STOP then return end
      lv:close()
      error(done, 0)
    end
    if not done then return end
    total.passes, total.rows, total.recomputed = total.passes + 1, total.rows + done.rows, total.recomputed + done.recomputed
    local days = {}
    for d in pairs(done.days) do days[#days + 1] = d end
    table.sort(days)
    if not o.quiet or not o.follow then
      out("replayed %s: %s rows in %d run(s), %d later ticker-buckets recomputed (receipts up to rowid %d)",
        #days > 0 and table.concat(days, ", ") or "no session", group(done.rows), done.runs, done.recomputed, done.rowid)
      io.stdout:flush()
    end
  end
  pass()
  if o.follow then
    if not o.quiet then stderr("retape replay: following %s (SIGINT or SIGTERM to stop)\n", p.db) end
    while not stop do
      stop = core.wait_stop_signal(o.poll)
      if not stop then pass() end
    end
  elseif total.passes == 0 then
    out("nothing new since the last run")
  end
  local mark = lv.st:follow()
  lv:close()
  if o.follow then
    stderr("retape replay: %s: stopped cleanly (%d passes, %s rows; receipts replayed up to rowid %s)\n", tostring(stop),
      total.passes, group(total.rows), mark and math.tointeger(mark.rowid) or 0)
  end
  return 0
end

return M
