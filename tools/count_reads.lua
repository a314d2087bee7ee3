-- count_reads.lua DB DAY [RULES] — how many of the values the replay decodes
-- per receipt (the declared fields, and the nested tables built for them)
-- the ruleset's step and simulate read: the ruleset is run trusted, each
-- payload handed to it through a proxy that counts the scalar values read
-- (once per value per proxy: a nested table reached again through a new
-- proxy counts again).  A measuring tool (docs/performance.md), not a test:
--   ./retape run tools/count_reads.lua build/bench/corpus-1d.db 2026-03-02 default
local retape = require "retape"
local db, day, rules = ...
local R = retape.rules.load(rules or "default")
R.trusted = true
local built, read, receipts = 0, 0, 0
local paths = {}
local seen -- per receipt: tables already counted / values already read
local function count_built(t, depth)
  if seen[t] or depth > 8 then return end
  seen[t] = true
  local k, v = next(t)
  while k ~= nil do
    built = built + 1
    if type(v) == "table" then count_built(v, depth + 1) end
    k, v = next(t, k)
  end
end
local function wrap(t, path)
  local reads = {}
  return setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      local key = path .. (type(k) == "number" and "*" or tostring(k))
      if not reads[k] then reads[k] = true; if v ~= nil and type(v) ~= "table" then read = read + 1 end; paths[key] = (paths[key] or 0) + 1 end
      if type(v) == "table" then return wrap(v, key .. ".") end
      return v
    end,
    __newindex = function(_, k, v) t[k] = v end,
    __len = function() return #t end,
    __pairs = function() return next, t, nil end,
  })
end
local step, sim = R.step, R.simulate
local cur_p, cur_w
local function wrapped(p)
  if cur_p ~= p then
    cur_p, seen = p, {}
    receipts = receipts + 1
    count_built(p, 0)
    cur_w = wrap(p, "")
  end
  return cur_w
end
function R.step(p, row, ex, open) return step(wrapped(p), row, ex, open) end
function R.simulate(p, ts, book) return sim(wrapped(p), ts, book) end
local state = os.tmpname(); os.remove(state)
local rp = assert(retape.replay.open { db = db, state = state, rules = R })
rp:run { date = day }
rp:close()
os.execute("rm -rf " .. state)
print(string.format("receipts %d; values built %.1f a receipt; scalar values read %.1f a receipt", receipts, built / receipts, read / receipts))
local list = {}
for k, n in pairs(paths) do list[#list + 1] = { k, n } end
table.sort(list, function(a, b) return a[2] > b[2] end)
for i = 1, math.min(60, #list) do io.write(string.format("%s=%.2f ", list[i][1], list[i][2] / receipts)) end
print()
