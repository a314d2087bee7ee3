# issue 20 (hints that work): every command the tool prints as advice runs as
# printed, here after a re-run that left later results stale: the replay's
# own line, the note of a read command, status (refresh and runs).  The
# refusals' advice and the resume/merge commands run in store_recipe and merge.
retape() { run $RETAPE "$@"; }
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
cd $T
run $RETAPE replay --db lv.db --state s --date 2026-02-02 --quiet
# a clean slate at bucket $1 (a new one each time) leaves CLS's later results stale
stale() { run $RETAPE replay --state s --date 2026-02-02 --ticker CLS --bucket $1 --clean-slate --no-cascade > o; grep -E '^(stale|exit)' o; }
stale 10:00
cmd=$(sed -n 's/^stale: later results depend on this scope (\(.*\))$/\1/p' o); echo "advice: $cmd"; eval "$cmd" --quiet
stale 11:00
run $RETAPE lanes --state s 2>e >/dev/null; cat e
cmd=$(sed -n "s/.*recompute them with '\(.*\)'\$/\1/p" e); echo "advice: $cmd"; eval "$cmd" --quiet
stale 12:00
run $RETAPE status --state s > o; grep -E "^(stale|runs)" o
cmd=$(sed -n "s/^stale: .*recompute with '\(.*\)':\$/\1/p" o); echo "advice: $cmd"; eval "$cmd" --quiet
cmd=$(sed -n 's/^runs: [0-9]* (\(.*\))$/\1/p' o); echo "advice: $cmd"; eval "$cmd" | sed -e 's/20[0-9-]* [0-9:]* ET/TIME/' -e 's/ [0-9]*\.[0-9] s / N.N s /'
run $RETAPE status --state s | grep '^stale'
run $RETAPE replay --state s --date 2026-02-02 --resume
