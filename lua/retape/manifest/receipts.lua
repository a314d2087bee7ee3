-- retape.manifest.receipts — the receipts file a store was replayed from
-- and a fingerprint of each day replayed: a write refuses another file or
-- receipts changed under covered days, and notes days that only grew.
-- Installed into retape.manifest.
local json = require "retape.json"
local rtime = require "retape.time"
local fs = require "retape.fs"
local core = require "retape.core"
local fnv1a32 = require("retape.ingest").fnv1a32

-- Adds the room's functions to M (retape.manifest); show(v) prints a setting's value.
return function(M, show)
  -- day_print(counts) -> {n, hash, buckets}: the fingerprint of one day's
  -- receipts from {[bucket] = count} (its session's buckets): the count and a
  -- hash of the (bucket, count) list in bucket order.
  function M.day_print(counts)
    local buckets, n, parts = {}, 0, {}
    for b in pairs(counts) do buckets[#buckets + 1] = b end
    table.sort(buckets)
    for i, b in ipairs(buckets) do
      n = n + counts[b]
      parts[i] = string.format("%d:%d", b, counts[b])
    end
    return { n = n, hash = fnv1a32(table.concat(parts, ",")), buckets = parts }
  end

  -- day_prints(src, days, script_version[, listed]) -> { [day] = {n, hash, buckets} }:
  -- day_print of each day's session as the receipts file holds it now;
  -- listed: counts already read in this snapshot ({[day] = {[bucket] =
  -- count}}, Replay:listed_days), used when it holds every day.
  function M.day_prints(src, days, script_version, listed)
    local prints = {}
    if #days == 0 then return prints end
    local known = listed ~= nil
    for _, d in ipairs(days) do known = known and listed[d] ~= nil end
    if known then
      for _, d in ipairs(days) do prints[d] = M.day_print(listed[d]) end
      return prints
    end
    local sorted = table.move(days, 1, #days, 1, {})
    table.sort(sorted)
    local from = rtime.session(sorted[1])
    local _, to = rtime.session(sorted[#sorted])
    local want, acc = {}, {}
    for _, d in ipairs(sorted) do want[d] = true; acc[d] = {} end
    for _, b in ipairs(assert(src:buckets { from = from, to = to, script_version = script_version or nil })) do
      local day = rtime.ny_date(b.bucket)
      if want[day] then
        local open, close = rtime.session(day)
        if b.bucket >= open and b.bucket <= close then acc[day][b.bucket] = b.count end
      end
    end
    for _, d in ipairs(sorted) do prints[d] = M.day_print(acc[d]) end
    return prints
  end

  -- Did a day only gain receipts (every bucket's count the same or more)?
  local function only_grew(was, now)
    if now.n <= was.n then return false end
    if not was.buckets then return true end
    local counts = {}
    for _, p in ipairs(now.buckets) do local b, c = p:match("^(%d+):(%d+)$"); counts[b] = tonumber(c) end
    for _, p in ipairs(was.buckets) do
      local b, c = p:match("^(%d+):(%d+)$")
      if (counts[b] or 0) < tonumber(c) then return false end
    end
    return true
  end

  -- receipt_changes(st, src) -> { grown = {{day, n, was}}, changed = {{day, n, was}} }:
  -- the days the store covers whose receipts differ from those replayed.
  function M.receipt_changes(st, src)
    local rec = st:receipts()
    local out = { grown = {}, changed = {} }
    if not (rec and rec.days) then return out end
    M.days_counted = M.days_counted + 1
    local days = {}
    for d in pairs(rec.days) do days[#days + 1] = d end
    table.sort(days)
    local now = M.day_prints(src, days, rec.script_version)
    for _, d in ipairs(days) do
      local was, cur = rec.days[d], now[d]
      if was.hash ~= cur.hash then
        local entry = { day = d, n = cur.n, was = math.tointeger(was.n) or was.n }
        if only_grew(was, cur) then out.grown[#out.grown + 1] = entry else out.changed[#out.changed + 1] = entry end
      end
    end
    return out
  end

  -- A store's recorded receipts file, absolute (nil for an older store).
  function M.receipts_path(st)
    local rec = st:receipts()
    return rec and rec.path or nil
  end

  -- The days of a run's params that it replays whole (every ticker, every bucket).
  local function whole_days(params)
    if params.ticker or params.bucket or params.limit or not (params.date or params.from) then return {} end
    if params.date then return { params.date } end
    return rtime.days(params.from, params.to) or {}
  end

  -- How many times check_write counted the receipts of the days a store
  -- covers (every time but when a seal vouched for them).
  M.days_counted = 0

  -- A write to a file within this many ms before a look at it may leave
  -- its times as they were (the kernel's clock for file times is coarse;
  -- FAT keeps them to 2 s): a look at a file changed that recently vouches
  -- for nothing.  (File times of a local file system are assumed: a
  -- network one may report them late or from another clock.)
  M.SEAL_SETTLE_MS = 3000

  -- receipts_look(path, src) -> text | nil: what stat(2) says of the
  -- receipts file (device, inode, size, last write, last change), when a
  -- write to it must change that text: the file is the one the source src
  -- has open (src:file_id(): not one renamed over it since), its
  -- times are SEAL_SETTLE_MS old or more, and no commit is pending beside
  -- it (its -wal and -journal, named after the file a symbolic link points
  -- to, are absent or empty: in WAL mode a commit is written there first,
  -- and may become visible later without touching the file; a file with
  -- a writer at work is not sealed).  nil otherwise, or when unreadable.
  function M.receipts_look(path, src)
    local dev, ino = nil, nil
    if src.file_id then dev, ino = src:file_id() end
    if not (path and dev) then return nil end
    path = fs.absolute(path) or path
    local s = fs.stat(path)
    if not s or s.dev ~= dev or s.ino ~= ino then return nil end
    local settled = (core.now_ms() - M.SEAL_SETTLE_MS) * 1000000
    if s.mtime_ns >= settled or s.ctime_ns >= settled then return nil end
    for _, beside in ipairs { path .. "-wal", path .. "-journal" } do
      local b = fs.stat(beside)
      if b == nil or (b and b.size > 0) then return nil end
    end
    return string.format("%d:%d:%d:%d:%d", s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns)
  end

  -- check_write(replay, params) -> grown | nil, seal | nil: before a write,
  -- refuses (a ParamError) a receipts file other than the recorded one, and
  -- receipts changed under days the store covers (but days this run
  -- replays whole, or --rebuild: the error's `replay_again` names those
  -- days, "--date D" or "--from A --to B"); returns the days that only
  -- gained receipts ({day, n, was}; nil when the receipts were not
  -- compared), and the look (receipts_look) to seal the receipts record
  -- with after the run when every day fingerprint it leaves matches the
  -- file as its snapshot reads it (false: drop the seal the store holds,
  -- the count found the file changed or the look cannot vouch; nil: the
  -- receipts were not compared, the seal stays as it is).  The days are
  -- counted in the file (a scan of its bucket index over every day the
  -- store covers) unless the store's seal has the very look this run took
  -- (rp:receipts_look(): the same before and after its snapshot began).
  function M.check_write(rp, params)
    local st = rp:state_store()
    local rec = st:receipts()
    local src, db_path = rp:receipts()
    local look = rp:receipts_look()
    -- a new store: the fingerprints the run notes come from its snapshot
    if not rec or not db_path then return nil, db_path and look end
    local scopem = require "retape.scope"
    local abs = fs.absolute(db_path) or db_path
    if rec.path and abs ~= rec.path and not params.rebuild then
      scopem.param_error("this store was replayed from %s; this run reads %s (replay into another --state, or "
        .. "give --rebuild to recompute everything it covers from the new file)", rec.path, abs)
    end
    -- a page or a bucket of a day (the original client's calls, one per page) checks the file only
    if params.rebuild or params.bucket then return end
    local seal = st:receipts_seal()
    if look and seal and seal.look == look and seal.path == abs and rec.path == abs then return {}, look end
    local ch = M.receipt_changes(st, src)
    local whole = {}
    for _, d in ipairs(whole_days(params)) do whole[d] = true end
    local changed = {}
    for _, c in ipairs(ch.changed) do if not whole[c.day] then changed[#changed + 1] = c end end
    if #changed > 0 then
      local parts = {}
      for _, c in ipairs(changed) do parts[#parts + 1] = string.format("%s (%s receipts, %d now)", c.day, show(c.was), c.n) end
      local first, last = changed[1].day, changed[#changed].day
      local _, e = pcall(scopem.param_error, "receipts changed under days this store covers since they were replayed: %s; "
        .. "replay them again first", table.concat(parts, ", "))
      e.replay_again = first == last and ("--date " .. first) or ("--from " .. first .. " --to " .. last)
      error(e, 0)
    end
    local grown = {}
    for _, c in ipairs(ch.grown) do if not whole[c.day] then grown[#grown + 1] = c end end
    -- (a day that grew and is not replayed whole keeps its old fingerprint:
    -- no seal, and none left from before)
    return grown, #grown == 0 and look or false
  end

  -- seal_receipts(replay): after a run's fingerprints are noted, seals the
  -- receipts record with the look check_write vouched for (false: drops
  -- the seal; nil: nothing).
  function M.seal_receipts(rp)
    local look, st = rp:receipts_vouched(), rp:state_store()
    local _, db_path = rp:receipts()
    if look == false then st:set_receipts_seal(nil) end
    if not (look and db_path) then return end
    st:set_receipts_seal { path = fs.absolute(db_path) or db_path, look = look }
  end

  -- note_receipts(replay, params): after a run, the receipts file and the
  -- fingerprints of the days it replayed whole (a day first covered by part
  -- of a run is fingerprinted too; --rebuild keeps the days it did not re-read).
  function M.note_receipts(rp, params)
    local st = rp:state_store()
    local src, db_path = rp:receipts()
    if not db_path or not src or not (params.date or params.from) then return end
    local rec = st:receipts() or { days = {} }
    local abs = fs.absolute(db_path) or db_path
    local known = (rec.path == nil or rec.path == abs) and rec.days or {} -- else: --rebuild from another file
    local days = params.date and { params.date } or (rtime.days(params.from, params.to) or {})
    local whole = {}
    for _, d in ipairs(whole_days(params)) do whole[d] = true end
    local recount = {}
    for _, d in ipairs(days) do if whole[d] or not known[d] then recount[#recount + 1] = d end end
    if #recount == 0 and rec.path == abs then return end
    M.note_day_prints(rp, M.day_prints(src, recount, rp:version_kept(), rp:listed_days()))
  end

  -- note_day_prints(replay, {[day] = day_print}): records the fingerprints of
  -- days replayed with the store's receipts file (the replay's), as
  -- note_receipts does; for a caller that keeps them itself (the live engine
  -- adds each pass's new receipts instead of counting the day again).
  function M.note_day_prints(rp, prints)
    local st = rp:state_store()
    local _, db_path = rp:receipts()
    local rec = st:receipts() or { days = {} }
    rec.days = rec.days or {}
    local abs = fs.absolute(db_path) or db_path
    if rec.path and rec.path ~= abs then rec.days = {} end -- --rebuild from another file
    rec.path, rec.script_version = abs, rp:version_kept() or false
    for d, p in pairs(prints) do rec.days[d] = p end
    rec.days = json.object(rec.days)
    st:set_receipts(rec)
  end

  -- A fingerprint of every day's receipts a store replayed (for diff), or nil.
  function M.receipts_print(st)
    local rec = st:receipts()
    if not (rec and rec.days) then return nil end
    local days = {}
    for d, p in pairs(rec.days) do days[#days + 1] = d .. "=" .. p.hash end
    table.sort(days)
    return fnv1a32(table.concat(days, ","))
  end
end
