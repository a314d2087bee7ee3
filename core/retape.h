/*
 * retape.h — the public C API of the retape replay engine.
 *
 * retape re-runs TradingView webhook receipts stored in an SQLite table
 * (`ingest_receipts`) bucket by bucket, with the policy (lane rules, trade
 * simulation, orchestration) written in Lua.  This header is all a C program
 * needs to embed the engine: open a receipts source and a state store, load
 * the Lua layer, run a script.
 *
 * Conventions (stated once, valid for every function below):
 *
 *  - Handles are opaque.  Every `retape_X_open` / `retape_X_new` has a
 *    matching `retape_X_close` / `retape_X_free` that releases everything the
 *    handle owns; passing NULL to a close/free function is a no-op.
 *  - Errors come back as a return code plus a message.  Functions that can
 *    fail take a last argument `char **errptr`; on failure they return a
 *    negative value (or NULL) and, if errptr is not NULL, store a malloc'd,
 *    NUL-terminated message there which the caller frees with retape_free().
 *    On success *errptr is left untouched.  Messages name what failed in its
 *    own coordinates (file, receipt id, key, ...).
 *  - Strings passed in are borrowed for the duration of the call only.
 *    Strings and buffers handed out are either owned by the caller (documented
 *    "caller frees with retape_free") or borrowed from the handle and valid
 *    only until the next call on that handle (documented "borrowed").
 *  - Timestamps are milliseconds since the Unix epoch, UTC, as int64_t.
 *    The time functions clamp instants to +-8.64e15 ms (years up to
 *    +-270000) instead of overflowing.
 *  - Nothing in this API reads the wall clock or a random source, except
 *    retape_time_now_ms(), which exists for command-line defaults only.
 *  - No function calls exit() or abort() on bad input.
 */
#ifndef RETAPE_H
#define RETAPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RETAPE_VERSION "0.1.0"
/* Bumped whenever the C functions exposed to Lua change shape; the embedded
 * or overriding Lua layer must declare the same number. */
#define RETAPE_LUA_API 1

/* Frees a message or buffer that retape handed to the caller. */
void retape_free(void *ptr);

/* ---------------------------------------------------------------------------
 * Time: America/New_York wall time, DST-correct, independent of the TZ
 * setting of the machine (US rules are compiled in: 2007+ second Sunday of
 * March to first Sunday of November; 1987-2006 first Sunday of April to last
 * Sunday of October; earlier years use the 1967-1986 rule).
 * ------------------------------------------------------------------------- */

typedef struct retape_civil {
    int year, month, day;         /* calendar date, month 1..12 */
    int hour, minute, second, ms; /* wall clock */
    int weekday;                  /* 0 = Sunday .. 6 = Saturday */
    int utc_offset_min;           /* -300 (EST) or -240 (EDT) */
} retape_civil;

/* New York wall time of an instant. */
void retape_time_to_ny(int64_t utc_ms, retape_civil *out);
/* UTC civil time of an instant (utc_offset_min = 0). */
void retape_time_to_utc(int64_t utc_ms, retape_civil *out);
/* The instant at which New York wall clocks show the given time.  A time in
 * the spring-forward gap is read with the offset in force before the change
 * (so 02:30 on that day is 03:30 EDT); an ambiguous time at fall-back is the
 * first (EDT) occurrence. */
int64_t retape_time_from_ny(int year, int month, int day, int hour, int minute, int second);
/* Parses "YYYY-MM-DD" (a valid calendar date); returns 0 on success, -1 otherwise. */
int retape_time_parse_date(const char *text, int *year, int *month, int *day);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (JavaScript's toISOString, the time
 * stamps of trades) into *ms since the epoch: 0, or -1 if text is not that
 * shape or a field is out of range. */
int retape_time_parse_iso(const char *text, int64_t *ms);
/* The regular trading session of a New York date: 09:30 and 16:00 ET. */
void retape_time_session(int year, int month, int day, int64_t *open_ms, int64_t *close_ms);
/* The length of a bucket: 5 minutes in ms (retape.time.BUCKET_MS in Lua). */
#define RETAPE_BUCKET_MS 300000
/* floor(ts / RETAPE_BUCKET_MS) * RETAPE_BUCKET_MS, also for negative ts. */
int64_t retape_time_bucket_5m(int64_t ts_ms);
/* The calendar (proleptic Gregorian): days since 1970-01-01 of a date, and
 * back (with the weekday, 0 = Sunday; weekday may be NULL). */
