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
  local function import(bytes, format)
    write(bytes)
    n = n + 1
    local db = string.format("%s/import-%d.db", workdir, n)
    local total, per_file = retape.import.run(db, { input }, { format = format, report = function() end })
    assert(total, "import returned no totals: " .. tostring(per_file))
    if format == "jsonl" then
      assert(total.read == total.inserted + total.duplicate + total.rejected, "counts do not add up")
      if bytes:byte(1) ~= 0x1f then -- not gzip: every non-blank line is read once
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
    h:close()
    os.remove(db)
    assert(bad == 0, bad .. " stored rows are not intact")
    assert(stored == total.inserted, ("inserted %d but %d stored"):format(total.inserted, stored))
    return total
  end
  function H.jsonl(bytes) return import(bytes, "jsonl") end
  function H.sql(bytes) return import(bytes, "sql") end

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

  -- Raises unless a and b are the same value built the same way: equal
  -- types, numbers equal bit for bit (integer or float, -0, NaN), tables
  -- with the same metatable (partial or not) and the same keys in the same
  -- `next` order (read raw: nothing is decoded lazily here).
  local function same_raw(a, b, path)
    if type(a) ~= type(b) then error(path .. ": " .. type(a) .. " vs " .. type(b), 0) end
    if type(a) == "number" then
      if math.type(a) ~= math.type(b) or string.pack("<n", a) ~= string.pack("<n", b) then
        error(("%s: %.17g vs %.17g"):format(path, a, b), 0)
      end
    elseif type(a) == "table" then
      if getmetatable(a) ~= getmetatable(b) then error(path .. ": partial in one decode only", 0) end
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
