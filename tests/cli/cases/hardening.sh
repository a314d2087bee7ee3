# issue 11: limits that cannot be turned off, rulesets resolved only from the Lua layer,
# a hostile rule stopped with the limit, file:line, receipt and ticker; import from stdin,
# truncated .gz reported with totals
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02 --max-instructions 0
run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02 --max-memory-mb -1
mkdir -p $T/cwd/rules && printf 'return {}\n' > $T/cwd/rules/evil.lua && : > $T/cwd/rules/native.so
(cd $T/cwd && run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02 --rules evil)
(cd $T/cwd && run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02 --rules native)
cat > $T/bomb.lua <<'RULE'
local R = require("retape").rules.load("worker-2026-02-02")
local classify = R.classify
R.classify = function(d)
  if d.ticker == "CVNA" then local s = string.rep("x", 2^30) end
  return classify(d)
end
return R
RULE
run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02 --rules $T/bomb.lua --quiet 2>&1 | grep -E '^retape: receipt|bomb\.lua:[0-9]+: in|^exit: '
printf 'while true do end\n' > $T/loop.lua
run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02 --rules $T/loop.lua
run $RETAPE import --db $T/stdin.db - < tests/fixtures/mixed.jsonl
head -c 3000 tests/fixtures/day-2026-02-02.jsonl.gz > $T/cut.jsonl.gz
run $RETAPE import --db $T/cut.db --quiet $T/cut.jsonl.gz