int64_t retape_time_day_number(int year, int month, int day);
void retape_time_from_day_number(int64_t days, int *year, int *month, int *day, int *weekday);
/* The wall clock (CLI defaults only; never used by replay logic). */
int64_t retape_time_now_ms(void);

/* ---------------------------------------------------------------------------
 * Receipts source: read-only access to an `ingest_receipts` table.
 * ------------------------------------------------------------------------- */

typedef struct retape_source retape_source;
typedef struct retape_cursor retape_cursor;

/* Plausible receipt times: 2000-01-01 (inclusive) .. 2100-01-01 (exclusive)
 * UTC, in ms.  Import refuses others; readers treat a row whose ts is
 * outside, not an integer, or not in its bucket_5m as a bad row. */
#define RETAPE_TS_MIN INT64_C(946684800000)
#define RETAPE_TS_MAX INT64_C(4102444800000)

/* What part of the receipts a listing or cursor sees. */
typedef struct retape_scope {
    int64_t from_bucket;        /* first bucket_5m (inclusive) */
    int64_t to_bucket;          /* last bucket_5m (inclusive) */
    const char *script_version; /* keeps `script_version = ? OR script_version IS NULL`; NULL = no filter */
    const char **tickers;       /* NULL = every ticker; else n_tickers upper-case tickers */
    size_t n_tickers;
} retape_scope;

/* One receipt.  Every pointer is borrowed from the cursor and valid until the
 * next retape_cursor_next() or retape_cursor_close() on it. */
typedef struct retape_receipt {
    const char *receipt_id;
    const char *ticker;
    int64_t ts;                 /* INT64_MIN when the column is not an integer (a bad row) */
    int64_t bucket_5m;
    const char *script_version; /* NULL when the column is NULL */
    const char *payload;        /* payload_json; NULL when the column is NULL */
    size_t payload_len;
} retape_receipt;

/* Opens an SQLite file read-only and checks that `ingest_receipts` has every
 * column of the original DDL.  Fails with a message naming the file and what
 * is missing. */
retape_source *retape_source_open(const char *path, char **errptr);
void retape_source_close(retape_source *src);

/* hold = 1: every read until the release sees one consistent snapshot of the
 * receipts (a read transaction: a concurrent import waits, or in WAL mode
 * goes on without being seen); hold = 0: releases it.  Holds nest: an inner
 * hold reads the outer one's snapshot, and the last release ends it.  0 or -1. */
int retape_source_snapshot(retape_source *src, int hold, char **errptr);
/* Whether a snapshot is held (a hold now would nest in an older one). */
int retape_source_holding(const retape_source *src);
/* The device and inode of the receipts file src has open: 1, or 0 when not
 * known (the path named another file right after the open). */
int retape_source_file_id(const retape_source *src, int64_t *dev, int64_t *ino);

/* How long a read waits for a writer's lock before failing (ms; 0: fails
 * at once).  A source waits 5 s unless told otherwise. */
void retape_source_busy_timeout(retape_source *src, int ms);

/* The last rowid of ingest_receipts (0: none), as the held snapshot (if any)
 * sees it: with the snapshot, which receipts it holds.  0 or -1. */
int retape_source_last_rowid(retape_source *src, int64_t *rowid, char **errptr);

/* Lists the non-empty buckets of a scope in ascending order, within the
 * plausible times (buckets outside them, or not integers, are never
 * listed: see retape_source_bad_rows).  *buckets and *counts (rows per
 * bucket) are malloc'd arrays of *n entries, caller frees both with
 * retape_free().  Returns 0, or -1 on error. */
int retape_source_buckets(retape_source *src, const retape_scope *scope,
                          int64_t **buckets, int64_t **counts, size_t *n, char **errptr);

/* Counts the bad rows of a scope: ts or bucket_5m not an integer, outside
 * the plausible times, or ts not in its bucket_5m (a database not written by
 * retape import).  An unbounded scope (from INT64_MIN to INT64_MAX) counts
 * every bad row; a bounded one those whose bucket_5m is in its range.
 * *first_id: the smallest receipt id among them (malloc'd, caller frees
 * with retape_free(); NULL when none).  Returns 0, or -1 on error. */
int retape_source_bad_rows(retape_source *src, const retape_scope *scope, int64_t *n, char **first_id,
                           char **errptr);

/* Opens a cursor over every receipt of one bucket of the scope, in
 * (ts, receipt_id) order.  No row is ever dropped: paging, if any, is the
 * caller's.  Several cursors may be open on one source. */
