/*
 * ingest.c — writing receipts: the original DDL, INSERT OR IGNORE inserts in
 * periodic transactions, the original's FNV-1a hash, a raw-span finder for
 * JSON values (the payload text must be kept byte for byte, since its hash is
 * part of the receipt id), and readers for JSON-lines files and SQL dumps.
 */
#define _POSIX_C_SOURCE 200809L
#include "ingest.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
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
    return exec_sql(w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", errptr);
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

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length and the
 * code point in *cp, or length 1 and U+FFFD for an invalid byte. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (len > n)
        goto invalid;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto invalid;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto invalid;
    *cp = v;
    return len;
invalid:
    *cp = 0xFFFD;
    return 1;
}

uint32_t retape_fnv1a32_utf16(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    uint32_t h = 2166136261u;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        i += utf8_decode(s + i, len - i, &cp);
        if (cp >= 0x10000) { /* surrogate pair, as JavaScript strings store it */
            cp -= 0x10000;
            h = (h ^ (0xD800 + (cp >> 10))) * 16777619u;
            h = (h ^ (0xDC00 + (cp & 0x3FF))) * 16777619u;
        } else {
            h = (h ^ cp) * 16777619u;
        }
    }
    return h;
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
 * value; returns 0, or -1 with *i at the offending byte.  depth bounds the
 * nesting. */
static int strict_value(const char *s, size_t n, size_t *i, int depth);

static int strict_string(const char *s, size_t n, size_t *i)
{
    size_t k = *i + 1; /* past the opening quote */
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            *i = k + 1;
            return 0;
        }
        if (c < 0x20)
            break;
        if (c == '\\') {
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

static int strict_number(const char *s, size_t n, size_t *i)
{
    size_t k = *i;
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
    *i = k;
    return 0;
bad:
    *i = k;
    return -1;
}

static int strict_value(const char *s, size_t n, size_t *i, int depth)
{
    size_t k = skip_ws(s, *i, n);
    *i = k;
    if (k >= n || depth > 1000)
        return -1;
    char c = s[k];
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        k = skip_ws(s, k + 1, n);
        if (k < n && s[k] == close) {
            *i = k + 1;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                k = skip_ws(s, k, n);
                if (k >= n || s[k] != '"') {
                    *i = k;
                    return -1;
                }
                *i = k;
                if (strict_string(s, n, i) != 0)
                    return -1;
                k = skip_ws(s, *i, n);
                if (k >= n || s[k] != ':') {
                    *i = k;
                    return -1;
                }
                k++;
            }
            *i = k;
            if (strict_value(s, n, i, depth + 1) != 0)
                return -1;
            k = skip_ws(s, *i, n);
            if (k < n && s[k] == ',') {
                k++;
                continue;
            }
            *i = k;
            if (k < n && s[k] == close) {
                *i = k + 1;
                return 0;
            }
            return -1;
        }
    }
    if (c == '"')
        return strict_string(s, n, i);
    if (c == '-' || is_digit(c))
        return strict_number(s, n, i);
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

