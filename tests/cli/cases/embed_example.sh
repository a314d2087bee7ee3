run $RETAPE import --db $T/r.db --quiet tests/fixtures/mixed.jsonl
run ${RETAPE%retape}examples/embed $T/r.db $T/state
run ${RETAPE%retape}examples/embed $T/r.db $T/state
