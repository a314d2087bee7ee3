-- retape.manifest.recipe — how a store's results were made: the ruleset by
-- content, its overrides and effective config, and the differences between
-- a recorded recipe and a run's, setting by setting.  Installed into
-- retape.manifest.
local json = require "retape.json"
local rules = require "retape.rules"

-- Adds the room's functions to M (retape.manifest); show(v) prints a setting's value.
return function(M, show)
  -- recipe_of(R, script_version, shard) -> the record a store keeps of its ruleset.
  function M.recipe_of(R, script_version, shard)
    local files = {}
    for i, f in ipairs(rawget(R, "files") or {}) do
      files[i] = { spec = f.spec, path = f.path, hash = f.hash, source = f.source }
    end
    return { rules = R.name, spec = R.spec or R.name, files = files, overrides = json.object(R.overrides or {}),
             config = json.object(rules.config_paths(R.config or {})), script_version = script_version or false,
             shard = shard or false }
  end

  -- The recorded rule files that changed on disk since: { {spec, path, was, now}, ... }
  -- (a missing file has moved: not a change; its recorded source is used).
  function M.changed_files(recipe)
    local changed = {}
    for _, f in ipairs(recipe and recipe.files or {}) do
      local h = io.open(f.path, "rb")
      if h then
        local text = h:read("a")
        h:close()
        local now = rules.text_hash(text)
        if now ~= f.hash then changed[#changed + 1] = { spec = f.spec, path = f.path, was = f.hash, now = now } end
      end
    end
    return changed
  end

  -- The recorded overrides with integral floats back to integers (JSON).
  local function overrides_of(recipe)
    local ov = {}
    for k, v in pairs(recipe.overrides or {}) do ov[k] = math.type(v) == "float" and math.tointeger(v) or v end
    return ov
  end
  M.overrides_of = overrides_of

  -- rules_of(run [, where]) -> ruleset: the ruleset a run manifest or a
  -- recipe names, freshly loaded, with its recorded overrides (`where` names
  -- them in errors).  Raises.
  function M.rules_of(run, where)
    local R = rules.load(run.spec or run.rules)
    local ov = overrides_of(run)
    if next(ov) then rules.apply_overrides(R, ov, where or "the run's overrides") end
    return R
  end

  -- load_recorded(recipe [, from_disk]) -> ruleset: the recorded ruleset from
  -- its recorded sources (from_disk: the files as they are now), with the
  -- recorded overrides.  Raises.
  function M.load_recorded(recipe, from_disk)
    if not from_disk then rules.pin(recipe.files) end
    local ok, R = pcall(M.rules_of, recipe, "the store's overrides")
    rules.unpin()
    if not ok then error(R, 0) end
    return R
  end

  -- store_rules(st) -> ruleset, notes: the ruleset that made the store, for a
  -- read (recorded sources; notes name the rule files changed since).  A
  -- store without a recipe (older) names its ruleset in its last manifest.
  function M.store_rules(st)
    local recipe = st:recipe()
    if recipe then
      local notes = {}
      for _, c in ipairs(M.changed_files(recipe)) do
        notes[#notes + 1] = string.format("%s changed since this store was made; reading with the recorded source", c.path)
      end
      return M.load_recorded(recipe), notes
    end
    local runs = M.runs(st)
    local last = runs[#runs]
    if not last then return rules.load(rules.default), {} end
    return M.rules_of(last), {}
  end

  local function file_names(files)
    local names = {}
    for _, f in ipairs(files or {}) do names[#names + 1] = f.path .. " (" .. f.hash .. ")" end
    return table.concat(names, ", ")
  end

  -- differences(recipe, R, script_version) -> { {key, store, run}, ... }:
  -- what differs between the recorded recipe and a run's ruleset, setting by setting.
  function M.differences(recipe, R, script_version)
    return M.recipe_differences(recipe, M.recipe_of(R, script_version))
  end

  -- recipe_differences(a, b) -> the same list between two recipes (b's as `run`).
  function M.recipe_differences(recipe, run)
    local list = {}
    local function add(key, a, b) list[#list + 1] = { key = key, store = a, run = b } end
    if recipe.rules ~= run.rules then add("rules", recipe.rules, run.rules) end
    local function hashes(files)
      local h = {}
      for i, f in ipairs(files or {}) do h[i] = f.hash end
      return table.concat(h, ",")
    end
    if hashes(recipe.files) ~= hashes(run.files) then
      local fa, fb = file_names(recipe.files), file_names(run.files)
      add("rule files", fa ~= "" and fa or "(bundled)", fb ~= "" and fb or "(bundled)")
    end
    local keys, seen = {}, {}
    for k in pairs(recipe.config or {}) do keys[#keys + 1] = k; seen[k] = true end
    for k in pairs(run.config or {}) do if not seen[k] then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local a, b = (recipe.config or {})[k], (run.config or {})[k]
      if show(a) ~= show(b) then add(k, show(a), show(b)) end
    end
    if (recipe.script_version or false) ~= (run.script_version or false) then
      add("script version", recipe.script_version or "any", run.script_version or "any")
    end
    return list
  end

  -- "corridor.long.ltf_max: store 25, this run 22; ..." (the first `max`).
  function M.describe_differences(list, max)
    local parts = {}
    for i, d in ipairs(list) do
      if max and i > max then parts[#parts + 1] = string.format("and %d more", #list - max); break end
      parts[#parts + 1] = string.format("%s: store %s, this run %s", d.key, d.store, d.run)
    end
    return table.concat(parts, "; ")
  end
end
