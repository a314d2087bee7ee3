-- retape.sandbox.data — what the engine reads of a rule's values is plain
-- data.  The engine walks a ruleset's tables (its config into the store's
-- manifest, its shape to reload it on threads, its settings made strict)
-- and values rule code hands back (a trace record, an explanation) outside
-- any guard: a metamethod there would run rule code without the sandbox's
-- limits, and a table held many times over (or in a cycle) would be
-- expanded without end.  check() refuses both before the engine reads a
-- ruleset; copy() makes a plain copy of a value rule code hands back.  Both
-- read raw and run no code of the value's; a path is formatted only for an
-- error.  Lent by retape.sandbox (check_data, plain_copy).
local views = require "retape.sandbox.views"

local M = {}

-- The deepest nesting of tables a value may have (the store's encoder
-- writes no deeper either).
M.MAX_DEPTH = 64

-- A path step for key k ("R.config.a", "R.levels[2]"): the views' own,
-- a long key cut.
local function step_name(k)
  if type(k) == "string" and #k > 40 then return string.format("[%q]", k:sub(1, 40) .. "...") end
  if type(k) == "string" or math.type(k) == "integer" then return views.step_name(k) end
  return "[" .. type(k) .. " key]"
end

-- The path of the table at depth: name and the keys that lead to it.
local function path_of(name, keys, depth)
  local parts = { name }
  for i = 1, depth - 1 do
    parts[#parts + 1] = keys[i]
    if #parts > 12 and i < depth - 1 then parts[#parts + 1] = "..."; break end
  end
  for i = 2, #parts do if parts[i] ~= "..." then parts[i] = step_name(parts[i]) end end
  return table.concat(parts)
end

-- The keys of mt, listed ("__index, __pairs").
local function listed(mt)
  local keys = {}
  for k in next, mt do keys[#keys + 1] = type(k) == "string" and (#k > 20 and k:sub(1, 20) .. "..." or k) or type(k) end
  table.sort(keys)
  return table.concat(keys, ", ")
end

-- Is mt a weak table's own (only __mode, a string)?  A memo may be weak.
local function weak_only(mt)
  local k, v = next(mt)
  return k == "__mode" and type(v) == "string" and next(mt, k) == nil
end
M.weak_only = weak_only

local function refused(path, mt, weak)
  error(string.format("%s has a metatable (%s): the engine reads it as plain data, so %s", path, listed(mt),
    weak and "the only metatable allowed is a weak table's {__mode = ...}" or "it may have none"), 0)
end

-- check(value, name, opts): raises "<path>: ..." unless every table
-- reachable from value (through keys and values, read raw) is plain:
-- no metatable but one opts.allow(t, mt) accepts or (unless opts.weak is
-- false) a weak one ({__mode = ...}), nested no deeper than MAX_DEPTH.
-- opts.max_values bounds the values counted with repetition (a table held
-- twice counts twice, so a cycle never ends within it; opts.counted says
-- what holds them, "NAME holds" by default): walked that way, each table
-- is entered as often as it is held; without it, each table once.
function M.check(value, name, opts)
  opts = opts or {}
  local allow, weak, max = opts.allow, opts.weak ~= false, opts.max_values
  local seen = not max and {} or nil
  local left, keys = max, {}
  local function walk(t, depth)
    if depth > M.MAX_DEPTH then
      error(string.format("%s nests tables deeper than %d levels", path_of(name, keys, depth), M.MAX_DEPTH), 0)
    end
    local mt = debug.getmetatable(t)
    if mt ~= nil and not (weak and weak_only(mt)) and not (allow and allow(t, mt)) then
      refused(path_of(name, keys, depth), mt, weak)
    end
    if seen then
      if seen[t] then return end
      seen[t] = true
    end
    for k, v in next, t do
      if left then
        left = left - 1
        if left < 0 then
          error(string.format("%s more than %d values (a table held twice counts twice)",
            opts.counted or name .. " holds", max), 0)
        end
      end
      keys[depth] = k
      if type(k) == "table" then walk(k, depth + 1) end
      if type(v) == "table" then walk(v, depth + 1) end
    end
    keys[depth] = nil
  end
  if type(value) == "table" then walk(value, 1) end
  return value
end

-- copy(value, name, max_values [, accept]) -> a plain copy of a value rule
-- code handed back: every table copied from the table it stands for (a
-- read-only view of the ruleset's tables: the table itself), a weak
-- table's metatable left behind, and a metatable accept(t, mt) says "keep"
-- (the JSON object marker) kept or "drop" (the engine's own) left behind;
-- any other metatable, nesting past MAX_DEPTH or more than max_values
-- values (with repetition) raises naming the path.
function M.copy(value, name, max_values, accept)
  local left, keys = max_values, {}
  local function walk(t, depth)
    if depth > M.MAX_DEPTH then
      error(string.format("%s nests tables deeper than %d levels", path_of(name, keys, depth), M.MAX_DEPTH), 0)
    end
    t = views.raw(t)
    local mt = debug.getmetatable(t)
    local verdict = mt ~= nil and (weak_only(mt) and "drop" or accept and accept(t, mt))
    if mt ~= nil and verdict ~= "keep" and verdict ~= "drop" then refused(path_of(name, keys, depth), mt, true) end
    local out = {}
    for k, v in next, t do
      left = left - 1
      if left < 0 then
        error(string.format("%s holds more than %d values (a table held twice counts twice)", name, max_values), 0)
      end
      keys[depth] = k
      if type(k) == "table" then k = walk(k, depth + 1) end
      if type(v) == "table" then v = walk(v, depth + 1) end
      out[k] = v
    end
    keys[depth] = nil
    if verdict == "keep" then setmetatable(out, mt) end
    return out
  end
  if type(value) == "table" then return walk(value, 1) end
  return value
end

return M
