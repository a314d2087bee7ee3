/* test_source.c — the receipts source over a real SQLite file. */
#include "check.h"
#include "retape.h"

#include <sqlite3.h>
#include <string.h>

/* Inserts n receipts of one bucket, in reverse id order, plus a few others. */
static void make_db(const char *path, int n)
{
    char *err = NULL;
    retape_writer *w = retape_writer_open(path, 100, &err);
    CHECK(w != NULL, "writer opens %s", path);
    const int64_t bucket = 1770042600000LL;
    char id[64], ticker[16];
    for (int i = n - 1; i >= 0; i--) {
        snprintf(ticker, sizeof ticker, "T%03d", i);
        /* Same ts for pairs of rows: the order must fall back to receipt_id. */
        int64_t ts = bucket + (i / 2) * 1000;
        snprintf(id, sizeof id, "%s:%lld:ab", ticker, (long long)ts);
        retape_receipt_row r = {.receipt_id = id, .ticker = ticker, .payload_hash = "ab",
                                .script_version = (i % 3 == 0) ? NULL : "2.5.0",
                                .payload_json = "{\"price\":1}", .payload_len = 11,
                                .ts = ts, .bucket_5m = bucket, .received_ts = ts};
        retape_writer_insert(w, &r, &err);
    }
    retape_receipt_row cap = {.receipt_id = "HB:1", .ticker = "T001", .payload_hash = "1",
                              .script_version = "capture_1.2.0", .payload_json = "{}", .payload_len = 2,
                              .ts = bucket + 5, .bucket_5m = bucket, .received_ts = 0};
    retape_writer_insert(w, &cap, &err);
    retape_receipt_row later = {.receipt_id = "T001:later", .ticker = "T001", .payload_hash = "2",
                                .payload_json = "{}", .payload_len = 2,
                                .ts = bucket + 600000, .bucket_5m = bucket + 600000, .received_ts = 0};
    CHECK(retape_writer_insert(w, &later, &err) == 1, "insert returns 1 for a new row");
    CHECK(retape_writer_insert(w, &later, &err) == 0, "insert returns 0 for a duplicate id");
    CHECK(retape_writer_close(w, &err) == 0, "writer commits and closes");
}

