/* test_readahead.c — the receipts source's read-ahead windows over a real
 * SQLite file: every byte read through them is the file's, a threaded
 * part's reads by rowid too, and a change committed by another connection
 * (rollback journal, WAL, a checkpoint into the file) is seen by the next
 * read transaction, never served from a window filled before it. */
#include "check.h"
#include "readahead.h"
#include "retape.h"

#include <sqlite3.h>

#define ROWS 240
#define BUCKETS 4
#define PAYLOAD 5000 /* a full-size body: each row spills into overflow pages */
static const int64_t first_bucket = 1770042600000LL;

/* The payload of row i, version v (same length for every v: an update
 * rewrites the same pages). */
static void payload_of(int i, int v, char *out)
{
    int n = snprintf(out, PAYLOAD + 1, "{\"i\":%d,\"v\":%d,\"pad\":\"", i, v);
    for (int k = n; k < PAYLOAD - 2; k++)
        out[k] = (char)('a' + (i * 7 + k * 13 + v * 5) % 26);
    memcpy(out + PAYLOAD - 2, "\"}", 3);
}

static void id_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "T%02d:%d", i % 17, i);
}

/* Rows stored out of time order (as webhooks arrive from several tickers):
 * a bucket's rows in (ts, receipt_id) order jump around the file. */
static void make_db(const char *path)
{
    char *err = NULL, id[32], ticker[8];
    static char payload[PAYLOAD + 1];
    retape_writer *w = retape_writer_open(path, 50, &err);
    CHECK(w != NULL, "writer opens %s", path);
    for (int i = 0; i < ROWS; i++) {
        int64_t bucket = first_bucket + (i % BUCKETS) * 300000;
        int64_t ts = bucket + (int64_t)((i * 37) % 290) * 1000; /* as version_read finds it */
        id_of(i, id, sizeof id);
        snprintf(ticker, sizeof ticker, "T%02d", i % 17);
        payload_of(i, 0, payload);
        retape_receipt_row r = {.receipt_id = id, .ticker = ticker, .payload_hash = "h", .script_version = "2.5.0",
                                .payload_json = payload, .payload_len = PAYLOAD, .ts = ts, .bucket_5m = bucket,
                                .received_ts = ts};
        retape_writer_insert(w, &r, &err);
    }
    CHECK(retape_writer_close(w, &err) == 0, "writer commits %d rows of %d bytes", ROWS, PAYLOAD);
}

/* Reads every row of every bucket through src; counts the rows whose
 * payload is version want[i] of row i (want NULL: version 0). */
static int rows_as_expected(retape_source *src, const int *want, int *rows)
{
    static char expected[PAYLOAD + 1];
    retape_scope all = {.from_bucket = 0, .to_bucket = INT64_MAX};
    char *err = NULL;
    int good = 0;
    *rows = 0;
    for (int b = 0; b < BUCKETS; b++) {
        retape_cursor *cur = retape_cursor_open(src, &all, first_bucket + b * 300000, &err);
        retape_receipt r;
        while (cur && retape_cursor_next(cur, &r, &err) == 1) {
            int i = atoi(strchr(r.receipt_id, ':') + 1);
            payload_of(i, want ? want[i] : 0, expected);
            good += r.payload_len == PAYLOAD && memcmp(r.payload, expected, PAYLOAD) == 0;
            (*rows)++;
        }
        retape_cursor_close(cur);
    }
    return good;
}

/* Reads row i alone, by its rowid (listed by `lister`, another
 * connection), through src: a few pages, which stay in src's windows.
 * Returns its version, -1 when its payload is not one of its versions. */
static int version_read(retape_source *src, retape_source *lister, int i)
{
    static char expected[PAYLOAD + 1];
    char id[32], *err = NULL;
    id_of(i, id, sizeof id);
    retape_scope all = {.from_bucket = 0, .to_bucket = INT64_MAX};
    retape_listed_row *listed;
    size_t n;
    int more, version = -1;
    if (retape_source_list_parts(lister, &all, first_bucket + (i % BUCKETS) * 300000, 1, 0, -1, &listed, &n, &more,
                                 &err) != 0)
        return -1;
    int64_t ts = first_bucket + (i % BUCKETS) * 300000 + (int64_t)((i * 37) % 290) * 1000;
    for (size_t j = 0; j < n; j++) {
        if (listed[j].ts != ts)
            continue;
        retape_cursor *cur = retape_cursor_open_rows(src, &listed[j], 1, &err);
        retape_receipt r;
        if (cur && retape_cursor_next(cur, &r, &err) == 1 && strcmp(r.receipt_id, id) == 0) {
            const char *v = strstr(r.payload, "\"v\":");
            payload_of(i, v ? atoi(v + 4) : -1, expected);
            if (v && r.payload_len == PAYLOAD && memcmp(r.payload, expected, PAYLOAD) == 0)
                version = atoi(v + 4);
        }
        retape_cursor_close(cur);
    }
    retape_free(listed);
    return version;
}

