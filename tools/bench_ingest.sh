#!/usr/bin/env bash
# bench_ingest.sh DB DAY BUCKETS — the live write path's sustained rate and
# latency: the first BUCKETS buckets of DAY's receipts in DB as webhooks
# (every ticker of a bucket at once: the bursts of a bar close) through
# POST /timed/ingest of a fresh `retape serve`, classification included, by
# the Node client (tests/serve/webhooks.mjs, BENCH=1: no kills, duplicates
# or late ones) on 64 and on 8 connections; RUNS times each (default 3), each
# line as measured, then the medians.  Used by tools/bench.sh; RETAPE in
# the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RETAPE:?}"
DB=$1 DAY=$2 BUCKETS=$3
RUNS=${RUNS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-ingest.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$RETAPE" run tests/serve/day_bodies.lua "$DB" "$DAY" "$W/all.jsonl" >/dev/null
# the day's first BUCKETS buckets (the file is in time order)
awk -v n="$BUCKETS" -F'"bucket":' '{ split($2, a, ","); if (a[1] != last) { k++; last = a[1] } if (k <= n) print }' \
  "$W/all.jsonl" > "$W/bodies.jsonl"
echo "$(wc -l < "$W/bodies.jsonl") webhooks: $BUCKETS buckets of $DAY from $(basename "$DB"), $(awk '{ s += length($0) } END { printf "%.1f", s / NR / 1024 }' "$W/bodies.jsonl") KB each"
for c in 64 8; do
  rates=() p50=() p99=()
  for i in $(seq "$RUNS"); do
    rm -rf "$W/l.db"* "$W/l.state"
    line=$(RETAPE=$RETAPE DB=$W/l.db STATE=$W/l.state BODIES=$W/bodies.jsonl ACKED=$W/acked LOG=$W/log BENCH=1 \
      CONNECTIONS=$c node tests/serve/webhooks.mjs)
    echo "  run $i: $line"
    rates+=($(sed -n 's/.*s: \([0-9]*\) webhooks\/s.*/\1/p' <<<"$line"))
    p50+=($(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$line"))
    p99+=($(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$line"))
  done
  med() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
  mm() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd- ; }
  echo "ingest, $c connections: $(med "${rates[@]}") webhooks/s ($(mm "${rates[@]}")), p50 $(med "${p50[@]}") ms, p99 $(med "${p99[@]}") ms ($(mm "${p99[@]}")); target >= 2000/s, p99 <= 50 ms"
done
