-- parity_case.lua — writes the expected files of the parity cases under
-- tests/cases/ straight from the references in data/parity/ (not
-- from retape's output), so these cases check retape against the original.
--
--   retape run tools/parity_case.lua [DATA_DIR]   (default data/)
local retape = require "retape"
local regress = require "retape.regress"
local cjson = require "cjson"
local data = ... or "data"
local function null(v) if v == cjson.null then return nil end return v end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

for _, day in ipairs { "2026-02-02", "2026-02-03" } do
  local records = {}
  for line in io.lines(data .. "/parity/stages-" .. day .. ".jsonl") do
    local r = cjson.decode(line)
    records[#records + 1] = { ts = math.tointeger(r.ts), ticker = r.ticker, stage = null(r.stage),
                              finalStage = null(r.finalStage), forced = null(r.forced) }
  end
  local lanes, trades = regress.render(records, {})
  local dir = "tests/cases/parity-" .. day .. "/expected"
  os.execute("mkdir -p " .. dir)
  write(dir .. "/lanes.txt", lanes)
  write(dir .. "/trades.txt", trades)
end

local f = assert(io.open(data .. "/parity/levels-2026-02-02.json"))
local levels = cjson.decode(f:read("a"))
f:close()
local records = {}
for _, s in ipairs(levels.stages) do
  records[#records + 1] = { ts = math.tointeger(s[2]), ticker = s[1], stage = null(s[3]), finalStage = null(s[4]),
                            forced = null(s[5]) }
end
local trades = {}
for _, t in ipairs(levels.trades) do
  -- the reference ids embed a random part; order by entry time, then ticker
  t.id = t.ticker
  t.entry_ts = math.tointeger(t.entry_ts)
  trades[#trades + 1] = retape.store.nulls_to_nil(t)
end
local lanes, trades_text = regress.render(records, trades)
os.execute("mkdir -p tests/cases/parity-levels-2026-02-02/expected")
write("tests/cases/parity-levels-2026-02-02/expected/lanes.txt", lanes)
write("tests/cases/parity-levels-2026-02-02/expected/trades.txt", trades_text)
print("parity cases written from the references")
