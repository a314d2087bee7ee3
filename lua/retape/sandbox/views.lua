-- retape.sandbox.views — read-only views of tables rule code sees: the
-- frozen globals, libraries and modules of a rule file (freeze), and the
-- ruleset's own tables during a replay (state_view), where a write raises
-- at the rule's line naming the table and key.  Lent by retape.sandbox.
local M = {}


-- frozen[view] = what the view is called (weak keys)
local frozen = setmetatable({}, { __mode = "k" })

-- freeze(t, name) -> a read-only view of t: reads, pairs and # see t;
-- an assignment (or rawset) raises at the rule's line naming `name`.
function M.freeze(t, name)
  local view = {}
  frozen[view] = name
  return setmetatable(view, {
    __index = t,
    __newindex = function(_, k)
      error(string.format("%s is read-only in rule code (assignment to '%s'): keep state in the ruleset's "
        .. "declared per-ticker state", name, tostring(k)), 2)
    end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
end
function M.is_frozen(t) return frozen[t] ~= nil end
-- frozen_name(t) -> what a frozen view is called (nil: t is not one).
function M.frozen_name(t) return frozen[t] end
-- name_frozen(t, name): t is read-only in rule code (rawset refuses it).
function M.name_frozen(t, name) frozen[t] = name end

-- Why rule state outside the declared per-ticker state is refused.
M.STATE_ADVICE = "it would differ with --threads and be lost by --resume; keep state in R.state.fields, "
  .. "a memo in a weak table"
local STATE_ADVICE = M.STATE_ADVICE

-- A path step for key k.
local function step_name(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  if type(k) == "string" or math.type(k) == "integer" then return string.format("[%q]", k) end
  return "[" .. type(k) .. "]"
end
M.step_name = step_name

local views_of = setmetatable({}, { __mode = "k" }) -- table -> its read-only view
local raw_of = setmetatable({}, { __mode = "k" })   -- view -> the table

local function is_weak(t)
  local mt = debug.getmetatable(t)
  return mt ~= nil and rawget(mt, "__mode") ~= nil
end

-- memos[t]: the weak tables a ruleset's watch found (sandbox.guard's
-- watch_ruleset): the only tables a view hands out as they are, writable.
-- Registered, not read off the metatable at each read: a table whose
-- metatable turns weak during a run stays read-only.
local memos = setmetatable({}, { __mode = "k" })
function M.register_memo(t) memos[t] = true end

-- state_view(t, path) -> a read-only view of t (and, on reading, of the
-- tables in it): reads, pairs, ipairs and # see t; an assignment raises at
-- the rule's line naming path and key.  Memos (register_memo) and frozen
-- views are returned as they are.
local function state_view(t, path)
  if type(t) ~= "table" or frozen[t] or raw_of[t] or memos[t] then return t end
  local view = views_of[t]
  if view then return view end
  view = {}
  local function wrap(x, k)
    if type(x) == "table" then return state_view(x, path .. step_name(k)) end
    return x
  end
  local function index_raw(k) return t[k] end
  setmetatable(view, {
    __index = function(_, k)
      local x = rawget(t, k)
      if x == nil and debug.getmetatable(t) then -- e.g. a settings table that names an unknown key
        local ok, y = pcall(index_raw, k)
        if not ok then error(type(y) == "string" and (y:gsub("^[^\n]-:%d+: ", "", 1)) or y, 2) end
        x = y
      end
      return wrap(x, k)
    end,
    __newindex = function(_, k)
      error(string.format("rule state kept outside the ruleset's declared per-ticker state: %s%s is read-only "
        .. "during a replay (%s)", path, step_name(k), STATE_ADVICE), 2)
    end,
    __pairs = function()
      return function(_, k)
        local k2, x = next(t, k)
        return k2, wrap(x, k2)
      end, view, nil
    end,
    __len = function() return #t end,
    __metatable = false,
  })
  views_of[t], raw_of[view] = view, t
  return view
end
M.state_view = state_view

-- raw(v) -> the table a read-only view shows (v itself otherwise).
function M.raw(v) return raw_of[v] or v end

-- is_view(t) -> whether t is a read-only view of rule state.
function M.is_view(t) return raw_of[t] ~= nil end
M.is_weak = is_weak

return M
