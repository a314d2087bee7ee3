# replay: summary, --json endpoint answers, paging, resume, clean slate, trace, errors
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --trace $T/trace.jsonl | grep -v '^time '
head -c 400 $T/trace.jsonl; echo
wc -l < $T/trace.jsonl
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --resume --json
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --clean-slate --json
run $RETAPE replay --db $T/lv.db --state $T/paged --date 2026-02-02 --bucket 09:30 --limit 5 --json
run $RETAPE replay --db $T/lv.db --state $T/paged --date 2026-02-02 --bucket 09:30 --limit 5 --offset 20 --json
run $RETAPE replay --db $T/lv.db --state $T/one --date 2026-02-02 --ticker CLS,INTC --json
run $RETAPE replay --db $T/lv.db --state $T/range --from 2026-02-02 --to 2026-02-03 --json
# errors
run $RETAPE replay --date 2026-02-02
run $RETAPE replay --db $T/lv.db --date 2026-02-30
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --limit 5
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --rules nope
run $RETAPE replay --db $T/missing.db --date 2026-02-02
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --bucket 9h
