// Browser test of the live board (GET / of `retape serve`): starts a server
// on a new receipts file, sends webhooks, opens the board in headless
// Chromium and checks, as TAP lines:
//   - no console error, no uncaught exception, no request off the server;
//   - the board shows the lanes GET /retape/lanes gives, and Trade By Day /
//     By P&L / History as GET /retape/trades?by=... gives them;
//   - a webhook's effect (a new ticker's chip, with its receipt's time) is on
//     the page within a second of its 200, pushed by server-sent events
//     (the page never reloads itself);
//   - SIGTERM stops the server cleanly with the page's event stream open.
// usage: node live.test.js BODIES.jsonl TMPDIR OUTDIR   (RETAPE, CHROMIUM in the environment)
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const http = require("http");
const path = require("path");
const { launch } = require("./cdp");

const [bodiesFile, tmp, outDir] = process.argv.slice(2);
const RETAPE = process.env.RETAPE;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const KEY = "k" + process.pid;
let n = 0, failed = 0;
function ok(cond, name, detail) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && detail !== undefined) console.log("#   " + String(detail).split("\n").join("\n#   "));
}
const wait = ms => new Promise(r => setTimeout(r, ms));

function request(port, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: p,
      headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, res => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", c => { text += c; });
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

(async () => {
  fs.writeFileSync(path.join(tmp, "key"), KEY + "\n");
  const server = spawn(RETAPE, ["serve", "--db", path.join(tmp, "live.db"), "--state", path.join(tmp, "live.state"),
    "--key-file", path.join(tmp, "key"), "--listen", "127.0.0.1:0", "--quiet"], { stdio: ["ignore", "ignore", "pipe"] });
  let serr = "";
  const exited = new Promise(r => server.on("exit", (code, sig) => r({ code, sig })));
  const port = await new Promise((resolve, reject) => {
    server.stderr.on("data", d => {
      serr += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(serr);
      if (m) resolve(Number(m[1]));
    });
    exited.then(e => reject(new Error("the server exited: " + JSON.stringify(e) + " " + serr)));
  });
  const q = "?key=" + KEY;
  // the first 70 % of the day's webhooks, 8 at a time
  const bodies = fs.readFileSync(bodiesFile, "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l).body);
  const first = bodies.slice(0, Math.floor(bodies.length * 0.7));
  let next = 0, bad = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < first.length) if ((await request(port, "POST", "/timed/ingest" + q, first[next++])).status !== 200) bad++;
  }));
  ok(bad === 0, `${first.length} webhooks answered 200 before the page opens`);

  const b = launch(CHROMIUM);
  const problems = [], requests = [];
  try {
    const { targetId } = await b.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await b.send("Target.attachToTarget", { targetId, flatten: true });
    const s = (m, p) => b.send(m, p, sessionId);
    let navigations = 0;
    b.on(msg => {
      if (msg.sessionId !== sessionId) return;
      if (msg.method === "Runtime.consoleAPICalled" && (msg.params.type === "error" || msg.params.type === "assert"))
        problems.push("console." + msg.params.type + ": " + msg.params.args.map(a => a.value ?? a.description).join(" "));
      if (msg.method === "Runtime.exceptionThrown") problems.push("exception: " + JSON.stringify(msg.params.exceptionDetails.exception?.description || msg.params.exceptionDetails.text));
      if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") problems.push("log: " + msg.params.entry.text);
      if (msg.method === "Network.requestWillBeSent") requests.push(msg.params.request.url);
      if (msg.method === "Page.frameNavigated" && !msg.params.frame.parentId) navigations++;
    });
    for (const d of ["Runtime", "Log", "Network", "Page"]) await s(d + ".enable");
    await s("Emulation.setDeviceMetricsOverride", { width: 1440, height: 1000, deviceScaleFactor: 1, mobile: false });
    const evalJS = async expr => {
      const r = await s("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error("evaluate " + expr.slice(0, 80) + ": " + (r.exceptionDetails.exception?.description || r.exceptionDetails.text));
      return r.result.value;
    };
    await s("Page.navigate", { url: `http://127.0.0.1:${port}/${q}` });
    let loaded = 0;
    for (let i = 0; i < 200 && !loaded; i++) {
      loaded = await evalJS("window.BOARD ? BOARD.loaded : 0").catch(() => 0);
      if (!loaded) await wait(50);
    }
    ok(loaded > 0, "the live board loads");
    const shown = () => evalJS(`[...document.querySelectorAll('#board .lane')].map(l => [l.dataset.lane, [...l.querySelectorAll('.chip')].map(c => c.dataset.t + (c.dataset.badge ? " " + c.dataset.badge : ""))])`);
    const lanesNow = async () => JSON.parse((await request(port, "GET", "/retape/lanes" + q)).text)
      .map(l => [l.lane, l.tickers.map(t => t.ticker + (t.badge ? " " + t.badge : ""))]);
    const want = await lanesNow();
    const got = await shown();
    const chips = want.reduce((a, l) => a + l[1].length, 0);
    ok(want.length === 8 && chips > 50 && JSON.stringify(want) === JSON.stringify(got),
      `the 8 lanes shown = GET /retape/lanes (${chips} tickers)`, JSON.stringify(got).slice(0, 300));
    const byDay = JSON.parse((await request(port, "GET", "/retape/trades" + q + "&by=day")).text);
    const dayRows = await evalJS(`[...document.querySelectorAll('#t-day tbody tr')].map(r => [r.cells[0].textContent, +r.cells[1].textContent])`);
    ok(byDay.length > 0 && JSON.stringify(dayRows) === JSON.stringify(byDay.map(d => [d.day, d.entries])),
      `Trade By Day shown = GET /retape/trades?by=day (${byDay.length} day(s))`, JSON.stringify(dayRows));
    const byPnl = JSON.parse((await request(port, "GET", "/retape/trades" + q + "&by=pnl")).text);
    const pnlRows = await evalJS(`document.querySelectorAll('#t-pnl tbody tr').length`);
    ok(byPnl.length > 0 && pnlRows === byPnl.length, `Trade By P&L shows one row per ticker (${byPnl.length})`, pnlRows);
    const hist = JSON.parse((await request(port, "GET", "/retape/trades" + q + "&by=history")).text);
    const histRows = await evalJS(`document.querySelectorAll('#t-history tbody tr').length`);
    ok(hist.length > 0 && histRows === Math.min(200, hist.length), `Trade History shows the history (${hist.length} events)`, histRows);
    const chipTime = await evalJS(`(document.querySelector('#board .chip small') || {}).textContent || ""`);
    ok(/^\d\d:\d\d:\d\d$/.test(chipTime), `each chip shows its last receipt's time (${chipTime} ET)`, chipTime);
    await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "live-board.png"), Buffer.from(r.data, "base64")));

    // one webhook: a new ticker at 11:00 ET; its chip must be on the page within a second of the 200
    const ts = 1770048000000;
    const body = JSON.stringify({ ticker: "ZZLIVE", ts, htf_score: 12, ltf_score: 4, price: 10, state: "HTF_BULL_LTF_BULL" });
    const loadsBefore = await evalJS("BOARD.loaded");
    const res = await request(port, "POST", "/timed/ingest" + q, body);
    const t200 = Date.now();
    let seenAt = 0, chip = null;
    while (Date.now() - t200 < 3000) {
      chip = await evalJS(`(() => { const c = document.querySelector('#board .chip[data-t="ZZLIVE"]'); return c ? { lane: c.closest('.lane').dataset.lane, time: c.querySelector('small').textContent } : null; })()`);
      if (chip) { seenAt = Date.now(); break; }
      await wait(10);
    }
    const lag = seenAt - t200;
    ok(res.status === 200 && chip && lag <= 1000, `a webhook's effect is on the page ${lag} ms after its 200 (at most 1 s)`, JSON.stringify({ status: res.status, chip, lag }));
    const lane = (await lanesNow()).find(l => l[1].includes("ZZLIVE"));
    ok(chip && lane && chip.lane === lane[0] && chip.time === "11:00:00", `its chip is in the lane GET /retape/lanes gives (${lane && lane[0]}) with its receipt's time (11:00:00 ET)`, JSON.stringify(chip));
    ok((await evalJS("BOARD.events")) >= 1 && (await evalJS("BOARD.loaded")) > loadsBefore && navigations === 1,
      "pushed by a server-sent event; the page never reloaded", `navigations ${navigations}`);
    const off = requests.filter(u => !u.startsWith(`http://127.0.0.1:${port}/`));
    ok(off.length === 0, "no request leaves the server", off.join("\n"));
    ok(problems.length === 0, "no console error or exception", problems.join("\n"));
    await s("Page.captureScreenshot", { format: "png" }).then(r => fs.writeFileSync(path.join(outDir, "live-board-after.png"), Buffer.from(r.data, "base64")));

    server.kill("SIGTERM");
    const e = await Promise.race([exited, wait(15000).then(() => null)]);
    ok(e && e.code === 0, "SIGTERM with the board's event stream open: the server stops cleanly", JSON.stringify(e) + " " + serr.slice(-500));
  } catch (e) {
    ok(false, "browser session", e.stack);
  } finally {
    await b.close();
    server.kill("SIGKILL");
  }
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})();
