#!/usr/bin/env bash
# `retape serve` over real loopback sockets, driven by Node as the app's
# client drives the original worker.  Prints TAP lines (tests/run.sh counts
# them).  Environment: RETAPE, DATA, RETAPE_TEST_TMP; LOAD_SECONDS (10).
set -u
cd "$(dirname "$0")/../.."
: "${RETAPE:?}" "${DATA:?}"
T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/serve.XXXXXX")
DAY=2026-02-02
n=0
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done' EXIT

tap() { # tap OK NAME [DETAIL]
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; [ -n "${3:-}" ] && printf '%s\n' "$3" | head -20 | sed 's/^/#   /'; fi
}
check() { local name=$1; shift; local out; out=$("$@" 2>&1); tap $? "$name" "$out"; }
same() { # same NAME FILE_A FILE_B
  local d; d=$(diff "$2" "$3" | head -10); tap $([ -s "$2" ] && [ -z "$d" ] && echo 0 || echo 1) "$1" "$d"
}

# start_server LOG ARGS... -> PID, PORT, BASE (listens on a free port)
start_server() {
  local log=$1; shift
  "$RETAPE" serve --listen 127.0.0.1:0 "$@" 2>"$log" &
  PID=$!; PIDS+=("$PID"); PORT=
  for _ in $(seq 300); do
    PORT=$(sed -n 's#^retape serve: listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$log" 2>/dev/null)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  BASE=http://127.0.0.1:$PORT
  [ -n "$PORT" ]
}
stop_server() { kill -TERM "$1"; wait "$1"; }

# receipts with the synthetic levels of the day (so that trades open), and
# the reference: `retape replay` of the whole day
DB=$("$RETAPE" run tests/serve/mkdb.lua "$T" "$DAY" 2>"$T/mkdb.err") || { cat "$T/mkdb.err"; exit 1; }
"$RETAPE" replay --db "$DB" --state "$T/A" --date "$DAY" --clean-slate --quiet --ledger "$T/A.ledger.db" >/dev/null 2>&1
"$RETAPE" trades --state "$T/A" --json > "$T/A.trades"
"$RETAPE" lanes --state "$T/A" --rules default --json > "$T/A.lanes"
"$RETAPE" trades --state "$T/A" --by day --json > "$T/A.byday"
"$RETAPE" trades --state "$T/A" --by pnl --json > "$T/A.bypnl"
"$RETAPE" trades --state "$T/A" --by history --json > "$T/A.history"
"$RETAPE" run tests/serve/dump_ledger.lua "$T/A.ledger.db" > "$T/A.ledger"
KEY=k-$RANDOM$RANDOM
printf '%s\n' "$KEY" > "$T/key"

# --- start-up refusals: stdout, stderr and exit code apart
out=$(env -u RETAPE_API_KEY "$RETAPE" serve --db "$DB" --state "$T/x" 2>"$T/err"); st=$?
tap $([ $st = 2 ] && [ -z "$out" ] && grep -q "no API key" "$T/err" && echo 0 || echo 1) "serve refuses to start without a key (a usage error: exit 2)" "exit $st: $(cat "$T/err")"
out=$(env -u RETAPE_API_KEY "$RETAPE" serve --db "$DB" --state "$T/x" --no-auth --listen 0.0.0.0:0 2>"$T/err"); st=$?
tap $([ $st = 2 ] && [ -z "$out" ] && grep -q "loopback" "$T/err" && echo 0 || echo 1) "--no-auth refused off loopback" "exit $st: $(cat "$T/err")"
out=$("$RETAPE" serve --db "$DB" --state "$T/x" --key-file "$T/key" --rules nosuch 2>"$T/err"); st=$?
tap $([ $st = 1 ] && [ -z "$out" ] && grep -q "no ruleset 'nosuch'" "$T/err" && echo 0 || echo 1) "a bad ruleset is refused before listening" "exit $st: $(cat "$T/err")"

# --- the client loop, in pages of 7 rows, against a fresh store B
start_server "$T/B.log" --db "$DB" --state "$T/B" --key-file "$T/key" || { tap 1 "server B starts" "$(cat "$T/B.log")"; echo "1..$n"; exit 1; }
TIMED_API_BASE=$BASE TIMED_API_KEY=$KEY DATE=$DAY LIMIT=7 DELAY_MS=0 REFRESH_DELAY_MS=0 \
  node tests/serve/replay-ingest.mjs > "$T/client.out" 2> "$T/client.err"; st=$?
summary=$(tail -1 "$T/client.out")
tap $([ $st = 0 ] && grep -q '"buckets":79,"rowsProcessed":1689,' <<<"$summary" && echo 0 || echo 1) \
  "client replays the day in pages of 7: 79 buckets, 1689 rows, refresh, force-sync" "exit $st $summary $(cat "$T/client.err")"
tap $(grep -q '(page to 7)' "$T/client.out" && echo 0 || echo 1) "client saw pages within buckets"
curl -s "$BASE/retape/trades?key=$KEY" > "$T/B.trades"; echo >> "$T/B.trades"
same "GET /retape/trades = retape trades --json of retape replay" "$T/A.trades" "$T/B.trades"
curl -s "$BASE/retape/lanes?key=$KEY" > "$T/B.lanes"; echo >> "$T/B.lanes"
same "GET /retape/lanes = retape lanes --json" "$T/A.lanes" "$T/B.lanes"
for v in day pnl history; do
  curl -s "$BASE/retape/trades?key=$KEY&by=$v" > "$T/B.by$v"; echo >> "$T/B.by$v"
done
mv "$T/B.byhistory" "$T/B.history"
same "GET /retape/trades?by=day = retape trades --by day --json" "$T/A.byday" "$T/B.byday"
same "GET /retape/trades?by=pnl = retape trades --by pnl --json" "$T/A.bypnl" "$T/B.bypnl"
same "GET /retape/trades?by=history = retape trades --by history --json" "$T/A.history" "$T/B.history"
{ printf '{"ok":true,"count":%s,"trades":' "$(grep -o '"id":' "$T/A.trades" | wc -l)"; head -c -1 "$T/A.trades"; echo '}'; } > "$T/A.timed_trades"
curl -s "$BASE/timed/trades" > "$T/B.timed_trades"; echo >> "$T/B.timed_trades"
same "GET /timed/trades = {ok, count, trades: the timed:trades:all list}" "$T/A.timed_trades" "$T/B.timed_trades"
check "GET /timed/all holds every ticker's latest state" node -e '
  const b = JSON.parse(require("fs").readFileSync(0, "utf8"));
  if (!b.ok || b.count !== Object.keys(b.data).length || b.count < 100 || !b.data.AMD.kanban_stage) throw new Error(JSON.stringify(b).slice(0, 200));
' < <(curl -s "$BASE/timed/all")
check "GET /timed/latest?ticker=amd = its state" node -e '
  const b = JSON.parse(require("fs").readFileSync(0, "utf8"));
  if (!b.ok || b.ticker !== "AMD" || b.data.ticker !== "AMD" || typeof b.data.ts !== "number") throw new Error(JSON.stringify(b).slice(0, 200));
' < <(curl -s "$BASE/timed/latest?ticker=amd")
check "GET /timed/ledger/trades lists the force-synced trades" node -e '
  const b = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const n = Number(process.argv[1]);
  if (!b.ok || b.count !== n || b.trades.length !== n || !b.trades[0].trade_id) throw new Error(JSON.stringify(b).slice(0, 200));
' "$(grep -o '"id":' "$T/A.trades" | wc -l)" < <(curl -s "$BASE/timed/ledger/trades")
check "GET /timed/version and /timed/health" node -e '
  const [v, h] = process.argv.slice(1).map(JSON.parse);
  if (!v.ok || v.engine !== "retape" || !v.version || !h.ok) throw new Error(process.argv.slice(1).join(" "));
' "$(curl -s "$BASE/timed/version")" "$(curl -s "$BASE/timed/health")"
check "GET /retape/runs lists one manifest per call" node -e '
  const runs = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const calls = Number(process.argv[1]);
  if (runs.length !== calls || runs[0].params.clean_slate !== true) throw new Error(`${runs.length} runs, ${calls} calls`);
' "$(sed -n 's/.*"calls":\([0-9]*\).*/\1/p' "$T/client.out")" < <(curl -s "$BASE/retape/runs?key=$KEY")
tap $(grep -q "^[0-9T:.-]*Z 127.0.0.1 POST /timed/admin/replay-ingest?cleanSlate=1&date=$DAY&limit=7 200 [0-9.]*ms$" "$T/B.log" \
      && ! grep -q "$KEY" "$T/B.log" && echo 0 || echo 1) "access log: method, path and query without the key, status, ms" "$(head -3 "$T/B.log")"

# --- no credential in any log (issue 24 #21): the key in any case, under any name or in the path,
# and other credential-like parameters; a %0A in the path forges no line
SECRET2=s2-$RANDOM$RANDOM
for q in "KEY=$KEY" "Key=$KEY" "kEy=$KEY" "api_key=$KEY" "API-KEY=$KEY" "token=$SECRET2" "X_Auth=$SECRET2" \
         "password=$SECRET2" "note=$KEY" "key=nope&KEY=$KEY"; do
  curl -s -o /dev/null -X POST "$BASE/timed/admin/replay-ingest?date=$DAY&$q"
done
curl -s -o /dev/null "$BASE/timed/$KEY"
curl -s -o /dev/null "$BASE/timed/health%0A2026-01-01T00:00:00.000Z%20forged"
curl -s -o /dev/null -H "Authorization: Bearer $SECRET2" -H "X-Api-Key: $KEY" "$BASE/timed/health"
sleep 0.3
leaks=$(grep -c -e "$KEY" -e "$SECRET2" "$T/B.log")
tap $([ "$leaks" = 0 ] && grep -q "POST /timed/admin/replay-ingest?date=$DAY&note=- 401" "$T/B.log" \
      && grep -q "GET /timed/\[key\] 404" "$T/B.log" && ! grep -q "^2026-01-01T00:00:00.000Z forged" "$T/B.log" && echo 0 || echo 1) \
  "access log: no key or credential in any case, name, path or header; unknown values masked; no forged line" \
  "$leaks leaks: $(grep -e "$KEY" -e "$SECRET2" -e forged "$T/B.log" | head -5)"

# --- one validator (issue 24 #22): the server refuses exactly what the CLI refuses, with the same words
vcase() { # vcase NAME CLI_OPTION SERVER_PARAM URL CLI_ARGS...
  local name=$1 opt=$2 param=$3 url=$4; shift 4
  local body cli st
  body=$(curl -s -w ' %{http_code}' -X "${METHOD:-POST}" "$url")
  cli=$("$RETAPE" "$@" 2>&1 >/dev/null | head -1); st=$?
  local sw cw
  sw=$(node -e 'const [b, p] = process.argv.slice(1); const m = b.match(/^(.*) 400$/s);
    const e = m && JSON.parse(m[1]).error; if (e && e.startsWith(p + ": ")) console.log(e.slice(p.length + 2));' "$body" "$param")
  cw=$(sed -n "s/^retape [a-z]*: \(option \)\{0,1\}--$opt: //p" <<<"$cli")
  tap $([ -n "$sw" ] && [ "$sw" = "$cw" ] && echo 0 || echo 1) "$name: 400 from the server, the CLI's own words" "server: $body | cli: $cli"
}
vcase "date=0000-01-01" date date "$BASE/timed/admin/replay-ingest?key=$KEY&date=0000-01-01" replay --db "$DB" --state "$T/V" --date 0000-01-01
vcase "date=9999-12-31" date date "$BASE/timed/admin/replay-ingest?key=$KEY&date=9999-12-31" replay --db "$DB" --state "$T/V" --date 9999-12-31
vcase "date=2026-02-30" date date "$BASE/timed/admin/replay-ingest?key=$KEY&date=2026-02-30" replay --db "$DB" --state "$T/V" --date 2026-02-30
vcase "ticker=%01" ticker ticker "$BASE/timed/admin/replay-ingest?key=$KEY&date=$DAY&ticker=%01" replay --db "$DB" --state "$T/V" --date $DAY --ticker $'\x01'
vcase "ticker=AMD," ticker ticker "$BASE/timed/admin/replay-ingest?key=$KEY&date=$DAY&ticker=AMD," replay --db "$DB" --state "$T/V" --date $DAY --ticker AMD,
METHOD=GET vcase "lanes at=25:99" at at "$BASE/retape/lanes?key=$KEY&date=$DAY&at=25:99" lanes --state "$T/A" --date $DAY --at 25:99
METHOD=GET vcase "lanes at=9:30 on 0000-01-01" at at "$BASE/retape/lanes?key=$KEY&date=0000-01-01&at=9:30" lanes --state "$T/A" --at "0000-01-01 9:30"
r=$(curl -s -w ' %{http_code}' -X POST "$BASE/timed/admin/replay-ingest?key=$KEY&date=$DAY&ticker=%00")
tap $([[ $r == *'"error":"ticker: '*' 400' ]] && echo 0 || echo 1) "ticker=%00 is a 400, never every ticker" "$r"
days=$(curl -s "$BASE/retape/runs?key=$KEY" | grep -o '"date":"[0-9-]*"' | sort -u | tr '\n' ' ')
tap $([ "$days" = "\"date\":\"$DAY\" " ] && echo 0 || echo 1) "no refused day was recorded as replayed" "$days"

# --- every error status
SLOW_LOG=$T/S.log
start_server "$SLOW_LOG" --db "$DB" --state "$T/S" --no-auth --rules tests/serve/slow_rules.lua --quiet
SLOW_BASE=$BASE
BASE=http://127.0.0.1:$(sed -n 's#^retape serve: listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$T/B.log")
BASE=$BASE KEY=$KEY SLOW_BASE=$SLOW_BASE node tests/serve/errors.mjs > "$T/errors.out" 2>&1
while read -r line; do
  case $line in
    "ok - "*) tap 0 "${line#ok - }" ;;
    "not ok - "*) tap 1 "${line#not ok - }" ;;
  esac
