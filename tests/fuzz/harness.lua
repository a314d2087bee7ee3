-- harness.lua — what the fuzz targets and the corpus replay feed inputs to:
-- the JSON-lines reader (ingest.lines + import validation), the SQL-dump
-- reader (ingest.statements + staging + validation) and the payload decoder
-- (the source cursor's decoding of payload_json, then the state encoder),
-- and the simdjson front end of that decoder against its hand-written
-- scanner (H.simd: the same tables, or the same error).
-- Each function takes the input bytes and checks the invariants every input
-- must keep; it raises (a finding) only when one is broken.
--
--   local H = dofile("tests/fuzz/harness.lua")(workdir)
--   H.jsonl(bytes); H.sql(bytes); H.payload(bytes); H.simd(bytes)
--   H.gz(bytes)      3 control bytes + text: members, one flipped byte, trailing garbage
--   H.sqlcut(bytes)  the bytes between good dump statements (each must stand alone)
local retape = require "retape"

return function(workdir)
  local H = {}
  local input = workdir .. "/input"
  local n = 0

  local function write(bytes)
    local f = assert(io.open(input, "wb"))
    f:write(bytes)
    f:close()
  end

  -- Imports the bytes in a format into a fresh database; the totals must
  -- always come back and add up, a plain JSON-lines input must be read line
  -- for line (nothing merged), and every stored row must be intact: no NUL
  -- in its keys, a plausible ts and its own bucket.
  local sql = require "retape.sql"
  local function import(bytes, format, path, reports)
    path = path or input
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
    n = n + 1
    local db = string.format("%s/import-%d.db", workdir, n)
    local total, per_file = retape.import.run(db, { path }, { format = format,
      report = function(m, kind) if reports then reports[#reports + 1] = { m, kind } end end })
    assert(total, "import returned no totals: " .. tostring(per_file))
    if format == "jsonl" then
      assert(total.read == total.inserted + total.duplicate + total.rejected, "counts do not add up")
      -- not gzip: every non-blank line is read once (a .gz whose first byte
      -- was flipped is damaged gzip, not text: the gz target checks it)
      if bytes:byte(1) ~= 0x1f and not path:find("%.gz$") then
        local lines = 0
        for l in (bytes .. "\n"):gmatch("([^\n]*)\n") do if l:find("[^ \t\r]") then lines = lines + 1 end end
        assert(total.read == lines, ("read %d of %d lines"):format(total.read, lines))
      end
    end
    assert(total.inserted >= 0 and total.inserted + total.duplicate <= total.read, "inserted more than read")
    if per_file[1].error then assert(not per_file[1].error:find("traceback", 1, true), "traceback in: " .. per_file[1].error) end
    local h = assert(sql.open(db))
    local bad = h:rows([[SELECT count(*) AS n FROM ingest_receipts WHERE
        instr(CAST(receipt_id AS BLOB), x'00') > 0 OR instr(CAST(ticker AS BLOB), x'00') > 0
        OR ts < 946684800000 OR ts >= 4102444800000 OR bucket_5m <> ts - ts % 300000
        OR payload_json IS NULL OR json_valid(payload_json) = 0]])[1].n
    local stored = h:rows("SELECT count(*) AS n FROM ingest_receipts")[1].n
    local parts = {}
    for _, r in ipairs(h:rows("SELECT receipt_id, payload_json FROM ingest_receipts ORDER BY receipt_id")) do
      parts[#parts + 1] = r.receipt_id .. "\0" .. r.payload_json
    end
    h:close()
    os.remove(db)
    assert(bad == 0, bad .. " stored rows are not intact")
    assert(stored == total.inserted, ("inserted %d but %d stored"):format(total.inserted, stored))
    return total, table.concat(parts, "\n"), per_file
  end
  function H.jsonl(bytes) return import(bytes, "jsonl") end
  function H.sql(bytes) return import(bytes, "sql") end

  -- The .gz reader's rules: byte 1 picks 1-4 members (the text split in
  -- even shares, at any byte) and, from 128, trailing garbage; bytes 2-3 a
  -- byte to flip (0: none).  A flip in a member's MTIME/XFL/OS (header bytes
  -- 4-9) is harmless; anywhere else it damages that member.  Then the rows
  -- stored must be exactly those of the text of the members before the
  -- first damaged one (its last partial line dropped), nothing decoded from
  -- a damaged member, and the damage (or the garbage) must be the first
  -- thing reported, with the input counted as failed.
  local gz_path = workdir .. "/input.jsonl.gz"
  function H.gz(bytes)
    if #bytes < 3 then return end
    local c1, c2, c3 = bytes:byte(1, 3)
    local text = bytes:sub(4)
    local k, size = c1 % 4 + 1, #text
    local files = {}
    for i = 1, k do
      local part = text:sub((i - 1) * size // k + 1, i * size // k)
      local f = assert(io.open(("%s/part%d"):format(workdir, i), "wb"))
      f:write(part)
      f:close()
      files[i] = { text = part }
    end
    assert(os.execute(("cd %s && gzip -nf part1 part2 part3 part4 2>/dev/null; true"):format(workdir)))
    local members, starts, at = {}, {}, 0
    for i = 1, k do
      local f = assert(io.open(("%s/part%d.gz"):format(workdir, i), "rb"))
      members[i] = f:read("a")
      f:close()
      starts[i] = at
      at = at + #members[i]
    end
    local gz = table.concat(members)
    local damaged
    local flip = (c2 * 256 + c3) % (#gz + 1)
    if flip > 0 then
      local m = k
      while starts[m] >= flip do m = m - 1 end
      local rel = flip - 1 - starts[m]
      if rel < 4 or rel > 9 then damaged = m end
      gz = gz:sub(1, flip - 1) .. string.char(gz:byte(flip) ~ (1 << (c1 % 8))) .. gz:sub(flip + 1)
    end
    local garbage = c1 >= 128
    if garbage then gz = gz .. "garbage\n" end
    local good = {}
    for i = 1, (damaged or k + 1) - 1 do good[#good + 1] = files[i].text end
    local expect = table.concat(good)
    if damaged or garbage then expect = expect:match("^(.*\n)") or "" end -- the partial last line is not returned
    local reports = {}
    local total, rows = import(gz, "jsonl", gz_path, reports)
    local _, want = import(expect, "jsonl")
    assert(rows == want, ("rows differ from the intact members' (damaged member %s, garbage %s)"):format(
      tostring(damaged), tostring(garbage)))
    if damaged or garbage then
      assert(total.errors == 1, "a damaged .gz (or trailing garbage) must fail the input")
      assert(reports[1] and reports[1][2] == "input", "the damage must be reported first: " .. tostring(reports[1] and reports[1][1]))
    else
      assert(total.errors == 0, "an intact .gz failed: " .. tostring(reports[1] and reports[1][1]))
    end
    return total
  end

  -- The dump reader's rule: each statement stands alone.  The bytes sit
  -- between good statements (each on its own line); whatever they hold
  -- (a statement cut short, a NUL, an open quote or comment, a trigger...),
  -- the good statements after them must still be imported.
  local TS = 1770042600000
  function H.sqlcut(bytes)
    local function good(i)
      return ("INSERT INTO ingest_receipts VALUES('G%d:zq','GG',%d,%d,%d,'h',NULL,'{\"i\":%d}');"):format(
        i, TS + i, TS, TS + i, i)
    end
    local text = good(1) .. "\n" .. bytes .. "\n" .. good(2) .. "\n" .. good(3) .. "\n"
    local total, rows = import(text, "sql")
    for i = 1, 3 do
      assert(("\n" .. rows .. "\n"):find(("\nG%d:zq\0"):format(i), 1, true), ("good statement %d lost"):format(i))
    end
    return total
  end

  -- One receipt with the bytes as payload_json, read back through the
  -- source cursor: the row must carry either a decoded payload or an
  -- error naming the receipt, and a decoded payload must encode (or be
  -- refused with a message, never crash).
  local db = workdir .. "/payload.db"
  local handle
  function H.payload(bytes)
    if not handle then
      local w = assert(retape.ingest.writer(db))
      w:insert { receipt_id = "FZ:1", ticker = "FZ", ts = 1770042600000, bucket_5m = 1770042600000,
                 received_ts = 1770042600000, payload_hash = "0", payload_json = "{}" }
      assert(w:close())
      handle = assert(sql.open(db))
    end
    local up <close> = handle:prepare("UPDATE ingest_receipts SET payload_json = ?")
    up:run(bytes)
    local src = assert(retape.source.open(db))
    local cur = assert(src:cursor(1770042600000, {}))
    local rows = cur:fetch(10)
    cur:close()
    src:close()
    assert(#rows == 1, "the receipt was not read back")
    local r = rows[1]
    assert(r.payload_json == bytes, "payload_json changed on the way")
    if r.payload then
      assert(type(r.payload) == "table", "payload is not a table")
      local ok, e = pcall(retape.json.encode, r.payload)
      assert(ok or (type(e) == "string" and e:find("cannot encode", 1, true)), "encoder failed: " .. tostring(e))
    else
      assert(type(r.error) == "string" and r.error:find("receipt FZ:1", 1, true), "no error naming the receipt")
    end
    n = n + 1
    return r
  end

  -- How a decoded table is partial: its node's metatable (a root, whole
  -- tables: none), or, for a nested partial object, the payload's own
  -- metatable (one per decode: its text at [1]), known by the metamethods
  -- every payload of the field set shares.
  local function partial_kind(t)
    local mt = getmetatable(t)
    if mt and type(rawget(mt, 1)) == "string" then return rawget(mt, "__index") end
    return mt
  end

  -- Raises unless a and b are the same value built the same way: equal
  -- types, numbers equal bit for bit (integer or float, -0, NaN), tables
  -- partial the same way (partial_kind) and with the same keys in the same
  -- `next` order (read raw: nothing is decoded lazily here).
  local function same_raw(a, b, path)
    if type(a) ~= type(b) then error(path .. ": " .. type(a) .. " vs " .. type(b), 0) end
    if type(a) == "number" then
      if math.type(a) ~= math.type(b) or string.pack("<n", a) ~= string.pack("<n", b) then
        error(("%s: %.17g vs %.17g"):format(path, a, b), 0)
      end
    elseif type(a) == "table" then
      if partial_kind(a) ~= partial_kind(b) then error(path .. ": partial in one decode only", 0) end
      local ka, kb
      repeat
        ka, kb = next(a, ka), next(b, kb)
        if ka ~= kb then error(path .. ": keys differ or come in another order: " .. tostring(ka) .. " vs " .. tostring(kb), 0) end
        if ka ~= nil then same_raw(rawget(a, ka), rawget(b, kb), path .. "." .. tostring(ka)) end
      until ka == nil
    elseif a ~= b then
      error(path .. ": " .. tostring(a) .. " vs " .. tostring(b), 0)
    end
  end

  -- The field sets H.simd decodes with: both shipped rulesets' (what a
  -- replay decodes), nested paths and "*" at several levels, none.
  local sets
  local function field_sets()
    if not sets then
      local decode, rules, STATE = retape.decode, retape.rules, retape.store.STATE_FIELDS
      sets = {
        decode.compile(rules.load("worker-2026-02-02").fields, STATE),
        decode.compile(rules.load("default").fields, STATE),
        decode.compile { "price", "flags.sq30_on", "tf_tech.4H.ema", "tp_levels.*.price", "rsi", "*x", "a.b.c", "a.*.d" },
        decode.compile { "*" },
        decode.compile { "*.*.x" },
        decode.compile {},
      }
    end
    return sets
  end

  -- The bytes as a payload, decoded by simdjson first and by the
  -- hand-written scanner first, with each field set: both give the same
  -- tables (raw, then completed) or the same error; simdjson decides only
  -- what the scanner decides (it hands everything else on).  Returns the
  -- decoder that gave the simdjson-first result with the first field set.
  local decode, json = retape.decode, retape.json
  function H.simd(bytes)
    local first
    for i, fs in ipairs(field_sets()) do
      local a, ea, ua = decode.decode(fs, bytes, "simd")
      local b, eb, ub = decode.decode(fs, bytes, "scanner")
      first = first or ua
      if (a == nil) ~= (b == nil) or ea ~= eb then
        error(("field set %d: simd %s vs scanner %s"):format(i, tostring(ea or ua), tostring(eb or ub)), 0)
      end
      if ua ~= ub and not (ua == "simd" and ub == "scanner") then
        error(("field set %d: decided by %s with simdjson first, by %s with the scanner first"):format(i, ua, ub), 0)
      end
      if a then
        same_raw(a, b, "set " .. i)
        decode.materialize(a)
        decode.materialize(b)
        same_raw(a, b, "set " .. i .. " completed")
        local oka, ja = pcall(json.encode, a)
        local okb, jb = pcall(json.encode, b)
        if oka ~= okb or ja ~= jb then error(("field set %d: re-encoded bytes differ"):format(i), 0) end
      end
    end
    n = n + 1
    return first
  end

  return H
end
