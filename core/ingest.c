/*
 * ingest.c — writing receipts: the original DDL, INSERT OR IGNORE inserts in
 * periodic transactions, a raw-span finder for JSON values (the payload
 * text must be kept byte for byte, since its hash is part of the receipt
 * id), and readers for JSON-lines files and SQL dumps.
 */
#define _POSIX_C_SOURCE 200809L
#include "ingest.h"
#include "decode.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The DDL and indexes of the original worker's d1-schema.sql, unchanged. */
static const char receipts_ddl[] =
    "CREATE TABLE IF NOT EXISTS ingest_receipts (\n"
    "  receipt_id TEXT PRIMARY KEY,\n"
    "  ticker TEXT NOT NULL,\n"
    "  ts INTEGER NOT NULL,\n"
    "  bucket_5m INTEGER NOT NULL,\n"
    "  received_ts INTEGER NOT NULL,\n"
    "  payload_hash TEXT NOT NULL,\n"
    "  script_version TEXT,\n"
    "  payload_json TEXT\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS idx_ingest_receipts_ts ON ingest_receipts (ts);\n"
    "CREATE INDEX IF NOT EXISTS idx_ingest_receipts_bucket ON ingest_receipts (bucket_5m);\n"
    "CREATE INDEX IF NOT EXISTS idx_ingest_receipts_ticker_bucket ON ingest_receipts (ticker, bucket_5m);\n";

/* The staging copy for SQL dumps: same columns, no constraints, TEMP so that
 * an unqualified `INSERT INTO ingest_receipts` of a dump lands here first. */
static const char staging_ddl[] =
    "CREATE TEMP TABLE IF NOT EXISTS ingest_receipts (receipt_id, ticker, ts, bucket_5m,"
    " received_ts, payload_hash, script_version, payload_json)";

static const char insert_sql[] =
    "INSERT OR IGNORE INTO main.ingest_receipts (receipt_id, ticker, ts, bucket_5m,"
    " received_ts, payload_hash, script_version, payload_json) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)";

struct retape_writer {
    sqlite3 *db;
    sqlite3_stmt *insert;
    char *path;
    int commit_every;
    int pending;   /* inserts since the last commit */
    int staging;   /* 1 while a dump statement runs: the authorizer is armed */
    long progress_left; /* progress callbacks the running dump statement may still take */
};

/* Work a dump statement may do: SQLite VM steps per byte of its text (a
 * VALUES list needs well under one), checked every STAGE_PROGRESS_STEP. */
#define STAGE_STEPS_PER_BYTE 16
#define STAGE_STEPS_BASE 1000000L
#define STAGE_PROGRESS_STEP 1000
/* Longest string or blob a dump statement may build (randomblob, zeroblob...). */
#define STAGE_MAX_LENGTH (64 << 20)

/* Progress handler while staging: interrupts a statement past its budget
 * (an INSERT ... SELECT over a cross join, a recursive CTE). */
static int stage_progress(void *ud)
{
    retape_writer *w = ud;
    return --w->progress_left < 0;
}

