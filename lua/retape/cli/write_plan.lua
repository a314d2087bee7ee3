-- What a write into a store uses and what it refuses: plan() decides the
-- ruleset, overrides and receipts file of a replay (given, else the
-- store's recorded ones; a mismatch refused with the commands that would
-- do what was meant), and no_session_check() refuses a day without a
-- session.  Used by retape.cli.replay and retape.cli.follow.
local args = require "retape.args"
local common = require "retape.cli.common"

local M = {}

-- The store's first and last covered days, as the scope options of a command.
local function covered_scope(st)
  local days = {}
  st:each_coverage(function(day) days[#days + 1] = day end)
  if #days == 0 then return {} end
  if #days == 1 then return { "--date", days[1] } end
  return { "--from", days[1], "--to", days[#days] }
end

-- A directory beside `dir` that does not exist yet (DIR-2, DIR-3, ...).
local function new_dir(dir)
  local fs = require "retape.fs"
  local base = dir:gsub("/+$", "")
  for i = 2, 99 do
    local d = base .. "-" .. i
    if not fs.kind(d) then return d end
  end
  return base .. "-new"
end

-- plan(st, o, state, options) -> { R, db } | nil, exit status (a refusal
-- was printed).  The write's ruleset, overrides and receipts file: the ones
-- given, else the ones the store recorded; given ones that differ from the
-- store's are refused by naming the settings that differ, with the commands
-- that would do what the user meant.
function M.plan(st, o, state, options)
  local manifest = require "retape.manifest"
  local rules = require "retape.rules"
  local fs = require "retape.fs"
  local valued = common.valued(options)
  local recipe = st:identity() and st:recipe() or nil
  local recorded_db = manifest.receipts_path(st) or (st:identity() and st:db_path()) or nil
  local db = o.db or recorded_db
  if not db then args.usage_error("missing --db FILE (the receipts database)") end
  local script_version
  if o.all_versions then script_version = false
  elseif o.script_version then script_version = o.script_version
  elseif recipe then script_version = recipe.script_version
  else script_version = require("retape.scope").DEFAULT_SCRIPT_VERSION end
  local has_scope = o.date or o.from
  local scope_words = has_scope and {} or covered_scope(st)
  local rebuild_cmd = common.command_line(common.rewrite({ "refresh", "resume" }, (function()
    local add = {}
    for _, w in ipairs(scope_words) do add[#add + 1] = w end
    add[#add + 1] = "--rebuild"
    return add
  end)(), valued))
  local function another_store()
    if not has_scope then return nil end
    local words = common.rewrite({ "state", "db", "resume", "refresh" }, { "--db", fs.absolute(db) or db, "--state", new_dir(state) }, valued)
    return { "to replay with them into a new store instead", common.command_line(words) }
  end

  if o.db and recorded_db and (fs.absolute(o.db) or o.db) ~= recorded_db and not o.rebuild then
    local advice = { { "to replay the store's own receipts file, leave out --db",
                       common.command_line(common.rewrite({ "db" }, {}, valued)) } }
    advice[#advice + 1] = another_store()
    advice[#advice + 1] = { "to recompute everything the store covers from this file", rebuild_cmd }
    return nil, common.refuse("replay", string.format("%s was replayed from %s; this run reads %s", state, recorded_db,
      fs.absolute(o.db) or o.db), advice)
  end

  local given_settings = o.config or #o.set > 0
  local R
  if o.rules or not (recipe and recipe.spec) then
    R = common.load_rules(o.rules or "default", o)
  else
    local changed = manifest.changed_files(recipe)
    if #changed > 0 and not o.rebuild then
      local c = changed[1]
      return nil, common.refuse("replay", string.format("%s changed since this store was made (recorded %s, now %s); "
        .. "a write needs the same file, or --rebuild to recompute everything the store covers with it as it is now",
        c.path, c.was, c.now), { { "to recompute everything with the file as it is now", rebuild_cmd } })
    end
    -- the recorded ruleset: from its recorded sources, or the changed files as they are now (--rebuild)
    local spec = recipe.spec
    if #changed > 0 then spec = recipe.files[1].path else rules.pin(recipe.files) end
    local ok, loaded = pcall(rules.load, spec)
    rules.unpin()
    if not ok then error(loaded, 0) end
    R = common.apply_settings(loaded, o)
  end
  if not given_settings and recipe then
    local ov = manifest.overrides_of(recipe)
    if next(ov) then rules.apply_overrides(R, ov, "the store's overrides") end
  end
  if recipe and not o.rebuild then
    local diffs = manifest.differences(recipe, R, script_version)
    if #diffs > 0 then
      local lines = {}
      for _, d in ipairs(diffs) do lines[#lines + 1] = string.format("\n  %s: store %s, this run %s", d.key, d.store, d.run) end
      local advice = {}
      if o.rules or given_settings then
        advice[#advice + 1] = { "to run with the store's own rules and settings, leave out --rules/--set/--config",
          common.command_line(common.rewrite({ "rules", "set", "config" }, {}, valued)) }
      end
      advice[#advice + 1] = another_store()
      advice[#advice + 1] = { "to recompute everything the store covers with this run's", rebuild_cmd }
      return nil, common.refuse("replay", string.format("%s holds results of other rules or settings:%s", state,
        table.concat(lines)), advice)
    end
  end
  return { R = R, db = db, script_version = script_version }
end

-- A day (or range) without a single receipt in its 09:30-16:00 sessions
-- (a Saturday, a holiday) is a usage error that says so, rather than a
-- replay of 0 buckets.
function M.no_session_check(o, p)
  local rtime = require "retape.time"
  if not (o.date or o.from) or o.bucket or o.ticker then return end
  local days = o.date and { o.date } or (o.to and rtime.days(o.from, o.to))
  if not days or not rtime.parse_date(days[1]) then return end -- a bad date: the replay says so
  local src = require("retape.source").open(p.db)
  if not src then return end
  local ok, prints = pcall(require("retape.manifest").day_prints, src, days, p.script_version)
  local listing = ok and require("retape.scope").listing(src, p.script_version or nil)
  src:close()
  if not ok then return end
  for _, d in ipairs(days) do if prints[d].n > 0 then return end end
  local what = o.date or (o.from .. " to " .. o.to)
  if o.date then
    local wday = rtime.to_ny(rtime.session(o.date)).wday
    if wday == 0 or wday == 6 then what = string.format("%s (a %s)", o.date, wday == 0 and "Sunday" or "Saturday") end
  end
  local list = {}
  for d in listing:gmatch("%S+") do list[#list + 1] = d end
  local known = #list <= 8 and listing
    or string.format("%s to %s (%d days; retape days --db %s)", list[1], list[#list], #list, common.quote(p.db))
  args.usage_error("%s has no receipts in its 09:30-16:00 session%s: nothing to replay; days with receipts: %s", what,
    o.date and "" or "s", known)
end

-- protected(st, o, state, options) -> true, plan | true, nil, exit status
-- | false, error: plan() in a protected call, on `st` or (nil: no store
-- yet) on an empty one.
function M.protected(st, o, state, options)
  local none = function() return nil end
  return pcall(M.plan, st or { identity = none, recipe = none, receipts = none, db_path = none,
    each_coverage = none }, o, state, options)
end

return M
