# pending work: a killed run is flagged, finished by the next replay of any scope; status per ticker and bucket
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02 > /dev/null
run $RETAPE run tests/lua/kill_after.lua $T/lv.db $T/s 2026-02-02 30 2>/dev/null
run $RETAPE status --state $T/s | grep -v '^rules'
run $RETAPE replay --db $T/lv.db --state $T/s --date 2026-02-02 --ticker CVNA --quiet --rules worker-2026-02-02
run $RETAPE replay --db $T/lv.db --state $T/s --date 2026-02-02 --ticker CVNA --bucket 10:00 --quiet | head -3
run $RETAPE status --state $T/s | grep -v '^rules'
run $RETAPE replay --db $T/lv.db --state $T/s --resume --quiet
run $RETAPE replay --db $T/lv.db --state $T/p --date 2026-02-02 --bucket 09:30 --limit 5 --quiet > /dev/null
run $RETAPE status --state $T/p | grep '^  '
