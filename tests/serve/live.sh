#!/usr/bin/env bash
# The live write path of `retape serve` over loopback: a whole real day of
# webhooks through POST /timed/ingest (Node, 64 connections, shuffled within
# buckets, duplicates, late ones, SIGKILLs and restarts), then: every receipt
# answered 200 is in the database, and the live store equals a fresh
# `retape replay` of the same receipts byte for byte; the group commit and
# the read barrier (each webhook read back right after its 200, many at
# once); bad bodies; --follow beside a concurrent importer.  Prints TAP lines.  Environment: RETAPE,
# DATA, RETAPE_TEST_TMP.
set -u
cd "$(dirname "$0")/../.."
: "${RETAPE:?}" "${DATA:?}"
T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/live.XXXXXX")
DAY=2026-02-02
n=0
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done' EXIT
tap() { # tap OK NAME [DETAIL]
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; [ -n "${3:-}" ] && printf '%s\n' "$3" | head -20 | sed 's/^/#   /'; fi
}
# relay FILE PREFIX: the TAP lines of a Node script's output as this
# suite's (names prefixed), with the lines after a failure as its detail.
relay() {
  local line
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) tap 0 "$2${line#ok - }" ;;
      "not ok - "*) tap 1 "$2${line#not ok - }" "$(grep -A10 -F "$line" "$1" | tail -n +2)" ;;
      "#"*) echo "$line" ;;
    esac
  done < "$1"
}

SRC=$("$RETAPE" run tests/serve/mkdb.lua "$T" "$DAY" 2>"$T/mkdb.err") || { cat "$T/mkdb.err"; exit 1; }
N=$("$RETAPE" run tests/serve/day_bodies.lua "$SRC" "$DAY" "$T/bodies.jsonl")
KEY=k-$RANDOM$RANDOM
printf '%s\n' "$KEY" > "$T/key"

# --- load and faults
RETAPE=$RETAPE DB=$T/live.db STATE=$T/live.state KEY=$KEY KEY_FILE=$T/key BODIES=$T/bodies.jsonl ACKED=$T/acked \
  LOG=$T/serve.log node tests/serve/webhooks.mjs > "$T/wh.out" 2>&1
relay "$T/wh.out" ""
grep -q ' - every receipt acknowledged' "$T/wh.out" || tap 1 "webhooks.mjs ran" "$(tail -20 "$T/wh.out"; tail -20 "$T/serve.log")"

missing=$("$RETAPE" run tests/serve/missing_ids.lua "$T/live.db" "$T/acked" 2>&1); st=$?
tap $st "every receipt answered 200 is in the database ($N receipts)" "$missing"
"$RETAPE" replay --db "$T/live.db" --state "$T/fresh" --date "$DAY" --quiet >/dev/null 2>"$T/fresh.err"
out=$("$RETAPE" run tests/serve/same_store.lua "$T/live.state" "$T/fresh" 2>&1); st=$?
tap $st "the live store equals a fresh retape replay of the same receipts, byte for byte" "$out"
echo "# $out" | head -1
out=$("$RETAPE" diff "$T/live.state" "$T/fresh" 2>&1); st=$?
tap $st "retape diff finds no difference" "$out"

# --- group commit and read barrier: many webhooks at once, each read back
# right after its 200 (answered once durable, classified just after); all
# durable, the store equal to a fresh replay
head -n 1500 "$T/bodies.jsonl" > "$T/ra.jsonl"
RETAPE=$RETAPE DB=$T/ra.db STATE=$T/ra.state BODIES=$T/ra.jsonl ACKED=$T/ra.acked LOG=$T/ra.log DAY=$DAY \
  node tests/serve/read_after_ack.mjs > "$T/ra.out" 2>&1
relay "$T/ra.out" "read after ack: "
grep -q ' - every webhook answered 200' "$T/ra.out" || tap 1 "read_after_ack.mjs ran" "$(tail -20 "$T/ra.out"; tail -20 "$T/ra.log")"
missing=$("$RETAPE" run tests/serve/missing_ids.lua "$T/ra.db" "$T/ra.acked" 2>&1); st=$?
tap $st "read after ack: every receipt answered 200 is in the database" "$missing"
"$RETAPE" replay --db "$T/ra.db" --state "$T/ra.fresh" --date "$DAY" --quiet >/dev/null 2>"$T/ra.fresh.err"
out=$("$RETAPE" run tests/serve/same_store.lua "$T/ra.state" "$T/ra.fresh" 2>&1); st=$?
tap $st "read after ack: the live store equals a fresh retape replay, byte for byte" "$out"

