-- retape.regress.golden — a case's expected files (lanes.txt, trades.txt:
-- one line per receipt and per trade) and the first divergence between
-- expected and actual.  Lent by retape.regress.
local rtime = require "retape.time"
local json = require "retape.json"

local M = {}


local function dash(v) return v == nil and "-" or tostring(v) end

function M.lane_line(r)
  local t = rtime.to_ny(r.ts)
  return string.format("%04d-%02d-%02d %02d:%02d:%02d  %-6s  %-12s  %-12s  %s", t.year, t.month, t.day, t.hour, t.min, t.sec,
    r.ticker, dash(r.stage), dash(r.finalStage), dash(r.forced))
end

local function num(x) return x == nil and "-" or json.number(x) end

local function et(ms) return ms and rtime.format_ny(math.tointeger(ms), true) or "-" end

function M.trade_line(t)
  local events, exit_ts = {}, nil
  for i, e in ipairs(t.history or {}) do
    events[i] = e.type
    if e.type == "EXIT" then exit_ts = rtime.parse_iso(e.timestamp) end
  end
  return string.format("%s %s entry=%s @%s status=%s trimmed=%s exit=%s @%s (%s) realized=%s pnl=%s sl=%s events=%s",
    t.ticker, t.direction, et(t.entry_ts), num(t.entryPrice), t.status, num(t.trimmedPct), et(exit_ts), num(t.exitPrice),
    dash(t.exitReason), num(t.realizedPnl), num(t.pnl), num(t.sl), table.concat(events, ","))
end

function M.render(records, trades)
  local lanes = {}
  for i, r in ipairs(records) do lanes[i] = M.lane_line(r) end
  local sorted = table.move(trades, 1, #trades, 1, {})
  table.sort(sorted, function(a, b)
    if a.entry_ts ~= b.entry_ts then return a.entry_ts < b.entry_ts end
    return a.id < b.id
  end)
  local tl = {}
  for i, t in ipairs(sorted) do tl[i] = M.trade_line(t) end
  local header = "# time (ET)           ticker  stage         final         forced\n"
  return header .. table.concat(lanes, "\n") .. (#lanes > 0 and "\n" or ""),
         "# one trade per line, by entry time\n" .. table.concat(tl, "\n") .. (#tl > 0 and "\n" or ""),
         sorted
end

---------------------------------------------------------------------------
-- comparing

-- lines(text) -> the lines of an expected file (no blanks, no # comments).
local function lines(text)
  local out = {}
  for l in (text or ""):gmatch("[^\n]*") do if l ~= "" and not l:match("^#") then out[#out + 1] = l end end
  return out
end
M.lines = lines

local LANE_FIELDS = { "time", "ticker", "stage", "final", "forced" }
local function split_lane(l)
  local date, time, ticker, stage, final, forced = l:match("^(%S+) (%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
  return { time = (date or "") .. " " .. (time or ""), ticker = ticker, stage = stage, final = final, forced = forced }
end

local TRADE_FIELDS = { "entry", "status", "trimmed", "exit", "realized", "pnl", "sl", "events" }
local function split_trade(l)
  local t = { key = l:match("^(%S+ %S+ entry=%S+ %S+ %S+ @%S+)") or l }
  t.entry = l:match("entry=(.- @%S+)")
  for _, f in ipairs { "status", "trimmed", "realized", "pnl", "sl", "events" } do t[f] = l:match(" " .. f .. "=(%S+)") end
  t.exit = l:match(" exit=(.- @%S+ %b())")
  return t
end

-- Compares actual with expected; returns nil when equal, else a report
-- table {first = text, counts = {kind = n}, all = {text...}}.
function M.compare(exp_lanes, act_lanes, exp_trades, act_trades, records)
  local report = { counts = {}, all = {} }
  local function count(kind) report.counts[kind] = (report.counts[kind] or 0) + 1 end
  local el, al = lines(exp_lanes), lines(act_lanes)
  for i = 1, math.max(#el, #al) do
    local e, a = el[i], al[i]
    if e ~= a then
      local r = records[i]
      local text
      if e and a then
        local es, as = split_lane(e), split_lane(a)
        local diffs = {}
        for _, f in ipairs(LANE_FIELDS) do
          if es[f] ~= as[f] then diffs[#diffs + 1] = f; count("lanes: " .. f) end
        end
        text = string.format("lanes row %d: %s ET %s%s: %s", i, as.time, as.ticker,
          r and (" (receipt " .. r.receipt_id .. ")") or "",
          table.concat((function()
            local parts = {}
            for _, f in ipairs(diffs) do parts[#parts + 1] = string.format("%s expected %s, got %s", f, es[f], as[f]) end
            return parts
          end)(), "; "))
        if r then text = text .. string.format("\n    decided by: %s", r.rule or "?") end
      else
        count(e and "lanes: missing row" or "lanes: extra row")
        text = string.format("lanes row %d: %s", i, e and ("missing: " .. e) or ("extra: " .. a))
      end
      report.all[#report.all + 1] = text
      report.first = report.first or text
    end
  end
  local et_, at_ = lines(exp_trades), lines(act_trades)
  local exp_by, act_by, order = {}, {}, {}
  for _, l in ipairs(et_) do local t = split_trade(l); exp_by[t.key] = t; order[#order + 1] = t.key end
  for _, l in ipairs(at_) do
    local t = split_trade(l)
    act_by[t.key] = t
    if not exp_by[t.key] then order[#order + 1] = t.key end
  end
  local first_trade
  for _, key in ipairs(order) do
    local e, a = exp_by[key], act_by[key]
    local text
    if not a then count("trades: missing"); text = "trade missing: " .. key
    elseif not e then count("trades: extra"); text = "trade extra: " .. key
    else
      local parts = {}
      for _, f in ipairs(TRADE_FIELDS) do
        if e[f] ~= a[f] then
          count("trades: " .. f)
          parts[#parts + 1] = string.format("%s expected %s, got %s", f, tostring(e[f]), tostring(a[f]))
        end
      end
      if #parts > 0 then text = "trade " .. key .. ": " .. table.concat(parts, "; ") end
    end
    if text then
      report.all[#report.all + 1] = text
      first_trade = first_trade or text
    end
  end
  report.first_trade = first_trade
  if #report.all == 0 then return nil end
  return report
end

return M
