// errors.mjs — every error status of `retape serve`, as JSON {ok:false,
// error}.  env: BASE (server with key KEY, default rules), SLOW_BASE
// (server --no-auth with slow_rules.lua, fresh store).  Prints TAP lines.
import net from "node:net";
const base = process.env.BASE, key = process.env.KEY, slow = process.env.SLOW_BASE;
const day = "2026-02-02";
let failures = 0;
const tap = (ok, name, extra) => {
  if (!ok) failures++;
  console.log(`${ok ? "ok" : "not ok"} - ${name}${!ok && extra ? " # got " + extra : ""}`);
};

async function call(method, url, opts = {}) {
  const res = await fetch(url, { method, ...opts });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* checked by the caller */ }
  return { status: res.status, body, text };
}

async function expectError(name, method, url, status, mention, opts) {
  const r = await call(method, url, opts);
  const ok = r.status === status && r.body && r.body.ok === false && typeof r.body.error === "string" &&
    (!mention || r.body.error.includes(mention));
  tap(ok, `${status} ${name}`, `${r.status} ${r.text.slice(0, 160)}`);
}

const ingest = (q) => `${base}/timed/admin/replay-ingest?${new URLSearchParams(q)}`;

await expectError("bad date names date", "POST", ingest({ key, date: "2026-02-30" }), 400, "date");
await expectError("malformed date names date", "POST", ingest({ key, date: "02/02/2026" }), 400, "date");
await expectError("bucket off the 5-minute grid names bucket", "POST", ingest({ key, date: day, bucket: "1770042600001" }), 400, "bucket");
await expectError("bucket not a number names bucket", "POST", ingest({ key, date: day, bucket: "09:30" }), 400, "bucket");
await expectError("limit 0 names limit", "POST", ingest({ key, date: day, limit: "0" }), 400, "limit");
await expectError("limit over 200 names limit", "POST", ingest({ key, date: day, limit: "500" }), 400, "limit");
await expectError("limit not a number names limit", "POST", ingest({ key, date: day, limit: "ten" }), 400, "limit");
await expectError("negative bucketOffset names bucketOffset", "POST", ingest({ key, date: day, bucketOffset: "-1" }), 400, "bucketOffset");
await expectError("refresh limit over 50 names limit", "POST", `${base}/timed/admin/refresh-latest-from-ingest?key=${key}&limit=51`, 400, "limit");
await expectError("latest without ticker names ticker", "GET", `${base}/timed/latest`, 400, "ticker");
await expectError("lanes with a bad at names at", "GET", `${base}/retape/lanes?key=${key}&at=noon`, 400, "at");
await expectError("trades by an unknown view names by", "GET", `${base}/retape/trades?key=${key}&by=week`, 400, "by");
await expectError("missing key", "POST", ingest({ date: day }), 401, "key");
await expectError("wrong key", "POST", ingest({ key: key + "x", date: day }), 401, "key");
await expectError("wrong key of the same length", "POST", ingest({ key: key.replace(/.$/, "?"), date: day }), 401, "key");
await expectError("force-sync without key", "POST", `${base}/timed/admin/force-sync`, 401, "key");
await expectError("retape endpoint without key", "GET", `${base}/retape/runs`, 401, "key");
await expectError("unknown path", "GET", `${base}/timed/nosuch`, 404, "/timed/nosuch");
await expectError("unknown ticker", "GET", `${base}/timed/latest?ticker=NOSUCHT`, 404, "NOSUCHT");
await expectError("GET on replay-ingest", "GET", ingest({ key, date: day }), 405, "POST");
await expectError("POST on /timed/all", "POST", `${base}/timed/all`, 405, "GET");
await expectError("body over --max-body", "POST", ingest({ key, date: day }), 413, "body",
  { body: "x".repeat(200 * 1024), headers: { "content-type": "application/octet-stream" } });
await expectError("headers over --max-header", "GET", `${base}/timed/health`, 431, "headers",
  { headers: { "x-filler": "y".repeat(12 * 1024) } });

// a chunked body over the limit (no Content-Length): raw socket
{
  const u = new URL(ingest({ key, date: day }));
  const status = await new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname, () => {
      s.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
      const chunk = "z".repeat(16384);
      for (let i = 0; i < 8; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      s.write("0\r\n\r\n");
    });
    let got = "";
    s.on("data", (d) => { got += d; });
    s.on("close", () => resolve(got));
    s.on("error", () => resolve(got));
  });
  tap(/^HTTP\/1\.1 413/.test(status) && status.includes('"ok":false'), "413 chunked body over --max-body", status.slice(0, 80));
}

// 409: a second replay while one runs (slow ruleset: a call lasts ~0.5 s);
// reads keep working meanwhile
{
  const sIngest = (q) => `${slow}/timed/admin/replay-ingest?${new URLSearchParams(q)}`;
  const first = call("POST", sIngest({ date: day, cleanSlate: "1" }));
  let saw409 = null, readOk = false, done = false;
  first.then(() => { done = true; });
  await new Promise((r) => setTimeout(r, 100)); // the first call is in the writer by then
  for (let i = 0; i < 100 && !done && !saw409; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const r = await call("POST", sIngest({ date: day }));
    if (r.status === 409) saw409 = r;
    const h = await call("GET", `${slow}/timed/all`);
    readOk = readOk || (h.status === 200 && h.body && h.body.ok === true);
  }
  const f = await first;
  tap(saw409 !== null && saw409.body && saw409.body.ok === false && /already running/.test(saw409.body.error),
    "409 replay-ingest while a replay runs", saw409 ? saw409.text : "no 409");
  tap(readOk, "reads answer 200 while a replay runs");
  tap(f.status === 200 && f.body.ok === true && f.body.rowsProcessed > 0, "the running replay completes", f.text.slice(0, 120));
}
console.log(`# ${failures} failures`);
