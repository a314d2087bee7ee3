#!/usr/bin/env bash
# bench.sh — what `make bench` runs.  Builds the synthetic corpus once
# (500 tickers x 79 buckets x 5 days, full-shape ~5 KB payloads, fixed seed;
# and its first day alone) under build/bench/, then times whole processes,
# RUNS times each (default 5), and prints medians:
#   floor scan    one ordered SQLite scan of every receipt (C, no Lua)
#   floor decode  the same scan + lua-cjson decode of every payload (C + cjson)
#   engine walk   retape streaming every receipt through retape.source and
#                 decoding it into a Lua table (what the replay reads)
#   replay        the full replay: parity ruleset, lanes, trades, RocksDB state
#   served        the 1-day replay through `retape serve` and the Node client
#                 loop, next to the same pages in-process (tools/bench_paged.lua)
# Ratios are against the floors measured in the same run; peak RSS of the
# 1-day and 5-day corpus shows that memory does not grow with the rows.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RETAPE:?}" "${FLOOR:?}" "${SHARED:=../shared}"
RUNS=${RUNS:-5}
DIR=build/bench
TEMPLATE="$SHARED/data/payloads/A_AAPL_long_momentum_2026-02-06.json"
mkdir -p "$DIR"

corpus() { # corpus DAYS -> path (generated once; the generator is deterministic)
  local db="$DIR/corpus-$1d.db"
  if [ ! -s "$db" ] || [ "$db" -ot tools/gen_corpus.lua ]; then
    echo "generating $db ..." >&2
    "$RETAPE" run tools/gen_corpus.lua "$db.tmp" "$1" "$TEMPLATE" >&2
    mv "$db.tmp" "$db"
  fi
  echo "$db"
}

# measure LABEL CMD... -> sets MED_MS, ROWS, BYTES, RSS (medians over RUNS)
measure() {
  local label=$1; shift
  local times=() rss=() out t0 t1
  for _ in $(seq "$RUNS"); do
    sync 2>/dev/null || true
    t0=$(date +%s%N)
    out=$("$@")
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
    rss+=($(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out"))
  done
  MED_MS=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  RSS=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  ROWS=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out")
  BYTES=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$BYTES" ] || BYTES=$TOTAL_BYTES
  awk -v l="$label" -v ms="$MED_MS" -v rows="$ROWS" -v bytes="$BYTES" -v rss="$RSS" 'BEGIN {
    printf "%-20s %8d ms  %9.0f rows/s  %7.1f MB/s  peak RSS %7.1f MB\n", l, ms, rows / (ms / 1000),
      bytes / 1e6 / (ms / 1000), rss / 1024 }'
  eval "MS_${label//[^a-zA-Z0-9]/_}=$MED_MS; RSS_${label//[^a-zA-Z0-9]/_}=$RSS"
}

C1=$(corpus 1)
C5=$(corpus 5)
TOTAL_BYTES=0
STATE=$(mktemp -d "${TMPDIR:-/tmp}/retape-bench.XXXXXX")
trap 'rm -rf "$STATE"' EXIT

echo "retape bench: medians of $RUNS whole-process runs; $(nproc) cores; $(date -u +%F)"
for days in 5 1; do
  db=$([ $days = 5 ] && echo "$C5" || echo "$C1")
  TOTAL_BYTES=$("$FLOOR" scan "$db" | sed -n 's/.*bytes=\([0-9]*\).*/\1/p')
  last=$([ $days = 5 ] && echo 2026-03-06 || echo 2026-03-02)
  echo
  echo "== ${days}-day corpus: $db ($(du -m "$db" | cut -f1) MB on disk)"
  measure "floor scan $days" "$FLOOR" scan "$db"
  measure "floor decode $days" "$FLOOR" decode "$db"
  measure "engine walk $days" "$RETAPE" run tools/bench_walk.lua "$db"
  measure "replay $days" "$RETAPE" run tools/bench_replay.lua "$db" "$STATE/s" 2026-03-02 "$last"
done

echo
echo "== ratios (same run)"
awk -v ws="$MS_engine_walk_5" -v fs="$MS_floor_scan_5" -v fd="$MS_floor_decode_5" -v rp="$MS_replay_5" \
    -v w5="$RSS_engine_walk_5" -v w1="$RSS_engine_walk_1" -v r5="$RSS_replay_5" -v r1="$RSS_replay_1" 'BEGIN {
  printf "engine walk / floor scan     %5.2fx the time\n", ws / fs
  printf "engine walk / floor decode   %5.2fx the time\n", ws / fd
  printf "replay / floor decode        %5.2fx the time\n", rp / fd
  printf "peak RSS 5-day / 1-day: walk %.2f, replay %.2f (1.00 = flat: memory does not grow with rows)\n", w5 / w1, r5 / r1 }'

