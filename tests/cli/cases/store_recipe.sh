# issue 20: a store remembers how it was made.  A store made with a rule file
# in another directory (with an override) is read from a third directory by
# every read command, also after the file changed (named) or moved; writes
# reuse the recorded rules, overrides and receipts file (no --db, --rules,
# --set), and refuse different ones by naming them with commands that work as
# printed (each one is run here).
# (the "rule state kept in upvalue" warning is another issue's: filtered out)
P=$PWD
retape() { run $RETAPE "$@"; }
noupv() { grep -v "kept in upvalue" "$1" >&2; }
# every advice line ("    retape ...") of a refusal, run as printed, in order
advice() { grep '^    retape ' "$1" | while read -r cmd; do echo "advice: $cmd"; eval "$cmd" </dev/null; done; }
mkdir -p $T/rules $T/work $T/third
cp examples/rules/elite-pullback.lua $T/rules/p6.lua
cd $T/work
run $RETAPE import --db r.db --quiet $P/tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run $P/scripts/levels.lua r.db lv.db 2026-02-02
run $RETAPE replay --db lv.db --state p6 --date 2026-02-02 --rules ../rules/p6.lua --set corridor.long.ltf_max=25 --quiet 2>$T/e; noupv $T/e
# --- 1. read from a third directory: every read command
cd $T/third
run $RETAPE lanes --state ../work/p6 | head -3
run $RETAPE trades --state ../work/p6 --by pnl | head -3
run $RETAPE explain --state ../work/p6 --ticker CVNA --at "2026-02-02 10:00" > $T/o; head -1 $T/o
run $RETAPE status --state ../work/p6
run $RETAPE runs --state ../work/p6 --json | grep -o '"overrides":{[^}]*}'
run $RETAPE report --state ../work/p6 -o $T/p6.html | sed 's/, [0-9]* bytes$/, N bytes/'
run $RETAPE ledger --state ../work/p6 --out $T/p6.ledger
# a file named like the receipts file here is not the store's: explain reads the recorded absolute path
cp ../work/r.db lv.db
run $RETAPE explain --state ../work/p6 --receipt CVNA:1770044400000:bd03ee > $T/o; head -1 $T/o
# --- 4. explain --rules/--set: an explicit "what if", said in the output
run $RETAPE explain --state ../work/p6 --receipt CVNA:1770044400000:bd03ee --set corridor.long.ltf_max=10 > $T/o; grep -E '^(what if|CVNA|the store holds|exit)' $T/o
run $RETAPE explain --state ../work/p6 --receipt CVNA:1770044400000:bd03ee --rules default --json > $T/o; grep -o '"what_if":{[^}]*}' $T/o
# --- 2. writes reuse the recorded rules, overrides and receipts file
run $RETAPE replay --state ../work/p6 --date 2026-02-02 --ticker CVNA --quiet 2>$T/e; noupv $T/e
run $RETAPE replay --state ../work/p6 --date 2026-02-02 --ticker CVNA --bucket 10:00 --no-cascade --quiet 2>$T/e; noupv $T/e
run $RETAPE replay --state ../work/p6 --refresh --quiet 2>$T/e; noupv $T/e
run $RETAPE replay --state ../work/p6 --date 2026-02-02 --quiet 2>$T/e; noupv $T/e
run $RETAPE diff ../work/p6 ../work/p6/
# killed half-way, then --resume with neither --db nor --rules; status prints the command
run $RETAPE run $P/tests/cli/fixtures/kill_replay.lua ../work/p6 2026-02-02 30 2>$T/e; grep -c Killed $T/e
run $RETAPE status --state ../work/p6 | grep '^interrupted' | sed 's/^.*continue it: //' > $T/cmd; cat $T/cmd
cmd=$(cat $T/cmd); eval "$cmd" --quiet 2>$T/e; noupv $T/e
# a different setting: refused, naming it; every command it advises runs as printed
run $RETAPE replay --state ../work/p6 --date 2026-02-02 --ticker CVNA --set corridor.long.ltf_max=22 --quiet 2>$T/e; noupv $T/e
advice $T/e 2>$T/e2; noupv $T/e2
run $RETAPE status --state ../work/p6 | grep 'overrides'
run $RETAPE status --state ../work/p6-2 | grep 'overrides'
# --- 1b. the rule file changes: reads name it and use the recorded source; a write needs --rebuild
echo "-- edited" >> ../rules/p6.lua
run $RETAPE lanes --state ../work/p6 | head -1
run $RETAPE replay --state ../work/p6 --date 2026-02-02 --quiet 2>$T/e; noupv $T/e
advice $T/e 2>$T/e2; noupv $T/e2
# ... or moves away: reads and writes use the recorded source
mv ../rules/p6.lua ../rules/moved.lua
run $RETAPE trades --state ../work/p6 --by pnl | head -2
run $RETAPE replay --state ../work/p6 --date 2026-02-02 --ticker CVNA --quiet --threads 2 2>$T/e; noupv $T/e
# --- 3. the receipts file is part of the store's identity
run $RETAPE replay --state ../work/p6 --db ../work/r.db --date 2026-02-02 --quiet 2>$T/e; noupv $T/e
advice $T/e 2>$T/e2; noupv $T/e2
# receipts added under a replayed day: the day is noted stale, with a command that works as printed
cd $T/work
cp lv.db lv2.db
run $RETAPE replay --db lv2.db --state s2 --date 2026-02-02 --quiet
cat > extra.jsonl <<'X'
{"receipt_id":"ZZZ:1770045000000:1","ticker":"ZZZ","ts":1770045000000,"bucket_5m":1770045000000,"payload_hash":"1","script_version":"2.5.0","payload":{"ticker":"ZZZ","ts":1770045000000,"price":10,"htf_score":1,"ltf_score":1,"state":"HTF_BULL_LTF_BULL"}}
X
run $RETAPE import --db lv2.db --quiet extra.jsonl
run $RETAPE status --state s2 | grep '^receipts'
run $RETAPE replay --state s2 --date 2026-02-02 --ticker CVNA --quiet 2>$T/e; cat $T/e >&2
cmd=$(sed -n 's/^retape replay: note: .*replayed again: //p' $T/e); echo "advice: $cmd"; eval "$cmd" --quiet
run $RETAPE status --state s2 | grep '^receipts'
# receipts removed under a replayed day: a write is refused, with the command that replays it again
cat > $T/del.lua <<'X'
local db = assert(require("retape.sql").open(...))
db:exec("DELETE FROM ingest_receipts WHERE ticker = 'AMD'")
db:close()
X
run $RETAPE run $T/del.lua lv2.db
run $RETAPE status --state s2 | grep '^receipts'
run $RETAPE replay --state s2 --date 2026-02-02 --ticker CVNA --quiet 2>$T/e; cat $T/e >&2
advice $T/e
run $RETAPE status --state s2 | grep -c '^receipts changed'
