-- test_pack.lua — packed version records (retape.pack, store layout 3):
-- a packed value reads back exactly as the JSON round trip the store used
-- to make (numbers as floats, NaN/inf as nil, null dropped, lists and
-- string-keyed objects), on fixed samples, on random values (seed printed)
-- and on every version of a real replay; what cannot be stored is refused
-- with the JSON encoder's reasons; pack.pick and a packed member give
-- encode's very bytes; a store of layout 2 is refused, naming
-- the command that rebuilds it.
local t = require "tap"
local retape = require "retape"
local pack, json, cjson = require "retape.pack", retape.json, require "cjson"
local store = retape.store

-- the JSON round trip as the store did it (layout 2)
local function via_json(v) return store.nulls_to_nil(cjson.decode(json.encode(v))) end

-- deep equality with the number subtype (a float must stay a float)
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b)) and (1 / a == 1 / b or a ~= 0)
  end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local samples = {
  { n = 3, receipt = "AAPL:1:x", state = { ts = 1769543700000, kanban_stage = "watch" }, view = {}, lanes = { { 1769543700000, false, "AAPL:1:x" } } },
  { 1, 2.5, -0.0, 0 / 0, 1 / 0, -1 / 0, 2 ^ 53, 2 ^ 63, 1e300, 5e-324, math.mininteger, math.maxinteger },
  { a = { b = { c = { d = {} } } }, e = "", ["é"] = "ü\0", f = { json.null, 1, json.null } },
  { reasons = {}, flags = json.object(), s = string.rep("x", 300) },
  json.null, true, false, "plain", 42, 0.1 + 0.2,
}
for i, v in ipairs(samples) do
  local got = pack.decode(pack.encode(v))
  t.ok(same(got, via_json(v)), "sample " .. i .. " reads back as its JSON round trip")
end
t.ok(pack.encode({ b = 1, a = 2, c = { z = 1, y = 2 } }) == pack.encode({ c = { y = 2, z = 1 }, a = 2, b = 1 }),
  "equal tables pack to equal bytes, whatever their insertion order")

-- random values (lists, objects, numbers of every kind, strings with any byte)
local seed = tonumber(os.getenv("SEED")) or os.time()
print("# seed " .. seed)
math.randomseed(seed)
local function random_value(depth)
  local k = math.random(depth > 3 and 6 or 8)
  if k == 1 then return math.random() * 10 ^ math.random(-5, 15) * (math.random(2) == 1 and -1 or 1)
  elseif k == 2 then return math.random(-1000000, 1000000)
  elseif k == 3 then
    local b = {}
    for i = 1, math.random(0, 12) do b[i] = string.char(math.random(0, 255)) end
    return table.concat(b)
  elseif k == 4 then return math.random(2) == 1
  elseif k == 5 then return ({ 0 / 0, 1 / 0, -0.0, json.null })[math.random(4)]
  elseif k == 6 then return "s" .. math.random(100)
  elseif k == 7 then
    local l = {}
    for i = 1, math.random(0, 5) do l[i] = random_value(depth + 1) end
    return l
  else
    local o = {}
    for _ = 1, math.random(0, 6) do o["k" .. math.random(20)] = random_value(depth + 1) end
    return o
  end
end
local mismatches = 0
for _ = 1, 2000 do
  local v = { x = random_value(0), y = random_value(0) }
  local ok, enc = pcall(json.encode, v)
  if ok then
    if not same(pack.decode(pack.encode(v)), via_json(v)) then mismatches = mismatches + 1 end
  end
end
t.eq(mismatches, 0, "2000 random values read back as their JSON round trip")

