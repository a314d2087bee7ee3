-- The commands about a store itself: runs (its manifests), status (what
-- it covers), merge (shards into one), diff (two stores compared).
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local rtime = require "retape.time"
local json = require "retape.json"
local common = require "retape.cli.common"

local with_store_options, state_dir = common.with_store_options, common.state_dir
-- a recorded override's value as JSON writes it (an integral number without ".0")
local function json_value(v) return type(v) == "number" and json.number(v) or tostring(v) end

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("runs", {
    summary = "List the run manifests recorded in a state store",
    usage = "retape runs --state DIR [--json]",
    options = with_store_options {
      { name = "json", type = "flag", help = "print the manifests as JSON (with the effective config)" },
    },
    run = function(o)
      local st, err = common.open_store(o)
      if not st then return fail("runs", err) end
      local manifest = require "retape.manifest"
      local list = manifest.runs(st)
      st:close()
      if o.json then out("%s", json.encode(list, manifest.ORDER)); return 0 end
      local rows = {}
      for i, m in ipairs(list) do
        local p = m.params or {}
        local scope = p.date ~= nil and p.date ~= json.null and p.date or p.from and (p.from .. ".." .. (p.to or "?"))
          or (p.refresh and "(refresh)" or "?")
        if p.ticker and p.ticker ~= json.null then scope = scope .. " " .. p.ticker end
        if p.bucket and p.bucket ~= json.null then scope = scope .. " @" .. rtime.format_ny(p.bucket):match("%d%d:%d%d") end
        local r = m.response or {}
        local n = 0
        for _ in pairs(m.overrides or {}) do n = n + 1 end
        local int = math.tointeger
        local fin, start = rtime.parse_iso(m.finished), rtime.parse_iso(m.started)
        if p.clean_slate == true then scope = scope .. " clean slate" end
        if m.merged then scope = scope .. " (merge of " .. #m.merged .. " shards)" end
        local ov = require("retape.rules").texts(m.overrides, json_value)
        rows[i] = { seq = int(m.seq), finished = fin and require("retape.metrics").time(fin, true) or m.finished,
          took = m.duration_ms and string.format("%.1f s", m.duration_ms / 1000)
            or (fin and start) and string.format("%d s", (fin - start) // 1000) or "",
          rules = m.rules .. (n > 0 and (" " .. table.concat(ov, " ")) or ""),
          scope = scope, rows = int(r.rowsProcessed), trades = int(r.tradesCreated), receipts = m.receipts and m.receipts.hash,
          results = m.results and (m.results.lanes_hash .. "/" .. m.results.trades_hash) or "(partial)" }
      end
      out("%s", require("retape.views").text_table({
        { "seq", "run", nil, true }, { "finished", "finished" }, { "took", "took", nil, true }, { "rules", "rules + overrides" },
        { "scope", "scope" }, { "rows", "rows", nil, true }, { "trades", "trades", nil, true }, { "receipts", "receipts hash" },
        { "results", "lanes/trades hash" } }, rows))
      return 0
    end,
  })

  command("status", {
    summary = "What a state store covers: days and tickers, rules, receipts, interrupted run, stale results",
    usage = "retape status --state DIR [--json]",
    options = with_store_options {
      { name = "json", type = "flag", help = "print the status as JSON" },
    },
    run = function(o)
      local dir = state_dir(o)
      local command_line = common.command_line
      local pending = require("retape.merge").pending(dir)
      local fs = require "retape.fs"
      if pending and not fs.kind(dir .. "/CURRENT") then
        out("store %s: none; a merge into it was interrupted (its partial work is in %s)", dir,
          require("retape.merge").pending_dir(dir))
        if #pending > 0 then
          local words = { "merge", "--state", dir }
          for _, p in ipairs(pending) do words[#words + 1] = p end
          out("run the merge again (it starts over): %s", command_line(words))
        end
        return 1
      end
      local st, err = require("retape.store").open(dir, true)
      if not st then return fail("status", err) end
      local manifest = require "retape.manifest"
      local s = manifest.status(st)
      local recipe, merged = st:recipe(), st:merge_record()
      local changes
      local rec_path = manifest.receipts_path(st)
      if rec_path and fs.kind(rec_path) == "file" then
        local src = require("retape.source").open(rec_path)
        if src then
          local cok, ch = pcall(manifest.receipt_changes, st, src)
          src:close()
          if cok then changes = ch end
        end
      end
      local refresh = common.refresh_command(st, dir)
      st:close()
      if o.json then
        s.recipe = recipe and { rules = recipe.rules, spec = recipe.spec, overrides = recipe.overrides, shard = recipe.shard,
                                files = (function()
                                  local l = {}
                                  for i, f in ipairs(recipe.files or {}) do l[i] = { path = f.path, hash = f.hash } end
                                  return l
                                end)() } or nil
        s.merge = merged
        s.receipt_changes = changes
        out("%s", json.encode(s)); return 0
      end
      local id = s.identity
      out("store %s", dir)
      if not id then out("empty: nothing replayed yet"); return 0 end
      out("rules: %s (config %s, sources %s), script version %s", id.rules, id.config, id.sources,
        id.script_version == false and "any" or tostring(id.script_version))
      if recipe then
        for _, f in ipairs(recipe.files or {}) do out("  rule file %s (%s)", f.path, f.hash) end
        local ov = require("retape.rules").texts(recipe.overrides, json_value)
        if #ov > 0 then out("  overrides: %s", table.concat(ov, ", ")) end
        for _, c in ipairs(manifest.changed_files(recipe)) do
          out("  note: %s changed since (now %s): reads use the recorded source; a write needs it back or --rebuild", c.path, c.now)
        end
      end
      out("receipts: %s", rec_path or s.db or "(not recorded)")
      if merged and merged.partial then
        local have = {}
        for i, x in ipairs(merged.shards or {}) do have[i] = tostring(math.tointeger(x) or x) end
        out("partial merge: shards %s of %d only; the tickers of the others are missing", table.concat(have, ", "),
          math.tointeger(merged.of) or merged.of)
      elseif recipe and recipe.shard then
        out("shard %s of a sharded replay (retape merge combines the shards)", recipe.shard)
      end
      local days = s.days
      out("days replayed: %d", #days)
      local all = "all tickers"
      if merged and merged.partial then all = "the tickers of the merged shards"
      elseif recipe and recipe.shard then all = "the tickers of shard " .. recipe.shard end
      -- consecutive days replayed alike are one line (a two-month range is one or a few lines)
      local groups = {}
      for _, d in ipairs(days) do
        local text = d.covers
        if all ~= "all tickers" then text = text:gsub("all tickers", all) end
        local g = groups[#groups]
        if g and g.text == text then g.last, g.n = d.day, g.n + 1
        else groups[#groups + 1] = { first = d.day, last = d.day, n = 1, text = text } end
      end
      for i, g in ipairs(groups) do
        if i > 20 then out("  ... %d more (--json lists every day)", #groups - 20); break end
        if g.n == 1 then out("  %s  %s", g.first, g.text)
        else out("  %s to %s (%d days)  %s", g.first, g.last, g.n, g.text) end
      end
      if changes then
        for _, c in ipairs(changes.grown) do
          out("receipts added under %s since it was replayed (%d now, %s then): stale until replayed again: %s", c.day, c.n,
            tostring(c.was), command_line { "replay", "--state", dir, "--date", c.day })
        end
        for _, c in ipairs(changes.changed) do
          out("receipts changed under %s since it was replayed (%d now, %s then): replay it again: %s", c.day, c.n,
            tostring(c.was), command_line { "replay", "--state", dir, "--date", c.day })
        end
      elseif rec_path then
        out("receipts file %s is not readable here: added or changed receipts cannot be checked", rec_path)
      end
      if s.interrupted then
        local p = s.interrupted.params and json.decode(s.interrupted.params) or {}
        local words = { "replay", "--state", dir }
        if not rec_path then words[#words + 1] = "--db"; words[#words + 1] = s.db or "FILE" end
        if s.interrupted.phase ~= "refresh" then
          for _, k in ipairs { "date", "from", "to", "ticker", "shard" } do
            if type(p[k]) == "string" then words[#words + 1] = "--" .. k; words[#words + 1] = p[k] end
          end
          if math.tointeger(p.bucket) then words[#words + 1] = "--bucket"; words[#words + 1] = tostring(math.tointeger(p.bucket)) end
          if p.clean_slate == true then words[#words + 1] = "--clean-slate" end
        end
        words[#words + 1] = "--resume"
        if s.interrupted.phase == "refresh" then
          out("interrupted: the recomputation of stale results (started by %s); any next replay into this store "
            .. "finishes it first, or finish it: %s", s.interrupted.params, command_line(words))
        else
          out("interrupted run: %s, stopped before %s; any next replay into this store finishes it first, or continue it: %s",
            s.interrupted.params, rtime.format_ny(math.tointeger(s.interrupted.next)), command_line(words))
        end
      end
      if #s.stale > 0 then
        out("stale: %d ticker(s), recompute with '%s':", #s.stale, refresh)
        for i, x in ipairs(s.stale) do
          if i > 20 then out("  ... %d more", #s.stale - 20); break end
          out("  %-8s from %s", x.ticker, rtime.format_ny(math.tointeger(x.from)))
        end
      else
        out("stale: none")
      end
      out("runs: %d (%s)", s.runs, command_line { "runs", "--state", dir })
      return 0
    end,
  })

  command("merge", {
    summary = "Combine the stores of a sharded replay (--shard i/n) into one",
    usage = "retape merge --state OUT SHARD_STATE... [--partial] [--ledger FILE]",
    details = "Each shard replayed the tickers of its shard over the same receipts with the same rules; the\n"
           .. "merged store is byte-identical in its results to one single-process replay (versions, trades,\n"
           .. "lanes, marks, coverage) and keeps its scope, rules and receipts file.  The inputs must be shards\n"
           .. "0..n-1 of one replay, each once (--partial merges an incomplete set; status then says so).  OUT\n"
           .. "must be new; the store is built in OUT.merging and renamed when complete, so a killed merge\n"
           .. "leaves no OUT (run it again).  --ledger syncs a ledger from the merged store.",
    options = {
      { name = "state", arg = "DIR", help = "the merged store (a new directory)" },
      { name = "partial", type = "flag", help = "merge shards that are not the whole set 0..n-1 (the store says so)" },
      { name = "ledger", arg = "FILE", help = "sync trades and lanes of the merged store to this SQLite ledger" },
    },
    run = function(o, pos)
      if not o.state then args.usage_error("missing --state OUT") end
      if #pos == 0 then args.usage_error("expected the shard stores to merge") end
      local ok, counts, set = pcall(require("retape.merge").run, o.state, pos, { partial = o.partial })
      if not ok then return fail("merge", tostring(counts)) end
      local synced
      if o.ledger then
        local st, err = require("retape.store").open(o.state, true)
        if not st then return fail("merge", err) end
        local lok, res = pcall(require("retape.ledger").sync, st, o.ledger)
        st:close()
        if not lok then return fail("merge", tostring(res)) end
        synced = res
      end
      out("merged %d shards into %s: %d tickers, %d ticker-buckets, %d trades%s", #pos, o.state, counts.tickers,
        counts.versions, counts.trades, set.missing > 0 and string.format(" (partial: %d of %d shards)", #set.have, set.n) or "")
      if synced then out("ledger %s: %d trades, %d events, %d tickers", o.ledger, synced.trades, synced.events, synced.tickers) end
      return 0
    end,
  })

  command("diff", {
    summary = "Compare two replays of the same receipts: trades, lanes per ticker, totals",
    usage = "retape diff STATE_A STATE_B [--json] [--all]",
    details = "Names A and B (path, ruleset, overrides, settings that differ) and warns when they replayed\n"
           .. "different receipts.  Exits 0 when trades and lanes are the same, 1 when they differ (as diff(1)).",
    options = {
      { name = "json", type = "flag", help = "print the report as JSON" },
      { name = "all", type = "flag", help = "list every ticker whose lanes differ (default: the first 20)" },
    },
    run = function(o, pos)
      if #pos ~= 2 then args.usage_error("expected two state stores") end
      local fs = require "retape.fs"
      if (fs.absolute(pos[1]) or pos[1]) == (fs.absolute(pos[2]) or pos[2]) then
        args.usage_error("A and B are the same store (%s)", pos[1])
      end
      local storem = require "retape.store"
      local a, err = storem.open(pos[1], true)
      if not a then return fail("diff", err) end
      local b, err2 = storem.open(pos[2], true)
      if not b then a:close(); return fail("diff", err2) end
      local diff = require "retape.diff"
      local report = diff.compare(a, b)
      local da, db = diff.describe(a, pos[1]), diff.describe(b, pos[2])
      a:close()
      b:close()
      local status = diff.differs(report) and 1 or 0
      local same_receipts = da.receipts ~= nil and da.receipts == db.receipts
      if not same_receipts then
        io.stderr:write(string.format("retape diff: warning: A and B replayed different receipts (A %s, B %s)\n",
          tostring(da.receipts), tostring(db.receipts)))
      end
      if o.json then
        report.a = { path = da.path, rules = da.rules, overrides = da.overrides, receipts = da.receipts or json.null }
        report.b = { path = db.path, rules = db.rules, overrides = db.overrides, receipts = db.receipts or json.null }
        report.same_receipts = same_receipts
        report.config = diff.config_differences(da, db)
        -- what was compared (paths) goes last, after the differences
        out("%s", json.encode(report, { "added", "removed", "changed", "lanes", "totals", "same_receipts", "config",
          "trade", "fields", "field", "ticker", "first", "ts", "receipts", "of", "a", "b" })); return status
      end
      for _, d in ipairs { { "A", da }, { "B", db } } do
        out("%s: %s  rules %s%s", d[1], d[2].path, d[2].rules,
          #d[2].overrides > 0 and ("  (" .. table.concat(d[2].overrides, ", ") .. ")") or "")
      end
      local cd = diff.config_differences(da, db)
      for i, c in ipairs(cd) do
        if i > 10 and not o.all then out("  ... %d more settings differ (--all)", #cd - 10); break end
        out("  setting %s: A %s, B %s", c.key, c.a, c.b)
      end
      out("")
      local ta, tb = report.totals.a, report.totals.b
      out("%-18s %14s %14s", "", "A", "B")
      for _, row in ipairs {
        { "trades", "%14d", "trades" }, { "wins", "%14d", "wins" }, { "losses", "%14d", "losses" },
        { "flat", "%14d", "flat" }, { "open", "%14d", "open" }, { "win rate", "%13.1f%%", "win_rate", 100 },
        { "realized P&L", "%14.2f", "realized" }, { "unrealized P&L", "%14.2f", "unrealized" }, { "total P&L", "%14.2f", "pnl" } } do
        local k, scale = row[3], row[4] or 1
        out("%-18s " .. row[2] .. " " .. row[2], row[1], ta[k] * scale, tb[k] * scale)
      end
      out("\ntrades: %d only in A, %d only in B, %d changed", #report.removed, #report.added, #report.changed)
      for _, k in ipairs(report.removed) do out("  - %s", k) end
      for _, k in ipairs(report.added) do out("  + %s", k) end
      for _, c in ipairs(report.changed) do
        local parts = {}
        for _, f in ipairs(c.fields) do
          local function show(v)
            if v == json.null then return "-" end
            return type(v) == "number" and json.number(v) or tostring(v)
          end
          parts[#parts + 1] = string.format("%s %s -> %s", f.field, show(f.a), show(f.b))
        end
        out("  ~ %s: %s", c.trade, table.concat(parts, "; "))
      end
      out("\nlanes differ for %d tickers (first receipt where they part):", #report.lanes)
      for i, l in ipairs(report.lanes) do
        if i > 20 and not o.all then out("  ... %d more (--all)", #report.lanes - 20); break end
        out("  %-6s %s  A %s, B %s  (%d of %d receipts differ)", l.ticker, rtime.format_ny(math.tointeger(l.first.ts), true),
          l.first.a, l.first.b, l.receipts, l.of)
      end
      return status
    end,
  })
end
