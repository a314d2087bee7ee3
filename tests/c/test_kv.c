/* test_kv.c — the RocksDB store: values, scans, atomic batches, locking. */
#include "check.h"
#include "retape.h"

#include <rocksdb/c.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The fingerprint of a prefix written plainly: XXH3 64 over each record's
 * two lengths (little-endian uint64, as on this machine) then its bytes. */
static uint64_t reference_hash(const char *const *keys, const char *const *vals, int n)
{
    XXH3_state_t *xs = XXH3_createState();
    XXH3_64bits_reset(xs);
    for (int i = 0; i < n; i++) {
        uint64_t lengths[2] = {strlen(keys[i]), strlen(vals[i])};
        XXH3_64bits_update(xs, lengths, sizeof lengths);
        XXH3_64bits_update(xs, keys[i], strlen(keys[i]));
        XXH3_64bits_update(xs, vals[i], strlen(vals[i]));
    }
    uint64_t h = XXH3_64bits_digest(xs);
    XXH3_freeState(xs);
    return h;
}

/* fn(kv, prefix): the hash, or 0 (the error printed as a TAP comment). */
static uint64_t hash_by(int (*fn)(retape_kv *, const char *, size_t, uint64_t *, char **), retape_kv *kv,
                        const char *prefix, size_t plen)
{
    uint64_t h = 0;
    char *err = NULL;
    if (fn(kv, prefix, plen, &h, &err) != 0) {
        printf("# hash: %s\n", err ? err : "?");
        retape_free(err);
    }
    return h;
}

static uint64_t hash_of(retape_kv *kv, const char *prefix, size_t plen)
{
    return hash_by(retape_kv_hash_prefix, kv, prefix, plen);
}

/* A store whose table files were written with Snappy (the compression
 * before LZ4) reads and grows as before: each block records its own. */
static void snappy_store_reads(const char *dir)
{
    char path[600], *err = NULL, key[32], val[64];
    snprintf(path, sizeof path, "%s/snappy", dir);
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opts, 1);
    rocksdb_options_set_compression(opts, rocksdb_snappy_compression);
    rocksdb_t *db = rocksdb_open(opts, path, &err);
    CHECK(db && !err, "a store written with Snappy by RocksDB itself");
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    for (int i = 0; i < 2000 && db; i++) {
        snprintf(key, sizeof key, "v:T%04d", i);
        snprintf(val, sizeof val, "value %d value %d value %d", i, i, i);
        rocksdb_put(db, wo, key, strlen(key), val, strlen(val), &err);
    }
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flush(db, fo, &err);
    CHECK(!err, "flushed into a Snappy table file");
    rocksdb_flushoptions_destroy(fo);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(opts);

    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "retape opens it");
    int same = 0;
    for (int i = 0; i < 2000 && kv; i++) {
        char *got = NULL;
        size_t len = 0;
        snprintf(key, sizeof key, "v:T%04d", i);
        snprintf(val, sizeof val, "value %d value %d value %d", i, i, i);
        if (retape_kv_get(kv, key, strlen(key), &got, &len, &err) == 1 && len == strlen(val) && !memcmp(got, val, len))
            same++;
        retape_free(got);
    }
    CHECK(same == 2000, "every value reads back (%d of 2000)", same);
    CHECK(kv && retape_kv_put(kv, "v:new", 5, "lz4", 3, &err) == 0, "and takes new writes");
    /* a table file of its own (partitioned index and filters) beside the
     * old one (whole blocks): both read through one seek and one get */
    retape_kv_batch *more = retape_kv_batch_new(&err);
    for (int i = 0; i < 2000 && more; i++) {
        snprintf(key, sizeof key, "w:T%04d", i);
        snprintf(val, sizeof val, "new %d", i);
        retape_kv_batch_put(more, key, strlen(key), val, strlen(val));
    }
    CHECK(kv && more && retape_kv_write_unlogged(kv, more, &err) == 0 && retape_kv_persist(kv, &err) == 0
          && retape_kv_persist_count(kv) == 1, "flushed into a table file of this build's format");
    retape_kv_batch_free(more);
    int both = 0;
    for (int i = 0; i < 2000 && kv; i++) {
        char *got = NULL;
        size_t len = 0;
        snprintf(key, sizeof key, "%s:T%04d", i % 2 ? "v" : "w", i);
        if (i % 2)
            snprintf(val, sizeof val, "value %d value %d value %d", i, i, i);
        else
            snprintf(val, sizeof val, "new %d", i);
        if (retape_kv_get(kv, key, strlen(key), &got, &len, &err) == 1 && len == strlen(val) && !memcmp(got, val, len))
            both++;
        retape_free(got);
        got = NULL;
        if (retape_kv_get(kv, "v:T9999", 7, &got, &len, &err) != 0) /* absent: the filters say so or the index does */
            both = -100000;
        retape_free(got);
    }
    CHECK(both == 2000, "values from both files read back, absent keys absent (%d of 2000)", both);
    retape_kv_close(kv);
    /* what it writes from now on is LZ4 (the options RocksDB recorded) */
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "grep -l 'compression=kLZ4Compression' %s/OPTIONS-* >/dev/null 2>&1", path);
    CHECK(system(cmd) == 0, "the store's options say LZ4 from now on");
    snprintf(cmd, sizeof cmd, "grep -q 'index_type=kTwoLevelIndexSearch' %s/OPTIONS-* && grep -q 'partition_filters=true' "
             "%s/OPTIONS-* && grep -q 'pin_top_level_index_and_filter=true' %s/OPTIONS-*", path, path, path);
    CHECK(system(cmd) == 0, "and partitioned index and filter blocks, the top level pinned");
}

/* retape_kv_hash_prefix: what it covers (the prefix's records in key order,
 * nothing around them, any bytes), that moving bytes between a key and its
 * value changes it, and that it reads a pinned snapshot. */
