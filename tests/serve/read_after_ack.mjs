// read_after_ack.mjs — the live ingest's group commit and read barrier on
// loopback: a `retape serve` this script starts gets BODIES' webhooks (one
// bucket after the other, each bucket's shuffled and sent on CONNECTIONS
// concurrent connections: no receipt is late, so no pass recomputes later
// results (sent all at once, a receipt of a bucket can be stored after the
// next bucket's; a pass's recomputation can then leave a ticker's version
// of a bucket built from part of its rows until the next pass: seen here
// about once in five runs, not solved yet); each sender, as soon
// as its webhook is answered 200, reads
// GET /timed/latest?ticker=T and GET /timed/all and checks that both
// already hold that receipt (the ticker's latest state is at its ts): the
// answer comes once the receipt is durable, the classification just after,
// and a read sent after the answer waits for it.  Then SIGTERM (exit 0).
// Writes the ids answered 200 to ACKED; prints TAP lines.
// env: RETAPE, DB, STATE, BODIES (from day_bodies.lua), ACKED, LOG, CONNECTIONS (64), SEED (1)
import { spawn } from "node:child_process";
import http from "node:http";
import { writeFileSync, openSync } from "node:fs";
import { tap, lcg, readBodies, shuffledBuckets, request as requestOn } from "./lib.mjs";

const env = process.env;
const connections = Number(env.CONNECTIONS ?? 64);
const rand = lcg(Number(env.SEED ?? 1));

const bodies = readBodies(env.BODIES);
const buckets = shuffledBuckets(bodies, rand);
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
    const data = latest.status === 200 ? JSON.parse(latest.text).data : null;
    if (!data || !(data.ts >= ts)) { // (a later receipt of the ticker in the same bucket may be in)
      stats.stale++;
      stats.firstStale ??= `${reply.receipt_id}: ts ${ts}, GET /timed/latest: HTTP ${latest.status}, its ts ${data && data.ts} (${latest.text.slice(0, 200)})`;
    }
    // one in 16: the whole board's data too
    if (stats.ok % 16 === 0) {
      const all = await request("GET", "/timed/all");
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
console.log(`# ${total} webhooks in ${buckets.length} buckets on ${connections} connections, each followed by its read`);
tap(stats.bad === null && stats.ok === total, `every webhook answered 200 (${stats.ok} of ${total})`, stats.bad);
tap(stats.stale === 0, `GET /timed/latest right after each 200 holds its receipt (${stats.stale} did not)`, stats.firstStale);
tap(stats.allStale === 0, `GET /timed/all right after a 200 holds its receipt (${stats.allStale} did not)`, stats.firstAllStale);
tap(e.code === 0, "SIGTERM at the end: exit 0", JSON.stringify(e));