done < "$T/errors.out"
grep -q '^ok - 409' "$T/errors.out" || tap 1 "errors.mjs ran" "$(tail -5 "$T/errors.out")"

# --- slowloris (issue 24 #20): 1,000 trickling connections from 127.0.0.2 while a client on
# 127.0.0.1 keeps asking; bounded (the script stops itself), the server must stay reachable
start_server "$T/W.log" --db "$DB" --state "$T/W" --no-auth --request-timeout 3 --quiet
BASE=$BASE SLOW=1000 REQUEST_TIMEOUT=3 PER_PEER=128 node tests/serve/slowloris.mjs > "$T/slowloris.out" 2>&1
while read -r line; do
  case $line in
    "ok - "*) tap 0 "${line#ok - }" ;;
    "not ok - "*) tap 1 "${line#not ok - }" ;;
    "# "*) echo "$line" ;;
  esac
done < "$T/slowloris.out"
grep -q '^ok - slowloris: the client\|^not ok - slowloris: the client' "$T/slowloris.out" || tap 1 "slowloris.mjs ran" "$(tail -5 "$T/slowloris.out")"
r=$(curl -s -w ' %{http_code}' "$BASE/timed/health")
tap $([[ $r == *'"ok":true'*' 200' ]] && echo 0 || echo 1) "after the slowloris: the server answers" "$r"
stop_server "$PID"

