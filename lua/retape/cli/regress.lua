-- Regression cases and explanations: `test`, `explain`.  Registered into
-- retape.cli by calling this module with it.
local args = require "retape.args"
local rtime = require "retape.time"
local json = require "retape.json"
local common = require "retape.cli.common"

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("test", {
    summary = "Run regression cases (golden lanes and trades, script cases) and report the first divergence",
    usage = "retape test [PATH...] [--diff] [--bless] [--repeat N] [--page-sizes]",
    details = "A case is a directory with a case.lua (a manifest with expected/lanes.txt and expected/trades.txt,\n"
           .. "or a function(t) making assertions); with no PATH, every case under ./tests.  Ends with\n"
           .. "'N passed, N failed'.  --bless rewrites the expected files from the current results.",
    options = {
      { name = "diff", type = "flag", help = "list every difference, not only the first" },
      { name = "bless", type = "flag", help = "rewrite the expected files of the cases from the current results" },
      { name = "repeat", arg = "N", type = "integer", help = "run each case N times; any byte of difference fails" },
      { name = "page-sizes", type = "flag", help = "rerun with pages of 7 and 50 and a crash+resume; any difference fails" },
    },
    run = function(o, pos)
      local ok = require("retape.regress").run(pos, { diff = o.diff, bless = o.bless, ["repeat"] = o["repeat"],
                                                      page_sizes = o.page_sizes })
      return ok and 0 or 1
    end,
  })


  command("explain", {
    summary = "Show why one stored receipt landed in its lane: inputs, score parts, enter paths, deciding rule",
    usage = "retape explain --state DIR (--ticker T --at 'YYYY-MM-DD HH:MM' | --ticker T --date D --at HH:MM | --receipt ID) "
         .. "[--rules NAME|FILE] [--set K=V]... [--json]",
    details = "Reads the stored run: the ticker's state just before the receipt's bucket and the rules and config\n"
           .. "the store recorded (by content: the rule file may have moved or changed since), so it agrees with\n"
           .. "'retape lanes' and 'retape trades' of the same store.  The receipts file is the one the store was\n"
           .. "replayed from (or --db).  --rules/--set/--config ask \"what if\": the same receipt and stored state\n"
           .. "under other rules or settings; the output says so.",
    options = common.with_store_options {
      { name = "ticker", arg = "T", help = "ticker (not needed with --receipt)" },
      { name = "date", arg = "YYYY-MM-DD", help = "day of --at HH:MM" },
      { name = "at", arg = "TIME", help = "the ticker's last receipt at or before this New York time" },
      { name = "receipt", arg = "ID", help = "this receipt" },
      { name = "rules", arg = "NAME|FILE", help = "what if: explain under this ruleset instead of the store's" },
      { name = "set", arg = "KEY=VALUE", repeat_ = true, help = "what if: explain with this setting changed" },
      { name = "config", arg = "FILE.lua", help = "what if: explain with these config overrides" },
      { name = "json", type = "flag", help = "print the explanation as JSON" },
    },
    run = function(o)
      if not o.at and not o.receipt then args.usage_error("give --at TIME or --receipt ID") end
      if not o.ticker and o.receipt then o.ticker = o.receipt:match("^([^:]+):") end
      if not o.ticker then args.usage_error("missing --ticker (or --receipt ID)") end
      local at = o.at and (common.parse_time(o.at, o.date, "--at") + 59999)
      local st, err = common.open_store(o)
      if not st then return fail("explain", err) end
      local T = require("retape.scope").ticker_list(o.ticker)[1]
      local known = st:tickers()
      local has = false
      for _, k in ipairs(known) do if k == T then has = true; break end end
      if not has then
        st:close()
        local near = require("retape.scope").close_matches(T, known)
        args.usage_error("the store holds no ticker '%s'%s", T, #near > 0 and ("; close matches: " .. table.concat(near, ", ")) or "")
      end
      local db = (o.db and o.state) and o.db or require("retape.manifest").receipts_path(st) or st:db_path()
      if not db then st:close(); return fail("explain", "the store does not name its receipts file; give --db FILE") end
      local what_if = o.rules or o.config or #o.set > 0
      local R, rerr
      if what_if then
        local rules = require "retape.rules"
        local base = o.rules
        local recipe = st:recipe()
        if not base and recipe and recipe.spec then rules.pin(recipe.files); base = recipe.spec end
        local ok, loaded = pcall(common.load_rules, base or "default", o)
        rules.unpin()
        if not ok then st:close(); return fail("explain", tostring(loaded)) end
        R = loaded
      else
        R, rerr = common.store_rules(st)
        if not R then st:close(); return fail("explain", rerr) end
      end
      local why, werr = require("retape.explain").explain(st, db, T, { at = at, receipt = o.receipt }, R)
      st:close()
      if not why then return fail("explain", werr) end
      if what_if then
        why.what_if = { rules = R.name, overrides = require("retape.rules").texts(R.overrides) }
      end
      if o.json then -- (the rule's explanation: bounded as what the engine keeps of a rule's value)
        local ok, text = pcall(json.encode, why, nil, json.KEPT_VALUES_MAX)
        if not ok then
          return fail("explain", "R.explain_step's explanation: " .. require("retape.sandbox").engine_message(text))
        end
        out("%s", text)
        return 0
      end
      local x = why
      if x.what_if then
        out("what if: rules %s%s instead of the store's (the stored state before the bucket is the store's)", x.rules,
          #x.what_if.overrides > 0 and (" with " .. table.concat(x.what_if.overrides, ", ")) or "")
      end
      out("%s at %s  (receipt %s, rules %s)", T, rtime.format_ny(math.tointeger(x.ts), true), x.receipt_id, x.rules)
      out("\ninputs:")
      local keys = {}
      for k in pairs(x.inputs) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = x.inputs[k]
        out("  %-15s %s", k, type(v) == "number" and json.number(v) or tostring(v))
      end
      out("\nmove status: %s, severity %s%s", x.move.status, x.move.severity,
        #x.move.reasons > 0 and (", reasons: " .. table.concat(x.move.reasons, ", ")) or "")
      if x.score_parts then
        out("\nscore fallback: base %s", json.number(x.score_base))
        for _, part in ipairs(x.score_parts) do out("  %+8.2f  %s", part[2], part[1]) end
      end
      out("\nenter paths (momentum names only):")
      for _, path in ipairs(x.paths or {}) do out("  %s  %-5s  %s", path[1], tostring(path[3]), path[2]) end
      out("\nstage %s, by rule: %s", tostring(x.stage), x.rule)
      out("final stage %s%s (previous: %s)", tostring(x.final_stage), x.forced and (", forced by " .. x.forced) or "",
        tostring(x.prev_stage))
      if (x.stored_stage or nil) ~= x.final_stage and x.what_if then
        out("the store holds %s for this receipt (its own rules); under these: %s", tostring(x.stored_stage), tostring(x.final_stage))
      elseif (x.stored_stage or nil) ~= x.final_stage then
        out("warning: the store holds %s for this receipt (the rules changed since the run?)", tostring(x.stored_stage))
      end
      return 0
    end,
  })
end
