// stop_storm.mjs — SIGTERM in the middle of everything a server holds:
// RUNS times, a fresh `retape serve` (8 threads) gets 40 clients opening a
// connection per request (GET /timed/health), 8 sending webhooks on
// keep-alive connections (deferred answers: POST /timed/ingest of the
// bodies in BODIES), 4 calling the writer on keep-alive connections (POST
// /timed/admin/refresh-latest-from-ingest) and 2 event streams open (GET
// /live/events); then SIGTERM.  Every run must exit 0 with "stopped
// cleanly" within 30 s.  PRELOAD (late_removal.so) is preloaded into the
// servers: with it, libmicrohttpd's epoll loop aborted at every run; a
// writer call on a kept-alive connection after the drain deadlocked the
// stop (the writer's mutex held across the pool threads' join).  Prints
// TAP lines.
// env: RETAPE, DIR (a scratch directory), BODIES (day_bodies.lua's lines),
//      PRELOAD, RUNS (12), LOG (the failing or last server's stderr)
import { spawn } from "node:child_process";
import http from "node:http";
import { writeFileSync } from "node:fs";
import { tap, readBodies } from "./lib.mjs";

const env = process.env;
const runs = Number(env.RUNS ?? 12);
const bodies = readBodies(env.BODIES).map((b) => b.body);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

// one request; settles on the answer's end, an error or the socket closing
// (a server that goes after the headers emits neither end nor error)
function call(port, agent, method, path, body, onResponse) {
  return new Promise((done) => {
    const q = http.request({ host: "127.0.0.1", port, method, path, agent,
      headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, (res) => {
      if (onResponse) onResponse(res);
      res.resume();
      res.on("end", done);
      res.on("error", done);
      res.on("close", done);
    });
    q.on("error", done);
    q.on("close", done);
    q.end(body);
  });
}

let failed = null, done = 0;
for (let k = 0; k < runs && !failed; k++) {
  const child = spawn(env.RETAPE, ["serve", "--db", `${env.DIR}/storm.db`, "--state", `${env.DIR}/storm.state`,
    "--listen", "127.0.0.1:0", "--no-auth", "--quiet", "--threads", "8"], { stdio: ["ignore", "ignore", "pipe"],
    env: env.PRELOAD ? { ...env, LD_PRELOAD: env.PRELOAD, ASAN_OPTIONS: `${env.ASAN_OPTIONS ?? ""}:verify_asan_link_order=0` } : env });
  let err = "", port = 0;
  const exited = new Promise((r) => child.on("exit", (code, sig) => r({ code, sig })));
  child.stderr.on("data", (d) => { err += d; });
  for (let i = 0; i < 600 && !port; i++) {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
    if (m) port = Number(m[1]);
    else await wait(100);
  }
  if (!port) {
    child.kill("SIGKILL");
    failed = `run ${k + 1}: no 'listening' line in 60 s\n${err}`;
    break;
  }
  let stop = false;
  const loop = async (fn) => { while (!stop) await fn(); };
  const fresh = () => call(port, false, "GET", "/timed/health");
  const kept = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let next = k * 97;
  const webhook = () => call(port, kept, "POST", "/timed/ingest", bodies[next++ % bodies.length]);
  const admin = () => call(port, kept, "POST", "/timed/admin/refresh-latest-from-ingest", "{}");
  const stream = () => call(port, false, "GET", "/live/events");
  const clients = [
    ...Array.from({ length: 40 }, () => loop(fresh)),
    ...Array.from({ length: 8 }, () => loop(webhook)),
    ...Array.from({ length: 4 }, () => loop(admin)),
    ...Array.from({ length: 2 }, () => loop(stream)),
  ];
  await wait(200 + (k % 7) * 30);
  child.kill("SIGTERM");
  const e = await Promise.race([exited, wait(30000).then(() => null)]);
  stop = true;
  if (!e) {
    child.kill("SIGKILL");
    await exited;
  }
  kept.destroy();
  await Promise.race([Promise.all(clients), wait(10000)]);
  writeFileSync(env.LOG, err);
  if (!e) failed = `run ${k + 1}: no exit 30 s after SIGTERM (killed)\n${err.split("\n").slice(-6).join("\n")}`;
  else if (e.code !== 0 || !/stopped cleanly/.test(err)) failed = `run ${k + 1}: ${JSON.stringify(e)}\n${err.split("\n").slice(-6).join("\n")}`;
  else done++;
}
tap(!failed, `SIGTERM amid new connections, deferred webhooks, writer calls and event streams: exit 0, stopped cleanly (${done} of ${runs} runs)`, failed);
process.exit(0);