# --- a failing handler answers 500 and the server goes on: a ledger path
# that cannot be written makes force-sync fail
start_server "$T/F.log" --db "$DB" --state "$T/F" --no-auth --ledger /nonexistent-dir/ledger.db --quiet
r=$(curl -s -w ' %{http_code}' -X POST "$BASE/timed/admin/force-sync")
h=$(curl -s -w ' %{http_code}' "$BASE/timed/health")
tap $([[ $r == '{"ok":false,"error":'*' 500' ]] && [[ $h == *' 200' ]] && echo 0 || echo 1) "a failing handler answers 500 {ok:false} and the server keeps serving" "$r / $h"
check "debug=1: up to 15 enter_now rows and their count; none without debug" node -e '
  const base = process.argv[1];
  (async () => {
    const post = async (q) => (await fetch(`${base}/timed/admin/replay-ingest?${new URLSearchParams(q)}`, { method: "POST" })).json();
    const plain = await post({ date: "2026-02-02" });
    if (!plain.ok || "debug" in plain) throw new Error("without debug: " + JSON.stringify(plain));
    let bucket = plain.nextBucket, seen = 0;
    while (bucket !== null) {
      const r = await post({ date: "2026-02-02", bucket: String(bucket), debug: "1" });
      if (!r.ok || !r.debug || !Array.isArray(r.debug.rows)) throw new Error(JSON.stringify(r));
      if (r.debug.rows.length > 15 || r.debug.rows.length > r.debug.enterNowCount) throw new Error(JSON.stringify(r.debug));
      for (const row of r.debug.rows) if (row.finalStage !== "enter_now" || !row.ticker) throw new Error(JSON.stringify(row));
      seen += r.debug.enterNowCount;
      bucket = r.nextBucket;
    }
    if (seen === 0) throw new Error("no enter_now row in the day");
  })().catch((e) => { console.error(e.message); process.exit(1); });
