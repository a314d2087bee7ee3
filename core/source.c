/*
 * source.c — the receipts source: read-only, streaming access to the
 * `ingest_receipts` table of an SQLite file.
 *
 * One ordered scan per bucket, prepared once and re-bound (a closed
 * cursor leaves its statement to the source for the next bucket: preparing
 * it again cost ~1 us a receipt on real days): measured at
 * 1.4-1.9 us a row, against 7.7 us for the original's two-phase read (ids
 * first, then one SELECT per id).  No LIMIT/OFFSET in SQL: SQLite 3.40 swaps
 * its sorter for a slower top-N tree as soon as a LIMIT is present, so paging
 * is the caller's business and every row of a bucket is always streamed.
 *
 * For a threaded replay whose worker threads read their own rows, the
 * main thread lists each bucket's rowids in that order (the sorter carries
 * a few bytes a row, no payload), and each worker looks up only its part's
 * rows by rowid in its own connection.
 *
 * Every connection reads through the read-ahead VFS (readahead.c): a few
 * 64 KB windows of the file instead of one `pread` per 4 KB page.
 */
#include "hash.h"
#include "readahead.h"
#include "retape.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct retape_source {
    sqlite3 *db;
    char *path;
    /* reset statements, ready to be bound again (spare_of): a cursor's
     * (all tickers, named tickers), a part listing's (the same two) and a
     * part cursor's lookup; a one-ticker re-run opens a cursor per bucket,
     * which preparing anew cost ~25 us each */
    sqlite3_stmt *spare, *spare_tickers;
    sqlite3_stmt *spare_order, *spare_order_tickers, *spare_lookup;
    int cursors;         /* cursors open on it */
    int held;            /* snapshot holds not yet released (nested) */
    int64_t dev, ino;    /* the file it opened (has_id: the path named it before and after the open) */
    int has_id;
    int closed;          /* closed by its owner: freed with its last cursor */
};

struct retape_cursor {
    sqlite3_stmt *stmt;
    const char *sql; /* stmt's SQL (it may become the source's spare: keep_spare) */
    retape_source *src;
    int done; /* stepping a finished statement would silently restart it */
    /* a cursor over listed rows (retape_cursor_open_rows): stmt is
     * lookup_sql's, rows the rows to look up, in order */
    int part;
    retape_listed_row *rows;
    size_t n_rows, next_row;
};

static const char *const required_columns[] = {
    "receipt_id", "ticker", "ts", "bucket_5m", "received_ts",
    "payload_hash", "script_version", "payload_json",
};
#define N_REQUIRED_COLUMNS (sizeof required_columns / sizeof required_columns[0])

/* The scope filter shared by the bucket listing and the cursor: ?2 is the
 * script version (NULL = off), ?3 a JSON array of tickers (NULL = all). */
#define SCOPE_FILTER \
    " AND (?2 IS NULL OR script_version = ?2 OR script_version IS NULL)" \
    " AND (?3 IS NULL OR ticker IN (SELECT value FROM json_each(?3)))"

/* SCOPE_FILTER for a scope of named tickers: without the "?3 IS NULL OR"
 * the planner reads them through the (ticker, bucket_5m) index instead of
 * every row of the range (a live run of a few tickers in a full bucket; the
 * bucket listing of a one-ticker re-run: 5-day corpus, 31 % of the run). */
#define TICKERS_FILTER \
    " AND (?2 IS NULL OR script_version = ?2 OR script_version IS NULL)" \
    " AND ticker IN (SELECT value FROM json_each(?3))"

/* ?1..?4 are clamped to the plausible times; text or real buckets are not
 * listed (SQLite's BETWEEN on integers would let a real one in). */
#define LIST_SQL(filter) \
    "SELECT bucket_5m, count(*) FROM ingest_receipts" \
    " WHERE bucket_5m BETWEEN ?1 AND ?4 AND typeof(bucket_5m) = 'integer'" filter \
    " GROUP BY bucket_5m ORDER BY bucket_5m"
static const char list_sql[] = LIST_SQL(SCOPE_FILTER);
static const char list_all_sql[] = LIST_SQL("");
static const char list_tickers_sql[] = LIST_SQL(TICKERS_FILTER);

