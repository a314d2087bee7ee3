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

-- truncated and corrupt .gz (issue 24 #11): the file is checked whole first;
-- the damaged member is reported before anything else and nothing of it is
-- imported; members before it are; the next input still is
local function gzip_bytes(text)
  local src = file("gz.jsonl", text)
  os.execute("gzip -kf " .. src)
  local f = assert(io.open(src .. ".gz", "rb"))
  local gz = f:read("a")
  f:close()
  return gz
end
do
  local plain = {}
  for i = 1, 3000 do plain[#plain + 1] = line("T" .. i, TS + i) end
  local gz = gzip_bytes(table.concat(plain, "\n") .. "\n")
  local total, msgs, db, per_file = import(file("trunc.jsonl.gz", gz:sub(1, #gz // 2)))
  t.ok(total and total.errors == 1, "truncated .gz: counted as a failed input", total and total.errors)
  t.ok(msgs[1] and msgs[1]:find("the compressed input is truncated: gzip member 1", 1, true), "truncated .gz: reported first", msgs[1])
  t.eq(total.inserted + count_rows(db), 0, "truncated .gz: nothing of the damaged member imported")
  t.ok(per_file[1].error ~= nil, "truncated .gz: the file's entry carries the error")
  -- bit flips inside the deflate data: whatever they decode to, no row of the member is kept
  local kept, first, flips = 0, 0, 0
  for k = 1, 12 do
    local at = 200 + k * 97
    local flipped = gz:sub(1, at - 1) .. string.char(gz:byte(at) ~ (1 << (k % 8))) .. gz:sub(at + 1)
    local tot, m, fdb = import({ file("flip.jsonl.gz", flipped), file("after.jsonl", line("ZZ", TS) .. "\n") })
    flips = flips + 1
    kept = kept + count_rows(fdb) - 1
    if m[1] and m[1]:find("flip.jsonl.gz: ", 1, true) and (m[1]:find("corrupt", 1, true) or m[1]:find("truncated", 1, true))
       and tot.errors == 1 and tot.inserted == 1 then first = first + 1 end
  end
  t.eq(kept, 0, "bit-flipped .gz: no row of a damaged member imported (" .. flips .. " flips)")
  t.eq(first, flips, "bit-flipped .gz: the damage is the first message, the next input imported")
  local corrupt = gz:sub(1, 2000) .. string.rep("\255", 500) .. gz:sub(2501)
  total, msgs = import({ file("corrupt.jsonl.gz", corrupt), file("after.jsonl", line("ZZ", TS) .. "\n") })
  t.ok(total and total.errors == 1 and msgs[1] and msgs[1]:find("cannot read: gzip member 1 (from byte 0) is corrupt", 1, true),
       "corrupt .gz: reported first, without a traceback", table.concat(msgs, "\n"))
  t.ok(not table.concat(msgs, "\n"):find("traceback", 1, true), "corrupt .gz: no Lua traceback")
  t.eq(total.inserted, 1, "corrupt .gz: nothing of it imported, the next input is")
  -- two members, the second damaged: the first one's rows are imported
  local gz2 = gzip_bytes(line("M2", TS) .. "\n" .. line("M3", TS) .. "\n")
  local two = gzip_bytes(line("M1", TS) .. "\n") .. gz2:sub(1, #gz2 - 8) .. string.rep("\0", 8)
  total, msgs = import(file("two.jsonl.gz", two))
  t.eq(total.inserted, 1, "two members, the second damaged: the first member's row imported")
  t.ok(msgs[1] and msgs[1]:find("gzip member 2", 1, true), "two members: the damaged one is named", msgs[1])
  -- trailing garbage after the last member: every row imported, the garbage reported, exit non-zero
  total, msgs = import(file("trail.jsonl.gz", gz2 .. "garbage\n"))
  t.eq(total.inserted, 2, "trailing garbage: the member's rows imported")
  t.ok(total.errors == 1 and msgs[1] and msgs[1]:find("trailing garbage after the compressed data (from byte " .. #gz2 .. ")", 1, true),
       "trailing garbage: reported with its offset", msgs[1])
end

-- non-finite numbers (issue 24 #9): 1e400 is valid JSON but no double; NaN and Infinity are not JSON
do
  local p = file("inf.jsonl", line("AA", TS, ',"px":1e400') .. "\n" .. line("BB", TS, ',"px":-1E+309') .. "\n"
                 .. line("CC", TS, ',"px":Infinity') .. "\n" .. line("DD", TS, ',"px":NaN') .. "\n"
                 .. line("EE", TS, ',"px":1e-400,"big":1.7976931348623157e308') .. "\n"
                 .. '{"ticker":"FF","ts":' .. TS .. ',"payload_json":"{\\"ticker\\":\\"FF\\",\\"price\\":2e999}"}\n')
  local total, msgs = import(p)
  t.eq(total.inserted, 1, "non-finite: only the finite receipt (1e-400, DBL_MAX) imported")
  t.ok(msgs[1] and msgs[1]:find(":1: malformed JSON: a number out of range (not finite as a double) at byte", 1, true), "1e400 named", msgs[1])
  t.ok(msgs[2] and msgs[2]:find(":2: malformed JSON: a number out of range", 1, true), "-1E+309 named", msgs[2])
  t.ok(msgs[3] and msgs[3]:find(":3: malformed JSON", 1, true), "Infinity refused", msgs[3])
  t.ok(msgs[4] and msgs[4]:find(":4: malformed JSON", 1, true), "NaN refused", msgs[4])
  t.ok(msgs[5] and msgs[5]:find(":6: field 'payload_json' is not strict JSON: a number out of range", 1, true),
       "1e400 inside a payload_json string named", msgs[5])
end

-- one JSON-object rule (issue 24 #12): a repeated key is refused (stored from one, validated from the
-- other before), arrays are no payloads, in both import paths
do
  local p = file("dup.jsonl", '{"ticker":"AA","ts":' .. TS .. ',"payload":{"ticker":"AA","ts":' .. TS .. '},"payload":null}\n'
    .. '{"ticker":"BB","ts":' .. TS .. ',"payload":[1,2]}\n'
    .. '{"ticker":"CC","ts":' .. TS .. ',"payload":"[1]"}\n'
    .. '{"ticker":"DD","ts":' .. TS .. ',"payload":{"ticker":"DD","ts":' .. TS .. ',"price":1,"price":2}}\n'
    .. '{"ticker":"EE","ts":' .. TS .. ',"payload":{"ticker":"EE","ts":' .. TS .. '}}\n')
  local total, msgs, db = import(p)
  t.eq(total.inserted, 1, "repeated keys, arrays: only the clean receipt imported")
  t.ok(msgs[1] and msgs[1]:find(":1: malformed JSON: a key repeated in one object at byte", 1, true), "repeated \"payload\" refused", msgs[1])
  t.ok(msgs[2] and msgs[2]:find(":2: field 'payload' is not a JSON object", 1, true), "array payload refused", msgs[2])
  t.ok(msgs[3] and msgs[3]:find(":3: field 'payload' is not a JSON object", 1, true), "array payload as a string refused", msgs[3])
  t.ok(msgs[4] and msgs[4]:find(":4: malformed JSON: a key repeated in one object", 1, true), "repeated key inside the payload refused", msgs[4])
  local ins = function(id, payload)
    return string.format("INSERT INTO ingest_receipts VALUES('%s','AA',%d,%d,%d,'h',NULL,'%s');", id, TS, TS, TS, payload)
  end
  total, msgs = import(file("dup.sql", ins("A:1", '[{"ticker":"AA"}]') .. "\n" .. ins("A:2", '{"x":1,"x":2}') .. "\n"
    .. ins("A:3", '{"x":1e400}') .. "\n" .. ins("A:4", '{"x":1}') .. "\n"))
  t.eq(total.inserted, 1, "dump: the same rule (array, repeated key, 1e400 refused)")
  t.ok(msgs[1] and msgs[1]:find("receipt A:1: field 'payload_json' is not a JSON object", 1, true), "dump: array named", msgs[1])
  t.ok(msgs[2] and msgs[2]:find("receipt A:2: field 'payload_json' is not strict JSON: a key repeated in one object (at byte 8)", 1, true),
       "dump: repeated key named with its offset", msgs[2])
  t.ok(msgs[3] and msgs[3]:find("receipt A:3: field 'payload_json' is not strict JSON: a number out of range", 1, true), "dump: 1e400 named", msgs[3])
end

-- the line cap (issue 24 #13): a line over it is skipped unread and reported; the next is imported
do
  local long = line("AA", TS, ',"pad":"' .. string.rep("x", 5000) .. '"')
  local p = file("long.jsonl", long .. "\n" .. line("BB", TS) .. "\n" .. long:gsub('"AA"', '"AB"') .. "\r\n" .. line("CC", TS))
  local total, msgs = import(p, { max_line = 4096 })
  t.eq(total.inserted, 2, "line cap: the lines under it imported")
  t.eq(total.rejected, 2, "line cap: the lines over it rejected")
  t.ok(msgs[1] and msgs[1]:find(":1: the line is longer than 4096 bytes (the line cap, --max-line-bytes): skipped", 1, true),
       "line cap: named with its line", msgs[1])
  t.ok(msgs[2] and msgs[2]:find(":3: the line is longer", 1, true), "line cap: line numbers still count", msgs[2])
  total = import(p)
  t.eq(total.inserted, 4, "line cap: the default (16 MiB) takes them")
  -- blank lines are skipped in C and still counted in line numbers
  local blanks = string.rep("\n", 300000) .. "  \t\r\n" .. line("DD", TS) .. "\n" .. string.rep("\r\n", 1000) .. "bad\n"
  total, msgs = import(file("blank.jsonl", blanks))
  t.ok(total.read == 2 and total.inserted == 1, "blank lines: not read as lines", total.read)
  t.ok(msgs[1] and msgs[1]:find(":301003: malformed JSON", 1, true), "blank lines: counted in line numbers", msgs[1])
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
  -- a damaged .gz on standard input is checked whole first too (spooled): nothing of it, said first, exit 1
  local gz = gzip_bytes(line("AA", TS) .. "\n" .. line("BB", TS) .. "\n")
  local cut = file("cut-stdin.jsonl.gz", gz:sub(1, #gz - 4))
  pipe = io.popen(os.getenv("RETAPE") .. " import --db " .. dir .. "/stdin-gz.db - < " .. cut .. " 2>&1; echo \"exit $?\"")
  out = pipe:read("a")
  pipe:close()
  t.ok(out:find("^retape import: <stdin>: the compressed input is truncated: gzip member 1") and out:find("inserted 0", 1, true)
       and out:find("exit 1", 1, true), "- with a damaged .gz: reported first, nothing imported, exit 1", out)
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
  -- each statement stands alone (issue 24 #14): cut short (truncated, NUL-cut, no ';') -> rejected, the next kept
  local good = ins("ingest_receipts", "G:1", "GG", '{"x":1}')
  local cuts = {
    { good:sub(1, 40), "truncated inside its VALUES" },
    { good:sub(1, 62), "truncated inside a string" },
    { good:sub(1, 50) .. "\0" .. "xx", "cut by a NUL byte" },
    { good:sub(1, -2), "without its ';'" },
  }
  for i, cut in ipairs(cuts) do
    local next_ = ins("ingest_receipts", "H:" .. i, "HH", '{"x":2}')
    total, msgs = import(file("cut.sql", "BEGIN TRANSACTION;\n" .. cut[1] .. "\n" .. next_ .. "\nCOMMIT;\n"))
    t.ok(total.inserted == 1 and total.rejected == 1 and total.errors == 0, "dump, a statement " .. cut[2] .. ": the next one kept",
         table.concat(msgs, "\n"))
    t.ok(msgs[1] and msgs[1]:find(":2: statement rejected: statement not terminated by ';' before line 3", 1, true),
         "dump, a statement " .. cut[2] .. ": reported with its line", msgs[1])
  end
  -- a statement over the line cap is skipped, the next one kept
  total, msgs = import(file("big.sql", ins("ingest_receipts", "I:1", "II", '{"pad":"' .. string.rep("y", 3000) .. '"}') .. "\n"
                            .. good .. "\n"), { max_line = 1024 })
  t.ok(total.inserted == 1 and total.rejected == 1, "dump, a statement over the cap: the next one kept", table.concat(msgs, "\n"))
  t.ok(msgs[1] and msgs[1]:find(":1: statement rejected: statement longer than 1024 bytes", 1, true), "dump, over the cap: reported", msgs[1])
end

-- a dump statement over many lines is complete only at its real end: ';'
-- inside a string or a comment across lines does not end it; a comment
-- after the ';' that closes on a later line does not hide it
do
  local v = function(id) return string.format("('%s','MM',%d,%d,%d,'h',NULL,'{\"n\":\"a;\",\n\"m\":\"-- b;\",\n\"o\":\"/* c; */\"}')", id, TS, TS, TS) end
  local text = "INSERT INTO ingest_receipts VALUES\n" .. v("M:1") .. ",\n-- a comment; with a semicolon\n" .. v("M:2")
    .. "; /* a comment after the end\nthat closes here */\n"
    .. "INSERT INTO ingest_receipts VALUES " .. v("M:3") .. ";\n"
  local total, msgs, db = import(file("multiline.sql", text))
  t.ok(total.read == 3 and total.inserted == 3 and total.rejected == 0, "dump: statements over many lines, ';' in strings and comments",
       table.concat(msgs, "\n"))
  local sdb = assert(retape.sql.open(db))
  local rows = sdb:rows("SELECT payload_json FROM ingest_receipts WHERE receipt_id LIKE 'M:%' ORDER BY receipt_id")
  sdb:close()
  t.ok(#rows == 3 and rows[3].payload_json == '{"n":"a;",\n"m":"-- b;",\n"o":"/* c; */"}', "dump: the strings kept byte for byte", rows[1] and rows[1].payload_json)
end

os.exit(t.done())