' "$BASE"
stop_server "$PID"

# --- SIGTERM during a (slow) replay call: the call completes, exit 0
SPID=${PIDS[1]}
curl -s -X POST "$SLOW_BASE/timed/admin/replay-ingest?date=$DAY&bucket=1770042900000" > "$T/slow.out" &
CURL=$!
for _ in $(seq 200); do curl -s "$SLOW_BASE/timed/health" | grep -q '"replay":"running"' && break; sleep 0.02; done
kill -TERM "$SPID"; wait "$SPID"; st=$?
wait "$CURL"
tap $([ $st = 0 ] && grep -q '"ok":true' "$T/slow.out" && grep -q "SIGTERM: stopped cleanly" "$SLOW_LOG" && echo 0 || echo 1) \
  "SIGTERM during a replay call: the call answers 200, the server exits 0" "exit $st: $(cat "$T/slow.out") $(tail -2 "$SLOW_LOG")"

# --- B stops on SIGTERM; its store and ledger equal the CLI replay's
stop_server "$(sed -n 1p <<<"${PIDS[0]}")"; st=$?
tap $([ $st = 0 ] && grep -q "SIGTERM: stopped cleanly" "$T/B.log" && echo 0 || echo 1) "SIGTERM: exit 0, stopped cleanly" "exit $st"
"$RETAPE" trades --state "$T/B" --json > "$T/B.trades.cli"
same "store B (served) trades = store A (retape replay)" "$T/A.trades" "$T/B.trades.cli"
"$RETAPE" lanes --state "$T/B" --rules default --json > "$T/B.lanes.cli"
same "store B (served) lanes = store A" "$T/A.lanes" "$T/B.lanes.cli"
"$RETAPE" run tests/serve/dump_ledger.lua "$T/B.ledger.db" > "$T/B.ledger"
same "ledger of force-sync = ledger of retape replay --ledger (trades, events, latest)" "$T/A.ledger" "$T/B.ledger"

