#!/usr/bin/env bash
# CLI cases: each tests/cli/cases/NAME.sh is run with bash from the project
# root, with $RETAPE (the host, possibly under valgrind), $T (a fresh temp
# dir) and $SHARED set.  Its stdout+stderr, followed by "exit: N" for every
# command it runs through `run`, must equal NAME.out exactly.
# `BLESS=1 bash tests/cli/run.sh` rewrites the .out files.
set -u
cd "$(dirname "$0")/../.."
n=0
for case in tests/cli/cases/*.sh; do
  name=$(basename "$case" .sh)
  n=$((n + 1))
  T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/cli.XXXXXX")
  got=$(T=$T RETAPE="${RETAPE_RUN:-$RETAPE}" SHARED="$SHARED" bash -c '
    run() { "$@" 2>&1; echo "exit: $?"; }
    . "$0"' "$case" 2>&1 | sed "s#$T#\$T#g")
  expected="tests/cli/cases/$name.out"
  if [ "${BLESS:-0}" = 1 ]; then printf '%s\n' "$got" > "$expected"; fi
  if [ -f "$expected" ] && [ "$got" == "$(cat "$expected")" ]; then
    echo "ok $n - cli $name"
  else
    echo "not ok $n - cli $name"
    diff <(printf '%s\n' "$got") "$expected" | head -30 | sed 's/^/#   /'
  fi
done
echo "1..$n"
