-- mkdb.lua OUT_DIR DAY — receipts of the bundled data with the synthetic
-- levels of retape.levels merged in for DAY (so that trades open), in
-- OUT_DIR/levels.db; prints the path.
local dir, day = ...
local levels = require "retape.levels"
local import = require "retape.import"
local data = os.getenv("DATA") or "data"
local all = dir .. "/all.db"
assert(import.run(all, { data .. "/receipts-2025-12-10_2026-02-09.jsonl.gz" }, { report = function(m) error(m) end }))
local db = levels.build(all, dir, { day = day, synthetic_inputs = levels.synth(all, day) })
print(db)