# --- retape serve: the same 1-day replay driven over loopback HTTP by the
# app's client loop (tests/serve/replay-ingest.mjs: pages of 200, then
# buckets), interleaved with the same calls made in-process
# (tools/bench_paged.lua).  served / paged is the cost of the HTTP layer;
# paged / CLI the cost of paging in the engine (each page re-opens its
# bucket and merges its lane log).  CPU seconds (user + sys of the retape
# process) are shown beside wall time: they hold still on a busy machine.
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
if command -v node >/dev/null 2>&1; then
  echo
  echo "== served replay: retape serve + the client loop (pages of 200), 1-day corpus"
  TCK=$(getconf CLK_TCK)
  p_wall=() p_cpu=() s_wall=() s_cpu=()
  for _ in $(seq "$RUNS"); do
    t=$( { TIMEFORMAT='%3R %3U %3S'; time "$RETAPE" run tools/bench_paged.lua "$C1" "$STATE/p" 2026-03-02 200 >/dev/null; } 2>&1 )
    p_wall+=($(awk '{ printf "%d", $1 * 1000 }' <<<"$t")); p_cpu+=($(awk '{ printf "%d", ($2 + $3) * 1000 }' <<<"$t"))
    rm -rf "$STATE/served" "$STATE/serve.log"
    "$RETAPE" serve --db "$C1" --state "$STATE/served" --no-auth --quiet --listen 127.0.0.1:0 2>"$STATE/serve.log" &
    spid=$!
    port=
    for _ in $(seq 300); do
      port=$(sed -n 's#^retape serve: listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$STATE/serve.log" 2>/dev/null)
      [ -n "$port" ] && break; sleep 0.05
    done
    c0=$(awk '{ print $14 + $15 }' "/proc/$spid/stat")
    t0=$(date +%s%N)
    summary=$(TIMED_API_BASE=http://127.0.0.1:$port TIMED_API_KEY=- DATE=2026-03-02 LIMIT=200 DELAY_MS=0 FINISH=0 \
      node tests/serve/replay-ingest.mjs | tail -1)
    t1=$(date +%s%N)
    c1=$(awk '{ print $14 + $15 }' "/proc/$spid/stat")
    kill -TERM "$spid"; wait "$spid" || true
    s_wall+=($(( (t1 - t0) / 1000000 ))); s_cpu+=($(( (c1 - c0) * 1000 / TCK )))
  done
  SERVE_ROWS=$(sed -n 's/.*"rowsProcessed":\([0-9]*\).*/\1/p' <<<"$summary")
  CALLS=$(sed -n 's/.*"calls":\([0-9]*\).*/\1/p' <<<"$summary")
  awk -v sw="$(printf '%s\n' "${s_wall[@]}" | median)" -v sc="$(printf '%s\n' "${s_cpu[@]}" | median)" \
      -v pw="$(printf '%s\n' "${p_wall[@]}" | median)" -v pc="$(printf '%s\n' "${p_cpu[@]}" | median)" \
      -v rows="$SERVE_ROWS" -v calls="$CALLS" -v cli="$MS_replay_1" 'BEGIN {
    printf "%-20s %8d ms  %9.0f rows/s  CPU %6.1f s  (%d HTTP calls; CPU of the server)\n", "served replay 1", sw, rows / (sw / 1000), sc / 1000, calls
    printf "%-20s %8d ms  %9.0f rows/s  CPU %6.1f s  (the same calls in-process)\n", "paged replay 1", pw, rows / (pw / 1000), pc / 1000
    printf "%-20s %8d ms  %9.0f rows/s  (one call, measured above)\n", "CLI replay 1", cli, rows / (cli / 1000)
    printf "the HTTP layer: served / paged  %5.2fx the wall time, %5.2fx the CPU (%+.1f %%)\n", sw / pw, sc / pc, (sc - pc) * 100 / pc
    printf "paging in the engine: paged / CLI  %5.2fx the wall time\n", pw / cli }'