static int exec_sql(retape_writer *w, const char *sql, char **errptr)
{
    char *msg = NULL;
    if (sqlite3_exec(w->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_error(errptr, "%s: %s", w->path, msg ? msg : sqlite3_errmsg(w->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* While a dump statement runs, only reads and inserts into the staging table
 * are allowed, so a dump can never touch main.ingest_receipts or anything
 * else directly. */
static int staging_authorizer(void *ud, int action, const char *a, const char *b,
                              const char *db, const char *trigger)
{
    (void)b, (void)trigger;
    retape_writer *w = ud;
    if (!w->staging)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_SELECT: /* the VALUES list of a multi-row insert */
    case SQLITE_FUNCTION:
        return SQLITE_OK;
    case SQLITE_READ: /* rows come from the statement's text, never from tables */
        return SQLITE_DENY;
    case SQLITE_INSERT:
        return (a && db && strcmp(a, "ingest_receipts") == 0 && strcmp(db, "temp") == 0)
                   ? SQLITE_OK : SQLITE_DENY;
    default:
        return SQLITE_DENY;
    }
}

retape_writer *retape_writer_open(const char *path, int commit_every, char **errptr)
{
    retape_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = dup_string(path))) {
        free(w);
        set_error(errptr, "out of memory");
        return NULL;
    }
    w->commit_every = commit_every > 0 ? commit_every : 5000;
    if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        set_error(errptr, "%s: cannot open database for writing: %s", path,
                  w->db ? sqlite3_errmsg(w->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(w->db, 5000);
    if (exec_sql(w, receipts_ddl, errptr) != 0 || exec_sql(w, staging_ddl, errptr) != 0)
        goto fail;
    if (sqlite3_prepare_v2(w->db, insert_sql, -1, &w->insert, NULL) != SQLITE_OK) {
        set_error(errptr, "%s: %s", path, sqlite3_errmsg(w->db));
        goto fail;
    }
    sqlite3_set_authorizer(w->db, staging_authorizer, w);
    return w;
fail:
    sqlite3_finalize(w->insert);
    sqlite3_close(w->db);
    free(w->path);
    free(w);
    return NULL;
}

int retape_writer_insert(retape_writer *w, const retape_receipt_row *row, char **errptr)
{
    if (w->pending == 0 && exec_sql(w, "BEGIN", errptr) != 0)
        return -1;
    sqlite3_stmt *st = w->insert;
    sqlite3_bind_text(st, 1, row->receipt_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->ticker, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, row->ts);
    sqlite3_bind_int64(st, 4, row->bucket_5m);
    sqlite3_bind_int64(st, 5, row->received_ts);
    sqlite3_bind_text(st, 6, row->payload_hash, -1, SQLITE_STATIC);
    if (row->script_version)
        sqlite3_bind_text(st, 7, row->script_version, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    if (row->payload_json)
        sqlite3_bind_text(st, 8, row->payload_json, (int)row->payload_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return set_error(errptr, "%s: inserting %s: %s", w->path, row->receipt_id, sqlite3_errmsg(w->db));
    int inserted = sqlite3_changes(w->db) > 0;
    if (++w->pending >= w->commit_every) {
        w->pending = 0;
        if (exec_sql(w, "COMMIT", errptr) != 0)
            return -1;
    }
    return inserted;
}

int retape_writer_commit(retape_writer *w, char **errptr)
{
    if (w->pending == 0)
        return 0;
    w->pending = 0;
    return exec_sql(w, "COMMIT", errptr);
}

int retape_writer_wal(retape_writer *w, char **errptr)
{
    if (retape_writer_commit(w, errptr) != 0)
        return -1;
    return exec_sql(w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0", errptr);
}

int retape_writer_close(retape_writer *w, char **errptr)
{
    if (!w)
        return 0;
    int rc = 0;
    if (w->pending > 0)
        rc = exec_sql(w, "COMMIT", errptr);
    sqlite3_finalize(w->insert);
    sqlite3_close(w->db);
    free(w->path);
    free(w);
    return rc;
}

int retape_writer_stage_sql(retape_writer *w, const char *sql, retape_stage_fn fn, void *ud, char **errptr)
{
    char *msg = NULL;
    w->staging = 1;
    w->progress_left = (long)((strlen(sql) * STAGE_STEPS_PER_BYTE + STAGE_STEPS_BASE) / STAGE_PROGRESS_STEP);
    sqlite3_progress_handler(w->db, STAGE_PROGRESS_STEP, stage_progress, w);
    int old_length = sqlite3_limit(w->db, SQLITE_LIMIT_LENGTH, STAGE_MAX_LENGTH);
    int rc = sqlite3_exec(w->db, sql, NULL, NULL, &msg);
    sqlite3_limit(w->db, SQLITE_LIMIT_LENGTH, old_length);
    sqlite3_progress_handler(w->db, 0, NULL, NULL);
    w->staging = 0;
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_INTERRUPT)
            set_error(errptr, "the statement exceeds the work an INSERT of its size needs (an INSERT ... SELECT?)");
        else
            set_error(errptr, "%s", msg ? msg : sqlite3_errmsg(w->db));
        sqlite3_free(msg);
        exec_sql(w, "DELETE FROM temp.ingest_receipts", NULL);
        return -1;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(w->db, "SELECT * FROM temp.ingest_receipts ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
        return set_error(errptr, "%s: %s", w->path, sqlite3_errmsg(w->db));
    int n = 0, stopped = 0;
    while (!stopped && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        retape_staged_row row;
        for (int i = 0; i < 8; i++) {
            row.col[i] = (const char *)sqlite3_column_text(st, i);
            row.len[i] = (size_t)sqlite3_column_bytes(st, i);
        }
        n++;
        stopped = fn(&row, ud) != 0;
    }
    sqlite3_finalize(st);
    exec_sql(w, "DELETE FROM temp.ingest_receipts", NULL);
    if (stopped)
        return -2;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return set_error(errptr, "%s: %s", w->path, sqlite3_errmsg(w->db));
    return n;
}

/* ------------------------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Index just past the string starting at s[i] == '"', or 0 if unterminated. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Index just past the JSON value starting at s[i], or 0 if malformed.  Only
 * the structure is checked (balanced brackets, terminated strings). */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return 0;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                if (!i)
                    return 0;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return 0;
    }
    size_t start = i;
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' '
           && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
        i++;
    return i > start ? i : 0;
}

/* Strict JSON (RFC 8259) recognizer over s[*i..n): advances *i past one
 * value; returns 0, or -1 with *i at the offending byte and c->why set.
 * Beyond the grammar: numbers must be finite as doubles (1e400 is not),
 * and no object may hold the same key twice (decoders disagree on which
 * one wins).  depth bounds the nesting. */
typedef struct key_span { const char *at; size_t len; } key_span;

typedef struct strict_ctx {
    const char *s;
    size_t n;
    const char *why;   /* what broke the text (static) */
    key_span *keys;    /* keys of the objects being read, innermost last */
    size_t n_keys, cap_keys;
} strict_ctx;

static int strict_value(strict_ctx *c, size_t *i, int depth);

static int strict_string(strict_ctx *c, size_t *i)
{
    const char *s = c->s;
    size_t n = c->n, k = *i + 1; /* past the opening quote */
    c->why = "not strict JSON";
    while (k < n) {
        unsigned char ch = (unsigned char)s[k];
        if (ch == '"') {
            *i = k + 1;
            return 0;
        }
        if (ch < 0x20)
            break;
        if (ch == '\\') {
            if (k + 1 >= n)
                break;
            char e = s[k + 1];
            if (e == 'u') {
                for (int h = 2; h < 6; h++) {
                    char x = k + (size_t)h < n ? s[k + (size_t)h] : '\0';
                    if (!((x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F'))) {
                        *i = k + (size_t)h;
                        return -1;
                    }
                }
                k += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                k++;
                break;
            }
            k += 2;
            continue;
        }
        k++;
    }
    *i = k;
    return -1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int strict_number(strict_ctx *c, size_t *i)
{
    const char *s = c->s;
    size_t n = c->n, k = *i;
    c->why = "not strict JSON";
    if (k < n && s[k] == '-')
        k++;
    if (k < n && s[k] == '0')
        k++;
    else if (k < n && s[k] >= '1' && s[k] <= '9')
        while (k < n && is_digit(s[k]))
            k++;
    else
        goto bad;
    if (k < n && s[k] == '.') {
        k++;
        if (k >= n || !is_digit(s[k]))
            goto bad;
        while (k < n && is_digit(s[k]))
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k >= n || !is_digit(s[k]))
            goto bad;
        while (k < n && is_digit(s[k]))
            k++;
    }
    if (!decode_number_finite(s + *i, k - *i)) {
        c->why = "a number out of range (not finite as a double)";
        return -1; /* *i stays at the number */
    }
    *i = k;
    return 0;
bad:
    *i = k;
    return -1;
}

static int compare_keys(const void *a, const void *b)
{
    const key_span *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int d = memcmp(x->at, y->at, m);
    if (d)
        return d;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at; /* equal keys: in text order */
}

/* Checks the keys c->keys[base..] of one object for a repeat; returns the
 * position of the second occurrence of the first repeated key, or NULL.
 * Pops them. */
static const char *repeated_key(strict_ctx *c, size_t base)
{
    const char *dup = NULL;
    size_t m = c->n_keys - base;
    key_span *k = c->keys + base;
    if (m > 1) {
        qsort(k, m, sizeof *k, compare_keys);
        for (size_t j = 1; j < m; j++)
            if (k[j].len == k[j - 1].len && memcmp(k[j].at, k[j - 1].at, k[j].len) == 0
                && (!dup || k[j].at < dup))
                dup = k[j].at;
    }
    c->n_keys = base;
    return dup;
}

static int strict_value(strict_ctx *c, size_t *i, int depth)
{
    const char *s = c->s;
    size_t n = c->n;
    size_t k = skip_ws(s, *i, n);
    *i = k;
    c->why = depth > 1000 ? "nested deeper than 1000 levels" : "not strict JSON";
    if (k >= n || depth > 1000)
        return -1;
    char ch = s[k];
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        size_t base = c->n_keys;
        k = skip_ws(s, k + 1, n);
        if (k < n && s[k] == close) {
            *i = k + 1;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                k = skip_ws(s, k, n);
                if (k >= n || s[k] != '"') {
                    *i = k;
                    return -1;
                }
                *i = k;
                if (strict_string(c, i) != 0)
                    return -1;
                if (c->n_keys == c->cap_keys) {
                    size_t cap = c->cap_keys ? 2 * c->cap_keys : 64;
                    key_span *nk = realloc(c->keys, cap * sizeof *nk);
                    if (!nk) {
                        c->why = "out of memory";
                        return -1;
                    }
                    c->keys = nk, c->cap_keys = cap;
                }
                c->keys[c->n_keys++] = (key_span){s + k + 1, *i - k - 2};
                k = skip_ws(s, *i, n);
                if (k >= n || s[k] != ':') {
                    *i = k;
                    c->why = "not strict JSON";
                    return -1;
                }
                k++;
            }
            *i = k;
            if (strict_value(c, i, depth + 1) != 0)
                return -1;
            k = skip_ws(s, *i, n);
            if (k < n && s[k] == ',') {
                k++;
                continue;
            }
            *i = k;
            c->why = "not strict JSON";
            if (k < n && s[k] == close) {
                *i = k + 1;
                const char *dup = ch == '{' ? repeated_key(c, base) : NULL;
                if (dup) {
                    *i = (size_t)(dup - s) - 1; /* at its opening quote */
                    c->why = "a key repeated in one object";
                    return -1;
                }
                return 0;
            }
            return -1;
        }
    }
    if (ch == '"')
        return strict_string(c, i);
    if (ch == '-' || is_digit(ch))
        return strict_number(c, i);
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t wl = strlen(words[w]);
        if (n - k >= wl && memcmp(s + k, words[w], wl) == 0) {
            *i = k + wl;
            return 0;
        }
    }
    return -1;
}

size_t retape_json_invalid_at(const char *json, size_t len, const char **why)
{
    strict_ctx c = {.s = json, .n = len, .why = "not strict JSON"};
    size_t i = 0, at = 0;
    if (strict_value(&c, &i, 0) != 0) {
        at = i + 1;
    } else {
        i = skip_ws(json, i, len);
        if (i < len) {
            at = i + 1;
            c.why = "not strict JSON (text after the value)";
        }
    }
    free(c.keys);
    if (why)
        *why = at ? c.why : NULL;
    return at;
}

int retape_json_value_span(const char *json, size_t len, const char *key, size_t *off, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(json, 0, len);
    if (i >= len || json[i] != '{')
        return -1;
    i = skip_ws(json, i + 1, len);
    if (i < len && json[i] == '}')
        return 0;
    while (i < len) {
        if (json[i] != '"')
            return -1;
        size_t kend = skip_string(json, i, len);
        if (!kend)
            return -1;
        int match = kend - i - 2 == klen && memcmp(json + i + 1, key, klen) == 0;
        i = skip_ws(json, kend, len);
        if (i >= len || json[i] != ':')
            return -1;
        i = skip_ws(json, i + 1, len);
        size_t vend = skip_value(json, i, len);
        if (!vend)
            return -1;
        if (match) {
            *off = i;
            *vlen = vend - i;
            return 1;
        }
        i = skip_ws(json, vend, len);
        if (i < len && json[i] == '}')
            return 0;
        if (i >= len || json[i] != ',')
            return -1;
        i = skip_ws(json, i + 1, len);
    }
    return -1;
}

/* ------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------- */

/* The line reader.  A gzip input is inflated here, member by member (zlib's
 * inflate rather than gzread, which hides member boundaries and ignores any
 * bytes after the last member).  A gzip file that can be re-read (a regular
 * file) is checked whole when opened: every member's CRC and length, and
 * what follows the last one.  The first damaged member is then known before
 * any line is read: the reader stops where that member starts, so nothing
 * decoded from it is ever returned, and the problem can be reported first
 * (retape_lines_problem).  Lines longer than max_line are skipped without
 * being held in memory; blank lines may be skipped here, at scan speed. */
struct retape_lines {
    int fd;
    char *path;
    int gz;                /* 1: gzip input (magic 1f 8b) */
    z_stream zs;
    int zs_ready;          /* inflateInit2 done */
    unsigned char *in;     /* compressed bytes read ahead (zs.next_in/avail_in inside) */
    int in_eof;
    uint64_t in_read;      /* bytes read from fd so far */
    uint64_t member_start; /* offset of the current member */
    long member;           /* current member, 0-based */
    int member_done;       /* the current member ended (Z_STREAM_END) */
    long bad_member;       /* the check's first damaged member, -1 none */
    char *problem;         /* the check's message, or NULL */
    char *buf;             /* the current line (may hold NUL bytes; len is exact) */
    size_t cap, len;
    long lineno;
    int unread;            /* the current line is to be returned again */
    char *chunk;           /* bytes read ahead from the (decompressed) input */
    size_t chunk_len, chunk_pos;
    int eof;
    size_t max_line;
    int skip_blank;
    char *sql;             /* statement accumulator for retape_sql_next */
    size_t sql_cap;
};

#define CHUNK_BYTES (1 << 17)
#define IN_BYTES (1 << 17)

/* Makes at least `need` compressed bytes available at zs.next_in, unless the
 * input ends first (in_eof).  0, or -1 on a read error. */
static int fill_input(retape_lines *lr, size_t need, char **errptr)
{
    while (lr->zs.avail_in < need && !lr->in_eof) {
        if (lr->zs.avail_in > 0 && lr->zs.next_in != lr->in)
            memmove(lr->in, lr->zs.next_in, lr->zs.avail_in);
        lr->zs.next_in = lr->in;
        ssize_t n;
        do
            n = read(lr->fd, lr->in + lr->zs.avail_in, IN_BYTES - lr->zs.avail_in);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return set_error(errptr, "%s: cannot read: %s", lr->path, strerror(errno));
        if (n == 0)
            lr->in_eof = 1;
        lr->zs.avail_in += (uInt)n;
        lr->in_read += (uint64_t)n;
    }
    return 0;
}

/* Inflates up to cap bytes into out (*produced; 0 with lr->eof at the end
 * of the input).  -1 with a message for a damaged or truncated member (or
 * the member the check found damaged), or bytes after the last member that
 * are not another member. */
static int inflate_some(retape_lines *lr, char *out, size_t cap, size_t *produced, char **errptr)
{
    *produced = 0;
    for (;;) {
        if (lr->member_done) {
            if (fill_input(lr, 2, errptr) != 0)
                return -1;
            if (lr->zs.avail_in == 0) {
                lr->eof = 1;
                return 0;
            }
            uint64_t at = lr->in_read - lr->zs.avail_in;
            if (lr->zs.avail_in < 2 || lr->zs.next_in[0] != 0x1f || lr->zs.next_in[1] != 0x8b)
                return set_error(errptr, "%s: trailing garbage after the compressed data (from byte %llu): "
                                 "not a gzip member, not read", lr->path, (unsigned long long)at);
            lr->member++;
            lr->member_start = at;
            lr->member_done = 0;
            inflateReset(&lr->zs);
        }
        if (lr->member == lr->bad_member)
            return set_error(errptr, "%s", lr->problem);
        if (lr->zs.avail_in == 0 && fill_input(lr, 1, errptr) != 0)
            return -1;
        lr->zs.next_out = (unsigned char *)out;
        lr->zs.avail_out = (uInt)cap;
        int rc = inflate(&lr->zs, Z_NO_FLUSH);
        size_t n = cap - lr->zs.avail_out;
        if (rc == Z_STREAM_END)
            lr->member_done = 1;
        else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR)
            return set_error(errptr, "%s: cannot read: gzip member %ld (from byte %llu) is corrupt (%s); "
                             "nothing of it is imported", lr->path, lr->member + 1,
                             (unsigned long long)lr->member_start, lr->zs.msg ? lr->zs.msg : "bad data");
        else if (rc == Z_MEM_ERROR)
            return set_error(errptr, "%s: out of memory", lr->path);
        else if (n == 0 && lr->zs.avail_in == 0 && lr->in_eof)
            return set_error(errptr, "%s: the compressed input is truncated: gzip member %ld (from byte %llu) "
                             "ends early; nothing of it is imported", lr->path, lr->member + 1,
                             (unsigned long long)lr->member_start);
        if (n > 0) {
            *produced = n;
            return 0;
        }
    }
}

/* Copies a gzip stream that cannot be re-read (a pipe: standard input) to
 * an unlinked temporary file, compressed as it came, so that it is checked
 * whole before any of its lines is read, like a file.  0, or -1 with a
 * message (then lr->fd is unchanged). */
static int spool_input(retape_lines *lr, char **errptr)
{
    FILE *tmp = tmpfile();
    if (!tmp)
        return set_error(errptr, "%s: cannot make a temporary file to check the compressed input: %s", lr->path,
                         strerror(errno));
    int ok = fwrite(lr->zs.next_in, 1, lr->zs.avail_in, tmp) == lr->zs.avail_in;
    ssize_t n;
    while (ok && (n = read(lr->fd, lr->in, IN_BYTES)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0 && fwrite(lr->in, 1, (size_t)n, tmp) == (size_t)n;
    }
    int fd = ok && fflush(tmp) == 0 ? dup(fileno(tmp)) : -1;
    fclose(tmp);
    if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0) {
        if (fd >= 0)
            close(fd);
        return set_error(errptr, "%s: cannot spool the compressed input to a temporary file: %s", lr->path,
                         strerror(errno));
    }
    close(lr->fd);
    lr->fd = fd;
    lr->zs.avail_in = 0;
    lr->zs.next_in = lr->in;
    return 0;
}

/* Checks a gzip input whole (every member, what follows the last) and
 * rewinds it.  Records the first damaged member and the message. */
static void check_members(retape_lines *lr)
{
    char *err = NULL;
    size_t n;
    while (!lr->eof && inflate_some(lr, lr->chunk, CHUNK_BYTES, &n, &err) == 0)
        ;
    if (err) {
        lr->problem = err;
        lr->bad_member = lr->member_done ? -1 : lr->member; /* trailing bytes: every member is whole */
    }
    if (lseek(lr->fd, 0, SEEK_SET) != 0) { /* cannot rewind: read nothing */
        lr->bad_member = 0;
        if (!lr->problem)
            set_error(&lr->problem, "%s: cannot rewind after checking it", lr->path);
    }
    inflateReset(&lr->zs);
    lr->zs.avail_in = 0;
    lr->zs.next_in = lr->in;
    lr->in_eof = 0;
    lr->in_read = 0;
    lr->member = 0;
    lr->member_start = 0;
    lr->member_done = 0;
    lr->eof = 0;
}

retape_lines *retape_lines_open(const char *path, size_t max_line, int skip_blank, char **errptr)
{
    retape_lines *lr = calloc(1, sizeof *lr);
    int is_stdin = strcmp(path, "-") == 0;
    if (!lr || !(lr->path = dup_string(is_stdin ? "<stdin>" : path)) || !(lr->chunk = malloc(CHUNK_BYTES))
        || !(lr->in = malloc(IN_BYTES))) {
        if (lr)
            lr->fd = -1;
        retape_lines_close(lr);
        set_error(errptr, "out of memory");
        return NULL;
    }
    lr->bad_member = -1;
    lr->max_line = max_line ? max_line : RETAPE_MAX_LINE_DEFAULT;
    lr->skip_blank = skip_blank;
    lr->fd = is_stdin ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (lr->fd < 0) {
        set_error(errptr, "%s: cannot open: %s", lr->path, strerror(errno));
        retape_lines_close(lr);
        return NULL;
    }
    lr->zs.next_in = lr->in;
    char *err = NULL;
    if (fill_input(lr, 2, &err) != 0) {
        set_error(errptr, "%s", err);
        free(err);
        retape_lines_close(lr);
        return NULL;
    }
    lr->gz = lr->zs.avail_in >= 2 && lr->in[0] == 0x1f && lr->in[1] == 0x8b;
    size_t plen = strlen(path);
    if (!lr->gz && plen > 3 && strcmp(path + plen - 3, ".gz") == 0) /* named gzip, damaged from its first byte */
        set_error(&lr->problem, "%s: cannot read: not gzip data (no gzip header at byte 0); nothing of it is imported",
                  lr->path);
    if (lr->gz) {
        if (inflateInit2(&lr->zs, 15 + 16) != Z_OK) { /* gzip framing only */
            set_error(errptr, "%s: out of memory", lr->path);
            retape_lines_close(lr);
            return NULL;
        }
        lr->zs_ready = 1;
        struct stat st;
        if ((fstat(lr->fd, &st) != 0 || !S_ISREG(st.st_mode)) && spool_input(lr, &err) != 0) {
            set_error(errptr, "%s", err);
            free(err);
            retape_lines_close(lr);
            return NULL;
        }
        check_members(lr);
    }
    return lr;
}

const char *retape_lines_problem(const retape_lines *lr)
{
    return lr->problem;
}

/* Refills the read-ahead chunk.  0 = bytes (or end of input: lr->eof),
 * -1 = a read error, a damaged or truncated member, trailing garbage. */
static int refill(retape_lines *lr, char **errptr)
{
    lr->chunk_len = lr->chunk_pos = 0;
    if (lr->gz) {
        char *err = NULL;
        if (inflate_some(lr, lr->chunk, CHUNK_BYTES, &lr->chunk_len, &err) != 0) {
            if (lr->lineno > 0)
                set_error(errptr, "%s (after line %ld)", err, lr->lineno);
            else
                set_error(errptr, "%s", err);
            free(err);
            return -1;
        }
        return 0;
    }
    if (lr->problem) /* a .gz without a gzip header */
        return set_error(errptr, "%s", lr->problem);
    if (lr->zs.avail_in > 0) { /* the bytes read to detect the format */
        memcpy(lr->chunk, lr->zs.next_in, lr->zs.avail_in);
        lr->chunk_len = lr->zs.avail_in;
        lr->zs.avail_in = 0;
        return 0;
    }
    ssize_t n;
    do
        n = read(lr->fd, lr->chunk, CHUNK_BYTES);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return set_error(errptr, "%s: line %ld: cannot read: %s", lr->path, lr->lineno + 1, strerror(errno));
    lr->chunk_len = (size_t)n;
    if (n == 0)
        lr->eof = 1;
    return 0;
}

/* 1 if the line holds only blanks JSON ignores (space, tab, CR). */
static int blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

int retape_lines_next(retape_lines *lr, const char **line, size_t *len, long *lineno, char **errptr)
{
    if (lr->unread) {
        lr->unread = 0;
        *line = lr->buf, *len = lr->len, *lineno = lr->lineno;
        return 1;
    }
    for (;;) {
        size_t used = 0, total = 0;
        int complete = 0, over = 0;
        while (!complete) {
            if (lr->chunk_pos == lr->chunk_len) {
                if (lr->eof)
                    break;
                if (refill(lr, errptr) != 0)
                    return -1;
                continue;
            }
            if (lr->skip_blank && total == 0) { /* runs of empty lines, without a call each */
                while (lr->chunk_pos < lr->chunk_len && lr->chunk[lr->chunk_pos] == '\n') {
                    lr->chunk_pos++;
                    lr->lineno++;
                }
                if (lr->chunk_pos == lr->chunk_len)
                    continue;
            }
            const char *from = lr->chunk + lr->chunk_pos;
            size_t avail = lr->chunk_len - lr->chunk_pos;
            const char *nl = memchr(from, '\n', avail);
            size_t take = nl ? (size_t)(nl - from) + 1 : avail;
            total += take;
            lr->chunk_pos += take;
            complete = nl != NULL;
            if (over)
                continue;
            if (total - (nl ? 1 : 0) > lr->max_line + 1) { /* + 1: a CR before the newline */
                over = 1;
                continue;
            }
            if (grow_buffer(&lr->buf, &lr->cap, used + take + 1, 65536) != 0)
                return set_error(errptr, "%s: line %ld: out of memory", lr->path, lr->lineno + 1);
            memcpy(lr->buf + used, from, take);
            used += take;
        }
        if (total == 0)
            return 0; /* end of input */
        lr->lineno++;
        *lineno = lr->lineno;
        if (over) {
            lr->len = 0;
            *line = NULL;
            *len = total - (complete ? 1 : 0);
            return 2;
        }
        while (used > 0 && (lr->buf[used - 1] == '\n' || lr->buf[used - 1] == '\r'))
            used--;
        if (used > lr->max_line) { /* the CR allowance above was not a CR */
            lr->len = 0;
            *line = NULL;
            *len = used;
            return 2;
        }
        lr->buf[used] = '\0';
        lr->len = used;
        if (lr->skip_blank && blank_line(lr->buf, used))
            continue;
        *line = lr->buf;
        *len = used;
        return 1;
    }
}

/* Index past the SQL comments and white space starting at s[i]; *open is
 * set when the text ends inside a block comment (if open is not NULL). */
static size_t skip_sql_space(const char *s, size_t i, size_t n, int *open)
{
    if (open)
        *open = 0;
    for (;;) {
        i = skip_ws(s, i, n);
        if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
            const char *nl = memchr(s + i, '\n', n - i);
            i = nl ? (size_t)(nl - s) + 1 : n;
        } else if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < n && !(s[j] == '*' && s[j + 1] == '/'))
                j++;
            if (j + 1 >= n && open)
                *open = 1;
            i = j + 1 < n ? j + 2 : n;
        } else {
            return i;
        }
    }
}

