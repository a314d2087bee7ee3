# issue 20: merge checks its inputs.  Shards record `shard i/n`; a set that is
# not exactly 0..n-1 of one replay is refused (unless --partial, which status
# then shows); the same shard twice is refused as such; the merged store keeps
# scope, rules and receipts, so diff and status read it as a normal store.  A
# merge killed with SIGKILL leaves no store at OUT: status names the leftover
# and prints the command that finishes it.
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
cd $T
for i in 0 1 2; do run $RETAPE replay --db lv.db --state sh$i --date 2026-02-02 --shard $i/3 --quiet; done
run $RETAPE replay --db lv.db --state single --date 2026-02-02 --quiet
run $RETAPE status --state sh1
# an incomplete set, the same store twice, the same shard twice, a store that is no shard
run $RETAPE merge --state m sh0 sh1
run $RETAPE merge --state m sh0 sh0 sh1 sh2
cp -r sh0 sh0copy
run $RETAPE merge --state m sh0 sh0copy sh1 sh2
run $RETAPE merge --state m single sh1
run $RETAPE replay --db lv.db --state other --date 2026-02-02 --shard 2/3 --set corridor.long.ltf_max=25 --quiet
run $RETAPE merge --state m sh0 sh1 other
test -e m && echo "m exists" || echo "no store m"
# --partial: merged, and status says so
run $RETAPE merge --state part sh0 sh1 --partial
run $RETAPE status --state part
# the whole set: a normal store
run $RETAPE merge --state m sh2 sh0 sh1
run $RETAPE status --state m
run $RETAPE runs --state m --json | grep -o '"params":{[^}]*}'
run $RETAPE diff single m > o; grep -E '^(trades:|lanes differ|exit:)' o
run $RETAPE replay --state m --date 2026-02-02 --ticker CVNA --quiet
# SIGKILL after the first shard was copied: no store at OUT; status and lanes say so; the advised command finishes it
run $RETAPE run $OLDPWD/tests/cli/fixtures/kill_merge.lua k sh0 sh1 sh2 2>/dev/null
test -e k && echo "k exists" || echo "no store k"
run $RETAPE status --state k
run $RETAPE lanes --state k
cmd=$(run $RETAPE status --state k 2>/dev/null | sed -n 's/^run the merge again (it starts over): retape //p')
run $RETAPE $cmd
test -e k.merging && echo "k.merging left" || echo "no k.merging"
run $RETAPE diff single k > o; grep -E '^(trades:|lanes differ|exit:)' o
