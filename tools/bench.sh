#!/usr/bin/env bash
# bench.sh — what `make bench` runs (not part of CI; with RUNS=3 about 10
# minutes on an idle 2-core machine, 20 on a busy one).  Builds once under
# build/bench/: the bundled real receipts (real.db) and the synthetic
# corpus (500 tickers x 79 buckets x 1 and 5 days, full-shape ~5 KB
# payloads, fixed seed).  Then times whole
# processes, RUNS times each (default 3), and prints the median with min-max:
#
#   floor scan         one ordered SQLite scan of every receipt (C, no Lua)
#   floor +cjson       the scan + lua-cjson decoding every payload (C + cjson)
#   floor +tokenizer   the scan + retape.decode's hand-written tokenizer
#                      building every field (the same work as cjson)
#   floor +fields      the scan + retape.decode building only the fields the
#                      parity ruleset declares (what the replay decodes)
#   python             a bare Python sqlite3 + json.loads loop, same rows
#   walk cjson/fields  retape streaming every receipt through retape.source
#                      (full cjson decode / declared fields), no rules
#   decoders A/B       the declared fields of 20000 payloads decoded in one
#                      process by the hand-written scanner and by simdjson,
#                      alternately (tools/bench_decode.lua)
#   replay             the full replay with durable RocksDB state: parity
#                      ruleset on the real days, default ruleset on the corpus
#   budget             the per-receipt budget of a one-thread replay: µs per
#                      receipt of fetch + decode, step, simulate, pack + stage,
#                      commit, other (the median run by total), and the
#                      engine's share (all but step and simulate); with the
#                      1 -> 2 thread scaling of the same replay
#   served             the 1-day replay through `retape serve` and the Node
#                      client loop, next to the same pages in-process
#                      (tools/bench_paged.lua)
#   live ingest        webhooks through POST /timed/ingest, classification
#                      included: sustained rate, p50/p99 latency (tools/bench_ingest.sh)
#
# Ratios compare figures of the same run (the machine is shared and noisy).
# SECTIONS (default "floors replay budget served sweep") picks what runs.
# "all cores" needs `replay --threads`, which does not exist yet: the replay
# runs on one thread.  RETAPE may point at an older build (a before/after
# comparison): rows it cannot run are shown as n/a.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RETAPE:?}" "${FLOOR:?}" "${DATA:=data}"
RUNS=${RUNS:-3}
SECTIONS=${SECTIONS:-floors replay budget served sweep}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
DIR=build/bench
TEMPLATE="$DATA/payloads/A_AAPL_long_momentum_2026-02-06.json"
RECEIPTS=$(ls "$DATA"/receipts-*.jsonl.gz | head -1)
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
real_db() { # the bundled real receipts, imported once
  local db="$DIR/real.db"
  if [ ! -s "$db" ]; then
    echo "importing $RECEIPTS ..." >&2
    rm -f "$db.tmp"
    "$RETAPE" import --db "$db.tmp" "$RECEIPTS" >&2
    mv "$db.tmp" "$db"
  fi
  echo "$db"
}

