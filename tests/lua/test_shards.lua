-- test_shards.lua — beyond one machine: three shard stores (--shard i/3,
-- each a separate process over one read-only receipts file) merged with
-- `retape merge` are byte-identical in their results to one single-process
-- replay, including a clean-slate re-run and a ledger; merge refuses shards
-- of another ruleset or with an interrupted run.
local t = require "tap"
local retape = require "retape"
local scope = require "retape.scope" -- (an internal module: not in the retape table)
local P = require "parity"

local dir = t.tempdir()
local days = { "2026-01-27", "2026-01-28" }
local db = P.levels_db_for(os.getenv("RETAPE_TEST_TMP") or t.tempdir(), dir, days)
local exe = os.getenv("RETAPE") or "./retape"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit $?\"")
  local out = p:read("a")
  p:close()
  return out, tonumber(out:match("exit (%d+)%s*$"))
end

local stores = require "stores"
local dump, same = stores.dump, stores.same

-- the same history in one process and in three shards
local function history(state, shard)
  local s = shard and (" --shard " .. shard) or ""
  local out1, st1 = sh(string.format("%s replay --db %s --state %s --from %s --to %s --quiet%s", exe, db, state, days[1], days[2], s))
  local out2, st2 = sh(string.format("%s replay --db %s --state %s --date %s --clean-slate --quiet%s", exe, db, state, days[1], s))
  assert(st1 == 0 and st2 == 0, out1 .. out2)
end
history(dir .. "/single")
local parts = {}
for i = 0, 2 do
  history(string.format("%s/shard%d", dir, i), i .. "/3")
  parts[#parts + 1] = string.format("%s/shard%d", dir, i)
end
local out, status = sh(string.format("%s merge --state %s/merged --ledger %s/merged.ledger %s", exe, dir, dir, table.concat(parts, " ")))
t.ok(status == 0 and out:find("merged 3 shards", 1, true), "retape merge combines three shard stores", out)
local single, merged = dump(dir .. "/single"), dump(dir .. "/merged")
local ok, diff = same(single, merged)
t.ok(ok and #single > 1000, "3 shards merged = one single-process replay, byte for byte (results, marks, coverage)", diff)

-- each shard holds only its tickers, and together all of them
local per = {}
for i = 0, 2 do
  local st = assert(retape.store.open(parts[i + 1], true))
  for _, T in ipairs(st:tickers()) do
    per[T] = (per[T] or 0) + 1
    if scope.shard_of(T, 3) ~= i then per[T] = 99 end
  end
  st:close()
end
local st = assert(retape.store.open(dir .. "/single", true))
local all_in_one = true
for _, T in ipairs(st:tickers()) do if per[T] ~= 1 then all_in_one = false end end
st:close()
t.ok(all_in_one, "every ticker is in exactly one shard, the one its hash names")

-- the merged ledger equals a ledger of the single store
sh(string.format("%s ledger --state %s/single --out %s/single.ledger", exe, dir, dir))
local function tables(path)
  local d = assert(retape.sql.open(path))
  local rows = {}
  for _, q in ipairs { "SELECT * FROM trades ORDER BY trade_id", "SELECT * FROM trade_events ORDER BY event_id",
                       "SELECT * FROM ticker_latest ORDER BY ticker" } do
    for _, r in ipairs(d:rows(q)) do rows[#rows + 1] = retape.json.encode(r) end
  end
  d:close()
  return rows
end
local ok_l, dl = same(tables(dir .. "/single.ledger"), tables(dir .. "/merged.ledger"))
t.ok(ok_l, "merge --ledger: the ledger equals the single replay's", dl)

-- refusals: a shard of other rules, an interrupted shard, a used output, a bad shard
sh(string.format("%s replay --db %s --state %s/other --date %s --shard 1/3 --rules worker-2026-02-02 --quiet", exe, db, dir, days[1]))
out, status = sh(string.format("%s merge --state %s/m2 %s %s/other %s", exe, dir, parts[1], dir, parts[3]))
t.ok(status == 1 and out:find("are not shards of one replay: rules: default vs worker-2026-02-02", 1, true), "merge refuses a shard of another ruleset", out)
out, status = sh(string.format("%s merge --state %s/merged %s", exe, dir, parts[1]))
t.ok(status == 1 and out:find("is not empty", 1, true), "merge refuses a store that is not new", out)
out, status = sh(string.format("%s replay --db %s --state %s/bad --date %s --shard 3/3", exe, db, dir, days[1]))
t.ok(status == 2 and out:find("shard must be i/n with 0 <= i < n", 1, true), "--shard 3/3 is a usage error", out)
out, status = sh(string.format("%s replay --db %s --state %s/bad --date %s --shard 0/2 --ticker CVNA", exe, db, dir, days[1]))
t.ok(status == 2 and out:find("give shard or ticker, not both", 1, true), "--shard with --ticker is a usage error", out)

os.exit(t.done())