static void hash_cases(const char *dir)
{
    char path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/hashed", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "a second store opens");
    static const char *const keys[] = {"v:A\x01", "v:AB", "v:B"}, *const vals[] = {"1", "22", ""};
    retape_kv_batch *b = retape_kv_batch_new(NULL);
    retape_kv_batch_put(b, "v:B", 3, "", 0); /* written out of order, and around the prefix */
    retape_kv_batch_put(b, "u:zz", 4, "x", 1);
    retape_kv_batch_put(b, "v:A\x01", 4, "1", 1);
    retape_kv_batch_put(b, "w:", 2, "y", 1);
    retape_kv_batch_put(b, "v:AB", 4, "22", 2);
    retape_kv_batch_put(b, "v", 1, "not under v:", 12);
    CHECK(retape_kv_write(kv, b, &err) == 0, "records under v: and around it");
    retape_kv_batch_free(b);
    uint64_t h = hash_of(kv, "v:", 2);
    CHECK(h == reference_hash(keys, vals, 3), "the hash of v: is XXH3 over the three records in key order, framed by their lengths");
    CHECK(hash_of(kv, "v:A", 3) == reference_hash(keys, vals, 2), "a longer prefix covers only its records");
    CHECK(hash_of(kv, "q:", 2) == reference_hash(keys, vals, 0), "an empty prefix range hashes as no records");

    retape_kv_snapshot *snap = retape_kv_snapshot_take(kv);
    retape_kv *view = retape_kv_view(kv, &err);
    retape_kv_pin_snapshot(view, snap);
    retape_kv_snapshot_release(snap);
    /* "v:AB" = "22" becomes "v:A" = "B22": the same bytes, moved over the key/value border */
    CHECK(retape_kv_delete(kv, "v:AB", 4, &err) == 0 && retape_kv_put(kv, "v:A", 3, "B22", 3, &err) == 0, "bytes moved from a key into a value");
    CHECK(hash_of(kv, "v:", 2) != h, "the hash changes");
    CHECK(hash_of(view, "v:", 2) == h, "a view pinned before the change still hashes what it saw");
    retape_kv_unpin(view);
    retape_kv_close(view);

    /* prefixes ending in 0xff bytes: the scan's end is computed past them */
    CHECK(retape_kv_put(kv, "\xff\xff" "a", 3, "1", 1, &err) == 0 && retape_kv_put(kv, "\xfe\xff" "b", 3, "2", 1, &err) == 0
          && retape_kv_put(kv, "\xff", 1, "3", 1, &err) == 0, "keys of 0xff bytes");
    static const char *const fk[] = {"\xff\xff" "a"}, *const fv[] = {"1"};
    static const char *const ek[] = {"\xfe\xff" "b"}, *const ev[] = {"2"};
    CHECK(hash_of(kv, "\xff\xff", 2) == reference_hash(fk, fv, 1), "prefix \\xff\\xff (no end key)");
    CHECK(hash_of(kv, "\xfe\xff", 2) == reference_hash(ek, ev, 1), "prefix \\xfe\\xff (ends before \\xff)");
    retape_kv_close(kv);
}

/* The fingerprint of prefix written plainly (retape.h): segments of the
 * records (keys sharing the bytes up to their first NUL) in key order, each
 * hashed as reference_hash hashes records, then (name length, name, hash)
 * hashed in turn; the cache's own keys left out. */
static uint64_t reference_fingerprint(retape_kv *kv, const char *prefix, size_t plen)
{
    static const char ns[] = "\xff" "fingerprint";
    XXH3_state_t *all = XXH3_createState(), *seg = XXH3_createState();
    XXH3_64bits_reset(all);
    char *err = NULL, name[256];
    size_t name_len = 0;
    int open_seg = 0;
    retape_kv_iter *it = retape_kv_scan(kv, prefix, plen, &err);
    const char *k, *v;
    size_t kl, vl;
    while (it && retape_kv_iter_next(it, &k, &kl, &v, &vl, &err) == 1) {
        if (kl >= sizeof ns - 1 && memcmp(k, ns, sizeof ns - 1) == 0)
            continue;
        const char *nul = memchr(k, '\0', kl);
        size_t sl = nul ? (size_t)(nul - k) + 1 : kl;
        if (!open_seg || sl != name_len || memcmp(name, k, sl) != 0) {
            if (open_seg) {
                uint64_t f[1] = {name_len}, h = XXH3_64bits_digest(seg);
                XXH3_64bits_update(all, f, 8);
                XXH3_64bits_update(all, name, name_len);
                XXH3_64bits_update(all, &h, 8);
            }
            memcpy(name, k, sl);
            name_len = sl, open_seg = 1;
            XXH3_64bits_reset(seg);
        }
        uint64_t lengths[2] = {kl, vl};
        XXH3_64bits_update(seg, lengths, sizeof lengths);
        XXH3_64bits_update(seg, k, kl);
        XXH3_64bits_update(seg, v, vl);
    }
    if (open_seg) {
        uint64_t f[1] = {name_len}, h = XXH3_64bits_digest(seg);
        XXH3_64bits_update(all, f, 8);
        XXH3_64bits_update(all, name, name_len);
        XXH3_64bits_update(all, &h, 8);
    }
    retape_kv_iter_close(it);
    uint64_t h = XXH3_64bits_digest(all);
    XXH3_freeState(all);
    XXH3_freeState(seg);
    return h;
}

static uint64_t fingerprint_of(retape_kv *kv, const char *prefix, size_t plen)
{
    return hash_by(retape_kv_fingerprint, kv, prefix, plen);
}

static int put_kv(retape_kv *kv, const char *k, size_t kl, const char *v)
{
    char *err = NULL;
    int rc = retape_kv_put(kv, k, kl, v, strlen(v), &err);
    retape_free(err);
    return rc;
}