fi

# --- retape sweep (issue 14): 16 variants of the default ruleset in one
# pass against 16 separate `retape replay --set` runs of the same variants
# (what a user scripted before), and the sweep's peak RSS for 16 and 64
# variants.  SWEEP_DAYS=1 uses the 1-day corpus (default 5); SWEEP_RUNS
# (default 1: these runs are long) repeats and takes medians.
SWEEP_DAYS=${SWEEP_DAYS:-5}
SWEEP_RUNS=${SWEEP_RUNS:-1}
sdb=$([ "$SWEEP_DAYS" = 5 ] && echo "$C5" || echo "$C1")
slast=$([ "$SWEEP_DAYS" = 5 ] && echo 2026-03-06 || echo 2026-03-02)
echo
echo "== sweep: 16 variants of the default ruleset, ${SWEEP_DAYS}-day corpus ($SWEEP_RUNS run(s) each)"
s_ms=() s16_rss=() r_ms=()
for _ in $(seq "$SWEEP_RUNS"); do
  t0=$(date +%s%N)
  out=$("$RETAPE" run tools/bench_sweep.lua "$sdb" 2026-03-02 "$slast" 16)
  t1=$(date +%s%N)
  s_ms+=($(( (t1 - t0) / 1000000 ))); s16_rss+=($(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out"))
  SWEEP_ROWS=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out")
  t0=$(date +%s%N)
  for i in $(seq 0 15); do
    rm -rf "$STATE/sep"
    "$RETAPE" replay --db "$sdb" --state "$STATE/sep" --from 2026-03-02 --to "$slast" --all-versions --quiet \
      --set corridor.long.ltf_max=$((10 + i)) --set late.phase=0.6 >/dev/null 2>&1
  done
  t1=$(date +%s%N)
  r_ms+=($(( (t1 - t0) / 1000000 )))
done
out=$("$RETAPE" run tools/bench_sweep.lua "$sdb" 2026-03-02 "$slast" 64)
s64_rss=$(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out")
awk -v s="$(printf '%s\n' "${s_ms[@]}" | sort -n | sed -n "$(( (SWEEP_RUNS + 1) / 2 ))p")" \
    -v r="$(printf '%s\n' "${r_ms[@]}" | sort -n | sed -n "$(( (SWEEP_RUNS + 1) / 2 ))p")" \
    -v rows="$SWEEP_ROWS" -v m16="$(printf '%s\n' "${s16_rss[@]}" | sort -n | sed -n "$(( (SWEEP_RUNS + 1) / 2 ))p")" \
    -v m64="$s64_rss" 'BEGIN {
  printf "%-20s %8d ms  %9.0f variant-rows/s  peak RSS %7.1f MB\n", "sweep 16", s, rows * 16 / (s / 1000), m16 / 1024
  printf "%-20s %8d ms  %9.0f variant-rows/s\n", "16 replays --set", r, rows * 16 / (r / 1000)
  printf "sweep / 16 separate replays  %5.2fx the time (target <= 0.30)\n", s / r
  printf "peak RSS: sweep of 64 variants %.1f MB, %.1f MB per variant past 16\n", m64 / 1024, (m64 - m16) / 48 / 1024 }'
