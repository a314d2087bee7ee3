-- retape.report.script_kit — the first half of the report page's script:
-- the data model read from <script id="report-data">, formatting, the tabs,
-- the SVG charts (x: trading time, the bucket index) and the sortable,
-- filterable tables.  retape.report.template appends script_pages.
return [==[
"use strict";
const D = JSON.parse(document.getElementById("report-data").textContent);
const $ = (s, e) => (e || document).querySelector(s);
const esc = s => String(s == null ? "" : s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const money = v => v == null ? "" : (v < 0 ? "−" : "") + Math.abs(v).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
const cls = v => v > 0 ? "pos" : v < 0 ? "neg" : "";
const LANE_COLORS = ["#9aa5b8", "#e3b341", "#2f9e44", "#1c7ed6", "#5f3dc4", "#f08c00", "#e03131", "#495057"];
const ALT = "#8a55d8";
const BUCKET_MS = D.bucket_ms; // retape.time.BUCKET_MS, carried by the model
window.REPORT = D;

// ---- tabs -------------------------------------------------------------
const pages = [["summary", "Summary"], ["lanes", "Lanes"], ["trades", "Trades"], ["run", "Run"]];
if (D.vs && D.vs.length) pages.push(["compare", "Compare"]);
function show(id) {
  for (const [p] of pages) {
    $("#page-" + p).classList.toggle("on", p === id);
    $("#tab-" + p).classList.toggle("on", p === id);
  }
  if (id === "lanes") drawStrip();
  if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
}
$("nav").innerHTML = pages.map(([p, t]) => `<button id="tab-${p}" data-page="${p}">${t}</button>`).join("");
$("nav").addEventListener("click", e => { const p = e.target.dataset.page; if (p) show(p); });

// ---- charts -----------------------------------------------------------
// x of every time chart: trading time, the bucket index (nights and
// weekends take no room); a time between two buckets falls between them.
function xOf(ms) {
  const B = D.buckets, n = B.length;
  if (!n) return 0;
  if (ms <= B[0]) return 0;
  let lo = 0, hi = n - 1;
  while (lo < hi) { const m = (lo + hi + 1) >> 1; if (B[m] <= ms) lo = m; else hi = m - 1; }
  return lo + Math.min(0.999, (ms - B[lo]) / BUCKET_MS);
}
// Day labels along an x axis: the first bucket of each day, skipped when
// closer than `gap` px to the previous one (no overlapping labels).
function dayTicks(X, x0, x1, gap) {
  const out = []; let last = -Infinity, day = "";
  for (let i = 0; i < D.buckets.length; i++) {
    const d = D.labels[i].slice(0, 10);
    if (d === day) continue; day = d;
    if (i < x0 || i > x1) continue;
    const x = X(i);
    if (x - last >= gap) { out.push([x, d.slice(5)]); last = x; }
  }
  return out;
}
const pct = v => v == null ? "—" : (v < 0 ? "−" : "") + Math.abs(v).toFixed(2) + "%";
// series: [{name, color, points: [[ms, y], ...], dash?, id}]; fmt: y label format
function lineChart(id, series, w, h, fmt, area) {
  fmt = fmt || money;
  const pad = {l: 74, r: 12, t: 10, b: 24};
  let x0 = Infinity, x1 = -Infinity, y0 = 0, y1 = 0;
  for (const s of series) for (const [t, y] of s.points) {
    const x = xOf(t); x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  if (!isFinite(x0)) return `<p class="mute">no closed trades yet</p>`;
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) y1 = y0 + 1;
  const X = x => pad.l + (x - x0) / (x1 - x0) * (w - pad.l - pad.r);
  const Y = y => pad.t + (y1 - y) / (y1 - y0) * (h - pad.t - pad.b);
  let g = `<svg id="${id}" viewBox="0 0 ${w} ${h}" width="100%" role="img">`;
  for (let i = 0; i <= 4; i++) {
    const v = y0 + (y1 - y0) * i / 4, y = Y(v);
    g += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${y}" y2="${y}" stroke="#e3e6ec"/><text x="${pad.l - 6}" y="${y + 4}" text-anchor="end">${fmt(v)}</text>`;
  }
  g += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(0)}" y2="${Y(0)}" stroke="#9aa5b8"/>`;
  for (const [x, d] of dayTicks(X, x0, x1, 44)) g += `<text x="${x}" y="${h - 6}">${d}</text>`;
  for (const s of series) {
    let path = "";
    s.points.forEach(([t, y], i) => {
      const x = X(xOf(t)).toFixed(1);
      if (i) path += `H${x}`;
      path += (i ? "V" : "M" + x + " ") + Y(y).toFixed(1);
    });
    if (area && s.points.length) path += `V${Y(0).toFixed(1)}H${X(xOf(s.points[0][0])).toFixed(1)}Z`;
    g += `<path class="series" data-series="${esc(s.id || s.name)}" data-n="${s.points.length}" d="${path}" fill="${area ? s.color : "none"}" fill-opacity="${area ? 0.25 : 0}" stroke="${s.color}" stroke-width="${s.dash ? 1.5 : 2}"${s.dash ? ' stroke-dasharray="5 4"' : ""}><title>${esc(s.name)}</title></path>`;
  }
  g += "</svg>";
  if (series.length > 1) g += `<div class="legend">` + series.map(s => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join("") + `</div>`;
  return g;
}
function barChart(rows, w, h) {
  if (!rows.length) return `<p class="mute">no trades</p>`;
  const pad = {l: 74, r: 12, t: 10, b: 24};
  let lo = 0, hi = 0;
  for (const r of rows) { lo = Math.min(lo, r.realized); hi = Math.max(hi, r.realized); }
  if (hi === lo) hi = lo + 1;
  const Y = y => pad.t + (hi - y) / (hi - lo) * (h - pad.t - pad.b);
  const bw = (w - pad.l - pad.r) / rows.length;
  const every = Math.max(1, Math.ceil(44 / bw));
  let g = `<svg id="daybars-svg" viewBox="0 0 ${w} ${h}" width="100%" role="img">`;
  g += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(0)}" y2="${Y(0)}" stroke="#9aa5b8"/>`;
  g += `<text x="${pad.l - 6}" y="${Y(hi) + 4}" text-anchor="end">${money(hi)}</text><text x="${pad.l - 6}" y="${Y(lo) + 4}" text-anchor="end">${money(lo)}</text>`;
  rows.forEach((r, i) => {
    const x = pad.l + i * bw + bw * 0.15, y = Math.min(Y(0), Y(r.realized)), hh = Math.max(1, Math.abs(Y(0) - Y(r.realized)));
    g += `<rect x="${x}" y="${y}" width="${bw * 0.7}" height="${hh}" fill="${r.realized >= 0 ? "#1a8f4c" : "#c8372d"}"><title>${r.day}: ${money(r.realized)}</title></rect>`;
    if (i % every === 0) g += `<text x="${x + bw * 0.35}" y="${h - 6}" text-anchor="middle">${r.day.slice(5)}</text>`;
  });
  return g + "</svg>";
}

// ---- sortable, filterable tables ---------------------------------------
// cols: [key, title, kind ("n" numeric, "m" money, "t" text), render?]
function table(el, cols, rows, opts) {
  opts = opts || {};
  const st = {key: opts.sort || null, dir: opts.dir || 1, filter: "", limit: opts.limit || 300};
  el.innerHTML = (opts.filter === false ? "" : `<div class="tools"><input type="search" placeholder="filter (e.g. NVDA, LOSS, sl_breached)"><span class="mute count"></span></div>`)
    + `<div class="scroll"><table><thead><tr>${cols.map(c => `<th data-k="${c[0]}" class="${c[2] !== "t" && c[2] !== "w" ? "n" : ""}">${c[1]}</th>`).join("")}</tr></thead><tbody></tbody></table></div><div class="more"></div>`;
  const body = $("tbody", el), more = $(".more", el), count = $(".count", el);
  const text = r => cols.map(c => r[c[0]]).join(" ").toLowerCase();
  function render() {
    let list = rows;
    if (st.filter) { const f = st.filter.toLowerCase().split(/\s+/).filter(Boolean); list = list.filter(r => { const t = text(r); return f.every(x => t.includes(x)); }); }
    if (st.key) {
      const k = st.key, d = st.dir;
      list = list.slice().sort((a, b) => { const x = a[k], y = b[k]; if (x === y) return 0; if (x == null) return 1; if (y == null) return -1; return (x < y ? -1 : 1) * d; });
    }
    if (count) count.textContent = `${list.length} of ${rows.length} rows`;
    const shown = list.slice(0, st.limit);
    body.innerHTML = shown.map((r, i) => `<tr data-i="${i}"${opts.click ? ' class="click"' : ""}>` + cols.map(c => {
      const v = r[c[0]];
      if (c[3]) return `<td class="${c[2] !== "t" ? "n" : ""}">${c[3](v, r)}</td>`;
      if (c[2] === "m") return `<td class="n ${cls(v)}">${money(v)}</td>`;
      if (c[2] === "n") return `<td class="n">${v == null ? "" : v}</td>`;
      if (c[2] === "p") return `<td class="n">${v == null ? "" : v.toFixed(2)}</td>`;
      if (c[2] === "q") return `<td class="n">${v == null ? "" : v.toFixed(4)}</td>`;
      if (c[2] === "w") return `<td class="w">${esc(v)}</td>`;
      return `<td>${esc(v)}</td>`;
    }).join("") + "</tr>").join("");
    body._rows = shown;
    more.innerHTML = list.length > st.limit ? `<button>show all ${list.length} rows</button>` : "";
    for (const th of el.querySelectorAll("th")) th.className = (th.dataset.k === st.key ? (st.dir > 0 ? "asc" : "desc") : "") + (!"tw".includes(cols.find(c => c[0] === th.dataset.k)[2]) ? " n" : "");
  }
  $("thead", el).addEventListener("click", e => {
    const k = e.target.dataset.k; if (!k) return;
    if (st.key === k) st.dir = -st.dir; else { st.key = k; st.dir = "tw".includes(cols.find(c => c[0] === k)[2]) ? 1 : -1; }
    render();
  });
  more.addEventListener("click", () => { st.limit = Infinity; render(); });
  const input = $("input", el);
  if (input) input.addEventListener("input", () => { st.filter = input.value.trim(); render(); });
  if (opts.click) body.addEventListener("click", e => { const tr = e.target.closest("tr"); if (tr) opts.click(body._rows[+tr.dataset.i]); });
  render();
  return {render, st};
}

]==]
