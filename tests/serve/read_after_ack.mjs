// read_after_ack.mjs — the live ingest's group commit, read barrier and
// invariant on loopback: a `retape serve` this script starts gets BODIES'
// webhooks on CONNECTIONS concurrent connections, in the order ORDER says:
//   overlap   (default) every bucket shuffled, the buckets one after the
//             other with no pause between them: the senders carry a bucket's
//             last receipts and the next bucket's first ones at once
//   shuffled  all receipts shuffled across the buckets (many late ones)
//   buckets   one bucket after the other, each ended before the next starts
// Each sender, as soon as its webhook is answered 200, reads
// GET /timed/latest?ticker=T (and every 16th time GET /timed/all) and
// checks that it already holds that receipt (the ticker's latest state is at
// its ts or later): the answer comes once the receipt is durable, the
// classification just after, and a read sent after the answer waits for it.
// Then SIGTERM (exit 0).  Then the invariant, for every read: its answer
// says which receipts the results cover (X-Retape-Receipts: the receipts
// file's rows up to that rowid), and each ticker it shows must be exactly
// what a fresh replay of that ticker's rows up to that rowid gives
// (prefix_states.lua; tickers are independent), /timed/all showing every
// ticker that has one and no other: a state no fresh replay gives (a
// ticker's version of a bucket built from only some of its rows) fails.
// Writes the ids answered 200 to ACKED; prints TAP lines.
// env: RETAPE, DB, STATE, BODIES (from day_bodies.lua), ACKED, LOG, DAY, CONNECTIONS (64), SEED (1),
// ORDER (overlap), TMP (for the fresh replays' lines: DB's folder)
import { spawn, execFileSync } from "node:child_process";
import http from "node:http";
import { writeFileSync, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { tap, lcg, readBodies, shuffledBuckets, request as requestOn } from "./lib.mjs";

const env = process.env;
const connections = Number(env.CONNECTIONS ?? 64);
const rand = lcg(Number(env.SEED ?? 1));

const bodies = readBodies(env.BODIES);
const order = env.ORDER ?? "overlap";
let buckets = shuffledBuckets(bodies, rand);
if (order === "overlap") buckets = [buckets.flat()];
else if (order === "shuffled") {
  const all = buckets.flat();
  for (let k = all.length - 1; k > 0; k--) { const m = rand(k + 1); [all[k], all[m]] = [all[m], all[k]]; }
  buckets = [all];
} else if (order !== "buckets") throw new Error("ORDER: overlap, shuffled or buckets, not " + order);
const total = bodies.length;

const log = openSync(env.LOG, "a");
const child = spawn(env.RETAPE, ["serve", "--db", env.DB, "--state", env.STATE, "--listen", "127.0.0.1:0", "--quiet",
  "--no-auth"], { stdio: ["ignore", "ignore", "pipe"] });
const exited = new Promise((r) => child.on("exit", (code, sig) => r({ code, sig })));
const port = await new Promise((resolve, reject) => {
  let err = "";
  child.stderr.on("data", (d) => {
    err += d;
    writeFileSync(log, d);
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
    if (m) resolve(Number(m[1]));
  });
  exited.then((e) => reject(new Error("the server exited: " + JSON.stringify(e) + " " + err)));
});

const agent = new http.Agent({ keepAlive: true, maxSockets: connections * 2 });
const request = (method, path, body) => requestOn(agent, port, method, path, body);

const acked = [];
const stats = { ok: 0, bad: null, stale: 0, firstStale: null, allStale: 0, firstAllStale: null };
const reads = []; // every read's answer, checked against fresh replays at the end
let arrivals = [], next = 0;
async function sender() {
  while (next < arrivals.length) {
    const r = arrivals[next++];
    const ts = JSON.parse(r.body).ts;
    const res = await request("POST", "/timed/ingest", r.body);
    if (res.status !== 200) { stats.bad ??= `HTTP ${res.status}: ${res.text.slice(0, 300)}`; continue; }
    const reply = JSON.parse(res.text);
    acked.push(reply.receipt_id);
    stats.ok++;
    const latest = await request("GET", "/timed/latest?ticker=" + encodeURIComponent(reply.ticker));
    reads.push({ ticker: reply.ticker, status: latest.status, text: latest.text, covers: latest.headers["x-retape-receipts"] });
    const data = latest.status === 200 ? JSON.parse(latest.text).data : null;
    if (!data || !(data.ts >= ts)) { // (a later receipt of the ticker in the same bucket may be in)
      stats.stale++;
      stats.firstStale ??= `${reply.receipt_id}: ts ${ts}, GET /timed/latest: HTTP ${latest.status}, its ts ${data && data.ts} (${latest.text.slice(0, 200)})`;
    }
    // one in 16: the whole board's data too
    if (stats.ok % 16 === 0) {
      const all = await request("GET", "/timed/all");
      reads.push({ all: true, status: all.status, text: all.text, covers: all.headers["x-retape-receipts"] });
      const d = all.status === 200 ? JSON.parse(all.text).data[reply.ticker] : null;
      if (!d || d.ts < ts) {
        stats.allStale++;
        stats.firstAllStale ??= `${reply.receipt_id}: ts ${ts}, /timed/all has ${d ? d.ts : "nothing"}`;
      }
    }
  }
}
for (const b of buckets) {
  arrivals = b;
  next = 0;
  await Promise.all(Array.from({ length: connections }, sender));
}
child.kill("SIGTERM");
const e = await exited;
writeFileSync(env.ACKED, acked.join("\n") + "\n");
console.log(`# ${total} webhooks (${order}) in ${buckets.length} round(s) on ${connections} connections, each followed by its read`);
tap(stats.bad === null && stats.ok === total, `every webhook answered 200 (${stats.ok} of ${total})`, stats.bad);
tap(stats.stale === 0, `GET /timed/latest right after each 200 holds its receipt (${stats.stale} did not)`, stats.firstStale);
tap(stats.allStale === 0, `GET /timed/all right after a 200 holds its receipt (${stats.allStale} did not)`, stats.firstAllStale);
tap(e.code === 0, "SIGTERM at the end: exit 0", JSON.stringify(e) + "\n" + readFileSync(env.LOG, "utf8").split("\n").slice(-8).join("\n"));

// --- the invariant, read by read: each ticker shown = a fresh replay of its rows up to the read's rowid
const linesPath = (env.TMP ?? dirname(env.DB)) + "/prefix_states.txt";
execFileSync(env.RETAPE, ["run", "tests/serve/prefix_states.lua", env.DB, env.DAY, linesPath], { stdio: ["ignore", "ignore", "inherit"] });
const expected = new Map(); // ticker -> {rowids: [...], states: [...]} in rowid order
for (const line of readFileSync(linesPath, "utf8").split("\n").filter(Boolean)) {
  const [rowid, ticker, state] = line.split("\t");
  if (!expected.has(ticker)) expected.set(ticker, { rowids: [], states: [] });
  const e = expected.get(ticker);
  e.rowids.push(Number(rowid));
  e.states.push(state === "null" ? null : canonical(JSON.parse(state)));
}
// the ticker's state over the rows up to `covers` (null: none)
function stateAt(ticker, covers) {
  const e = expected.get(ticker);
  if (!e) return null;
  let lo = 0, hi = e.rowids.length; // the first row after covers
  while (lo < hi) { const mid = (lo + hi) >> 1; if (e.rowids[mid] <= covers) lo = mid + 1; else hi = mid; }
  return lo === 0 ? null : e.states[lo - 1];
}
// JSON with every object's keys sorted (the server's key order is its own)
function canonical(v) {
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (v && typeof v === "object") return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  return JSON.stringify(v);
}
const inv = { reads: reads.length, tickers: 0, bad: 0, first: null, uncovered: 0, watermarks: new Set() };
const wrong = (why) => { inv.bad++; inv.first ??= why; };
for (const r of reads) {
  const covers = Number(r.covers);
  if (!Number.isInteger(covers) || covers < 1) { inv.uncovered++; wrong(`a read without X-Retape-Receipts: ${r.covers}`); continue; }
  inv.watermarks.add(covers);
  if (!r.all) {
    const want = stateAt(r.ticker, covers);
    const got = r.status === 200 ? canonical(JSON.parse(r.text).data) : null;
    inv.tickers++;
    if (got !== want) wrong(`/timed/latest?ticker=${r.ticker} covering rows up to ${covers}: HTTP ${r.status} ${(got ?? r.text).slice(0, 300)}\n  a fresh replay of its rows up to ${covers}: ${String(want).slice(0, 300)}`);
    continue;
  }
  const data = r.status === 200 ? JSON.parse(r.text).data : {};
  for (const T of new Set([...Object.keys(data), ...expected.keys()])) {
    const want = stateAt(T, covers);
    const got = data[T] === undefined ? null : canonical(data[T]);
    inv.tickers++;
    if (got !== want) wrong(`/timed/all covering rows up to ${covers}, ticker ${T}: ${String(got).slice(0, 300)}\n  a fresh replay of its rows up to ${covers}: ${String(want).slice(0, 300)}`);
  }
}
console.log(`# ${inv.reads} reads over ${inv.watermarks.size} watermarks, ${inv.tickers} ticker states compared`);
tap(inv.bad === 0, `every read shows each ticker as a fresh replay of its receipts up to the rowid the read covers (${inv.bad} did not)`, inv.first);