/* Fingerprints kept by segment: equal to the plain computation after
 * every kind of change (put, overwrite, delete, a segment gone, a key
 * without NUL, reopening, a process killed after a write, a pinned view,
 * more changes than are remembered, nested prefixes), and read from the
 * cache where it is in step (a tampered cache entry shows). */
static void fingerprint_cases(const char *dir)
{
    char path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/fingerprinted", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "a store for fingerprints opens");
    CHECK(put_kv(kv, "v:A\0" "1", 5, "a1") == 0 && put_kv(kv, "v:A\0" "2", 5, "a2") == 0 &&
          put_kv(kv, "v:B\0" "1", 5, "b1") == 0 && put_kv(kv, "v:C", 3, "c") == 0 && put_kv(kv, "t:A\0" "x", 5, "t") == 0 &&
          put_kv(kv, "w:", 2, "w") == 0, "records of three segments under v:, and others");
    uint64_t first = fingerprint_of(kv, "v:", 2);
    CHECK(first == reference_fingerprint(kv, "v:", 2), "the first fingerprint is the plain one");
    CHECK(first != hash_of(kv, "v:", 2), "and not the plain hash of the records");
    CHECK(fingerprint_of(kv, "v:", 2) == first, "again, from the cache: the same");
    CHECK(fingerprint_of(kv, "t:", 2) == reference_fingerprint(kv, "t:", 2), "another prefix");
    CHECK(put_kv(kv, "v:B\0" "1", 5, "b1, again") == 0, "an overwrite");
    uint64_t after = fingerprint_of(kv, "v:", 2);
    CHECK(after != first && after == reference_fingerprint(kv, "v:", 2), "the fingerprint follows an overwrite");
    CHECK(retape_kv_delete(kv, "v:A\0" "1", 5, &err) == 0, "a delete");
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "the fingerprint follows a delete");
    CHECK(retape_kv_delete(kv, "v:A\0" "2", 5, &err) == 0, "the segment's last record deleted");
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "a segment gone");
    CHECK(put_kv(kv, "v:A\0" "1", 5, "a1") == 0 && put_kv(kv, "v:", 2, "the prefix itself") == 0,
          "the segment back, and a key that is the prefix");
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "the fingerprint follows");
    CHECK(fingerprint_of(kv, "v:B", 3) == reference_fingerprint(kv, "v:B", 3) &&
          fingerprint_of(kv, "v:B\0", 4) == reference_fingerprint(kv, "v:B\0", 4),
          "a longer prefix, and one that ends with a NUL (not cached)");
    CHECK(put_kv(kv, "v:B\0" "2", 5, "b2") == 0 && fingerprint_of(kv, "v:B", 3) == reference_fingerprint(kv, "v:B", 3),
          "a change under both v: and v:B, the longer fingerprinted first");
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "then the shorter");

    /* the fingerprints' own keys are not written from outside */
    uint64_t good = fingerprint_of(kv, "v:", 2);
    CHECK(retape_kv_put(kv, "\xff" "fingerprint:v:C", 16, "12345678", 8, &err) == -1, "a write of a cached hash is refused");
    CHECK_CONTAINS(err, "a key of the store's fingerprints", "naming the reserved keys");
    retape_free(err);
    err = NULL;
    /* the cache is what an unchanged segment's hash is read from (tampered
     * with behind the store's back, it shows), until its segment changes */
    retape_kv_close(kv);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_t *raw = rocksdb_open(o, path, &err);
    CHECK(raw != NULL, "the store opened raw");
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(raw, wo, "\xff" "fingerprint:v:C", 16, "12345678", 8, &err);
    /* stamped as a close would (the marks trusted): the store's last
     * sequence number, the stamp's own write */
    uint64_t seq = rocksdb_get_latest_sequence_number(raw) + 1;
    rocksdb_put(raw, wo, "\xff" "fingerprint@", 13, (const char *)&seq, 8, &err);
    rocksdb_close(raw);
    kv = retape_kv_open(path, &err);
    CHECK(kv && fingerprint_of(kv, "v:", 2) != good, "a tampered cached hash shows in the next fingerprint (the cache is read)");
    CHECK(put_kv(kv, "v:C", 3, "c") == 0 && fingerprint_of(kv, "v:", 2) == good, "a write to the segment recomputes it");
    /* a writer that notes nothing (an older retape, RocksDB itself) leaves
     * the stamp behind: the marks are not trusted then */
    retape_kv_close(kv);
    raw = rocksdb_open(o, path, &err);
    rocksdb_put(raw, wo, "v:C", 3, "changed by another writer", 25, &err);
    rocksdb_close(raw);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    kv = retape_kv_open(path, &err);
    uint64_t other = kv ? fingerprint_of(kv, "v:", 2) : 0;
    CHECK(other != good && other == reference_fingerprint(kv, "v:", 2),
          "a change by a writer that notes nothing shows in the next fingerprint");
    CHECK(put_kv(kv, "v:C", 3, "c") == 0 && fingerprint_of(kv, "v:", 2) == good, "and the value comes back with the record");

    /* opened and closed with no write (a read-only command): no stamp written,
     * the last write is still the stamp, and the marks stay trusted */
    retape_kv_close(kv);
    o = rocksdb_options_create();
    raw = rocksdb_open(o, path, &err);
    uint64_t before = raw ? rocksdb_get_latest_sequence_number(raw) : 0;
    if (raw)
        rocksdb_close(raw);
    kv = retape_kv_open(path, &err);
    retape_kv_close(kv);
    raw = rocksdb_open(o, path, &err);
    size_t stamp_len = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *stamp = raw ? rocksdb_get(raw, ro, "\xff" "fingerprint@", 13, &stamp_len, &err) : NULL;
    uint64_t stamped = 0;
    for (size_t i = 0; stamp && stamp_len == 8 && i < 8; i++)
        stamped |= (uint64_t)(unsigned char)stamp[i] << (8 * i);
    CHECK(raw && stamped != 0 && stamped == before && rocksdb_get_latest_sequence_number(raw) == before,
          "a close with no write since a trusted open writes no stamp (the last write is still the stamp)");
    rocksdb_free(stamp);
    rocksdb_readoptions_destroy(ro);
    if (raw)
        rocksdb_close(raw);
    rocksdb_options_destroy(o);

    /* reopened: the mark says the cache is in step; changes after it are noted */
    kv = retape_kv_open(path, &err);
    CHECK(kv && put_kv(kv, "v:D\0" "1", 5, "d") == 0, "reopened, a new segment");
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "the fingerprint after reopening follows");
    uint64_t now;
    now = fingerprint_of(kv, "v:", 2);
    /* a pinned view fingerprints what it saw */
    retape_kv_snapshot *snap = retape_kv_snapshot_take(kv);
    retape_kv *view = retape_kv_view(kv, &err);
    retape_kv_pin_snapshot(view, snap);
    retape_kv_snapshot_release(snap);
    CHECK(put_kv(kv, "v:E\0" "1", 5, "e") == 0, "a change after the view's snapshot");
    CHECK(fingerprint_of(view, "v:", 2) == now, "the pinned view's fingerprint is as of its snapshot");
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "the store's follows the change");
    retape_kv_unpin(view);
    retape_kv_close(view);

    /* more segments changed at once than are remembered (65,536) */
    retape_kv_batch *b = retape_kv_batch_new(NULL);
    char key[32];
    for (int i = 0; i < 70000; i++) {
        int kl = snprintf(key, sizeof key, "v:N%06d", i);
        key[kl] = '\0';
        retape_kv_batch_put(b, key, (size_t)kl + 1, "n", 1);
    }
    CHECK(retape_kv_write(kv, b, &err) == 0, "70,000 new segments in one write");
    retape_kv_batch_free(b);
    CHECK(fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2), "the fingerprint after them");
    CHECK(put_kv(kv, "v:N000007", 10, "m") == 0 && fingerprint_of(kv, "v:", 2) == reference_fingerprint(kv, "v:", 2),
          "and after one more change");
    retape_kv_close(kv);
}

