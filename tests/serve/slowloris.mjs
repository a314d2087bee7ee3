// slowloris.mjs — issue 24 #20: SLOW (1,000) connections from one peer
// (127.0.0.2, loopback) trickle a header line every second and never finish
// their request, while a client on 127.0.0.1 keeps asking /timed/health.
// The client must get every answer, quickly; the server must refuse the
// connections over its per-peer limit at once and cut the others off at
// --request-timeout (REQUEST_TIMEOUT s) although they keep sending.
// Bounded: every socket is destroyed after ATTACK_SECONDS, and the script
// exits on its own after a hard limit.  env: BASE, SLOW, REQUEST_TIMEOUT,
// PER_PEER, ATTACK_SECONDS.  Prints TAP lines ("ok - ..." / "not ok - ...").
import net from "node:net";
const base = new URL(process.env.BASE);
const slow = Number(process.env.SLOW || 1000);
const requestTimeout = Number(process.env.REQUEST_TIMEOUT || 3);
const perPeer = Number(process.env.PER_PEER || 64);
const attackSeconds = Number(process.env.ATTACK_SECONDS || requestTimeout + 4);
const hardLimit = setTimeout(() => { console.log("not ok - slowloris: the test ran past its hard limit"); process.exit(1); },
  (attackSeconds + 20) * 1000);
let failures = 0;
const tap = (ok, name, extra) => {
  if (!ok) failures++;
  console.log(`${ok ? "ok" : "not ok"} - ${name}${!ok && extra ? " # got " + extra : ""}`);
};

const started = Date.now();
const conns = [];
for (let i = 0; i < slow; i++) {
  const c = { opened: null, closedAt: null, bytes: 0 };
  c.sock = net.connect({ host: base.hostname, port: Number(base.port), localAddress: "127.0.0.2" }, () => {
    c.opened = Date.now();
    c.sock.write("GET /timed/health HTTP/1.1\r\nHost: x\r\n");
  });
  c.sock.on("data", (d) => { c.bytes += d.length; });
  c.sock.on("error", () => {});
  c.sock.on("close", () => { c.closedAt = Date.now(); });
  conns.push(c);
}
const trickle = setInterval(() => {
  for (const c of conns) if (c.opened && c.closedAt === null) c.sock.write(`X-Slow-${Date.now() % 1000}: 1\r\n`, () => {});
}, 1000);

// the client: one request every 200 ms for the whole attack
const latencies = [];
let bad = 0;
while (Date.now() - started < attackSeconds * 1000) {
  const t0 = Date.now();
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 5000);
    const r = await fetch(`${base.origin}/timed/health`, { signal: ctl.signal, headers: { connection: "close" } });
    const b = await r.json();
    clearTimeout(timer);
    if (r.status !== 200 || !b.ok) bad++;
  } catch { bad++; }
  latencies.push(Date.now() - t0);
  await new Promise((r) => setTimeout(r, 200));
}
clearInterval(trickle);
const closedByServer = conns.filter((c) => c.closedAt !== null);
const opened = conns.filter((c) => c.opened !== null).length;
const heldLongest = Math.max(0, ...closedByServer.map((c) => c.closedAt - (c.opened || started)));
const stillOpen = conns.length - closedByServer.length;
for (const c of conns) c.sock.destroy();
latencies.sort((a, b) => a - b);
const worst = latencies[latencies.length - 1];
console.log(`# ${slow} slow connections: ${opened} opened, ${closedByServer.length} closed by the server, ` +
  `${stillOpen} still open after ${attackSeconds} s, longest held ${heldLongest} ms; client: ${latencies.length} requests, ` +
  `${bad} failed, median ${latencies[latencies.length >> 1]} ms, worst ${worst} ms`);
tap(bad === 0 && latencies.length >= attackSeconds * 3, `slowloris: the client gets every answer during ${slow} slow connections`,
  `${bad} of ${latencies.length} failed`);
tap(worst < 3000, "slowloris: ... and quickly (worst under 3 s; unprotected, requests time out at 5 s)", `${worst} ms`);
tap(stillOpen === 0, `slowloris: every trickling connection is cut off (per-peer limit ${perPeer}, request timeout ${requestTimeout} s)`,
  `${stillOpen} still open`);
tap(heldLongest <= (requestTimeout + 2) * 1000, "slowloris: none held past the request timeout although it kept sending",
  `${heldLongest} ms`);
clearTimeout(hardLimit);
process.exit(failures ? 1 : 0);
