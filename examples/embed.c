/*
 * embed.c — embedding retape in a C program.
 *
 *   embed RECEIPTS.db STATE_DIR
 *
 * Reads the receipts of the first non-empty bucket through the C API, keeps a
 * counter in the RocksDB store, then runs a Lua snippet on the same engine.
 * Build: cc embed.c -lretape $(pkg-config --libs lua5.4 lua5.4-cjson sqlite3 rocksdb zlib)
 */
#include "retape.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s RECEIPTS.db STATE_DIR\n", argv[0]);
        return 2;
    }
    char *err = NULL;
    retape_source *src = retape_source_open(argv[1], &err);
    if (!src)
        goto fail;
    retape_scope scope = {.from_bucket = INT64_MIN, .to_bucket = INT64_MAX, .script_version = "2.5.0"};
    int64_t *buckets = NULL, *counts = NULL;
    size_t n = 0;
    if (retape_source_buckets(src, &scope, &buckets, &counts, &n, &err) != 0)
        goto fail;
    printf("%zu buckets\n", n);
    if (n > 0) {
        retape_cursor *cur = retape_cursor_open(src, &scope, buckets[0], &err);
        retape_receipt r;
        int rows = 0;
        while (cur && retape_cursor_next(cur, &r, &err) == 1)
            if (rows++ < 3)
                printf("  %s %s %zu bytes\n", r.receipt_id, r.ticker, r.payload_len);
        printf("first bucket: %d receipts\n", rows);
        retape_cursor_close(cur);
    }
    retape_free(buckets);
    retape_free(counts);
    retape_source_close(src);

    retape_kv *kv = retape_kv_open(argv[2], &err);
    if (!kv)
        goto fail;
    char *val = NULL;
    size_t vlen = 0;
    int runs = retape_kv_get(kv, "example:runs", 12, &val, &vlen, &err) == 1 ? atoi(val) : 0;
    retape_free(val);
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%d", runs + 1);
    retape_kv_put(kv, "example:runs", 12, buf, (size_t)len, &err);
    printf("runs recorded in the store: %d\n", runs + 1);
    retape_kv_close(kv);

    retape_host *host = retape_host_new(NULL, &err);
    if (!host)
        goto fail;
    int rc = retape_host_run_string(host,
        "local retape = require 'retape'\n"
        "print(('Lua layer %s; 2026-02-02 opens at %s'):format(retape.version,\n"
        "      retape.time.format_ny((retape.time.session('2026-02-02')))))\n",
        "=embed", &err);
    retape_host_free(host);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "embed: %s\n", err ? err : "failed");
    retape_free(err);
    return 1;
}
