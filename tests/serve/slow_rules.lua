-- slow_rules.lua — the default ruleset, made slow on purpose (a CPU loop
-- per receipt, inside the sandbox budget) so that a served replay call lasts
-- long enough for the tests to see 409 while it runs.
local R = require("retape.rules").load("default")
R.name = "slow-default"
local step = R.step
R.step = function(...)
  local x = 0
  for i = 1, 1500000 do x = x + i end
  return step(...)
end
return R
