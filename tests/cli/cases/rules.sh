# overrides (--set, --config) checked against the config; run manifests; diff of two variants
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --set corridor.long.ltf_mx=25
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --set corridor.long.ltf_max=wide
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --set fixes.cooldown.enter_ms=1.5
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --set nonsense
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --config tests/cli/fixtures/overrides.lua
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --rules worker-2026-02-02 --set fixes.flat_on_zero=true
test -d $T/x && echo "a store was created" || echo "nothing ran"
# parity vs default vs a variant, then diff
run $RETAPE replay --db $T/lv.db --state $T/parity --rules worker-2026-02-02 --date 2026-02-02 --quiet | grep -o '[0-9]* trades created'
run $RETAPE replay --db $T/lv.db --state $T/default --date 2026-02-02 --quiet | grep -o '[0-9]* trades created'
run $RETAPE replay --db $T/lv.db --state $T/variant --date 2026-02-02 --quiet --config tests/cli/fixtures/overrides-ok.lua --set classify.p1_score=74 | grep -o '[0-9]* trades created'
run $RETAPE runs --state $T/variant | sed -e 's/20[0-9-]* [0-9:]* ET/TIME/' -e 's/ [0-9]*\.[0-9] s / N.N s /'
run $RETAPE runs --state $T/variant --json | grep -o '"overrides":{[^}]*}'
run $RETAPE diff $T/parity $T/default
run $RETAPE diff $T/default $T/variant --json > $T/o; head -c 300 $T/o; echo
run $RETAPE diff $T/parity
run $RETAPE trades --state $T/default --by day
run $RETAPE trades --state $T/parity --by day --day-key ny
run $RETAPE replay --db $T/lv.db --state $T/enum --date 2026-02-02 --set fixes.archive_fill=lvl
