/* test_pool.c — the inboxes of a threaded replay over a real SQLite file:
 * routing keeps every row exactly once, in cursor order within each part,
 * a ticker always in the part its hash names; windows and `more`; an inbox
 * keeps several buckets apart and is reused after a reset; the writes a
 * part keeps in its inbox come back whole and go with a reset. */
#include "check.h"
#include "retape.h"
#include <string.h>

/* n receipts over `tickers` tickers in each of two buckets. */
static void make_db(const char *path, int n, int tickers)
{
    char *err = NULL;
    retape_writer *w = retape_writer_open(path, 100, &err);
    CHECK(w != NULL, "writer opens %s", path);
    char id[64], ticker[16], payload[64];
    for (int b = 0; b < 2; b++) {
        int64_t bucket = 1770042600000LL + b * 300000;
        for (int i = 0; i < n; i++) {
            snprintf(ticker, sizeof ticker, "TK%02d", i % tickers);
            int64_t ts = bucket + i * 100;
            snprintf(id, sizeof id, "%s:%lld:%d", ticker, (long long)ts, i);
            int len = snprintf(payload, sizeof payload, "{\"price\":%d}", i);
            retape_receipt_row r = {.receipt_id = id, .ticker = ticker, .payload_hash = "h", .script_version = "2.5.0",
                                    .payload_json = payload, .payload_len = (size_t)len,
                                    .ts = ts, .bucket_5m = bucket, .received_ts = ts};
            retape_writer_insert(w, &r, &err);
        }
    }
    CHECK(retape_writer_close(w, &err) == 0, "writer commits");
}

int main(void)
{
    char *dir = check_tempdir(), path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/r.db", dir);
    const int n = 300, tickers = 17;
    const unsigned parts = 3;
    const int64_t b0 = 1770042600000LL, b1 = b0 + 300000;
    make_db(path, n, tickers);
    retape_source *src = retape_source_open(path, &err);
    retape_scope all = {.from_bucket = 0, .to_bucket = INT64_MAX, .script_version = NULL};
    retape_inbox *in[3];
    for (unsigned p = 0; p < parts; p++)
        in[p] = retape_inbox_new();

    /* the whole first bucket, then the second: appended in order */
    int64_t routed;
    int more;
    retape_cursor *cur = retape_cursor_open(src, &all, b0, &err);
    CHECK(retape_route(cur, in, parts, 0, -1, &routed, &more, &err) == 0 && routed == n && !more,
          "a bucket of %d rows routed whole (%lld)", n, (long long)routed);
    retape_cursor_close(cur);
    cur = retape_cursor_open(src, &all, b1, &err);
    CHECK(retape_route(cur, in, parts, 0, -1, &routed, &more, &err) == 0 && routed == n, "the next bucket appended");
    retape_cursor_close(cur);
    size_t total = 0;
    for (unsigned p = 0; p < parts; p++)
        total += retape_inbox_count(in[p]);
    CHECK(total == 2 * (size_t)n, "every row in exactly one inbox (%zu)", total);

    int owner_ok = 1, order_ok = 1, buckets_ok = 1, payload_ok = 1;
    for (unsigned p = 0; p < parts; p++) {
        retape_receipt r;
        int64_t index, prev_index = -1, prev_bucket = 0;
        while (retape_inbox_next(in[p], &r, &index)) {
            owner_ok &= retape_part_of(r.ticker, parts) == p;
            if (r.bucket_5m == prev_bucket)
                order_ok &= index > prev_index;
            buckets_ok &= r.bucket_5m >= prev_bucket;
            int price = -1;
            sscanf(r.payload, "{\"price\":%d}", &price);
            payload_ok &= price == index && r.payload_len == strlen(r.payload) && strcmp(r.script_version, "2.5.0") == 0;
            prev_index = index;
            prev_bucket = r.bucket_5m;
        }
        CHECK(retape_inbox_peek_bucket(in[p]) == 0, "part %u: read to its end", p);
    }
    CHECK(owner_ok, "each row is in the part its ticker's hash names");
    CHECK(order_ok && buckets_ok, "each part keeps the cursor's order: buckets, then index within a bucket");
    CHECK(payload_ok, "rows come back whole: payload, its length, index in the bucket, script version");

    /* a ticker's part does not depend on anything but the count */
    CHECK(retape_part_of("AAPL", 1) == 0, "one part owns everything");
    CHECK(retape_part_of("AAPL", 7) == retape_fnv1a32_utf16("AAPL", 4) % 7, "the part is FNV-1a 32 modulo the parts");

    /* a window [10, 25) of the first bucket after a reset */
    for (unsigned p = 0; p < parts; p++)
        retape_inbox_reset(in[p]);
    cur = retape_cursor_open(src, &all, b0, &err);
    CHECK(retape_route(cur, in, parts, 10, 25, &routed, &more, &err) == 0 && routed == 15 && more,
          "a window [10, 25) routes 15 rows and says more remain");
    retape_cursor_close(cur);
    int64_t lo = INT64_MAX, hi = -1;
    for (unsigned p = 0; p < parts; p++) {
        retape_receipt r;
        int64_t index;
        while (retape_inbox_next(in[p], &r, &index)) {
            lo = index < lo ? index : lo;
            hi = index > hi ? index : hi;
        }
    }
    CHECK(lo == 10 && hi == 24, "the window's rows keep their indexes in the bucket (10..24)");
    cur = retape_cursor_open(src, &all, b0, &err);
    CHECK(retape_route(cur, in, parts, n - 5, n, &routed, &more, &err) == 0 && routed == 5 && !more,
          "a window ending at the last row says nothing remains");
    retape_cursor_close(cur);

    /* the writes a part carries back: appended in order, emptied with the rows */
    size_t kept_len = 1;
    retape_inbox_reset(in[0]);
    retape_inbox_kept(in[0], &kept_len);
    CHECK(kept_len == 0, "a reset inbox keeps no writes");
    size_t bytes_before = retape_inbox_bytes(in[0]);
    CHECK(retape_inbox_keep(in[0], "abc", 3) == 0 && retape_inbox_keep(in[0], "defg", 4) == 0, "writes kept");
    const char *kept = retape_inbox_kept(in[0], &kept_len);
    CHECK(kept_len == 7 && memcmp(kept, "abcdefg", 7) == 0, "kept writes come back whole, in order");
    CHECK(retape_inbox_bytes(in[0]) == bytes_before, "kept writes are not counted as rows' bytes");
    static char big[200000];
    memset(big, 'x', sizeof big);
    CHECK(retape_inbox_keep(in[0], big, sizeof big) == 0, "a large write is kept (the buffer grows)");
    kept = retape_inbox_kept(in[0], &kept_len);
    CHECK(kept_len == 7 + sizeof big && memcmp(kept, "abcdefg", 7) == 0 && kept[kept_len - 1] == 'x',
          "and everything before it stays");
    retape_inbox_reset(in[0]);
    retape_inbox_kept(in[0], &kept_len);
    CHECK(kept_len == 0 && retape_inbox_bytes(in[0]) == 0, "reset empties rows and kept writes");

    for (unsigned p = 0; p < parts; p++)
        retape_inbox_free(in[p]);
    retape_source_close(src);
    free(dir);
    return done_testing();
}