# --- load: 50 readers for LOAD_SECONDS during a served replay
"$RETAPE" run tests/serve/buckets.lua "$DB" "$DAY" > "$T/buckets.json"
start_server "$T/L.log" --db "$DB" --state "$T/L" --key-file "$T/key" --quiet
TIMED_API_BASE=$BASE TIMED_API_KEY=$KEY DATE=$DAY DELAY_MS=40 REFRESH_DELAY_MS=0 \
  node tests/serve/replay-ingest.mjs > "$T/L.client" 2>&1 &
CLIENT=$!
BASE=$BASE KEY=$KEY READERS=50 SECONDS=${LOAD_SECONDS:-10} BUCKETS_FILE=$T/buckets.json \
  node tests/serve/load.mjs > "$T/load.out" 2>&1
wait "$CLIENT"; st=$?
while read -r line; do
  case $line in
    "ok - "*) tap 0 "${line#ok - }" ;;
    "not ok - "*) tap 1 "${line#not ok - }" ;;
    "# "*) echo "$line" ;;
  esac
done < "$T/load.out"
grep -q '^ok - load: no torn' "$T/load.out" || grep -q '^not ok - load: no torn' "$T/load.out" || tap 1 "load.mjs ran" "$(tail -5 "$T/load.out")"
tap $st "the replay under load completes" "$(tail -3 "$T/L.client")"
kill -INT "$PID"; wait "$PID"; st=$?
tap $([ $st = 0 ] && grep -q "SIGINT: stopped cleanly" "$T/L.log" && echo 0 || echo 1) "SIGINT: exit 0, stopped cleanly" "exit $st: $(tail -2 "$T/L.log")"

