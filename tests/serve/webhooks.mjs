// webhooks.mjs — a day of TradingView webhooks through POST /timed/ingest of
// a `retape serve` this script starts, with CONNECTIONS concurrent
// connections, shuffled within each bucket, DUP_PCT % sent twice and LATE_PCT %
// held back 1-6 buckets; the server is killed with SIGKILL KILLS times at
// random points and restarted on the same port (a request that got no answer
// is sent again).  At the end: SIGTERM (exit 0 expected).  Writes the ids of
// the receipts answered 200 to ACKED (one per line) and prints TAP lines and
// figures.  The server answers a webhook once it is durable and classifies
// it just after; the run ends with a read (GET /timed/latest, which waits
// for the classification of everything answered before it), so the time
// and rate count the classification of every receipt.  With BENCH=1: no
// kills, no duplicates or late ones, and it prints the sustained rate and
// p50/p99 latency only.
// env: RETAPE, DB, STATE, KEY, BODIES (from day_bodies.lua), ACKED, LOG,
//      CONNECTIONS (64), KILLS (3), DUP_PCT (1), LATE_PCT (1), SEED (1)
import { spawn } from "node:child_process";
import http from "node:http";
import { readFileSync, writeFileSync, openSync } from "node:fs";
import { tap, lcg, readBodies, request } from "./lib.mjs";

const env = process.env;
const bench = env.BENCH === "1";
const connections = Number(env.CONNECTIONS ?? 64);
const kills = bench ? 0 : Number(env.KILLS ?? 3);
const dupPct = bench ? 0 : Number(env.DUP_PCT ?? 1);
const latePct = bench ? 0 : Number(env.LATE_PCT ?? 1);
const rand = lcg(Number(env.SEED ?? 1));

// ---- arrival order
const bodies = readBodies(env.BODIES);
const arrivals = [];
const held = new Map();
for (let i = 0; i < bodies.length;) {
  let j = i;
  while (j + 1 < bodies.length && bodies[j + 1].bucket === bodies[i].bucket) j++;
  const b = bodies.slice(i, j + 1);
  for (let k = b.length - 1; k > 0; k--) { const m = rand(k + 1); [b[k], b[m]] = [b[m], b[k]]; }
  for (const h of held.get(bodies[i].bucket) ?? []) arrivals.push(h);
  held.delete(bodies[i].bucket);
  for (const r of b) {
    if (rand(100) < latePct) {
      const at = r.bucket + 300000 * (1 + rand(6));
      if (!held.has(at)) held.set(at, []);
      held.get(at).push(r);
    } else {
      arrivals.push(r);
      if (rand(100) < dupPct) arrivals.push(r);
    }
  }
  i = j + 1;
}
for (const list of held.values()) arrivals.push(...list);

// ---- the server
let server = null, port = 0, serverExit = null;
const log = openSync(env.LOG, "a");
function start() {
  return new Promise((resolve, reject) => {
    const args = ["serve", "--db", env.DB, "--state", env.STATE, "--listen", `127.0.0.1:${port}`, "--quiet"];
    if (env.KEY) args.push("--key-file", env.KEY_FILE); else args.push("--no-auth");
    const child = spawn(env.RETAPE, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    const t = setTimeout(() => reject(new Error("no 'listening' line in 60 s: " + err)), 60000);
    child.stderr.on("data", (d) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m && !server) { port = Number(m[1]); server = child; clearTimeout(t); resolve(); }
      writeFileSync(log, d);
    });
    child.on("exit", (code, sig) => {
      serverExit = { code, sig };
      if (server === child) server = null; else { clearTimeout(t); reject(new Error(`the server exited (${code ?? sig}): ${err}`)); }
    });
  });
}
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the senders
const acked = new Set();
const stats = { sent: 0, ok: 0, duplicate: 0, retried: 0, bad: 0, firstBad: null, lat: [] };
let next = 0, restarting = null, killed = 0, lastTicker = null;
const killAt = Array.from({ length: kills }, () => Math.floor(arrivals.length * (0.1 + rand(80) / 100))).sort((a, b) => a - b);

