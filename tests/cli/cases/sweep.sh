# retape sweep: a grid's variants in one pass, ranked; --json / --csv; the
# stores kept with --keep give what a standalone `replay --set` gives; every
# variant checked before anything runs; --train/--test.
run $RETAPE import --db $T/r.db --quiet $SHARED/data/receipts-2025-12-10_2026-02-09.jsonl.gz >/dev/null
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02 2026-02-03
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..22:3 --grid fixes.archive_fill=level,price --keep $T/k --quiet
# the throughput line (figures masked)
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 2>&1 >/dev/null | sed -E 's/[0-9][0-9,.]*/N/g'
# the first and the last variant's stores are what standalone replays give
run $RETAPE replay --db $T/lv.db --state $T/a1 --date 2026-02-02 --set corridor.long.ltf_max=16 --set fixes.archive_fill=level --quiet >/dev/null 2>&1
run $RETAPE replay --db $T/lv.db --state $T/a6 --date 2026-02-02 --set corridor.long.ltf_max=22 --set fixes.archive_fill=price --quiet >/dev/null 2>&1
$RETAPE trades --state $T/k/v01 --json > $T/s1.json; echo "exit: $?"
$RETAPE trades --state $T/a1 --json > $T/r1.json; echo "exit: $?"
$RETAPE trades --state $T/k/v06 --json > $T/s6.json; echo "exit: $?"
$RETAPE trades --state $T/a6 --json > $T/r6.json; echo "exit: $?"
cmp $T/s1.json $T/r1.json && cmp $T/s6.json $T/r6.json && echo "trades --json: variants 1 and 6 identical to replay --set"
# diff of variant 6 and its replay: the same (exit 0)
$RETAPE diff $T/k/v06 $T/a6 >/dev/null 2>&1; echo "exit: $?"
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --sort max_drawdown --json --quiet
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --sort trades:asc --csv --quiet
# --report: one page, every variant's equity curve on one chart, the table, no network reference
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..24:4 --report $T/sw.html >$T/out 2>$T/err
echo "exit: $?"; head -2 $T/out; sed -E 's/[0-9][0-9,.]* (s|rows|variant-rows|bytes)\b/N \1/g' $T/err
grep -c 'class="variant"' $T/sw.html
grep -o 'data-variant="[0-9]*"' $T/sw.html | tr '\n' ' '; echo
grep -c '<tr><td><span' $T/sw.html
grep -Eo '(src|href)="[a-z]+:' $T/sw.html | sort -u
run $RETAPE sweep --db $T/lv.db --train 2026-02-02 --test 2026-02-03 --grid late.phase=0.5,0.6 --report $T/x.html
# out of sample: chosen on one day, every variant on the next
run $RETAPE sweep --db $T/lv.db --train 2026-02-02 --test 2026-02-03 --grid corridor.long.ltf_max=16..24:4 --quiet
cat > $T/grid.lua <<'G'
return { { corridor = { long = { ltf_max = 18 } } }, { ["late.phase"] = 0.6, ["fixes.both_crossed"] = "optimistic" } }
G
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid-file $T/grid.lua --sort variant --quiet
# errors: checked before anything runs (exit 2), nothing written
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --grid corridor.long.ltf_maxx=1 --keep $T/none
ls $T/none 2>&1 | sed 's/^ls: //'
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid fixes.both_crossed=pessimistic,optimist
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22.5
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.9..0.5:0.1
run $RETAPE sweep --db $T/lv.db --date 2026-02-02
run $RETAPE sweep --db $T/lv.db --train 2026-02-02 --grid late.phase=0.5,0.6
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --sort pnl
run $RETAPE sweep --db $T/lv.db --date 2026-02-32 --grid late.phase=0.5,0.6
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --keep $T/k
touch $T/file
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --keep $T/file
