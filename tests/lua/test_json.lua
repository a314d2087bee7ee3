-- test_json.lua — the deterministic encoder: the C encoder against its Lua
-- specification, number and string forms, key order, raw splices, errors.
local t = require "tap"
local json = require("retape").json

local samples = {
  { 1, 2.5, -0.1, 1e300, 114.73, 1 / 3, 1770065580000, 1770065580000.0, -0.0, 0 },
  { a = 1, b = { c = "x", d = { true, false } }, ["é"] = "ü", q = 'say "hi"\n\t\\' },
  { reasons = {}, flags = json.object(), nested = { { z = 1, a = 2 } } },
  { ctrl = "\1\31", slash = "a/b", big = 2 ^ 53, tiny = 5e-324, neg = -123.456 },
}
local expected = {
  "[1,2.5,-0.1,1e+300,114.73,0.3333333333333333,1770065580000,1770065580000,0,0]",
  '{"a":1,"b":{"c":"x","d":[true,false]},"q":"say \\"hi\\"\\n\\t\\\\","é":"ü"}',
  '{"flags":{},"nested":[{"a":2,"z":1}],"reasons":[]}',
  '{"big":9007199254740992,"ctrl":"\\u0001\\u001f","neg":-123.456,"slash":"a/b","tiny":4.94065645841247e-324}',
}
for i, v in ipairs(samples) do
  t.eq(json.encode(v), expected[i], "encoding of sample " .. i)
end
-- one encoder: strings, numbers and rows come out as encode() writes them (DEL raw, NUL escaped)
t.eq(json.encode("a\127b\0"), '"a\127b\\u0000"', "DEL is written raw, NUL escaped")
t.eq(json.string("a\127b\0"), json.encode("a\127b\0"), "json.string is the same encoder")
t.eq(json.number(0.1 + 0.2), json.encode(0.1 + 0.2), "json.number is the same encoder")
t.eq(json.encode_row({ a = "\127", c = 1 }, { "a", "b", "c" }), '{"a":"\127","b":null,"c":1}',
     "encode_row: same escapes, missing columns null")
local order = { "type", "price", "note" }
local ev = { note = "n", price = 21.32, type = "TRIM", value = 1.5, reason = "r" }
t.eq(json.encode(ev, order), '{"type":"TRIM","price":21.32,"note":"n","reason":"r","value":1.5}',
  "listed keys first in their order, the rest sorted")
t.eq(json.encode { x = json.raw('{"k":[1,2]}') }, '{"x":{"k":[1,2]}}', "raw JSON spliced verbatim")
t.eq(json.encode { 0.1 + 0.2, 100, 21.2134 }, "[0.30000000000000004,100,21.2134]", "shortest round-trip numbers")
-- numbers: the shortest of %.15g, %.16g, %.17g that reads back (the
-- encoder's fast path for short decimals must print exactly that)
do
  local function shortest(x)
    for _, f in ipairs { "%.15g", "%.16g", "%.17g" } do
      local s = string.format(f, x)
      if tonumber(s) == x or f == "%.17g" then return s end
    end
  end
  local seed, bad, first = 12345, 0, nil
  local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
  for i = 1, 20000 do
    local x
    if i % 3 == 0 then x = rnd(100000000) / 10 ^ rnd(9)            -- prices, 0..8 decimals
    elseif i % 3 == 1 then x = rnd(1000000) / (rnd(997) + 3)       -- computed ratios
    else x = (rnd(2147483647) * 2147483648.0 + rnd(2147483647)) / 10 ^ rnd(19) end
    if rnd(2) == 1 then x = -x end
    if x ~= math.floor(x) and json.encode(x) ~= shortest(x) then
      bad = bad + 1
      first = first or string.format("%.17g: %s vs %s", x, json.encode(x), shortest(x))
    end
  end
  t.eq(bad, 0, "20,000 doubles: the shortest of %.15g..%.17g that reads back", first)
  t.eq(json.encode { 0.0001, -0.00012, 123456789012345.6, 99999999999999.9, 1e-5, 1e15, 270.47 },
    "[0.0001,-0.00012,123456789012345.6,99999999999999.9,1e-05,1e+15,270.47]", "the edges of the fast path")
end
t.eq(json.encode { n = 0 / 0, i = math.huge }, '{"i":null,"n":null}', "NaN and infinities become null")
t.eq(json.encode { json.null }, "[null]", "json.null is null")
t.eq(json.decode(json.encode(samples[2])).b.d[2], false, "round trip through cjson")
t.fails(function() return json.encode { f = print } end, "cannot encode a function", "functions refused")
t.fails(function() return json.encode { 1, x = 2 } end, "mixing list and keys", "mixed tables refused")
-- a list with a hole and as many other keys as the hole leaves out: its
-- border is 3 and it holds 3 keys, which once passed for a list of 3 and
-- lost x; fits agrees with encode
t.fails(function() return json.encode { 1, nil, 3, x = "y" } end, "mixing list and keys", "a list with a hole and a key refused")
t.eq(json.fits { 1, nil, 3, x = "y" }, false, "... and not sure to fit")
t.fails(function() return json.encode { 1, 2, [2.5] = 0 } end, "mixing list and keys", "a list with a fractional key refused")
t.eq(json.encode { 1, nil, 3 }, "[1,null,3]", "a list's hole is null")
t.eq(json.fits { 1, nil, 3 }, true, "... and it fits")
local cyc = {}
cyc.self = cyc
t.fails(function() return json.encode(cyc) end, "nesting deeper than 64", "cycles refused")
-- the same table always gives the same bytes, whatever the insertion order
local a, b = {}, {}
for i = 1, 50 do a["k" .. i] = i end
for i = 50, 1, -1 do b["k" .. i] = i end
t.eq(json.encode(a), json.encode(b), "insertion order does not matter")

-- key order of large objects (the encoder places ranked keys by rank past
-- 24 keys, and falls back to a comparison sort past 127 keys or rank 127):
-- each against the order written plainly, keys listed first in their
-- order, the others by bytes
local function plain(tbl, ord)
  local rank = {}
  for i, k in ipairs(ord or {}) do rank[k] = i end
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y)
    local rx, ry = rank[x] or math.huge, rank[y] or math.huge
    if rx ~= ry then return rx < ry end
    return x < y
  end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = string.format("%q:%d", k, tbl[k]) end
  return "{" .. table.concat(parts, ","):gsub("\\\n", "\\n") .. "}"
