// Browser test of `retape report`: opens the report of a real replay in
// headless Chromium and checks, as TAP lines:
//   - no console error, no uncaught exception, no request leaving file://;
//   - the totals shown equal those computed here from `retape trades --json`;
//   - moving the slider (and the arrow keys) shows the board `retape lanes
//     --at` prints for that bucket;
//   - sorting and filtering a table, a trade's history on click;
//   - the statistics, equity curve, underwater chart, benchmark line, daily
//     returns and a ticker's price chart carry the data points computed
//     here from `retape trades --json` (drawdown off the plotted curve);
//   - --vs with two stores: three curves, the overrides in the legend;
//   - at 1280 and 1920 px wide every page's panels, cards, charts and
//     tables lie inside the viewport, none overlaps another, no card text
//     and no table is cut off;
//   - the report of a store without trades says why;
//   - a screenshot of each page under OUTDIR.
// usage: node report.test.js REPORT.html STATE_DIR OUTDIR [EMPTY_REPORT.html]   (RETAPE, CHROMIUM in the environment)
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const { launch } = require("./cdp");

const [report, stateDir, outDir, emptyReport] = process.argv.slice(2);
const RETAPE = process.env.RETAPE;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
let n = 0, failed = 0;
function ok(cond, name, detail) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && detail !== undefined) console.log("#   " + String(detail).split("\n").join("\n#   "));
}
const retape = (...a) => execFileSync(RETAPE, a, { encoding: "utf8", maxBuffer: 1 << 30 });
const near = (a, b) => Math.abs(a - b) <= 0.0051 + 1e-9 * Math.abs(b);

// The shared definitions (retape.metrics), recomputed independently.
function expected(trades) {
  const e = { trades: trades.length, wins: 0, losses: 0, flat: 0, open: 0, realized: 0, unrealized: 0 };
  for (const t of trades) {
    const dir = t.direction === "SHORT" ? -1 : 1;
    let r = 0;
    for (const h of t.history) if (h.type === "TRIM" || h.type === "EXIT") r += (h.price - t.entryPrice) * h.shares * (t.pointValue || 1) * dir;
    e.realized += r;
    if (t.status === "OPEN" || t.status === "TP_HIT_TRIM") {
      e.open++;
      e.unrealized += ((t.currentPrice ?? t.entryPrice) - t.entryPrice) * t.shares * (t.pointValue || 1) * (1 - (t.trimmedPct || 0)) * dir;
    } else if (r > 1e-9) e.wins++; else if (r < -1e-9) e.losses++; else e.flat++;
  }
  e.total = e.realized + e.unrealized;
  const closed = e.wins + e.losses + e.flat;
  e.win_rate = closed ? 100 * e.wins / closed : 0;
  return e;
}

// The realized equity curve as retape.stats defines it, recomputed: every
// TRIM and EXIT's P&L, events at one instant netted into one point, 0 at the
// first event; the largest fall between two of its points; the P&L of each
// New York day.
function curveOf(trades) {
  const ev = [];
  for (const t of trades) {
    const dir = t.direction === "SHORT" ? -1 : 1;
    t.history.forEach((h, i) => {
      const ts = Date.parse(h.timestamp);
      if (!(ts >= 0) || !["ENTRY", "TRIM", "EXIT"].includes(h.type)) return;
      const pnl = h.type === "ENTRY" ? 0 : (h.price - t.entryPrice) * h.shares * (t.pointValue || 1) * dir;
      ev.push({ ts, id: t.id, i, pnl, type: h.type });
    });
  }
  ev.sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) || a.i - b.i);
  const curve = ev.length ? [[ev[0].ts, 0]] : [];
  let eq = 0;
  for (let k = 0; k < ev.length;) {
    const ts = ev[k].ts; let moved = false;
    for (; k < ev.length && ev[k].ts === ts; k++) { eq += ev[k].pnl; if (ev[k].type !== "ENTRY") moved = true; }
    if (moved) { if (curve.length > 1 && curve[curve.length - 1][0] === ts) curve[curve.length - 1][1] = eq; else curve.push([ts, eq]); }
  }
  let peak = 0, dd = 0;
  for (const [, y] of curve) { peak = Math.max(peak, y); dd = Math.max(dd, peak - y); }
  const nyDay = ms => new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York" }).format(new Date(ms));
  const days = {};
  for (const e of ev) days[nyDay(e.ts)] = (days[nyDay(e.ts)] || 0) + e.pnl;
  return { curve, dd, days };
}
// Sharpe of daily returns on a starting capital (sample sd, sqrt(252)).
function sharpeOf(dayPnl, start) {
  let eq = start; const r = [];
  for (const d of Object.keys(dayPnl).sort()) { r.push(dayPnl[d] / eq); eq += dayPnl[d]; }
  const m = r.reduce((a, x) => a + x, 0) / r.length;
  const sd = Math.sqrt(r.reduce((a, x) => a + (x - m) ** 2, 0) / (r.length - 1));
  return m / sd * Math.sqrt(252);
}