# measure KEY LABEL CMD... : runs CMD RUNS times; prints the median (min-max)
# wall time, rows/s, MB/s, the median CPU time (user + system: steadier than
# wall time on a shared machine) and peak RSS; keeps MS_KEY, RPS_KEY (wall),
# CPS_KEY (rows per CPU second) and RSS_KEY (MB).  A command that fails is n/a.
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
measure() {
  local key=$1 label=$2; shift 2
  local times=() rss=() cpu=() out="" t0 t1
  for _ in $(seq "$RUNS"); do
    # the replays' stores of an earlier run go before the clock starts
    rm -rf "$STATE/r" "$STATE/s1" "$STATE/s5"
    t0=$(date +%s%N)
    if ! out=$("$@" 2>/dev/null); then
      printf '%-22s n/a (%s cannot run this)\n' "$label" "$(basename "$1")"
      return 0
    fi
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
    rss+=($(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out"))
    cpu+=($(sed -n 's/.*cpu_ms=\([0-9]*\).*/\1/p' <<<"$out"))
  done
  local med min max r c rows bytes
  med=$(printf '%s\n' "${times[@]}" | median)
  min=$(printf '%s\n' "${times[@]}" | sort -n | head -1); max=$(printf '%s\n' "${times[@]}" | sort -n | tail -1)
  r=$(printf '%s\n' "${rss[@]}" | median)
  c=$(printf '%s\n' "${cpu[@]:-0}" | median)
  rows=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out")
  bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$bytes" ] || bytes=$(awk -v b="$DB_BYTES" -v n="$DB_ROWS" -v r="$rows" 'BEGIN { printf "%.0f", b / n * r }')
  awk -v l="$label" -v ms="$med" -v lo="$min" -v hi="$max" -v rows="$rows" -v bytes="$bytes" -v rss="$r" -v cpu="$c" 'BEGIN {
    printf "%-22s %6d ms (%d-%d) %7.0f rows/s (%.0f-%.0f) %6.1f MB/s  cpu %6d ms %7.0f rows/cpu-s  RSS %5.1f MB\n",
      l, ms, lo, hi, rows / (ms / 1000), rows / (hi / 1000), rows / (lo / 1000), bytes / 1e6 / (ms / 1000),
      cpu, (cpu > 0 ? rows / (cpu / 1000) : 0), rss / 1024 }'
  eval "MS_$key=$med; RSS_$key=$(awk -v r="$r" 'BEGIN { printf "%.1f", r / 1024 }')"
  eval "RPS_$key=$(awk -v rows="$rows" -v ms="$med" 'BEGIN { printf "%.0f", rows / (ms / 1000) }')"
  eval "CPS_$key=$(awk -v rows="$rows" -v c="$c" 'BEGIN { printf "%.0f", (c > 0 ? rows / (c / 1000) : 0) }')"
}

# The fields the parity ruleset declares (plus the state fields): the
# "+fields" floor decodes exactly what the replay decodes.
FIELDS=$("$RETAPE" run tools/bench_fields.lua 2>/dev/null || true)
HAS_DECODE=$([ -n "$FIELDS" ] && echo 1 || echo 0)
# (an older RETAPE has no field sets: the floor takes them from this build)
[ -n "$FIELDS" ] || FIELDS=$("$(dirname "$FLOOR")/../retape" run tools/bench_fields.lua)

floors() { # floors KEY DB
  local k=$1 db=$2
  has floors || return 0
  measure "scan_$k" "floor scan" "$FLOOR" scan "$db"
  measure "cjson_$k" "floor +cjson" "$FLOOR" decode "$db"
  measure "tok_$k" "floor +tokenizer" "$FLOOR" tokenize "$db"
  # shellcheck disable=SC2086
  measure "fields_$k" "floor +fields" "$FLOOR" select "$db" $FIELDS
  if command -v python3 >/dev/null; then
    measure "py_$k" "python sqlite3+json" python3 tools/bench_py.py "$db"
  else
    echo "python sqlite3+json    n/a (python3 not installed: apt-get install python3)"
  fi
  measure "walkc_$k" "walk cjson" "$RETAPE" run tools/bench_walk.lua "$db" 256 full
  if [ "$HAS_DECODE" = 1 ]; then measure "walkf_$k" "walk fields" "$RETAPE" run tools/bench_walk.lua "$db" 256 fields
  else echo "walk fields            n/a (no retape.decode in this build)"; fi
  printf '%-22s %s\n' "decoders A/B" "$("$RETAPE" run tools/bench_decode.lua "$db" "$((RUNS < 3 ? 3 : RUNS))" 2>/dev/null ||
    echo "n/a (no simdjson decoder in this build)")"
}
db_facts() { # sets DB_ROWS, DB_BYTES of a corpus (for MB/s of the replay rows)
  local out; out=$("$FLOOR" scan "$1")
  DB_ROWS=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out"); DB_BYTES=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out")
}

