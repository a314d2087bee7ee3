# issue 20 #5 and issue 24 #18/#19: no false warning for overrides; rule state kept outside the
# declared state refused naming the line and receipt; a nested load and a trade that cannot be
# stored name the rule, not the engine
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
run $RETAPE replay --db $T/lv.db --state $T/one --date 2026-02-02 --rules examples/rules/elite-pullback.lua --set elite_pullback.score=70 --set corridor.long.ltf_max=25 --threads 1 --quiet > $T/out; cat $T/out
run $RETAPE replay --db $T/lv.db --state $T/two --date 2026-02-02 --rules examples/rules/elite-pullback.lua --set elite_pullback.score=70 --set corridor.long.ltf_max=25 --threads 2 --quiet > $T/out; cat $T/out
run $RETAPE diff $T/one $T/two
cat > $T/counter.lua <<'RULE'
local R = require("retape.rules").load("default")
local classify = R.classify
local seen = 0
function R.classify(d)
  seen = seen + 1
  return classify(d)
end
return R
RULE
run $RETAPE replay --db $T/lv.db --state $T/counter --date 2026-02-02 --rules $T/counter.lua --threads 2 --quiet 2>$T/err
head -1 $T/err; tail -1 $T/err
cat > $T/config.lua <<'RULE'
local R = require("retape.rules").load("default")
local classify = R.classify
function R.classify(d)
  R.config.classify.p1_score = R.config.classify.p1_score - 1
  return classify(d)
end
return R
RULE
run $RETAPE replay --db $T/lv.db --state $T/config --date 2026-02-02 --rules $T/config.lua --quiet 2>$T/err
head -1 $T/err; tail -1 $T/err
cat > $T/env.lua <<'RULE'
local R = require("retape.rules").load("default")
rawset(_ENV, "count", 0)
return R
RULE
run $RETAPE replay --db $T/lv.db --state $T/env --date 2026-02-02 --rules $T/env.lua --quiet
printf 'local R = require("retape.rules").load("default")\nlocal x = {} .. "x"\nreturn R\n' > $T/inner.lua
printf 'return require("retape.rules").load("%s")\n' $T/inner.lua > $T/outer.lua
run $RETAPE replay --db $T/lv.db --state $T/outer --date 2026-02-02 --rules $T/outer.lua --quiet
printf 'local R = require("retape.rules").load("default")\nlocal t = {}\nfor i = 1, 1e8 do t[i] = i end\nreturn R\n' > $T/inner.lua
run $RETAPE replay --db $T/lv.db --state $T/outer --date 2026-02-02 --rules $T/outer.lua --quiet
cat > $T/badtrade.lua <<'RULE'
local R = require("retape.rules").load("default")
local simulate = R.simulate
function R.simulate(d, as_of, book)
  local created = simulate(d, as_of, book)
  if created then created.history[1].note = function() end end
  return created
end
return R
RULE
run $RETAPE replay --db $T/lv.db --state $T/badtrade --date 2026-02-02 --rules $T/badtrade.lua --quiet 2>$T/err
head -1 $T/err; tail -1 $T/err