/* A second connection (the default VFS) rewrites row i as version v. */
static void rewrite(sqlite3 *db, int i, int v)
{
    static char payload[PAYLOAD + 1];
    char id[32];
    id_of(i, id, sizeof id);
    payload_of(i, v, payload);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "UPDATE ingest_receipts SET payload_json = ?1 WHERE receipt_id = ?2", -1, &st, NULL);
    sqlite3_bind_text(st, 1, payload, PAYLOAD, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1, "row %d rewritten as version %d", i, v);
    sqlite3_finalize(st);
}

/* Reads `rounds` random ranges of a file of `size` random bytes through
 * the read-ahead VFS and through the default one, opened as a read-only
 * main database file each: page reads of every size SQLite uses, arbitrary
 * offsets and lengths, ranges across the windows' blocks and past the end
 * (SQLITE_IOERR_SHORT_READ, zero-filled).  Returns the reads that differed
 * in result code or bytes. */
static int differing_reads(const char *dir, long size, int rounds)
{
    char path[600];
    snprintf(path, sizeof path, "%s/bytes-%ld", dir, size);
    FILE *out = fopen(path, "wb");
    unsigned seed = (unsigned)size;
    for (long i = 0; out && i < size; i++)
        fputc((int)((seed = seed * 1103515245u + 12345u) >> 16 & 0xff), out);
    if (out)
        fclose(out);
    sqlite3_vfs *vfs[2] = {sqlite3_vfs_find(retape_readahead_vfs()), sqlite3_vfs_find(NULL)};
    sqlite3_file *file[2];
    /* a name as SQLite hands one to xOpen (its URI parameters after it) */
    sqlite3_filename name = sqlite3_create_filename(path, "", "", 0, NULL);
    for (int v = 0; v < 2; v++) {
        file[v] = calloc(1, (size_t)vfs[v]->szOsFile);
        int flags = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READONLY, got;
        if (vfs[v]->xOpen(vfs[v], name, file[v], flags, &got) != SQLITE_OK)
            return -1;
    }
    static const int pages[] = {512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
    static char got[2][70000];
    int differing = 0;
    for (int i = 0; i < rounds; i++) {
        seed = seed * 1103515245u + 12345u;
        int amt, kind = (int)(seed >> 8) % 4;
        sqlite3_int64 off;
        if (kind < 2) { /* a page of some size at a page boundary, sometimes past the end */
            amt = pages[(seed >> 12) % 8];
            off = (sqlite3_int64)((seed >> 4) % (unsigned)(size / amt + 2)) * amt;
        } else if (kind == 2) { /* the change counter's 16 bytes at 24 */
            amt = 16;
            off = 24;
        } else { /* anything */
            amt = 1 + (int)((seed >> 3) % 69999);
            off = (sqlite3_int64)((seed * 2654435761u) % (unsigned)(size + 100));
        }
        int rc[2];
        for (int v = 0; v < 2; v++) {
            memset(got[v], v ? 0x55 : 0xaa, (size_t)amt);
            rc[v] = file[v]->pMethods->xRead(file[v], got[v], amt, off);
        }
        differing += rc[0] != rc[1] || memcmp(got[0], got[1], (size_t)amt) != 0;
    }
    for (int v = 0; v < 2; v++) {
        file[v]->pMethods->xClose(file[v]);
        free(file[v]);
    }
    sqlite3_free_filename(name);
    return differing;
}

int main(void)
{
    char *dir = check_tempdir(), path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/r.db", dir);
    make_db(path);
    CHECK(retape_readahead_vfs() != NULL, "the read-ahead VFS registers");
    CHECK(sqlite3_vfs_find(NULL) != sqlite3_vfs_find(retape_readahead_vfs()), "it is not the default VFS");
    for (int k = 0; k < 3; k++) {
        long size = k == 0 ? 1000003 : k == 1 ? 70001 : 65536 * 3;
        CHECK(differing_reads(dir, size, 20000) == 0, "20,000 reads of a %ld-byte file: the default VFS's bytes and codes",
              size);
    }

    /* Every byte through the windows is the file's. */
    retape_readahead_counts before, after;
    retape_readahead_totals(&before);
    retape_source *src = retape_source_open(path, &err);
    CHECK(src != NULL, "source opens");
    int want[ROWS] = {0}, rows = 0;
    int good = rows_as_expected(src, want, &rows);
    CHECK(good == ROWS && rows == ROWS, "all %d payloads read intact (%d of %d rows)", ROWS, good, rows);
    retape_source_close(src);
    retape_readahead_totals(&after);
    unsigned long long fills = after.fills - before.fills, hits = after.hits - before.hits;
    CHECK(fills > 0 && hits >= 2 * fills, "page reads served from windows: %llu hits, %llu fills", hits, fills);

    /* A part's rows looked up by rowid in time order, in a second connection. */
    src = retape_source_open(path, &err);
    retape_source *part = retape_source_open(path, &err);
    retape_scope all = {.from_bucket = 0, .to_bucket = INT64_MAX};
    int part_rows = 0, part_good = 0;
    static char expected[PAYLOAD + 1];
    for (int b = 0; b < BUCKETS; b++) {
        retape_listed_row *listed;
        size_t n;
        int more;
        CHECK(retape_source_list_parts(src, &all, first_bucket + b * 300000, 2, 0, -1, &listed, &n, &more, &err) == 0,
              "bucket %d listed", b);
        retape_listed_row mine[ROWS];
        size_t k = 0;
        for (size_t j = 0; j < n; j++)
            if (listed[j].part == 1)
                mine[k++] = listed[j];
        retape_free(listed);
        retape_cursor *cur = retape_cursor_open_rows(part, mine, k, &err);
        retape_receipt r;
        while (cur && retape_cursor_next(cur, &r, &err) == 1) {
            int i = atoi(strchr(r.receipt_id, ':') + 1);
            payload_of(i, 0, expected);
            part_good += r.payload_len == PAYLOAD && memcmp(r.payload, expected, PAYLOAD) == 0;
            part_rows++;
        }
        retape_cursor_close(cur);
    }
    CHECK(part_rows > 0 && part_good == part_rows, "a part's %d rows by rowid read intact (%d)", part_rows, part_good);
    retape_source_close(part);

    /* Rollback journal: a rewrite committed between two reads of the same
     * pages is seen. */
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "a writer connection opens");
    retape_source *lister = retape_source_open(path, &err);
    CHECK(version_read(src, lister, 5) == 0, "row 5 read as written");
    rewrite(db, 5, 1);
    CHECK(version_read(src, lister, 5) == 1, "rollback journal: the rewrite is seen by the next read");
    want[5] = 1;
    CHECK(rows_as_expected(src, want, &rows) == ROWS, "rollback journal: every other row as before");

    /* "nolock" takes no lock, so no window could be dropped: none is kept */
    char uri[700];
    snprintf(uri, sizeof uri, "file:%s?nolock=1", path);
    retape_source *unlocked = retape_source_open(uri, &err);
    CHECK(unlocked != NULL, "a source opens with nolock=1%s%s", err ? ": " : "", err ? err : "");
    if (unlocked) {
        CHECK(version_read(unlocked, lister, 77) == 0, "nolock: row 77 as written");
        rewrite(db, 77, 1);
        CHECK(version_read(unlocked, lister, 77) == 1, "nolock: the rewrite is seen by the next read");
        retape_source_close(unlocked);
    }
    want[77] = 1;

    /* WAL: a rewrite read from the log, then checkpointed into the file
     * under windows filled before it. */
    CHECK(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) == SQLITE_OK, "the file goes WAL");
    CHECK(version_read(src, lister, 130) == 0, "WAL: row 130 read as written");
    rewrite(db, 130, 2);
    CHECK(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK, "checkpointed");
    CHECK(version_read(src, lister, 130) == 2, "WAL: a rewrite checkpointed into the file between two reads is seen");
    rewrite(db, 130, 3);
    CHECK(version_read(src, lister, 130) == 3, "WAL: a rewrite seen from the log");
    CHECK(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK, "checkpointed again");
    CHECK(version_read(src, lister, 130) == 3, "WAL: the checkpointed row read from the file");
    want[130] = 3;
    CHECK(rows_as_expected(src, want, &rows) == ROWS, "WAL: every other row as before");

    /* A held snapshot keeps reading what it saw; its release sees the rest. */
    CHECK(retape_source_snapshot(src, 1, &err) == 0, "snapshot held");
    CHECK(version_read(src, lister, 130) == 3, "the snapshot reads row 130");
    rewrite(db, 130, 4);
    CHECK(version_read(src, lister, 130) == 3, "a rewrite after the snapshot is not seen in it");
    CHECK(retape_source_snapshot(src, 0, &err) == 0, "snapshot released");
    CHECK(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK, "checkpointed");
    CHECK(version_read(src, lister, 130) == 4, "after the release the rewrite is seen");
    sqlite3_close(db);
    retape_source_close(lister);
    retape_source_close(src);
    free(dir);
    return done_testing();
}
