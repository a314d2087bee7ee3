# retape sweep: a grid's variants in one pass, ranked; --json / --csv; the
# stores kept with --keep give what a standalone `replay --set` gives; every
# variant checked before anything runs; --train/--test; --sort on every
# column shown, the baseline row, --objective, --random, --grid KEY, --folds.
run $RETAPE import --db $T/r.db --quiet $DATA/receipts-2025-12-10_2026-02-09.jsonl.gz >/dev/null
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02 2026-02-03
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..22:3 --grid fixes.archive_fill=level,price --keep $T/k --quiet
# the throughput line (figures masked)
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --threads 2 2>&1 >/dev/null | sed -E 's/[0-9][0-9,.]*/N/g'
# --threads 1, 2, 3: the same output, the same stores (every key but the run manifests)
for n in 1 2 3; do
  run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..22:3 --grid fixes.archive_fill=level,price --keep $T/t$n --threads $n --json >$T/j$n.json 2>$T/e$n
  sed "s#$T/t$n/#S/#g" $T/j$n.json > $T/js$n.json
done
cmp $T/js1.json $T/js2.json && cmp $T/js1.json $T/js3.json && echo "--json identical with --threads 1, 2 and 3"
cat > $T/dump.lua <<'L'
local kv = assert(require("retape").kv.open(arg[1]))
for k, v in kv:scan("") do if not k:find("^retape:run") and not k:find("^\xfffingerprint") then io.write(k, "=", v, "\n") end end
kv:close()
L
for n in 1 2 3; do for v in 01 02 03 04 05 06; do
  $RETAPE run $T/dump.lua $T/t$n/v$v > $T/d$n-$v; echo "exit: $?" >&2
  [ -s $T/d$n-$v ] && cmp -s $T/d1-$v $T/d$n-$v || echo "store v$v differs with --threads $n"
done; done
echo "stores identical with --threads 1, 2 and 3"
# the first and the last variant's stores are what standalone replays give
run $RETAPE replay --db $T/lv.db --state $T/a1 --date 2026-02-02 --set corridor.long.ltf_max=16 --set fixes.archive_fill=level --quiet >/dev/null 2>&1
run $RETAPE replay --db $T/lv.db --state $T/a6 --date 2026-02-02 --set corridor.long.ltf_max=22 --set fixes.archive_fill=price --quiet >/dev/null 2>&1
$RETAPE trades --state $T/k/v01 --json > $T/s1.json; echo "exit: $?"
$RETAPE trades --state $T/a1 --json > $T/r1.json; echo "exit: $?"
$RETAPE trades --state $T/t3/v06 --json > $T/s6.json; echo "exit: $?"
$RETAPE trades --state $T/a6 --json > $T/r6.json; echo "exit: $?"
cmp $T/s1.json $T/r1.json && cmp $T/s6.json $T/r6.json && echo "trades --json: variants 1 and 6 identical to replay --set"
# diff of variant 6 and its replay: the same (exit 0)
$RETAPE diff $T/k/v06 $T/a6 >/dev/null 2>&1; echo "exit: $?"
$RETAPE diff $T/t2/v06 $T/a6 >/dev/null 2>&1; echo "exit: $?"
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --sort max_drawdown --json --quiet
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --sort trades:asc --csv --quiet
# --report: one page, every variant's equity curve on one chart, the table, no network reference
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16..24:4 --report $T/sw.html --threads 2 >$T/out 2>$T/err
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
# --sort on a header shown (max_dd, win%), a baseline row, the objective
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,20 --sort max_dd --quiet
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,20 --sort win% --csv --quiet
# --grid KEY: the declared range; --random N --seed S draws from it
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max --grid late.phase --random 3 --seed 5 --quiet
# the capital model is sweepable: the same trades, other figures
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid capital.fee_bps=0,10 --grid capital.sizing=ruleset,equity_pct --quiet
# walk-forward: one fold over the two days (train on the first, test on the second)
run $RETAPE sweep --db $T/lv.db --from 2026-02-02 --to 2026-02-03 --folds 1 --grid corridor.long.ltf_max=16,24 --quiet
run $RETAPE sweep --db $T/lv.db --from 2026-02-02 --to 2026-02-03 --folds 1 --grid corridor.long.ltf_max=16,24 --quiet --json
# errors: checked before anything runs (exit 2), nothing written
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22 --grid corridor.long.ltf_maxx=1 --keep $T/none
ls $T/none 2>&1 | sed 's/^ls: //'
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid fixes.both_crossed=pessimistic,optimist
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid corridor.long.ltf_max=16,22.5
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.9..0.5:0.1
run $RETAPE sweep --db $T/lv.db --date 2026-02-02
run $RETAPE sweep --db $T/lv.db --train 2026-02-02 --grid late.phase=0.5,0.6
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --sort pnll
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --objective sharp
# a typo in --set is a usage error, as in --grid (exit 2)
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --set corridor.long.ltf_maxx=1
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid classify.rr
run $RETAPE sweep --db $T/lv.db --from 2026-02-02 --to 2026-02-03 --folds 2 --grid late.phase=0.5,0.6
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --folds 1 --grid late.phase=0.5,0.6
run $RETAPE sweep --db $T/lv.db --date 2026-02-32 --grid late.phase=0.5,0.6
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --keep $T/k
touch $T/file
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --keep $T/file
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --threads 0
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --grid late.phase=0.5,0.6 --threads two
# a variant failing in a worker thread is named (exit 1, as on one thread)
# (a default ruleset whose step fails from boom.at on: tests/fixtures/boom_rules.lua)
cp tests/fixtures/boom_rules.lua $T/bad.lua
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --rules $T/bad.lua --grid boom.at=0,1770045000000 --threads 2 --quiet 2>&1 | grep -E '^(retape sweep|exit)' | sed -E 's/(boom at [A-Z-]+).*/\1/'
run $RETAPE sweep --db $T/lv.db --date 2026-02-02 --rules $T/bad.lua --grid boom.at=0,1770045000000 --threads 1 --quiet 2>&1 | grep -E '^(retape sweep|exit)' | sed -E 's/(boom at [A-Z-]+).*/\1/'
