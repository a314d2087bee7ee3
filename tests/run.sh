#!/usr/bin/env bash
# Runs every test suite: C unit tests, Lua tests of the engine API, CLI cases.
# Each test prints TAP lines ("ok N - ..." / "not ok N - ..."); this runner
# counts them and ends with "N passed, N failed".  Exit 1 on any failure.
#
# Environment: RETAPE (host binary), BUILD (build dir with tests/), DATA
# (the bundled data, data/), VALGRIND=1 to run C tests and the host under valgrind,
# BROWSER=0 to leave out the two suites in headless Chromium (`make test-core`),
# UNIT=1 to run only the C unit tests and the Lua tests of the engine API
# (`make test-unit`: what CI runs again with the second compiler).
set -u
cd "$(dirname "$0")/.."
: "${RETAPE:?}" "${BUILD:?}" "${DATA:=$(pwd)/data}"
export RETAPE DATA
export RETAPE_TEST_TMP=$(mktemp -d /tmp/retape-test.XXXXXX)
trap 'rm -rf "$RETAPE_TEST_TMP"' EXIT

passed=0 failed=0 planned=0 broken=()
VG=()
if [ "${VALGRIND:-0}" = 1 ]; then
  VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
      --suppressions=tests/valgrind.supp)
fi
export RETAPE_RUN="${VG[*]:+${VG[*]} }$RETAPE"
if [ "${VALGRIND:-0}" = 1 ]; then
  # CLI cases compare stdout+stderr: valgrind's own notes go to log files
  # (its findings still fail a case through --error-exitcode=99).
  mkdir -p "$RETAPE_TEST_TMP/vg"
  export RETAPE_RUN="${VG[*]} --log-file=$RETAPE_TEST_TMP/vg/%p.log $RETAPE"
fi

# run_suite NAME CMD...: runs one test program, counts its TAP lines.
run_suite() {
  local name=$1; shift
  local out status
  out=$("$@" 2>"$RETAPE_TEST_TMP/stderr"); status=$?
  local ok notok plan
  ok=$(grep -c '^ok ' <<<"$out")
  notok=$(grep -c '^not ok ' <<<"$out")
  if [ "$status" -ne 0 ] && [ "$notok" -eq 0 ]; then notok=1; fi
  # The plan: a TAP "1..N" line, or the "N passed, M failed" summary of
  # `retape test`.  A suite that ran fewer (or more) tests than it planned,
  # or planned none, fails.
  plan=$(grep -E '^1\.\.[0-9]+$' <<<"$out" | tail -1 | cut -d. -f3)
  if [ -z "$plan" ]; then
    plan=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -1 | awk '{print $1 + $3}')
  fi
  if [ -z "$plan" ]; then
    echo "not ok - $name: no test plan (1..N) in its output"; notok=$((notok + 1))
  elif [ "$((ok + notok))" -ne "$plan" ] && [ "$status" -eq 0 ]; then
    echo "not ok - $name: planned $plan tests, ran $((ok + notok))"; notok=$((notok + 1))
  fi
  planned=$((planned + ${plan:-0}))
  passed=$((passed + ok)); failed=$((failed + notok))
  if [ "$notok" -gt 0 ]; then
    broken+=("$name")
    echo "--- $name: $ok passed, $notok failed (exit $status)"
    grep -A6 '^not ok ' <<<"$out" | head -60
    tail -20 "$RETAPE_TEST_TMP/stderr"
  else
    echo "    $name: $ok passed"
  fi
}

echo "C unit tests"
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] && run_suite "c/$(basename "$t")" "${VG[@]}" "$t"
done

echo "Lua tests of the engine API"
for t in tests/lua/test_*.lua; do
  run_suite "lua/$(basename "$t")" "${VG[@]}" "$RETAPE" run "$t"
done

if [ "${UNIT:-0}" = 1 ]; then
  echo; echo "planned $planned tests in the suites"; echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]; exit
fi

echo "Fuzz corpus (tests/fuzz/corpus through import and the payload decoder)"
run_suite "fuzz-corpus" "${VG[@]}" "$RETAPE" run tests/fuzz/replay_corpus.lua tests/fuzz/corpus/*/*

echo "CLI cases"
run_suite "cli" bash tests/cli/run.sh

if [ "${BROWSER:-1}" = 0 ]; then
  echo "The HTML report and the live board in headless Chromium: left out (BROWSER=0)"
else
  echo "The HTML report in headless Chromium"
  run_suite "browser" bash tests/browser/run.sh
  echo "The live board of retape serve in headless Chromium"
  run_suite "browser-live" bash tests/browser/live.sh
fi

echo "make install into a temporary prefix; examples/embed.c built with pkg-config"
run_suite "install" bash tests/install/run.sh

echo "Regression cases (three times each, pages of 7 and 50, crash + resume)"
run_suite "cases" "${VG[@]}" "$RETAPE" test tests/cases examples/cases --repeat 3 --page-sizes

echo "retape serve (loopback HTTP, driven by Node as the app's client)"
run_suite "serve" bash tests/serve/run.sh
echo "retape serve live: a real day of webhooks, 64 connections, SIGKILLs; replay --follow beside an importer"
run_suite "serve-live" bash tests/serve/live.sh
echo
if [ -d "$RETAPE_TEST_TMP/vg" ] && grep -l 'ERROR SUMMARY: [1-9]\|definitely lost' "$RETAPE_TEST_TMP"/vg/*.log 2>/dev/null; then
  echo "valgrind findings in the CLI cases:"; cat "$RETAPE_TEST_TMP"/vg/*.log | grep -v 'unimplemented fcntl' | head -60
  failed=$((failed + 1))
fi
if [ ${#broken[@]} -gt 0 ]; then echo "failing: ${broken[*]}"; fi
echo "planned $planned tests in the suites"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