REAL=$(real_db)
C1=$(corpus 1)
C5=$(corpus 5)
STATE=$(mktemp -d "${TMPDIR:-/tmp}/retape-bench.XXXXXX")
trap 'rm -rf "$STATE"' EXIT
START=$(date +%s)

echo "retape bench: median (min-max) of $RUNS whole-process runs; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %H:%M') UTC"
echo "retape: $RETAPE"

echo
db_facts "$REAL"
echo "== bundled real days: $REAL ($DB_ROWS rows, $(awk -v b="$DB_BYTES" -v n="$DB_ROWS" 'BEGIN { printf "%.0f", b / n }') bytes a payload), parity ruleset"
floors real "$REAL"
if has replay; then
measure replay_real "replay 1 thread" "$RETAPE" run tools/bench_replay.lua "$REAL" "$STATE/r" 2025-12-10 2026-02-09 worker-2026-02-02 1
measure replay_real_mt "replay all cores" "$RETAPE" run tools/bench_replay.lua "$REAL" "$STATE/r" 2025-12-10 2026-02-09 worker-2026-02-02 all
fi

echo
db_facts "$C5"
echo "== 5-day full-size corpus: $C5 ($DB_ROWS rows, $(du -m "$C5" | cut -f1) MB), default ruleset"
floors c5 "$C5"
if has replay; then
measure replay_c5 "replay 5 days" "$RETAPE" run tools/bench_replay.lua "$C5" "$STATE/s5" 2026-03-02 2026-03-06 default 1
measure replay_c5_mt "replay 5 days all cores" "$RETAPE" run tools/bench_replay.lua "$C5" "$STATE/s5" 2026-03-02 2026-03-06 default all
# re-running the middle day of a 5-day store (the store built once, not
# timed; each run re-runs the same day and leaves the store as it was)
if "$RETAPE" run tools/bench_replay.lua "$C5" "$STATE/k5" 2026-03-02 2026-03-06 default all >/dev/null 2>&1; then
  measure rerun_c5 "re-run 1 day of 5" "$RETAPE" run tools/bench_rerun.lua "$C5" "$STATE/k5" 2026-03-04 default all
  # the loop of a user tweaking one ticker, or one bucket
  measure rerun_c5_ticker "re-run 1 ticker" "$RETAPE" run tools/bench_rerun.lua "$C5" "$STATE/k5" 2026-03-04 default auto TB
  measure rerun_c5_bucket "re-run 1 bucket" "$RETAPE" run tools/bench_rerun.lua "$C5" "$STATE/k5" 2026-03-04 default auto - 10:00
else
  printf '%-22s n/a (%s could not build the 5-day store)\n' "re-run 1 day of 5" "$(basename "$RETAPE")"
fi
rm -rf "$STATE/k5"
db_facts "$C1"
measure replay_c1 "replay 1 day" "$RETAPE" run tools/bench_replay.lua "$C1" "$STATE/s1" 2026-03-02 2026-03-02 default 1
measure replay_c1_mt "replay 1 day all cores" "$RETAPE" run tools/bench_replay.lua "$C1" "$STATE/s1" 2026-03-02 2026-03-02 default all
fi