# --- bad bodies: 400 naming the field, nothing stored
"$RETAPE" serve --db "$T/live.db" --state "$T/live.state" --key-file "$T/key" --listen 127.0.0.1:0 2>"$T/s2.log" &
PID=$!; PIDS+=("$PID")
for _ in $(seq 300); do PORT=$(sed -n 's#^retape serve: listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$T/s2.log"); [ -n "$PORT" ] && break; sleep 0.1; done
B=http://127.0.0.1:$PORT
before=$("$RETAPE" run tests/cli/sqlcount.lua "$T/live.db" ingest_receipts 2>/dev/null)
bad() { # bad NAME BODY EXPECT_FRAGMENT
  local out code
  out=$(curl -s -o - -w '\n%{http_code}' -X POST "$B/timed/ingest?key=$KEY" --data-binary "$2")
  code=$(tail -1 <<<"$out")
  tap $([ "$code" = 400 ] && grep -qF "$3" <<<"$out" && echo 0 || echo 1) "400 for $1" "$out"
}
bad "no ticker" '{"ts":1770042600000,"htf_score":1,"ltf_score":2}' "field 'ticker'"
bad "a ts that is not a number" '{"ticker":"AAPL","ts":"x","htf_score":1,"ltf_score":2}' "field 'ts'"
bad "no htf_score" '{"ticker":"AAPL","ts":1770042600000,"ltf_score":2}' "field 'htf_score'"
bad "a ltf_score that is an object" '{"ticker":"AAPL","ts":1770042600000,"htf_score":1,"ltf_score":{}}' "field 'ltf_score'"
bad "broken JSON" '{"ticker":"AAPL","ts":17700' "not JSON (at byte"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/timed/ingest" --data-binary '{"ticker":"A","ts":1770042600000,"htf_score":1,"ltf_score":2}')
tap $([ "$code" = 401 ] && echo 0 || echo 1) "401 without the key" "$code"
after=$("$RETAPE" run tests/cli/sqlcount.lua "$T/live.db" ingest_receipts 2>/dev/null)
tap $([ -n "$before" ] && [ "$before" = "$after" ] && echo 0 || echo 1) "bad bodies change nothing" "$before -> $after"
cap=$(curl -s -X POST "$B/timed/ingest-capture?key=$KEY" --data-binary '{"ticker":"AAPL","ts":1770046200000,"script_version":"capture_1.2.0","tf_candles":{}}')
tap $(grep -q '"ok":true' <<<"$cap" && echo 0 || echo 1) "POST /timed/ingest-capture is stored" "$cap"
kill -TERM "$PID"; wait "$PID"
out=$("$RETAPE" run tests/serve/same_store.lua "$T/live.state" "$T/fresh" 2>&1); st=$?
tap $st "a capture is stored but never replayed (the store is unchanged)" "$out"

# --- replay --follow beside a concurrent importer: the store ends equal to a fresh replay
F=$T/follow.db
awk 'NR % 4 == 1' "$T/bodies.jsonl" > "$T/c1"; awk 'NR % 4 == 2' "$T/bodies.jsonl" > "$T/c2"
awk 'NR % 4 == 3' "$T/bodies.jsonl" > "$T/c3"; awk 'NR % 4 == 0' "$T/bodies.jsonl" > "$T/c4"
for c in 1 2 3 4; do "$RETAPE" run tests/serve/raw_lines.lua "$T/c$c" > "$T/c$c.raw"; done
"$RETAPE" import --db "$F" "$T/c1.raw" >/dev/null 2>&1
"$RETAPE" replay --db "$F" --state "$T/follow.state" --follow > "$T/follow.out" 2> "$T/follow.err" &
FPID=$!; PIDS+=("$FPID")
for c in 2 3 4; do sleep 0.5; "$RETAPE" import --db "$F" "$T/c$c.raw" >/dev/null 2>&1; done
top=$("$RETAPE" run tests/serve/max_rowid.lua "$F")
for _ in $(seq 600); do grep -q "(receipts up to rowid $top)" "$T/follow.out" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$FPID"; wait "$FPID"; st=$?
tap $([ $st = 0 ] && grep -q "SIGTERM: stopped cleanly" "$T/follow.err" && echo 0 || echo 1) "replay --follow: SIGTERM stops it cleanly (exit 0)" "exit $st: $(cat "$T/follow.err")"
tap $(grep -q "replayed up to rowid $top)" "$T/follow.err" && echo 0 || echo 1) "replay --follow picked up every row the importer inserted (rowid $top)" "$(cat "$T/follow.out" "$T/follow.err")"
"$RETAPE" replay --db "$F" --state "$T/follow.fresh" --date "$DAY" --quiet >/dev/null 2>&1
out=$("$RETAPE" run tests/serve/same_store.lua "$T/follow.state" "$T/follow.fresh" 2>&1); st=$?
tap $st "replay --follow beside an importer equals a fresh replay, byte for byte" "$out"
out=$("$RETAPE" replay --db "$F" --state "$T/follow.state" 2>&1); st=$?
tap $([ $st = 0 ] && [ "$out" = "nothing new since the last run" ] && echo 0 || echo 1) "replay without a day on a followed store: nothing new" "exit $st: $out"
# incremental: another day imported, then `retape replay` without a day replays only it
"$RETAPE" run tests/serve/day_bodies.lua "$T/all.db" 2026-02-03 "$T/d2.jsonl" >/dev/null
"$RETAPE" run tests/serve/raw_lines.lua "$T/d2.jsonl" > "$T/d2.raw"
"$RETAPE" import --db "$F" "$T/d2.raw" >/dev/null 2>&1
out=$("$RETAPE" replay --db "$F" --state "$T/follow.state" 2>&1); st=$?
tap $([ $st = 0 ] && grep -q "^replayed 2026-02-03: " <<<"$out" && echo 0 || echo 1) "replay without a day replays only what is new (2026-02-03)" "exit $st: $out"
"$RETAPE" replay --db "$F" --state "$T/follow.fresh2" --from "$DAY" --to 2026-02-03 --quiet >/dev/null 2>&1
out=$("$RETAPE" run tests/serve/same_store.lua "$T/follow.state" "$T/follow.fresh2" 2>&1); st=$?
tap $st "after the incremental replay: equal to a fresh replay of both days" "$out"

echo "1..$n"
