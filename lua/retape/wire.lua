-- retape.wire — plain data carried between the Lua states of a threaded
-- replay, written as a Lua constructor: integers stay integers and floats
-- keep every bit (%q), which JSON would not promise.  Strings of
-- BLOB_BYTES or more (the parts' packed row lists, binary) travel beside
-- the constructor as they are, not through %q: escaped, a round's lists
-- grew about twofold and the receiving state parsed them as Lua source
-- (5-day corpus on two threads: a third of the main state's time posting
-- rounds, encoding them).
--
--   local text = wire.encode { op = "walk", bucket = 1769437800000, plans = { AAPL = 3 } }
--   local msg = wire.decode(text)
--
-- The text: the count of long strings (4 bytes), each with its length
-- (string.pack "<s4"), then the constructor, which names them B[1], B[2]...
local M = {}

M.BLOB_BYTES = 64

local function encode(v, out, blobs)
  local t = type(v)
  if t == "table" then
    out[#out + 1] = "{"
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) == "number"
    end)
    for _, k in ipairs(keys) do
      out[#out + 1] = "["
      encode(k, out, blobs)
      out[#out + 1] = "]="
      encode(v[k], out, blobs)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "string" and #v >= M.BLOB_BYTES then
    blobs[#blobs + 1] = v
    out[#out + 1] = "B[" .. #blobs .. "]"
  elseif t == "string" or t == "number" or t == "boolean" or t == "nil" then
    out[#out + 1] = string.format("%q", v)
  else
    error("wire: cannot carry a " .. t, 2)
  end
end

function M.encode(v)
  local out, blobs = {}, {}
  encode(v, out, blobs)
  local head = { string.pack("<I4", #blobs) }
  for i, b in ipairs(blobs) do head[i + 1] = string.pack("<s4", b) end
  return table.concat(head) .. table.concat(out)
end

function M.decode(text)
  local n, pos = string.unpack("<I4", text)
  local B = {}
  for i = 1, n do B[i], pos = string.unpack("<s4", text, pos) end
  local chunk = assert(load("return " .. text:sub(pos), "=wire", "t", { B = B }))
  return chunk()
end

return M
