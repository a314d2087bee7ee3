-- test_report.lua — the report's data model (retape.report.data) on real
-- stores: its totals are retape.stats' of the trades, every trade names
-- the rule that opened it, the lane strip gives what replay.lanes(at) gives,
-- the manifest tells complete / interrupted / stale, --vs sees the receipts
-- and the differences; the page is one file with no external reference.
local t = require "tap"
local retape = require "retape"
local P = require "parity"
local data = require "retape.report.data"
local html = require "retape.report.html"
local stats = require "retape.stats"

local tmp = os.getenv("RETAPE_TEST_TMP") or t.tempdir()
local receipts = P.receipts_db(tmp)
local D1 = "2026-02-02"
local db = P.levels_db(receipts, t.tempdir(), { { day = D1, synthetic_inputs = P.synth_levels(receipts, D1) } })

local function replay(state, params, opts)
  opts = opts or {}
  opts.db, opts.state = db, state
  local rp = assert(retape.replay.open(opts))
  local resp = rp:run(params)
  rp:close()
  return resp
end

local A = t.tempdir() .. "/a"
replay(A, { date = D1 })
local m = assert(data.build(A))
local st = assert(retape.store.open(A, true))
local trades = retape.replay.trades(st)
local R = retape.rules.load("default")
local tot = stats.compute(trades)
tot.pnl = tot.net_pnl
t.ok(#trades > 0, "the levels day opens trades", #trades)
t.eq(m.summary.trades, #trades, "summary: every trade")
t.eq(m.summary.wins .. "/" .. m.summary.losses .. "/" .. m.summary.open, tot.wins .. "/" .. tot.losses .. "/" .. tot.open,
  "summary: wins/losses/open by the shared outcome")
t.ok(math.abs(m.summary.total - tot.pnl) < 0.006, "summary: total P&L = retape.stats' net P&L", m.summary.total .. " vs " .. tot.pnl)
local named = 0
for _, tr in ipairs(trades) do if type(tr.enter_rule) == "string" and tr.enter_rule ~= "" then named = named + 1 end end
t.eq(named, #trades, "every trade records the enter rule that opened it")
local rules_seen = {}
for _, g in ipairs(m.breakdown.enter_rule) do rules_seen[#rules_seen + 1] = g.key end
t.ok(#rules_seen > 1 and not table.concat(rules_seen, ","):find("unrecorded"), "breakdown by enter rule", table.concat(rules_seen, ", "))
local n = 0
for _, g in ipairs(m.breakdown.exit_reason) do n = n + g.trades end
t.eq(n, #trades, "breakdown by exit reason covers every trade")
t.eq(m.summary.equity[1][2], 0, "the equity curve starts at 0")

-- the strip at a bucket = replay.lanes(st, R, bucket)
local function board_at(i)
  local lanes = {}
  for li = 1, #m.lanes do lanes[li] = {} end
  for ti, T in ipairs(m.tickers) do
    local ch, lane = m.strip[ti], -1
    for k = 1, #ch, 2 do if ch[k] <= i - 1 then lane = ch[k + 1] end end
    if lane >= 0 then table.insert(lanes[lane + 1], T) end
  end
  return lanes
end
local same, where = true, nil
for _, i in ipairs { 1, 12, 40, #m.buckets } do
  local want = retape.replay.lanes(st, R, m.buckets[i])
  local got = board_at(i)
  for li, l in ipairs(want) do
    if table.concat(l.tickers, " ") ~= table.concat(got[li], " ") then same, where = false, m.labels[i] .. " " .. l.title end
  end
end
t.ok(same, "the lane strip gives replay.lanes(at) at every bucket tried", where)
t.eq(m.labels[1], "2026-02-02 09:30 ET", "bucket labels in New York time")
t.eq(m.manifest.state, "complete", "manifest: a finished run is complete")
st:close()

-- interrupted: one page of one bucket leaves the scope unfinished
local I = t.tempdir() .. "/i"
replay(I, { date = D1, bucket = retape.time.from_ny(2026, 2, 2, 9, 30), limit = 5 })
local mi = assert(data.build(I))
t.eq(mi.manifest.state, "interrupted", "manifest: an unfinished scope is interrupted")

-- stale: the user ruleset changed after the replay
local rules_file = t.tempdir() .. "/mine.lua"
local function write_rules(extra)
  local f = assert(io.open(rules_file, "w"))
  f:write('local R = require("retape.rules").load("default")\nR.name = "mine"\n', extra, "\nreturn R\n")
  f:close()
end
write_rules("")
local S = t.tempdir() .. "/s"
replay(S, { date = D1, ticker = "CLS,INTC" }, { rules = rules_file })
write_rules("R.config.classify.p1_score = 74")
local ms = assert(data.build(S))
t.eq(ms.manifest.state, "stale", "manifest: rules changed since the replay: stale")
t.ok(ms.manifest.notes[1] and ms.manifest.notes[1]:find("changed since", 1, true) ~= nil, "the note says which ruleset changed", ms.manifest.notes[1])

-- --vs: the same receipts or not, and the differences
local mv = assert(data.build(A, { vs = S }))
mv.vs = mv.vs[1]
t.eq(mv.vs.same_receipts, false, "--vs: a two-ticker replay read other receipts")
t.ok(#mv.vs.removed > 0 and #mv.vs.lanes > 0, "--vs: trades only in A, lanes that part", #mv.vs.removed .. " trades, " .. #mv.vs.lanes .. " tickers")
local B = t.tempdir() .. "/b"
replay(B, { date = D1 }, { rules = "worker-2026-02-02" })
local mb = assert(data.build(A, { vs = { B, S } }))
t.eq(#mb.vs, 2, "--vs with two stores: both compared with A")
mb.vs = mb.vs[1]
t.eq(mb.vs.same_receipts, true, "--vs: the parity ruleset over the same receipts")
t.ok(#mb.vs.summary.equity > 1, "--vs: B's equity curve")

-- the page: one file, data inside, no reference outside it
mv.manifest.notes[#mv.manifest.notes + 1] = "</script><script>alert(1)</script>" -- data that tries to close the block
local page = html.render(mv)
t.ok(page:find('<script type="application/json" id="report-data">', 1, true) ~= nil, "the data model is inside the page")
t.ok(not page:find('src="http', 1, true) and not page:find('href="http', 1, true) and not page:find("@import", 1, true),
  "no external script, style or link")
local block = page:match('id="report%-data">(.-)</script>')
t.ok(block and not block:find("</", 1, true), "the data block cannot close itself (\"</\" escaped)")
local E = t.tempdir() .. "/empty"
assert(retape.kv.open(E)):close()
local me = assert(data.build(E))
t.eq(me.manifest.state .. " " .. me.summary.trades .. " " .. #me.buckets, "unknown 0 0", "a store without runs: state unknown, nothing to show")
t.eq(select(2, data.build(t.tempdir() .. "/none")) and "error" or "model", "error", "a directory without a store: nil, message")
-- the glossary explains a rule's exit reason by its longest "PREFIX*"
-- entry, at most four levels deep; a long key is looked up in a moment
do
  local glossary = require("retape.report.trades").glossary
  local R = { glossary = { exit_reason = { ["FLIP_*"] = "Flip", X = "ex" } } }
  local started = os.clock()
  local g = glossary(R, { { exitReason = "FLIP_X" }, { exitReason = string.rep("FLIP_", 4000) },
                          { exitReason = string.rep("FLIP_", 6) .. "X" } })
  local text = {}
  for _, e in ipairs(g.exit_reason) do text[#text + 1] = e.text end
  t.eq(text[3], "Flip X: ex", "a prefix entry and the rest (keys in order)")
  t.eq(text[1], "(the ruleset does not describe it)", "a key past 200 bytes is not looked up")
  t.eq(text[2], "Flip FLIP_FLIP_FLIP_FLIP_FLIP_X: Flip FLIP_FLIP_FLIP_FLIP_X: Flip FLIP_FLIP_FLIP_X: Flip FLIP_FLIP_X",
       "four levels at most")
  t.ok(os.clock() - started < 1, "in a moment", os.clock() - started)
end

os.exit(t.done())
