-- A user ruleset that keeps one extra field per ticker (declared in
-- R.state.fields): a receipt counter that holds back every third enter_now
-- to setup_watch.  Its results must not depend on page sizes, a crash and
-- --resume, or the days being replayed in another order (retape.state).
local R = require("retape.rules").load("default")
R.name = "state-extra-counter"
R.state.fields.seen = "number"
local step = R.step
function R.step(p, row, ex, open_trade)
  p.seen = (ex.seen or 0) + 1
  local stage, final, forced, rule = step(p, row, ex, open_trade)
  if p.seen % 3 == 0 and final == "enter_now" then
    p.kanban_stage = "setup_watch"
    return stage, "setup_watch", forced, "every third enter_now held back"
  end
  return stage, final, forced, rule
end
return R
