-- bench_replay.lua DB STATE FROM TO [RULES [THREADS [budget]]] — a full
-- replay (fresh store) of the days FROM..TO with RULES (default: the
-- default ruleset) on THREADS threads (default 1; "all": every core);
-- prints rows, payload bytes of the rows read, trades, peak RSS.  With
-- "budget" (one thread): also the per-receipt budget, µs per receipt of
-- each stage (fetch + decode, step, simulate, pack + stage, commit, other):
-- each stage's share of the run's wall time (the replay's own clock)
-- times the run's CPU time, so that a busy machine, which stretches every
-- stage alike, does not inflate the figures.
local retape = require "retape"
local db, state, from, to, rules, threads, budget = ...
threads = threads == "all" and require("retape.pool").cores() or tonumber(threads) or 1
assert(retape.fs.remove_tree(state))
-- durable = "run": as `retape replay` runs
local rp = assert(retape.replay.open { db = db, state = state, script_version = false, rules = rules,
                                                threads = threads, budget = budget == "budget", durable = "run" })
local cpu0 = os.clock()
local r = rp:run { from = from, to = to }
local run_cpu_ms = (os.clock() - cpu0) * 1000
rp:close()
assert(r.errors == 0, "errors in the bench replay")
print(string.format("rows=%d trades=%d peak_rss_kb=%d cpu_ms=%d", r.rowsProcessed, r.tradesCreated, retape.core.peak_rss_kb(), math.floor(os.clock() * 1000)))
if r.budget then
  local b, n = r.budget, r.rowsProcessed
  local scale = run_cpu_ms / b.total -- CPU ms per wall ms of the run
  local function us(ms) return ms * scale * 1000 / n end
  local other = b.total - b.fetch - b.step - b.simulate - b.pack - b.commit
  print(string.format("budget_us wall_to_cpu=%.3f fetch=%.2f step=%.2f simulate=%.2f pack=%.2f commit=%.2f other=%.2f total=%.2f engine=%.2f",
    scale, us(b.fetch), us(b.step), us(b.simulate), us(b.pack), us(b.commit), us(other), us(b.total),
    us(b.total - b.step - b.simulate)))
end