-- pack.pick and a packed member (a version's view, packed once): the very
-- bytes pack.encode gives for the table they stand for, on random values
do
  local names = {}
  for i = 1, 20 do names[i] = "k" .. i end
  names[#names + 1] = "k3" -- a name listed twice is one member
  local differ = 0
  for _ = 1, 2000 do
    local p = {}
    for _ = 1, math.random(0, 12) do p["k" .. math.random(25)] = random_value(1) end
    local picked = {}
    for _, k in ipairs(names) do picked[k] = rawget(p, k) end
    local ok, want = pcall(pack.encode, picked)
    if ok then
      local got = pack.pick(p, names)
      local rec = { n = math.random(3), state = p, view = "replaced" }
      local whole = pack.encode { n = rec.n, state = p, view = picked }
      if got ~= want or pack.encode(rec, "view", got) ~= whole then differ = differ + 1 end
    end
  end
  t.eq(differ, 0, "pack.pick and a packed member give pack.encode's bytes (2000 random values)")
  t.eq(pack.encode({}, "view", pack.pick({}, names)), pack.encode { view = {} }, "an empty table with a packed member")
  t.fails(function() return pack.pick({ k1 = print }, names) end, "cannot store a function", "pick refuses what encode refuses")
  t.fails(function() return pack.encode({ n = 1 }, "view", "x") end, "not one packed value", "a packed member is checked")
end

-- every version of a real day (the default ruleset: open trades inside)
-- is its own JSON round trip
-- (synthetic levels, so that trades open)
local P = require "parity"
local db = P.levels_db_for(os.getenv("RETAPE_TEST_TMP") or t.tempdir(), t.tempdir(), { "2026-01-16" })
local st_dir = t.tempdir() .. "/s"
local rp = assert(retape.replay.open { db = db, state = st_dir })
rp:run { date = "2026-01-16" }
rp:close()
local st = assert(store.open(st_dir, true))
local n, bad, opens = 0, 0, 0
st:each_version(function(_, _, rec)
  n = n + 1
  if rec.open then opens = opens + 1 end
  if not same(rec, via_json(rec)) then bad = bad + 1 end
end)
t.ok(n > 1000 and opens > 0 and bad == 0,
  string.format("every version of a real day (%d, %d with an open trade) is its own JSON round trip", n, opens), bad .. " differ")

-- step.versions (a bucket's versions packed in C, no table per record)
-- gives pack.encode's bytes of the record replay.encode_version builds, its
-- view from a payload (last_p), from the bytes packed before, or a table
do
  local versions = require("retape.step").versions
  local differ, count, dirty, names = 0, 0, {}, {}
  st:each_version(function(T, _, rec)
    local view_names = {}
    for k in pairs(rec.view or {}) do view_names[#view_names + 1] = k end
    view_names[#view_names + 1] = "absent"
    local want = pack.encode { n = rec.n, receipt = rec.receipt, state = rec.state, view = rec.view or {},
                               lanes = rec.lanes, open = rec.open }
    local payload = { stamped = "not a view field" }
    for k, v in pairs(rec.view or {}) do payload[k] = v end
    local tk = { n = rec.n, receipt = rec.receipt, state = rec.state, lanes = rec.lanes, open = rec.open or false,
                 last_p = payload }
    local got = versions({ [T] = tk }, { T }, view_names)[1]
    local again = versions({ [T] = tk }, { T }, view_names)[1] -- from tk.view_packed
    local from_table = versions({ [T] = { n = rec.n, receipt = rec.receipt, state = rec.state, lanes = rec.lanes,
                                          open = rec.open, view = rec.view } }, { T }, view_names)[1]
    if got ~= want or again ~= want or from_table ~= want or tk.last_p ~= nil then differ = differ + 1 end
    count = count + 1
    if count <= 50 then dirty[T .. count] = { n = rec.n, state = rec.state, lanes = rec.lanes, view = rec.view }
      names[#names + 1] = T .. count end
  end)
  t.ok(count > 1000 and differ == 0, string.format("step.versions gives encode's bytes for every version of a real day (%d)", count),
    differ .. " differ")
  local list = versions(dirty, names, {})
  t.eq(#list, #names, "step.versions packs one record per name, in order")
  -- with a batch: the same bytes, straight into it under prefix .. T .. tail
  -- (a name longer than the key buffer on the C stack included)
  local long = string.rep("L", 300)
  dirty[long], names[#names + 1] = { n = 1, state = {}, lanes = {} }, long
  list = versions(dirty, names, {})
  local dir = t.tempdir() .. "/versions"
  local kv = assert(retape.kv.open(dir))
  local batch = kv:batch()
  t.eq(versions(dirty, names, {}, batch, "v:", "\0tail"), #names, "step.versions with a batch: the records put")
  t.eq(batch:count(), #names, "step.versions with a batch: one put per name")
  kv:write(batch)
  local same_bytes = 0
  for i, T in ipairs(names) do if kv:get("v:" .. T .. "\0tail") == list[i] then same_bytes = same_bytes + 1 end end
  t.eq(same_bytes, #names, "step.versions with a batch puts the bytes it returns without one, under prefix .. T .. tail")
  t.fails(function() return versions(dirty, names, {}, batch, "v:") end, "string expected",
    "step.versions with a batch needs the key's tail")
  -- a record that cannot be stored mid-bucket: the error, with the records
  -- before it in the batch (the replay then writes the bucket record by
  -- record, which names it, and a failed bucket's batch is never written)
  local partial = kv:batch()
  t.fails(function()
    return versions({ A = { n = 1, state = {} }, B = { state = { f = print } }, C = { n = 1, state = {} } },
      { "A", "B", "C" }, {}, partial, "v:", "\0t")
  end, "cannot store a function", "step.versions with a batch refuses what the store cannot keep")
  t.eq(partial:count(), 1, "the records packed before it are in the batch, none after it")
  partial:free()
  batch:free()
  kv:close()
  retape.fs.remove_tree(dir)
  t.fails(function() return versions({ A = { state = { f = print } } }, { "A" }, {}) end, "cannot store a function",
    "step.versions refuses what the store cannot keep")
end
st:close()

-- what cannot be stored, as the JSON encoder refuses it
t.fails(function() return pack.encode { f = print } end, "cannot store a function", "functions refused")
t.fails(function() return pack.encode { 1, 2, x = 3 } end, "mixing list and keys", "a list with keys refused")
t.fails(function() return pack.encode { [1.5] = 1 } end, "mixing list and keys", "a number key refused")
local cycle = {}
cycle.self = cycle
t.fails(function() return pack.encode(cycle) end, "nesting deeper than", "a cycle refused")
t.fails(function() return pack.decode("x") end, "malformed packed value at byte", "an unknown tag refused")
t.fails(function() return pack.decode(pack.encode { a = "bc" } .. "!") end, "malformed packed value",
  "trailing bytes refused")
t.fails(function() return pack.decode(pack.encode({ a = "bcdef" }):sub(1, -2)) end, "malformed packed value",
  "a truncated value refused")

-- a store of layout 2 (versions as JSON) is refused with the rebuild command
do
  local old = t.tempdir() .. "/layout2"
  local kv = assert(retape.kv.open(old))
  kv:put("retape:layout", "2")
  kv:put("v:AAPL\0" .. "1769543700000", '{"n":1}')
  kv:close()
  local s, msg = store.open(old, true)
  t.ok(s == nil and msg:find("store layout 2, this one reads 3", 1, true) and msg:find("rm -rf " .. old, 1, true),
    "a layout 2 store is refused, naming the command that rebuilds it", msg)
end

os.exit(t.done())
