# issue 24 B: input that never changes results silently.  A damaged .gz imports nothing of its
# damaged member and says so first (exit 1); trailing garbage is reported (exit 1); 1e400, NaN,
# a repeated "payload" key, an array payload, an over-long line are rejected at import; a dump
# statement cut short is rejected and the next one kept; at replay, non-finite numbers and a
# declared state field of the wrong type are reported per receipt and the run goes on; far-future
# rows in a database not written by import are named by `days`, never a traceback.
gzip -c tests/fixtures/mixed.jsonl > $T/ok.jsonl.gz
head -c 200 $T/ok.jsonl.gz > $T/cut.jsonl.gz
run $RETAPE import --db $T/cut.db $T/cut.jsonl.gz
{ cat $T/ok.jsonl.gz; printf 'PK\003\004junk'; } > $T/trail.jsonl.gz
run $RETAPE import --db $T/trail.db --quiet $T/trail.jsonl.gz
TS=1770042600000
{
  echo "{\"ticker\":\"AA\",\"ts\":$TS,\"price\":1e400,\"htf_score\":1,\"ltf_score\":2}"
  echo "{\"ticker\":\"BB\",\"ts\":$TS,\"price\":NaN,\"htf_score\":1,\"ltf_score\":2}"
  echo "{\"ticker\":\"CC\",\"ts\":$TS,\"payload\":{\"ticker\":\"CC\",\"ts\":$TS},\"payload\":null}"
  echo "{\"ticker\":\"DD\",\"ts\":$TS,\"payload\":[{\"ticker\":\"DD\"}]}"
  printf '{"ticker":"EE","ts":%s,"pad":"%0300d","htf_score":1,"ltf_score":2}\n' $TS 0
  printf '\n\n\n'
  echo "{\"ticker\":\"FF\",\"ts\":$TS,\"price\":1,\"htf_score\":1,\"ltf_score\":2}"
} > $T/bad.jsonl
run $RETAPE import --db $T/bad.db --max-line-bytes 256 $T/bad.jsonl
{
  echo "INSERT INTO ingest_receipts VALUES('A:1','AA',$TS,$TS,$TS,'h',NULL,'{\"ticker\":\"AA\""
  echo "INSERT INTO ingest_receipts VALUES('B:1','BB',$TS,$TS,$TS,'h',NULL,'{\"ticker\":\"BB\"}');"
} > $T/cut.sql
run $RETAPE import --db $T/sql.db $T/cut.sql
# replay: one receipt with 1e400, one with "entry_price": true (declared number), one with a
# far-future ts written behind import's back
run $RETAPE import --db $T/r.db --quiet tests/fixtures/day-2026-02-02.jsonl.gz
cat > $T/spoil.lua <<'LUA'
local sql = require("retape").sql
local db = assert(sql.open(arg[1]))
local function nth(n) return db:rows("SELECT receipt_id FROM ingest_receipts ORDER BY ts, receipt_id LIMIT 1 OFFSET ?", n)[1].receipt_id end
local up <close> = db:prepare("UPDATE ingest_receipts SET payload_json = ? WHERE receipt_id = ?")
local a, b = nth(500), nth(900)
local pa = db:rows("SELECT payload_json FROM ingest_receipts WHERE receipt_id = ?", a)[1].payload_json
local pb = db:rows("SELECT payload_json FROM ingest_receipts WHERE receipt_id = ?", b)[1].payload_json
up:run((pa:gsub('"price":', '"price":1e400,"x":', 1)), a)
up:run((pb:gsub('^{', '{"entry_price":true,', 1)), b)
db:exec("INSERT INTO ingest_receipts VALUES('FAR:1','FAR',99999999999999999,99999999999999999,1,'h',NULL,'{}')")
db:close()
LUA
run $RETAPE run $T/spoil.lua $T/r.db
run $RETAPE replay --db $T/r.db --state $T/s --date 2026-02-02
run $RETAPE days --db $T/r.db