retape_cursor *retape_cursor_open(retape_source *src, const retape_scope *scope,
                                  int64_t bucket, char **errptr);
/* One row of a bucket listed for the parts of a threaded replay that read
 * their own rows (see lua/retape/run/threads.lua). */
typedef struct retape_listed_row {
    int64_t rowid, index, ts; /* index: its position in the bucket, in cursor order */
    uint32_t part;            /* retape_part_of(its ticker, parts) */
    uint32_t check;           /* of its receipt_id, ticker and payload_hash: the row it was */
} retape_listed_row;

/* Lists the rows of a bucket's window [first, stop) (stop < 0: to its end)
 * in the order of retape_cursor_open, each with its part among `parts`,
 * without reading their payloads: *rows is malloc'd (*n of them; the caller
 * frees it with retape_free), *more = 1 when a row remains at stop.  0 or
 * -1 + *errptr. */
int retape_source_list_parts(retape_source *src, const retape_scope *scope, int64_t bucket, unsigned parts,
                             int64_t first, int64_t stop, retape_listed_row **rows, size_t *n, int *more,
                             char **errptr);
/* Opens a cursor over listed rows (n retape_listed_row at `rows`, any
 * alignment: copied), looked up by rowid in the order given: a part's own
 * rows, read in its own connection.  A row whose rowid is gone, or whose
 * ts, receipt_id, ticker or payload_hash differ from the listing's, is a
 * read error (the file changed under the run).  NULL + *errptr when out of
 * memory. */
retape_cursor *retape_cursor_open_rows(retape_source *src, const void *rows, size_t n, char **errptr);
/* The position in its bucket of the row last returned by a cursor over
 * listed rows (-1: none, or another cursor). */
int64_t retape_cursor_index(const retape_cursor *cur);
/* Steps to the next receipt: 1 and *row filled, 0 at the end, -1 on error. */
int retape_cursor_next(retape_cursor *cur, retape_receipt *row, char **errptr);
void retape_cursor_close(retape_cursor *cur);

/* ---------------------------------------------------------------------------
 * Inboxes of a threaded replay (pool.c): a bucket's rows copied to the part
 * that owns each ticker (FNV-1a 32 of the ticker modulo the parts).
 * ------------------------------------------------------------------------- */

typedef struct retape_inbox retape_inbox;

retape_inbox *retape_inbox_new(void);
void retape_inbox_free(retape_inbox *in);
/* Empties the inbox (its memory is kept for the next bucket). */
void retape_inbox_reset(retape_inbox *in);
size_t retape_inbox_count(const retape_inbox *in);
/* Bytes of the rows it holds (ids, tickers, payloads). */
size_t retape_inbox_bytes(const retape_inbox *in);
/* Appends a copy of a row and its index in the bucket: 0 or -1 (no memory). */
int retape_inbox_add(retape_inbox *in, const retape_receipt *r, int64_t index);
/* The next row, valid until the reset: 1, or 0 at the end. */
int retape_inbox_next(retape_inbox *in, retape_receipt *r, int64_t *index);
/* The bucket of the next row (0 at the end). */
int64_t retape_inbox_peek_bucket(const retape_inbox *in);
/* The part's answer: serialized writes appended after its rows were read
 * (0 or -1: no memory), and all of them (borrowed, until the next reset). */
int retape_inbox_keep(retape_inbox *in, const char *data, size_t len);
const char *retape_inbox_kept(const retape_inbox *in, size_t *len);
/* The part (0..parts-1) that owns a ticker: FNV-1a 32 of it modulo parts
 * (hash.c; `--shard i/n` uses the same function). */
unsigned retape_part_of(const char *ticker, unsigned parts);
/* Routes (appends) the cursor's rows with index in [first, stop) (stop < 0:
 * all) to inboxes[part]; *more = 1 when a row remains at `stop`.  0 or -1 +
 * *errptr. */
int retape_route(retape_cursor *cur, retape_inbox **inboxes, unsigned parts, int64_t first, int64_t stop,
                 int64_t *routed, int *more, char **errptr);
/* The processors this process may run on (its affinity mask: `taskset`,
 * a container's cpuset; the online ones where that is not known), at
 * least 1: the threads a replay or a fingerprint uses by default. */
unsigned retape_cpus(void);

/* ---------------------------------------------------------------------------
 * Key-value store over RocksDB.
 * ------------------------------------------------------------------------- */

