// lib.mjs — what the Node tests of `retape serve`'s live ingest share: TAP
// lines, a seeded generator (the same sequence as before this module), the
// day's webhook bodies in buckets, and one HTTP request over a keep-alive agent.
import http from "node:http";
import { readFileSync } from "node:fs";

// tap(ok, name, detail): one TAP line, the detail's first 10 lines under a failure.
export function tap(ok, name, detail) {
  console.log(`${ok ? "ok" : "not ok"} - ${name}`);
  if (!ok && detail) console.log(String(detail).split("\n").slice(0, 10).map((l) => "#   " + l).join("\n"));
}

// lcg(seed) -> rand(n): 0..n-1, a linear congruential generator (reproducible runs).
export function lcg(seed) {
  return (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
}

// readBodies(path) -> [{bucket, body, ...}]: the lines day_bodies.lua wrote.
export function readBodies(path) {
  return readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

// shuffledBuckets(bodies, rand) -> [[bodies of a bucket, shuffled], ...] in bucket order.
export function shuffledBuckets(bodies, rand) {
  const out = [];
  for (let i = 0; i < bodies.length;) {
    let j = i;
    while (j + 1 < bodies.length && bodies[j + 1].bucket === bodies[i].bucket) j++;
    const b = bodies.slice(i, j + 1);
    for (let k = b.length - 1; k > 0; k--) { const m = rand(k + 1); [b[k], b[m]] = [b[m], b[k]]; }
    out.push(b);
    i = j + 1;
  }
  return out;
}

// request(agent, port, method, path [, body]) -> {status, text, headers}; a body is sent as JSON.
export function request(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent,
      headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { text += c; });
      res.on("end", () => resolve({ status: res.statusCode, text, headers: res.headers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