end
local long_order = {}
for i = 1, 200 do long_order[i] = string.format("o%03d", 201 - i) end -- listed in reverse byte order
local cases = { { 25, 60 }, { 40, 60 }, { 40, 0 }, { 127, 100 }, { 128, 100 }, { 190, 200 }, { 60, 200 } }
local all_ok, first_bad = true, nil
for _, c in ipairs(cases) do
  local n, listed = c[1], c[2]
  local ord = table.move(long_order, 1, listed, 1, {})
  for round = 1, 5 do
    local tbl, used = {}, 0
    local i = 0
    while used < n do
      i = i + 1
      -- listed keys of every rank (ranks past 127 when listed > 127), and unlisted ones
      local key = (i % 3 ~= 0 and listed > 0) and long_order[((i * 7 + round) % listed) + 1] or string.format("u%03d", (i * 13 + round) % 300)
      if tbl[key] == nil then tbl[key] = i; used = used + 1 end
    end
    local got, want = json.encode(tbl, ord), plain(tbl, ord)
    if got ~= want then all_ok, first_bad = false, string.format("%d keys, %d listed: %s ~= %s", n, listed, got, want) end
  end
end
t.ok(all_ok, "large objects: listed keys first by rank, then the rest by bytes (25 to 190 keys, ranks up to 200)", first_bad)