size_t retape_json_invalid_at(const char *json, size_t len)
{
    size_t i = 0;
    if (strict_value(json, len, &i, 0) != 0)
        return i + 1;
    i = skip_ws(json, i, len);
    return i < len ? i + 1 : 0;
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

struct retape_lines {
    gzFile gz;
    char *path;
    char *buf;      /* the current line (may hold NUL bytes; len is exact) */
    size_t cap;
    long lineno;
    char *chunk;    /* bytes read ahead from the (decompressed) input */
    size_t chunk_len, chunk_pos;
    int eof;
    char *sql;      /* statement accumulator for retape_sql_next */
    size_t sql_cap;
};

#define CHUNK_BYTES (1 << 17)

retape_lines *retape_lines_open(const char *path, char **errptr)
{
    retape_lines *lr = calloc(1, sizeof *lr);
    int is_stdin = strcmp(path, "-") == 0;
    if (!lr || !(lr->path = dup_string(is_stdin ? "<stdin>" : path)) || !(lr->chunk = malloc(CHUNK_BYTES))) {
        retape_lines_close(lr);
        set_error(errptr, "out of memory");
        return NULL;
    }
    if (is_stdin) {
        int fd = dup(0);
        lr->gz = fd >= 0 ? gzdopen(fd, "rb") : NULL;
        if (!lr->gz && fd >= 0)
            close(fd);
    } else {
        lr->gz = gzopen(path, "rb");
    }
    if (!lr->gz) {
        set_error(errptr, "%s: cannot open", lr->path);
        retape_lines_close(lr);
        return NULL;
    }
    gzbuffer(lr->gz, 1 << 17);
    return lr;
}

/* Refills the read-ahead chunk.  0 = bytes (or end of input: lr->eof),
 * -1 = a read error, a corrupt or a truncated compressed stream. */
static int refill(retape_lines *lr, char **errptr)
{
    int n = gzread(lr->gz, lr->chunk, CHUNK_BYTES);
    int zerr = Z_OK;
    const char *msg = gzerror(lr->gz, &zerr);
    if (n < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
        return set_error(errptr, "%s: line %ld: cannot read: %s", lr->path, lr->lineno + 1, msg);
    if (n == 0 && zerr == Z_BUF_ERROR) /* zlib's "unexpected end of file" */
        return set_error(errptr, "%s: line %ld: the compressed input is truncated", lr->path, lr->lineno + 1);
    lr->chunk_len = (size_t)n, lr->chunk_pos = 0;
    if (n == 0)
        lr->eof = 1;
    return 0;
}

int retape_lines_next(retape_lines *lr, const char **line, size_t *len, long *lineno, char **errptr)
{
    size_t used = 0;
    int complete = 0;
    while (!complete) {
        if (lr->chunk_pos == lr->chunk_len) {
            if (lr->eof || refill(lr, errptr) != 0) {
                if (!lr->eof)
                    return -1;
                if (used == 0)
                    return 0;
                break; /* last line without a newline */
            }
            if (lr->eof)
                continue;
        }
        const char *from = lr->chunk + lr->chunk_pos;
        size_t avail = lr->chunk_len - lr->chunk_pos;
        const char *nl = memchr(from, '\n', avail);
        size_t take = nl ? (size_t)(nl - from) + 1 : avail;
        if (grow_buffer(&lr->buf, &lr->cap, used + take + 1, 65536) != 0)
            return set_error(errptr, "%s: line %ld: out of memory", lr->path, lr->lineno + 1);
        memcpy(lr->buf + used, from, take);
        used += take;
        lr->chunk_pos += take;
        complete = nl != NULL;
    }
    while (used > 0 && (lr->buf[used - 1] == '\n' || lr->buf[used - 1] == '\r'))
        used--;
    lr->buf[used] = '\0';
    *line = lr->buf;
    *len = used;
    *lineno = ++lr->lineno;
    return 1;
}

/* Index past the SQL comments and white space starting at s[i]. */
static size_t skip_sql_space(const char *s, size_t i, size_t n)
{
    for (;;) {
        i = skip_ws(s, i, n);
        if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
            const char *nl = memchr(s + i, '\n', n - i);
            i = nl ? (size_t)(nl - s) + 1 : n;
        } else if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < n && !(s[j] == '*' && s[j + 1] == '/'))
                j++;
            i = j + 1 < n ? j + 2 : n;
        } else {
            return i;
        }
    }
}

int retape_sql_next(retape_lines *lr, const char **sql, size_t *sql_len, long *first_line, char **errptr)
{
    size_t used = 0;
    long start = 0;
    int has_nul = 0, body_seen = 0;
    const char *line;
    size_t len;
    long lineno;
    int rc;
    while ((rc = retape_lines_next(lr, &line, &len, &lineno, errptr)) == 1) {
        if (used == 0) {
            size_t i = skip_ws(line, 0, len);
            if (i == len)
                continue; /* blank line between statements */
        }
        if (!body_seen) { /* a statement is named by its first line that is not only comments */
            if (used > 0 && skip_sql_space(lr->sql, 0, used) < used)
                body_seen = 1;
            else
                start = lineno;
        }
        if (used + len + 2 > lr->sql_cap) {
            size_t ncap = (used + len + 2) * 2;
            char *nb = realloc(lr->sql, ncap);
            if (!nb)
                return set_error(errptr, "%s: line %ld: out of memory", lr->path, lineno);
            lr->sql = nb, lr->sql_cap = ncap;
        }
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
        if (sqlite3_complete(lr->sql)) {
            *sql = lr->sql;
            *sql_len = used;
            *first_line = start;
            return has_nul ? 2 : 1;
        }
    }
    if (rc < 0)
        return -1;
    if (used > 0 && skip_sql_space(lr->sql, 0, used) < used) /* only comments left is fine */
        return set_error(errptr, "%s: line %ld: statement not terminated by ';'", lr->path, start);
    return 0;
}

void retape_lines_close(retape_lines *lr)
{
    if (!lr)
        return;
    if (lr->gz)
        gzclose(lr->gz);
    free(lr->buf);
    free(lr->chunk);
    free(lr->sql);
    free(lr->path);
    free(lr);
}