/* 1 if the line starts, at its first byte, with a word that begins a
 * statement of a dump (as sqlite3 .dump and D1 exports write them). */
static int starts_statement(const char *s, size_t n)
{
    static const char *const words[] = {
        "INSERT", "REPLACE", "CREATE", "BEGIN", "COMMIT", "PRAGMA", "DELETE", "DROP",
        "UPDATE", "ROLLBACK", "SAVEPOINT", "RELEASE", "ANALYZE", "VACUUM",
    };
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t k = strlen(words[w]);
        if (n >= k && strncasecmp(s, words[w], k) == 0
            && (n == k || !(isalnum((unsigned char)s[k]) || s[k] == '_')))
            return 1;
    }
    return 0;
}

/* 1 if the line ends with ';' (trailing blanks aside). */
static int ends_with_semicolon(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return n > 0 && s[n - 1] == ';';
}

/* Skips the rest of a statement over the size cap: lines up to one ending
 * with ';', or up to (not including) one that starts the next statement.
 * 0, or -1 on a read error. */
static int skip_statement(retape_lines *lr, char **errptr)
{
    const char *line;
    size_t len;
    long lineno;
    int rc;
    while ((rc = retape_lines_next(lr, &line, &len, &lineno, errptr)) >= 1) {
        if (rc == 1 && starts_statement(line, len)) {
            lr->unread = 1;
            return 0;
        }
        if (rc == 1 && ends_with_semicolon(line, len))
            return 0;
    }
    return rc < 0 ? -1 : 0;
}

