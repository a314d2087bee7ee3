# retape test: pass, fail with a first-divergence report, --diff, --bless, --repeat; retape explain
mkdir -p $T/cases && cp -r tests/cases/parity-2026-02-02 $T/cases/p
run $RETAPE test $T/cases/p
sed -i 's|  rules = "worker-2026-02-02",|  rules = "worker-2026-02-02",\n  overrides = { ["corridor.long.ltf_max"] = 21 },|' $T/cases/p/case.lua
run $RETAPE test $T/cases/p
run $RETAPE test $T/cases/p --diff > $T/o; head -8 $T/o
run $RETAPE test --bless $T/cases/p
run $RETAPE test $T/cases/p
diff tests/cases/parity-2026-02-02/expected/lanes.txt $T/cases/p/expected/lanes.txt | head -5
# a bad override and a missing case
sed -i 's|\["corridor.long.ltf_max"\] = 21|["corridor.long.nope"] = 1|' $T/cases/p/case.lua
run $RETAPE test $T/cases/p
run $RETAPE test $T/nowhere
# nondeterministic rules are caught (by --repeat, or already by the expected files)
mkdir -p $T/cases/flaky && cp tests/cli/fixtures/flaky-rules.lua $T/cases/flaky/rules.lua
cat > $T/cases/flaky/case.lua <<'CASE'
return { receipts = "receipts.jsonl.gz", rules = "rules.lua", runs = { { date = "2026-02-02" } } }
CASE
cp tests/fixtures/day-2026-02-02.jsonl.gz $T/cases/flaky/receipts.jsonl.gz
run $RETAPE test --bless $T/cases/flaky 2>&1 | tail -1
for i in 1 2 3; do run $RETAPE test $T/cases/flaky --repeat 3 2>/dev/null; done | grep -c '^not ok\|^exit: 1$'
# the sandbox: rule code cannot keep state in globals
printf 'local R = require("retape").rules.load("worker-2026-02-02")\ncounter = 1\nreturn R\n' > $T/cases/flaky/rules.lua
run $RETAPE test $T/cases/flaky
# explain one receipt
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE explain --db $T/r.db --date 2026-02-02 --ticker CVNA --at 09:40
run $RETAPE replay --db $T/r.db --date 2026-02-02 --quiet > /dev/null
run $RETAPE explain --db $T/r.db --date 2026-02-02 --ticker CVNA --at 09:40
run $RETAPE explain --state $T/r.db.state --ticker CVNA --at "2026-02-02 09:40" --json > $T/o; head -c 120 $T/o; echo
run $RETAPE explain --db $T/r.db --ticker CVNA --receipt CVNA:1770043200000:590bcb34 > $T/o; head -1 $T/o
run $RETAPE explain --db $T/r.db --date 2026-02-02 --ticker NOPE --at 09:40
run $RETAPE explain --db $T/r.db --date 2026-02-02 --ticker CVNA
run $RETAPE explain --db $T/r.db --ticker CVNA --at 25:30