# --- SIGKILL in the middle of a served call: nothing answered is lost, the
# restarted server takes the client's re-run of the day to the end
client() { TIMED_API_BASE=$BASE TIMED_API_KEY=$KEY DATE=$DAY LIMIT=7 DELAY_MS=0 REFRESH_DELAY_MS=0 "$@" node tests/serve/replay-ingest.mjs; }
start_server "$T/K.log" --db "$DB" --state "$T/K" --key-file "$T/key" --quiet
client env > "$T/K.client1" 2>&1 &
CLIENT=$!
for _ in $(seq 200); do [ "$(grep -c '^bucket' "$T/K.client1")" -ge 60 ] && break; sleep 0.05; done
kill -KILL "$PID"; wait "$PID" 2>/dev/null
wait "$CLIENT"; st1=$?
answered=$(grep -c '^bucket' "$T/K.client1")
start_server "$T/K2.log" --db "$DB" --state "$T/K" --key-file "$T/key" --quiet
runs=$(curl -s "$BASE/retape/runs?key=$KEY" | grep -o '"seq":' | wc -l)
tap $([ "$runs" -eq "$answered" ] || [ "$runs" -eq $((answered + 1)) ] && echo 0 || echo 1) \
  "SIGKILL mid-call: every answered call is in the store after restart ($answered answered, $runs recorded)"
client env > "$T/K.client2" 2>&1; st2=$?
stop_server "$PID"
tap $([ $st1 != 0 ] && [ $st2 = 0 ] && grep -q '"buckets":79,"rowsProcessed":1689,' "$T/K.client2" && echo 0 || echo 1) \
  "SIGKILL mid-call breaks the first client; the restarted server completes the re-run" "client1 $st1, client2 $st2: $(tail -2 "$T/K.client2")"
"$RETAPE" ledger --state "$T/K" --out "$T/K.fresh.db" >/dev/null
"$RETAPE" run tests/serve/dump_ledger.lua "$T/K.fresh.db" > "$T/K.fresh"
"$RETAPE" run tests/serve/dump_ledger.lua "$T/K.ledger.db" > "$T/K.ledger"
same "after SIGKILL + re-run: the force-synced ledger equals its store" "$T/K.fresh" "$T/K.ledger"
"$RETAPE" trades --state "$T/K" --json > "$T/K.trades"
"$RETAPE" lanes --state "$T/K" --rules default --json > "$T/K.lanes"
same "SIGKILL mid-call, restart, the client re-runs the day: trades byte-identical to retape replay" "$T/A.trades" "$T/K.trades"
same "SIGKILL mid-call, restart, the client re-runs the day: lanes byte-identical to retape replay" "$T/A.lanes" "$T/K.lanes"
same "SIGKILL mid-call, restart, re-run: the ledger equals retape replay's" "$T/A.ledger" "$T/K.ledger"