// Layout at one width, on the page shown: every panel, card, chart, table
// and legend inside the viewport; no two panels or cards overlapping; no
// card text cut off; no table wider than its box.  -> list of problems.
const LAYOUT = `(() => {
  const W = document.documentElement.clientWidth, bad = [];
  const page = document.querySelector("section.page.on");
  const name = e => e.id ? "#" + e.id : e.className ? e.tagName.toLowerCase() + "." + String(e.className).split(" ")[0] + (e.dataset.kpi ? "[" + e.dataset.kpi + "]" : "") : e.tagName.toLowerCase();
  const seen = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 ? r : null; };
  for (const el of page.querySelectorAll(".panel, .card, svg, canvas, table, .legend, h2, .cards, .stats, select")) {
    const r = seen(el); if (!r) continue;
    if (r.left < -0.5 || r.right > W + 0.5) bad.push(name(el) + " spans " + Math.round(r.left) + ".." + Math.round(r.right) + " of " + W);
  }
  for (const sc of page.querySelectorAll(".scroll")) if (seen(sc) && sc.scrollWidth > sc.clientWidth + 1) bad.push("a table in " + name(sc.closest(".panel") || sc) + " is wider than its box (" + sc.scrollWidth + " > " + sc.clientWidth + ")");
  for (const t of page.querySelectorAll(".card .v, .card .s, .card .k")) if (seen(t) && (t.scrollWidth > t.clientWidth + 1)) bad.push("cut off: " + name(t.closest(".card")) + " " + t.textContent);
  const boxes = [...page.querySelectorAll(".panel, .card")].filter(seen);
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.contains(b) || b.contains(a)) continue;
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left), h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 1 && h > 1) bad.push(name(a) + " overlaps " + name(b));
  }
  return { bad, checked: page.querySelectorAll(".panel, .card, svg, canvas, table").length };
})()`;

