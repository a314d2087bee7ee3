/*
 * embed.c — embedding retape in a C program.
 *
 *   embed RECEIPTS.db STATE_DIR [DATE]
 *
 * Reads the receipts of the first non-empty bucket through the C API, keeps a
 * counter in a RocksDB store, then replays a day (DATE, default: the New York
 * day of the first bucket) into STATE_DIR/replay through retape_replay().
 * Build against an installed copy:
 *   cc embed.c $(pkg-config --cflags --libs retape) -o embed
 */
#include "retape.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s RECEIPTS.db STATE_DIR [DATE]\n", argv[0]);
        return 2;
    }
    char *err = NULL;
    char day[16] = "";
    retape_source *src = retape_source_open(argv[1], &err);
    if (!src)
        goto fail;
    retape_scope scope = {.from_bucket = INT64_MIN, .to_bucket = INT64_MAX, .script_version = "2.5.0"};
    int64_t *buckets = NULL, *counts = NULL;
    size_t n = 0;
    if (retape_source_buckets(src, &scope, &buckets, &counts, &n, &err) != 0) {
        retape_source_close(src);
        goto fail;
    }
    printf("%zu buckets\n", n);
    if (n > 0) {
        retape_civil c;
        retape_time_to_ny(buckets[0], &c);
        snprintf(day, sizeof day, "%04d-%02d-%02d", c.year, c.month, c.day);
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

    /* A replay from C: the policy (rules, trades) runs in the embedded Lua. */
    retape_host *host = retape_host_new(NULL, &err);
    if (!host)
        goto fail;
    char state[4096];
    snprintf(state, sizeof state, "%s/replay", argv[2]);
    /* two threads: the same results as one (0 = every core for a large run) */
    retape_replay_params params = {.db = argv[1], .state = state, .date = argc == 4 ? argv[3] : day,
                                   .clean_slate = 1, .threads = 2};
    retape_replay_result res;
    int rc = retape_replay(host, &params, &res, &err);
    retape_host_free(host);
    if (rc != 0)
        goto fail;
    printf("replay %s: %lld receipts, %lld trades created, %lld errors\n", params.date, (long long)res.rows,
           (long long)res.trades, (long long)res.errors);
    return 0;
fail:
    fprintf(stderr, "embed: %s\n", err ? err : "failed");
    retape_free(err);
    return 1;
}