// node:http with keep-alive (one socket per sender): a fraction of fetch's CPU per request
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const get = (path) => request(agent, port, "GET", path);
const post = (body) => request(agent, port, "POST", "/timed/ingest" + (env.KEY ? "?key=" + encodeURIComponent(env.KEY) : ""), body);

async function send(r) {
  for (;;) {
    if (restarting) await restarting;
    const t0 = performance.now();
    let res, text;
    try {
      res = await post(r.body);
      text = res.text;
    } catch (e) {
      stats.retried++;           // killed under it: no answer, send it again
      await wait(20);
      continue;
    }
    if (res.status === 503) { stats.retried++; await wait(20); continue; }
    stats.lat.push(performance.now() - t0);
    stats.sent++;
    if (res.status !== 200) {
      stats.bad++;
      if (!stats.firstBad) stats.firstBad = `HTTP ${res.status}: ${text.slice(0, 300)}`;
      return;
    }
    const body = JSON.parse(text);
    acked.add(body.receipt_id);
    stats.ok++;
    if (body.duplicate) stats.duplicate++;
    lastTicker = body.ticker;
    return;
  }
}

async function worker() {
  while (next < arrivals.length) {
    const i = next++;
    if (killed < killAt.length && i >= killAt[killed] && !restarting) {
      killed++;
      restarting = (async () => {
        await wait(rand(50));
        server.kill("SIGKILL");
        while (server) await wait(5);
        await start();
        restarting = null;
      })();
    }
    await send(arrivals[i]);
  }
}

await start();
const t0 = performance.now();
await Promise.all(Array.from({ length: connections }, worker));
const answered = (performance.now() - t0) / 1000;
// the classification of everything answered: a read waits for it
let settled = null;
for (;;) {
  if (restarting) await restarting;
  try { settled = await get("/timed/latest?ticker=" + encodeURIComponent(lastTicker)); break; } catch { await wait(20); }
}
const secs = (performance.now() - t0) / 1000;
const s = server;
let serverCpu = NaN;
try { // utime + stime of the server (Linux), in clock ticks of 1/100 s
  const f = readFileSync(`/proc/${s.pid}/stat`, "utf8").split(") ")[1].split(" ");
  serverCpu = (Number(f[11]) + Number(f[12])) / 100;
} catch { /* not Linux */ }
s.kill("SIGTERM");
while (server) await wait(5);
writeFileSync(env.ACKED, [...acked].join("\n") + "\n");
stats.lat.sort((a, b) => a - b);
const q = (p) => stats.lat[Math.min(stats.lat.length - 1, Math.floor(stats.lat.length * p))].toFixed(1);
const rate = Math.round(stats.sent / secs);
if (bench) {
  const cpu = process.cpuUsage();
  console.log(`ingest: ${stats.sent} webhooks in ${secs.toFixed(2)} s: ${rate} webhooks/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms ` +
    `(${connections} connections; the last answered at ${answered.toFixed(2)} s, all classified at ${secs.toFixed(2)} s; ` +
    `CPU: server ${serverCpu.toFixed(1)} s, client ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`);
  process.exit(stats.bad === 0 && settled.status === 200 ? 0 : 1);
}
console.log(`# ${arrivals.length} webhooks (${bodies.length} receipts) on ${connections} connections in ${secs.toFixed(2)} s (${rate}/s), ` +
  `${killed} kills, ${stats.retried} resent, ${stats.duplicate} duplicates, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
tap(stats.bad === 0, "every webhook answered 200", stats.firstBad);
tap(settled.status === 200, "a read after the last answer: classified", settled.text.slice(0, 300));
tap(acked.size === bodies.length, `every receipt acknowledged (${acked.size} of ${bodies.length})`);
tap(killed === kills, `the server was killed ${killed} times and restarted`);
tap(stats.duplicate > 0 || dupPct === 0, "duplicates answered as such");
tap(serverExit && serverExit.code === 0, "SIGTERM at the end: exit 0",
  JSON.stringify(serverExit) + "\n" + readFileSync(env.LOG, "utf8").split("\n").slice(-8).join("\n"));