/* Where the scan of a statement's text stands (sql_scan): in plain SQL or
 * inside a quoted string or name, a block or a line comment. */
enum sql_where { SQL_PLAIN, SQL_QUOTE, SQL_BLOCK_COMMENT, SQL_LINE_COMMENT };

typedef struct sql_scan {
    enum sql_where where;
    char close;    /* the quote that ends SQL_QUOTE: ' " ` or ] */
    int ends_semi; /* the last token outside comments is ';' */
} sql_scan;

/* Advances the scan over n more bytes of a statement: each byte is read
 * once, however many lines the statement has.  A statement can only be
 * complete (sqlite3_complete) when the scan is in plain SQL after a ';';
 * only then is the whole text handed to sqlite3_complete, which also knows
 * CREATE TRIGGER's inner semicolons.  Quotes as SQLite's tokenizer: a
 * doubled quote inside a string reads as leaving and re-entering it. */
static void sql_scan_feed(sql_scan *sc, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (sc->where) {
        case SQL_QUOTE:
            if (c == sc->close)
                sc->where = SQL_PLAIN;
            break;
        case SQL_BLOCK_COMMENT:
            if (c == '*' && i + 1 < n && s[i + 1] == '/')
                sc->where = SQL_PLAIN, i++;
            break;
        case SQL_LINE_COMMENT:
            if (c == '\n')
                sc->where = SQL_PLAIN;
            break;
        case SQL_PLAIN:
            if (c == '\'' || c == '"' || c == '`' || c == '[') {
                sc->where = SQL_QUOTE, sc->close = c == '[' ? ']' : c, sc->ends_semi = 0;
            } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
                sc->where = SQL_LINE_COMMENT, i++;
            } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
                sc->where = SQL_BLOCK_COMMENT, i++;
            } else if (c == ';') {
                sc->ends_semi = 1;
            } else if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f')) {
                sc->ends_semi = 0;
            }
            break;
        }
    }
}

