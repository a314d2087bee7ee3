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
# scopes that make sense or a clear error (exit 2)
run $RETAPE replay --db $T/lv.db
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --ticker CLSS
run $RETAPE replay --db $T/lv.db --from 2026-02-02
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --bucket 09:32
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --max-instructions 0
run $RETAPE lanes --state $T/lv.db.state --date 2026-02-02 --at 25:30
# a repeated day replaces itself: same trades, nothing piles up, nothing stale
run $RETAPE trades --state $T/lv.db.state --json > $T/t1.json
run $RETAPE replay --db $T/lv.db --date 2026-02-02 | grep -v '^time '
run $RETAPE trades --state $T/lv.db.state --json > $T/t2.json
cmp $T/t1.json $T/t2.json && echo "trades identical after the repeated day"
# a one-bucket clean-slate re-run with --no-cascade leaves the ticker's later buckets stale; --refresh recomputes them
run $RETAPE replay --db $T/lv.db --state $T/one --ticker CLS --date 2026-02-02 --bucket 10:00 --clean-slate --no-cascade --json
run $RETAPE status --state $T/one
run $RETAPE lanes --state $T/one 2>&1 >/dev/null | cut -c1-60
run $RETAPE replay --db $T/lv.db --state $T/one --refresh > $T/o; head -1 $T/o
run $RETAPE status --state $T/one
# --durable bucket (each bucket through the store's log) and run (the default, above) give the same results
run $RETAPE replay --db $T/lv.db --state $T/by_bucket --date 2026-02-02 --durable bucket --quiet
run $RETAPE diff $T/lv.db.state $T/by_bucket
run $RETAPE replay --db $T/lv.db --state $T/x --date 2026-02-02 --durable always
