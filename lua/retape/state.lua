-- retape.state — the per-ticker state a ruleset declares it keeps.
--
-- A ruleset says what survives from one receipt of a ticker to the next:
--
--   R.state = {
--     fields = { ts = "number", kanban_stage = "string", exec = "table", ... },
--     view   = { "score", "kanban_meta", ... },   -- the last receipt's values, for views only
--     clean_slate = { "entry_ts", ... },           -- what a clean slate clears
--     stage  = "kanban_stage",                     -- the field that names the lane stage
--   }
--
-- After a receipt, the engine copies the declared `fields` from the stamped
-- payload into a new state record, exactly as a store round trip would give
-- them back (numbers as floats, NaN and infinities as nil, tables deep), so
-- a run that keeps its state in memory and a run resumed from the store see
-- the same values.  The rules get that record as `ex` on the ticker's next
-- receipt: reading a field it does not declare, or writing to it, is an
-- error at the rule's line.
local jsonenc = require "retape.jsonenc"

local M = {}

local TYPES = { number = true, string = true, boolean = true, table = true }

local function declared_error(field, what)
  error(string.format("state field '%s' is not declared in the ruleset's R.state.fields (%s)", tostring(field), what), 3)
end

-- compile(R) -> schema.  Checks the declaration; raises naming the problem.
function M.compile(R)
  local decl = R.state
  if type(decl) ~= "table" or type(decl.fields) ~= "table" then
    error(string.format("ruleset '%s' declares no state (R.state.fields)", tostring(R.name)), 0)
  end
  local names, types = {}, {}
  for k, ty in pairs(decl.fields) do
    if type(k) ~= "string" or not TYPES[ty] then
      error(string.format("R.state.fields.%s: type must be one of number, string, boolean, table (got %s)",
        tostring(k), tostring(ty)), 0)
    end
    names[#names + 1] = k
    types[k] = ty
  end
  table.sort(names)
  local clean = {}
  for _, k in ipairs(decl.clean_slate or {}) do
    if not types[k] then error(string.format("R.state.clean_slate names '%s', which R.state.fields does not declare", k), 0) end
    clean[#clean + 1] = k
  end
  if decl.stage and not types[decl.stage] then
    error(string.format("R.state.stage names '%s', which R.state.fields does not declare", decl.stage), 0)
  end
  local view = {}
  for i, k in ipairs(decl.view or {}) do view[i] = k end
  table.sort(view)

  local mt = {
    __index = function(_, k) if types[k] == nil then declared_error(k, "read") end end,
    __newindex = function(_, k)
      error(string.format("the previous state is read-only (writing '%s'); set the field on the payload", tostring(k)), 2)
    end,
  }
  local schema = { names = names, types = types, clean = clean, view = view, stage = decl.stage, mt = mt }

  -- extract(p) -> state: the declared fields of a stamped payload, copied
  -- in C (once per receipt) as a store round trip would return them.
  local c_extract = jsonenc.extract
  function schema.extract(p) return c_extract(p, names, types, mt) end

  -- payload_error(row) -> nil | message: a declared field that the
  -- receipt's payload carries with another type (a table or true where a
  -- number is declared, or null).  Left there, the rules would carry it into
  -- the state and the whole run would stop; the receipt is bad input, to be
  -- reported (receipt, field, byte offset) and skipped like a malformed one.
  -- Reads the payload raw, as extract does.
  function schema.payload_error(row)
    local p = row.payload
    for i = 1, #names do
      local k = names[i]
      local v = rawget(p, k)
      if v ~= nil and type(v) ~= types[k] then
        local _, at = require("retape.ingest").json_span(row.payload_json or "", k)
        return string.format("receipt %s: field '%s' is declared %s (R.state.fields) but the payload holds %s%s",
          row.receipt_id, k, types[k], type(v) == "userdata" and "null" or ("a " .. type(v)),
          at and (" (at byte %d)"):format(at) or "")
      end
    end
    return nil
  end

  -- adopt(t) -> state: a decoded record (from the store) as a state.
  function schema.adopt(t)
    local s = {}
    for i = 1, #names do
      local k = names[i]
      if t then s[k] = t[k] end
    end
    return setmetatable(s, mt)
  end

  -- cleared(s) -> state without the fields a clean slate clears.
  function schema.cleared(s)
    local out = {}
    for k, v in pairs(s) do out[k] = v end
    for _, k in ipairs(clean) do out[k] = nil end
    return setmetatable(out, mt)
  end

  -- view_of(p) -> the view fields of a stamped payload (shared, not copied:
  -- they are encoded at the end of the bucket and never handed back to rules).
  local pick = jsonenc.pick
  function schema.view_of(p) return pick(p, view) end

  return schema
end

return M
