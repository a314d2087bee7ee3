#!/usr/bin/env bash
# Browser test of `retape report` (TAP).  Builds a real replay: the bundled
# receipts of 2026-02-02 and 2026-02-03 with the synthetic levels, through
# the default ruleset and, for --vs, the parity one and an override of
# the default; and a store of the real receipts (no levels, no trades); writes the report and
# opens it in headless Chromium (tests/browser/report.test.js).  Screenshots
# of each page go to $SCREENSHOTS (default build/screenshots).
# Needs node and chromium: `make test-deps` installs them.
set -u
cd "$(dirname "$0")/../.."
: "${RETAPE:?}" "${DATA:?}"
T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/browser.XXXXXX")
SCREENSHOTS=${SCREENSHOTS:-build/screenshots}
mkdir -p "$SCREENSHOTS"
for tool in node "${CHROMIUM:-chromium}"; do
  if ! command -v "$tool" >/dev/null; then echo "not ok 1 - $tool not found (run 'make test-deps')"; exit 1; fi
done
step() { # step NAME CMD...: a TAP line for a setup command
  if out=$("$@" 2>&1); then echo "ok - setup: $1 ${*:2:1}"; else echo "not ok - setup: $*"; echo "$out" | sed 's/^/#   /' | tail -20; exit 1; fi
}
step "$RETAPE" import --db "$T/r.db" --quiet "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz"
step "$RETAPE" run scripts/levels.lua "$T/r.db" "$T/lv.db" 2026-02-02 2026-02-03
step "$RETAPE" replay --db "$T/lv.db" --state "$T/a" --from 2026-02-02 --to 2026-02-03 --quiet
step "$RETAPE" replay --db "$T/lv.db" --state "$T/b" --from 2026-02-02 --to 2026-02-03 --quiet --rules worker-2026-02-02
step "$RETAPE" replay --db "$T/lv.db" --state "$T/c" --from 2026-02-02 --to 2026-02-03 --quiet --set classify.p2_score=65
step "$RETAPE" report --state "$T/a" --db "$T/lv.db" --vs "$T/b" --vs "$T/c" -o "$T/report.html"
# the real receipts carry no levels: a store without trades
step "$RETAPE" replay --db "$T/r.db" --state "$T/e" --date 2026-02-02 --quiet
step "$RETAPE" report --state "$T/e" -o "$T/empty.html"
# the setup steps above plus the page's own tests: one plan for the suite
out=$(RETAPE=$RETAPE CHROMIUM=$(command -v "${CHROMIUM:-chromium}") node tests/browser/report.test.js "$T/report.html" "$T/a" "$SCREENSHOTS" "$T/empty.html")
status=$?
grep -v -E '^1\.\.[0-9]+$' <<<"$out"
plan=$(grep -E '^1\.\.[0-9]+$' <<<"$out" | tail -1 | cut -d. -f3)
echo "1..$(( ${plan:-0} + 8 ))"
exit $status
