-- retape.rules_doc — what `retape rules show` prints: every setting of a
-- ruleset's config with its default, its type and its meaning.  Meanings
-- are the comments beside the settings in the ruleset's source (a comment
-- on the setting's line, else the comment line above its group).
local M = {}

-- Scans the `R.config... = {` blocks of a Lua source; returns
-- { ["corridor.long.ltf_max"] = "comment", ["corridor"] = "group comment" }.
function M.comments(src)
  local docs = {}
  local stack, inside, pending = {}, false, nil
  local function path(key)
    local parts = {}
    for _, p in ipairs(stack) do if p then parts[#parts + 1] = p end end
    parts[#parts + 1] = key
    return table.concat(parts, ".")
  end
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    local code, comment = line:match("^(.-)%s*%-%-%s*(.-)%s*$")
    if not code then code = line end
    if not inside then
      local prefix, rest = code:match("^%s*R%.config([%.%w_]*)%s*=%s*{(.*)$")
      if prefix then
        inside, stack = true, {}
        for p in prefix:gmatch("[%w_]+") do stack[#stack + 1] = p end
        stack[#stack + 1] = false -- the block's own brace
        if prefix ~= "" and (comment or pending) then docs[path():gsub("%.$", "")] = comment or pending end
        code = rest
      end
      pending = (code:match("^%s*$") and comment) or nil
    end
    if inside then
      if code:match("^%s*$") then
        if comment then pending = (pending and pending .. " " or "") .. comment end
      else
        local i = 1
        while i <= #code do
          local name, stop = code:match("^([%a_][%w_]*)%s*=%s*{()", i)
          if name then
            docs[path(name)] = comment or pending or docs[path(name)]
            stack[#stack + 1] = name
            i = stop
          else
            local key, stop2 = code:match("^%[?\"?([%w_!]+)\"?%]?%s*=()", i)
            local c = code:sub(i, i)
            if key and (i == 1 or code:sub(i - 1, i - 1):match("[%s,{]")) then
              if comment then docs[path(key)] = comment end
              i = stop2
            elseif c == "{" then stack[#stack + 1] = false; i = i + 1
            elseif c == "}" then
              stack[#stack] = nil
              i = i + 1
              if #stack == 0 or (stack[#stack] ~= false and #stack == 0) then inside = false; break end
              local open = false
              for _, p in ipairs(stack) do if p == false then open = true end end
              if not open then inside = false; break end
            elseif c == '"' then
              local e = code:find('"', i + 1, true)
              i = (e or #code) + 1
            else i = i + 1 end
          end
        end
        pending = nil
      end
    end
  end
  return docs
end

local function kind(v)
  if math.type(v) then return math.type(v) == "integer" and "integer" or "number" end
  if type(v) == "table" then return "list" end
  return type(v)
end

local function show(v)
  if type(v) == "table" then return require("retape.json").encode(v) end
  if type(v) == "number" then return require("retape.json").number(v) end
  return tostring(v)
end

-- settings(R) -> { {key, default, type, meaning}, ... } sorted by key.
function M.settings(R)
  local rules = require "retape.rules"
  local core = require "retape.core"
  local docs = {}
  local names = {}
  if R.extends then names[#names + 1] = R.extends end
  for n in pairs(R.sources or {}) do if n ~= R.extends then names[#names + 1] = n end end
  for _, n in ipairs(names) do
    local src
    if n:find("/", 1, true) or n:match("%.lua$") then
      local f = io.open(n)
      if f then src = f:read("a"); f:close() end
    else
      src = core.module_source and core.module_source("rules." .. n)
    end
    if src then for k, v in pairs(M.comments(src)) do docs[k] = v end end
  end
  local out = {}
  for key, v in pairs(rules.config_paths(R.config or {})) do
    local meaning = docs[key]
    if not meaning then -- the nearest group's comment
      local p = key
      while not meaning and p:find("%.") do
        p = p:match("^(.*)%.[^.]*$")
        meaning = docs[p]
      end
    end
    out[#out + 1] = { key = key, default = show(v), type = kind(v), range = M.range_text(R, key), meaning = meaning or "" }
  end
  table.sort(out, function(a, b) return a.key < b.key end)
  return out
end

-- The values a setting may take, as `rules show` prints them: its declared
-- range (R.ranges[key] = {min, max, step}: "10..30 step 2") or its words
-- (R.enums[key]: "level|price"), else "".
function M.range_text(R, key)
  local r = type(R.ranges) == "table" and R.ranges[key]
  if type(r) == "table" then
    local function n(x) return math.type(x) == "integer" and tostring(x) or string.format("%.12g", x) end
    return string.format("%s..%s step %s", n(r.min), n(r.max), n(r.step))
  end
  local e = type(R.enums) == "table" and R.enums[key]
  if type(e) == "table" then return table.concat(e, "|") end
  return ""
end

-- check_ranges(R) -> R: every declared range names a numeric setting, with
-- min <= max and a positive step; raises naming the first one that does not.
function M.check_ranges(R)
  if R.ranges == nil then return R end
  if type(R.ranges) ~= "table" then error("R.ranges must be a table of KEY = {min, max, step}", 0) end
  local paths = require("retape.rules").config_paths(R.config or {})
  local keys = {}
  for k in pairs(R.ranges) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local r = R.ranges[k]
    if type(paths[k]) ~= "number" then error(string.format("R.ranges: '%s' is not a numeric setting of the ruleset", k), 0) end
    if type(r) ~= "table" or type(r.min) ~= "number" or type(r.max) ~= "number" or type(r.step) ~= "number"
       or r.min > r.max or r.step <= 0 then
      error(string.format("R.ranges['%s']: expected { min = A, max = B, step = S } with A <= B and S > 0", k), 0)
    end
  end
  return R
end

return M