-- bounds on values (a table held twice counts twice): what the engine keeps
-- of a rule's values; shared references cannot make a small table expand
do
  local jsonenc, pack = require "retape.jsonenc", require "retape.pack"
  local function dag(levels) local b = { 1 } for _ = 1, levels do b = { a = b, b = b } end return b end
  t.eq(json.KEPT_VALUES_MAX, 100000, "the bound is exported")
  -- dag(3): 15 tables (every reference) and 8 numbers: 23 values
  t.eq(#json.encode(dag(3), nil, 23), #json.encode(dag(3)), "encode within its bound (23 values of 23)")
  t.fails(function() return json.encode(dag(3), nil, 22) end, "cannot encode more than 22 values", "encode refuses one value past its bound")
  t.fails(function() return json.encode(dag(24), nil, json.KEPT_VALUES_MAX) end, "more than 100000 values",
          "encode refuses 2^25 values made of 25 tables, at the bound")
  t.eq(jsonenc.copy(dag(3), 23).a.b.a[1], 1, "copy within its bound, counted alike")
  t.fails(function() return jsonenc.copy(dag(3), 22) end, "copy: more than 22 values", "copy refuses one value past its bound")
  t.fails(function() return pack.encode(dag(24)) end, "cannot store more than 100000 values", "pack.encode is bounded")
  t.fails(function() return pack.pick({ v = dag(24) }, { "v" }) end, "cannot store more than 100000 values", "pack.pick is bounded")
  t.fails(function() return jsonenc.extract({ s = dag(24) }, { "s" }, { s = "table" }) end,
          "state field 's' takes the state past 100000 values", "extract is bounded, naming the field")
  local back = pack.decode(pack.encode(dag(15))) -- 2^16 - 1 tables and 2^15 numbers: within the bound
  for _ = 1, 15 do back = back.b end
  t.eq(back[1], 1, "98,303 values pack")

  -- and on bytes: one megabyte string held 100 times is 100 values, written
  -- as 100 MB; past 4 MB (four of the longest strings) it is refused
  local mb = string.rep("x", 1 << 20)
  local many = {}
  for i = 1, 100 do many[i] = mb end
  local three, four = { mb, mb, mb }, { mb, mb, mb, mb }
  t.eq(#json.encode(three, nil, json.KEPT_VALUES_MAX), 3 * (1 << 20) + 3 * 2 + 2 + 2, "encode: three megabyte strings fit")
  t.fails(function() return json.encode(four, nil, json.KEPT_VALUES_MAX) end, "cannot encode more than 4194304 bytes",
          "four and their quotes do not: the bound holds after the last value too")
  t.fails(function() return json.encode(many, nil, json.KEPT_VALUES_MAX) end, "cannot encode more than 4194304 bytes",
          "encode refuses a hundred")
  t.eq(#json.encode(many), 100 * ((1 << 20) + 2) + 99 + 2, "without a bound, encode writes them")
  t.ok(#pack.encode(three) > 3 * (1 << 20), "pack.encode: three fit")
  t.fails(function() return pack.encode(four) end, "cannot store more than 4194304 bytes", "pack.encode: four do not")
  t.fails(function() return pack.encode(many) end, "cannot store more than 4194304 bytes", "pack.encode refuses a hundred")
  t.fails(function() return pack.pick({ v = many }, { "v" }) end, "cannot store more than 4194304 bytes",
          "pack.pick refuses them")
  -- a record's members are bounded one by one, each after its last value
  -- too (five strings of a million bytes: within 4 MB until the last)
  local m = string.rep("y", 1000000)
  t.fails(function() return pack.encode { lanes = {}, n = 1, state = { zz = { m, m, m, m, m } }, view = {} } end,
          "cannot store more than 4194304 bytes", "a member that is not the last is checked after its last string")
end

-- json.fits: true only where encode surely succeeds (a held open trade is
-- checked with it at each bucket and encoded only when written)
do
  local K = json.KEPT_VALUES_MAX
  local trade = { id = "AU-1-1", history = { { type = "ENTRY", price = 1.5 } }, flags = { a = true }, pnl = 0 / 0,
                  note = json.null, empty = {}, obj = json.object() }
  t.ok(json.fits(trade, K) and json.fits({}, K) and json.fits("x", K), "fits: plain values")
  local deep = {}
  local at = deep
  for _ = 1, 64 do at.x = {}; at = at.x end
  t.ok(json.fits(deep, K), "fits: 64 levels below the top")
  at.x = {}
  local cyc = {}
  cyc.self = cyc
  local many = {}
  for i = 1, K do many[i] = i end
  local not_sure = {
    { { f = print }, "a function" }, { { 1, x = 2 }, "a list with keys" }, { { [true] = 1 }, "a boolean key" },
    { deep, "65 levels" }, { cyc, "a cycle" }, { many, "past the values" },
    { { note = string.rep("\1", 1000000) }, "a string whose escaped text may pass 4 MB" },
    { setmetatable({}, { __index = {} }), "another metatable" }, { { io.stdout }, "a userdata" },
  }
  for _, c in ipairs(not_sure) do t.ok(json.fits(c[1], K) == false, "fits: not sure of " .. c[2]) end
  t.ok(json.fits(many), "fits: no bound without max_values")
  -- near the byte bound: each element's comma counted, tables too (a
  -- review's case: 1,000 empty tables after a string of 4 MB escaped)
  local MB4 = json.KEPT_BYTES_MAX
  for _, filler in ipairs { {}, 0, "" } do
    for _, n in ipairs { 1000, 20000 } do
      local l = { string.rep("\1", (MB4 - 2005) // 6) }
      for _ = 1, n do l[#l + 1] = type(filler) == "table" and {} or filler end
      local fits, encodes = json.fits(l, K), pcall(json.encode, l, nil, K)
      t.ok(not fits or encodes, string.format("fits near 4 MB: %d %s after the string: fits only if it encodes", n,
        type(filler)), tostring(fits) .. " " .. tostring(encodes))
    end
  end
  t.ok(pcall(json.encode, { note = string.rep("a", 600000) }, nil, K) and not json.fits({ note = string.rep("a", 700000) }, K),
       "fits: its byte bound is an upper one (encode decides between)")
  -- whatever fits, encode accepts: random values of every kind
  local seed = 7
  local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
  local function value(depth)
    local k = rnd(depth > 3 and 5 or 8)
    if k == 1 then return rnd(1000) / 7 elseif k == 2 then return string.rep(string.char(rnd(128) - 1), rnd(20))
    elseif k == 3 then return rnd(2) == 1 elseif k == 4 then return json.null elseif k == 5 then return rnd(100)
    elseif k == 6 then local l = {}; for i = 1, rnd(4) do l[i] = value(depth + 1) end; return l
    else
      local o = {}
      for _ = 1, rnd(4) do o[rnd(3) == 1 and rnd(9) or ("k" .. rnd(9))] = value(depth + 1) end
      return o
    end
  end
  local fit, agree = 0, true
  for _ = 1, 2000 do
    local v = value(0)
    if json.fits(v, K) then
      fit = fit + 1
      if not pcall(json.encode, v, nil, K) then agree = false end
    end
  end
  t.ok(fit > 500 and agree, "fits: every one of 2,000 random values it says fits encodes", fit)
end

os.exit(t.done())
