#!/usr/bin/env bash
# CLI cases: each tests/cli/cases/NAME.sh is run with bash from the project
# root, with $RETAPE (the host, possibly under valgrind), $T (a fresh temp
# dir) and $DATA set.  Its stdout must equal NAME.out and its stderr
# NAME.err (a missing NAME.err means no output on stderr), compared
# separately.  `run CMD...` runs one command and writes "exit: N" to both
# streams, so every exit code is asserted and each stream reads in order;
# a case that runs $RETAPE other than through `run` (or an explicit
# `echo "exit: $?"`) fails, since its exit code would go unchecked.
# `BLESS=1 bash tests/cli/run.sh` rewrites the .out and .err files;
# `bash tests/cli/run.sh NAME...` runs only those cases.
# `run` writes its stderr line first: a reader that stops early (`| head`)
# may end the function at its stdout line, and the exit code is still
# asserted (cases write output to a file before cutting it, so the command
# itself never meets a closed pipe).  Each case's temp dir is removed.
set -u
cd "$(dirname "$0")/../.."
: "${RETAPE:?set RETAPE to the host}" "${DATA:?set DATA to the bundled data folder}"
n=0
T="" errfile=""
trap 'rm -rf "$T" "$errfile"' EXIT
cases=()
if [ $# -gt 0 ]; then for c in "$@"; do cases+=("tests/cli/cases/$c.sh"); done; else cases=(tests/cli/cases/*.sh); fi
for case in "${cases[@]}"; do
  name=$(basename "$case" .sh)
  n=$((n + 1))
  rm -rf "$T"
  T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/cli.XXXXXX")
  errfile=$(mktemp "${RETAPE_TEST_TMP:-/tmp}/cli-err.XXXXXX")
  got=$(T=$T RETAPE="${RETAPE_RUN:-$RETAPE}" DATA="$DATA" bash -c '
    run() { "$@"; local s=$?; echo "exit: $s" >&2; echo "exit: $s"; return 0; }
    . "$0"' "$case" 2>"$errfile" | sed "s#$T#\$T#g")
  # timings vary from run to run: their figures are masked
  got_err=$(sed -e "s#$T#\$T#g" -e 's/^time [0-9.]* s, [0-9,]* rows\/s\( ([0-9]* threads)\)\{0,1\}$/time N s, N rows\/s/' "$errfile")
  rm -f "$errfile"
  expected="tests/cli/cases/$name.out" expected_err="tests/cli/cases/$name.err"
  unchecked=$(grep -n '\$RETAPE' "$case" | grep -v 'echo "exit: \$?"' | sed 's/run \$RETAPE//g' | grep '\$RETAPE' | head -3)
  if [ "${BLESS:-0}" = 1 ]; then
    printf '%s\n' "$got" > "$expected"
    if [ -n "$got_err" ]; then printf '%s\n' "$got_err" > "$expected_err"; else rm -f "$expected_err"; fi
  fi
  want_err=""
  [ -f "$expected_err" ] && want_err=$(cat "$expected_err")
  if [ -n "$unchecked" ]; then
    echo "not ok $n - cli $name: a command whose exit code is not asserted (use run)"
    sed 's/^/#   line /' <<<"$unchecked"
  elif [ -f "$expected" ] && [ "$got" == "$(cat "$expected")" ] && [ "$got_err" == "$want_err" ]; then
    echo "ok $n - cli $name"
  else
    echo "not ok $n - cli $name"
    if [ "$got" != "$(cat "$expected" 2>/dev/null)" ]; then
      echo "#   stdout differs:"; diff <(printf '%s\n' "$got") "$expected" | head -30 | sed 's/^/#   /'
    fi
    if [ "$got_err" != "$want_err" ]; then
      echo "#   stderr differs:"; diff <(printf '%s\n' "$got_err") <(printf '%s\n' "$want_err") | head -30 | sed 's/^/#   /'
    fi
  fi
done
rm -rf "$T"
echo "1..$n"