/* A good row: integer ts within the plausible times, in its own bucket. */
#define GOOD_ROW \
    "(typeof(ts) = 'integer' AND ts >= 946684800000 AND ts < 4102444800000" \
    " AND typeof(bucket_5m) = 'integer' AND bucket_5m = ts - ts % 300000)"

#define BAD_ALL_SQL(filter) \
    "SELECT count(*), min(receipt_id) FROM ingest_receipts WHERE NOT " GOOD_ROW \
    " AND ?1 IS NOT NULL AND ?4 IS NOT NULL" filter
#define BAD_RANGE_SQL(filter) \
    "SELECT count(*), min(receipt_id) FROM ingest_receipts WHERE bucket_5m BETWEEN ?1 AND ?4" \
    " AND NOT " GOOD_ROW filter
static const char bad_all_sql[] = BAD_ALL_SQL(SCOPE_FILTER);
static const char bad_all_tickers_sql[] = BAD_ALL_SQL(TICKERS_FILTER);
static const char bad_range_sql[] = BAD_RANGE_SQL(SCOPE_FILTER);
static const char bad_range_tickers_sql[] = BAD_RANGE_SQL(TICKERS_FILTER);

/* A bucket's rows in (ts, receipt_id) order; rowid breaks the ties a file
 * without the original's primary key may hold (duplicate or NULL receipt
 * ids), so that the order is total and every listing of a bucket agrees. */
#define BUCKET_ORDER " ORDER BY ts, receipt_id, rowid"

#define ROW_COLUMNS "receipt_id, ticker, ts, bucket_5m, script_version, payload_json"

static const char cursor_sql[] =
    "SELECT " ROW_COLUMNS " FROM ingest_receipts WHERE bucket_5m = ?1" SCOPE_FILTER BUCKET_ORDER;
static const char cursor_tickers_sql[] =
    "SELECT " ROW_COLUMNS " FROM ingest_receipts WHERE bucket_5m = ?1" TICKERS_FILTER BUCKET_ORDER;

/* The rows of a bucket listed for the parts (retape_source_list_parts), in
 * the same order, then each looked up by its rowid (lookup_sql). */
#define LISTED_COLUMNS "rowid, ticker, ts, receipt_id, payload_hash"
static const char part_order_sql[] =
    "SELECT " LISTED_COLUMNS " FROM ingest_receipts WHERE bucket_5m = ?1" SCOPE_FILTER BUCKET_ORDER;
static const char part_order_tickers_sql[] =
    "SELECT " LISTED_COLUMNS " FROM ingest_receipts WHERE bucket_5m = ?1" TICKERS_FILTER BUCKET_ORDER;
static const char lookup_sql[] =
    "SELECT " ROW_COLUMNS ", payload_hash FROM ingest_receipts WHERE rowid = ?1";

/* What a listed row is checked against when looked up: its receipt_id,
 * ticker and payload_hash (NULL as empty), each with its ending 0, through
 * the engine's FNV-1a 64 (hash.c), folded to 32 bits. */
static uint32_t row_check(const unsigned char *receipt_id, const unsigned char *ticker, const unsigned char *payload_hash)
{
    const unsigned char *fields[3] = {receipt_id, ticker, payload_hash};
    uint64_t h = RETAPE_FNV64_BASIS;
    for (int i = 0; i < 3; i++) {
        const char *text = fields[i] ? (const char *)fields[i] : "";
        h = retape_fnv1a64(h, text, strlen(text) + 1);
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* Checks that ingest_receipts exists with every required column.  Returns 0
 * or -1 with a message naming the file and the missing pieces. */
static int check_schema(retape_source *src, char **errptr)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(src->db, "SELECT name FROM pragma_table_info('ingest_receipts')",
                           -1, &st, NULL) != SQLITE_OK)
        return set_error(errptr, "%s: cannot read the schema: %s", src->path, sqlite3_errmsg(src->db));
    int seen[N_REQUIRED_COLUMNS] = {0};
    int n_columns = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        n_columns++;
        for (size_t i = 0; i < N_REQUIRED_COLUMNS; i++)
            if (name && strcmp(name, required_columns[i]) == 0)
                seen[i] = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return set_error(errptr, "%s: cannot read the schema: %s", src->path, sqlite3_errmsg(src->db));
    if (n_columns == 0)
        return set_error(errptr, "%s: no table ingest_receipts (is this a receipts database?)", src->path);
    char missing[256] = "";
    for (size_t i = 0; i < N_REQUIRED_COLUMNS; i++) {
        if (seen[i])
            continue;
        if (missing[0])
            strcat(missing, ", ");
        strcat(missing, required_columns[i]);
    }
    if (missing[0])
        return set_error(errptr, "%s: table ingest_receipts lacks column(s): %s", src->path, missing);
    return 0;
}

