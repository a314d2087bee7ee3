# retape sweep: a grid's variants in one pass, ranked; --json / --csv; the
# stores kept with --keep give what a standalone `replay --set` gives; every
# variant checked before anything runs; --train/--test.  `sep` shows stdout,
# stderr and the exit code of a command separately.
sep() { "$@" >$T/out 2>$T/err; echo "exit: $?"; echo "[stdout]"; cat $T/out; echo "[stderr]"; cat $T/err; }
$RETAPE import --db $T/r.db --quiet $SHARED/data/receipts-2025-12-10_2026-02-09.jsonl.gz >/dev/null
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02 2026-02-03
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..22:3 --grid fixes.archive_fill=level,price --keep $T/k --quiet
# the throughput line (figures masked)
$RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 2>&1 >/dev/null | sed -E 's/[0-9][0-9,.]*/N/g'
# the first and the last variant's stores are what standalone replays give
$RETAPE replay --db $T/lv.db --state $T/a1 --date 2026-02-02 --set corridor.long.ltf_max=16 --set fixes.archive_fill=level --quiet >/dev/null 2>&1
$RETAPE replay --db $T/lv.db --state $T/a6 --date 2026-02-02 --set corridor.long.ltf_max=22 --set fixes.archive_fill=price --quiet >/dev/null 2>&1
$RETAPE trades --state $T/k/v01 --json > $T/s1.json; $RETAPE trades --state $T/a1 --json > $T/r1.json
$RETAPE trades --state $T/k/v06 --json > $T/s6.json; $RETAPE trades --state $T/a6 --json > $T/r6.json
cmp $T/s1.json $T/r1.json && cmp $T/s6.json $T/r6.json && echo "trades --json: variants 1 and 6 identical to replay --set"
$RETAPE diff $T/k/v06 $T/a6 >/dev/null 2>&1; echo "diff of variant 6 and its replay: exit $?"
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --sort max_drawdown --json --quiet
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --sort trades:asc --csv --quiet
# --report: one page, every variant's equity curve on one chart, the table, no network reference
$RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..24:4 --report $T/sw.html >$T/out 2>$T/err
echo "exit: $?"; head -2 $T/out; sed -E 's/[0-9][0-9,.]* (s|rows|variant-rows|bytes)\b/N \1/g' $T/err
grep -c 'class="variant"' $T/sw.html
grep -o 'data-variant="[0-9]*"' $T/sw.html | tr '\n' ' '; echo
grep -c '<tr><td><span' $T/sw.html
grep -Eo '(src|href)="[a-z]+:' $T/sw.html | sort -u
sep $RETAPE sweep --db $T/lv.db --train 2026-02-02 --test 2026-02-03 --grid late.phase=0.5,0.6 --report $T/x.html
# out of sample: chosen on one day, every variant on the next
sep $RETAPE sweep --db $T/lv.db --train 2026-02-02 --test 2026-02-03 --grid corridor.long.ltf_max=16..24:4 --quiet
cat > $T/grid.lua <<'G'
return { { corridor = { long = { ltf_max = 18 } } }, { ["late.phase"] = 0.6, ["fixes.both_crossed"] = "optimistic" } }
G
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid-file $T/grid.lua --sort variant --quiet
# errors: checked before anything runs (exit 2), nothing written
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --grid corridor.long.ltf_maxx=1 --keep $T/none
ls $T/none 2>&1 | sed 's/^ls: //'
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid fixes.both_crossed=pessimistic,optimist
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22.5
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.9..0.5:0.1
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02
sep $RETAPE sweep --db $T/lv.db --train 2026-02-02 --grid late.phase=0.5,0.6
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --sort pnl
sep $RETAPE sweep --db $T/lv.db --date 2026-02-32 --grid late.phase=0.5,0.6
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --keep $T/k
touch $T/file
sep $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --keep $T/file
