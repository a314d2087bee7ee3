# rules show (settings with default, type, meaning), the "unknown setting"
# error for a misspelled key read in a user rule (user frames first), and
# log() from rule code going to the trace.
run $RETAPE rules show | sed -n '1,5p'
run $RETAPE rules show | grep -E '^(corridor\.long\.ltf_max|classify\.trim_completion|fixes\.archive_fill|trade\.trim_default) '
# the capital model, with the declared ranges and words
run $RETAPE rules show | grep -E '^capital\.'
run $RETAPE rules show worker-2026-02-02 --json | tr '{' '\n' | grep -c '"key"'
run $RETAPE rules show examples/rules/elite-pullback.lua | grep '^elite_pullback'
run $RETAPE rules show no-such-rules
run $RETAPE rules
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
run $RETAPE run scripts/levels.lua $T/r.db $T/lv.db 2026-02-02
cat > $T/typo.lua <<'LUA'
local R = require("retape.rules").load("default")
R.name = "typo"
local classify = R.classify
function R.classify(d)
  local stage, rule = classify(d)
  if (d.score or 0) >= R.config.classify.p1_scroe then return "enter_now", "typo" end
  return stage, rule
end
return R
LUA
$RETAPE replay --db $T/lv.db --state $T/typo --date 2026-02-02 --rules $T/typo.lua --quiet >$T/out 2>$T/err; echo "exit: $?"
sed -n '1,3p' $T/err
grep -c '^engine:$' $T/err
cat > $T/logging.lua <<'LUA'
local R = require("retape.rules").load("default")
R.name = "logging"
local classify = R.classify
function R.classify(d)
  local stage, rule = classify(d)
  if stage == "enter_now" and d.ticker == "CLS" then log("CLS enters, score", d.score) end
  return stage, rule
end
return R
LUA
run $RETAPE replay --db $T/lv.db --state $T/log --date 2026-02-02 --rules $T/logging.lua --ticker CLS --quiet --trace $T/trace.jsonl | grep -v '^time '
grep '"log"' $T/trace.jsonl | head -3
grep -c '"log"' $T/trace.jsonl
# a rule logging much: --trace keeps 256 lines a receipt, each cut at 4,096
# bytes (on a character's boundary), and says what it left out
cat > $T/chatty.lua <<'LUA'
local R = require("retape.rules").load("default")
local classify = R.classify
local long = string.rep("é", 3000)
function R.classify(d)
  if d.ticker == "CLS" then for i = 1, 300 do log(i, long) end end
  return classify(d)
end
return R
LUA
run $RETAPE replay --db $T/lv.db --state $T/chatty --date 2026-02-02 --rules $T/chatty.lua --ticker CLS --quiet --trace $T/chatty.jsonl | grep -v '^time '
grep -c '"log"' $T/chatty.jsonl
grep -c '"log":"(44 more log lines of this receipt left out: --trace keeps 256)","where":null}$' $T/chatty.jsonl
grep -m1 '"log":"1 ' $T/chatty.jsonl | grep -o '\.\.\. ([0-9]* bytes more)'
grep -o '"log":"[^"]*"' $T/chatty.jsonl | LC_ALL=C awk '{ print length($0) }' | sort -n | tail -1
# a trace record of a megabyte string held ten times: each value holds at
# most 4 MB written, so its line is refused, naming the receipt
cat > $T/bulky.lua <<'LUA'
local R = require("retape.rules").load("default")
local s = string.rep("x", 1 << 20)
local record = R.trace_record
function R.trace_record(...)
  local r = record(...)
  r.ticker = { s, s, s, s, s, s, s, s, s, s }
  return r
end
return R
LUA
$RETAPE replay --db $T/lv.db --state $T/bulky --date 2026-02-02 --rules $T/bulky.lua --ticker CLS --quiet --trace $T/bulky.jsonl >$T/out 2>$T/err; echo "exit: $?"
head -c 0 $T/out; sed -n '1p' $T/err
wc -c < $T/bulky.jsonl
