-- levels.lua — adds the parity reference's synthetic price levels to real
-- receipts (see lua/retape/levels.lua for the recipe), so trades can open.
--
--   retape run scripts/levels.lua IN.db OUT.db DATE [DATE...]
local retape = require "retape"
local levels = require "retape.levels"
local args = { ... }
if #args < 3 then
  io.stderr:write("usage: retape run scripts/levels.lua IN.db OUT.db DATE [DATE...]\n")
  return 2
end
local src_db, out_db = args[1], args[2]
local days = {}
for i = 3, #args do days[#days + 1] = { day = args[i], synthetic_inputs = levels.synth(src_db, args[i]) } end
local dir = assert(retape.fs.tempdir("retape-levels"))
local db, n = levels.build(src_db, dir, days)
assert(os.rename(db, out_db))
retape.fs.remove_tree(dir)
print(string.format("%s: %d receipts of %s with synthetic levels", out_db, n, table.concat(args, ", ", 3)))
return 0