/* Writes batch i of the unlogged cases: b:%06d (vlen bytes; at most 16 KB)
 * and n = i (the last one). */
static int write_numbered_sized(retape_kv *kv, retape_kv_batch *b, int i, int unlogged, size_t vlen)
{
    static char val[16 << 10];
    char key[16];
    char *err = NULL;
    snprintf(key, sizeof key, "b:%06d", i);
    memset(val, 'a' + i % 26, vlen);
    retape_kv_batch_put(b, key, strlen(key), val, vlen);
    snprintf(key, sizeof key, "%d", i);
    retape_kv_batch_put(b, "n", 1, key, strlen(key));
    int rc = unlogged ? retape_kv_write_unlogged(kv, b, &err) : retape_kv_write(kv, b, &err);
    retape_kv_batch_clear(b);
    retape_free(err);
    return rc;
}

/* ~600 bytes a batch: a 64 KB memtable fills every ~100. */
static int write_numbered(retape_kv *kv, retape_kv_batch *b, int i, int unlogged)
{
    return write_numbered_sized(kv, b, i, unlogged, 600);
}

/* Which of batches 1..upto a reopened store holds: returns n (0: none) and
 * sets *prefix when exactly b:1..n are there. */
static int numbered_held(const char *path, int upto, int *prefix)
{
    char *err = NULL, *val = NULL;
    size_t vlen = 0;
    retape_kv *kv = retape_kv_open(path, &err);
    if (!kv) {
        retape_free(err);
        *prefix = 0;
        return -1;
    }
    int n = 0;
    if (retape_kv_get(kv, "n", 1, &val, &vlen, &err) == 1)
        n = atoi(val);
    retape_free(val);
    val = NULL;
    *prefix = 1;
    for (int i = 1; i <= upto; i++) {
        char key[16];
        snprintf(key, sizeof key, "b:%06d", i);
        int got = retape_kv_get(kv, key, strlen(key), &val, &vlen, &err);
        retape_free(val);
        val = NULL;
        if (got != (i <= n))
            *prefix = 0;
    }
    retape_kv_close(kv);
    return n;
}

enum { KILL_AFTER_ALL, KILL_AFTER_LOGGED, KILL_AFTER_PERSIST, KILL_AFTER_CLOSE, KILL_IN_FLUSH };

static retape_kv *race_kv;

/* KILL_IN_FLUSH's second thread: while the first flushes the unlogged
 * batches (persist), a logged put "L" through a view, then SIGKILL. */
static void *logged_during_flush(void *arg)
{
    (void)arg;
    nanosleep(&(struct timespec){.tv_nsec = 3000000}, NULL);
    char *err = NULL;
    retape_kv *view = retape_kv_view(race_kv, &err);
    if (!view || retape_kv_put(view, "L", 1, "1", 1, &err) != 0)
        _exit(1);
    raise(SIGKILL);
    return NULL;
}

/* The child of crash_after (this program run again: RocksDB's background
 * threads do not survive a fork): writes unlogged batches (and what `plan`
 * adds) into a new store at path, then kills itself with SIGKILL. */