typedef struct retape_kv retape_kv;
typedef struct retape_kv_batch retape_kv_batch;
typedef struct retape_kv_iter retape_kv_iter;

/* Opens (creating if needed) a store directory.  A store held by another
 * process (or another handle of this one) fails at once with a message that
 * says so; it never waits. */
retape_kv *retape_kv_open(const char *dir, char **errptr);
/* The same with a memtable of write_buffer_bytes (0 = RocksDB's default,
 * 64 MB): many stores open at once (a sweep's variants) keep their memory
 * bounded by flushing earlier. */
retape_kv *retape_kv_open_sized(const char *dir, size_t write_buffer_bytes, char **errptr);
void retape_kv_close(retape_kv *kv);

/* 1 = found (*val malloc'd, caller frees with retape_free), 0 = absent, -1 = error. */
int retape_kv_get(retape_kv *kv, const char *key, size_t klen, char **val, size_t *vlen, char **errptr);
int retape_kv_put(retape_kv *kv, const char *key, size_t klen, const char *val, size_t vlen, char **errptr);
int retape_kv_delete(retape_kv *kv, const char *key, size_t klen, char **errptr);

/* A batch of puts and deletes applied atomically by retape_kv_write(). */
/* NULL + *errptr when out of memory. */
retape_kv_batch *retape_kv_batch_new(char **errptr);
void retape_kv_batch_free(retape_kv_batch *batch);
void retape_kv_batch_put(retape_kv_batch *batch, const char *key, size_t klen, const char *val, size_t vlen);
void retape_kv_batch_delete(retape_kv_batch *batch, const char *key, size_t klen);
void retape_kv_batch_clear(retape_kv_batch *batch);
int retape_kv_batch_count(const retape_kv_batch *batch);
/* A batch's operations in RocksDB's serialized form (borrowed), and their
 * replay into another batch: how a worker thread hands its writes over. */
const char *retape_kv_batch_data(const retape_kv_batch *batch, size_t *len);
int retape_kv_batch_append(retape_kv_batch *batch, const char *data, size_t len, char **errptr);
int retape_kv_write(retape_kv *kv, retape_kv_batch *batch, char **errptr);
/* The same without the write-ahead log: durable at the next memtable flush
 * (see kv.c); retape_kv_persist flushes now.  A logged write (put, delete,
 * write) after unlogged ones, from any handle or thread of the process,
 * persists them first, so a killed process leaves the store at a prefix of
 * its writes.  The count: flushes made. */
int retape_kv_write_unlogged(retape_kv *kv, retape_kv_batch *batch, char **errptr);
int retape_kv_persist(retape_kv *kv, char **errptr);
long retape_kv_persist_count(retape_kv *kv);

/* Iterates the keys that start with prefix, in byte order.  Key and value
 * pointers are borrowed until the next call on the iterator.  NULL +
 * *errptr when out of memory; read errors come from retape_kv_iter_next. */
retape_kv_iter *retape_kv_scan(retape_kv *kv, const char *prefix, size_t plen, char **errptr);
/* The same, starting at the first key >= from (from should start with prefix). */
retape_kv_iter *retape_kv_scan_from(retape_kv *kv, const char *prefix, size_t plen, const char *from, size_t flen,
                                    char **errptr);
/* The greatest key that starts with prefix and is strictly less than bound:
 * 1 and malloc'd copies in *key / *val (the caller frees them with
 * retape_free), 0 when there is none, -1 on error (message in *errptr). */
int retape_kv_last_before(retape_kv *kv, const char *prefix, size_t plen, const char *bound, size_t blen,
                          char **key, size_t *klen, char **val, size_t *vlen, char **errptr);
/* XXH3 (64 bits) of every record under prefix in key order, each framed by
 * its key's and value's lengths (two little-endian uint64): a fingerprint
 * of a part of the store, as kv reads it (its pinned snapshot, if any).
 * One sequential pass that leaves the block cache as it was.  0 or -1. */
int retape_kv_hash_prefix(retape_kv *kv, const char *prefix, size_t plen, uint64_t *out, char **errptr);
/* The fingerprint of the records under prefix: XXH3 64 over its segments
 * (the records whose keys share the bytes up to their first NUL) in key
 * order, each as (name length, name, its XXH3 64 over its records framed
 * as retape_kv_hash_prefix frames them); the store keeps each segment's
 * hash, so a fingerprint after a write reads only the segments written
 * since (kv_fingerprint.c).  As kv reads (at a pinned snapshot: every
 * record, nothing kept).  0, or -1 with *errptr. */
