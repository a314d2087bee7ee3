-- retape.sweep.report — `retape sweep --report FILE.html`: one self-contained
-- page (no script, no network) with every variant's realized equity curve
-- on one SVG chart (retape.stats, as the report's summary) and the
-- ranked table.
local metrics = require "retape.metrics"
local stats = require "retape.stats"

local M = {}

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- A distinct colour per variant (hue steps by the golden angle).
local function colour(i) return string.format("hsl(%d,65%%,42%%)", math.floor((i - 1) * 137.508) % 360) end

-- curves(variants) -> { [index] = {{ts, equity}, ...} } from each variant's trades (v.trades).
function M.curves(variants)
  local out = {}
  for _, v in ipairs(variants) do out[v.index] = stats.compute(v.trades or {}, { capital = v.capital }).equity end
  return out
end

-- html(title, variants, rows, columns) -> text.  variants: the sweep's
-- (with .trades); rows: the table's rows (already ranked, formatted
-- strings per column); columns: their headers.
function M.html(title, variants, rows, columns)
  local curves = M.curves(variants)
  local t0, t1, lo, hi = math.huge, -math.huge, 0, 0
  for _, c in pairs(curves) do
    for _, p in ipairs(c) do
      t0, t1 = math.min(t0, p[1]), math.max(t1, p[1])
      lo, hi = math.min(lo, p[2]), math.max(hi, p[2])
    end
  end
  if t0 == math.huge then t0, t1 = 0, 1 end
  if t1 == t0 then t1 = t0 + 1 end
  if hi == lo then hi = lo + 1 end
  local W, H, pad = 900, 360, 40
  local function x(ts) return pad + (ts - t0) / (t1 - t0) * (W - 2 * pad) end
  local function y(eq) return H - pad - (eq - lo) / (hi - lo) * (H - 2 * pad) end
  local svg = { string.format('<svg id="equity" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">', W, H, W, H),
    string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>', pad, y(0), W - pad, y(0)),
    string.format('<text x="4" y="%.1f" font-size="11">%s</text><text x="4" y="%.1f" font-size="11">%s</text>',
      y(hi) + 4, esc(string.format("%.0f", hi)), y(lo) + 4, esc(string.format("%.0f", lo))),
    string.format('<text x="%d" y="%d" font-size="11">%s</text><text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>',
      pad, H - 10, esc(metrics.time(t0)), W - pad, H - 10, esc(metrics.time(t1))) }
  for _, v in ipairs(variants) do
    local pts = {}
    for _, p in ipairs(curves[v.index]) do pts[#pts + 1] = string.format("%.1f,%.1f", x(p[1]), y(p[2])) end
    svg[#svg + 1] = string.format('<polyline class="variant" data-variant="%d" fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>variant %d: %s</title></polyline>',
      v.index, colour(v.index), table.concat(pts, " "), v.index, esc(v.label))
  end
  svg[#svg + 1] = "</svg>"
  local head = {}
  for i, c in ipairs(columns) do head[i] = "<th>" .. esc(c) .. "</th>" end
  local body = {}
  for _, r in ipairs(rows) do
    local cells = { string.format('<td><span style="color:%s">&#9632;</span></td>', colour(r.variant)) }
    for _, c in ipairs(r.cells) do cells[#cells + 1] = "<td>" .. esc(c) .. "</td>" end
    body[#body + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
  end
  return table.concat({
    "<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>' .. esc(title) .. "</title>",
    "<style>body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
      .. "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:last-child,th:last-child{text-align:left}</style>",
    "</head><body>", "<h1>" .. esc(title) .. "</h1>", "<h2>Realized equity of every variant</h2>", table.concat(svg, "\n"),
    "<h2>Variants, ranked</h2>", '<table id="variants"><thead><tr><th></th>' .. table.concat(head) .. "</tr></thead><tbody>",
    table.concat(body, "\n"), "</tbody></table>", "</body></html>", "" }, "\n")
end

return M