retape_source *retape_source_open(const char *path, char **errptr)
{
    retape_source *src = calloc(1, sizeof *src);
    if (!src || !(src->path = dup_string(path))) {
        free(src);
        set_error(errptr, "out of memory");
        return NULL;
    }
    retape_fs_stat before, after;
    char *ignored = NULL;
    int named = retape_fs_stat_of(path, &before, &ignored) == 0;
    free(ignored);
    if (sqlite3_open_v2(path, &src->db, SQLITE_OPEN_READONLY, retape_readahead_vfs()) != SQLITE_OK) {
        set_error(errptr, "%s: cannot open receipts database: %s", path,
                  src->db ? sqlite3_errmsg(src->db) : "out of memory");
        retape_source_close(src);
        return NULL;
    }
    /* Wait briefly if an importer holds a write lock.  No mmap: mapped pages
     * of a large receipts file count in RSS and grow with the rows read,
     * which hides real memory growth; the page cache stays bounded, at
     * 512 KB: a page it misses comes from the read-ahead windows (a copy,
     * no system call), and a threaded replay opens three connections (2 MB
     * each held 6 MB; a day of full-size bodies on one thread: 0.977x CPU
     * with 512 KB, 6 pairs).
     * The sort of one bucket's rows (ORDER BY ts, receipt_id, payloads
     * included) stays in memory: a bucket of full-size bodies (500 x 5 KB)
     * outgrows the cache, and SQLite's default spills it to a temporary
     * file, written and read back for every bucket (1-day corpus: 38 -> 17
     * us a row fetched; memory holds one bucket's rows at most). */
    sqlite3_busy_timeout(src->db, 5000);
    sqlite3_exec(src->db, "PRAGMA cache_size = -512; PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
    if (check_schema(src, errptr) != 0) {
        retape_source_close(src);
        return NULL;
    }
    /* which file it has open: the one the path named before the open and
     * still names after the first read (a rename in between: unknown) */
    ignored = NULL;
    if (named && retape_fs_stat_of(path, &after, &ignored) == 0 && after.dev == before.dev && after.ino == before.ino) {
        src->dev = before.dev, src->ino = before.ino;
        src->has_id = 1;
    }
    free(ignored);
    return src;
}

int retape_source_file_id(const retape_source *src, int64_t *dev, int64_t *ino)
{
    *dev = src->dev, *ino = src->ino;
    return src->has_id;
}

int retape_source_snapshot(retape_source *src, int hold, char **errptr)
{
    if (hold) {
        /* nested: the outer hold's snapshot serves the inner one */
        if (src->held++ > 0)
            return 0;
        /* BEGIN is deferred: the snapshot starts with the first read, so read
         * the schema once to pin it now. */
        if (sqlite3_exec(src->db, "BEGIN; SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
            src->held = 0;
            if (!sqlite3_get_autocommit(src->db))
                sqlite3_exec(src->db, "ROLLBACK", NULL, NULL, NULL);
            return set_error(errptr, "%s: cannot start a read transaction: %s", src->path, sqlite3_errmsg(src->db));
        }
    } else if (src->held > 1) {
        src->held--;
    } else {
        src->held = 0;
        if (!sqlite3_get_autocommit(src->db))
            sqlite3_exec(src->db, "COMMIT", NULL, NULL, NULL);
    }
    return 0;
}

int retape_source_holding(const retape_source *src)
{
    return src->held > 0;
}

void retape_source_busy_timeout(retape_source *src, int ms)
{
    sqlite3_busy_timeout(src->db, ms);
}

int retape_source_last_rowid(retape_source *src, int64_t *rowid, char **errptr)
{
    sqlite3_stmt *st = NULL;
    *rowid = 0;
    if (sqlite3_prepare_v2(src->db, "SELECT COALESCE(MAX(rowid), 0) FROM ingest_receipts", -1, &st, NULL) != SQLITE_OK)
        return set_error(errptr, "%s: cannot read the last receipt: %s", src->path, sqlite3_errmsg(src->db));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *rowid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return set_error(errptr, "%s: cannot read the last receipt: %s", src->path, sqlite3_errmsg(src->db));
    return 0;
}

void retape_source_close(retape_source *src)
{
    if (!src)
        return;
    sqlite3_finalize(src->spare);
    sqlite3_finalize(src->spare_tickers);
    sqlite3_finalize(src->spare_order);
    sqlite3_finalize(src->spare_order_tickers);
    sqlite3_finalize(src->spare_lookup);
    src->spare = src->spare_tickers = src->spare_order = src->spare_order_tickers = src->spare_lookup = NULL;
    sqlite3_close_v2(src->db); /* a cursor still open keeps it alive until closed */
    src->closed = 1;
    if (src->cursors == 0) {
        free(src->path);
        free(src);
    }
}

/* Encodes the ticker list as a JSON array for json_each(); NULL when the
 * scope has no ticker filter.  Tickers are [A-Z0-9.!-] in practice, but any
 * quote or backslash is escaped anyway.  Caller frees. */
static char *tickers_json(const retape_scope *scope)
{
    if (!scope->tickers)
        return NULL;
    size_t cap = 3;
    for (size_t i = 0; i < scope->n_tickers; i++)
        cap += 2 * strlen(scope->tickers[i]) + 3;
    char *out = malloc(cap), *p = out;
    if (!out)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < scope->n_tickers; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = scope->tickers[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = ']';
    *p = '\0';
    return out;
}

/* Where the source keeps a spare statement of sql, if it keeps one. */
static sqlite3_stmt **spare_of(retape_source *src, const char *sql)
{
    return sql == cursor_sql               ? &src->spare
           : sql == cursor_tickers_sql     ? &src->spare_tickers
           : sql == part_order_sql         ? &src->spare_order
           : sql == part_order_tickers_sql ? &src->spare_order_tickers
           : sql == lookup_sql             ? &src->spare_lookup
                                           : NULL;
}

/* Keeps st as the source's spare statement of sql (reset, bindings
 * cleared) if it has none, else finalizes it. */
static void keep_spare(retape_source *src, const char *sql, sqlite3_stmt *st)
{
    sqlite3_stmt **spare = src->closed ? NULL : spare_of(src, sql);
    if (spare && !*spare) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        *spare = st;
    } else {
        sqlite3_finalize(st);
    }
}

/* The source's spare statement of sql (reset, bindings cleared), or a new
 * one.  NULL + *errptr when it does not prepare. */
static sqlite3_stmt *take_statement(retape_source *src, const char *sql, char **errptr)
{
    sqlite3_stmt *st = NULL, **spare = spare_of(src, sql);
    if (spare && *spare) {
        st = *spare;
        *spare = NULL;
    } else if (sqlite3_prepare_v2(src->db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_error(errptr, "%s: %s", src->path, sqlite3_errmsg(src->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Takes one of the scoped statements (take_statement) and binds ?2 and ?3. */
static sqlite3_stmt *prepare_scoped(retape_source *src, const char *sql,
                                    const retape_scope *scope, char **errptr)
{
    sqlite3_stmt *st = take_statement(src, sql, errptr);
    if (!st)
        return NULL;
    if (scope->script_version)
        sqlite3_bind_text(st, 2, scope->script_version, -1, SQLITE_TRANSIENT);
    if (scope->tickers) {
        char *json = tickers_json(scope);
        if (!json) {
            sqlite3_finalize(st);
            set_error(errptr, "out of memory");
            return NULL;
        }
        sqlite3_bind_text(st, 3, json, -1, free);
    }
    return st;
}

int retape_source_buckets(retape_source *src, const retape_scope *scope,
                          int64_t **buckets, int64_t **counts, size_t *n, char **errptr)
{
    *buckets = NULL, *counts = NULL, *n = 0;
    const char *sql = scope->tickers ? list_tickers_sql : scope->script_version ? list_sql : list_all_sql;
    sqlite3_stmt *st = prepare_scoped(src, sql, scope, errptr);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, scope->from_bucket > RETAPE_TS_MIN ? scope->from_bucket : RETAPE_TS_MIN);
    sqlite3_bind_int64(st, 4, scope->to_bucket < RETAPE_TS_MAX - 1 ? scope->to_bucket : RETAPE_TS_MAX - 1);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 128;
            int64_t *nb = realloc(*buckets, cap * sizeof **buckets);
            if (nb)
                *buckets = nb;
            int64_t *nc = realloc(*counts, cap * sizeof **counts);
            if (nc)
                *counts = nc;
            if (!nb || !nc) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        (*buckets)[*n] = sqlite3_column_int64(st, 0);
        (*counts)[*n] = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    if (rc != SQLITE_DONE) {
        set_error(errptr, "%s: listing buckets: %s", src->path,
                  rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(src->db));
        sqlite3_finalize(st);
        free(*buckets), free(*counts);
        *buckets = NULL, *counts = NULL, *n = 0;
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int retape_source_bad_rows(retape_source *src, const retape_scope *scope, int64_t *n, char **first_id,
                           char **errptr)
{
    *n = 0, *first_id = NULL;
    int all = scope->from_bucket == INT64_MIN && scope->to_bucket == INT64_MAX;
    const char *sql = scope->tickers ? (all ? bad_all_tickers_sql : bad_range_tickers_sql)
                                     : (all ? bad_all_sql : bad_range_sql);
    sqlite3_stmt *st = prepare_scoped(src, sql, scope, errptr);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, scope->from_bucket);
    sqlite3_bind_int64(st, 4, scope->to_bucket);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        if (id && !(*first_id = dup_string(id))) {
            sqlite3_finalize(st);
            return set_error(errptr, "out of memory");
        }
    } else if (rc != SQLITE_DONE) {
        set_error(errptr, "%s: counting bad rows: %s", src->path, sqlite3_errmsg(src->db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

retape_cursor *retape_cursor_open(retape_source *src, const retape_scope *scope,
                                  int64_t bucket, char **errptr)
{
    retape_cursor *cur = calloc(1, sizeof *cur);
    if (!cur) {
        set_error(errptr, "out of memory");
        return NULL;
    }
    cur->sql = scope->tickers ? cursor_tickers_sql : cursor_sql;
    cur->stmt = prepare_scoped(src, cur->sql, scope, errptr);
    if (!cur->stmt) {
        free(cur);
        return NULL;
    }
    sqlite3_bind_int64(cur->stmt, 1, bucket);
    cur->src = src;
    src->cursors++;
    return cur;
}

int retape_source_list_parts(retape_source *src, const retape_scope *scope, int64_t bucket, unsigned parts,
                             int64_t first, int64_t stop, retape_listed_row **rows, size_t *n, int *more,
                             char **errptr)
{
    *rows = NULL, *n = 0, *more = 0;
    const char *order_sql = scope->tickers ? part_order_tickers_sql : part_order_sql;
    sqlite3_stmt *order = prepare_scoped(src, order_sql, scope, errptr);
    if (!order)
        return -1;
    sqlite3_bind_int64(order, 1, bucket);
    size_t cap = 0;
    int rc;
    for (int64_t index = 0; (rc = sqlite3_step(order)) == SQLITE_ROW; index++) {
        if (index < first)
            continue;
        if (stop >= 0 && index >= stop) {
            *more = 1;
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            retape_listed_row *grown = realloc(*rows, cap * sizeof *grown);
            if (!grown) {
                rc = SQLITE_NOMEM;
                break;
            }
            *rows = grown;
        }
        const char *ticker = (const char *)sqlite3_column_text(order, 1);
        retape_listed_row *r = &(*rows)[(*n)++];
        memset(r, 0, sizeof *r); /* its padding too: the list is copied as bytes */
        r->rowid = sqlite3_column_int64(order, 0);
        r->index = index;
        r->ts = sqlite3_column_type(order, 2) == SQLITE_INTEGER ? sqlite3_column_int64(order, 2) : INT64_MIN;
        r->part = retape_part_of(ticker ? ticker : "", parts);
        r->check = row_check(sqlite3_column_text(order, 3), (const unsigned char *)ticker, sqlite3_column_text(order, 4));
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        set_error(errptr, "reading receipts: %s", rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(src->db));
        sqlite3_finalize(order);
        free(*rows);
        *rows = NULL, *n = 0;
        return -1;
    }
    keep_spare(src, order_sql, order);
    return 0;
}

retape_cursor *retape_cursor_open_rows(retape_source *src, const void *rows, size_t n, char **errptr)
{
    retape_cursor *cur = calloc(1, sizeof *cur);
    if (!cur || (n && !(cur->rows = malloc(n * sizeof *cur->rows)))) {
        free(cur);
        set_error(errptr, "out of memory");
        return NULL;
    }
    if (n)
        memcpy(cur->rows, rows, n * sizeof *cur->rows);
    cur->n_rows = n;
    cur->src = src;
    cur->part = 1;
    cur->sql = lookup_sql;
    if (!(cur->stmt = take_statement(src, lookup_sql, errptr))) {
        free(cur->rows);
        free(cur);
        return NULL;
    }
    src->cursors++;
    return cur;
}

int64_t retape_cursor_index(const retape_cursor *cur)
{
    return cur->part && cur->next_row > 0 ? cur->rows[cur->next_row - 1].index : -1;
}

/* Steps cur's statement to its next row: SQLITE_ROW, SQLITE_DONE or an
 * error code; SQLITE_NOTFOUND when a listed row is not what was listed. */
static int step_cursor(retape_cursor *cur)
{
    if (!cur->part)
        return sqlite3_step(cur->stmt);
    sqlite3_reset(cur->stmt);
    if (cur->next_row == cur->n_rows)
        return SQLITE_DONE;
    const retape_listed_row *r = &cur->rows[cur->next_row++];
    sqlite3_bind_int64(cur->stmt, 1, r->rowid);
    int rc = sqlite3_step(cur->stmt);
    if (rc == SQLITE_DONE)
        return SQLITE_NOTFOUND;
    if (rc == SQLITE_ROW) {
        sqlite3_stmt *st = cur->stmt;
        int64_t ts = sqlite3_column_type(st, 2) == SQLITE_INTEGER ? sqlite3_column_int64(st, 2) : INT64_MIN;
        if (ts != r->ts ||
            row_check(sqlite3_column_text(st, 0), sqlite3_column_text(st, 1), sqlite3_column_text(st, 6)) != r->check)
            return SQLITE_NOTFOUND;
    }
    return rc;
}

int retape_cursor_next(retape_cursor *cur, retape_receipt *row, char **errptr)
{
    if (!cur->stmt || cur->done)
        return 0;
    int rc = step_cursor(cur);
    if (rc == SQLITE_DONE) {
        cur->done = 1;
        return 0;
    }
    if (rc != SQLITE_ROW) {
        cur->done = 1;
        if (rc == SQLITE_NOTFOUND) {
            const retape_listed_row *r = &cur->rows[cur->next_row - 1];
            return set_error(errptr, "reading receipts: row %lld of bucket %lld (rowid %lld) is not the one listed "
                                     "for this run: the receipts file changed under it (run it again)",
                             (long long)r->index, (long long)retape_time_bucket_5m(r->ts), (long long)r->rowid);
        }
        return set_error(errptr, "reading receipts: %s", sqlite3_errmsg(sqlite3_db_handle(cur->stmt)));
    }
    sqlite3_stmt *st = cur->stmt;
    row->receipt_id = (const char *)sqlite3_column_text(st, 0);
    row->ticker = (const char *)sqlite3_column_text(st, 1);
    row->ts = sqlite3_column_type(st, 2) == SQLITE_INTEGER ? sqlite3_column_int64(st, 2) : INT64_MIN;
    row->bucket_5m = sqlite3_column_int64(st, 3);
    row->script_version = (const char *)sqlite3_column_text(st, 4);
    row->payload = (const char *)sqlite3_column_text(st, 5);
    row->payload_len = (size_t)sqlite3_column_bytes(st, 5);
    if (!row->receipt_id)
        row->receipt_id = "";
    if (!row->ticker)
        row->ticker = "";
    return 1;
}

void retape_cursor_close(retape_cursor *cur)
{
    if (!cur)
        return;
    retape_source *src = cur->src;
    /* kept for the next cursor (reset: no read lock held, no row pinned) */
    if (src && cur->stmt)
        keep_spare(src, cur->sql, cur->stmt);
    else
        sqlite3_finalize(cur->stmt);
    free(cur->rows);
    free(cur);
    if (src && --src->cursors == 0 && src->closed) {
        free(src->path);
        free(src);
    }
}
