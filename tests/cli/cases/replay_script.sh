# scripts/replay-ingest.lua: the original client loop, knobs as arguments or environment
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
$RETAPE run scripts/replay-ingest.lua DB=$T/lv.db DATE=2026-02-02 LIMIT=25 LEDGER=$T/ledger.db > $T/out.txt 2>&1; echo "exit: $?"
head -4 $T/out.txt; tail -3 $T/out.txt
DATE=2026-02-02 TICKER=CLS BUCKET=15:30 CLEAN_SLATE=0 run $RETAPE run scripts/replay-ingest.lua DB=$T/lv.db
run $RETAPE run scripts/replay-ingest.lua DATE=2026-02-02
run $RETAPE run scripts/replay-ingest.lua DB=$T/lv.db bogus
