// stop_storm.mjs — SIGTERM while new connections pour in: RUNS times, a
// fresh `retape serve` (8 threads) gets 48 clients opening a connection per
// request (GET /timed/health), then SIGTERM; every run must exit 0 with
// "stopped cleanly".  PRELOAD (late_removal.so) is preloaded into the
// servers: it reproduced the abort of libmicrohttpd's epoll loop at every
// run.  Prints TAP lines.
// env: RETAPE, DIR (a scratch directory), PRELOAD, RUNS (12), LOG (the last server's stderr)
import { spawn } from "node:child_process";
import http from "node:http";
import { writeFileSync } from "node:fs";
import { tap } from "./lib.mjs";

const env = process.env;
const runs = Number(env.RUNS ?? 12);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
let failed = null, done = 0;
for (let k = 0; k < runs && !failed; k++) {
  const child = spawn(env.RETAPE, ["serve", "--db", `${env.DIR}/storm.db`, "--state", `${env.DIR}/storm.state`,
    "--listen", "127.0.0.1:0", "--no-auth", "--quiet", "--threads", "8"], { stdio: ["ignore", "ignore", "pipe"],
    env: env.PRELOAD ? { ...env, LD_PRELOAD: env.PRELOAD, ASAN_OPTIONS: `${env.ASAN_OPTIONS ?? ""}:verify_asan_link_order=0` } : env });
  let err = "", port = 0;
  const exited = new Promise((r) => child.on("exit", (code, sig) => r({ code, sig })));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no 'listening' line in 60 s: " + err)), 60000);
    child.stderr.on("data", (d) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m && !port) { port = Number(m[1]); clearTimeout(t); resolve(); }
    });
  });
  let stop = false;
  const client = async () => {
    while (!stop) {
      await new Promise((r) => {
        const q = http.get({ host: "127.0.0.1", port, path: "/timed/health", agent: false }, (res) => { res.resume(); res.on("end", r); });
        q.on("error", r);
      });
    }
  };
  const clients = Array.from({ length: 48 }, client);
  await wait(150 + (k % 7) * 20);
  child.kill("SIGTERM");
  const e = await exited;
  stop = true;
  await Promise.all(clients);
  writeFileSync(env.LOG, err);
  if (e.code !== 0 || !/stopped cleanly/.test(err)) failed = `run ${k + 1}: ${JSON.stringify(e)}\n${err.split("\n").slice(-6).join("\n")}`;
  else done++;
}
tap(!failed, `SIGTERM under a storm of new connections: exit 0, stopped cleanly (${done} of ${runs} runs)`, failed);