# --- SIGKILL half-way through the day (between two calls), restart, re-run
# the day: byte-identical to the same history without the kill
STOP=40
start_server "$T/C.log" --db "$DB" --state "$T/C" --key-file "$T/key" --quiet
client env STOP_AFTER=$STOP > "$T/C.client1" 2>&1
kill -KILL "$PID"; wait "$PID" 2>/dev/null
start_server "$T/C2.log" --db "$DB" --state "$T/C" --key-file "$T/key" --quiet
client env > "$T/C.client2" 2>&1; st2=$?
stop_server "$PID"
start_server "$T/N.log" --db "$DB" --state "$T/N" --key-file "$T/key" --quiet
client env STOP_AFTER=$STOP > "$T/N.client1" 2>&1
client env > "$T/N.client2" 2>&1
stop_server "$PID"
tap $st2 "SIGKILL after $STOP calls, restart: the client re-runs the day" "$(tail -2 "$T/C.client2")"
for st in C N; do
  "$RETAPE" trades --state "$T/$st" --json > "$T/$st.trades"
  "$RETAPE" lanes --state "$T/$st" --rules default --json > "$T/$st.lanes"
done
same "after SIGKILL + re-run: trades byte-identical to the run without the kill" "$T/N.trades" "$T/C.trades"
same "after SIGKILL + re-run: lanes byte-identical to the run without the kill" "$T/N.lanes" "$T/C.lanes"
"$RETAPE" run tests/serve/dump_ledger.lua "$T/C.ledger.db" > "$T/C.ledger"
"$RETAPE" run tests/serve/dump_ledger.lua "$T/N.ledger.db" > "$T/N.ledger"
same "after SIGKILL + re-run: ledger identical to the run without the kill" "$T/N.ledger" "$T/C.ledger"
same "after SIGKILL between calls + re-run: trades byte-identical to retape replay of the day" "$T/A.trades" "$T/C.trades"

# --- SIGTERM amid new connections, deferred webhooks, writer calls on
# kept-alive connections and event streams, the main thread's epoll
# removals made late (tests/serve/late_removal.c: libmicrohttpd's epoll
# loop aborted; a writer call after the drain deadlocked the stop)
storm="SIGTERM amid new connections, deferred webhooks, writer calls and event streams: exit 0"
"$RETAPE" run tests/serve/day_bodies.lua "$DB" "$DAY" "$T/storm.jsonl" >/dev/null
if ${CC:-cc} -shared -fPIC -O1 -o "$T/late_removal.so" tests/serve/late_removal.c -ldl 2>"$T/shim.err"; then
  PRELOAD=$T/late_removal.so RETAPE=$RETAPE DIR=$T BODIES=$T/storm.jsonl LOG=$T/storm.log \
    node tests/serve/stop_storm.mjs > "$T/storm.out" 2>&1
  grep -q '^ok - ' "$T/storm.out"; st=$?
  name=$(sed -n 's/^\(not \)\{0,1\}ok - //p' "$T/storm.out" | head -1)
  tap $st "${name:-$storm}" "$(tail -8 "$T/storm.out")"
else
  tap 1 "$storm (the shim builds)" "$(cat "$T/shim.err")"
fi

# every server this suite ran: no sanitizer report, no Lua error outside a handler
found=$(grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:\|^retape serve: [A-Z]* /" "$T"/*.log 2>/dev/null)
tap $([ -z "$found" ] && echo 0 || echo 1) "server logs: no sanitizer report, no router failure" "$(for f in $found; do grep -m3 "ERROR\|runtime error\|retape serve:" "$f"; done)"

echo "1..$n"
