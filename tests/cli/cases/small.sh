# issue 20, small things: usage errors exit 2; a day without a session says so;
# --quiet prints one line; long lists are summarized; progress bars fit 80
# columns; serve refuses at=25:00 like the CLI and, while it holds a store,
# lanes/trades name its URL; runs shows duration, clean slate and overrides.
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
run $RETAPE replay --db $T/lv.db --date 2026-02-07
run $RETAPE replay --db $T/lv.db --from 2026-02-07 --to 2026-02-08
test -e $T/lv.db.state && echo "a store was created" || echo "no store"
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --set corridor.long.ltf_mx=3
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --quiet
run $RETAPE replay --db $T/lv.db --date 2026-02-02 --ticker CVNA --clean-slate --set corridor.long.ltf_max=22 --state $T/v --quiet
run $RETAPE runs --state $T/v | sed -e 's/20[0-9-]* [0-9:]* ET/TIME/' -e 's/ [0-9]*\.[0-9] s / N.N s /'
run $RETAPE explain --state $T/lv.db.state --ticker NOPE --at "2026-02-02 10:00"
run $RETAPE explain --state $T/lv.db.state --receipt CVNA:1770044400000:bd03ee | head -1
RETAPE_API_KEY= run $RETAPE serve --db $T/lv.db --state $T/lv.db.state
# two months: rows per day and status are summarized
run $RETAPE import --db $T/big.db --quiet $DATA/receipts-2025-12-10_2026-02-09.jsonl.gz
run $RETAPE replay --db $T/big.db --from 2025-12-10 --to 2026-02-09 --ticker AAPL | grep '^rows per day'
run $RETAPE status --state $T/big.db.state
# the progress bar on a terminal: every frame fits 80 columns
cat > $T/tty.sh <<'X'
"$RETAPE" replay --db "$T/big.db" --state "$T/tty" --from 2026-02-02 --to 2026-02-03 >/dev/null; echo "exit: $?"
X
script -qc "bash $T/tty.sh" /dev/null > $T/tty.out
[ "$(tr '\r' '\n' < $T/tty.out | grep -c '^\[')" -gt 0 ] && echo "progress frames shown"
tr '\r' '\n' < $T/tty.out | grep '^\[' | awk 'length($0) > 79' | wc -l
grep -a -o 'exit: [0-9]*' $T/tty.out
# serve: at=25:00 answers 400 like the CLI; lanes of the held store names the server
run $RETAPE serve --db $T/lv.db --state $T/lv.db.state --listen 127.0.0.1:0 --no-auth --quiet 2>$T/serve.log &
bg=$!
for _ in $(seq 600); do grep -q listening $T/serve.log 2>/dev/null && break; sleep 0.1; done
spid=$(pgrep -P $bg)
port=$(sed -n 's#^retape serve: listening on http://127.0.0.1:\([0-9]*\).*#\1#p' $T/serve.log)
curl -s -w ' %{http_code}\n' "http://127.0.0.1:$port/retape/lanes?date=2026-02-02&at=25:00"
run $RETAPE lanes --state $T/lv.db.state 2>&1 | sed "s/:$port/:PORT/g"
run $RETAPE trades --state $T/lv.db.state 2>&1 | sed "s/:$port/:PORT/g"
kill -TERM $spid; wait
sed "s/:$port/:PORT/g" $T/serve.log
run $RETAPE lanes --state $T/lv.db.state | head -1