int retape_sql_next(retape_lines *lr, const char **sql, size_t *sql_len, long *first_line, char **errptr)
{
    sql_scan scan = {SQL_PLAIN, 0, 0};
    size_t used = 0;
    long start = 0;
    int has_nul = 0, body_seen = 0;
    const char *line;
    size_t len;
    long lineno;
    int rc;
    while ((rc = retape_lines_next(lr, &line, &len, &lineno, errptr)) >= 1) {
        if (used == 0 && rc == 1) {
            size_t i = skip_ws(line, 0, len);
            if (i == len)
                continue; /* blank line between statements */
        }
        int open_comment = 0;
        if (!body_seen) { /* a statement is named by its first line that is not only comments */
            if (used > 0 && skip_sql_space(lr->sql, 0, used, &open_comment) < used)
                body_seen = 1;
            else
                start = lineno;
        }
        /* A statement that is not complete when the next one starts (cut by a
         * NUL byte, truncated, its ';' missing, an unterminated comment, a
         * comment holding a NUL) stands alone: it is rejected and the line
         * read starts the next one. */
        if (rc == 1 && (body_seen || open_comment || has_nul) && starts_statement(line, len)) {
            lr->unread = 1;
            *first_line = start;
            set_error(errptr, "statement not terminated by ';' before line %ld, where the next one starts%s",
                      lineno, has_nul ? " (it contains a NUL byte)" : "");
            return 3;
        }
        /* Over the cap: the rest of the statement is skipped unread. */
        if (rc == 2 || used + len + 2 > lr->max_line) {
            *first_line = used ? start : lineno;
            if (!(rc == 1 && ends_with_semicolon(line, len)) && skip_statement(lr, errptr) != 0)
                return -1;
            set_error(errptr, "statement longer than %zu bytes (the line cap, --max-line-bytes): skipped", lr->max_line);
            return 3;
        }
        if (grow_buffer(&lr->sql, &lr->sql_cap, used + len + 2, 4096) != 0)
            return set_error(errptr, "%s: line %ld: out of memory", lr->path, lineno);
        size_t line_start = used;
        memcpy(lr->sql + used, line, len);
        /* A NUL byte would hide the rest of the statement from SQLite (and
         * from the completeness test): it is replaced by a space and the
         * statement reported as containing one (return 2). */
        for (char *z = memchr(lr->sql + used, '\0', len); z; z = memchr(z, '\0', len - (size_t)(z - (lr->sql + used)))) {
            *z = ' ';
            has_nul = 1;
        }
        used += len;
        lr->sql[used++] = '\n';
        lr->sql[used] = '\0';
        sql_scan_feed(&scan, lr->sql + line_start, used - line_start);
        if (scan.where == SQL_PLAIN && scan.ends_semi && sqlite3_complete(lr->sql)) {
            *sql = lr->sql;
            *sql_len = used;
            *first_line = start;
            return has_nul ? 2 : 1;
        }
    }
    if (rc < 0)
        return -1;
    if (used > 0 && skip_sql_space(lr->sql, 0, used, NULL) < used) /* only comments left is fine */
        return set_error(errptr, "%s: line %ld: statement not terminated by ';'", lr->path, start);
    return 0;
}

void retape_lines_close(retape_lines *lr)
{
    if (!lr)
        return;
    if (lr->zs_ready)
        inflateEnd(&lr->zs);
    if (lr->fd >= 0)
        close(lr->fd);
    free(lr->problem);
    free(lr->in);
    free(lr->buf);
    free(lr->chunk);
    free(lr->sql);
    free(lr->path);
    free(lr);
}
