# report, days --json/--csv, lanes --csv/--json, unified time formats, diff
# naming A and B, its receipts warning and exit status.
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
run $RETAPE days --db $T/lv.db --json
run $RETAPE days --db $T/lv.db --csv
run $RETAPE days --db $T/lv.db --json --csv
run $RETAPE replay --db $T/lv.db --state $T/a --date 2026-02-02 --quiet >/dev/null 2>&1
run $RETAPE replay --db $T/lv.db --state $T/a2 --date 2026-02-02 --quiet >/dev/null 2>&1
run $RETAPE replay --db $T/lv.db --state $T/p --date 2026-02-02 --quiet --rules worker-2026-02-02 >/dev/null 2>&1
run $RETAPE replay --db $T/lv.db --state $T/half --date 2026-02-02 --ticker CLS,INTC --quiet >/dev/null 2>&1
run $RETAPE lanes --state $T/a --date 2026-02-02 --at 10:00 --csv
run $RETAPE lanes --state $T/a --json | tr '{' '\n' | grep -c '"ticker"'
run $RETAPE lanes --state $T/a --json | tr -d '[]' | tr ',' '\n' | grep -c '^"[A-Z.-]*"$'
# times: New York with the zone in text, ISO-8601 with the offset in CSV/JSON
run $RETAPE trades --state $T/a --ticker CRVS
run $RETAPE trades --state $T/a --ticker CRVS --csv
run $RETAPE trades --state $T/a --by history --ticker CRVS
run $RETAPE trades --state $T/a --by history --ticker CRVS --json | grep -o '"time":"[^"]*"'
# Trade By Day marks open positions at each day's close when given the receipts
run $RETAPE trades --state $T/a --db $T/lv.db --by day | sed -n '/^ticker/,+3p'
# the report: one file, no network reference, the data model inside
run $RETAPE report --state $T/a -o $T/a.html | sed "s/, [0-9]* bytes$/, N bytes/"
grep -c 'id="report-data"' $T/a.html
grep -Eo '(src|href)="[a-z]+:' $T/a.html | sort -u
grep -o '"win_rate":[0-9.]*' $T/a.html
run $RETAPE report --state $T/a -o $T/vs.html --vs $T/p >/dev/null && grep -o '"same_receipts":[a-z]*' $T/vs.html
run $RETAPE report --state $T/a -o $T/vs2.html --vs $T/half >/dev/null && grep -o '"same_receipts":[a-z]*' $T/vs2.html
# the statistics of a store, and another capital model over the same trades
run $RETAPE stats --state $T/a
run $RETAPE stats --state $T/a --set capital.start=10000 --set capital.sizing=equity_pct --set capital.fee_per_order=1 --set capital.slippage_bps=5
run $RETAPE stats --state $T/a --json | tr ',' '\n' | grep -E '^"(max_drawdown|sharpe|net_pnl|expectancy)"'
run $RETAPE stats --state $T/a --set capital.fee_bsp=1
run $RETAPE stats --state $T/a --set late.phase=0.5
run $RETAPE stats --state $T/a --set capital.sizing=kelly
run $RETAPE report -o $T/x.html
run $RETAPE report --state $T/nope -o $T/x.html
run $RETAPE report --state $T/a -o $T/no/such/dir/x.html
# diff: A and B named, 0 when equal, 1 when they differ, a warning on stderr
# when the receipts differ
run $RETAPE diff $T/a $T/a2
run $RETAPE diff $T/a $T/half
