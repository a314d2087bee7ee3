-- test_import.lua — input is never lost or silently changed: NUL bytes,
-- \u0000 in keys, truncated and corrupt .gz, standard input, implausible
-- times, and SQL dumps (letter case, comments, non-JSON payloads,
-- unterminated statements, INSERT ... SELECT), all through one validation
-- path, with totals always returned.
local t = require "tap"
local retape = require "retape"

local dir = t.tempdir()
local n = 0
local function file(name, bytes)
  n = n + 1
  local p = string.format("%s/%d-%s", dir, n, name)
  local f = assert(io.open(p, "wb"))
  f:write(bytes)
  f:close()
  return p
end
local function import(paths, opts)
  local msgs = {}
  opts = opts or {}
  opts.report = function(m) msgs[#msgs + 1] = m end
  n = n + 1
  local db = string.format("%s/%d.db", dir, n)
  local total, per_file = retape.import.run(db, type(paths) == "table" and paths or { paths }, opts)
  return total, msgs, db, per_file
end
local function count_rows(db, where)
  local src = assert(retape.source.open(db))
  local b = assert(src:buckets {})
  src:close()
  local c = 0
  for _, x in ipairs(b) do c = c + x.count end
  return c
end
local function line(ticker, ts, extra)
  return string.format('{"ticker":"%s","ts":%d,"price":1,"htf_score":1,"ltf_score":2%s}', ticker, ts, extra or "")
end
local TS = 1770042600000

-- a raw NUL byte rejects its own line only; the next line is not merged into it
do
  local p = file("nul.jsonl", line("AA", TS) .. "\n" .. line("BB", TS):sub(1, 10) .. "\0" .. line("BB", TS):sub(11) .. "\n"
                 .. line("CC", TS) .. "\n" .. line("DD", TS) .. "\0\n")
  local total, msgs = import(p)
  t.eq(total.read, 4, "NUL: four lines read")
  t.eq(total.inserted, 2, "NUL: the lines after the bad one are imported")
  t.eq(total.rejected, 2, "NUL: the lines with a NUL byte are rejected")
  t.ok(msgs[1] and msgs[1]:find(":2: the line contains a NUL byte (at byte 11)", 1, true), "NUL: named with line and byte", msgs[1])
end

-- \u0000 in ticker or receipt_id would truncate the key: rejected, naming the field
do
  local p = file("u0000.jsonl", line("A\\u0000B", TS) .. "\n" ..
    '{"receipt_id":"X\\u0000Y","ticker":"EE","ts":' .. TS .. ',"payload":{"ticker":"EE","ts":' .. TS .. '}}\n' ..
    '{"receipt_id":"X","ticker":"EE","ts":' .. TS .. ',"payload":{"ticker":"EE","ts":' .. TS .. '}}\n')
  local total, msgs = import(p)
  t.eq(total.inserted, 1, "\\u0000: only the clean receipt inserted")
  t.ok(msgs[1] and msgs[1]:find(":1: field 'ticker' contains a NUL byte", 1, true), "\\u0000 in ticker named", msgs[1])
  t.ok(msgs[2] and msgs[2]:find(":2: field 'receipt_id' contains a NUL byte", 1, true), "\\u0000 in receipt_id named", msgs[2])
end

-- found by the fuzzer: payloads that cjson accepts but JSON does not (SQLite's json_valid refuses them)
do
  local p = file("lenient.jsonl", line("AA", TS, ',"k\255":1') .. "\n" .. line("BB", TS, ',"k":"a\30b"') .. "\n"
                 .. line("CC", TS, ',"k":NaN') .. "\n" .. line("DD", TS, ',"k":0x10') .. "\n" .. line("EE", TS) .. "\n"
                 .. line("FF", TS, ',"k":-43.') .. "\n")
  local total, msgs = import(p)
  t.eq(total.inserted, 1, "lenient JSON: only the valid payload inserted")
  t.ok(msgs[1] and msgs[1]:find(":1: field 'payload_json' is not valid UTF-8", 1, true), "invalid UTF-8 named", msgs[1])
  t.ok(msgs[2] and msgs[2]:find(":2: malformed JSON: not strict JSON at byte", 1, true), "raw control character named", msgs[2])
  t.ok(msgs[3] and msgs[3]:find(":3: malformed JSON", 1, true), "NaN refused", msgs[3])
  t.ok(msgs[4] and msgs[4]:find(":4: malformed JSON", 1, true), "hex number refused", msgs[4])
  t.ok(msgs[5] and msgs[5]:find(":6: malformed JSON: not strict JSON at byte", 1, true), "a number ending in '.' refused", msgs[5])
end

-- a line of white space that JSON does not know (\v, \f) is read and rejected, not skipped (a fuzzer finding)
do
  local total, msgs = import(file("vt.jsonl", line("AA", TS) .. "\n\v\n \t\r\n\f\n"))
  t.eq(total.read, 3, "\\v and \\f lines are read (the blank one is not)")
  t.eq(total.rejected, 2, "\\v and \\f lines are rejected")
end

-- implausible times: rejected with line and field, no wrapped bucket
do
  local p = file("ts.jsonl", line("AA", math.mininteger) .. "\n" .. line("BB", 99999999999999) .. "\n"
                 .. line("CC", TS) .. "\n" .. line("DD", -1) .. "\n")
  local total, msgs = import(p)
  t.eq(total.inserted, 1, "ts: only the plausible receipt inserted")
  t.ok(msgs[1] and msgs[1]:find(":1: field 'ts' (-9223372036854775808) is outside the plausible range", 1, true), "ts = INT64_MIN named", msgs[1])
  t.ok(msgs[2] and msgs[2]:find(":2: field 'ts' (99999999999999) is outside", 1, true), "far-future ts named", msgs[2])
  t.ok(msgs[3] and msgs[3]:find(":4: field 'ts'", 1, true), "negative ts named", msgs[3])
end

-- truncated and corrupt .gz: reported, rows before kept, totals returned
do
  local plain = {}
  for i = 1, 3000 do plain[#plain + 1] = line("T" .. i, TS + i) end
  local src = file("big.jsonl", table.concat(plain, "\n") .. "\n")
  os.execute("gzip -kf " .. src)
  local f = assert(io.open(src .. ".gz", "rb"))
  local gz = f:read("a")
  f:close()
  local total, msgs, db, per_file = import(file("trunc.jsonl.gz", gz:sub(1, #gz // 2)))
  t.ok(total and total.errors == 1, "truncated .gz: counted as a failed input", total and total.errors)
  t.ok(msgs[#msgs] and msgs[#msgs]:find("the compressed input is truncated", 1, true), "truncated .gz: reported", msgs[#msgs])
  t.ok(total.inserted > 100 and total.inserted < 3000 and count_rows(db) == total.inserted,
       "truncated .gz: the rows before the cut are imported", total.inserted)
  t.ok(per_file[1].error ~= nil, "truncated .gz: the file's entry carries the error")
  local corrupt = gz:sub(1, 2000) .. string.rep("\255", 500) .. gz:sub(2501)
  total, msgs = import({ file("corrupt.jsonl.gz", corrupt), file("after.jsonl", line("ZZ", TS) .. "\n") })
  t.ok(total and total.errors == 1 and msgs[#msgs - 0] and table.concat(msgs, "\n"):find("cannot read", 1, true),
       "corrupt .gz: reported without a traceback", table.concat(msgs, "\n"))
  t.ok(not table.concat(msgs, "\n"):find("traceback", 1, true), "corrupt .gz: no Lua traceback")
  t.ok(total.inserted >= 1, "corrupt .gz: the next input is still imported")
end

-- "-" is standard input
do
  local p = file("stdin.jsonl", line("AA", TS) .. "\n" .. line("BB", TS) .. "\n")
  local db = dir .. "/stdin.db"
  local pipe = io.popen(os.getenv("RETAPE") .. " import --db " .. db .. " - < " .. p .. " 2>&1; echo \"exit $?\"")
  local out = pipe:read("a")
  pipe:close()
  t.ok(out:find("<stdin>: read 2, inserted 2", 1, true) or out:find("-: read 2, inserted 2", 1, true), "- reads standard input", out)
  t.ok(out:find("exit 0", 1, true), "- : exit 0", out)
end

-- SQL dumps: one validation path, every statement accounted for
do
  local ins = function(tbl, id, ticker, payload)
    return string.format("INSERT INTO %s VALUES('%s','%s',%d,%d,%d,'h',NULL,'%s');", tbl, id, ticker, TS, TS, TS, payload)
  end
  local p = file("dump.sql", table.concat({
    "PRAGMA foreign_keys=OFF;",
    "BEGIN TRANSACTION;",
    ins("INGEST_RECEIPTS", "A:1", "AA", '{"x":1}'),                  -- 3: other letter case: imported
    "/* a block comment */ " .. ins("ingest_receipts", "B:1", "BB", '{"x":1}'), -- 4: comment before: imported
    ins("ingest_receipts", "C:1", "CC", 'not json'),                 -- 5: non-JSON payload: rejected
    "INSERT INTO ingest_receipts SELECT a.receipt_id || b.receipt_id, a.ticker, a.ts, a.bucket_5m, a.received_ts,"
      .. " a.payload_hash, NULL, a.payload_json FROM main.ingest_receipts a, main.ingest_receipts b;", -- 6
    "INSERT INTO ingest_receipts WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
      .. " SELECT 'R:' || x, 'RR', " .. TS .. ", " .. TS .. ", " .. TS .. ", 'h', NULL, '{}' FROM c;", -- 7
    "INSERT INTO trades VALUES(1);",                                 -- 8: other table: reported
    "COMMIT;",
    "-- a comment line",
    ins("ingest_receipts", "D:1", "DD", '{"x":1}'):sub(1, -2),       -- 11: unterminated last statement
  }, "\n") .. "\n")
  local started = os.clock()
  local total, msgs = import(p)
  local all = table.concat(msgs, "\n")
  t.ok(total ~= nil, "dump: totals returned", all)
  t.eq(total.inserted, 2, "dump: the INGEST_RECEIPTS and commented inserts imported")
  t.ok(all:find(":5: receipt C:1: field 'payload_json' is not a JSON object", 1, true), "dump: non-JSON payload rejected like in JSON lines", all)
  t.ok(all:find(":6: statement rejected", 1, true), "dump: INSERT ... SELECT from tables refused", all)
  t.ok(all:find(":7: statement rejected", 1, true), "dump: unbounded recursive INSERT refused", all)
  t.ok(os.clock() - started < 20, "dump: ... quickly")
  t.ok(all:find(":8: statement skipped: 'INSERT INTO trades", 1, true), "dump: insert into another table reported", all)
  t.ok(all:find("line 11: statement not terminated by ';'", 1, true), "dump: unterminated last statement reported", all)
  t.eq(total.errors, 1, "dump: the unterminated statement fails the input")
  t.ok(not all:find("unsupported statement ''", 1, true) and not all:find("traceback", 1, true), "dump: no empty verb, no traceback")
  -- NUL inside a statement: that statement rejected, the next one imported
  p = file("nul.sql", ins("ingest_receipts", "E:1", "EE", '{"x":1}'):sub(1, 30) .. "\0" ..
           ins("ingest_receipts", "E:1", "EE", '{"x":1}'):sub(31) .. "\n" .. ins("ingest_receipts", "F:1", "FF", '{}') .. "\n")
  total, msgs = import(p)
  t.eq(total.inserted, 1, "dump with NUL: the next statement imported")
  t.ok(msgs[1] and msgs[1]:find(":1: statement rejected: it contains a NUL byte", 1, true), "dump with NUL: reported", msgs[1])
end

os.exit(t.done())
