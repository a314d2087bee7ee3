// load.mjs — READERS concurrent readers for SECONDS against `retape serve`
// while a replay runs (started by the caller).  Every response must be 200
// and valid JSON, and no read may be torn: in each /timed/all, the tickers
// whose latest state lies in the newest bucket seen must be exactly the
// tickers of that bucket's receipts (BUCKETS_FILE, from buckets.lua): the
// store commits a bucket in one batch and a read sees all of it or none.
// Prints TAP lines.  env: BASE, KEY, READERS (50), SECONDS (10), BUCKETS_FILE.
import { readFileSync } from "node:fs";
const base = process.env.BASE;
const key = process.env.KEY;
const readers = Number(process.env.READERS ?? 50);
const seconds = Number(process.env.SECONDS ?? 10);
const buckets = JSON.parse(readFileSync(process.env.BUCKETS_FILE, "utf8"));
const paths = ["/timed/all", "/timed/trades", `/retape/lanes?key=${key}`, "/timed/health", "/timed/all"];
const stats = { requests: 0, errors: 0, torn: 0, checked: 0, firstError: null, maxMs: 0 };

function checkAll(body) {
  const data = body.data || {};
  let maxB = -1;
  const bOf = {};
  for (const [T, p] of Object.entries(data)) {
    const b = Math.floor(p.ts / 300000) * 300000;
    bOf[T] = b;
    if (b > maxB) maxB = b;
  }
  if (maxB < 0) return;
  stats.checked++;
  const seen = Object.keys(bOf).filter((T) => bOf[T] === maxB).sort();
  const want = buckets[String(maxB)] || [];
  if (seen.join(",") !== want.join(",")) {
    stats.torn++;
    if (!stats.firstError) stats.firstError = `torn read at bucket ${maxB}: ${seen.length} tickers of ${want.length}`;
  }
}

async function reader(i, until) {
  let k = i;
  while (Date.now() < until) {
    const path = paths[k++ % paths.length];
    const t0 = Date.now();
    try {
      const res = await fetch(base + path);
      const text = await res.text();
      stats.maxMs = Math.max(stats.maxMs, Date.now() - t0);
      stats.requests++;
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}: ${text.slice(0, 200)}`);
      const body = JSON.parse(text);
      if (path === "/timed/all") checkAll(body);
      if (path === "/timed/trades" && body.count !== body.trades.length) throw new Error("trades: count != length");
    } catch (e) {
      stats.errors++;
      if (!stats.firstError) stats.firstError = e.message;
    }
  }
}

const until = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: readers }, (_, i) => reader(i, until)));
console.log(`# ${readers} readers, ${seconds} s: ${stats.requests} requests, ${stats.checked} /timed/all checked, max ${stats.maxMs} ms`);
const tap = (ok, name) => console.log(`${ok ? "ok" : "not ok"} - ${name}`);
tap(stats.errors === 0 && stats.requests > readers, `load: ${stats.requests} reads, no error${stats.firstError ? " (" + stats.firstError + ")" : ""}`);
tap(stats.torn === 0 && stats.checked > 0, `load: no torn read in ${stats.checked} /timed/all snapshots`);
