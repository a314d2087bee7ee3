-- elite-pullback.lua — a user ruleset that extends the default one with one
-- more enter path and changes nothing else:
--   P6: a pullback (HTF bull / LTF pullback, or the bear mirror) in the
--       corridor, flagged momentum_elite, with a score of at least 72.
--
--   retape replay --db receipts.db --date 2026-02-02 --rules examples/rules/elite-pullback.lua
local rules = require "retape.rules"
local R = rules.load("default")
R.name = "elite-pullback"
R.config.elite_pullback = { score = 72 }

local classify = R.classify
function R.classify(d)
  local stage, rule = classify(d)
  if stage == "enter_now" or (d.move_status and d.move_status.status ~= "NONE") then return stage, rule end
  local pullback = d.state == "HTF_BULL_LTF_PULLBACK" or d.state == "HTF_BEAR_LTF_PULLBACK"
  local elite = type(d.flags) == "table" and d.flags.momentum_elite == true
  if pullback and elite and R.corridor_side(d) and (d.score or 0) >= R.config.elite_pullback.score then
    return "enter_now", "P6 elite pullback"
  end
  return stage, rule
end

return R
