-- retape.json — deterministic JSON encoding for everything retape writes
-- (state, trades, traces, --json output).  lua-cjson decodes; it cannot
-- encode deterministically, because Lua's table order changes from run to
-- run.  Here object keys come out in a preferred order (a list given by the
-- caller, then the rest sorted), numbers as the shortest text that reads
-- back to the same double (as JavaScript prints them), so the same values
-- always give the same bytes.
local cjson = require "cjson"

local M = {}

local NULL = cjson.null
local RAW = {}   -- metatable of pre-encoded JSON fragments

-- Wraps already-encoded JSON text so encode() splices it verbatim (used to
-- store a receipt's payload without re-encoding it).
function M.raw(text) return setmetatable({ text }, RAW) end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
local function escape_char(c)
  return escapes[c] or string.format("\\u%04x", c:byte())
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end
M.string = encode_string

local fmt = string.format
-- Shortest decimal text that round-trips; integers without exponent.
local function encode_number(x)
  if math.type(x) == "integer" then return fmt("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == math.floor(x) and x > -1e15 and x < 1e15 then return fmt("%d", math.tointeger(x)) end
  for prec = 15, 17 do
    local s = fmt("%." .. prec .. "g", x)
    if tonumber(s) == x then return s end
  end
  return fmt("%.17g", x)
end
M.number = encode_number

local encode_value

local function sorted_keys(t, order)
  local keys, seen = {}, {}
  if order then
    for _, k in ipairs(order) do
      if t[k] ~= nil then keys[#keys + 1] = k; seen[k] = true end
    end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then
      if type(k) ~= "string" then error("cannot encode a table mixing list and keys (key " .. tostring(k) .. ")", 0) end
      rest[#rest + 1] = k
    end
  end
  table.sort(rest)
  table.move(rest, 1, #rest, #keys + 1, keys)
  return keys
end

local function encode_table(t, order, buf, depth)
  if depth > 64 then error("cannot encode: nesting deeper than 64 (cycle?)", 0) end
  local mt = getmetatable(t)
  if mt == RAW then buf[#buf + 1] = t[1]; return end
  local n = #t
  if n > 0 then
    local count = 0
    for _ in pairs(t) do count = count + 1 end
    if count ~= n then error("cannot encode a table mixing list and keys", 0) end
  end
  if n > 0 or (next(t) == nil and mt ~= M.object_mt) then
    buf[#buf + 1] = "["
    for i = 1, n do
      if i > 1 then buf[#buf + 1] = "," end
      encode_value(t[i], order, buf, depth + 1)
    end
    buf[#buf + 1] = "]"
    return
  end
  buf[#buf + 1] = "{"
  local first = true
  for _, k in ipairs(sorted_keys(t, order)) do
    if not first then buf[#buf + 1] = "," end
    first = false
    buf[#buf + 1] = encode_string(k)
    buf[#buf + 1] = ":"
    encode_value(t[k], order, buf, depth + 1)
  end
  buf[#buf + 1] = "}"
end

function encode_value(v, order, buf, depth)
  local ty = type(v)
  if ty == "string" then buf[#buf + 1] = encode_string(v)
  elseif ty == "number" then buf[#buf + 1] = encode_number(v)
  elseif ty == "boolean" then buf[#buf + 1] = v and "true" or "false"
  elseif v == nil or v == NULL then buf[#buf + 1] = "null"
  elseif ty == "table" then encode_table(v, order, buf, depth)
  else error("cannot encode a " .. ty .. " as JSON", 0) end
end

-- An empty table with this metatable encodes as {} instead of [].
M.object_mt = {}
function M.object(t) return setmetatable(t or {}, M.object_mt) end

-- The C encoder (core/lua_json.c) does the work; the Lua one above is its
-- specification and the fallback when the layer runs on a plain Lua.
local ok_c, jsonenc = pcall(require, "retape.jsonenc")
local c_encode = ok_c and jsonenc.setup(RAW, M.object_mt, NULL) or nil
local ranks_cache = setmetatable({}, { __mode = "k" })
local function ranks_of(order)
  if not order then return nil end
  local r = ranks_cache[order]
  if not r then
    r = {}
    for i, k in ipairs(order) do if r[k] == nil then r[k] = i end end
    ranks_cache[order] = r
  end
  return r
end

-- encode(value [, key_order]) -> text.  key_order is a list of keys that
-- come first (in that order) in every object; other keys follow sorted.
function M.encode(v, key_order)
  if c_encode then return c_encode(v, ranks_of(key_order)) end
  local buf = {}
  encode_value(v, key_order, buf, 0)
  return table.concat(buf)
end

-- The pure-Lua encoder, kept callable so tests can compare the two.
function M.encode_lua(v, key_order)
  local buf = {}
  encode_value(v, key_order, buf, 0)
  return table.concat(buf)
end

-- Encodes an object whose keys are given in order (missing values = null).
function M.encode_row(t, columns)
  local buf = { "{" }
  for i, k in ipairs(columns) do
    if i > 1 then buf[#buf + 1] = "," end
    buf[#buf + 1] = encode_string(k)
    buf[#buf + 1] = ":"
    encode_value(t[k], nil, buf, 1)
  end
  buf[#buf + 1] = "}"
  return table.concat(buf)
end

M.decode = cjson.decode
M.null = NULL

return M
