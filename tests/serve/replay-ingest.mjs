// replay-ingest.mjs — drives `retape serve` exactly as the app's client
// scripts/replay-ingest.js drives the original worker (seed plan "Client
// Script", spec §6.1): POST /timed/admin/replay-ingest page by page within
// a bucket, then bucket by bucket (cleanSlate only on the very first call),
// then refresh-latest-from-ingest in pages of REFRESH_LIMIT and force-sync.
//
// env: TIMED_API_BASE, TIMED_API_KEY (required), DATE, TICKER, CLEAN_SLATE
// (default on unless "0"/"false"), LIMIT (page size), DELAY_MS (default
// 200), REFRESH_LIMIT (25), REFRESH_DELAY_MS (300), DEBUG, BUCKET (one
// bucket only), STOP_AFTER (exit 3 after N calls: for crash tests),
// FINISH=0 (skip refresh and force-sync: the bench times the bucket loop).
// Prints one line per call and a JSON summary last; exits 1 on any error.
const env = process.env;
const base = (env.TIMED_API_BASE || "http://127.0.0.1:8787").replace(/\/+$/, "");
const key = env.TIMED_API_KEY;
if (!key) { console.error("TIMED_API_KEY is required"); process.exit(2); }
const date = env.DATE || new Date().toISOString().slice(0, 10);
const cleanSlate = !(env.CLEAN_SLATE === "0" || env.CLEAN_SLATE === "false");
const delay = Number(env.DELAY_MS ?? 200);
const refreshLimit = Number(env.REFRESH_LIMIT ?? 25);
const refreshDelay = Number(env.REFRESH_DELAY_MS ?? 300);
const stopAfter = env.STOP_AFTER ? Number(env.STOP_AFTER) : Infinity;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(path, params) {
  const q = new URLSearchParams({ key, ...params });
  const res = await fetch(`${base}${path}?${q}`, { method: "POST" });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { throw new Error(`${path}: ${res.status}: not JSON: ${text.slice(0, 200)}`); }
  if (!res.ok || body.ok !== true) throw new Error(`${path}: HTTP ${res.status}: ${body.error || text}`);
  return body;
}

async function main() {
  const totals = { calls: 0, buckets: 0, rowsProcessed: 0, tradesCreated: 0, tradesPurged: 0, refreshed: 0 };
  let bucket = env.BUCKET ? Number(env.BUCKET) : undefined;
  let bucketOffset = 0;
  let first = true;
  for (;;) {
    const params = { date };
    if (env.TICKER) params.ticker = env.TICKER;
    if (bucket !== undefined) params.bucket = String(bucket);
    if (bucketOffset) params.bucketOffset = String(bucketOffset);
    if (env.LIMIT) params.limit = env.LIMIT;
    if (env.DEBUG) params.debug = "1";
    if (first && cleanSlate) params.cleanSlate = "1";
    first = false;
    const r = await post("/timed/admin/replay-ingest", params);
    totals.calls++;
    totals.rowsProcessed += r.rowsProcessed;
    totals.tradesCreated += r.tradesCreated;
    totals.tradesPurged += r.tradesPurged;
    const page = r.hasMoreInBucket ? ` (page to ${r.nextBucketOffset})` : "";
    console.log(`bucket ${r.bucketProcessed}: ${r.rowsProcessed} rows, +${r.tradesCreated} trades${page}, purged ${r.tradesPurged}`);
    if (totals.calls >= stopAfter) { console.log(JSON.stringify({ stopped: totals })); process.exit(3); }
    if (r.hasMoreInBucket) { bucket = r.bucketProcessed; bucketOffset = r.nextBucketOffset; }
    else {
      totals.buckets++;
      if (env.BUCKET || !r.hasMore || r.nextBucket === null) break;
      bucket = r.nextBucket; bucketOffset = 0;
    }
    if (delay > 0) await sleep(delay);
  }
  if (env.FINISH === "0") { console.log(JSON.stringify(totals)); return; }
  for (let offset = 0; ;) {
    const r = await post("/timed/admin/refresh-latest-from-ingest", { limit: String(refreshLimit), offset: String(offset) });
    totals.refreshed += r.refreshed;
    if (!r.hasMore) break;
    offset += refreshLimit;
    if (refreshDelay > 0) await sleep(refreshDelay);
  }
  const s = await post("/timed/admin/force-sync", {});
  totals.synced = s.synced;
  totals.ledgerTrades = s.trades;
  console.log(JSON.stringify(totals));
}

main().catch((e) => { console.error(`replay-ingest: ${e.message}`); process.exit(1); });