(async () => {
  const b = launch(CHROMIUM);
  const problems = [], requests = [];
  try {
    const { targetId } = await b.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await b.send("Target.attachToTarget", { targetId, flatten: true });
    const s = (m, p) => b.send(m, p, sessionId);
    b.on(msg => {
      if (msg.sessionId !== sessionId) return;
      if (msg.method === "Runtime.consoleAPICalled" && (msg.params.type === "error" || msg.params.type === "assert"))
        problems.push("console." + msg.params.type + ": " + msg.params.args.map(a => a.value ?? a.description).join(" "));
      if (msg.method === "Runtime.exceptionThrown") problems.push("exception: " + JSON.stringify(msg.params.exceptionDetails.exception?.description || msg.params.exceptionDetails.text));
      if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") problems.push("log: " + msg.params.entry.text);
      if (msg.method === "Network.requestWillBeSent") requests.push(msg.params.request.url);
    });
    for (const d of ["Runtime", "Log", "Network", "Page"]) await s(d + ".enable");
    await s("Emulation.setDeviceMetricsOverride", { width: 1440, height: 1000, deviceScaleFactor: 1, mobile: false });
    const evalJS = async expr => {
      const r = await s("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error("evaluate " + expr.slice(0, 80) + ": " + (r.exceptionDetails.exception?.description || r.exceptionDetails.text));
      return r.result.value;
    };
    const t0 = Date.now();
    await s("Page.navigate", { url: "file://" + path.resolve(report) });
    let ready = false;
    for (let i = 0; i < 200 && !ready; i++) {
      ready = await evalJS("document.body && document.body.dataset.ready === '1'").catch(() => false);
      if (!ready) await new Promise(r => setTimeout(r, 50));
    }
    const loadMs = Date.now() - t0;
    ok(ready, `the report renders (${loadMs} ms)`);

    // totals against `retape trades --json`
    const trades = JSON.parse(retape("trades", "--state", stateDir, "--json"));
    const want = expected(trades);
    const kpi = await evalJS(`Object.fromEntries([...document.querySelectorAll('[data-kpi]')].map(e => [e.dataset.kpi, e.dataset.value]))`);
    ok(want.trades > 0 && +kpi.trades === want.trades, `trades shown = trades --json (${want.trades})`, JSON.stringify(kpi));
    for (const k of ["realized", "unrealized", "total", "win_rate"]) {
      const w = k === "win_rate" ? Math.round(want[k] * 10) / 10 : want[k];
      ok(near(+kpi[k], w), `${k} shown = trades --json (${w.toFixed(2)})`, `shown ${kpi[k]}`);
    }
    const visible = await evalJS(`document.querySelector('[data-kpi=total] .v').textContent`);
    ok(visible.replace(/[−,]/g, m => m === "−" ? "-" : "") === want.total.toFixed(2), "the total P&L text reads the same figure", visible);
    await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "report-summary.png"), Buffer.from(r.data, "base64")));

    // the equity curve and the drawdown: the points computed here, the card off that curve
    const mine = curveOf(trades);
    const eqSvg = await evalJS(`(() => { const p = document.querySelector('#equity-svg path[data-series=A]'); return { n: p && +p.dataset.n, pts: REPORT.summary.equity,
      uw: +(document.querySelector('#underwater-svg path[data-series=underwater]') || {dataset: {}}).dataset.n, under: REPORT.summary.underwater }; })()`);
    const sameCurve = eqSvg.n === mine.curve.length && eqSvg.pts.every((p, i) => p[0] === mine.curve[i][0] && near(p[1], mine.curve[i][1]));
    ok(mine.curve.length > 2 && sameCurve, `equity curve: ${mine.curve.length} points, one per instant (trades --json recomputed)`,
      JSON.stringify(eqSvg.pts.slice(0, 4)) + "\n" + JSON.stringify(mine.curve.slice(0, 4)));
    ok(near(+kpi.max_drawdown, mine.dd), `max drawdown card = largest fall of the plotted curve (${mine.dd.toFixed(2)})`, kpi.max_drawdown);
    const lowest = Math.min(...eqSvg.under.map(p => p[1]));
    ok(eqSvg.uw === eqSvg.pts.length && near(-lowest, mine.dd), "underwater chart: a point per equity point, its lowest = -max drawdown", `${eqSvg.uw} ${lowest}`);
    const bench = await evalJS(`(() => { const p = document.querySelector('#equity-svg path[data-series=benchmark]'); return { n: p ? +p.dataset.n : 0, b: REPORT.benchmark }; })()`);
    ok(bench.n > 0 && !bench.b.missing && bench.b.points.length >= bench.n, `benchmark line: ${bench.b.ticker} bought and held, ${bench.n} points`, JSON.stringify(bench).slice(0, 200));
    const stat = await evalJS(`Object.fromEntries([...document.querySelectorAll('#stats [data-stat]')].map(e => [e.dataset.stat, e.dataset.value]))`);
    const sh = sharpeOf(mine.days, 100000);
    ok(Math.abs(+stat.sharpe - sh) <= 0.006, `Sharpe shown = daily returns recomputed (${sh.toFixed(2)})`, stat.sharpe);
    ok(["max_drawdown_duration_ms", "expectancy", "avg_win", "avg_loss", "holding_median_ms", "best_trade", "worst_day", "max_losing_streak", "sortino", "calmar"].every(k => k in stat),
      "the statistics block lists duration, expectancy, average win/loss, holding time, best/worst, streak, Sortino, Calmar", Object.keys(stat).join(" "));
    const daily = await evalJS(`[...document.querySelectorAll('#t-daily tbody tr')].map(r => r.children[0].textContent)`);
    ok(JSON.stringify(daily) === JSON.stringify(Object.keys(mine.days).sort()), "daily returns: a row per day with trades", daily.join(" "));
    const monthly = await evalJS(`[...document.querySelectorAll('#t-monthly tbody tr')].map(r => [r.children[0].textContent, +r.children[2].textContent.replace(/,/g, '').replace('−', '-')])`);
    const months = {};
    for (const [d, p] of Object.entries(mine.days)) months[d.slice(0, 7)] = (months[d.slice(0, 7)] || 0) + p;
    ok(monthly.length === Object.keys(months).length && monthly.every(([m, p]) => near(p, months[m])), "monthly returns: a row per month, its P&L the sum of its days", JSON.stringify(monthly));

    // the lanes board at a few buckets, against `retape lanes --at`
    await evalJS(`document.querySelector('#tab-lanes').click()`);
    const labels = await evalJS(`REPORT.labels`);
    const picks = [5, Math.floor(labels.length / 3), Math.floor(labels.length / 2) + 7, labels.length - 1];
    for (const i of picks) {
      const board = await evalJS(`(() => { const s = document.querySelector('#bucket'); s.value = ${i}; s.dispatchEvent(new Event('input'));
        return { when: document.querySelector('#when').textContent,
          lanes: [...document.querySelectorAll('#board .lane')].map(l => [l.dataset.lane, [...l.querySelectorAll('.chip')].map(c => c.dataset.t + (c.dataset.badge ? " " + c.dataset.badge : ""))]) }; })()`);
      const [date, hhmm] = [labels[i].slice(0, 10), labels[i].slice(11, 16)];
      const cli = JSON.parse(retape("lanes", "--state", stateDir, "--date", date, "--at", hhmm, "--json"));
      const cliLanes = cli.map(l => [l.lane, l.tickers.map(t => typeof t === "string" ? t : t.ticker + (t.badge ? " " + t.badge : ""))]);
      const same = JSON.stringify(cliLanes) === JSON.stringify(board.lanes);
      const shields = cliLanes.reduce((a, l) => a + l[1].filter(t => t.endsWith(" defend")).length, 0);
      ok(same && board.when === labels[i], `slider at ${labels[i]}: board = retape lanes --at ${hhmm} (${cliLanes.reduce((a, l) => a + l[1].length, 0)} tickers, ${shields} Defend badges)`,
        same ? board.when : JSON.stringify(cliLanes).slice(0, 300) + "\n" + JSON.stringify(board.lanes).slice(0, 300));
    }
    const mid = Math.floor(labels.length / 2);
    await evalJS(`(() => { const s = document.querySelector('#bucket'); s.value = ${mid}; s.dispatchEvent(new Event('input')); document.activeElement.blur(); })()`);
    for (const type of ["keyDown", "keyUp"]) await s("Input.dispatchKeyEvent", { type, key: "ArrowRight", code: "ArrowRight", windowsVirtualKeyCode: 39 });
    const after = await evalJS(`[+document.querySelector('#bucket').value, document.querySelector('#when').textContent]`);
    ok(after[0] === mid + 1 && after[1] === labels[mid + 1], "the right arrow key moves the board one bucket", JSON.stringify(after));
    await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "report-lanes.png"), Buffer.from(r.data, "base64")));

    // sorting and filtering the trades table, history on click
    await evalJS(`document.querySelector('#tab-trades').click()`);
    const col = `(() => { const ths = [...document.querySelectorAll('#t-trades th')]; const i = ths.findIndex(t => t.dataset.k === 'pnl');
      return [...document.querySelectorAll('#t-trades tbody tr')].map(r => +r.children[i].textContent.replace(/,/g, '').replace('−', '-')); })()`;
    await evalJS(`document.querySelector('#t-trades th[data-k=pnl]').click()`);
    const desc = await evalJS(col);
    await evalJS(`document.querySelector('#t-trades th[data-k=pnl]').click()`);
    const asc = await evalJS(col);
    const sorted = (a, f) => a.every((v, i) => i === 0 || f(a[i - 1], v));
    ok(desc.length === Math.min(300, trades.length) && sorted(desc, (x, y) => x >= y), "clicking P&L sorts the trades, largest first", desc.slice(0, 8).join(" "));
    ok(asc.length === desc.length && sorted(asc, (x, y) => x <= y) && asc[0] < desc[0], "clicking again sorts smallest first", asc.slice(0, 8).join(" "));
    const tick = trades[0].ticker;
    const filtered = await evalJS(`(() => { const i = document.querySelector('#t-trades input'); i.value = ${JSON.stringify(tick)}; i.dispatchEvent(new Event('input'));
      return [...document.querySelectorAll('#t-trades tbody tr')].map(r => r.children[0].textContent); })()`);
    const wantN = trades.filter(t => t.ticker === tick || JSON.stringify(t).includes(tick)).length;
    ok(filtered.length > 0 && filtered.includes(tick) && filtered.length <= wantN, `filtering on ${tick} keeps its trades`, filtered.join(" "));
    const hist = await evalJS(`(() => { document.querySelector('#t-trades tbody tr').click(); return document.querySelectorAll('#detail tbody tr').length; })()`);
    const first = trades.find(t => t.ticker === filtered[0]);
    ok(hist > 0 && document_ok(hist, trades, filtered[0]), "clicking a trade shows its history", hist);
    // a ticker's price chart: its price points, a mark per entry/trim/exit, SL and TP lines
    const T0 = filtered[0];
    const chart = await evalJS(`(() => { const svg = document.querySelector('#price-svg'); return { ticker: svg && svg.dataset.ticker,
      n: +svg.querySelector('polyline.price').dataset.n, want: (REPORT.prices[svg.dataset.ticker] || []).length,
      marks: [...svg.querySelectorAll('g.mark')].map(g => g.dataset.type + "@" + (+g.dataset.price)).sort(),
      sl: svg.querySelectorAll('line.level[data-kind=sl]').length, tp: svg.querySelectorAll('line.level[data-kind=tp]').length }; })()`);
    const mineMarks = [], mt = trades.filter(t => t.ticker === T0);
    for (const t of mt) for (const h of t.history) if (["ENTRY", "TRIM", "EXIT"].includes(h.type)) mineMarks.push(h.type + "@" + h.price);
    mineMarks.sort();
    ok(chart.ticker === T0 && chart.n > 0 && chart.n === chart.want && JSON.stringify(chart.marks) === JSON.stringify(mineMarks) && chart.sl >= mt.length && chart.tp === mt.length,
      `price chart of ${T0}: ${chart.n} prices, ${mineMarks.length} entries/trims/exits, ${chart.sl} SL and ${chart.tp} TP lines`, JSON.stringify(chart) + "\n" + mineMarks.join(" "));
    await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "report-trades.png"), Buffer.from(r.data, "base64")));
    await evalJS(`document.querySelector('#detail .x').click(); document.querySelector('#t-trades input').value=''; document.querySelector('#t-trades input').dispatchEvent(new Event('input'))`);
    void first;

    await evalJS(`document.querySelector('#tab-run').click()`);
    const man = await evalJS(`document.querySelector('#manifest').textContent`);
    const runs = JSON.parse(retape("runs", "--state", stateDir, "--json"));
    ok(man.includes(runs[runs.length - 1].rules) && man.includes(runs[runs.length - 1].receipts.hash), "the manifest shows the ruleset and the receipts hash", man.slice(0, 200));
    await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "report-run.png"), Buffer.from(r.data, "base64")));

    const hasVs = await evalJS(`!!REPORT.vs`);
    if (hasVs) {
      await evalJS(`document.querySelector('#tab-compare').click()`);
      const vs = await evalJS(`({ rows: document.querySelectorAll('#vs-trades tbody tr').length, lanes: document.querySelectorAll('#vs-lanes tbody tr').length,
        paths: document.querySelectorAll('#vs-equity path.series').length, n: REPORT.vs.length, legend: document.querySelector('#vs-equity .legend').textContent,
        overrides: REPORT.vs.map(v => v.manifest.overrides.map(o => o.key + "=" + o.value).join(", ")) })`);
      ok(vs.paths === vs.n + 1 && vs.n >= 2 && vs.rows > 0 && vs.lanes > 0, `--vs with ${vs.n} stores: ${vs.paths} equity curves, trade and lane differences`, JSON.stringify(vs));
      ok(vs.overrides.some(o => o) && vs.overrides.every(o => !o || vs.legend.includes(o)), "--vs legend names each store with its overrides", vs.legend);
      await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "report-compare.png"), Buffer.from(r.data, "base64")));
    }
    // layout at 1280 and 1920 px on every page
    const pageIds = await evalJS(`[...document.querySelectorAll('nav button')].map(b => b.dataset.page)`);
    for (const width of [1280, 1920]) {
      await s("Emulation.setDeviceMetricsOverride", { width, height: 1000, deviceScaleFactor: 1, mobile: false });
      for (const p of pageIds) {
        await evalJS(`document.querySelector('#tab-${p}').click()`);
        await new Promise(r => setTimeout(r, 50));
        const lay = await evalJS(LAYOUT);
        ok(lay.bad.length === 0 && lay.checked > 0, `${width} px, ${p}: ${lay.checked} panels, cards, charts and tables inside the viewport, none overlapping, nothing cut off`, lay.bad.slice(0, 12).join("\n"));
      }
      await evalJS(`document.querySelector('#tab-summary').click()`);
      const full = await evalJS(`document.documentElement.scrollHeight`);
      await s("Emulation.setDeviceMetricsOverride", { width, height: Math.min(full, 4000), deviceScaleFactor: 1, mobile: false });
      await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, `report-summary-${width}.png`), Buffer.from(r.data, "base64")));
    }
    if (emptyReport) {
      await s("Page.navigate", { url: "file://" + path.resolve(emptyReport) });
      let ready2 = false;
      for (let i = 0; i < 200 && !ready2; i++) {
        ready2 = await evalJS("document.body && document.body.dataset.ready === '1' && location.href.includes('empty')").catch(() => false);
        if (!ready2) await new Promise(r => setTimeout(r, 50));
      }
      const why = await evalJS(`(document.querySelector('#no-trades') || {}).textContent || ""`);
      ok(ready2 && /no trades/i.test(why) && /levels|Enter Now/.test(why), "a store without trades says why", why);
    }
    await new Promise(r => setTimeout(r, 200));
    ok(problems.length === 0, "no console error or uncaught exception", problems.join("\n"));
    const outside = requests.filter(u => !u.startsWith("file:") && !u.startsWith("data:") && u !== "about:blank");
    ok(outside.length === 0, "no request leaves the file", outside.join("\n"));
  } catch (e) {
    ok(false, "browser session", e.stack);
  } finally {
    await b.close();
  }
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})();

// The detail panel lists as many events as the trade has (deduplicated or
// not, at least one row per event type of the first trade shown).
function document_ok(rows, trades, ticker) {
  return trades.some(t => t.ticker === ticker && t.history.length === rows);
}