# --- the per-receipt budget (issue 19): one thread, µs per receipt of each
# stage, from the replay's own clock scaled to the run's CPU time
# (tools/bench_replay.lua ... budget);
# the run shown is the median by total.  Then the 1 -> 2 thread scaling of
# the same replay (wall clock, medians).
budget() { # budget LABEL DB STATE FROM TO RULES
  local label=$1; shift
  local lines=() out
  for _ in $(seq "$RUNS"); do
    out=$("$RETAPE" run tools/bench_replay.lua "$@" 1 budget 2>/dev/null | grep '^budget_us') || { echo "$label n/a"; return 0; }
    lines+=("$(sed -n 's/.*total=\([0-9.]*\).*/\1/p' <<<"$out") $out")
  done
  printf '%s\n' "${lines[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p" | cut -d' ' -f2- | awk -v l="$label" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-14s fetch+decode %5.2f  step %5.2f  simulate %5.2f  pack+stage %5.2f  commit %5.2f  other %5.2f  | total %5.2f  engine %5.2f us/receipt (%.0f rows/s)\n",
      l, v["fetch"], v["step"], v["simulate"], v["pack"], v["commit"], v["other"], v["total"], v["engine"], 1e6 / v["total"] }'
}
if has budget; then
  echo
  echo "== per-receipt budget, one thread (CPU us per receipt: each stage's share of the wall time x the run's CPU time;"
  echo "   engine = all but step and simulate; target engine <= 6)"
  budget "real days" "$REAL" "$STATE/b" 2025-12-10 2026-02-09 worker-2026-02-02
  budget "1-day corpus" "$C1" "$STATE/b" 2026-03-02 2026-03-02 default
  measure scale_real_1 "real days 1 thread" "$RETAPE" run tools/bench_replay.lua "$REAL" "$STATE/r" 2025-12-10 2026-02-09 worker-2026-02-02 1
  measure scale_real_2 "real days 2 threads" "$RETAPE" run tools/bench_replay.lua "$REAL" "$STATE/r" 2025-12-10 2026-02-09 worker-2026-02-02 2
  measure scale_c1_1 "1-day corpus 1 thread" "$RETAPE" run tools/bench_replay.lua "$C1" "$STATE/s1" 2026-03-02 2026-03-02 default 1
  measure scale_c1_2 "1-day corpus 2 threads" "$RETAPE" run tools/bench_replay.lua "$C1" "$STATE/s1" 2026-03-02 2026-03-02 default 2
  awk -v a1="${RPS_scale_real_1:-0}" -v a2="${RPS_scale_real_2:-0}" -v c1="${RPS_scale_c1_1:-0}" -v c2="${RPS_scale_c1_2:-0}" 'BEGIN {
    printf "1 -> 2 threads: real days %.2fx, 1-day corpus %.2fx (target >= 1.8x)\n", (a1 > 0 ? a2 / a1 : 0), (c1 > 0 ? c2 / c1 : 0) }'
fi

echo
echo "== ratios (same run; rows/s of A over rows/s of B: wall clock, and per CPU second)"
ratio() { # ratio LABEL KEY_A KEY_B
  local a b ca cb
  eval "a=\${RPS_$2:-}; b=\${RPS_$3:-}; ca=\${CPS_$2:-}; cb=\${CPS_$3:-}"
  awk -v l="$1" -v a="$a" -v b="$b" -v ca="$ca" -v cb="$cb" 'BEGIN {
    if (a == "" || b == "" || b == 0) { printf "%-46s n/a\n", l; exit }
    printf "%-46s %6.2fx   cpu %6.2fx\n", l, a / b, (cb > 0 ? ca / cb : 0) }'
}
for k in real c5; do
  name=$([ $k = real ] && echo "real days" || echo "5-day corpus")
  ratio "$name: replay all cores / 1 thread" "replay_${k}_mt" "replay_$k"
  ratio "$name: replay all cores / python sqlite3+json" "replay_${k}_mt" "py_$k"
  ratio "$name: replay / floor scan" "replay_$k" "scan_$k"
  ratio "$name: replay / floor +fields" "replay_$k" "fields_$k"
  ratio "$name: replay / floor +cjson" "replay_$k" "cjson_$k"
  ratio "$name: replay / python sqlite3+json" "replay_$k" "py_$k"
  ratio "$name: floor +fields / floor +cjson" "fields_$k" "cjson_$k"
  ratio "$name: floor +tokenizer / floor +cjson" "tok_$k" "cjson_$k"
  ratio "$name: walk fields / walk cjson" "walkf_$k" "walkc_$k"
