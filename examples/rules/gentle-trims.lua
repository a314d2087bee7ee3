-- gentle-trims.lua — a user ruleset that keeps every rule of the default
-- one and only changes the trim ladder: a third at completion 0.70, half at
-- 0.85, never more than 60 % of the position (the default ladder trims 25,
-- 50 or 75 %, capped at 95 %).
local R = require("retape.rules").load("default")
R.name = "gentle-trims"
R.config.trade.trim_ladder = { { "completion", 0.85, 0.50 }, { "completion", 0.70, 0.33 } }
R.config.trade.trim_default = 0.20
R.config.trade.trim_cap = 0.60
return R
