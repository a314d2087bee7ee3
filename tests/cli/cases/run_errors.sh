printf 'local t = {}\nlocal function f() return t.x.y end\nf()\n' > $T/bad.lua
run $RETAPE run $T/bad.lua 2>&1 | sed -n 1,2p
printf 'print(...)\nreturn 3\n' > $T/args.lua
run $RETAPE run $T/args.lua one two
run $RETAPE run $T/none.lua
run $RETAPE days --db tests/fixtures/dump.sql