done
awk -v r1="${RSS_replay_c1:-0}" -v r5="${RSS_replay_c5:-0}" -v rr="${RPS_replay_real_mt:-0}" -v py="${RPS_py_c5:-0}" \
    -v rc="${RPS_replay_c5_mt:-0}" -v ms="${MS_replay_c5_mt:-0}" -v crr="${CPS_replay_real:-0}" -v cpy="${CPS_py_c5:-0}" \
    -v crc="${CPS_replay_c5:-0}" -v r1m="${RSS_replay_c1_mt:-0}" -v r5m="${RSS_replay_c5_mt:-0}" -v rps1="${RPS_replay_real:-0}" -v rr5="${MS_rerun_c5:-0}" -v rrm="${RSS_rerun_c5:-0}" 'BEGIN {
  if (r1 > 0) printf "peak RSS replay 1 day %.1f MB, 5 days %.1f MB: %.2f (1.00 = flat)\n", r1, r5, r5 / r1
  if (r1m > 0) printf "peak RSS all cores: 1 day %.1f MB, 5 days %.1f MB: %.2f (1.00 = flat)\n", r1m, r5m, r5m / r1m
  print ""
  print "== targets (issue 19; wall clock, durable store)"
  printf "real days, all cores        >= 85000 rows/s         now %6.0f rows/s\n", rr
  printf "real days, one thread       >= 50000 rows/s         now %6.0f rows/s (%.0f rows/cpu-s)\n", rps1, crr
  printf "full-size, default ruleset  >= 3x python            now %.2fx, cpu %.2fx\n", (py > 0 ? rc / py : 0), (cpy > 0 ? crc / cpy : 0)
  printf "5-day corpus, all cores     <= 4 s                  now %.1f s\n", ms / 1000
  if (rr5 > 0) printf "(re-run 1 day of a 5-day store, all cores: %.1f s; no target)\n", rr5 / 1000
  printf "peak RSS, any thread count  <= 64 MB, flat          now %.1f / %.1f MB (1 thread, 1 / 5 days), %.1f / %.1f MB (all cores)", r1, r5, r1m, r5m
  if (rrm > 0) printf ", %.1f MB (re-run 1 day of 5, all cores)", rrm
  printf "\n" }'

# --- retape serve: the same 1-day replay driven over loopback HTTP by the
# app's client loop (tests/serve/replay-ingest.mjs: pages of 200, then
# buckets), interleaved with the same calls made in-process
# (tools/bench_paged.lua).  served / paged is the cost of the HTTP layer;
# paged / CLI the cost of paging in the engine (each page re-opens its
# bucket and merges its lane log).  CPU seconds (user + sys of the retape
# process) are shown beside wall time: they hold still on a busy machine.
if has served && command -v node >/dev/null 2>&1; then
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
      -v rows="$SERVE_ROWS" -v calls="$CALLS" -v cli="$MS_replay_c1" 'BEGIN {
    printf "%-20s %8d ms  %9.0f rows/s  CPU %6.1f s  (%d HTTP calls; CPU of the server)\n", "served replay 1", sw, rows / (sw / 1000), sc / 1000, calls
    printf "%-20s %8d ms  %9.0f rows/s  CPU %6.1f s  (the same calls in-process)\n", "paged replay 1", pw, rows / (pw / 1000), pc / 1000
    printf "%-20s %8d ms  %9.0f rows/s  (one call, measured above)\n", "CLI replay 1", cli, rows / (cli / 1000)
    printf "the HTTP layer: served / paged  %5.2fx the wall time, %5.2fx the CPU (%+.1f %%)\n", sw / pw, sc / pc, (sc - pc) * 100 / pc
    printf "paging in the engine: paged / CLI  %5.2fx the wall time\n", pw / cli }'
fi

# --- the live write path (issue 22): webhooks through POST /timed/ingest of
# `retape serve`, classification included; the first 12 buckets of the
# 1-day corpus (500 tickers a bucket, sent as they would arrive at a bar
# close).  INGEST_BUCKETS changes how many.
if command -v node >/dev/null 2>&1; then
  echo
  echo "== live ingest: POST /timed/ingest, 1-day corpus"
  RETAPE=$RETAPE RUNS=$RUNS bash tools/bench_ingest.sh "$C1" 2026-03-02 "${INGEST_BUCKETS:-12}"
