-- rules_time.lua DB FROM TO [RULES [sample]] — the time a replay spends in
-- the ruleset's step and simulate (µs per row, measured with os.clock
-- around each call; the two clock readings add ~0.5 µs), on a fresh
-- scratch store, one thread.  With "sample": also a Lua-level profile of
-- rule code (a count hook every 1000 VM instructions; self samples per
-- function and per line of the rules/ files), heavier than the plain run.
-- With "parts": also the time in each of step's parts (prepare, carry,
-- move_status, apply_score, classify, transition; and simulate's sim_context,
-- mark_and_protect, open_trade, close_trade, trim_trade; each call's clock
-- readings add ~0.5 µs to its part and to step or simulate).
local retape = require "retape"
local db, from, to, rules, mode = ...
assert(db and from and to, "usage: rules_time.lua DB FROM TO [RULES [sample]]")
local R = retape.rules.load(rules or "default")
local clock = os.clock
local t_step, t_sim, n = 0, 0, 0
local step, simulate = R.step, R.simulate
R.step = function(...)
  local t0 = clock()
  local a, b, c, d = step(...)
  t_step = t_step + (clock() - t0)
  n = n + 1
  return a, b, c, d
end
R.simulate = function(...)
  local t0 = clock()
  local a = simulate(...)
  t_sim = t_sim + (clock() - t0)
  return a
end

local PARTS = { "prepare", "carry", "move_status", "apply_score", "classify", "transition",
                "sim_context", "mark_and_protect", "open_trade", "close_trade", "trim_trade" }
local part_t = {}
if mode == "parts" then
  for _, name in ipairs(PARTS) do
    local f = R[name]
    part_t[name] = 0
    R[name] = function(...)
      local t0 = clock()
      local a, b, c, d, e, g = f(...) -- (sim_context returns six values)
      part_t[name] = part_t[name] + (clock() - t0)
      return a, b, c, d, e, g
    end
  end
end

local funcs, lines, incl, total = {}, {}, {}, 0
if mode == "sample" then
  debug.sethook(function()
    local info = debug.getinfo(2, "Sl")
    if not info then return end
    total = total + 1
    local src = info.short_src or "?"
    if not src:find("rules/", 1, true) then src = "(engine) " .. src end
    local fk = src .. ":" .. tostring(info.linedefined)
    funcs[fk] = (funcs[fk] or 0) + 1
    local lk = src .. ":" .. tostring(info.currentline)
    lines[lk] = (lines[lk] or 0) + 1
    -- inclusive: every function of rules/ on the stack, once per sample
    local seen, level = {}, 2
    while true do
      local up = debug.getinfo(level, "S")
      if not up then break end
      if up.short_src:find("rules/", 1, true) then
        local k = up.short_src .. ":" .. tostring(up.linedefined)
        if not seen[k] then seen[k] = true; incl[k] = (incl[k] or 0) + 1 end
      end
      level = level + 1
    end
  end, "", 1000)
end

local state = os.tmpname()
os.remove(state)
local rp = assert(retape.replay.open { db = db, state = state, script_version = false, rules = R, threads = 1 })
local t0 = clock()
local r = rp:run { from = from, to = to }
local all = clock() - t0
debug.sethook()
rp:close()
assert(retape.fs.remove_tree(state))
assert(r.errors == 0, "errors in the replay")
print(string.format("rows=%d trades=%d total=%.0f ms  step=%.2f us/row  simulate=%.2f us/row  (run %.2f us/row)",
  n, r.tradesCreated, all * 1000, t_step / n * 1e6, t_sim / n * 1e6, all / n * 1e6))

if mode == "parts" then
  for _, name in ipairs(PARTS) do print(string.format("  %-12s %6.2f us/row", name, part_t[name] / n * 1e6)) end
end

local function top(t, k)
  local list = {}
  for name, c in pairs(t) do list[#list + 1] = { name, c } end
  table.sort(list, function(a, b) return a[2] > b[2] end)
  for i = 1, math.min(k, #list) do
    print(string.format("  %5.1f%%  %s", list[i][2] / total * 100, list[i][1]))
  end
end
if total > 0 then
  print("functions (self samples, " .. total .. " in all):"); top(funcs, 25)
  print("functions (inclusive):"); top(incl, 30)
  print("lines:"); top(lines, 30)
end
