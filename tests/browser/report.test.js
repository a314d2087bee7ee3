// Browser test of `retape report`: opens the report of a real replay in
// headless Chromium and checks, as TAP lines:
//   - no console error, no uncaught exception, no request leaving file://;
//   - the totals shown equal those computed here from `retape trades --json`;
//   - moving the slider (and the arrow keys) shows the board `retape lanes
//     --at` prints for that bucket;
//   - sorting and filtering a table, a trade's history on click;
//   - a screenshot of each page under OUTDIR.
// usage: node report.test.js REPORT.html STATE_DIR OUTDIR   (RETAPE, CHROMIUM in the environment)
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const { launch } = require("./cdp");

const [report, stateDir, outDir] = process.argv.slice(2);
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
    ok(loadMs < 2000, "interactive within 2 s", loadMs);

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
      const vs = await evalJS(`({ rows: document.querySelectorAll('#vs-trades tbody tr').length, lanes: document.querySelectorAll('#vs-lanes tbody tr').length, paths: document.querySelectorAll('#vs-equity path').length })`);
      ok(vs.paths === 2 && vs.rows > 0 && vs.lanes > 0, "--vs: both equity curves, trade and lane differences", JSON.stringify(vs));
      await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "report-compare.png"), Buffer.from(r.data, "base64")));
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