fi

# --- retape sweep (issue 14): 16 variants of the default ruleset in one
# pass on every core, against 16 separate `retape replay --set` runs of the
# same variants (what a user scripted before: one after the other, each with
# replay's default threads), in the same run; and the sweep's peak RSS for
# 16 and 64 variants (every core).  SWEEP_DAYS (default 5, the issue's
# corpus; 1 for the 1-day corpus: about 4 minutes instead of 15);
# SWEEP_ONE_THREAD=1 adds the sweep on one thread; SWEEP_RUNS (default 1:
# these runs are long) repeats and takes medians.
SWEEP_DAYS=${SWEEP_DAYS:-5}
SWEEP_RUNS=${SWEEP_RUNS:-1}
SWEEP_ONE_THREAD=${SWEEP_ONE_THREAD:-0}
if has sweep; then
sdb=$([ "$SWEEP_DAYS" = 5 ] && echo "$C5" || echo "$C1")
slast=$([ "$SWEEP_DAYS" = 5 ] && echo 2026-03-06 || echo 2026-03-02)
echo
echo "== sweep: 16 variants of the default ruleset, ${SWEEP_DAYS}-day corpus ($SWEEP_RUNS run(s) each)"
s_ms=() s16_rss=() s1_ms=() s1_rss=() r_ms=()
for _ in $(seq "$SWEEP_RUNS"); do
  t0=$(date +%s%N)
  out=$("$RETAPE" run tools/bench_sweep.lua "$sdb" 2026-03-02 "$slast" 16)
  t1=$(date +%s%N)
  s_ms+=($(( (t1 - t0) / 1000000 ))); s16_rss+=($(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out"))
  SWEEP_ROWS=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out")
  SWEEP_THREADS_USED=$(sed -n 's/.*threads=\([0-9]*\).*/\1/p' <<<"$out")
  if [ "$SWEEP_ONE_THREAD" = 1 ]; then
    t0=$(date +%s%N)
    out=$(SWEEP_THREADS=1 "$RETAPE" run tools/bench_sweep.lua "$sdb" 2026-03-02 "$slast" 16)
    t1=$(date +%s%N)
    s1_ms+=($(( (t1 - t0) / 1000000 ))); s1_rss+=($(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' <<<"$out"))
  fi
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
smedian() { [ $# -gt 0 ] && printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p" || echo 0; }
awk -v s="$(smedian "${s_ms[@]}")" -v s1="$(smedian "${s1_ms[@]}")" -v m1="$(smedian "${s1_rss[@]}")" \
    -v th="$SWEEP_THREADS_USED" -v r="$(smedian "${r_ms[@]}")" \
    -v rows="$SWEEP_ROWS" -v m16="$(smedian "${s16_rss[@]}")" -v m64="$s64_rss" 'BEGIN {
  printf "%-20s %8d ms  %9.0f variant-rows/s  peak RSS %7.1f MB\n", "sweep 16, " th " threads", s, rows * 16 / (s / 1000), m16 / 1024
  if (s1 > 0) printf "%-20s %8d ms  %9.0f variant-rows/s  peak RSS %7.1f MB\n", "sweep 16, 1 thread", s1, rows * 16 / (s1 / 1000), m1 / 1024
  printf "%-20s %8d ms  %9.0f variant-rows/s\n", "16 replays --set", r, rows * 16 / (r / 1000)
  printf "sweep (%d threads) / 16 separate replays  %5.2fx the time (target <= 0.30)\n", th, s / r
  if (s1 > 0) {
    printf "sweep (1 thread) / 16 separate replays    %5.2fx the time\n", s1 / r
    printf "sweep: %d threads / 1 thread               %5.2fx the time\n", th, s / s1
  }
  printf "peak RSS: sweep of 64 variants %.1f MB, %.1f MB per variant past 16\n", m64 / 1024, (m64 - m16) / 48 / 1024 }'
fi
echo
echo "bench took $(( $(date +%s) - START )) s (corpus builds excluded)"
