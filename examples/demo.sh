#!/bin/sh
# demo.sh — what `make demo` runs: import the bundled real receipts, replay a
# real day through the parity ruleset and show its lanes, then replay the
# same day with the documented synthetic levels (so that trades open) and
# show the trades.  Everything goes under build/demo/.
set -eu
RETAPE=${RETAPE:-./retape}
DATA=${DATA:-data}
RECEIPTS="$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz"
DAY=${DAY:-2026-02-02}
OUT=build/demo
if [ ! -r "$RECEIPTS" ]; then
  echo "demo: bundled receipts not found at $RECEIPTS (set DATA=path/to/data)" >&2
  exit 1
fi
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== import the bundled real receipts"
"$RETAPE" import --db "$OUT/receipts.db" "$RECEIPTS"

echo
echo "== receipts per New York day (top of the list)"
"$RETAPE" days --db "$OUT/receipts.db" | head -8

echo
echo "== replay $DAY with the default ruleset (real receipts carry no price levels: lanes, no trades)"
"$RETAPE" replay --db "$OUT/receipts.db" --state "$OUT/real.state" --date "$DAY" --quiet

echo
echo "== lanes of $DAY as of 11:00 ET"
"$RETAPE" lanes --state "$OUT/real.state" --date "$DAY" --at 11:00

echo
echo "== the same day with synthetic levels (the parity reference's recipe): trades open"
"$RETAPE" run scripts/levels.lua "$OUT/receipts.db" "$OUT/levels.db" "$DAY"
"$RETAPE" replay --db "$OUT/levels.db" --state "$OUT/levels.state" --date "$DAY" --quiet \
  --ledger "$OUT/ledger.db"

echo
echo "== the same day through the parity ruleset (the original's behaviour, faults included), and the difference"
"$RETAPE" replay --db "$OUT/levels.db" --state "$OUT/parity.state" --date "$DAY" --quiet --rules worker-2026-02-02 \
  | sed -n 2p
"$RETAPE" diff "$OUT/parity.state" "$OUT/levels.state" | sed -n '1,16p'

echo
echo "== Trade By P&L (default ruleset)"
"$RETAPE" trades --state "$OUT/levels.state" --by pnl | head -12

echo
echo "== Trade By Day"
"$RETAPE" trades --state "$OUT/levels.state" --by day | head -14
echo
echo "(state stores, ledger and databases are under $OUT/; 'retape help' lists every command)"