int retape_kv_fingerprint(retape_kv *kv, const char *prefix, size_t plen, uint64_t *out, char **errptr);
/* 1 = entry, 0 = end, -1 = error. */
int retape_kv_iter_next(retape_kv_iter *it, const char **key, size_t *klen,
                        const char **val, size_t *vlen, char **errptr);
void retape_kv_iter_close(retape_kv_iter *it);

/* A second handle on an open store, for another thread of this process:
 * shares base's database, has its own read options.  Close every view
 * before base (retape_kv_close on a view leaves the database open). */
retape_kv *retape_kv_view(retape_kv *base, char **errptr);
/* Pins a snapshot: later gets and scans on this handle see the store as it
 * was at this call (never half of a write batch) until retape_kv_unpin.
 * Iterators opened while pinned must be closed before the unpin. */
void retape_kv_pin(retape_kv *kv);
void retape_kv_unpin(retape_kv *kv);
/* A snapshot shared by several handles of one database (refcounted,
 * thread-safe): take it (one reference, NULL when out of memory), pin
 * handles to it (each pin holds a reference until its unpin), release the
 * taker's reference; the last release frees it.  Release every one before
 * closing the base store. */
typedef struct retape_kv_snapshot retape_kv_snapshot;
retape_kv_snapshot *retape_kv_snapshot_take(retape_kv *kv);
void retape_kv_snapshot_release(retape_kv_snapshot *s);
void retape_kv_pin_snapshot(retape_kv *kv, retape_kv_snapshot *s);

/* ---------------------------------------------------------------------------
 * Receipts writer: creates `ingest_receipts` with the original DDL and
 * inserts rows with INSERT OR IGNORE (duplicates by receipt_id are skipped).
 * ------------------------------------------------------------------------- */

typedef struct retape_writer retape_writer;

/* One row to insert; every field is borrowed for the call. */
typedef struct retape_receipt_row {
    const char *receipt_id, *ticker, *payload_hash, *script_version, *payload_json;
    size_t payload_len;
    int64_t ts, bucket_5m, received_ts;
} retape_receipt_row;

/* Opens or creates an SQLite file for writing and creates the table and its
 * indexes if absent.  Rows are committed every `commit_every` inserts. */
retape_writer *retape_writer_open(const char *path, int commit_every, char **errptr);
/* 1 = inserted, 0 = duplicate (ignored), -1 = error. */
int retape_writer_insert(retape_writer *w, const retape_receipt_row *row, char **errptr);
/* Commits what is pending now (the live ingest: durable before it answers);
 * 0 or -1. */
int retape_writer_commit(retape_writer *w, char **errptr);
/* Puts the file in WAL mode with synchronous=NORMAL (the live ingest): a
 * commit is then one append, without an fsync, that survives a killed
 * process (not a power loss); readers never block it.  Its commits never
 * checkpoint (copy the log into the file, with two fsyncs: tens of ms under
 * load, which every answer waiting for the commit would wait too): the
 * reader of the file does (retape.live's passes), or the last connection
 * to close.  0 or -1. */
int retape_writer_wal(retape_writer *w, char **errptr);
/* Commits what is pending and closes; returns 0 or -1 (the handle is freed either way). */
int retape_writer_close(retape_writer *w, char **errptr);

/* FNV-1a 32-bit over the UTF-16 code units of UTF-8 text, as the original
 * worker hashed JavaScript strings.  Invalid UTF-8 bytes count as U+FFFD. */
uint32_t retape_fnv1a32_utf16(const char *text, size_t len);

/* Finds the raw text of the value of a top-level key of a JSON object.
 * Returns 1 and sets *off and *vlen to the span inside `json`, 0 if the key is
 * absent, -1 if the text is not a well-formed object (up to that key). */
int retape_json_value_span(const char *json, size_t len, const char *key,
                           size_t *off, size_t *vlen);

/* ---------------------------------------------------------------------------
 * The Lua host.
 * ------------------------------------------------------------------------- */

typedef struct retape_host retape_host;

typedef struct retape_host_options {
    /* Directory that overrides the embedded Lua layer (development); NULL =
     * use RETAPE_LUA_DIR from the environment, or the embedded layer. */
    const char *lua_dir;
} retape_host_options;

/* Creates a Lua state with the standard libraries, cjson and the engine
 * modules, and checks that the Lua layer matches this core. */
retape_host *retape_host_new(const retape_host_options *opts, char **errptr);
void retape_host_free(retape_host *host);

