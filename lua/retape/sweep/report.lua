-- retape.sweep.report — `retape sweep --report FILE.html`: one self-contained
-- page (no script, no network) with every variant's realized equity curve
-- on one SVG chart (retape.stats, as the report's summary) drawn on trading
-- time (the buckets the sweep read: no straight lines across nights and
-- weekends), a heatmap of the objective when the grid has two settings,
-- and the ranked table.
local metrics = require "retape.metrics"
local stats = require "retape.stats"
local BUCKET_MS = require("retape.time").BUCKET_MS

local M = {}

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- A distinct colour per variant (hue steps by the golden angle).
local function colour(i) return string.format("hsl(%d,65%%,42%%)", math.floor((i - 1) * 137.508) % 360) end

-- curves(variants) -> { [index] = {{ts, equity}, ...} } from each variant's
-- trades (v.trades) with its capital model (v.capital).
function M.curves(variants)
  local out = {}
  for _, v in ipairs(variants) do out[v.index] = stats.compute(v.trades or {}, { capital = v.capital }).equity end
  return out
end

-- x of a time on trading time: its bucket's index among the sorted bucket
-- starts (plus the fraction of the bucket), so a night takes no room.
local function trading_x(buckets)
  local n = #buckets
  return function(ms)
    if n == 0 or ms <= buckets[1] then return 0 end
    local lo, hi = 1, n
    while lo < hi do
      local mid = (lo + hi + 1) // 2
      if buckets[mid] <= ms then lo = mid else hi = mid - 1 end
    end
    return (lo - 1) + math.min(0.999, (ms - buckets[lo]) / BUCKET_MS)
  end
end

local CSS = [[
:root{--ink:#1d2330;--mute:#6b7385;--line:#e3e6ec}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;color:var(--ink)}
header{background:#161b26;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:18px;font-weight:600}
main{padding:18px 24px;max-width:1880px}
.panel{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin-bottom:14px;overflow-x:auto}
.panel h2{font-size:14px;margin:0 0 8px;font-weight:600}
svg{max-width:100%;height:auto}
svg text{font-size:11px;fill:var(--mute)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{color:var(--mute);font-size:12px;font-weight:600}
td:last-child,th:last-child{text-align:left;white-space:normal}
tr.base td{background:#fff8db}
.heat td{min-width:70px;text-align:center;color:#111}
.heat th{text-align:center}
.mute{color:var(--mute)}
]]

-- The heatmap of two settings: rows the first axis' values, columns the
-- second's, each cell the objective of the variant with those values.
local function heatmap(axes, variants, objective)
  local col = objective
  local ax, ay = axes[1], axes[2]
  local cell, lo, hi = {}, math.huge, -math.huge
  for _, v in ipairs(variants) do
    local a, b = v.overrides and v.overrides[ax.key], v.overrides and v.overrides[ay.key]
    local x = v.metrics[col]
    if a ~= nil and b ~= nil and x ~= nil then
      cell[tostring(a) .. "\0" .. tostring(b)] = { value = x, variant = v.index }
      lo, hi = math.min(lo, x), math.max(hi, x)
    end
  end
  if lo == math.huge then return "" end
  local asc = require("retape.sweep").ASCENDING[col]
  local function shade(x)
    local t = hi > lo and (x - lo) / (hi - lo) or 0.5
    if asc then t = 1 - t end
    return string.format("hsl(%d,70%%,%d%%)", math.floor(t * 120 + 0.5), 80 - math.floor(t * 25 + 0.5))
  end
  local out = { string.format('<table class="heat" id="heatmap" data-x="%s" data-y="%s" data-objective="%s"><thead><tr><th>%s \\ %s</th>',
    esc(ax.key), esc(ay.key), esc(col), esc(ax.key), esc(ay.key)) }
  for _, b in ipairs(ay.values) do out[#out + 1] = "<th>" .. esc(b) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, a in ipairs(ax.values) do
    out[#out + 1] = "<tr><th>" .. esc(a) .. "</th>"
    for _, b in ipairs(ay.values) do
      local c = cell[tostring(a) .. "\0" .. tostring(b)]
      if c then
        out[#out + 1] = string.format('<td style="background:%s" data-variant="%d" data-value="%s" title="variant %d">%s</td>',
          shade(c.value), c.variant, tostring(c.value), c.variant, esc(string.format("%.2f", c.value)))
      else
        out[#out + 1] = '<td class="mute">-</td>'
      end
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out)
end

-- html(title, variants, rows, columns [, opts]) -> text.  variants: the
-- sweep's (with .trades); rows: the table's rows (already ranked,
-- formatted strings per column, .variant, .baseline); columns: their
-- headers.  opts.buckets: the bucket starts the sweep read (the x axis);
-- opts.axes: two {key, values} for the heatmap; opts.objective: its figure.
function M.html(title, variants, rows, columns, opts)
  opts = opts or {}
  local curves = M.curves(variants)
  local buckets = {}
  for i, b in ipairs(opts.buckets or {}) do buckets[i] = type(b) == "table" and b.bucket or b end
  table.sort(buckets)
  local tx = trading_x(buckets)
  local t0, t1, lo, hi = math.huge, -math.huge, 0, 0
  for _, c in pairs(curves) do
    for _, p in ipairs(c) do
      local x = tx(p[1])
      t0, t1 = math.min(t0, x), math.max(t1, x)
      lo, hi = math.min(lo, p[2]), math.max(hi, p[2])
    end
  end
  if t0 == math.huge then t0, t1 = 0, 1 end
  if t1 == t0 then t1 = t0 + 1 end
  if hi == lo then hi = lo + 1 end
  local W, H, padl, pad = 1000, 380, 70, 30
  local function x(v) return padl + (v - t0) / (t1 - t0) * (W - padl - pad) end
  local function y(eq) return H - pad - (eq - lo) / (hi - lo) * (H - 2 * pad) end
  local svg = { string.format('<svg id="equity" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">', W, H, W, H),
    string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>', padl, y(0), W - pad, y(0)) }
  for i = 0, 4 do
    local v = lo + (hi - lo) * i / 4
    svg[#svg + 1] = string.format('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e6ec"/><text x="%d" y="%.1f" text-anchor="end">%s</text>',
      padl, W - pad, y(v), y(v), padl - 6, y(v) + 4, esc(string.format("%.0f", v)))
  end
  -- a label at the first bucket of each day, none closer than 60 px to the previous
  local day, last = nil, -math.huge
  for i, b in ipairs(buckets) do
    local d = stats.ny_day(b)
    if d ~= day then
      day = d
      local px = x(i - 1)
      if i - 1 >= t0 and i - 1 <= t1 then
        svg[#svg + 1] = string.format('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eef0f4"/>', px, px, pad, H - pad)
        if px - last >= 60 then
          svg[#svg + 1] = string.format('<text x="%.1f" y="%d">%s</text>', px, H - 10, esc(d:sub(6)))
          last = px
        end
      end
    end
  end
  for _, v in ipairs(variants) do
    local pts = {}
    for i, p in ipairs(curves[v.index]) do
      local px, py = x(tx(p[1])), y(p[2])
      -- steps: the level holds until the next point
      if i > 1 then pts[#pts + 1] = string.format("%.1f,%s", px, pts[#pts]:match(",(.*)$")) end
      pts[#pts + 1] = string.format("%.1f,%.1f", px, py)
    end
    svg[#svg + 1] = string.format('<polyline class="variant" data-variant="%d" data-n="%d" fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>variant %d: %s</title></polyline>',
      v.index, #curves[v.index], colour(v.index), table.concat(pts, " "), v.index, esc(v.label))
  end
  svg[#svg + 1] = "</svg>"
  local head = {}
  for i, c in ipairs(columns) do head[i] = "<th>" .. esc(c) .. "</th>" end
  local body = {}
  for _, r in ipairs(rows) do
    local cells = { string.format('<td><span style="color:%s">&#9632;</span></td>', colour(r.variant)) }
    for _, c in ipairs(r.cells) do cells[#cells + 1] = "<td>" .. esc(c) .. "</td>" end
    body[#body + 1] = (r.baseline and '<tr class="base">' or "<tr>") .. table.concat(cells) .. "</tr>"
  end
  local heat = ""
  if opts.axes and #opts.axes == 2 then
    local col = require("retape.sweep").column(opts.objective or "total")
    heat = heatmap(opts.axes, variants, col)
    if heat ~= "" then
      heat = string.format('<div class="panel"><h2>%s by %s and %s</h2>%s</div>', esc(col), esc(opts.axes[1].key),
        esc(opts.axes[2].key), heat)
    end
  end
  return table.concat({
    "<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>' .. esc(title) .. "</title>",
    "<style>" .. CSS .. "</style>", "</head><body>", "<header><h1>" .. esc(title) .. "</h1></header><main>",
    '<div class="panel"><h2>Realized equity of every variant (trading time; net of each variant\'s costs)</h2>', table.concat(svg, "\n"), "</div>",
    heat,
    '<div class="panel"><h2>Variants, ranked (the baseline row highlighted)</h2>', '<table id="variants"><thead><tr><th></th>' .. table.concat(head) .. "</tr></thead><tbody>",
    table.concat(body, "\n"), "</tbody></table></div>", "</main></body></html>", "" }, "\n")
end

M.time = metrics.time
return M
