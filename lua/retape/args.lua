-- Command-line option parsing for the CLI subcommands.
--
-- A command declares its options as a list of specs:
--   { name = "db", arg = "FILE", help = "...", default = ..., repeat_ = true,
--     type = "string" | "integer" | "number" | "flag" | "date" | "tickers", short = "d" }
-- "date" and "tickers" are checked by retape.validate (as the server checks
-- its query parameters) and kept as given.
-- parse(specs, argv, first) returns opts (by name, dashes as underscores) and
-- the positional arguments, or raises a usage error naming the option.
local M = {}

local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end
M.UsageError = UsageError

function M.usage_error(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, UsageError), 0)
end

function M.is_usage_error(e)
  return getmetatable(e) == UsageError
end

local function key_of(name) return (name:gsub("-", "_")) end

local function convert(spec, value)
  local t = spec.type or "string"
  if t == "integer" then
    local n = math.tointeger(tonumber(value))
    if not n then M.usage_error("option --%s expects an integer, got '%s'", spec.name, value) end
    return n
  elseif t == "number" then
    local n = tonumber(value)
    if not n then M.usage_error("option --%s expects a number, got '%s'", spec.name, value) end
    return n
  elseif t == "date" or t == "tickers" then -- the one validator, shared with the server
    local validate = require "retape.validate"
    local ok, why = validate[t == "date" and "date" or "ticker_list"](value)
    if not ok then M.usage_error("option --%s: %s", spec.name, why) end
    return value
  end
  return value
end

-- Returns the spec whose name (or short name) matches, or raises with the close matches.
local function find_spec(specs, name)
  for _, s in ipairs(specs) do
    if s.name == name or s.short == name then return s end
  end
  local close = {}
  for _, s in ipairs(specs) do
    if s.name:find(name, 1, true) or name:find(s.name, 1, true) then close[#close + 1] = "--" .. s.name end
  end
  M.usage_error("unknown option --%s%s", name, #close > 0 and (" (did you mean " .. table.concat(close, ", ") .. "?)") or "")
end

function M.parse(specs, argv, first)
  local opts, positional = {}, {}
  for _, s in ipairs(specs) do
    if s.repeat_ then opts[key_of(s.name)] = {} elseif s.default ~= nil then opts[key_of(s.name)] = s.default end
  end
  local i = first or 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do positional[#positional + 1] = argv[j] end
      break
    end
    local name, value = a:match("^%-%-([^=]+)=(.*)$")
    if not name then name = a:match("^%-%-(.+)$") or a:match("^%-(%a)$") end
    if name then
      local spec = find_spec(specs, name)
      local key = key_of(spec.name)
      if spec.type == "flag" then
        if value then M.usage_error("option --%s takes no value", spec.name) end
        opts[key] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then M.usage_error("option --%s needs a value (%s)", spec.name, spec.arg or "VALUE") end
        end
        value = convert(spec, value)
        if spec.repeat_ then table.insert(opts[key], value) else opts[key] = value end
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return opts, positional
end

-- Formats the option list of a command for `retape help CMD`.
function M.describe(specs)
  local lines, width = {}, 0
  local heads = {}
  for i, s in ipairs(specs) do
    local head = "  --" .. s.name .. (s.type ~= "flag" and (" " .. (s.arg or "VALUE")) or "")
    if s.short then head = "  -" .. s.short .. "," .. head:sub(2) end
    heads[i] = head
    width = math.max(width, #head)
  end
  for i, s in ipairs(specs) do
    local help = s.help or ""
    if s.default ~= nil and s.type ~= "flag" then help = help .. " (default " .. tostring(s.default) .. ")" end
    if s.repeat_ then help = help .. " (repeatable)" end
    lines[#lines + 1] = heads[i] .. string.rep(" ", width - #heads[i] + 2) .. help
  end
  return table.concat(lines, "\n")
end

return M
