# lanes, trades (list, by day, by P&L, history; text, CSV, JSON), ledger sync
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
run $RETAPE replay --db $T/lv.db --state $T/s --date 2026-02-02 --quiet | grep -v '^time '
run $RETAPE lanes --state $T/s
run $RETAPE lanes --state $T/s --date 2026-02-02 --at 10:00
run $RETAPE lanes --state $T/s --json
run $RETAPE trades --state $T/s --ticker CLS,INTC,CRVS
run $RETAPE trades --state $T/s --by day
run $RETAPE trades --state $T/s --by pnl --days 1
run $RETAPE trades --state $T/s --by history --ticker CRVS
run $RETAPE trades --state $T/s --by history --ticker CRVS --csv
run $RETAPE trades --state $T/s --ticker EWBC --json
run $RETAPE trades --state $T/s --by nope
run $RETAPE ledger --state $T/s --out $T/ledger.db
run $RETAPE run tests/cli/sqlcount.lua $T/ledger.db trades trade_events ticker_latest
run $RETAPE ledger --state $T/s --out $T/ledger.db
run $RETAPE run tests/cli/sqlcount.lua $T/ledger.db trades trade_events ticker_latest
run $RETAPE lanes --state $T/no-such-store
