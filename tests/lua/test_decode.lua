-- test_decode.lua — retape.decode, the selective payload decoder: on every
-- bundled receipt, the three full-shape payloads and fuzzed payloads, a
-- selective decode (declared fields at once, the rest lazily) equals a full
-- lua-cjson decode field by field (types, integer/float, signed zeros) and
-- as re-encoded bytes; malformed payloads keep cjson's error (receipt id,
-- byte offset); rule writes win over lazily decoded values.  The simdjson
-- front end (core/json_simd.cpp) builds the same tables as the hand-written
-- scanner on all of these (tests/fuzz/harness.lua's H.simd compares them).
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local decode = retape.decode
local json = retape.json
local cjson = require "cjson.safe"

local R = retape.rules.load("worker-2026-02-02")
local STATE_FIELDS = retape.store.STATE_FIELDS
local FS_RULES = decode.compile(R.fields, STATE_FIELDS)
local FS_NESTED = decode.compile { "price", "flags.sq30_on", "tf_tech.4H.ema", "tp_levels.*.price", "rsi", "*x" }
local FS_EMPTY = decode.compile {}
local FS_WILD = decode.compile { "*" }
local FIELD_SETS = { rules = FS_RULES, nested = FS_NESTED, empty = FS_EMPTY, wild = FS_WILD }

-- Deep equality that tells floats from integers and -0 from 0 (plain ==
-- and the encoder's shortest text do not).
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b) end
    if a ~= a and b ~= b then return true end
    if a ~= b or (a == 0 and 1 / a ~= 1 / b) then return false, string.format("%s: %.17g vs %.17g", path, a, b) end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  for k, v in pairs(b) do
    local ok, why = same(a[k], v, path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(a) do
    if b[k] == nil then return false, path .. "." .. tostring(k) .. ": extra key" end
  end
  return true
end

-- Compares the selective decode of text with the full decode: both fail
-- with the same message, or the values are equal (read field by field
-- through the lazy table first, then materialized and re-encoded).
-- The reference: a full decode by a cjson that, as payloads are decoded,
-- refuses NaN, Infinity and hex; a decoded payload holding a number that
-- overflows a double (1e400 -> inf) must be refused naming it (issue 24 #9).
local ref_cjson = require("cjson.safe").new()
ref_cjson.decode_invalid_numbers(false)
local function has_nonfinite(v)
  if type(v) == "number" then return v ~= v or v == math.huge or v == -math.huge end
  if type(v) == "table" then for _, x in pairs(v) do if has_nonfinite(x) then return true end end end
  return false
end
local function check_text(text, fs)
  local full, ferr = ref_cjson.decode(text)
  local sel, serr = decode.decode(fs, text)
  if type(full) == "table" and has_nonfinite(full) then
    if sel ~= nil or not tostring(serr):find("a number that is not finite as a double, at byte", 1, true) then
      return false, "a non-finite number was not refused: " .. tostring(serr)
    end
    return true
  end
  if full == nil or type(full) ~= "table" then
    if sel ~= nil and type(full) ~= "table" and full ~= nil then return false, "a non-table JSON value decoded" end
    -- cjson's message, as it wrote it; the field is named after it when cjson stopped at a number it refuses
    if full == nil and (sel ~= nil or (serr ~= ferr and tostring(serr):sub(1, #ferr + 9) ~= ferr .. " (field '")) then
      return false, "error differs: " .. tostring(serr) .. " vs " .. tostring(ferr)
    end
    return true
  end
  if sel == nil then return false, "selective decode failed: " .. tostring(serr) end
  -- field by field through the lazy table (index first, then pairs)
  for k, v in pairs(full) do
    local ok, why = same(sel[k], v, k)
    if not ok then return false, "field " .. why end
  end
  local ok, why = same(sel, full, "payload")
  if not ok then return false, why end
  decode.materialize(sel)
  local a, b = json.encode(sel), json.encode(full)
  if a ~= b then return false, "re-encoded bytes differ" end
  return true
end

---------------------------------------------------------------------------
-- every bundled receipt, through the cursor (real SQLite file)

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local db = P.receipts_db(tmp)
do
  local src = assert(retape.source.open(db))
  local rows, bad, first_bad, declared_ok, lazy_free = 0, 0, nil, true, true
  for _, b in ipairs(src:buckets {}) do
    local c1 <close> = assert(src:cursor(b.bucket, {}))
    local c2 <close> = assert(src:cursor(b.bucket, {}))
    while true do
      local sel = c1:fetch(256, FS_RULES)
      local full = c2:fetch(256)
      if #sel == 0 then break end
      for i = 1, #sel do
        local s, f = sel[i], full[i]
        rows = rows + 1
        -- declared fields are there before any lazy decode
        for _, k in ipairs { "price", "state", "htf_score", "flags", "ts" } do
          if not same(rawget(s.payload, k), f.payload[k], k) then declared_ok = false end
        end
        if rawget(s.payload, "src_marker_never") ~= nil then lazy_free = false end
        local ok, why = check_text(s.payload_json, FS_RULES)
        if ok then ok, why = same(s.payload, f.payload, "payload") end
        if ok then
          decode.materialize(s.payload)
          ok = json.encode(s.payload) == json.encode(f.payload)
          why = why or "bytes"
        end
        if ok then
          for name, fs in pairs(FIELD_SETS) do
            local ok2, why2 = check_text(s.payload_json, fs)
            if not ok2 then ok, why = false, name .. ": " .. why2; break end
          end
        end
        if not ok then bad = bad + 1; first_bad = first_bad or (s.receipt_id .. ": " .. tostring(why)) end
      end
    end
  end
  src:close()
  t.ok(rows > 39000, "every bundled receipt compared (" .. rows .. ")")
  t.eq(bad, 0, "selective + lazy decode equals a full decode on every bundled receipt (4 field sets)")
  if first_bad then print("# first difference: " .. first_bad) end
  t.ok(declared_ok and lazy_free, "declared fields are present without any lazy decode")
end

---------------------------------------------------------------------------
-- the three full-shape payloads

local payloads = {}
for _, name in ipairs { "A_AAPL_long_momentum_2026-02-06", "B_AGQ_setup_late_2026-02-02", "C_NBIS_short_momentum_2026-02-02" } do
  local f = assert(io.open(P.DATA .. "/payloads/" .. name .. ".json"))
  payloads[#payloads + 1] = f:read("a")
  f:close()
end
for i, text in ipairs(payloads) do
  for name, fs in pairs(FIELD_SETS) do
    local ok, why = check_text(text, fs)
    t.ok(ok, ("full-shape payload %d, field set %s: equal to a full decode"):format(i, name), why)
  end
end

-- a small rest: a payload whose top level has at most four undeclared
-- members, all scalars, comes out whole (those decoded with it: a plain
-- table, where a read of an absent declared key is a table miss); five, or
-- any object or array among them, leave it partial, and so does a nested
-- object always; both decoders decide alike
do
  local fs = decode.compile { "a", "o.x", "absent", "pad" }
  local pad = (' "pad": "%s",'):format(string.rep("p", 1100)) -- (declared: a text large enough for simdjson)
  local cases = {
    { '{"a":1,"b":"two","c":true,"d":null,"e":2.5}', true, "four undeclared scalars" },
    { '{"a":1,"b":1,"c":2,"d":3,"e":4,"f":5}', false, "five undeclared scalars" },
    { '{"a":1,"b":[1],"c":2}', false, "an undeclared array" },
    { '{"a":1,"b":{"y":1}}', false, "an undeclared object" },
    { '{"e":"\\u00e9\\n","b":-0.0,"a":1}', true, "two undeclared scalars, escaped text" },
    { '{"o":{"x":1,"y":"z"}}', false, "a nested object's undeclared scalar", "o" },
  }
  for _, engine in ipairs { "simd", "scanner" } do
    for _, c in ipairs(cases) do
      local text, whole, what = c[1], c[2], c[3]
      if engine == "simd" then text = text:gsub("^{", "{" .. pad) end
      local obj_of = function(p) return c[4] and p[c[4]] or p end
      local p, _, used = decode.decode(fs, text, engine)
      local o = obj_of(p)
      local full = obj_of(assert(cjson.decode(text)))
      local same = true
      for k, v in pairs(full) do if k ~= "pad" and rawget(o, k) ~= v and whole then same = false end end
      t.ok(used == engine and (getmetatable(o) == nil) == whole and same,
        ("%s: %s: %s"):format(engine, what, whole and "whole, every value equal to cjson's" or "partial"))
      t.ok(o.absent == nil and rawget(o, "missing") == nil, engine .. ": " .. what .. ": an absent key reads nil")
      local keys = 0
      for _ in pairs(o) do keys = keys + 1 end
      local want = 0
      for _ in pairs(full) do want = want + 1 end
      t.eq(keys, want, engine .. ": " .. what .. ": pairs() sees every member")
    end
  end
  -- a real receipt (two undeclared scalars beside the parity fields): whole
  local real = '{"ticker":"MDB","ts":1769543700000,"price":413.4,"htf_score":35.2,"ltf_score":1.7,"state":"HTF_BULL_LTF_BULL","completion":0.306,"phase_pct":0.004,"rank_trail":0,"trigger_reason":"SQUEEZE_RELEASE","flags":{}}'
  local p = assert(decode.decode(FS_RULES, real))
  t.ok(getmetatable(p) == nil and rawget(p, "trigger_reason") == "SQUEEZE_RELEASE" and rawget(p, "rank_trail") == 0,
    "a real receipt decodes whole: its two undeclared scalars with the declared fields")
end

-- selectivity and laziness on payload A
do
  local p = assert(decode.decode(FS_RULES, payloads[1]))
  t.ok(rawget(p, "price") == 278.53 and rawget(p, "sector") == nil, "declared fields decoded, others not yet")
  t.eq(rawget(p.tf_tech["4H"].ema, "stack"), 4.0, "nested declared field (tf_tech.*.ema.stack) decoded")
  t.eq(rawget(p.tf_tech["4H"].ema, "vis"), nil, "its undeclared siblings are not (a nested object: never a small rest)")
  t.eq(p.tf_tech["4H"].ema.vis, 127.0, "an undeclared nested field decodes on first access")
  t.eq(rawget(p.tp_levels[2], "label"), nil, "array elements are partial too (tp_levels.*.price)")
  t.eq(p.tp_levels[2].label, "TP", "and complete themselves on access")
  p.price = 1.5
  p.kanban_stage = "hold"
  p.sl = nil
  t.eq(p.sector, "Information Technology", "an undeclared top-level field decodes on first access")
  t.eq(p.price, 1.5, "a value written by a rule wins over the lazy decode")
  t.eq(p.kanban_stage, "hold", "a new field written by a rule stays")
  t.eq(p.sl, nil, "a declared field the rule cleared stays cleared after the lazy decode")
  t.eq(p.no_such_field, nil, "a field the payload lacks is nil after the lazy decode")
  t.eq(p[1], nil, "a non-string key is nil without decoding (objects have string keys)")
  local q = assert(decode.decode(FS_RULES, payloads[1]))
  t.eq(rawget(q, "sector"), nil, "before pairs: undeclared field absent")
  local n = 0
  for _ in pairs(q) do n = n + 1 end
  local full = assert(cjson.decode(payloads[1]))
  local m = 0
  for _ in pairs(full) do m = m + 1 end
  t.eq(n, m, "pairs() over a partial payload sees every field")
  local absent = assert(decode.decode(FS_RULES, '{"price":1}'))
  t.eq(absent.kanban_meta, nil, "a declared field the payload lacks reads nil")
end

-- nested partial objects keep no text of their own: the payload's one
-- metatable holds the root's text, their side entries where theirs is in it
-- (with either decoder: payload A is decoded by simdjson, then the scanner)
for _, engine in ipairs { "simd", "scanner" } do
  local fs = decode.compile(R.fields, STATE_FIELDS)
  local text = (" " .. payloads[1]):sub(2) -- a string of its own, collected with the payload
  local p, _, used = decode.decode(fs, text, engine)
  t.eq(used, engine, engine .. " decodes payload A")
  local lv2, lv3, w = p.tp_levels[2], p.tp_levels[3], p.tf_tech.W
  local q = assert(decode.decode(fs, text, engine))
  t.ok(getmetatable(lv2) == getmetatable(w) and getmetatable(lv2) ~= getmetatable(q.tp_levels[2])
       and getmetatable(lv2) ~= getmetatable(p),
    engine .. ": a payload's nested partial objects share its own metatable (not another payload's, not the root's)")
  -- the payload, its text and every other reference gone: what a rule kept still completes
  p, q, text = nil, nil, nil
  for _ = 1, 3 do collectgarbage() end
  local churn = {}
  for i = 1, 2000 do churn[i] = string.rep(string.char(65 + i % 26), 5000 + i) end
  churn = nil
  collectgarbage()
  local full = assert(cjson.decode(payloads[1]))
  t.eq(lv2.label, full.tp_levels[2].label, engine .. ": a kept nested object completes after its payload is collected")
  t.eq(decode.misses(fs).label, 1, engine .. ": its first undeclared read counts as a miss")
  local keys = 0
  for _ in pairs(lv3) do keys = keys + 1 end
  local want = 0
  for _ in pairs(full.tp_levels[3]) do want = want + 1 end
  t.eq(keys, want, engine .. ": pairs() completes a nested object")
  t.eq(w.ema.vis, full.tf_tech.W.ema.vis, engine .. ": a nested object inside a nested one completes")
  t.eq(decode.misses(fs).label, 1, engine .. ": pairs() is no miss")
end

-- jsonenc.copy (what a trades-only replay holds a trade as, a sweep's
-- variant its payload as) of a partial payload or of a nested partial
-- object: the copy holds every field, undeclared ones included, whichever
-- decoder made it (a copy has no pending text of its own to complete from)
do
  local copy = require("retape.jsonenc").copy
  for _, engine in ipairs { "simd", "scanner" } do
    local fs = decode.compile(R.fields, STATE_FIELDS)
    local p = assert(decode.decode(fs, payloads[1], engine))
    local full = assert(cjson.decode(payloads[1]))
    local held = { level = p.tp_levels[2], root = p }
    local c = copy(held)
    p, held = nil, nil
    for _ = 1, 3 do collectgarbage() end
    t.eq(c.level.label, full.tp_levels[2].label, engine .. ": a copied nested partial object holds its undeclared fields")
    t.eq(c.root.tf_tech.W.ema.vis, full.tf_tech.W.ema.vis, engine .. ": a copied partial payload holds its undeclared nested fields")
    local n, m = 0, 0
    for _ in pairs(c.root) do n = n + 1 end
    for _ in pairs(full) do m = m + 1 end
    t.eq(n, m, engine .. ": a copied partial payload holds every top-level field")
    t.eq(json.encode(c.root.tp_levels[3]), json.encode(full.tp_levels[3]), engine .. ": and encodes as the whole object")
    -- every serializer walks a partial table whole: what a rule keeps of a
    -- payload (in a trade, its state) is stored the same whichever decoder
    -- made it (the payload fresh each time: nothing completed before)
    local function fresh() return (assert(decode.decode(fs, payloads[1], engine))) end
    t.eq(json.encode { x = fresh().tp_levels[2] }, json.encode { x = full.tp_levels[2] },
      engine .. ": json.encode of a nested partial object writes its undeclared fields")
    t.eq(json.encode(fresh()), json.encode(full), engine .. ": json.encode of a partial payload writes it whole")
    t.eq(require("retape.pack").encode { x = fresh().tf_tech }, require("retape.pack").encode { x = full.tf_tech },
      engine .. ": pack.encode of nested partial objects packs them whole")
    local ex = require("retape.jsonenc").extract({ lv = fresh().tp_levels[1] }, { "lv" }, { lv = "table" })
    t.eq(json.encode(ex.lv), json.encode(full.tp_levels[1]), engine .. ": a state field holding a partial object is kept whole")
    local pk = require "retape.pack"
    t.eq(pk.encode(fresh(), "x", pk.encode(1)), pk.encode(full, "x", pk.encode(1)),
      engine .. ": pack.encode(obj, key, packed) of a partial payload packs it whole")
  end
end

-- only the decoder's own completion runs inside a serializer: a table a
-- rule gave a __pairs of its own is walked raw, its __pairs never called
-- (it would run outside the sandbox's budget)
do
  local called = 0
  local mt = { __pairs = function(tb) called = called + 1; return next, tb, nil end }
  local function own() return setmetatable({ a = 1, b = { c = "x" } }, mt) end
  local jsonenc, pk = require "retape.jsonenc", require "retape.pack"
  t.eq(json.encode(own()), '{"a":1,"b":{"c":"x"}}', "json.encode walks a rule's table with __pairs raw")
  t.eq(pk.decode(pk.encode(own())).b.c, "x", "pack.encode walks it raw")
  t.eq(jsonenc.copy(own()).b.c, "x", "jsonenc.copy walks it raw")
  t.eq(jsonenc.extract({ s = own() }, { "s" }, { s = "table" }).s.a, 1, "extract walks it raw")
  t.eq(decode.materialize(own()).a, 1, "decode.materialize walks it raw")
  t.eq(called, 0, "no serializer called the rule's __pairs")
end

-- a field set of more nodes than a side entry can name: the objects past
-- it keep a copy of their text (their node's metatable), and complete alike
do
  local paths, parts = {}, {}
  for i = 1, 2100 do
    paths[#paths + 1] = ("k%04d.x"):format(i)
    parts[#parts + 1] = ('"k%04d":{"x":%d,"y":["y%d"]}'):format(i, i, i) -- (an array: never a small remainder)
  end
  local fs = decode.compile(paths)
  local text = "{" .. table.concat(parts, ",") .. "}"
  for _, engine in ipairs { "simd", "scanner" } do
    local p, _, used = decode.decode(fs, text, engine)
    t.eq(used, engine, engine .. " decodes the 2,100 objects")
    -- node ids follow the keys' byte order at each level, in every run (the
    -- root is 1): k0001..k2046 fit an entry, k2047..k2100 keep their text
    local objects, shared, own, selective = {}, 0, 0, 0
    for i = 1, 2100 do
      local o = rawget(p, ("k%04d"):format(i))
      objects[i] = o
      if i <= 2046 and type(rawget(getmetatable(o), 1)) == "string" then shared = shared + 1
      elseif i > 2046 and getmetatable(o) ~= nil and rawget(getmetatable(o), 1) == nil then own = own + 1 end
      if rawget(o, "y") == nil and o.x == i then selective = selective + 1 end
    end
    t.ok(shared == 2046 and own == 54, engine .. ": the objects of nodes 2..2047 get the payload's metatable, the 54 past them their node's",
      shared .. " / " .. own)
    t.eq(selective, 2100, engine .. ": every object decoded selectively")
    p = nil
    collectgarbage()
    local complete = 0
    for i = 1, 2100 do if objects[i].y[1] == "y" .. i then complete = complete + 1 end end
    t.eq(complete, 2100, engine .. ": and every one completes on access")
  end
end

---------------------------------------------------------------------------
-- fuzzed payloads: mutations of the full-shape texts and of real receipts

local seed = tonumber(os.getenv("RETAPE_FUZZ_SEED")) or 20261123
print("# fuzz seed " .. seed .. " (RETAPE_FUZZ_SEED to change)")
math.randomseed(seed)
local SPECIALS = { "{", "}", "[", "]", ",", ":", '"', "\\", "\\u00e9", "\\ud83d\\ude00", "\\n", "-", ".", "e", "E", "+",
  "0", "1e400", "1e-400", "true", "tru", "null", "nul", "\t", "\1", " ", "0.1", "-0", "1.", "01", "\\x", "\"\"",
  "123456789012345678901234", "0.30000000000000004", "1.7976931348623157e308", "5e-324", "9007199254740993",
  "\\u0000", "\\/", "\255", "]]", "{}", "[]" }
local function mutate(text)
  local n = #text
  for _ = 1, math.random(1, 3) do
    local at = math.random(1, n)
    local kind = math.random(1, 4)
    if kind == 1 then       -- insert a JSON-special piece
      text = text:sub(1, at - 1) .. SPECIALS[math.random(#SPECIALS)] .. text:sub(at)
    elseif kind == 2 then   -- delete a few bytes
      text = text:sub(1, at - 1) .. text:sub(at + math.random(1, 4))
    elseif kind == 3 then   -- replace one byte
      text = text:sub(1, at - 1) .. string.char(math.random(32, 126)) .. text:sub(at + 1)
    else                    -- replace a number with another
      local s, e = text:find("%-?%d+%.?%d*", at)
      if s then
        local forms = { "%.17g", "%.3f", "%.0f", "%e", "%.15g", "%.1f" }
        local v = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
        text = text:sub(1, s - 1) .. string.format(forms[math.random(#forms)], v) .. text:sub(e + 1)
      end
    end
    n = #text
  end
  return text
end
do
  local bases = { payloads[1], payloads[2], payloads[3] }
  local src = assert(retape.source.open(db))
  local list = src:buckets {}
  for i = 1, 6 do
    local cur <close> = assert(src:cursor(list[math.random(#list)].bucket, {}))
    local rows = cur:fetch(3, false)
    for _, r in ipairs(rows) do bases[#bases + 1] = r.payload_json end
    if i == 6 then src:close() end
  end
  local cases, bad, first_bad, malformed, names = 0, 0, nil, 0, {}
  for name in pairs(FIELD_SETS) do names[#names + 1] = name end
  table.sort(names)
  for i = 1, 3000 do
    local text = mutate(bases[(i % #bases) + 1])
    if not cjson.decode(text) then malformed = malformed + 1 end
    for _, name in ipairs(names) do
      cases = cases + 1
      local ok, why = check_text(text, FIELD_SETS[name])
      if not ok then
        bad = bad + 1
        first_bad = first_bad or (("case %d (%s): %s\n%s"):format(i, name, why, text:sub(1, 300)))
      end
    end
  end
  t.ok(malformed > 300 and malformed < 2900, ("fuzz: a mix of malformed (%d) and valid payloads"):format(malformed))
  t.eq(bad, 0, ("fuzz: %d mutated payloads x field sets equal a full decode, or fail with its message"):format(cases))
  if first_bad then print("# " .. first_bad:gsub("\n", "\n# ")) end
end

-- numbers: the fast path against strtod (through cjson) on random forms
do
  local bad, first_bad = 0, nil
  for _ = 1, 20000 do
    local forms = { "%.17g", "%.15g", "%.16g", "%.2f", "%.0f", "%.6e", "%.20g", "%d" }
    local form = forms[math.random(#forms)]
    local v = form == "%d" and math.random(-2 ^ 53, 2 ^ 53) or (math.random() - 0.5) * 10 ^ math.random(-320, 310)
    local s = string.format(form, v)
    local want = not s:find("[in][na][fn]") and cjson.decode("[" .. s .. "]") -- inf/nan: not JSON, cjson decides
    want = want and want[1]
    local got = decode.number(s)
    if want and not same(got, want, s) then
      bad = bad + 1
      first_bad = first_bad or s
    end
  end
  t.eq(bad, 0, "20000 random numbers parse to the same double as cjson (strtod)" .. (first_bad and (": " .. first_bad) or ""))
  for _, s in ipairs { "0", "-0", "0.1", "123.456", "1e22", "1e23", "9007199254740993", "2.2250738585072014e-308",
                       "4.9e-324", "1.7976931348623157e308", "0.000001234", "12345678901234567890.5" } do
    local ok = same(decode.number(s), cjson.decode("[" .. s .. "]")[1], s)
    t.ok(ok, "number " .. s .. " as cjson reads it")
  end
end

---------------------------------------------------------------------------
-- errors: malformed payloads through the cursor keep receipt id and offset

do
  local dir = t.tempdir()
  local bad_db = dir .. "/bad.db"
  local w = assert(retape.ingest.writer(bad_db))
  local texts = { '{"price": 1,, }', '{"price": 1', '[1,2]', '{"price": 1} x', '{"a":"\\ud800"}', '{"flags":{"x":tru}}' }
  for i, text in ipairs(texts) do
    w:insert { receipt_id = "BAD:" .. (1770042600000 + i) .. ":0", ticker = "BAD", ts = 1770042600000 + i,
               bucket_5m = 1770042600000, received_ts = 0, payload_hash = "0", payload_json = text }
  end
  w:close()
  local src = assert(retape.source.open(bad_db))
  local c1 <close> = assert(src:cursor(1770042600000, {}))
  local c2 <close> = assert(src:cursor(1770042600000, {}))
  local sel, full = c1:fetch(10, FS_RULES), c2:fetch(10)
  t.eq(#sel, #texts, "every malformed row fetched")
  for i = 1, #texts do
    t.ok(sel[i].error == full[i].error and (type(sel[i].payload) == type(full[i].payload)),
      "malformed payload " .. i .. ": same row error as a full decode", tostring(sel[i].error) .. " vs " .. tostring(full[i].error))
  end
  t.ok(sel[1].error and sel[1].error:find("receipt BAD:1770042600001:0: malformed payload_json", 1, true)
       and sel[1].error:find("character 13", 1, true), "the error names the receipt and the byte offset", sel[1].error)
  src:close()
end

-- misses: what a ruleset reads without declaring it
do
  local fs = decode.compile { "price" }
  local p = assert(decode.decode(fs, payloads[1]))
  local _ = p.sector, p.industry, p.price
  local q = assert(decode.decode(fs, payloads[2]))
  _ = q.sector
  local m = decode.misses(fs)
  t.ok(m.sector == 2 and m.industry == nil and m.price == nil, "misses count the undeclared key that forced each lazy decode")
end

-- the shipped rulesets declare everything they read: a replay of a real day
-- (and of the full-shape payloads as receipts) causes no lazy decode
for _, name in ipairs { "worker-2026-02-02", "default" } do
  local dir = t.tempdir()
  local rp = assert(retape.replay.open { db = db, state = dir .. "/s", rules = name })
  local r = rp:run { date = "2026-02-02" }
  local missed = {}
  for k, n in pairs(decode.misses((rp:decoding()))) do missed[#missed + 1] = k .. "=" .. n end
  rp:close()
  t.ok(r.rowsProcessed > 1000 and #missed == 0, name .. ": R.fields covers every field read on 2026-02-02",
    table.concat(missed, " "))
end
do
  local dir = t.tempdir()
  local full_db = dir .. "/full.db"
  local w = assert(retape.ingest.writer(full_db))
  local bucket = retape.time.session("2026-02-02") + 3600000
  for i, text in ipairs(payloads) do
    local p = cjson.decode(text)
    w:insert { receipt_id = p.ticker .. ":" .. (bucket + i) .. ":0", ticker = p.ticker, ts = bucket + i, bucket_5m = bucket,
               received_ts = 0, payload_hash = "0", payload_json = text }
  end
  w:close()
  local rp = assert(retape.replay.open { db = full_db, state = dir .. "/s", rules = "default", script_version = false })
  local r = rp:run { date = "2026-02-02" }
  local missed = {}
  for k, n in pairs(decode.misses((rp:decoding()))) do missed[#missed + 1] = k .. "=" .. n end
  rp:close()
  t.ok(r.rowsProcessed == 3 and #missed == 0, "default: R.fields covers every field read on full-shape payloads",
    table.concat(missed, " ") .. " rows " .. tostring(r.rowsProcessed))
end

-- decode.copy: one decoded payload handed to several readers (retape.sweep)
do
  local FS = decode.compile { "price", "flags.sq30_on", "tf_tech.4H.ema.stack" }
  local p = assert(decode.decode(FS, payloads[1]))
  local a = decode.copy(FS, p, { "flags", "tf_tech" })
  local b = decode.copy(FS, p, { "flags" })
  t.eq(rawget(a, "sector"), nil, "a copy: undeclared fields not decoded yet")
  t.eq(a.sector, "Information Technology", "a copy decodes an undeclared top-level field on first read")
  t.eq(rawget(p, "sector"), nil, "the original is not completed by the copy's read")
  t.eq(b.sector, "Information Technology", "another copy of the same payload decodes it too")
  t.eq(a.tf_tech["4H"].ema.vis, 127.0, "an undeclared field in a deep-copied nested table decodes lazily")
  t.ok(a.tf_tech ~= p.tf_tech and b.tf_tech == p.tf_tech, "tables named in writes are copied, the others shared")
  a.flags.sq30_on = "written by a"
  t.ok(b.flags.sq30_on ~= "written by a" and p.flags.sq30_on ~= "written by a",
    "a write into a copied nested table stays in that copy")
  local full = assert(cjson.decode(payloads[1]))
  local ok, why = same(decode.materialize(decode.copy(FS, p, { "flags" })), full, "copy")
  t.ok(ok, "a materialized copy equals a full decode", why)
  local q = decode.copy(FS, assert(cjson.decode('{"a":{"b":1}}')), { "a" })
  t.eq(q.a.b, 1, "a payload cjson decoded (no pending text) copies as a plain table")
end

---------------------------------------------------------------------------
-- simdjson against the hand-written scanner: the same tables (same keys in
-- the same order, numbers bit for bit, the same partial tables), the same
-- errors, on every bundled receipt, the full-shape payloads, edge cases and
-- mutated payloads; simdjson decides every well-formed payload of the
-- bundled data itself.

local H = dofile("tests/fuzz/harness.lua")(t.tempdir())
local function compare(text)
  local ok, used = pcall(H.simd, text)
  return ok, used
end
do
  local src = assert(retape.source.open(db))
  local rows, bad, first_bad, by_simd = 0, 0, nil, 0
  for _, b in ipairs(src:buckets {}) do
    local cur <close> = assert(src:cursor(b.bucket, {}))
    while true do
      local got = cur:fetch(256, false)
      if #got == 0 then break end
      for i = 1, #got do
        rows = rows + 1
        local ok, used = compare(got[i].payload_json)
        if not ok then bad = bad + 1; first_bad = first_bad or (got[i].receipt_id .. ": " .. tostring(used)) end
        if used == "simd" then by_simd = by_simd + 1 end
      end
    end
  end
  src:close()
  t.eq(bad, 0, ("simdjson builds the scanner's tables on every bundled receipt (%d, 6 field sets)"):format(rows))
  if first_bad then print("# first difference: " .. first_bad) end
  t.eq(by_simd, rows, "simdjson decides every bundled receipt itself")
end
for i, text in ipairs(payloads) do
  local ok, used = compare(text)
  t.ok(ok and used == "simd", ("full-shape payload %d: simdjson decides it, with the scanner's tables"):format(i), used)
end

-- edge cases: which decoder decides (simdjson hands on what the scanner
-- decides differently), and the same result either way
local deep = function(n, inner) return '{"a":' .. ("["):rep(n - 1) .. inner .. ("]"):rep(n - 1) .. "}" end
local edges = {
  { '{"price": -0, "htf_score": -0.0, "x": [-0, -1e-400, 1e-400, 5e-324]}', "simd", "negative zeros and underflow" },
  { '{"price": 9007199254740993, "x": [-9223372036854775808, 18446744073709551615]}', "simd", "integers past 2^53" },
  { '{"x": 123456789012345678901234567890}', "scanner", "an integer past 2^64 (simdjson's validator refuses it)" },
  { '{"price": 1e400}', "cjson", "a number past the double range (simdjson and the scanner hand it on)" },
  { '{"price": 1.' .. ("3"):rep(600) .. "}", "cjson", "a 600-digit number" },
  { [[{"pri\u0063e": 1}]], "cjson", "an escaped key in a declared object" },
  { [[{"state": "a\"b\\c\/d\n\u00e9\u20ac", "x": {"k\u0041": 1}}]], "simd", "escapes in strings and undeclared keys" },
  { [[{"state": "\ud83d\ude00"}]], "cjson", "a surrogate pair" },
  { '{"state": "caf\233"}', "scanner", "invalid UTF-8 (simdjson refuses it, the scanner keeps the bytes)" },
  { "\239\187\191{}", "cjson", "a byte order mark" },
  { '{"price": 1, "price": 2}', "simd", "a duplicate key (the last wins)" },
  { deep(47, "1"), "simd", "47 nested containers" },
  { deep(48, "1"), "scanner", "48 nested containers around a scalar" },
  { deep(48, ""), "simd", "48 nested containers" },
  { deep(49, ""), "cjson", "49 nested containers (malformed)" },
  { '{"price": 1} x', "cjson", "trailing garbage" },
  { '{"price": 1,}', "cjson", "a trailing comma" },
  { '{"flags": {"x": tru}}', "cjson", "a bad literal in an undeclared field" },
  { '{"zzz": [1 2], "price": 1}', "cjson", "a missing comma in an undeclared field" },
  { '{"zzz": 01, "price": 1}', "cjson", "a leading zero in an undeclared field" },
}
for _, e in ipairs(edges) do
  local text = e[1]
  local ok, used = compare(text)
  t.ok(ok and used == e[2], ("%s: decided by %s, the same result"):format(e[3], e[2]), tostring(used))
end

-- mutated payloads and random numbers
do
  local bases = { payloads[1], payloads[2], payloads[3] }
  local src = assert(retape.source.open(db))
  local list = src:buckets {}
  for _ = 1, 6 do
    local cur <close> = assert(src:cursor(list[math.random(#list)].bucket, {}))
    for _, r in ipairs(cur:fetch(3, false)) do bases[#bases + 1] = r.payload_json end
  end
  src:close()
  local bad, first_bad, by = 0, nil, { simd = 0, scanner = 0, cjson = 0 }
  for i = 1, 2000 do
    local text = mutate(bases[(i % #bases) + 1])
    local ok, used = compare(text)
    if ok then by[used] = by[used] + 1 else bad = bad + 1; first_bad = first_bad or (used .. "\n" .. text:sub(1, 300)) end
  end
  t.eq(bad, 0, ("fuzz: simdjson equals the scanner on 2000 mutated payloads x 6 field sets (simd %d, scanner %d, cjson %d)")
    :format(by.simd, by.scanner, by.cjson))
  t.ok(by.simd > 200 and by.cjson > 200, "fuzz: a mix of payloads simdjson decides and malformed ones")
  if first_bad then print("# " .. first_bad:gsub("\n", "\n# ")) end
  local nbad, nfirst, nsimd, nall = 0, nil, 0, 0
  local forms = { "%.17g", "%.15g", "%.16g", "%.2f", "%.0f", "%.6e", "%.20g", "%d" }
  for _ = 1, 5000 do
    local form = forms[math.random(#forms)]
    local v = form == "%d" and math.random(-2 ^ 53, 2 ^ 53) or (math.random() - 0.5) * 10 ^ math.random(-320, 310)
    local s = string.format(form, v)
    if not s:find("[in][na][fn]") then
      local ok, used = compare(('{"price": %s, "x": [%s], "ltf_score": %s}'):format(s, s, s))
      if not ok then nbad = nbad + 1; nfirst = nfirst or (s .. ": " .. tostring(used)) end
      nall, nsimd = nall + 1, nsimd + (used == "simd" and 1 or 0)
    end
  end
  t.eq(nbad, 0, "5000 random numbers: simdjson gives the scanner's doubles, bit for bit" .. (nfirst and (": " .. nfirst) or ""))
  t.ok(nsimd > nall * 0.9, ("simdjson decides %d of them itself (the rest: integers past 2^64)"):format(nsimd))
end

-- a malformed full-size payload through the cursor (simdjson first, by
-- size): the row error names the receipt and cjson's byte offset
do
  local dir = t.tempdir()
  local bad_db = dir .. "/bad-full.db"
  local cut = payloads[1]:find('"sector"', 1, true)
  local text = payloads[1]:sub(1, cut - 1) .. payloads[1]:sub(cut + 1)
  local w = assert(retape.ingest.writer(bad_db))
  w:insert { receipt_id = "BAD:1770042600001:0", ticker = "BAD", ts = 1770042600001, bucket_5m = 1770042600000,
             received_ts = 0, payload_hash = "0", payload_json = text }
  w:close()
  local _, want = cjson.decode(text)
  local src = assert(retape.source.open(bad_db))
  local cur <close> = assert(src:cursor(1770042600000, {}))
  local row = cur:fetch(10, FS_RULES)[1]
  t.eq(row.error, "receipt BAD:1770042600001:0: malformed payload_json: " .. want,
    "a malformed full-size payload: the receipt and cjson's byte offset, as before")
  src:close()
end

t.fails(function() return decode.compile { "a..b" } end, "empty segment", "compile refuses an empty path segment")
t.fails(function() return decode.compile { 42 } end, "not a string", "compile refuses a non-string path")
t.ok(tostring(decode.compile({ "a", "b.c" }, { "d" })):find("3 top-level fields", 1, true), "lists are merged (an extension appends)")

os.exit(t.done())