static int crash_child(const char *path, size_t buffer, int total, int plan)
{
    char *err = NULL;
    retape_kv *kv = retape_kv_open_sized(path, buffer, &err);
    retape_kv_batch *b = retape_kv_batch_new(&err);
    if (!kv || !b)
        _exit(1);
    if (plan == KILL_IN_FLUSH) { /* 16 KB batches: a flush long enough to race */
        for (int i = 1; i <= total; i++)
            if (write_numbered_sized(kv, b, i, 1, 16 << 10) != 0)
                _exit(1);
        race_kv = kv;
        pthread_t t;
        if (pthread_create(&t, NULL, logged_during_flush, NULL) != 0 || retape_kv_persist(kv, &err) != 0)
            _exit(1);
        pthread_join(t, NULL);
        return 1;
    }
    for (int i = 1; i <= total; i++) {
        int logged = plan == KILL_AFTER_LOGGED && i == total / 2;
        if (write_numbered(kv, b, i, !logged) != 0)
            _exit(1);
        if (plan == KILL_AFTER_PERSIST && i == total / 2 && retape_kv_persist(kv, &err) != 0)
            _exit(1);
    }
    if (plan == KILL_AFTER_CLOSE)
        retape_kv_close(kv);
    raise(SIGKILL);
    return 1;
}

/* This program's path (under valgrind, the client's, not valgrind's). */
static char self_exe[4096];

/* Runs crash_child in a new process (a real crash) on the store
 * dir/name (its path left in path) and waits for it; then what the store
 * holds: numbered_held's n and *prefix. */
