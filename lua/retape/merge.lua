-- retape.merge — `retape merge`: the shard stores of one sharded replay
-- (--shard i/n) combined into one store.  The inputs are checked first:
-- each is a shard (its recipe says `shard i/n`), all of one replay (same
-- rules by content, settings, receipts file and fingerprints, days), each
-- index once, every index 0..n-1 present (or `partial`, which the merged
-- store records and `retape status` shows).  The merged store is built in
-- OUT.merging and renamed to OUT when complete, so a killed merge leaves no
-- store at OUT that looks whole: `status` names the leftover, and the next
-- merge removes it and starts again.
local storem = require "retape.store"
local manifest = require "retape.manifest"
local json = require "retape.json"
local fs = require "retape.fs"

local M = {}

-- The temporary directory a merge into `out` builds in, and the file in it
-- that records the merge's command (for `status` of an interrupted one).
function M.pending_dir(out) return (out:gsub("/+$", "")) .. ".merging" end
local ARGS_FILE = "MERGE_ARGS"

-- pending(out) -> the shard paths of an interrupted merge into out, or nil.
function M.pending(out)
  local dir = M.pending_dir(out)
  if fs.kind(dir) ~= "dir" then return nil end
  local f = io.open(dir .. "/" .. ARGS_FILE)
  if not f then return {} end
  local ok, v = pcall(json.decode, f:read("a"))
  f:close()
  return ok and type(v) == "table" and v.shards or {}
end

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

local function days_of(st)
  local days = {}
  st:each_coverage(function(day) days[#days + 1] = day end)
  return table.concat(days, " ")
end

-- check(inputs, partial) -> n, have: raises naming the first problem.
-- inputs: { {path, st}, ... } (open stores).
function M.check(inputs, partial)
  local first, n, by_index = nil, nil, {}
  for _, x in ipairs(inputs) do
    local st, name = x.st, x.path
    local recipe = st:recipe()
    if not st:identity() then fail("%s holds no replay", name) end
    if not recipe then fail("%s records no recipe (made by an older retape); replay its shard again", name) end
    if not recipe.shard then fail("%s is not a shard store (it was replayed without --shard i/n)", name) end
    if st:cursor() then fail("%s holds an interrupted run; finish it (--resume) before merging", name) end
    local i, count = recipe.shard:match("^(%d+)/(%d+)$")
    i, count = tonumber(i), tonumber(count)
    x.index, x.recipe, x.receipts, x.days = i, recipe, st:receipts() or {}, days_of(st)
    if by_index[i] then fail("shard %d/%d given twice: %s and %s", i, count, by_index[i].path, name) end
    if not first then first, n = x, count
    else
      if count ~= n then fail("%s is shard %s of another split (%s is shard %s)", name, recipe.shard, first.path, first.recipe.shard) end
      local d = manifest.recipe_differences(first.recipe, recipe)
      if #d > 0 then
        local parts = {}
        for i, e in ipairs(d) do
          if i > 3 then parts[#parts + 1] = string.format("and %d more", #d - 3); break end
          parts[#parts + 1] = string.format("%s: %s vs %s", e.key, e.store, e.run)
        end
        fail("%s and %s are not shards of one replay: %s", first.path, name, table.concat(parts, "; "))
      end
      if (x.receipts.path or "") ~= (first.receipts.path or "") then
        fail("%s replayed %s, %s replayed %s", name, tostring(x.receipts.path), first.path, tostring(first.receipts.path))
      end
      if manifest.receipts_print(st) ~= manifest.receipts_print(first.st) then
        fail("%s and %s replayed different receipts of %s (the file changed between them)", first.path, name, tostring(first.receipts.path))
      end
      if x.days ~= first.days then
        fail("%s covers days %s, %s covers %s: not shards of one replay", name, x.days, first.path, first.days)
      end
    end
    by_index[i] = x
  end
  local missing, have = {}, {}
  for i = 0, n - 1 do
    if by_index[i] then have[#have + 1] = i else missing[#missing + 1] = string.format("%d/%d", i, n) end
  end
  if #missing > 0 and not partial then
    fail("shard%s %s of this replay %s missing: the merge would not hold every ticker (give %s, or --partial to merge "
      .. "these alone)", #missing > 1 and "s" or "", table.concat(missing, ", "), #missing > 1 and "are" or "is",
      #missing > 1 and "them" or "it")
  end
  return n, have, #missing
end

-- run(out, paths, opts) -> counts, {n, have, missing}.  opts: partial, on_shard(i)
-- after each shard is copied (tests kill the process there).  Raises.
function M.run(out, paths, opts)
  opts = opts or {}
  local seen = {}
  for _, p in ipairs(paths) do
    local a = fs.absolute(p) or p
    if seen[a] then fail("%s given twice (the same shard store)", p) end
    seen[a] = p
  end
  if fs.kind(out) then
    local names = fs.list(out) or {}
    if #names > 0 then fail("%s is not empty; merge into a new directory", out) end
  end
  local inputs = {}
  local function close_all() for _, x in ipairs(inputs) do x.st:close() end end
  for _, p in ipairs(paths) do
    local st, err = storem.open(p, true)
    if not st then close_all(); error(err, 0) end
    inputs[#inputs + 1] = { path = p, st = st }
  end
  local ok, n, have, missing = pcall(M.check, inputs, opts.partial)
  if not ok then close_all(); error(n, 0) end

  -- build in OUT.merging (a leftover of a killed merge is removed first), then rename
  local tmp = M.pending_dir(out)
  assert(fs.remove_tree(tmp))
  local dst, err = storem.open(tmp)
  if not dst then close_all(); error(err, 0) end
  local abs = {}
  for i, p in ipairs(paths) do abs[i] = fs.absolute(p) or p end
  local f = assert(io.open(tmp .. "/" .. ARGS_FILE, "w"))
  f:write(json.encode { shards = abs, partial = opts.partial or false })
  f:close()
  local stores = {}
  for i, x in ipairs(inputs) do stores[i] = x.st end
  local mok, counts = pcall(dst.merge, dst, stores, opts.on_shard)
  if mok then
    -- the recipe and receipts of the first shard, as they are (a whole merge is no shard)
    dst:copy_records(inputs[1].st, missing > 0 and string.format("%s/%d", table.concat(have, ","), n) or false)
    if missing > 0 then dst:set_merge_record { partial = true, shards = have, of = n } end
    dst:write()
    manifest.record_merge(dst, paths, counts, inputs[1].st)
  end
  close_all()
  dst:close()
  if not mok then error(counts, 0) end
  os.remove(tmp .. "/" .. ARGS_FILE)
  local rok, rerr = os.rename(tmp, out)
  if not rok then error(string.format("renaming %s to %s: %s", tmp, out, tostring(rerr)), 0) end
  return counts, { n = n, have = have, missing = missing }
end

return M
