-- retape.sandbox.data — what the engine reads of a rule's values is plain
-- data.  The engine walks a ruleset's tables (its config into the store's
-- manifest, its shape to reload it on threads, its settings made strict)
-- and values rule code hands back (an explanation) outside any guard: a
-- metamethod there would run rule code without the sandbox's limits, and a
-- table held many times over (or in a cycle) would be expanded without end.
-- check() refuses both before the engine reads the value, naming the path.
-- Lent by retape.sandbox (check_data).
local M = {}

-- The deepest nesting of tables a value may have (the store's encoder
-- writes no deeper either).
M.MAX_DEPTH = 64

-- A path step for key k ("R.config.a", "R.levels[2]").
local function step_name(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  if math.type(k) == "integer" then return "[" .. k .. "]" end
  if type(k) == "string" then return string.format("[%q]", k) end
  return "[" .. type(k) .. " key]"
end

-- The metamethods of mt, listed ("__index, __pairs").
local function listed(mt)
  local keys = {}
  for k in next, mt do keys[#keys + 1] = tostring(type(k) == "string" and k or type(k)) end
  table.sort(keys)
  return table.concat(keys, ", ")
end

-- Is mt a weak table's own (only __mode, a string)?  A memo may be weak.
local function weak_only(mt)
  local k, v = next(mt)
  return k == "__mode" and type(v) == "string" and next(mt, k) == nil
end

-- check(value, name, opts): raises "<name...>: ..." unless every table
-- reachable from value (through keys and values, read raw) is plain:
-- no metatable but a weak one ({__mode = ...}) or one opts.allow(t, mt)
-- accepts, nested no deeper than MAX_DEPTH.  opts.max_values bounds the
-- values counted with repetition (a table held twice counts twice, so a
-- cycle never ends within it): walked that way, each table is entered as
-- often as it is held; without it, each table once.  Runs no code of the
-- value's (raw reads; debug.getmetatable, past a __metatable field).
function M.check(value, name, opts)
  opts = opts or {}
  local allow, max = opts.allow, opts.max_values
  local seen = not max and {} or nil
  local left = max
  local function walk(t, path, depth)
    if depth > M.MAX_DEPTH then
      error(string.format("%s nests tables deeper than %d levels", #path > 72 and path:sub(1, 64) .. "..." or path,
        M.MAX_DEPTH), 0)
    end
    local mt = debug.getmetatable(t)
    if mt ~= nil and not weak_only(mt) and not (allow and allow(t, mt)) then
      error(string.format("%s has a metatable (%s): the engine reads it as plain data, so the only metatable "
        .. "allowed is a weak table's {__mode = ...}", path, listed(mt)), 0)
    end
    if seen then
      if seen[t] then return end
      seen[t] = true
    end
    for k, v in next, t do
      if left then
        left = left - 1
        if left < 0 then
          error(string.format("%s holds more than %d values (a table held twice counts twice)", name, max), 0)
        end
      end
      if type(k) == "table" then walk(k, path .. "[table key]", depth + 1) end
      if type(v) == "table" then walk(v, path .. step_name(k), depth + 1) end
    end
  end
  if type(value) == "table" then walk(value, name, 1) end
  return value
end

return M
