-- retape.wire — plain data carried between the Lua states of a threaded
-- replay, written as a Lua constructor: integers stay integers and floats
-- keep every bit (%q), which JSON would not promise.
--
--   local text = wire.encode { op = "walk", bucket = 1769437800000, plans = { AAPL = 3 } }
--   local msg = wire.decode(text)
local M = {}

local function encode(v, out)
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
      encode(k, out)
      out[#out + 1] = "]="
      encode(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "string" or t == "number" or t == "boolean" or t == "nil" then
    out[#out + 1] = string.format("%q", v)
  else
    error("wire: cannot carry a " .. t, 2)
  end
end

function M.encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

function M.decode(text)
  local chunk = assert(load("return " .. text, "=wire", "t", {}))
  return chunk()
end

return M
