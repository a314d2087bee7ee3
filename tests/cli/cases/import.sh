run $RETAPE import --db $T/r.db tests/fixtures/mixed.jsonl tests/fixtures/dump.sql
run $RETAPE import --db $T/r.db --quiet tests/fixtures/mixed.jsonl
run $RETAPE days --db $T/r.db
run $RETAPE days --db $T/r.db --all-versions
run $RETAPE import --db $T/r.db $T/missing.jsonl