/* Runs a Lua script file with `arg` set to argv[0..argc-1] (argv[0] is the
 * script name) and `...` to the rest.  Returns 0, or -1 with a message
 * "file:line: message" plus a traceback in *errptr. */
int retape_host_run_file(retape_host *host, const char *path, int argc, char **argv, char **errptr);
/* Runs a chunk of Lua source named `name` (used in error messages). */
int retape_host_run_string(retape_host *host, const char *code, const char *name, char **errptr);
/* Dispatches the bundled command line (`retape.cli`): argv[0] is the program
 * name.  Returns the exit status the command asked for (0 on success); on an
 * uncaught Lua error, 1 with the message and traceback in *errptr. */
int retape_host_run_cli(retape_host *host, int argc, char **argv, char **errptr);

/* The underlying lua_State, for embedders that add their own modules.  Borrowed. */
struct lua_State *retape_host_lua(retape_host *host);

/* ---------------------------------------------------------------------------
 * Running a replay from C.
 * ------------------------------------------------------------------------- */

/* What to replay.  Strings are borrowed for the call; NULL means "default". */
typedef struct retape_replay_params {
    const char *db;      /* receipts database (required) */
    const char *state;   /* state store directory (NULL: DB.state) */
    const char *date;    /* "YYYY-MM-DD" trading day, or NULL with from/to */
    const char *from;    /* first day of a range */
    const char *to;      /* last day of a range */
    const char *rules;   /* bundled ruleset name or a .lua path (NULL: "default") */
    const char *tickers; /* "AAPL,NVDA" or NULL for every ticker */
    int clean_slate;     /* nonzero: purge the scope's trades first */
    int resume;          /* nonzero: continue an interrupted run of the scope */
    int threads;         /* 0: every core for a large run; N: N threads (never changes results) */
} retape_replay_params;

/* What a replay did (the counters of `retape replay --json`). */
typedef struct retape_replay_result {
    int64_t rows;    /* receipts processed */
    int64_t trades;  /* trades created */
    int64_t purged;  /* trades purged by clean_slate */
    int64_t errors;  /* receipts a rule failed on (skipped) */
    int has_more;    /* nonzero when the scope is not finished */
} retape_replay_result;

/* Replays receipts through a ruleset into a state store, bucket by bucket
 * (the `retape replay` command without its printing).  Returns 0 and fills
 * *out, or -1 with a message in *errptr (bad parameters, a missing file, a
 * failing rule: "file:line: message" plus a traceback).  The store is
 * closed again before it returns.  Never raises. */
int retape_replay(retape_host *host, const retape_replay_params *params, retape_replay_result *out,
                  char **errptr);

/* ---------------------------------------------------------------------------
 * fs — temporary directories, directory listings, removing a tree.
 * ------------------------------------------------------------------------- */

/* Creates PARENT/PREFIX.XXXXXX (mode 0700; PARENT NULL: $TMPDIR or /tmp);
 * returns the malloc'd path. */
char *retape_fs_tempdir(const char *parent, const char *prefix, char **errptr);
/* The entries of dir (no . and ..), sorted by name; free with
 * retape_fs_free_list.  0 or -1. */
int retape_fs_list(const char *dir, char ***names, size_t *count, char **errptr);
void retape_fs_free_list(char **names, size_t count);
/* Removes a file or a directory tree (symlinks are removed, not followed);
 * a missing path is not an error.  0 or -1. */
int retape_fs_remove_tree(const char *path, char **errptr);
/* mkdir -p.  0 or -1. */
int retape_fs_mkdirs(const char *path, char **errptr);
/* 0 missing, 1 a file (or other), 2 a directory. */
int retape_fs_kind(const char *path);
/* What stat(2) says of a file's identity and last change: enough to tell
 * that it has not changed since (a write changes its size or its times). */
typedef struct retape_fs_stat {
    int64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns; /* last write; last change of contents or metadata */
} retape_fs_stat;
/* Fills *out: 0; 1 when path does not exist; -1 and *errptr otherwise. */
int retape_fs_stat_of(const char *path, retape_fs_stat *out, char **errptr);
/* The absolute form of path: its real path (symlinks resolved) when it
 * exists, else the current directory joined with it.  Malloc'd (free with
 * retape_free); NULL and *errptr on failure. */
char *retape_fs_absolute(const char *path, char **errptr);

#ifdef __cplusplus
}
#endif

#endif /* RETAPE_H */
