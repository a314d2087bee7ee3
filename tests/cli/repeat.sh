#!/usr/bin/env bash
# repeat.sh [N] — runs the CLI suite N times in a row (default 20) and
# counts the runs in which any case failed: a test of the tests (a flaky
# case shows up here).  Run by hand, not in CI:
#   RETAPE=$PWD/build/release/retape DATA=$PWD/data bash tests/cli/repeat.sh
# Ends with "N passed, N failed" (runs), and leaves no cli.* folders behind.
set -u
cd "$(dirname "$0")/../.."
: "${RETAPE:?}" "${DATA:=$(pwd)/data}"
export RETAPE DATA
runs=${1:-20}
tmp=$(mktemp -d /tmp/retape-repeat.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
for i in $(seq 1 "$runs"); do
  out=$(RETAPE_TEST_TMP=$tmp bash tests/cli/run.sh 2>&1)
  bad=$(grep -c '^not ok' <<<"$out")
  left=$(find "$tmp" -mindepth 1 -maxdepth 1 | wc -l)
  if [ "$bad" -eq 0 ] && [ "$left" -eq 0 ]; then
    passed=$((passed + 1)); echo "ok $i - cli suite ($(grep -c '^ok' <<<"$out") cases)"
  else
    failed=$((failed + 1)); echo "not ok $i - cli suite: $bad failed, $left temp entries left"
    grep -A8 '^not ok' <<<"$out" | head -40 | sed 's/^/#   /'
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
