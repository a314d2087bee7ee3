-- raw_lines.lua FILE — the bodies of a day_bodies.lua file as raw webhook
-- lines (what `retape import` reads as TradingView sent them).
local json = require("retape").json
for line in io.lines((...)) do print(json.decode(line).body) end