static int crash_then_held(char *path, size_t psize, const char *dir, const char *name, size_t buffer, int total,
                           int plan, int *prefix)
{
    snprintf(path, psize, "%s/%s", dir, name);
    pid_t pid = fork();
    if (pid == 0) {
        char b[32], t[32], p[32];
        snprintf(b, sizeof b, "%zu", buffer);
        snprintf(t, sizeof t, "%d", total);
        snprintf(p, sizeof p, "%d", plan);
        execl(self_exe, "test_kv", "crash", path, b, t, p, (char *)NULL);
        _exit(1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer of %s was killed (SIGKILL)", path);
    return numbered_held(path, total, prefix);
}

/* Unlogged writes: a killed process leaves the store at a prefix of its
 * batches (RocksDB's flushes when the memtable fills, persist, a logged
 * write after unlogged ones, close). */
static void unlogged_cases(const char *dir)
{
    char path[4096];
    int prefix = 0, n;

    n = crash_then_held(path, sizeof path, dir, "unlogged-fill", 64 << 10, 1000, KILL_AFTER_ALL, &prefix);
    CHECK(n > 0 && n < 1000 && prefix, "1000 unlogged batches into a 64 KB memtable, killed: the first %d of them, "
          "nothing after (the memtable's flushes)", n);
    n = crash_then_held(path, sizeof path, dir, "unlogged-none", 0, 200, KILL_AFTER_ALL, &prefix);
    CHECK(n == 0 && prefix, "200 unlogged batches, no flush, killed: none of them (%d)", n);
    n = crash_then_held(path, sizeof path, dir, "unlogged-persist", 0, 200, KILL_AFTER_PERSIST, &prefix);
    CHECK(n == 100 && prefix, "persist after batch 100 of 200, killed: batches 1..100 (%d)", n);
    n = crash_then_held(path, sizeof path, dir, "unlogged-logged", 0, 200, KILL_AFTER_LOGGED, &prefix);
    CHECK(n == 100 && prefix, "batch 100 of 200 logged, the others not, killed: batches 1..100, the unlogged "
          "ones before the logged one with it (%d)", n);
    n = crash_then_held(path, sizeof path, dir, "unlogged-close", 0, 200, KILL_AFTER_CLOSE, &prefix);
    CHECK(n == 200 && prefix, "200 unlogged batches, closed, then killed: all of them (%d)", n);
    /* two threads: a logged put through a view while the other flushes */
    n = crash_then_held(path, sizeof path, dir, "unlogged-race", 64u << 20, 1000, KILL_IN_FLUSH, &prefix);
    char *lval = NULL;
    size_t llen = 0;
    char *err = NULL;
    retape_kv *check = retape_kv_open(path, &err);
    int logged = check ? retape_kv_get(check, "L", 1, &lval, &llen, &err) : -1;
    retape_free(lval);
    retape_kv_close(check);
    CHECK(logged == 1 && n == 1000 && prefix, "a logged put from another thread during the flush of 1,000 unlogged "
          "batches, killed: the put and every batch before it (L %d, batches %d)", logged, n);

    snprintf(path, sizeof path, "%s/unlogged-count", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    retape_kv_batch *b = retape_kv_batch_new(&err);
    CHECK(kv && b && retape_kv_persist(kv, &err) == 0 && retape_kv_persist_count(kv) == 0,
          "persist with nothing unlogged flushes nothing");
    CHECK(kv && b && write_numbered(kv, b, 1, 1) == 0 && write_numbered(kv, b, 2, 0) == 0
          && write_numbered(kv, b, 3, 0) == 0 && retape_kv_persist_count(kv) == 1,
          "a logged write after an unlogged one flushes once; the next logged one does not");
    retape_kv *view = kv ? retape_kv_view(kv, &err) : NULL;
    CHECK(view && write_numbered(view, b, 4, 1) == 0 && write_numbered(kv, b, 5, 0) == 0
          && retape_kv_persist_count(kv) == 2 && retape_kv_persist(view, &err) == 0 && retape_kv_persist_count(view) == 2,
          "a view's unlogged write is its base's to flush: one count for the database");
    retape_kv_close(view);
    retape_kv_batch_free(b);
    retape_kv_close(kv);
}

/* Fingerprints of many segments, which are hashed in shares on several
 * threads (kv_fingerprint.c): equal to the plain computation whether the
 * prefix is read whole (a new store) or by its dirty segments (a reopened
 * one, most segments changed), with every shape of segment name among
 * them: keys without a NUL (one a prefix of another), a key that is its
 * segment's name, names with \xff bytes, the prefix itself; and for the
 * empty prefix, whose segments include the cache's own keys (left out). */
static void fingerprint_share_cases(const char *dir)
{
    char path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/shares", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "a store of many segments opens");
    int ok = 1;
    char k[64], v[32];
    for (int t = 0; t < 300 && ok; t++) {
        int kl = snprintf(k, sizeof k, "v:T%03d", t) + 1; /* the NUL ends the segment's name */
        for (int r = 0; r < 1 + t % 17 && ok; r++) {
            int n = snprintf(k + kl, sizeof k - (size_t)kl, "%d", 1000 + r);
            snprintf(v, sizeof v, "%d.%d", t, r);
            ok = put_kv(kv, k, (size_t)(kl + n), v) == 0;
        }
        if (t % 50 == 0) /* the key that is the segment's name, alone or beside its records */
            ok = ok && put_kv(kv, k, (size_t)kl, "name") == 0;
    }
    ok = ok && put_kv(kv, "v:W", 3, "w") == 0 && put_kv(kv, "v:Wx", 4, "wx") == 0 && put_kv(kv, "v:W\0" "1", 5, "w1") == 0 &&
         put_kv(kv, "v:\xff\xff\0" "1", 7, "ff") == 0 && put_kv(kv, "v:\xff", 3, "f") == 0 && put_kv(kv, "v:", 2, "p") == 0 &&
         put_kv(kv, "t:A\0" "1", 5, "t") == 0;
    CHECK(ok, "300 segments under v:, of 1 to 17 records, and names of every shape");
    uint64_t fresh = fingerprint_of(kv, "v:", 2);
    CHECK(fresh == reference_fingerprint(kv, "v:", 2), "a new store's many segments, read whole in shares: the plain fingerprint");
    CHECK(fingerprint_of(kv, "", 0) == reference_fingerprint(kv, "", 0), "the empty prefix too (the cache's keys left out)");
    retape_kv_close(kv);
    kv = retape_kv_open(path, &err);
    for (int t = 0; t < 300 && kv && ok; t += 2) { /* every other segment changed, every sixth gone */
        int kl = snprintf(k, sizeof k, "v:T%03d", t) + 1;
        if (t % 6 != 0) {
            int n = snprintf(k + kl, sizeof k - (size_t)kl, "%d", 1000);
            ok = put_kv(kv, k, (size_t)(kl + n), "changed") == 0;
            continue;
        }
        for (int r = 0; r < 1 + t % 17 && ok; r++) {
            int n = snprintf(k + kl, sizeof k - (size_t)kl, "%d", 1000 + r);
            ok = retape_kv_delete(kv, k, (size_t)(kl + n), &err) == 0;
        }
        ok = ok && retape_kv_delete(kv, k, (size_t)kl, &err) == 0;
    }
    ok = ok && put_kv(kv, "v:T999", 7, "new") == 0 && put_kv(kv, "v:Wx", 4, "wx2") == 0;
    CHECK(kv && ok, "reopened: 150 segments changed or gone, one new");
    uint64_t dirty = kv ? fingerprint_of(kv, "v:", 2) : 0;
    CHECK(dirty != fresh && dirty == reference_fingerprint(kv, "v:", 2),
          "the dirty segments hashed in shares and merged with the cached ones: the plain fingerprint");
    CHECK(fingerprint_of(kv, "v:", 2) == dirty, "again, all from the cache");
    retape_kv_close(kv);
    retape_free(err);
}

/* A writer killed after writes into a store whose fingerprint cache was
 * in step (the crash children of unlogged_cases, on records "b:NNNNNN"):
 * the next fingerprint is the plain one whatever of the writes survived
 * (their first write deleted the mark before them, or none survived). */
static void fingerprint_crash_cases(const char *dir)
{
    static const struct {
        const char *name;
        int plan;
        const char *what;
    } cases[] = {
        {"fp-logged", KILL_AFTER_LOGGED, "a logged write among unlogged ones"},
        {"fp-persist", KILL_AFTER_PERSIST, "unlogged writes, half of them persisted"},
        {"fp-lost", KILL_AFTER_ALL, "unlogged writes, none persisted"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[4096], *err = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, cases[c].name);
        retape_kv *kv = retape_kv_open(path, &err);
        retape_kv_batch *b = retape_kv_batch_new(&err);
        for (int i = 1; kv && b && i <= 3; i++)
            write_numbered(kv, b, i, 0);
        retape_kv_batch_free(b);
        uint64_t before = kv ? fingerprint_of(kv, "b:", 2) : 0;
        retape_kv_close(kv);
        int prefix = 0;
        int n = crash_then_held(path, sizeof path, dir, cases[c].name, 0, 200, cases[c].plan, &prefix);
        kv = retape_kv_open(path, &err);
        uint64_t after = kv ? fingerprint_of(kv, "b:", 2) : 0;
        CHECK(kv && after == reference_fingerprint(kv, "b:", 2) && (cases[c].plan == KILL_AFTER_ALL ? after == before : after != before),
              "fingerprint after a writer was killed: %s (%d batches kept)", cases[c].what, n);
        retape_kv_close(kv);
    }
}

/* ------------------------------------------------------------------------
 * A differential fuzz of the fingerprints (from a review's probe): random
 * puts, deletes and batches (logged or not) of keys made of fragments
 * (NUL and 0xff bytes, the reserved namespace's neighbours), fingerprints
 * of 22 prefixes against the plain computation, the store reopened, and
 * children (this program run again) killed at a random point while they
 * write into a 64 KB memtable, so that RocksDB's own flushes land between
 * a mark's deletion and the write it goes before. */

static unsigned long long fuzz_rng = 88172645463325252ULL;
static unsigned fuzz_rnd(unsigned n)
{
    fuzz_rng ^= fuzz_rng << 13, fuzz_rng ^= fuzz_rng >> 7, fuzz_rng ^= fuzz_rng << 17;
    return (unsigned)(fuzz_rng % n);
}

static const char *const fuzz_frags[] = {"v:", "A", "B", "\0", "\xff", "1", "fingerprin", "t:", "w"};
static const size_t fuzz_frag_len[] = {2, 1, 1, 1, 1, 1, 10, 2, 1};

/* A random key of up to four fragments, never one of the reserved keys. */
static size_t fuzz_key(char *k)
{
    for (;;) {
        size_t n = 0;
        int parts = (int)fuzz_rnd(5);
        for (int i = 0; i < parts; i++) {
            int f = (int)fuzz_rnd(9);
            memcpy(k + n, fuzz_frags[f], fuzz_frag_len[f]);
            n += fuzz_frag_len[f];
        }
        if (!(n >= 12 && memcmp(k, "\xff" "fingerprint", 12) == 0))
            return n;
    }
}

static const char *const fuzz_prefixes[] = {"", "v:", "v:A", "v:AB", "\xff", "\xff" "fingerprin", "\xff" "f", "v:A\0",
                                            "w", "1", "A", "B", "AB", "v", "t:", "t:A", "t:B", "v:B", "v:1", "\xff" "A",
                                            "wA", "1A"};
static const size_t fuzz_plens[] = {0, 2, 3, 4, 1, 11, 2, 4, 1, 1, 1, 1, 2, 1, 2, 3, 3, 3, 3, 2, 2, 2};
#define FUZZ_NP (sizeof fuzz_plens / sizeof fuzz_plens[0])
_Static_assert(sizeof fuzz_prefixes / sizeof fuzz_prefixes[0] == FUZZ_NP, "a length for every prefix");

static int fuzz_mismatches;

static void fuzz_check(retape_kv *kv, size_t p)
{
    uint64_t h = 0;
    char *err = NULL;
    if (retape_kv_fingerprint(kv, fuzz_prefixes[p], fuzz_plens[p], &h, &err) != 0 ||
        h != reference_fingerprint(kv, fuzz_prefixes[p], fuzz_plens[p])) {
        if (fuzz_mismatches++ < 10)
            printf("# fingerprint of prefix %zu differs (%s)\n", p, err ? err : "value");
    }
    retape_free(err);
}

/* n random operations on kv; values of ~4 KB when big; check: fingerprints
 * checked on the way, else only taken. */
static void fuzz_ops(retape_kv *kv, int n, int big, int check)
{
    char k[64], *err = NULL;
    static char v[4096];
    retape_kv_batch *b = retape_kv_batch_new(NULL);
    for (int i = 0; i < n; i++) {
        unsigned op = fuzz_rnd(10);
        size_t kl = fuzz_key(k);
        int vl = snprintf(v, 8, "%u", fuzz_rnd(1000));
        if (big) {
            memset(v + vl, 'x', sizeof v - (size_t)vl);
            vl = (int)(sizeof v) - (int)fuzz_rnd(100);
        }
        if (op < 3) {
            retape_kv_put(kv, k, kl, v, (size_t)vl, &err);
        } else if (op < 4) {
            retape_kv_delete(kv, k, kl, &err);
        } else if (op < 7) {
            int m = (int)fuzz_rnd(6);
            for (int j = 0; j < m; j++) {
                kl = fuzz_key(k);
                if (fuzz_rnd(3))
                    retape_kv_batch_put(b, k, kl, v, (size_t)vl);
                else
                    retape_kv_batch_delete(b, k, kl);
            }
            if (fuzz_rnd(2))
                retape_kv_write_unlogged(kv, b, &err);
            else
                retape_kv_write(kv, b, &err);
            retape_kv_batch_clear(b);
        } else if (check) {
            fuzz_check(kv, fuzz_rnd(FUZZ_NP));
        } else {
            uint64_t h;
            size_t q = fuzz_rnd(FUZZ_NP);
            retape_kv_fingerprint(kv, fuzz_prefixes[q], fuzz_plens[q], &h, &err);
        }
        retape_free(err);
        err = NULL;
    }
    retape_kv_batch_free(b);
}

/* The fuzz's child: random writes (and fingerprints) into the store at
 * path until a timer kills it (SIGALRM) or it kills itself. */
static int fuzz_child(const char *path, unsigned long long seed, int n)
{
    fuzz_rng = seed;
    struct itimerval t = {{0, 0}, {0, 1000 + (long)fuzz_rnd(60000)}};
    setitimer(ITIMER_REAL, &t, NULL);
    retape_kv *kv = retape_kv_open_sized(path, 64 << 10, NULL);
    if (kv)
        fuzz_ops(kv, n * 20, 1, 0);
    raise(SIGKILL);
    return 1;
}

static void fingerprint_fuzz(const char *dir, int rounds)
{
    char path[4096], *err = NULL;
    snprintf(path, sizeof path, "%s/fp-fuzz", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    int killed = 0;
    for (int r = 0; r < rounds && kv; r++) {
        fuzz_ops(kv, 40, 0, 1);
        for (size_t p = 0; p < FUZZ_NP; p++)
            fuzz_check(kv, p);
        unsigned what = fuzz_rnd(4);
        if (what > 1)
            continue;
        retape_kv_close(kv);
        if (what == 1) {
            char seed[32], n[16];
            snprintf(seed, sizeof seed, "%llu", fuzz_rng ^ 0x5555);
            snprintf(n, sizeof n, "%u", fuzz_rnd(60));
            pid_t pid = fork();
            if (pid == 0) {
                execl(self_exe, "test_kv", "fpchild", path, seed, n, (char *)NULL);
                _exit(1);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            killed += WIFSIGNALED(status);
        }
        kv = retape_kv_open(path, &err);
        for (size_t p = 0; kv && p < FUZZ_NP; p++)
            fuzz_check(kv, p);
    }
    retape_kv_close(kv);
    CHECK(kv && fuzz_mismatches == 0 && killed > 0,
          "fuzz: %d rounds of random writes, reopens and %d killed writers: every fingerprint the plain one (%d differ)",
          rounds, killed, fuzz_mismatches);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "fpchild") == 0)
        return fuzz_child(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
    if (argc == 6 && strcmp(argv[1], "crash") == 0)
        return crash_child(argv[2], (size_t)strtoull(argv[3], NULL, 10), atoi(argv[4]), atoi(argv[5]));
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    self_exe[n > 0 ? n : 0] = '\0';
    char *dir = check_tempdir(), path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/state", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "store opens (created)");

    CHECK(retape_kv_put(kv, "a:1", 3, "one", 3, &err) == 0, "put");
    char *val = NULL;
    size_t vlen = 0;
    CHECK(retape_kv_get(kv, "a:1", 3, &val, &vlen, &err) == 1 && vlen == 3 && memcmp(val, "one", 3) == 0, "get returns the value");
    retape_free(val);
    CHECK(retape_kv_get(kv, "a:2", 3, &val, &vlen, &err) == 0, "get of an absent key returns 0");
    CHECK(retape_kv_put(kv, "bin", 3, "x\0y", 3, &err) == 0 && retape_kv_get(kv, "bin", 3, &val, &vlen, &err) == 1
          && vlen == 3 && val[1] == '\0', "values may hold NUL bytes");
    retape_free(val);
    CHECK(retape_kv_delete(kv, "bin", 3, &err) == 0 && retape_kv_get(kv, "bin", 3, &val, &vlen, &err) == 0, "delete");

    retape_kv_batch *b = retape_kv_batch_new(NULL);
    retape_kv_batch_put(b, "a:3", 3, "three", 5);
    retape_kv_batch_put(b, "a:2", 3, "two", 3);
    retape_kv_batch_put(b, "b:1", 3, "bee", 3);
    retape_kv_batch_delete(b, "a:1", 3);
    CHECK(retape_kv_batch_count(b) == 4, "batch counts its operations");
    CHECK(retape_kv_get(kv, "a:2", 3, &val, &vlen, &err) == 0, "nothing visible before the write");
    CHECK(retape_kv_write(kv, b, &err) == 0, "batch written");
    retape_kv_batch_free(b);

    retape_kv_iter *it = retape_kv_scan(kv, "a:", 2, NULL);
    const char *k, *v;
    size_t kl, vl;
    char seen[64] = "";
    while (retape_kv_iter_next(it, &k, &kl, &v, &vl, &err) == 1)
        strncat(seen, k, kl), strcat(seen, " ");
    retape_kv_iter_close(it);
    CHECK_STR(seen, "a:2 a:3 ", "prefix scan in key order, deleted key gone, other prefix excluded");

    /* A shared snapshot: views pinned to it read the store as it was when it
     * was taken, after later writes and after the taker released it. */
    retape_kv *v1 = retape_kv_view(kv, &err), *v2 = retape_kv_view(kv, &err);
    retape_kv_snapshot *snap = retape_kv_snapshot_take(kv);
    CHECK(v1 && v2 && snap, "views and a shared snapshot");
    CHECK(retape_kv_put(kv, "a:2", 3, "TWO", 3, &err) == 0, "a write after the snapshot");
    retape_kv_pin_snapshot(v1, snap);
    retape_kv_pin_snapshot(v2, snap);
    retape_kv_snapshot_release(snap); /* the views hold it now */
    CHECK(retape_kv_get(v1, "a:2", 3, &val, &vlen, &err) == 1 && memcmp(val, "two", 3) == 0,
          "a view pinned to it reads the value before the write");
    retape_free(val);
    retape_kv_unpin(v1);
    CHECK(retape_kv_get(v2, "a:2", 3, &val, &vlen, &err) == 1 && memcmp(val, "two", 3) == 0,
          "another view still does after the first one unpinned");
    retape_free(val);
    CHECK(retape_kv_get(v1, "a:2", 3, &val, &vlen, &err) == 1 && memcmp(val, "TWO", 3) == 0,
          "unpinned: the latest value");
    retape_free(val);
    retape_kv_close(v2); /* closing a pinned view drops its reference */
    retape_kv_close(v1);

    /* A second handle, or another process, gets a clear error at once. */
    err = NULL;
    CHECK(retape_kv_open(path, &err) == NULL, "second open in the same process refused");
    CHECK_CONTAINS(err, "in use by another process", "message says the store is in use");
    retape_free(err);
    retape_kv_close(kv);

    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char *cerr = NULL;
        retape_kv *held = retape_kv_open(path, &cerr);
        if (write(ready[1], held ? "1" : "0", 1) != 1)
            _exit(1);
        sleep(3);
        retape_kv_close(held);
        _exit(0);
    }
    char flag = 0;
    if (read(ready[0], &flag, 1) != 1)
        flag = 0;
    CHECK(flag == '1', "child process holds the store");
    err = NULL;
    CHECK(retape_kv_open(path, &err) == NULL, "store held by another process refused, no hang");
    CHECK_CONTAINS(err, "in use by another process", "message names the situation");
    retape_free(err);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    err = NULL;
    kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "reopens after the holder died (kill -9)");
    CHECK(kv && retape_kv_get(kv, "a:3", 3, &val, &vlen, &err) == 1 && vlen == 5, "data survives");
    retape_free(val);
    retape_kv_close(kv);
    hash_cases(dir);
    fingerprint_cases(dir);
    snappy_store_reads(dir);
    unlogged_cases(dir);
    fingerprint_share_cases(dir);
    fingerprint_crash_cases(dir);
    fingerprint_fuzz(dir, 60);
    free(dir);
    return done_testing();
}
