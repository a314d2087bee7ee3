-- test_rule_sums.lua — the parity ruleset adds configured weights in sorted
-- key order, so that its scores do not depend on the order `pairs` visits a
-- table (seeded per Lua state: another process, or another thread, visits
-- string keys in another order).  With float weights set by overrides (the
-- settings whose defaults are fractions), the order of the additions can
-- change the last bit; each score must equal the sum taken in sorted key
-- order, however the receipt's flags table is laid out.
local t = require "tap"
local rules = require "retape.rules"

local TFS = { "10", "1H", "30", "4H", "D", "W" } -- sorted
local FLAGS = { "buyable_dip_1h_13_48", "ema_cross_10m_13_48", "ema_cross_1h_13_48", "ema_cross_3m_13_48",
                "sq10_release", "sq30_release", "sq3_release", "st_flip_10m", "st_flip_3m" } -- sorted
local FLOAT_TF = { ["1H"] = true, ["4H"] = true }
local FLOAT_FLAG = { st_flip_10m = true, st_flip_3m = true }

local function sum_in(names, w)
  local s = 0
  for i = 1, #names do s = s + w[names[i]] end
  return s
end

-- whether some order of the same weights gives another sum than the sorted one
local function order_sensitive(names, w)
  local want = sum_in(names, w)
  for shift = 1, #names - 1 do
    local rotated, reversed = {}, {}
    for i = 1, #names do rotated[i] = names[(i + shift - 1) % #names + 1] end
    for i = 1, #names do reversed[i] = rotated[#names - i + 1] end
    if sum_in(rotated, w) ~= want or sum_in(reversed, w) ~= want then return true end
  end
  return false
end

local clamp = function(x, lo, hi) return x < lo and lo or (x > hi and hi or x) end
local sensitive_tf, sensitive_flags, bad_tf, bad_flags, layouts = 0, 0, 0, 0, 0
for seed = 1, 60 do
  local over, tfw, flw = {}, {}, {}
  for i, name in ipairs(TFS) do
    tfw[name] = FLOAT_TF[name] and ((seed * 37 + i * 11) % 97) / 10 + 0.01 or (seed + i) % 5
    over["score.tf_weights." .. name] = tfw[name]
  end
  for i, name in ipairs(FLAGS) do
    flw[name] = FLOAT_FLAG[name] and ((seed * 53 + i * 7) % 89) / 100 + 0.001 or (seed * i) % 4
    over["score.flag_triggers." .. name] = flw[name]
  end
  over["score.tf_min"], over["score.tf_max"] = -1000, 1000
  over["score.trigger_min"], over["score.trigger_max"] = -1000, 1000
  local R = rules.apply_overrides(rules.load("worker-2026-02-02"), over)
  local S = R.config.score
  if order_sensitive(TFS, tfw) then sensitive_tf = sensitive_tf + 1 end
  if order_sensitive(FLAGS, flw) then sensitive_flags = sensitive_flags + 1 end

  -- every timeframe stacked for LONG: tf_alignment adds all six weights
  local tf = {}
  for _, name in ipairs(TFS) do tf[name] = { ema = { stack = 10 } } end
  local want = clamp(2 * (sum_in(TFS, tfw) - 0), S.tf_min, S.tf_max)
  local got_tf = R.tf_alignment({ tf_tech = tf }, "LONG", false)
  if got_tf ~= want then bad_tf = bad_tf + 1; if bad_tf == 1 then print("# " .. string.format("seed %d: got %.17g want %.17g", seed, got_tf, want)) end end

  -- every weighted flag set, no triggers[]: the fallback adds all nine
  -- weights; the flags table laid out differently each time (unweighted
  -- flags around them change its size and so the order pairs visits it)
  local expect = clamp(sum_in(FLAGS, flw), S.trigger_min, S.trigger_max)
  for extra = 0, 24, 3 do
    local flags = {}
    for k = 1, extra do flags["unweighted_" .. k] = true end
    for i = #FLAGS, 1, -1 do flags[FLAGS[i]] = true end
    layouts = layouts + 1
    if R.trigger_score({ flags = flags }, "LONG") ~= expect then bad_flags = bad_flags + 1 end
  end
end
t.ok(sensitive_flags >= 10, string.format("the flag weight sets are order-sensitive (%d of 60)", sensitive_flags))
t.eq(bad_flags, 0, string.format("trigger_score adds the flag weights in name order (%d layouts of the flags)", layouts))
t.ok(sensitive_tf >= 10, string.format("the timeframe weight sets are order-sensitive (%d of 60)", sensitive_tf))
t.eq(bad_tf, 0, "tf_alignment adds the timeframe weights in name order")
-- an override of a weight named by digits sets that name, not a list index
local R = rules.apply_overrides(rules.load("worker-2026-02-02"), { ["score.tf_weights.30"] = 4, ["score.tf_weights.10"] = 3 })
local w = R.config.score.tf_weights
t.ok(w["30"] == 4 and w["10"] == 3 and rawget(w, 30) == nil and rawget(w, 10) == nil,
  "--set score.tf_weights.30=4 sets the timeframe '30' (no numeric key 30 beside it)")
t.done()
