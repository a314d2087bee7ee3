#!/usr/bin/env python3
"""bench_py.py DB -- the bare Python floor of `make bench`: the same ordered
scan as the engine (sqlite3) and json.loads of every payload, nothing else.
Prints "rows=N bytes=B peak_rss_kb=K" like the other bench helpers."""
import json
import resource
import sqlite3
import sys

db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = nbytes = 0
for (payload,) in db.execute(
        "SELECT payload_json FROM ingest_receipts ORDER BY bucket_5m, ts, receipt_id"):
    json.loads(payload)
    rows += 1
    nbytes += len(payload)
ru = resource.getrusage(resource.RUSAGE_SELF)
print("rows=%d bytes=%d peak_rss_kb=%d cpu_ms=%d" % (rows, nbytes, ru.ru_maxrss, (ru.ru_utime + ru.ru_stime) * 1000))
