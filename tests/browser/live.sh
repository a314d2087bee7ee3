#!/usr/bin/env bash
# Browser test of the live board of `retape serve` (TAP): the bundled
# receipts of 2026-02-02 with the synthetic levels as webhooks, the board in
# headless Chromium (tests/browser/live.test.js).  Screenshots go to
# $SCREENSHOTS (default build/screenshots).  Needs node and chromium.
set -u
cd "$(dirname "$0")/../.."
: "${RETAPE:?}" "${DATA:?}"
T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/browser-live.XXXXXX")
SCREENSHOTS=${SCREENSHOTS:-build/screenshots}
mkdir -p "$SCREENSHOTS"
for tool in node "${CHROMIUM:-chromium}"; do
  if ! command -v "$tool" >/dev/null; then echo "not ok 1 - $tool not found (run 'make test-deps')"; exit 1; fi
done
SRC=$("$RETAPE" run tests/serve/mkdb.lua "$T" 2026-02-02 2>"$T/mkdb.err") || { echo "not ok 1 - setup"; sed 's/^/#   /' "$T/mkdb.err"; echo "1..1"; exit 1; }
"$RETAPE" run tests/serve/day_bodies.lua "$SRC" 2026-02-02 "$T/bodies.jsonl" >/dev/null
RETAPE=$RETAPE CHROMIUM=$(command -v "${CHROMIUM:-chromium}") node tests/browser/live.test.js "$T/bodies.jsonl" "$T" "$SCREENSHOTS"
