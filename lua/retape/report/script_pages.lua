-- retape.report.script_pages — the second half of the report page's
-- script: the pages (Summary, Lanes with the swimlane strip, Trades, a
-- ticker's price with its trades, Run, Compare with --vs), drawn with
-- retape.report.script_kit's charts and tables.
return [==[
// ---- summary -----------------------------------------------------------
const S = D.summary;
const VS = D.vs || [];
const LETTERS = "ABCDEFGHIJ";
const VS_COLORS = ["#2f5fd0", "#8a55d8", "#e8590c", "#0c8599", "#c2255c", "#5c940d", "#862e9c", "#1971c2"];
// "A default (classify.p2_score=65)": a store's name in legends and tables
function storeName(i, m) {
  const ov = m.overrides.map(o => o.text).join(", ");
  return `${LETTERS[i]} ${m.rules}${ov ? " (" + ov + ")" : ""}`;
}
function card(k, label, v, text, extra, sub) {
  return `<div class="card" data-kpi="${k}" data-value="${v == null ? "" : v}"><div class="k">${label}</div><div class="v ${extra || ""}">${text}</div><div class="s">${sub || "&nbsp;"}</div></div>`;
}
const dur = ms => { if (ms == null) return "—"; const m = Math.round(ms / 60000); if (m < 60) return m + " m"; const h = Math.floor(m / 60); return h < 24 ? `${h} h ${String(m % 60).padStart(2, "0")} m` : `${Math.floor(h / 24)} d ${h % 24} h`; };
const num2 = v => v == null ? "—" : v.toFixed(2);
if (D.no_trades) $("#empty").innerHTML = `<div class="empty" id="no-trades"><b>No trades in this store.</b> ${esc(D.no_trades.text)}.</div>`;
$("#cards").innerHTML = [
  card("total", "Net P&L", S.total, money(S.total), cls(S.total), `${pct(S.return_pct)} of ${money(S.start)}`),
  card("return_pct", "Return", S.return_pct, pct(S.return_pct), cls(S.return_pct), S.annual_return == null ? "—" : `${pct(S.annual_return)} a year`),
  card("max_drawdown", "Max drawdown", S.max_drawdown, money(-S.max_drawdown), S.max_drawdown > 0 ? "neg" : "", `${pct(-S.max_drawdown_pct)} · ${dur(S.max_drawdown_duration_ms)} longest`),
  card("sharpe", "Sharpe", S.sharpe, num2(S.sharpe), "", `Sortino ${num2(S.sortino)} · Calmar ${num2(S.calmar)}`),
  card("trades", "Trades", S.trades, `${S.trades}`, "", `${S.closed} closed · ${S.open} open`),
  card("win_rate", "Win rate", S.win_rate, `${S.win_rate.toFixed(1)}%`, "", `${S.wins} won · ${S.losses} lost · ${S.flat} flat`),
  card("expectancy", "Expectancy", S.expectancy, S.expectancy == null ? "—" : money(S.expectancy), cls(S.expectancy), "per closed trade"),
  card("profit_factor", "Profit factor", S.profit_factor, S.profit_factor == null ? "—" : S.profit_factor.toFixed(2), "", "gross win / gross loss"),
  card("realized", "Realized P&L", S.realized, money(S.realized), cls(S.realized), "trims and exits, net of costs"),
  card("unrealized", "Unrealized P&L", S.unrealized, money(S.unrealized), cls(S.unrealized), `${S.open} open at the last price`),
  card("exposure", "Exposure", S.exposure, `${S.exposure.toFixed(1)}%`, "", "of buckets with a position"),
].join("");
// the statistics block: every figure of retape.stats, in three groups
const C = S.capital;
const tradeRef = x => x ? `${money(x.pnl)} <span class="mute">${esc(x.ticker)}</span>` : "—";
const dayRef = x => x ? `${money(x.pnl)} <span class="mute">${esc(x.day)}</span>` : "—";
const statRows = [
  ["Returns", [["start", "starting capital", money(S.start)], ["total", "net P&L", money(S.total)], ["return_pct", "return", pct(S.return_pct)],
    ["annual_return", "annual return (252 days)", pct(S.annual_return)], ["fees", "fees and commissions", money(S.fees)],
    ["best_day", "best day", dayRef(S.best_day)], ["worst_day", "worst day", dayRef(S.worst_day)], ["days", "days", S.days]]],
  ["Risk", [["max_drawdown", "max drawdown", money(-S.max_drawdown)], ["max_drawdown_pct", "max drawdown %", pct(-S.max_drawdown_pct)],
    ["max_drawdown_duration_ms", "longest drawdown", dur(S.max_drawdown_duration_ms)], ["sharpe", "Sharpe (daily, annualized)", num2(S.sharpe)],
    ["sortino", "Sortino", num2(S.sortino)], ["calmar", "Calmar", num2(S.calmar)], ["exposure", "exposure", S.exposure.toFixed(1) + "%"],
    ["max_losing_streak", "longest losing streak", S.max_losing_streak]]],
  ["Trades", [["win_rate", "win rate", S.win_rate.toFixed(1) + "%"], ["avg_win", "average win", S.avg_win == null ? "—" : money(S.avg_win)],
    ["avg_loss", "average loss", S.avg_loss == null ? "—" : money(S.avg_loss)], ["expectancy", "expectancy", S.expectancy == null ? "—" : money(S.expectancy)],
    ["payoff_ratio", "payoff ratio", num2(S.payoff_ratio)], ["holding_mean_ms", "holding time, mean", dur(S.holding_mean_ms)],
    ["holding_median_ms", "holding time, median", dur(S.holding_median_ms)], ["best_trade", "best trade", tradeRef(S.best_trade)],
    ["worst_trade", "worst trade", tradeRef(S.worst_trade)]]],
];
$("#stats").innerHTML = statRows.map(([title, rows]) => `<div><h3>${title}</h3><table><tbody>` + rows.map(([k, label, text]) => {
  const v = S[k]; const raw = v != null && typeof v === "object" ? v.pnl : v;
  return `<tr data-stat="${k}" data-value="${raw == null ? "" : raw}"><td>${label}</td><td class="n">${text}</td></tr>`;
}).join("") + `</tbody></table></div>`).join("");
$("#capital").textContent = `capital model: ${money(C.start)} start, sizing ${C.sizing === "equity_pct" ? C.equity_pct + " % of equity" : "the ruleset's own"}, ` +
  `fees ${money(C.fee_per_order)}/order + ${C.fee_per_share}/share + ${C.fee_bps} bps, slippage ${C.slippage_bps} bps (--set capital.KEY=V)`;
const eq = [{name: storeName(0, D.manifest), id: "A", color: VS_COLORS[0], points: S.equity}];
VS.forEach((v, i) => eq.push({name: storeName(i + 1, v.manifest), id: LETTERS[i + 1], color: VS_COLORS[(i + 1) % VS_COLORS.length], points: v.summary.equity}));
const BM = D.benchmark;
const eqMain = eq.slice();
if (BM && !BM.missing && S.equity.length) {
  const t0 = S.equity[0][0], t1 = S.equity[S.equity.length - 1][0];
  const pts = BM.points.filter(p => p[0] >= t0 - BUCKET_MS && p[0] <= t1);
  if (pts.length) {
    const base = pts[0][1];
    eqMain.push({name: `${BM.ticker} buy and hold (${money(S.start)})`, id: "benchmark", color: "#868e96", dash: true, points: pts.map(p => [p[0], +(p[1] - base).toFixed(2)])});
  }
}
$("#equity").innerHTML = lineChart("equity-svg", eqMain, 1000, 300) + (BM && BM.missing ? `<p class="mute">no benchmark: the store has no price of ${esc(BM.ticker)} (report --benchmark TICKER)</p>` : "");
$("#underwater").innerHTML = lineChart("underwater-svg", [{name: "drawdown", id: "underwater", color: "#c8372d", points: S.underwater.map(p => [p[0], p[1]])}], 1000, 180, money, true);
$("#daybars").innerHTML = barChart(D.days, 480, 300);
const bcols = [["key", "", "w"], ["trades", "trades", "n"], ["wins", "won", "n"], ["losses", "lost", "n"], ["open", "open", "n"], ["pnl", "P&L", "m"]];
for (const [id, title] of [["exit_reason", "exit reason"], ["enter_rule", "enter rule"], ["direction", "direction"], ["ticker", "ticker"]]) {
  const c = bcols.slice(); c[0] = ["key", title, "w"];
  table($("#bd-" + id), c, D.breakdown[id], {filter: id === "ticker", limit: 1000});
}
table($("#t-daily"), [["day", "day", "t"], ["pnl", "P&L", "m"], ["ret", "return %", "p"], ["equity", "equity", "m"]], S.daily, {filter: false, limit: 1000});
table($("#t-monthly"), [["month", "month", "t"], ["days", "days", "n"], ["pnl", "P&L", "m"], ["ret", "return %", "p"]], S.monthly, {filter: false, limit: 1000});
$("#glossary").innerHTML = [["exit_reason", "Exit reasons"], ["enter_rule", "Enter rules"]].map(([k, title]) =>
  `<div><h3>${title}</h3>${D.glossary[k].length ? `<dl class="gloss">${D.glossary[k].map(g => `<dt>${esc(g.key)}</dt><dd>${esc(g.text)}</dd>`).join("")}</dl>` : '<p class="mute">none used</p>'}</div>`).join("");

// ---- lanes board + swimlane strip -------------------------------------
const nB = D.buckets.length;
function stepAt(ch, b, none) {
  let lo = 0, hi = ch.length / 2 - 1, v = none;
  while (lo <= hi) { const m = (lo + hi) >> 1; if (ch[2 * m] <= b) { v = ch[2 * m + 1]; lo = m + 1; } else hi = m - 1; }
  return v;
}
function laneAt(ti, b) { return stepAt(D.strip[ti], b, -1); }
function defendAt(ti, b) { return stepAt((D.defend_strip || [])[ti] || [], b, 0) === 1; }
const slider = $("#bucket");
slider.max = Math.max(0, nB - 1); slider.value = Math.max(0, nB - 1);
let prevBoard = null;
function renderBoard() {
  const b = +slider.value;
  $("#when").textContent = D.labels[b] || "";
  const cols = D.lanes.map(() => []), now = {};
  const shield = {};
  D.tickers.forEach((T, i) => { const l = laneAt(i, b); now[T] = l; if (l >= 0) cols[l].push(T); shield[T] = defendAt(i, b); });
  $("#board").innerHTML = D.lanes.map((l, i) => `<div class="lane" data-lane="${l.id}" style="--c:${LANE_COLORS[i]}"><h3><span>${esc(l.title)}</span><span class="cnt">${cols[i].length}</span></h3>` +
    cols[i].map(T => `<span class="chip${prevBoard && prevBoard[T] !== now[T] ? " moved" : ""}" data-t="${T}"${shield[T] ? ' data-badge="defend"' : ""}>${T}${shield[T] ? " 🛡" : ""}</span>`).join("") + `</div>`).join("");
  prevBoard = now;
  drawCursor();
}
slider.addEventListener("input", renderBoard);
document.addEventListener("keydown", e => {
  if (!$("#page-lanes").classList.contains("on") || e.target.tagName === "INPUT" && e.target.type !== "range") return;
  if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
    if (e.target !== slider) { slider.value = +slider.value + (e.key === "ArrowRight" ? 1 : -1); renderBoard(); }
    e.preventDefault === undefined || e.target === slider || e.preventDefault();
  }
});
$("#board").addEventListener("click", e => { const t = e.target.dataset.t; if (t) tickerDetail(t); });
$("#legend").innerHTML = D.lanes.map((l, i) => `<span><i style="background:${LANE_COLORS[i]}"></i>${esc(l.title)}</span>`).join("")
  + `<span>▲ entry</span><span>◆ trim</span><span>✕ exit</span>`;

{
  const ds = [...new Set(D.labels.map(l => l.slice(0, 10)))];
  $("#strip-title").textContent = ds.length <= 1 ? `Lanes of each ticker through ${ds[0] || "the run"}` : `Lanes of each ticker, ${ds[0]} to ${ds[ds.length - 1]} (${ds.length} days with receipts)`;
}
const ROW = 13, LABEL = 64;
let stripRows = D.tickers.map((T, i) => i);
const marks = {};
for (const t of D.trades) {
  const m = marks[t.ticker] || (marks[t.ticker] = []);
  for (const h of t.history) if (h.type === "ENTRY" || h.type === "TRIM" || h.type === "EXIT") m.push([h.type, h.ts]);
}
function bucketIndex(ms) { let lo = 0, hi = nB - 1, r = 0; while (lo <= hi) { const m = (lo + hi) >> 1; if (D.buckets[m] <= ms) { r = m; lo = m + 1; } else hi = m - 1; } return r; }
function drawStrip() {
  const cv = $("#strip"), wrap = $("#strip-wrap");
  const width = Math.max(600, wrap.clientWidth - 2), cw = (width - LABEL) / Math.max(1, nB);
  const dpr = window.devicePixelRatio || 1;
  cv.width = width * dpr; cv.height = (stripRows.length * ROW + 18) * dpr;
  cv.style.width = width + "px"; cv.style.height = (stripRows.length * ROW + 18) + "px";
  const g = cv.getContext("2d"); g.scale(dpr, dpr);
  g.font = "10px system-ui, sans-serif"; g.textBaseline = "middle";
  let day = "", lastLabel = -Infinity;
  for (let b = 0; b < nB; b++) {
    const d = D.labels[b].slice(0, 10);
    if (d === day) continue;
    day = d;
    const x = LABEL + b * cw;
    g.fillStyle = "#c5cad4"; g.fillRect(x, 0, 1, cv.height);
    const text = nB > 400 ? d.slice(5) : d; // labels never overlap: one is skipped when too close
    if (x - lastLabel >= g.measureText(text).width + 8) { g.fillStyle = "#6b7385"; g.fillText(text, x + 2, 8); lastLabel = x; }
  }
  stripRows.forEach((ti, r) => {
    const y = 18 + r * ROW, ch = D.strip[ti];
    g.fillStyle = "#1d2330"; g.fillText(D.tickers[ti], 2, y + ROW / 2);
    for (let k = 0; k < ch.length; k += 2) {
      const from = ch[k], to = k + 2 < ch.length ? ch[k + 2] : nB, lane = ch[k + 1];
      if (lane < 0) continue;
      g.fillStyle = LANE_COLORS[lane]; g.fillRect(LABEL + from * cw, y + 1, (to - from) * cw, ROW - 2);
    }
    for (const [type, ts] of marks[D.tickers[ti]] || []) {
      const x = LABEL + (bucketIndex(ts) + 0.5) * cw, cy = y + ROW / 2;
      g.fillStyle = "#fff"; g.strokeStyle = "#111"; g.beginPath();
      if (type === "ENTRY") { g.moveTo(x, cy - 5); g.lineTo(x + 4, cy + 4); g.lineTo(x - 4, cy + 4); g.closePath(); g.fill(); g.stroke(); }
      else if (type === "TRIM") { g.moveTo(x, cy - 4); g.lineTo(x + 4, cy); g.lineTo(x, cy + 4); g.lineTo(x - 4, cy); g.closePath(); g.fill(); g.stroke(); }
      else { g.lineWidth = 2; g.moveTo(x - 3, cy - 3); g.lineTo(x + 3, cy + 3); g.moveTo(x + 3, cy - 3); g.lineTo(x - 3, cy + 3); g.stroke(); g.lineWidth = 1; }
    }
  });
  cv._cw = cw;
  drawCursor();
}
function drawCursor() {
  const cur = $("#cursor"), cv = $("#strip");
  if (!cv._cw) return;
  cur.style.left = (LABEL + (+slider.value + 0.5) * cv._cw) + "px"; cur.style.height = cv.style.height;
}
$("#strip-filter").addEventListener("input", e => {
  const f = e.target.value.trim().toUpperCase().split(/[\s,]+/).filter(Boolean);
  stripRows = D.tickers.map((T, i) => i).filter(i => !f.length || f.some(x => D.tickers[i].includes(x)));
  drawStrip();
});
$("#strip").addEventListener("click", e => {
  const r = Math.floor((e.offsetY - 18) / ROW); if (r < 0 || r >= stripRows.length) return;
  const b = Math.floor((e.offsetX - LABEL) / e.target._cw);
  if (b >= 0 && b < nB) { slider.value = b; renderBoard(); }
  tickerDetail(D.tickers[stripRows[r]]);
});

// ---- trades ------------------------------------------------------------
const tradeCols = [["ticker", "ticker", "t"], ["dir", "dir", "t"], ["outcome", "outcome", "t"],
  ["entry_time", "entry (ET)", "t"], ["entry", "entry", "p"], ["exit_time", "exit (ET)", "t"], ["exit", "exit", "p"],
  ["pnl", "P&L", "m"], ["ret", "P&L %", "p"], ["unrealized", "unrealized", "m"], ["trimmed", "trimmed %", "n"],
  ["exit_reason", "exit reason", "w"], ["rule", "enter rule", "w"]];
function tradeDetail(t) {
  const d = $("#detail");
  d.innerHTML = `<button class="x" title="close">×</button><h2>${esc(t.ticker)} ${t.dir} · ${esc(t.status)}</h2>
  <p class="mute">${esc(t.id)} · entered ${esc(t.entry_time)} by <b>${esc(t.rule)}</b> · sl ${t.sl ?? "—"} · tp ${t.tp ?? "—"}</p>
  <table><thead><tr><th>time (ET)</th><th>event</th><th class="n">price</th><th class="n">shares</th><th>reason</th><th class="n">P&L</th></tr></thead><tbody>` +
  t.history.map(h => `<tr><td>${esc(h.time)}</td><td>${h.type}</td><td class="n">${h.price == null ? "" : h.price.toFixed(2)}</td><td class="n">${h.shares == null ? "" : h.shares.toFixed(4)}</td><td>${esc(h.reason ?? "")}</td><td class="n ${cls(h.pnl)}">${h.pnl ? money(h.pnl) : ""}</td></tr>`).join("") +
  `</tbody></table>`;
  d.style.display = "block";
}
function tickerDetail(T) {
  const list = D.trades.filter(t => t.ticker === T);
  const i = D.tickers.indexOf(T);
  const d = $("#detail");
  const path = i < 0 ? "" : D.strip[i].reduce((a, v, k, arr) => (k % 2 ? a : a.concat(`${D.labels[v].slice(5)} ${arr[k + 1] < 0 ? "—" : D.lanes[arr[k + 1]].title}`)), []).join(" → ");
  d.innerHTML = `<button class="x" title="close">×</button><h2>${esc(T)}</h2><p class="mute" style="white-space:normal">${esc(path)}</p>` +
    (list.length ? `<table><tbody>${list.map((t, k) => `<tr class="click" data-k="${k}"><td>${esc(t.entry_time)}</td><td>${t.dir}</td><td>${esc(t.status)}</td><td>${esc(t.exit_reason)}</td><td class="n ${cls(t.pnl)}">${money(t.pnl)}</td></tr>`).join("")}</tbody></table>` : `<p class="mute">no trades</p>`);
  d.style.display = "block";
  d.onclick = e => { const tr = e.target.closest("tr[data-k]"); if (tr) tradeDetail(list[+tr.dataset.k]); };
}
$("#detail").addEventListener("click", e => { if (e.target.classList.contains("x")) $("#detail").style.display = "none"; });

// ---- a ticker's price with its trades ------------------------------------
// The price after each bucket (the ruleset's `price` view field), entries
// (triangles), trims (diamonds) and exits (crosses) at their fill prices,
// each trade's stop-loss (red, stepping with SL_TIGHTEN) and take-profit
// (green) from entry to exit.
function priceChart(T) {
  const px = (D.prices || {})[T] || [], list = D.trades.filter(t => t.ticker === T);
  const w = 1000, h = 340, pad = {l: 74, r: 12, t: 10, b: 24};
  const marks = [], levels = [];
  for (const t of list) {
    const end = t.exit_ts != null ? t.exit_ts : (D.buckets[D.buckets.length - 1] || t.entry_ts);
    for (const e of t.history)
      if (e.type === "ENTRY" || e.type === "TRIM" || e.type === "EXIT") marks.push({type: e.type, ts: e.ts, price: e.price, dir: t.dir, id: t.id});
    // the SL before its first tightening: the oldSl of that event, else the trade's
    const tight = t.history.filter(e => e.type === "SL_TIGHTEN" && e.ts != null);
    let cur = tight.length && tight[0].old_sl != null ? tight[0].old_sl : t.sl, start = t.entry_ts;
    for (const e of tight) { if (cur != null) levels.push({kind: "sl", from: start, to: e.ts, y: cur}); cur = e.new_sl; start = e.ts; }
    if (cur != null) levels.push({kind: "sl", from: start, to: end, y: cur});
    if (t.tp != null) levels.push({kind: "tp", from: t.entry_ts, to: end, y: t.tp});
  }
  const ys = px.map(p => p[1]).concat(marks.map(m => m.price), levels.map(l => l.y)).filter(v => v != null);
  if (!ys.length) return `<p class="mute">no prices of ${esc(T)} in the store</p>`;
  let y0 = Math.min(...ys), y1 = Math.max(...ys); const m = (y1 - y0) * 0.05 || 1; y0 -= m; y1 += m;
  const xs = px.map(p => xOf(p[0])).concat(marks.map(k => xOf(k.ts)));
  let x0 = Math.min(...xs), x1 = Math.max(...xs); if (x1 === x0) x1 = x0 + 1;
  const X = x => pad.l + (x - x0) / (x1 - x0) * (w - pad.l - pad.r), Y = y => pad.t + (y1 - y) / (y1 - y0) * (h - pad.t - pad.b);
  let g = `<svg id="price-svg" data-ticker="${esc(T)}" viewBox="0 0 ${w} ${h}" width="100%" role="img">`;
  for (let i = 0; i <= 4; i++) { const v = y0 + (y1 - y0) * i / 4; g += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#e3e6ec"/><text x="${pad.l - 6}" y="${Y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`; }
  for (const [x, d] of dayTicks(X, x0, x1, 44)) g += `<text x="${x}" y="${h - 6}">${d}</text>`;
  for (const l of levels) g += `<line class="level" data-kind="${l.kind}" x1="${X(xOf(l.from)).toFixed(1)}" x2="${X(xOf(l.to)).toFixed(1)}" y1="${Y(l.y).toFixed(1)}" y2="${Y(l.y).toFixed(1)}" stroke="${l.kind === "sl" ? "#c8372d" : "#1a8f4c"}" stroke-dasharray="5 3" stroke-width="1.5"><title>${l.kind.toUpperCase()} ${l.y}</title></line>`;
  g += `<polyline class="price" data-n="${px.length}" fill="none" stroke="#1d2330" stroke-width="1.2" points="${px.map(p => X(xOf(p[0])).toFixed(1) + "," + Y(p[1]).toFixed(1)).join(" ")}"/>`;
  for (const k of marks) {
    const x = X(xOf(k.ts)), y = Y(k.price), c = k.dir === "SHORT" ? "#c8372d" : "#1a8f4c";
    const shape = k.type === "ENTRY" ? `<path d="M${x} ${y - 7}L${x + 6} ${y + 5}L${x - 6} ${y + 5}Z" fill="${c}"/>`
      : k.type === "TRIM" ? `<path d="M${x} ${y - 6}L${x + 6} ${y}L${x} ${y + 6}L${x - 6} ${y}Z" fill="#fff" stroke="${c}" stroke-width="2"/>`
      : `<path d="M${x - 5} ${y - 5}L${x + 5} ${y + 5}M${x + 5} ${y - 5}L${x - 5} ${y + 5}" stroke="#111" stroke-width="2.5"/>`;
    g += `<g class="mark" data-type="${k.type}" data-ts="${k.ts}" data-price="${k.price}">${shape}<title>${k.type} ${k.price} ${esc(k.id)}</title></g>`;
  }
  return g + `</svg><div class="legend"><span>▲ entry (green LONG, red SHORT)</span><span>◆ trim</span><span>✕ exit</span><span style="color:#c8372d">- - stop-loss</span><span style="color:#1a8f4c">- - take-profit</span></div>`;
}
const tradedTickers = [...new Set(D.trades.map(t => t.ticker))].sort();
const pxSel = $("#px-ticker");
pxSel.innerHTML = tradedTickers.map(T => `<option>${esc(T)}</option>`).join("");
function showPrice(T) { if (!T) { $("#price").innerHTML = '<p class="mute">no trades</p>'; return; } pxSel.value = T; $("#price").innerHTML = priceChart(T); }
pxSel.addEventListener("change", () => showPrice(pxSel.value));
showPrice(tradedTickers[0]);
table($("#t-trades"), tradeCols, D.trades, {click: t => { tradeDetail(t); showPrice(t.ticker); }, sort: "entry_ts", dir: -1});
table($("#t-day"), [["day", "day", "t"], ["ticker", "ticker", "t"], ["dir", "dir", "t"], ["entry", "entry", "p"], ["trim_price", "trim price", "p"],
  ["exit", "exit", "p"], ["exit_reason", "exit reason", "w"], ["close", "close", "p"], ["remaining", "remaining", "q"],
  ["realized", "realized", "m"], ["unrealized", "unrealized", "m"]], D.by_day,
  {click: r => tradeDetail(D.trades.find(t => t.id === r.id))});
table($("#t-pnl"), [["ticker", "ticker", "t"], ["trades", "trades", "n"], ["open", "open", "n"], ["realized", "realized", "m"],
  ["unrealized", "unrealized", "m"], ["total", "total", "m"]], D.by_pnl, {sort: "total", dir: -1});
const events = [];
for (const t of D.trades) for (const h of t.history) events.push({ts: h.ts, time: h.time, ticker: t.ticker, dir: t.dir, type: h.type, price: h.price, shares: h.shares, reason: h.reason, pnl: h.pnl, id: t.id, t});
table($("#t-history"), [["time", "time (ET)", "t"], ["ticker", "ticker", "t"], ["dir", "dir", "t"], ["type", "event", "t"], ["price", "price", "p"],
  ["shares", "shares", "q"], ["reason", "reason", "w"], ["pnl", "realized", "m"]], events, {sort: "ts", dir: 1, click: r => tradeDetail(r.t)});

// ---- run manifest -----------------------------------------------------
const M = D.manifest;
function manifestTable(m, store) {
  return `<table class="kv"><tbody>
  <tr><td>store</td><td>${esc(store)}</td></tr>
  <tr><td>state</td><td><span class="badge ${m.state}">${m.state}</span> ${m.notes.map(esc).join("; ")}</td></tr>
  <tr><td>ruleset</td><td>${esc(m.rules)} ${m.sources.map(s => `<span class="mute">${esc(s.name)} ${esc(s.hash)}</span>`).join(" ")}</td></tr>
  <tr><td>overrides</td><td>${m.overrides.length ? m.overrides.map(o => `${esc(o.key)} = ${esc(o.value)}`).join("<br>") : '<span class="mute">none</span>'}</td></tr>
  <tr><td>scope</td><td>${esc(m.scope)}</td></tr>
  <tr><td>receipts</td><td>${m.receipts ? `${m.receipts.read} read, hash ${esc(m.receipts.hash)}` : ""}</td></tr>
  <tr><td>results</td><td>${m.results ? `lanes ${esc(m.results.lanes_hash)} · trades ${esc(m.results.trades_hash)}` : "(partial)"}</td></tr>
  <tr><td>engine</td><td>${esc(m.engine)}</td></tr></tbody></table>`;
}
$("#manifest").innerHTML = manifestTable(M, D.store);
table($("#runs"), [["seq", "run", "n"], ["finished", "finished", "t"], ["rules", "rules", "t"], ["rows", "rows", "n"], ["trades", "trades", "n"],
  ["receipts", "receipts hash", "t"], ["results", "lanes/trades hash", "t"]], M.runs, {filter: false});
$("#sub").textContent = `${D.store} · ${M.rules} · ${M.scope} · ${M.state}`;

// ---- compare (--vs: one or more stores beside A) -------------------------
if (VS.length) {
  $("#vs-warn").innerHTML = VS.filter(v => !v.same_receipts).map(v => `<div class="warn">${esc(storeName(VS.indexOf(v) + 1, v.manifest))} replayed different receipts from A (hash ${esc(v.receipts_a)} vs ${esc(v.receipts_b)}): differences may come from the input, not the rules.</div>`).join("");
  const rows = [["trades", "trades"], ["wins", "wins"], ["losses", "losses"], ["open", "open"], ["win_rate", "win rate %"],
    ["total", "net P&L"], ["return_pct", "return %"], ["realized", "realized P&L"], ["unrealized", "unrealized P&L"], ["max_drawdown", "max drawdown"],
    ["max_drawdown_pct", "max drawdown %"], ["sharpe", "Sharpe"], ["sortino", "Sortino"], ["expectancy", "expectancy"], ["profit_factor", "profit factor"]];
  const GOOD = {wins: 1, losses: -1, win_rate: 1, realized: 1, unrealized: 1, total: 1, return_pct: 1, max_drawdown: -1, max_drawdown_pct: -1, sharpe: 1, sortino: 1, expectancy: 1, profit_factor: 1};
  const all = [S].concat(VS.map(v => v.summary));
  $("#vs-totals").innerHTML = `<table><thead><tr><th></th>${all.map((_, i) => `<th class="n">${LETTERS[i]}</th>`).join("")}${VS.map((_, i) => `<th class="n">${LETTERS[i + 1]} − A</th>`).join("")}</tr></thead><tbody>` +
    rows.map(([k, t]) => `<tr data-row="${k}"><td>${t}</td>${all.map(x => `<td class="n">${x[k] ?? "—"}</td>`).join("")}` +
      VS.map(v => { const B = v.summary; return `<td class="n ${cls(((B[k] ?? 0) - (S[k] ?? 0)) * (GOOD[k] || 0))}">${S[k] == null || B[k] == null ? "" : +((B[k] - S[k]).toFixed(2))}</td>`; }).join("") + `</tr>`).join("") + "</tbody></table>" +
    `<div class="legend">${all.map((_, i) => `<span><i style="background:${VS_COLORS[i % VS_COLORS.length]}"></i>${esc(storeName(i, i ? VS[i - 1].manifest : M))}</span>`).join("")}</div>`;
  $("#vs-manifests").innerHTML = `<div class="grid2"><div><h2>${esc(storeName(0, M))}</h2>${manifestTable(M, D.store)}</div>` +
    VS.map((v, i) => `<div><h2>${esc(storeName(i + 1, v.manifest))}</h2>${manifestTable(v.manifest, v.store)}</div>`).join("") + `</div>`;
  $("#vs-equity").innerHTML = lineChart("vs-equity-svg", eq, 1000, 420);
  const pick = $("#vs-pick");
  pick.innerHTML = VS.map((v, i) => `<option value="${i}">A vs ${esc(storeName(i + 1, v.manifest))}</option>`).join("");
  const tcols = [["kind", "", "t"], ["trade", "trade (ticker, dir, entry ET)", "t"], ["fields", "A → other", "w"]];
  const lcols = [["ticker", "ticker", "t"], ["time", "first receipt where they part (ET)", "t"], ["a", "A", "t"], ["b", "other", "t"],
    ["receipts", "receipts differing", "n"], ["of", "of", "n"]];
  function showPair(i) {
    const V = VS[i], L = LETTERS[i + 1];
    const tr = [].concat(V.removed.map(k => ({kind: "only in A", trade: k, fields: ""})), V.added.map(k => ({kind: "only in " + L, trade: k, fields: ""})),
      V.changed.map(c => ({kind: "changed", trade: c.trade, fields: c.fields})));
    table($("#vs-trades"), tcols, tr);
    table($("#vs-lanes"), lcols, V.lanes);
  }
  pick.addEventListener("change", () => showPair(+pick.value));
  showPair(0);
}

renderBoard();
show((location.hash || "#summary").slice(1).replace(/[^a-z]/g, "") in {summary:1, lanes:1, trades:1, run:1, compare:1} && $("#page-" + location.hash.slice(1)) ? location.hash.slice(1) : "summary");
document.body.dataset.ready = "1";
]==]
