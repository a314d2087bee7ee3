-- rules/worker-2026-02-02.lua — the parity ruleset: lane classification,
-- dynamic score, move status, lane transitions and trade simulation of the
-- original worker at commit 28d49b177 (2026-02-02), quirks included (spec
-- §8): shouldTrigger is not a gate, archive does not close trades, entry
-- stamps stick, trigger_ts is synthesised from the row time when missing,
-- no cooldowns, a $0 close is a WIN, trims cap at 95 %, views key days in UTC.
--
-- Only two things differ from the original, both on purpose: the clock is
-- the receipt's time (weekend guard, event times, lastUpdate), and trade ids
-- derive from ticker, entry time and a sequence instead of Date.now()+random.
--
-- Every number the rules use is in `config` below.  A user ruleset can start
-- from this one (`local R = retape.rules.load "worker-2026-02-02"`), change
-- config values or replace any function of R, and return R.
local R = {
  name = "worker-2026-02-02",
  description = "original worker at 28d49b177 (replay-ingest, 2026-02-02), quirks included",
}

local DAY_MS, MIN_MS = 86400000, 60000

-- The payload fields these rules read (and stamp), for retape.decode: only
-- these are decoded from each receipt; any other field a rule touches is
-- decoded on first access (correct, but it costs a full decode of that
-- payload).  "a.b" is key b of object a, "*" any key (or array element).
-- A ruleset extending this one appends its own:
--   R.fields[#R.fields + 1] = "rsi.value"
R.fields = {
  "ticker", "ts", "price", "state", "htf_score", "ltf_score", "htfScore", "ltfScore",
  "completion", "phase_pct", "phase_zone", "rank", "rank_position", "position", "score",
  "rr", "rr_now_likely", "rr_entry_likely", "script_version",
  "trigger_ts", "trigger_price", "triggers", "flags",
  "sl", "sl_price", "stop_loss", "tp", "tp_max_price", "tp_target_price", "tp_target", "tp_levels.*.price",
  "entry_ts", "entry_price", "entry_ref",
  "tf_tech.*.ema.stack", "tf_tech.*.sq", "daily_ema_cloud", "ichimoku_d", "ichimoku_w",
  -- stamped by the rules or the replay: declared, so reading one before it
  -- is stamped (or after it is cleared) is a plain nil, never a decode
  "ingest_ts", "move_status", "kanban_stage", "kanban_meta", "prev_kanban_stage", "prev_kanban_stage_ts",
  "kanban_cycle_enter_now_ts", "kanban_cycle_trigger_ts", "kanban_cycle_side", "exec",
}

-- The payload's nested tables these rules write into (only `flags`): a
-- sweep gives each variant its own copy of these and shares the rest.
R.payload_writes = { "flags" }

R.config = {
  -- §3.2 corridor bands (d921eeefe … Feb-4); LONG is tested first
  corridor = {
    long  = { ltf_min = -10, ltf_max = 22 },   -- and htf > 0
    short = { ltf_min = -12, ltf_max = 10 },   -- and htf < 0
  },
  -- "Late" in classify: phase zone HIGH/EXTREME, or phase / completion above these
  late = { phase = 0.70, completion = 0.95, zones = { HIGH = true, EXTREME = true } },
  -- §3.3 move status
  move = {
    stale_trigger_ms = 14 * DAY_MS,   -- a trigger older than this falls back to the entry time
    breach_pct = 0.05,                -- trigger_breached_5pct
    overextended = 0.95,              -- completion toward TP max
    adverse_warning = 0.05,           -- adverse_move_warning (5–10 %)
    adverse_large = 0.10,             -- large_adverse_move (≥ 10 %) ⇒ INVALIDATED
  },
  -- §3.4 classification
  classify = {
    trim_completion = 0.60,           -- position lanes: completion ≥ this ⇒ trim
    trim_phase_warning = 0.65,        -- or phase ≥ this with a WARNING
    just_entered_ms = 15 * MIN_MS,    -- entry younger than this ⇒ just_entered
    flip_enter_score = 70,            -- flip_watch upgrade
    flip_elite_score = 60,
    p1_score = 75, p1_position_max = 20,   -- momentum paths P1..P5
    p2_score = 60,
    p3_htf = 40, p3_ltf = 20, p3_score = 70,
    p4_score = 70,
    p5_score = 68,
    setup_release_score = 70,         -- step 7: setup in corridor with a squeeze release
  },
  -- §3.5 dynamic score (replay fallback when the receipt carries no score)
  score = {
    base = 50,
    completeness = { tf_tech = 35, triggers = 5, tp_levels = 10, daily_ema_cloud = 10, ichimoku_d = 15, ichimoku_w = 10 },
    completeness_low = { below = 70, penalty = -6 }, completeness_mid = { below = 85, penalty = -3 },
    tf_weights = { W = 2, D = 2, ["4H"] = 1.5, ["1H"] = 1.5, ["30"] = 1, ["10"] = 1 },
    tf_stack = 4, tf_min = -8, tf_max = 10, tf_squeeze_on = 1, tf_squeeze_release = 2,
    trigger_min = -6, trigger_max = 18,
    triggers = {                      -- points per trigger name (side-matched where marked)
      SQUEEZE_RELEASE_30M = 6, ST_FLIP_1H = 1, ST_FLIP_30M = 1,
      EMA_CROSS_1H_13_48 = 6, EMA_CROSS_30M_13_48 = 2, BUYABLE_DIP_1H_13_48 = 7,
    },
    -- used when the payload has no triggers[]; the lower-timeframe extras are
    -- the weights the parity references pin (5m/1m variants never occur there)
    flag_triggers = { sq30_release = 4, ema_cross_1h_13_48 = 5, buyable_dip_1h_13_48 = 7,
                      ema_cross_10m_13_48 = 2, sq10_release = 3, st_flip_10m = 0.5,
                      ema_cross_3m_13_48 = 1, sq3_release = 1, st_flip_3m = 0.5 },
    invalidated = -30, completed = -20,
    corridor = 12, corridor_momentum = 8,
    sq30_release = 10, sq30_on = 5,
    rr = { { 2.0, 8 }, { 1.5, 5 }, { 1.0, 2 } },
    phase_low = { { 0.3, 6 }, { 0.5, 3 } }, phase_high = { 0.7, -5 },
    completion_low = { 0.3, 5 }, completion_high = { 0.8, -8 },
    htf_factor = 0.15, htf_cap = 8, ltf_factor = 0.12, ltf_cap = 6,
    phase_zone_change = 4,
    rank_threshold = 70, rank_from = 160, rank_min = 1, rank_max = 50,
  },
  -- §4.2 trade simulation
  trade = {
    trim_ladder = { { "completion", 0.85, 0.75 }, { "completion", 0.70, 0.50 },
                    { "phase", 0.80, 0.75 }, { "phase", 0.70, 0.50 } },
    trim_default = 0.25, trim_cap = 0.95,
    confidence = { rank = 0.55, rr = 0.25, score = 0.20, rank_floor = 60, rank_span = 30,
                   rr_floor = 1, rr_span = 1.5, htf_span = 60, htf_weight = 0.6, ltf_span = 35, ltf_weight = 0.4,
                   elite_bonus = 0.08, thesis_bonus = 0.08, sq30_release_bonus = 0.04 },
    notional_min = 1000, notional_span = 4000, notional_max = 5000,
    cash = 1e9,
    protect = { pnl_pct = 2, completion = 0.6, long_factor = 0.995, short_factor = 1.005, min_step = 0.0005 },
    futures_point_value = { ["ES1!"] = 50, ["NQ1!"] = 20, ["MES1!"] = 5, ["MNQ1!"] = 2, ["YM1!"] = 5, ["RTY1!"] = 50 },
  },
  -- the account the statistics lay over the trades (retape.stats, docs/statistics.md); it never changes
  -- what a replay stores.  The original's own sizing, no fees, no slippage.
  capital = {
    start = 100000.0,         -- starting capital ($), the base of every % figure
    sizing = "ruleset",       -- "ruleset": each trade's own size; "equity_pct": equity_pct % of equity at entry
    equity_pct = 10.0,        -- with sizing equity_pct: % of the account's equity put into each trade
    fee_per_order = 0.0,      -- $ per fill (the entry, each trim, the exit)
    fee_per_share = 0.0,      -- $ per share or contract filled
    fee_bps = 0.0,            -- basis points of each fill's value
    slippage_bps = 0.0,       -- each fill moves this many basis points against the trade
  },
}
-- settings that take one of a few words: --set checks them like keys
R.enums = { ["capital.sizing"] = { "ruleset", "equity_pct" } }
-- The ranges worth searching of numeric settings (min, max, step): `rules
-- show` lists them, `sweep --grid KEY` (no values) runs every step and
-- `sweep --random N` draws from them.
R.ranges = {
  ["corridor.long.ltf_min"] = { min = -20, max = 0, step = 2 },
  ["corridor.long.ltf_max"] = { min = 10, max = 30, step = 2 },
  ["corridor.short.ltf_min"] = { min = -20, max = 0, step = 2 },
  ["corridor.short.ltf_max"] = { min = 0, max = 20, step = 2 },
  ["late.phase"] = { min = 0.5, max = 0.9, step = 0.05 },
  ["late.completion"] = { min = 0.8, max = 1.0, step = 0.05 },
  ["move.breach_pct"] = { min = 0.02, max = 0.1, step = 0.01 },
  ["move.adverse_large"] = { min = 0.05, max = 0.2, step = 0.01 },
  ["classify.trim_completion"] = { min = 0.4, max = 0.9, step = 0.05 },
  ["classify.p1_score"] = { min = 60, max = 90, step = 5 },
  ["classify.p2_score"] = { min = 50, max = 80, step = 5 },
  ["classify.p3_score"] = { min = 60, max = 90, step = 5 },
  ["classify.p4_score"] = { min = 60, max = 90, step = 5 },
  ["classify.p5_score"] = { min = 60, max = 90, step = 4 },
  ["trade.trim_default"] = { min = 0.1, max = 0.5, step = 0.05 },
  ["capital.equity_pct"] = { min = 1, max = 100, step = 1 },
  ["capital.fee_bps"] = { min = 0, max = 20, step = 1 },
  ["capital.slippage_bps"] = { min = 0, max = 20, step = 1 },
}

-- What the exit reasons and enter rules written on trades mean (the report's
-- glossary; "PREFIX*" covers every reason starting with PREFIX, the rest
-- looked up again).
R.glossary = {
  exit_reason = {
    below_trigger = "a LONG's price fell below its trigger (or entry) price",
    above_trigger = "a SHORT's price rose above its trigger (or entry) price",
    trigger_breached_5pct = "the price is 5 % or more beyond the trigger, against the trade (move.breach_pct)",
    sl_breached = "the price crossed the stop-loss level",
    tp_reached = "the price reached the take-profit level",
    daily_ema_regime_break = "the daily EMA cloud no longer agrees with the trade's side",
    ichimoku_regime_break = "the daily/weekly Ichimoku no longer agrees with the trade's side",
    late_cycle = "the move is late in its cycle (phase or completion above late.*) and not momentum-elite",
    overextended = "completion toward the TP max is 95 % or more (move.overextended)",
    left_entry_corridor = "the HTF/LTF scores left the side's entry corridor (corridor.*)",
    large_adverse_move = "the price moved 10 % or more against the trade (move.adverse_large): the move is invalidated",
    adverse_move_warning = "the price moved 5-10 % against the trade (move.adverse_warning)",
    ["KANBAN_*"] = "the lane said so with no move-status reason: the stage",
    ["FLIP_*"] = "closed because the ticker entered the other side (a flip); why the position was left:",
  },
  enter_rule = {
    ["momentum P1"] = "score >= classify.p1_score (or a rank position within p1_position_max) inside the entry corridor",
    ["momentum P2"] = "thesis match or momentum elite with score >= classify.p2_score",
    ["momentum P3"] = "HTF >= classify.p3_htf and LTF >= p3_ltf with score >= p3_score",
    ["momentum P4"] = "inside the corridor with a 30-minute squeeze release and score >= classify.p4_score",
    ["momentum P5"] = "inside the corridor with a 1H EMA cross or buyable dip and score >= classify.p5_score",
    ["flip_watch upgrade"] = "a flip-watch ticker inside the corridor with score >= classify.flip_enter_score (or elite >= flip_elite_score)",
    ["setup squeeze release"] = "a setup inside the corridor with a 30-minute squeeze release and score >= setup_release_score",
    forced_enter_now_gate = "a management lane without the enter_now cycle of its trigger and side: sent back to Enter Now (§3.7)",
    unrecorded = "the trade does not say which rule entered it",
  },
}

-- The 8 lanes of the board, in order, with the stages each shows (master plan).
R.lanes = {
  { id = "watching",     title = "Watching",      stages = { "watch", "setup_watch" } },
  { id = "almost_ready", title = "Almost Ready",  stages = { "flip_watch", "just_flipped" } },
  { id = "enter_now",    title = "Enter Now",     stages = { "enter_now" } },
  { id = "just_entered", title = "Just Entered",  stages = { "just_entered" } },
  { id = "hold",         title = "Hold",          stages = { "hold" } },
  { id = "trim",         title = "Trim",          stages = { "trim" } },
  { id = "exit",         title = "Exit",          stages = { "exit" } },
  { id = "archived",     title = "Archived",      stages = { "archive" } },
}
R.stage_order = { watch = 0, setup_watch = 1, flip_watch = 2, just_flipped = 3, enter_now = 4,
                  just_entered = 5, hold = 6, trim = 7, exit = 8, archive = 9 }
R.management = { hold = true, just_entered = true, trim = true, exit = true }

-- The per-ticker state this ruleset keeps (retape.state): `fields` are
-- carried from one receipt of a ticker to its next and handed back as `ex`;
-- `view` fields are kept from the last receipt for the views only; a clean
-- slate clears the entry and cycle stamps (spec §5) and drops the position.
R.state = {
  fields = {
    ts = "number", kanban_stage = "string", entry_ts = "number", entry_price = "number",
    kanban_cycle_enter_now_ts = "number", kanban_cycle_trigger_ts = "number", kanban_cycle_side = "string",
  },
  view = { "score", "rank_position", "move_status", "kanban_meta", "prev_kanban_stage",
           "prev_kanban_stage_ts", "trigger_ts", "sl", "tp", "state", "price", "htf_score", "ltf_score" },
  clean_slate = { "entry_ts", "entry_price", "kanban_cycle_enter_now_ts", "kanban_cycle_trigger_ts", "kanban_cycle_side" },
  stage = "kanban_stage",
}

-- Key order of a trade record and of its history events, as the original
-- wrote them (the store writes trades with it).
R.trade_order = {
  "id", "ticker", "direction", "entryPrice", "entryTime", "entry_ts", "triggerTimestamp", "sl", "tp", "rr",
  "rank", "state", "flags", "scriptVersion", "status", "trimmedPct", "history", "notional", "confidence",
  -- history events interleave here: one rank list serves trades and events
  "type", "timestamp", "price", "shares", "value", "trimPct", "trimDeltaPct", "oldSl", "newSl", "reason",
  "pnl_realized",
  "pointValue", "realizedPnl", "currentPrice", "lastUpdate", "source", "exitReason", "exitPrice",
  "pnl", "pnlPct", "sl_protect_reason", "sl_last_tighten_ts", "note",
}

-- A trade counts as open until it is closed (WIN, LOSS, FLAT).
function R.trade_is_open(t)
  return t.status == "OPEN" or t.status == "TP_HIT_TRIM" or t.status == "" or t.status == nil
end

-- The badge the board shows next to a ticker (the Defend shield on Hold).
function R.badge(latest)
  local m = latest.kanban_meta
  return type(m) == "table" and m.bucket == "defend" and "defend" or nil
end

-- One line of `retape replay --trace` per receipt: the parity references' columns.
R.trace_columns = { "ticker", "ts", "bucket_5m", "state", "score", "rank_position", "move_status",
  "move_reasons", "stage", "finalStage", "forced", "prevStage", "entry_ts", "entry_price", "receipt_id", "rule" }
function R.trace_record(row, p, ex, stage, final, forced, rule)
  local ms = p.move_status or {}
  return {
    ticker = row.ticker, ts = row.ts, bucket_5m = row.bucket_5m, state = p.state, score = p.score,
    rank_position = p.rank_position, move_status = ms.status, move_reasons = ms.reasons or {},
    stage = stage, finalStage = final, forced = forced, prevStage = ex.kanban_stage,
    entry_ts = p.entry_ts, entry_price = p.entry_price, receipt_id = row.receipt_id, rule = rule,
  }
end

---------------------------------------------------------------------------
-- helpers

-- (the library functions the rules call for every receipt, as locals: an
-- upvalue read instead of a global lookup per use)
local type, pairs, ipairs, rawget = type, pairs, ipairs, rawget
-- (`v ~= nil and type(v) ...`: most fields a receipt may carry are absent,
-- and the nil test spares them the call of type)
local function num(v) return v ~= nil and type(v) == "number" and v == v and v or nil end
local function pos(v) return v ~= nil and type(v) == "number" and v > 0 and v or nil end -- (NaN fails v > 0)
-- (the hottest paths below test inline what num/pos test: a number that is
-- not NaN, `type(v) == "number" and v == v`; and positive, `v > 0`, which
-- NaN fails too)
local function clamp(x, lo, hi) if x < lo then return lo elseif x > hi then return hi end return x end
local floor, min, max = math.floor, math.min, math.max

-- Weights are added in sorted key order, never in the order `pairs` visits
-- them: that order depends on the string hash seed of each Lua state, so
-- two processes (or two threads) could add the same float weights in
-- another order and differ in the last bit.  Overrides are checked against
-- this config and add no key, so its keys are all there are.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end
local TF_NAMES = sorted_keys(R.config.score.tf_weights)
local COMPLETENESS_FIELDS = sorted_keys(R.config.score.completeness)
local flags_set = {} -- scratch: the weighted flags of the receipt being scored
local function js_round(x) return floor(x + 0.5) end
local function round2(x) return floor(x * 100 + 0.5) / 100 end
local function abs(x) return x < 0 and -x or x end
local function flag(d, name) local f = d.flags; return type(f) == "table" and f[name] == true end
local NO_FLAGS = {} -- read-only stand-in for a payload without a flags table (f[name] == true: flag)
-- JS truthiness for numbers: nil, 0 and NaN are falsy
local function truthy(v) return v ~= nil and v ~= false and v ~= 0 and v == v and v ~= "" end
R.helpers = { num = num, pos = pos, clamp = clamp, round2 = round2, truthy = truthy, flag = flag, abs = abs }

function R.is_momentum(d)
  local st = d.state
  return st == "HTF_BULL_LTF_BULL" or st == "HTF_BEAR_LTF_BEAR"
end

-- The direction a state string names: "LONG" if it contains BULL, else
-- "SHORT" if it contains BEAR, else false.  Memoised per string (a feed
-- has a handful of states; the memo is capped, and holds nothing that
-- depends on earlier receipts).
local state_dirs, state_dirs_n = {}, 0
local function state_direction(st)
  local dir = state_dirs[st]
  if dir == nil then
    dir = st:find("BULL", 1, true) and "LONG" or st:find("BEAR", 1, true) and "SHORT" or false
    if state_dirs_n < 1024 then state_dirs[st], state_dirs_n = dir, state_dirs_n + 1 end
  end
  return dir
end

-- sideFromStateOrScores
function R.side(d)
  local st = d.state
  if type(st) == "string" then
    local dir = state_dirs[st] or state_direction(st) -- (the memo read inline: no call once memoised)
    if dir then return dir end
  end
  local htf = d.htf_score -- a number (NaN compares false both ways)
  if htf ~= nil and type(htf) == "number" then
    if htf > 0 then return "LONG" end
    if htf < 0 then return "SHORT" end
  end
  return nil
end

-- getTradeDirection: from the state string only
function R.direction(d)
  local st = d.state
  return type(st) == "string" and (state_dirs[st] or state_direction(st)) or nil
end

function R.corridor_side(d)
  local htf, ltf = d.htf_score or d.htfScore, d.ltf_score or d.ltfScore
  -- numbers only (NaN fails every comparison below, as num() would)
  if htf == nil or ltf == nil or type(htf) ~= "number" or type(ltf) ~= "number" then return nil end
  local c = R.config.corridor
  if htf > 0 then
    local L = c.long
    if ltf >= L.ltf_min and ltf <= L.ltf_max then return "LONG" end
  elseif htf < 0 then
    local S = c.short
    if ltf >= S.ltf_min and ltf <= S.ltf_max then return "SHORT" end
  end
  return nil
end

-- (a NaN phase or completion fails the comparisons, like a missing one)
function R.is_late(d)       -- classify's Late (with the completion term)
  local L = R.config.late
  if L.zones[d.phase_zone] == true then return true end
  local phase, comp = d.phase_pct, d.completion
  return (phase ~= nil and type(phase) == "number" and phase >= L.phase)
    or (comp ~= nil and type(comp) == "number" and comp >= L.completion)
end

function R.is_late_cycle(d) -- the gates' isLateCycle (no completion term)
  local L = R.config.late
  if L.zones[d.phase_zone] == true then return true end
  local phase = d.phase_pct
  return phase ~= nil and type(phase) == "number" and phase >= L.phase
end

local function position_of(obj) return obj ~= nil and type(obj) == "table" and obj.position or nil end

function R.daily_ema_ok(d, side)
  local p = position_of(d.daily_ema_cloud)
  if not p then return true end
  if side == "LONG" then return p ~= "below" end
  if side == "SHORT" then return p ~= "above" end
  return true
end

function R.ichimoku_ok(d, side)
  local pd, pw = position_of(d.ichimoku_d), position_of(d.ichimoku_w)
  if not pd and not pw then return true end
  local against = side == "LONG" and "below" or side == "SHORT" and "above" or nil
  return not (against and pd == against and pw == against)
end

-- TP max of a payload's tp_levels, computed once per levels table: the
-- rules call tp_max several times for a row, always on the row's own
-- payload, so the last levels table and its maximum are all it keeps.
local last_levels, last_tp_max = nil, nil

function R.tp_max(d)
  local t = d.tp_max_price
  if t ~= nil and type(t) == "number" and t > 0 then return t end
  local levels = d.tp_levels
  if levels == nil or type(levels) ~= "table" then return nil end
  if levels == last_levels then return last_tp_max end
  local st = d.state
  local best = R.tp_max_of_levels(levels, type(st) == "string" and st:find("BEAR", 1, true) ~= nil)
  last_levels, last_tp_max = levels, best
  return best
end

function R.tp_max_of_levels(levels, bear)
  local best
  for i = 1, math.maxinteger do -- ipairs(levels), without the iterator calls
    local lv = levels[i]
    if lv == nil then break end
    if type(lv) == "table" then
      local p = lv.price
      if type(p) == "number" and p > 0 then -- pos(p)
        if best == nil then best = p
        elseif bear then if p < best then best = p end
        elseif p > best then best = p end
      end
    end
  end
  return best
end

function R.completion_for_size(d)
  local c = d.completion
  if c ~= nil and type(c) == "number" and c == c then return clamp(c, 0, 1) end
  local px, trig, tp = d.price, d.trigger_price, d.tp
  if px == nil or trig == nil or tp == nil or type(px) ~= "number" or px ~= px or type(trig) ~= "number"
     or trig ~= trig or type(tp) ~= "number" or tp ~= tp or tp == trig then return 0 end
  return clamp(abs(px - trig) / abs(tp - trig), 0, 1)
end

function R.completion_to_tp_max(d)
  local px, trig = d.price, d.trigger_price
  if px == nil or trig == nil or type(px) ~= "number" or px ~= px or type(trig) ~= "number" or trig ~= trig then
    return nil
  end
  local tpm = R.tp_max(d)
  if not tpm or tpm == trig then return nil end
  return clamp(abs(px - trig) / abs(tpm - trig), 0, 1)
end

---------------------------------------------------------------------------
-- §3.3 move status

function R.move_status(d)
  local side = R.side(d)
  if not side then return { status = "ACTIVE", severity = "NONE", reasons = {} } end
  local entry_ts = d.entry_ts
  if entry_ts == nil then entry_ts = d.kanban_cycle_enter_now_ts end
  if entry_ts == nil or type(entry_ts) ~= "number" or not (entry_ts > 0) then
    return { status = "NONE", severity = "NONE", reasons = {} }
  end
  local M = R.config.move
  local ts = d.ts
  if type(ts) ~= "number" or ts ~= ts then ts = 0 end
  local trig = d.trigger_ts
  if trig == nil or type(trig) ~= "number" or not (trig > 0) then trig = entry_ts end
  if ts - trig > M.stale_trigger_ms then
    if ts - entry_ts > M.stale_trigger_ms then return { status = "NONE", severity = "NONE", reasons = {} } end
  end
  local px = d.price
  if px ~= nil and (type(px) ~= "number" or px ~= px) then px = nil end
  local anchor = d.trigger_price
  if anchor == nil or type(anchor) ~= "number" or not (anchor > 0) then
    anchor = d.entry_price
    if anchor ~= nil and (type(anchor) ~= "number" or not (anchor > 0)) then anchor = nil end
  end
  -- reasons in the original's order; the few that decide status and
  -- severity are also kept as booleans (no per-row lookup table or closure)
  local reasons, n = {}, 0
  local breached5, sl_breached, tp_reached, large_adverse = false, false, false, false
  local long = side == "LONG"
  if px and anchor then
    if (long and px < anchor) or (not long and px > anchor) then
      n = n + 1; reasons[n] = long and "below_trigger" or "above_trigger"
      if abs(px - anchor) / anchor >= M.breach_pct then n = n + 1; reasons[n] = "trigger_breached_5pct"; breached5 = true end
    end
  end
  local sl = d.sl
  if px and sl ~= nil and type(sl) == "number" and sl > 0 and ((long and px <= sl) or (not long and px >= sl)) then
    n = n + 1; reasons[n] = "sl_breached"; sl_breached = true
  end
  local tp = R.tp_max(d) or pos(d.tp)
  if px and tp and ((long and px >= tp) or (not long and px <= tp)) then n = n + 1; reasons[n] = "tp_reached"; tp_reached = true end
  if not R.daily_ema_ok(d, side) then n = n + 1; reasons[n] = "daily_ema_regime_break" end
  if not R.ichimoku_ok(d, side) then n = n + 1; reasons[n] = "ichimoku_regime_break" end
  if R.is_late_cycle(d) and not flag(d, "momentum_elite") then n = n + 1; reasons[n] = "late_cycle" end
  local comp = R.completion_to_tp_max(d) or R.completion_for_size(d)
  if comp >= M.overextended then n = n + 1; reasons[n] = "overextended" end
  if R.corridor_side(d) == nil then n = n + 1; reasons[n] = "left_entry_corridor" end
  if px and anchor then
    local adverse = (long and (anchor - px) or (px - anchor)) / anchor
    if adverse >= M.adverse_large then n = n + 1; reasons[n] = "large_adverse_move"; large_adverse = true
    elseif adverse >= M.adverse_warning then n = n + 1; reasons[n] = "adverse_move_warning" end
  end
  local status = tp_reached and "COMPLETED"
    or (sl_breached or large_adverse) and "INVALIDATED" or "ACTIVE"
  local severity = (sl_breached or breached5) and "CRITICAL"
    or n > 0 and "WARNING" or "NONE"
  return { status = status, severity = severity, reasons = reasons }
end

---------------------------------------------------------------------------
-- §3.5 dynamic score

local SQUEEZE_TFS = { "30", "10" } -- the timeframes whose squeeze counts (one table per run, not per row)

function R.tf_alignment(d, side, in_corridor)
  local S = R.config.score
  local tf = d.tf_tech
  if tf == nil or type(tf) ~= "table" then return 0 end
  local aligned, opposed = 0, 0
  local need = S.tf_stack
  local short = side == "SHORT"
  local weights = S.tf_weights
  for i = 1, #TF_NAMES do
    local name = TF_NAMES[i]
    local w = weights[name]
    local t = tf[name]
    local ema = type(t) == "table" and t.ema
    if type(ema) == "table" then
      local stack = ema.stack
      if type(stack) == "number" and stack == stack then
        if short then stack = -stack end
        if stack >= need then aligned = aligned + w elseif stack <= -need then opposed = opposed + w end
      end
    end
  end
  local pts = clamp(2 * (aligned - opposed), S.tf_min, S.tf_max)
  local sq_on, sq_rel = false, false
  for i = 1, #SQUEEZE_TFS do
    local t = tf[SQUEEZE_TFS[i]]
    local sq = type(t) == "table" and t.sq
    if type(sq) == "table" then
      if sq.s == 1 then sq_on = true end
      if sq.r == 1 then sq_rel = true end
    end
  end
  if in_corridor and sq_on and not flag(d, "sq30_release") then pts = pts + S.tf_squeeze_on end
  if in_corridor and sq_rel then pts = pts + S.tf_squeeze_release end
  return pts
end

-- A side-marked trigger name split into its base and its direction word
-- ("EMA_CROSS_1H_13_48_BULL" -> "EMA_CROSS_1H_13_48", "BULL"; false, false
-- when it has no such suffix).  Memoised per name (a feed has a few dozen;
-- the memo is capped and depends on nothing but the name).
local trigger_bases, trigger_dirs, trigger_n = {}, {}, 0
local function split_trigger(name)
  local base = trigger_bases[name]
  if base == nil then
    local dir
    base, dir = name:match("^(.-)_([A-Z]+)$")
    base, dir = base or false, dir or false
    if trigger_n < 4096 then
      trigger_bases[name], trigger_dirs[name], trigger_n = base, dir, trigger_n + 1
    end
    return base, dir
  end
  return base, trigger_dirs[name]
end

function R.trigger_score(d, side)
  local S = R.config.score
  local pts = 0
  local list = d.triggers
  if list ~= nil and type(list) == "table" and #list > 0 then
    local T = S.triggers
    for _, name in ipairs(list) do
      if type(name) == "string" then
        if name == "SQUEEZE_RELEASE_30M" then pts = pts + T.SQUEEZE_RELEASE_30M
        elseif name == "ST_FLIP_1H" then pts = pts + T.ST_FLIP_1H
        elseif name == "ST_FLIP_30M" then pts = pts + T.ST_FLIP_30M
        else
          local base, dir = split_trigger(name)
          local p = base and T[base]
          if p then
            local matched = (side == "LONG" and (dir == "BULL" or dir == "LONG"))
                         or (side == "SHORT" and (dir == "BEAR" or dir == "SHORT"))
            pts = pts + (matched and p or -p)
          end
        end
      end
    end
  else
    -- the weights of the flags set on the receipt: a receipt sets a few of
    -- them, so the walk is over its flags (rawget: a flag that has no
    -- weight is not an unknown setting), added in name order
    local f = d.flags
    if type(f) == "table" then
      local weights, n = S.flag_triggers, 0
      for name, v in pairs(f) do
        if v == true and rawget(weights, name) then
          local j = n -- insertion into the sorted names so far
          while j > 0 and flags_set[j] > name do flags_set[j + 1] = flags_set[j]; j = j - 1 end
          flags_set[j + 1] = name
          n = n + 1
        end
      end
      for i = 1, n do
        pts = pts + weights[flags_set[i]]
        flags_set[i] = nil
      end
    end
  end
  return clamp(pts, S.trigger_min, S.trigger_max)
end

local function completeness(d, costs)
  local c = 100
  for i = 1, #COMPLETENESS_FIELDS do
    local field = COMPLETENESS_FIELDS[i]
    if d[field] == nil then c = c - costs[field] end
  end
  return c
end

-- The terms of the fallback score, in the order they are added (the order
-- matters for the rounding of the sum, which must match the original to
-- 0.01): calls add(label, arg, points) for each, the term's name being
-- label .. arg (arg nil: label alone; names are built only for explain).
-- Returns the base (also handed to start(base) first, when given).
local function score_terms(d, add, start)
  local S = R.config.score
  local base = truthy(d.rank) and d.rank or S.base
  if start then start(base) end
  local c = completeness(d, S.completeness)
  if c < S.completeness_low.below then add("completeness ", c, S.completeness_low.penalty)
  elseif c < S.completeness_mid.below then add("completeness ", c, S.completeness_mid.penalty) end
  local side = R.side(d)
  local corridor = R.corridor_side(d) ~= nil
  add("tf_tech alignment", nil, R.tf_alignment(d, side, corridor))
  add("triggers", nil, R.trigger_score(d, side))
  local ms = d.move_status
  if ms and ms.status == "INVALIDATED" then add("move invalidated", nil, S.invalidated)
  elseif ms and ms.status == "COMPLETED" then add("move completed", nil, S.completed) end
  local f = d.flags
  if type(f) ~= "table" then f = NO_FLAGS end
  if corridor then
    add("corridor", nil, S.corridor)
    if R.is_momentum(d) then add("corridor + momentum", nil, S.corridor_momentum) end
    if f.sq30_release == true then add("sq30_release in corridor", nil, S.sq30_release)
    elseif f.sq30_on == true then add("sq30_on in corridor", nil, S.sq30_on) end
  end
  local rr = num(d.rr)
  if rr then
    local steps, i = S.rr, 1
    while steps[i] ~= nil do
      local step = steps[i]
      if rr >= step[1] then add("rr >= ", step[1], step[2]); break end
      i = i + 1
    end
  end
  local phase = num(d.phase_pct)
  if phase then
    local low = false
    local steps, i = S.phase_low, 1
    while steps[i] ~= nil do
      local step = steps[i]
      if phase < step[1] then add("phase < ", step[1], step[2]); low = true; break end
      i = i + 1
    end
    if not low and phase > S.phase_high[1] then add("phase > ", S.phase_high[1], S.phase_high[2]) end
  end
  local comp = R.completion_for_size(d)
  if comp < S.completion_low[1] then add("completion < ", S.completion_low[1], S.completion_low[2])
  elseif comp > S.completion_high[1] then add("completion > ", S.completion_high[1], S.completion_high[2]) end
  local htf, ltf = d.htf_score, d.ltf_score -- abs(num(v) or 0), inline
  if htf == nil or type(htf) ~= "number" or htf ~= htf then htf = 0 elseif htf < 0 then htf = -htf end
  if ltf == nil or type(ltf) ~= "number" or ltf ~= ltf then ltf = 0 elseif ltf < 0 then ltf = -ltf end
  add("|htf|, |ltf| magnitude", nil, min(S.htf_cap, S.htf_factor * htf) + min(S.ltf_cap, S.ltf_factor * ltf))
  if f.phase_zone_change == true then add("phase_zone_change", nil, S.phase_zone_change) end
  return base
end

-- score_parts(d) -> base, { {name, points}, ... }: the terms of the
-- fallback score in the order they are added (for explain).
function R.score_parts(d)
  local parts = {}
  local base = score_terms(d, function(label, arg, v)
    if v ~= 0 then parts[#parts + 1] = { arg ~= nil and label .. arg or label, v } end
  end)
  return base, parts
end

local builtin_score_parts = R.score_parts

-- The running sum of dynamic_score's fast path: module-level functions, so
-- a row costs no tables, closures or term names (rules run one row at a
-- time).  The additions are those of the general path, in its order.
local score_sum = 0
local function sum_start(base) score_sum = base end
local function sum_term(_, _, v) if v ~= 0 then score_sum = score_sum + v end end

function R.dynamic_score(d)
  local s
  if R.score_parts == builtin_score_parts then
    score_terms(d, sum_term, sum_start)
    s = score_sum
  else -- an extension replaced score_parts: sum its parts
    local parts
    s, parts = R.score_parts(d)
    for _, part in ipairs(parts) do s = s + part[2] end
  end
  return round2(max(0, s))
end

-- Sets score and rank_position when the receipt has none (replay fallback).
function R.apply_score(d)
  if d.score ~= nil or d.rank ~= nil or d.rank_position ~= nil then return end
  local S = R.config.score
  local score = R.dynamic_score(d)
  d.score = score
  if score >= S.rank_threshold then
    d.rank_position = clamp(js_round(S.rank_from - score), S.rank_min, S.rank_max)
  end
end

---------------------------------------------------------------------------
-- §3.4 classification

local function has_reason(ms, r)
  local reasons, i = ms.reasons, 1
  while true do -- ipairs without the iterator calls
    local x = reasons[i]
    if x == nil then return false end
    if x == r then return true end
    i = i + 1
  end
end

-- Fills x (a table with x.paths = five { name } pairs) with the conditions
-- classify() tests (see R.classify_inputs), in two parts: what a move in
-- progress decides on (ms, completion, phase), then the rest.
local function fill_move_inputs(d, x)
  x.ms = d.move_status or R.move_status(d)
  local completion, phase = d.completion, d.phase_pct -- num(v) or 0, inline
  if completion == nil or type(completion) ~= "number" or completion ~= completion then completion = 0 end
  if phase == nil or type(phase) ~= "number" or phase ~= phase then phase = 0 end
  x.completion, x.phase = completion, phase
  return x
end

local function fill_entry_inputs(d, x)
  local C = R.config.classify
  local score = d.score
  if score == nil then score = d.rank end
  if score ~= nil and (type(score) ~= "number" or score ~= score) then score = nil end
  local position = d.position
  if position == nil then position = d.rank_position end
  position = num(position) or 0
  local htf, ltf = d.htf_score, d.ltf_score -- abs(num(v) or 0), inline
  if htf == nil or type(htf) ~= "number" or htf ~= htf then htf = 0 elseif htf < 0 then htf = -htf end
  if ltf == nil or type(ltf) ~= "number" or ltf ~= ltf then ltf = 0 elseif ltf < 0 then ltf = -ltf end
  local f = d.flags
  if type(f) ~= "table" then f = NO_FLAGS end
  local corridor = R.corridor_side(d)
  local elite, thesis, sq30_release = f.momentum_elite == true, f.thesis_match == true, f.sq30_release == true
  local cross_or_dip = f.ema_cross_1h_13_48 == true or f.buyable_dip_1h_13_48 == true
  x.score, x.position = score, position
  x.corridor, x.momentum, x.late = corridor, R.is_momentum(d), R.is_late(d)
  x.elite, x.thesis, x.flip_watch, x.sq30_release = elite, thesis, f.flip_watch == true, sq30_release
  x.cross_or_dip, x.htf, x.ltf = cross_or_dip, htf, ltf
  -- score >= threshold, for each threshold (no score: never)
  local has = score ~= nil
  local in_corridor = corridor ~= nil
  -- the momentum enter paths, in the order the original tests them
  -- (their conditions in words: R.path_conditions(), for explain)
  local paths = x.paths
  paths[1][2] = ((has and score >= C.p1_score) or (position >= 1 and position <= C.p1_position_max)) and in_corridor
  paths[2][2] = (thesis or elite) and (has and score >= C.p2_score)
  paths[3][2] = htf >= C.p3_htf and ltf >= C.p3_ltf and (has and score >= C.p3_score)
  paths[4][2] = in_corridor and sq30_release and (has and score >= C.p4_score)
  paths[5][2] = in_corridor and cross_or_dip and (has and score >= C.p5_score)
  x.flip_enter = in_corridor and ((has and score >= C.flip_enter_score)
    or ((thesis or elite) and (has and score >= C.flip_elite_score)))
  x.setup_release = in_corridor and sq30_release and (has and score >= C.setup_release_score)
  local st, ticker = d.state, d.ticker
  x.listable = type(st) == "string" and st ~= "" and num(d.price) ~= nil
    and type(ticker) == "string" and ticker ~= ""
  return x
end

-- The conditions classify() tests, computed once: explain() shows them.
function R.classify_inputs(d)
  local x = fill_move_inputs(d, { paths = { { "P1" }, { "P2" }, { "P3" }, { "P4" }, { "P5" } } })
  return fill_entry_inputs(d, x)
end

local builtin_classify_inputs = R.classify_inputs
-- classify's own inputs when classify_inputs is the built-in one: one table
-- for the whole run, refilled for each row (rules run one row at a time,
-- and classify keeps nothing from it), so a row builds no tables; and the
-- part after the move inputs is filled only when no move in progress
-- decided.
local scratch_inputs = { paths = { { "P1" }, { "P2" }, { "P3" }, { "P4" }, { "P5" } } }

-- The rule names classify returns, built once.
local MOVE_RULE = { INVALIDATED = "move INVALIDATED", COMPLETED = "move COMPLETED" }
local PATH_RULE = { P1 = "momentum P1", P2 = "momentum P2", P3 = "momentum P3", P4 = "momentum P4", P5 = "momentum P5" }

-- classify(d) -> stage (or nil), rule: the decision order of spec §3.4;
-- `rule` names the step that decided (e.g. "momentum P2", "move: exit").
function R.classify(d)
  local C = R.config.classify
  local x, fill_rest
  if R.classify_inputs == builtin_classify_inputs then
    x, fill_rest = fill_move_inputs(d, scratch_inputs), fill_entry_inputs
  else x = R.classify_inputs(d) end -- an extension replaced classify_inputs
  local ms = x.ms
  local status, severity = ms.status, ms.severity
  -- 1-2: a move in progress
  if status == "INVALIDATED" or status == "COMPLETED" then return "archive", MOVE_RULE[status] end
  if status == "ACTIVE" then
    if severity == "CRITICAL" then return "exit", "move: exit (critical)" end
    if has_reason(ms, "left_entry_corridor") or has_reason(ms, "large_adverse_move")
       or has_reason(ms, "sl_breached") then
      return "exit", "move: exit (left corridor)"
    end
    if x.completion >= C.trim_completion or (x.phase >= C.trim_phase_warning and severity == "WARNING")
       or has_reason(ms, "adverse_move_warning") then return "trim", "move: trim" end
    if severity == "WARNING" then return "hold", "move: hold (warning, defend)" end
    local entry_ts = d.entry_ts
    if entry_ts == nil then entry_ts = d.kanban_cycle_enter_now_ts end
    entry_ts = num(entry_ts)
    if entry_ts then
      if entry_ts < 1e12 then entry_ts = entry_ts * 1000 end
      local age = (num(d.ts) or 0) - entry_ts
      if age >= 0 and age < C.just_entered_ms then return "just_entered", "move: entry < 15 min" end
    end
    return "hold", "move: hold"
  end
  if fill_rest then fill_rest(d, x) end
  -- 3: flip watch (live-only input)
  if x.flip_watch then
    if x.flip_enter then return "enter_now", "flip_watch upgrade" end
    return "flip_watch", "flip_watch"
  end
  -- 5: momentum paths
  if x.momentum then
    local paths = x.paths
    for i = 1, #paths do
      local path = paths[i]
      if path[2] then return "enter_now", PATH_RULE[path[1]] or ("momentum " .. path[1]) end
    end
  end
  if not x.momentum then
    if x.late then return "archive", "setup late cycle" end                         -- 6
    if x.setup_release then return "enter_now", "setup squeeze release" end        -- 7
    if x.corridor then return "setup_watch", "setup in corridor" end               -- 8
  end
  if x.listable and not x.late then return "watch", "catch-all watch" end          -- 9
  return nil, "not on the board (late, no path)"                                   -- 10
end

-- The enter paths' conditions in words, with the configured thresholds.
function R.path_conditions()
  local C = R.config.classify
  return {
    P1 = "(score >= " .. C.p1_score .. " or 1 <= position <= " .. C.p1_position_max .. ") and corridor",
    P2 = "(thesis_match or momentum_elite) and score >= " .. C.p2_score,
    P3 = "|htf| >= " .. C.p3_htf .. " and |ltf| >= " .. C.p3_ltf .. " and score >= " .. C.p3_score,
    P4 = "corridor and sq30_release and score >= " .. C.p4_score,
    P5 = "corridor and (ema_cross_1h or buyable_dip_1h) and score >= " .. C.p5_score,
  }
end

-- explain(d) -> the inputs, the score fallback's parts and every enter
-- path with its condition, for `retape explain` and divergence reports.
function R.explain(d)
  local x = R.classify_inputs(d)
  local stage, rule = R.classify(d)
  local base, parts = R.score_parts(d)
  return {
    inputs = {
      state = d.state, price = d.price, htf_score = d.htf_score, ltf_score = d.ltf_score,
      completion = d.completion, phase_pct = d.phase_pct, phase_zone = d.phase_zone,
      score = x.score, rank_position = d.rank_position, corridor = x.corridor or "none",
      momentum = x.momentum, late = x.late, momentum_elite = x.elite, thesis_match = x.thesis,
      flip_watch = x.flip_watch, sq30_release = x.sq30_release, trigger_ts = d.trigger_ts,
      entry_ts = d.entry_ts, entry_price = d.entry_price,
    },
    move = x.ms, score_base = base, score_parts = parts, stage = stage, rule = rule,
    paths = (function()
      local words, out = R.path_conditions(), {}
      for i, path in ipairs(x.paths) do out[i] = { path[1], words[path[1]], path[2] } end
      return out
    end)(),
  }
end

-- deriveKanbanMeta
function R.meta(d, stage)
  local ms = d.move_status
  if not ms then return nil end
  local C = R.config.classify
  if stage == "hold" and ms.severity == "WARNING" and (num(d.completion) or 0) < C.trim_completion
     and (num(d.phase_pct) or 0) < C.trim_phase_warning then
    return { bucket = "defend", emoji = "🛡", reason = "warning", reasons = ms.reasons }
  end
  if stage == "archive" then
    if ms.status == "INVALIDATED" then return { bucket = "invalidated", reason = ms.reasons[1] } end
    if ms.status == "COMPLETED" then return { bucket = "completed", reason = ms.reasons[1] } end
    if R.is_late(d) then
      local why = (num(d.completion) or 0) >= R.config.late.completion and "completion_high"
        or R.config.late.zones[d.phase_zone] and ("phase_" .. string.lower(d.phase_zone)) or "phase_high"
      return { bucket = "late_cycle", reason = why }
    end
    return { bucket = "archive" }
  end
  return nil
end

---------------------------------------------------------------------------
-- §4.1 row preparation and §3.7 lane transitions

-- The trigger time of a receipt that has none: the original substitutes the
-- row's own time (which then defeats the lifecycle gate, spec §3.7).
function R.missing_trigger_ts(p, row) -- luacheck: ignore p
  return row.ts
end

-- Stamps a freshly decoded payload with the row's time and normalised levels.
function R.prepare(p, row)
  p.ts, p.ingest_ts = row.ts, row.ts
  local trig = num(p.trigger_ts)
  if not trig then p.trigger_ts = R.missing_trigger_ts(p, row)
  elseif trig < 1e12 then p.trigger_ts = trig * 1000 end
  if p.sl == nil then
    local sl = p.sl_price
    if sl == nil then sl = p.stop_loss end
    p.sl = sl
  end
  if p.tp == nil then
    local tp = p.tp_max_price
    if tp == nil then tp = p.tp_target_price end
    if tp == nil then tp = p.tp_target end
    p.tp = tp
  end
end

local CYCLE = { "kanban_cycle_enter_now_ts", "kanban_cycle_trigger_ts", "kanban_cycle_side" }
R.CYCLE_FIELDS = CYCLE

-- Carries entry and cycle stamps over from the ticker's previous state `ex`
-- (or starts fresh when the row is older than it), then from its open trade.
function R.carry(p, ex, open_trade)
  local ex_ts = ex.ts
  if ex_ts == nil or p.ts < ex_ts then
    p.entry_ts, p.entry_price = nil, nil
    p.kanban_cycle_enter_now_ts, p.kanban_cycle_trigger_ts, p.kanban_cycle_side = nil, nil, nil -- CYCLE
  else
    if p.entry_ts == nil then p.entry_ts = ex.entry_ts end
    if p.entry_price == nil then p.entry_price = ex.entry_price end
    p.kanban_cycle_enter_now_ts, p.kanban_cycle_trigger_ts, p.kanban_cycle_side = -- CYCLE
      ex.kanban_cycle_enter_now_ts, ex.kanban_cycle_trigger_ts, ex.kanban_cycle_side
  end
  if open_trade and (p.entry_ts == nil or p.entry_price == nil) then
    p.entry_ts, p.entry_price = open_trade.entry_ts, open_trade.entryPrice
  end
end

-- The lifecycle gate of §3.7: a management lane needs a trigger and the
-- enter_now cycle of the same trigger and side.  Returns final, forced.
function R.lifecycle_gate(d, ex, final)
  if not pos(d.trigger_ts) then return "watch", "forced_watch_missing_trigger" end
  if not (pos(ex.kanban_cycle_enter_now_ts) and ex.kanban_cycle_trigger_ts == d.trigger_ts
          and ex.kanban_cycle_side == R.side(d)) then
    return "enter_now", "forced_enter_now_gate"
  end
  return final, nil
end

-- Entry stamps: set on the first enter_now of a run of enter_now rows, then
-- the first stamp sticks for good while the ticker is on the board (the
-- original's quirk: re-entries reuse a stale entry price).
function R.entry_stamps(d, ex, final, prev)
  if final == "enter_now" and prev ~= "enter_now" and pos(d.price) then
    d.entry_price, d.entry_ts = d.price, d.ts
  end
  if final ~= nil and truthy(ex.entry_price) then
    d.entry_price, d.entry_ts = ex.entry_price, ex.entry_ts
  end
end

-- Applies §3.7 to the classified stage; returns final stage and forcing
-- rule.  `open_trade` (the ticker's open trade or nil) is unused here and
-- available to rulesets that extend this one.
function R.transition(d, ex, stage, open_trade) -- luacheck: ignore
  local prev = ex.kanban_stage
  local management = R.management
  local final, forced = stage, nil
  if prev == "archive" and management[stage] then
    final, forced = "watch", "recycled_from_archive"
  end
  if management[final] then final, forced = R.lifecycle_gate(d, ex, final) end
  if forced then
    if type(d.flags) ~= "table" then d.flags = {} end
    d.flags[forced] = true
  end
  if final == "enter_now" then
    d.kanban_cycle_enter_now_ts = d.ts
    d.kanban_cycle_trigger_ts = pos(d.trigger_ts)
    d.kanban_cycle_side = R.side(d)
  elseif management[final] then -- the CYCLE fields, from ex or cleared
    d.kanban_cycle_enter_now_ts, d.kanban_cycle_trigger_ts, d.kanban_cycle_side =
      ex.kanban_cycle_enter_now_ts, ex.kanban_cycle_trigger_ts, ex.kanban_cycle_side
  else
    d.kanban_cycle_enter_now_ts, d.kanban_cycle_trigger_ts, d.kanban_cycle_side = nil, nil, nil
  end
  if prev ~= nil and final ~= nil and prev ~= final then
    d.prev_kanban_stage, d.prev_kanban_stage_ts = prev, d.ts
  end
  R.entry_stamps(d, ex, final, prev)
  d.kanban_stage = final
  d.kanban_meta = R.meta(d, final)
  return final, forced
end

-- The whole classification of one row (§4.1 minus the trade simulation).
-- `ex` is the ticker's previous state ({} when none), `open_trade` its open
-- trade or nil.  Returns the raw stage, the final stage, the forcing rule
-- (or nil) and the rule that decided the final stage.
function R.step(p, row, ex, open_trade)
  R.inputs(p, row, ex, open_trade)
  local stage, rule = R.classify(p)
  local final, forced = R.transition(p, ex, stage, open_trade)
  p.decided_by = forced or rule -- not stored; open_trade records it on the trade (enter_rule)
  return stage, final, forced, forced or rule
end

-- Everything classify reads: the stamped payload with carried stamps, move
-- status and score.
function R.inputs(p, row, ex, open_trade)
  R.prepare(p, row)
  R.carry(p, ex, open_trade)
  local ms = R.move_status(p)
  p.move_status = ms
  local flags = p.flags
  if type(flags) ~= "table" then flags = {}; p.flags = flags end
  local status = ms.status
  flags.move_invalidated = status == "INVALIDATED"
  flags.move_completed = status == "COMPLETED"
  R.apply_score(p)
end

-- step() with the explanation of its decision (retape explain): the inputs,
-- move status, score parts and enter paths as classify saw them, then what
-- step decided.
function R.explain_step(p, row, ex, open_trade)
  R.inputs(p, row, ex, open_trade)
  local why = R.explain(p)
  local stage, rule = R.classify(p)
  local final, forced = R.transition(p, ex, stage, open_trade)
  p.decided_by = forced or rule
  why.ts, why.final_stage, why.forced, why.prev_stage = p.ts, final, forced, ex.kanban_stage
  return why, stage, final, forced, forced or rule
end

---------------------------------------------------------------------------
-- §4.2 trade simulation.  `book` is the engine's trade book:
--   book.open(ticker) -> trade | nil          book.add(trade)
--   book.touch(trade)  (mark dirty)           book.next_id(ticker, entry_ts) -> id
--   book.iso(ms) -> ISO-8601 UTC              book.weekend(ms) -> bool (New York)

local function fixed2(x)
  -- JS toFixed rounds exact decimal ties away from zero; printf rounds them
  -- to even.  A double is an exact tie only if its full expansion ends in 5.
  if string.format("%.30f", x):match("^%-?%d+%.%d%d50*$") then
    return string.format("%.2f", x + (x < 0 and -0.001 or 0.001))
  end
  return string.format("%.2f", x)
end
R.helpers.fixed2 = fixed2

function R.confidence(d)
  local C = R.config.trade.confidence
  local rank = num(d.rank) or 0
  local rr = truthy(d.rr_now_likely) and num(d.rr_now_likely) or truthy(d.rr_entry_likely) and num(d.rr_entry_likely)
    or num(d.rr) or 0
  local c_rank = clamp((rank - C.rank_floor) / C.rank_span, 0, 1)
  local c_rr = clamp((rr - C.rr_floor) / C.rr_span, 0, 1)
  local htf, ltf = abs(num(d.htf_score) or 0), abs(num(d.ltf_score) or 0)
  local c_score = clamp(htf / C.htf_span * C.htf_weight + ltf / C.ltf_span * C.ltf_weight, 0, 1)
  local bonus = (flag(d, "momentum_elite") and C.elite_bonus or 0) + (flag(d, "thesis_match") and C.thesis_bonus or 0)
              + (flag(d, "sq30_release") and C.sq30_release_bonus or 0)
  return clamp(C.rank * c_rank + C.rr * c_rr + C.score * c_score + bonus, 0, 1)
end

local function dir_of(t) return t.direction == "SHORT" and -1 or 1 end

function R.close_trade(t, px, why, as_of, book)
  local remaining = t.shares * (1 - t.trimmedPct)
  local pnl = (px - t.entryPrice) * remaining * t.pointValue * dir_of(t)
  t.realizedPnl = t.realizedPnl + pnl
  t.status = t.realizedPnl >= 0 and "WIN" or "LOSS"
  t.exitReason, t.exitPrice = why, px
  t.pnl = t.realizedPnl
  t.pnlPct = t.pnl / t.notional * 100
  t.lastUpdate = book.iso(as_of)
  t.history[#t.history + 1] = { type = "EXIT", timestamp = book.iso(as_of), price = px, shares = remaining,
    value = px * remaining, reason = why, pnl_realized = pnl,
    note = string.format("Exit at $%s (%s)", fixed2(px), why) }
  book.cash = book.cash + px * remaining
  book.touch(t)
end

function R.trim_trade(t, target, px, why, as_of, book)
  local tgt = clamp(target, 0, R.config.trade.trim_cap)
  if not (tgt > t.trimmedPct + 1e-6) then return end
  local delta = tgt - t.trimmedPct
  local qty = t.shares * delta
  local pnl = (px - t.entryPrice) * qty * t.pointValue * dir_of(t)
  t.realizedPnl = t.realizedPnl + pnl
  t.trimmedPct = tgt
  t.status = "TP_HIT_TRIM"
  t.lastUpdate = book.iso(as_of)
  t.history[#t.history + 1] = { type = "TRIM", timestamp = book.iso(as_of), price = px, shares = qty,
    value = px * qty, trimPct = tgt, trimDeltaPct = delta, reason = why, pnl_realized = pnl,
    note = string.format("Trimmed %d%% at $%s (%s)", js_round(tgt * 100), fixed2(px), why) }
  book.touch(t)
end

function R.trim_target(d)
  local T = R.config.trade
  local comp, phase = num(d.completion) or 0, num(d.phase_pct) or 0
  local values = { completion = comp, phase = phase }
  for _, step in ipairs(T.trim_ladder) do
    if values[step[1]] >= step[2] then return step[3] end
  end
  return T.trim_default
end

function R.open_trade(d, direction, px, as_of, book)
  local T = R.config.trade
  -- the levels are checked as they are found (a receipt without an SL costs
  -- no search for the entry price or the TP)
  local sl = d.sl
  if sl == nil then sl = d.sl_price end
  if sl == nil then sl = d.stop_loss end
  if not (pos(px) and pos(sl)) then return nil end
  local entry_px = truthy(d.entry_price) and d.entry_price or truthy(d.entry_ref) and d.entry_ref
    or truthy(d.trigger_price) and d.trigger_price or px
  if not pos(entry_px) then return nil end
  local tp = d.tp
  if tp == nil then tp = d.tp_max_price end
  if tp == nil then tp = d.tp_target_price end
  if tp == nil then tp = d.tp_target end
  if tp == nil then tp = R.tp_max(d) end
  if not pos(tp) then return nil end
  local confidence = R.confidence(d)
  local notional = clamp(T.notional_min + T.notional_span * confidence, T.notional_min, T.notional_max)
  if book.cash < T.notional_min then return nil end
  notional = math.min(notional, book.cash)
  local pv = T.futures_point_value[d.ticker]
  local shares
  if pv then shares = 1
  else pv = 1; shares = notional / entry_px end
  local reason = d.move_status and d.move_status.reasons[1] or ("KANBAN_" .. string.upper(d.kanban_stage))
  local iso = book.iso(as_of)
  local t = {
    id = book.next_id(d.ticker, as_of), ticker = d.ticker, direction = direction,
    entryPrice = entry_px, entryTime = iso, entry_ts = as_of, triggerTimestamp = d.trigger_ts,
    sl = sl, tp = tp, rr = truthy(d.rr) and d.rr or 0, rank = truthy(d.rank) and d.rank or 0,
    state = d.state, flags = d.flags, scriptVersion = d.script_version or "unknown",
    status = "OPEN", trimmedPct = 0,
    history = { { type = "ENTRY", timestamp = iso, price = entry_px, shares = shares, value = notional,
                  reason = reason, note = string.format("Entry from ENTER_NOW at $%s", fixed2(entry_px)) } },
    notional = notional, confidence = confidence, shares = shares, pointValue = pv,
    realizedPnl = 0, currentPrice = px, lastUpdate = iso, source = "KANBAN_ENTER_NOW",
    enter_rule = d.decided_by, -- the rule that put the ticker in enter_now (retape's; the original had none)
  }
  book.cash = book.cash - entry_px * shares
  book.add(t)
  return t
end

function R.mark_and_protect(t, d, px, as_of, weekend, book)
  local P = R.config.trade.protect
  local dir = dir_of(t)
  t.currentPrice = px
  t.pnl = t.realizedPnl + (px - t.entryPrice) * t.shares * t.pointValue * (1 - t.trimmedPct) * dir
  t.pnlPct = t.pnl / t.notional * 100
  t.lastUpdate = book.iso(as_of)
  book.touch(t)
  if weekend then return end
  -- the protect-gains rule looks at the price move since entry, not at P&L
  local move_pct = (px - t.entryPrice) / t.entryPrice * 100 * dir
  local comp = num(d.completion) or 0
  if not (move_pct >= P.pnl_pct or t.trimmedPct > 0 or comp >= P.completion) then return end
  local candidate
  if move_pct >= P.pnl_pct or t.trimmedPct > 0 then candidate = t.entryPrice end
  local cloud = type(d.daily_ema_cloud) == "table" and d.daily_ema_cloud or nil
  if dir > 0 then
    local lower = cloud and num(cloud.lower)
    if lower then candidate = candidate and math.max(candidate, lower) or lower end
  else
    local upper = cloud and num(cloud.upper)
    if upper then candidate = candidate and math.min(candidate, upper) or upper end
  end
  if not candidate then return end
  local new_sl = dir > 0 and math.min(candidate, px * P.long_factor) or math.max(candidate, px * P.short_factor)
  local old_sl = num(t.sl)
  local step = t.entryPrice * P.min_step
  local improves = old_sl == nil or (dir > 0 and new_sl > old_sl + step) or (dir < 0 and new_sl < old_sl - step)
  if not improves then return end
  t.sl = new_sl
  t.sl_protect_reason = "PROTECT_GAINS"
  t.sl_last_tighten_ts = book.iso(as_of)
  t.history[#t.history + 1] = { type = "SL_TIGHTEN", timestamp = book.iso(as_of), price = px, oldSl = old_sl,
    newSl = new_sl, pnlPct = move_pct,
    note = string.format("Tightened SL to protect gains (%s%% unrealized)", fixed2(move_pct)) }
end

-- "KANBAN_" .. the stage in capitals (the reason of a row whose move
-- status has none), built once per stage name (a handful; the memo is
-- capped).
local kanban_reasons, kanban_reasons_n = {}, 0
local function kanban_reason(stage)
  local r = kanban_reasons[stage] -- (reading a nil key is fine: nil)
  if r == nil then
    r = "KANBAN_" .. string.upper(tostring(stage))
    if type(stage) == "string" and kanban_reasons_n < 256 then
      kanban_reasons[stage], kanban_reasons_n = r, kanban_reasons_n + 1
    end
  end
  return r
end

-- processTradeSimulation for one classified row; returns the trade it
-- opened, if any.  The row's time is the only clock.
-- What every executor step needs: the row's direction (nil: no trading),
-- the ticker's open trade, price, stage, reason and the weekend guard.
function R.sim_context(d, as_of, book)
  local direction = R.direction(d)
  if not direction then return nil end
  local stage, ms = d.kanban_stage, d.move_status
  return direction, book.open(d.ticker), num(d.price), stage,
    ms and ms.reasons[1] or kanban_reason(stage),
    book.weekend(as_of)
end

-- The executor, built from hooks: the points where a ruleset extending this
-- one changes it (nil: the original's executor, which has none).  The hooks
-- (H) and what each is asked:
--   H.begin(d) -> e                       per row with a direction: the executor's memory
--   H.archive(e, d, open, px, reason, as_of, book) -> closed?
--                                         an archived row (not on a weekend, a price, a trade open)
--   H.may(e, action, as_of) -> ok?        "exit" (also a flip's close), "trim", "enter" (the stage)
--   H.may_open(e, d, direction) -> ok?    a new trade, once nothing is open
--   H.did(e, action, d, as_of, direction) "exit", "trim" (only when it trimmed), "flip", "enter"
function R.simulator(H)
  return function(d, as_of, book)
    local direction, open, px, stage, reason, weekend = R.sim_context(d, as_of, book)
    if not direction then return nil end
    local e = H and H.begin(d)
    local created
    if H and stage == "archive" and not weekend and open and px
       and H.archive(e, d, open, px, reason, as_of, book) then
      open = nil
    elseif stage == "exit" and not weekend and open and px and (not H or H.may(e, "exit", as_of)) then
      R.close_trade(open, px, reason, as_of, book)
      open = nil
      if H then H.did(e, "exit", d, as_of) end
    elseif stage == "trim" and not weekend and open and px and (not H or H.may(e, "trim", as_of)) then
      local before = open.trimmedPct
      R.trim_trade(open, R.trim_target(d), px, reason, as_of, book)
      if H and open.trimmedPct ~= before then H.did(e, "trim", d, as_of) end
    elseif stage == "enter_now" and not weekend and (not H or H.may(e, "enter", as_of)) then
      if open and open.direction ~= direction and px and (not H or H.may(e, "exit", as_of)) then
        R.close_trade(open, px, "FLIP_" .. reason, as_of, book)
        open = nil
        if H then H.did(e, "flip", d, as_of) end
      end
      if not open and px and (not H or H.may_open(e, d, direction)) then
        created = R.open_trade(d, direction, px, as_of, book)
        if created and H then H.did(e, "enter", d, as_of, direction) end
      end
    end
    if open and px then R.mark_and_protect(open, d, px, as_of, weekend, book) end
    return created
  end
end

R.simulate = R.simulator(nil)

return R
