-- retape.json — deterministic JSON encoding for everything retape writes
-- (state, trades, traces, --json output).  lua-cjson decodes; it cannot
-- encode deterministically, because Lua's table order changes from run to
-- run.  Here object keys come out in a preferred order (a list given by the
-- caller, then the rest sorted), numbers as the shortest text that reads
-- back to the same double (as JavaScript prints them), so the same values
-- always give the same bytes.  The encoder is C (core/lua_json.c).
local cjson = require "cjson"

local M = {}

local NULL = cjson.null
local RAW = {}   -- metatable of pre-encoded JSON fragments

-- Wraps already-encoded JSON text so encode() splices it verbatim (used to
-- store a receipt's payload without re-encoding it).
function M.raw(text) return setmetatable({ text }, RAW) end

-- One encoder: core/lua_json.c.  Strings, numbers, rows and whole values
-- all go through it, so nothing retape writes can disagree on a byte (a
-- Lua twin once escaped DEL as \u007f where C wrote it raw).
local jsonenc = require "retape.jsonenc"

-- An empty table with this metatable encodes as {} instead of [].
M.object_mt = {}
function M.object(t) return setmetatable(t or {}, M.object_mt) end

local c_encode, c_fits = jsonenc.setup(RAW, M.object_mt, NULL)
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

-- encode(value [, key_order [, max_values]]) -> text.  key_order is a list
-- of keys that come first (in that order) in every object; other keys
-- follow sorted.  Raises on values JSON cannot hold (functions, mixed
-- tables, nesting deeper than 64) and, given max_values, on a value of
-- more values than that (a table held twice counts twice).
function M.encode(v, key_order, max_values) return c_encode(v, ranks_of(key_order), max_values) end
-- fits(value [, max_values]) -> true when encode(value, any order,
-- max_values) surely succeeds; false when not sure (encode to know, and
-- to name what fails).  A walk of the value with no text written.
function M.fits(v, max_values) return c_fits(v, max_values) end
-- The most values a rule's value the engine keeps may hold (a trade, a
-- state field, a view field): RETAPE_KEPT_VALUES_MAX, core/lua_common.h.
M.KEPT_VALUES_MAX = jsonenc.KEPT_VALUES_MAX
-- ... and the bytes it may take written (a string held twice counting twice).
M.KEPT_BYTES_MAX = jsonenc.KEPT_BYTES_MAX

-- The JSON text of a string / a number (shortest round-trip form).
function M.string(s) return c_encode(s) end
function M.number(x) return c_encode(x) end

-- Kept for callers of the former pure-Lua encoder: the same (C) encoder.
M.encode_lua = M.encode

-- Encodes an object whose keys are given in order (missing values = null).
-- Given max_values, each value holds at most that many values and the row
-- at most KEPT_BYTES_MAX bytes (a rule's trace record).
function M.encode_row(t, columns, max_values)
  local buf, bytes = { "{" }, 0
  for i, k in ipairs(columns) do
    if i > 1 then buf[#buf + 1] = "," end
    buf[#buf + 1] = c_encode(k)
    buf[#buf + 1] = ":"
    local text = c_encode(t[k], nil, max_values)
    bytes = bytes + #text
    if max_values and bytes > M.KEPT_BYTES_MAX then
      error(string.format("cannot encode more than %d bytes of one row (column '%s')", M.KEPT_BYTES_MAX, k), 0)
    end
    buf[#buf + 1] = text
  end
  buf[#buf + 1] = "}"
  return table.concat(buf)
end

M.decode = cjson.decode
M.null = NULL

return M