int main(void)
{
    char *dir = check_tempdir(), path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/r.db", dir);
    const int n = 500; /* ten times the original's silent 50-row cap */
    make_db(path, n);

    retape_source *src = retape_source_open(path, &err);
    CHECK(src != NULL, "source opens a receipts file");
    retape_scope all = {.from_bucket = 0, .to_bucket = INT64_MAX, .script_version = NULL};
    int64_t *buckets, *counts;
    size_t nb;
    CHECK(retape_source_buckets(src, &all, &buckets, &counts, &nb, &err) == 0, "buckets listed");
    CHECK(nb == 2 && counts[0] == n + 1 && counts[1] == 1, "two buckets with %d and 1 rows", n + 1);
    int64_t first = buckets[0];
    retape_free(buckets), retape_free(counts);

    retape_scope v25 = all;
    v25.script_version = "2.5.0";
    retape_cursor *cur = retape_cursor_open(src, &v25, first, &err);
    retape_receipt r;
    int rows = 0, ordered = 1, has_capture = 0;
    int64_t prev_ts = 0;
    char prev_id[64] = "";
    while (retape_cursor_next(cur, &r, &err) == 1) {
        if (r.ts < prev_ts || (r.ts == prev_ts && strcmp(r.receipt_id, prev_id) <= 0))
            ordered = 0;
        if (r.script_version && strcmp(r.script_version, "capture_1.2.0") == 0)
            has_capture = 1;
        prev_ts = r.ts;
        snprintf(prev_id, sizeof prev_id, "%s", r.receipt_id);
        rows++;
    }
    CHECK(rows == n, "every one of %d rows streamed (got %d)", n, rows);
    CHECK(ordered, "rows come in (ts, receipt_id) order");
    CHECK(!has_capture, "script version filter keeps 2.5.0 and NULL only");
    CHECK(retape_cursor_next(cur, &r, &err) == 0, "a finished cursor stays finished");
    retape_cursor_close(cur);

    const char *tickers[] = {"T001", "T002"};
    retape_scope two = all;
    two.tickers = tickers;
    two.n_tickers = 2;
    cur = retape_cursor_open(src, &two, first, &err);
    rows = 0;
    while (retape_cursor_next(cur, &r, &err) == 1)
        rows++;
    CHECK(rows == 3, "ticker filter: T001, T002 and T001's capture row (got %d)", rows);
    retape_cursor_close(cur);
    /* the listing of named tickers (read through the ticker index) counts
     * what their cursors stream, with and without a script version */
    CHECK(retape_source_buckets(src, &two, &buckets, &counts, &nb, &err) == 0 && nb == 2 && buckets[0] == first &&
              counts[0] == 3 && counts[1] == 1,
          "ticker filter: two buckets listed, with 3 and 1 rows");
    retape_free(buckets), retape_free(counts);
    two.script_version = "2.5.0";
    CHECK(retape_source_buckets(src, &two, &buckets, &counts, &nb, &err) == 0 && nb == 2 && counts[0] == 2 &&
              counts[1] == 1,
          "ticker and version filters: 2 and 1 rows (the capture row left out, a NULL version kept)");
    retape_free(buckets), retape_free(counts);
    two.script_version = NULL;

    retape_scope window = all;
    window.from_bucket = first + 1;
    CHECK(retape_source_buckets(src, &window, &buckets, &counts, &nb, &err) == 0 && nb == 1, "window excludes the first bucket");
    retape_free(buckets), retape_free(counts);
    /* a bad row (ts outside its bucket) of T003: counted for a scope
     * holding T003, not for one of other tickers */
    sqlite3 *wdb;
    sqlite3_open(path, &wdb);
    CHECK(sqlite3_exec(wdb, "INSERT INTO ingest_receipts (receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash,"
                            " payload_json) VALUES ('T003:bad', 'T003', 1770042600000, 1770042900000, 0, 'x', '{}')",
                       NULL, NULL, NULL) == SQLITE_OK,
          "a bad row inserted");
    sqlite3_close(wdb);
    int64_t n_bad;
    char *first_bad;
    const char *t003[] = {"T003"};
    retape_scope one = all;
    one.tickers = t003, one.n_tickers = 1;
    CHECK(retape_source_bad_rows(src, &all, &n_bad, &first_bad, &err) == 0 && n_bad == 1 && first_bad &&
              strcmp(first_bad, "T003:bad") == 0,
          "bad rows: the one row named");
    retape_free(first_bad);
    CHECK(retape_source_bad_rows(src, &two, &n_bad, &first_bad, &err) == 0 && n_bad == 0 && !first_bad,
          "bad rows of other tickers: none");
    CHECK(retape_source_bad_rows(src, &one, &n_bad, &first_bad, &err) == 0 && n_bad == 1, "bad rows of T003: one");
    retape_free(first_bad);
    one.from_bucket = first, one.to_bucket = first + 600000;
    CHECK(retape_source_bad_rows(src, &one, &n_bad, &first_bad, &err) == 0 && n_bad == 1,
          "bad rows of T003 in a range of buckets: one");
    retape_free(first_bad);

    retape_source_close(src);

    /* Error paths name the file and what is missing. */
    char other[600];
    snprintf(other, sizeof other, "%s/empty.db", dir);
    sqlite3 *db;
    sqlite3_open(other, &db);
    sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL);
    sqlite3_close(db);
    err = NULL;
    CHECK(retape_source_open(other, &err) == NULL, "a file without ingest_receipts is refused");
    CHECK_CONTAINS(err, "no table ingest_receipts", "message names the missing table");
    retape_free(err);

    sqlite3_open(other, &db);
    sqlite3_exec(db, "CREATE TABLE ingest_receipts (receipt_id, ticker, ts, bucket_5m)", NULL, NULL, NULL);
    sqlite3_close(db);
    err = NULL;
    CHECK(retape_source_open(other, &err) == NULL, "a table lacking columns is refused");
    CHECK_CONTAINS(err, "lacks column(s): received_ts, payload_hash, script_version, payload_json", "message lists the columns");
    retape_free(err);

    err = NULL;
    snprintf(other, sizeof other, "%s/none/x.db", dir);
    CHECK(retape_source_open(other, &err) == NULL, "a missing file is refused");
    CHECK_CONTAINS(err, "cannot open receipts database", "message says it cannot open");
    retape_free(err);
    free(dir);
    return done_testing();
}
