/*
 * kv_fingerprint.c — a store's fingerprints, kept by segment so that a run
 * pays for what it changed, not for the whole store.
 *
 * The fingerprint of a prefix P (retape_kv_fingerprint) is XXH3 64 over
 * its segments in key order, each framed as (length of its name, name,
 * its hash: three little-endian fields, the hash 8 bytes); a segment is
 * the records whose keys share the bytes up to and including their first
 * NUL (a key without one is a segment by itself), and its hash is XXH3 64
 * over its records in key order, each framed by its key's and value's
 * lengths, as retape_kv_hash_prefix frames them.  The store's keys
 * "v:T\0B" and "t:T\0E\0N" make one segment per ticker and prefix.
 *
 * A store keeps each segment's hash under FP_CACHE + name and, per prefix,
 * a mark FP_SYNCED + P saying that the cached hashes of P are in step with
 * its records.  Every write is noted (kv_segments_note, from kv.c's write
 * paths): the segments it touches are dirty until P's next fingerprint,
 * and the mark of every prefix it touches is deleted in the same atomic
 * write.  A fingerprint recomputes the dirty segments when the handle has
 * noted every write since the mark was last true (the mark was there when
 * the store was opened, or this handle made it), else every segment of
 * P; it then writes the hashes that changed and the mark.  So a process
 * killed at any point leaves either a mark whose cache is right, or no
 * mark (and the next fingerprint recomputes the prefix whole): the value
 * never depends on what the cache held.  Keys under FP_NAMESPACE are the
 * cache's own: never noted, never part of a fingerprint.
 *
 * A writer that does not note its writes (a retape from before the
 * fingerprints, any other RocksDB client) would leave marks that lie; so
 * a close stamps the store with its last sequence number (FP_STAMP), and
 * an open that finds another number (or none) trusts no mark: it deletes
 * them, and every prefix is read whole once.
 *
 * The segments a fingerprint reads (a prefix's every one when it is read
 * whole, else the dirty ones) are hashed in shares of consecutive segments
 * on up to FP_HASH_THREADS_MAX threads, each through its own iterator, and
 * combined in key order: the value does not depend on the split.  A fresh
 * replay's store and a re-run of a day (every ticker dirty) read the whole
 * store here.
 */
#include "kv_fingerprint.h"
#include "retape.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define FP_NAMESPACE "\xff" "fingerprint"
#define FP_CACHE FP_NAMESPACE ":"  /* + segment name -> its hash, 8 bytes little-endian */
#define FP_SYNCED FP_NAMESPACE "!" /* + prefix -> "" : the cache of that prefix is in step */
#define FP_STAMP FP_NAMESPACE "@"  /* the store's last sequence number at a close that kept the marks */
#define FP_NAMESPACE_LEN (sizeof FP_NAMESPACE - 1)
#define FP_TAG_LEN (FP_NAMESPACE_LEN + 1)
#define FP_DIRTY_MAX ((size_t)1 << 16) /* dirty segments remembered; past it, every prefix recomputes whole */
#define FP_PREFIXES_MAX 16              /* prefixes with a mark or a complete record of changes */
#define FP_SCAN_READAHEAD_BYTES ((size_t)256 << 10) /* a whole-prefix pass reads ahead this much */
#define FP_HASH_THREADS_MAX 4    /* threads hashing one fingerprint's segments, at most (one per core) */
#define FP_HASH_PARALLEL_MIN 32  /* segments below which one thread hashes them all */
#define FP_LIST_STEPS 8          /* keys a listing steps through in a segment before it seeks past it */

typedef struct {
    char *name; /* NULL: a free slot */
    size_t len;
    uint64_t hash;
} dirty_slot;

typedef struct {
    char *bytes;
    size_t len;
} prefix_t;

struct kv_segments {
    dirty_slot *slots; /* open addressing, linear probing; capacity a power of two */
    size_t cap, count;
    prefix_t synced[FP_PREFIXES_MAX];   /* prefixes whose mark is in the store */
    size_t n_synced;
    prefix_t complete[FP_PREFIXES_MAX]; /* prefixes whose every change since their mark was noted */
    size_t n_complete;
    int unmark[FP_PREFIXES_MAX]; /* synced[i] is deleted by the batch being written */
    uint64_t opened_stamp; /* the stamp found trusted at open (0: none): the last write then */
};

/* ------------------------------------------------------------------------
 * small helpers */

static size_t segment_len(const char *k, size_t klen)
{
    const char *nul = memchr(k, '\0', klen);
    return nul ? (size_t)(nul - k) + 1 : klen;
}

static int has_prefix(const char *k, size_t klen, const char *p, size_t plen)
{
    return klen >= plen && memcmp(k, p, plen) == 0;
}

static int reserved(const char *k, size_t klen)
{
    return has_prefix(k, klen, FP_NAMESPACE, FP_NAMESPACE_LEN);
}

static void put_u64(unsigned char out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char in[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | in[i];
    return v;
}

/* tag + bytes in a malloc'd key (NULL when out of memory). */
static char *tagged(const char *tag, const char *s, size_t len, size_t *out_len)
{
    size_t tl = strlen(tag);
    *out_len = 0;
    char *k = malloc(tl + len + 1);
    if (!k)
        return NULL;
    memcpy(k, tag, tl);
    memcpy(k + tl, s, len);
    *out_len = tl + len;
    return k;
}

static int prefix_index(const prefix_t *list, size_t n, const char *p, size_t plen)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].len == plen && memcmp(list[i].bytes, p, plen) == 0)
            return (int)i;
    return -1;
}

/* Adds p to list (no-op if present or full).  0, or -1 when out of memory. */
static int prefix_add(prefix_t *list, size_t *n, const char *p, size_t plen)
{
    if (prefix_index(list, *n, p, plen) >= 0 || *n == FP_PREFIXES_MAX)
        return 0;
    char *copy = malloc(plen + 1);
    if (!copy)
        return -1;
    memcpy(copy, p, plen);
    list[*n].bytes = copy, list[*n].len = plen;
    (*n)++;
    return 0;
}

static void prefix_remove(prefix_t *list, size_t *n, size_t i)
{
    free(list[i].bytes);
    list[i] = list[--*n];
}

static void prefixes_clear(prefix_t *list, size_t *n)
{
    while (*n)
        prefix_remove(list, n, *n - 1);
}

/* ------------------------------------------------------------------------
 * the dirty segments */

static void dirty_clear(kv_segments *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i].name);
    free(s->slots);
    s->slots = NULL, s->cap = s->count = 0;
}

/* Forgets every change noted: every prefix recomputes whole next time. */
static void forget_changes(kv_segments *s)
{
    dirty_clear(s);
    prefixes_clear(s->complete, &s->n_complete);
}

static int dirty_grow(kv_segments *s)
{
    size_t cap = s->cap ? 2 * s->cap : 256;
    dirty_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].name)
            continue;
        size_t j = s->slots[i].hash & (cap - 1);
        while (slots[j].name)
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots, s->cap = cap;
    return 0;
}

/* Adds the segment [name, name+len) to the dirty set.  0, or -1 when out
 * of memory. */
static int dirty_add(kv_segments *s, const char *name, size_t len)
{
    if (s->count >= FP_DIRTY_MAX) {
        forget_changes(s); /* too many to remember: whole recomputes instead */
        return 0;
    }
    if (2 * (s->count + 1) > s->cap && dirty_grow(s) != 0)
        return -1;
    uint64_t h = XXH3_64bits(name, len);
    size_t j = h & (s->cap - 1);
    for (; s->slots[j].name; j = (j + 1) & (s->cap - 1))
        if (s->slots[j].hash == h && s->slots[j].len == len && memcmp(s->slots[j].name, name, len) == 0)
            return 0;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, len);
    s->slots[j] = (dirty_slot){copy, len, h};
    s->count++;
    return 0;
}

/* ------------------------------------------------------------------------
 * opening, noting writes */

/* The stamp in the store (1 with *seq), 0 when there is none, -1 on error. */
static int read_stamp(rocksdb_t *db, uint64_t *seq, char **errptr)
{
    rocksdb_readoptions_t *read = rocksdb_readoptions_create();
    char *err = NULL;
    size_t vl = 0;
    char *v = rocksdb_get(db, read, FP_STAMP, sizeof FP_STAMP - 1, &vl, &err);
    rocksdb_readoptions_destroy(read);
    if (err) {
        set_error(errptr, "reading the fingerprints' stamp: %s", err);
        free(err);
        return -1;
    }
    int found = v && vl == 8;
    if (found)
        *seq = get_u64((const unsigned char *)v);
    rocksdb_free(v);
    return found;
}

kv_segments *kv_segments_open(rocksdb_t *db, char **errptr)
{
    kv_segments *s = calloc(1, sizeof *s);
    if (!s) {
        set_error(errptr, "out of memory");
        return NULL;
    }
    uint64_t stamp = 0;
    int stamped = read_stamp(db, &stamp, errptr);
    if (stamped < 0) {
        kv_segments_free(s);
        return NULL;
    }
    /* the marks are trusted only when nothing wrote since the close that stamped them */
    int trusted = stamped && stamp == rocksdb_get_latest_sequence_number(db);
    s->opened_stamp = trusted ? stamp : 0;
    rocksdb_readoptions_t *read = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, read);
    rocksdb_writebatch_t *drop = rocksdb_writebatch_create();
    const size_t tl = sizeof FP_SYNCED - 1;
    int oom = 0;
    for (rocksdb_iter_seek(it, FP_SYNCED, tl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (!has_prefix(k, kl, FP_SYNCED, tl))
            break;
        if (!trusted)
            rocksdb_writebatch_delete(drop, k, kl);
        /* a mark found at open: this handle notes every change from now on */
        else if (prefix_add(s->synced, &s->n_synced, k + tl, kl - tl) != 0 ||
                 prefix_add(s->complete, &s->n_complete, k + tl, kl - tl) != 0)
            oom = 1;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(read);
    if (!err && rocksdb_writebatch_count(drop) > 0) {
        rocksdb_writeoptions_t *write = rocksdb_writeoptions_create();
        rocksdb_write(db, write, drop, &err);
        rocksdb_writeoptions_destroy(write);
    }
    rocksdb_writebatch_destroy(drop);
    if (err || oom) {
        if (err)
            set_error(errptr, "reading the fingerprint marks: %s", err);
        else
            set_error(errptr, "out of memory");
        free(err);
        kv_segments_free(s);
        return NULL;
    }
    return s;
}

int kv_segments_stamp(const kv_segments *s, rocksdb_t *db, rocksdb_writeoptions_t *logged)
{
    if (s->n_synced == 0)
        return 0; /* no mark to keep trusted: the store is left as it is (an empty one stays empty) */
    if (s->opened_stamp && rocksdb_get_latest_sequence_number(db) == s->opened_stamp)
        return 0; /* nothing written since the open: its stamp still holds (a read-only command writes nothing) */
    unsigned char v[8];
    put_u64(v, rocksdb_get_latest_sequence_number(db) + 1); /* this write's own number */
    char *err = NULL;
    rocksdb_put(db, logged, FP_STAMP, sizeof FP_STAMP - 1, (const char *)v, 8, &err);
    if (!err)
        return 0;
    free(err);
    return -1;
}

void kv_segments_free(kv_segments *s)
{
    if (!s)
        return;
    dirty_clear(s);
    prefixes_clear(s->synced, &s->n_synced);
    prefixes_clear(s->complete, &s->n_complete);
    free(s);
}

typedef struct {
    kv_segments *s;
    const char *last; /* the last segment noted, in the batch's own bytes
                       * (valid during the pass: consecutive keys of one
                       * ticker share it) */
    size_t last_len;
    int failed, foreign;
} note_ctx;

static void note_key(note_ctx *c, const char *k, size_t klen)
{
    kv_segments *s = c->s;
    if (reserved(k, klen)) { /* the cache's own keys: no one else writes them */
        c->foreign = 1;
        return;
    }
    for (size_t i = 0; i < s->n_synced; i++)
        if (!s->unmark[i] && has_prefix(k, klen, s->synced[i].bytes, s->synced[i].len))
            s->unmark[i] = 1;
    size_t len = segment_len(k, klen);
    if (c->last && c->last_len == len && memcmp(c->last, k, len) == 0)
        return;
    /* a change only matters to a prefix whose next fingerprint reads only
     * what changed (the others are read whole): under no such prefix, it
     * is not kept (the store's tk:, cov:, run keys would fill the set) */
    int wanted = 0;
    for (size_t i = 0; i < s->n_complete && !wanted; i++)
        wanted = has_prefix(k, klen, s->complete[i].bytes, s->complete[i].len);
    if (!wanted)
        return;
    if (dirty_add(s, k, len) != 0) {
        c->failed = 1;
        return;
    }
    c->last = k, c->last_len = len;
}

static void note_put(void *state, const char *k, size_t klen, const char *v, size_t vlen)
{
    (void)v, (void)vlen;
    note_key(state, k, klen);
}

static void note_delete(void *state, const char *k, size_t klen)
{
    note_key(state, k, klen);
}

int kv_segments_note(kv_segments *s, rocksdb_writebatch_t *wb, rocksdb_writebatch_t *marks)
{
    memset(s->unmark, 0, sizeof s->unmark);
    note_ctx c = {s, NULL, 0, 0, 0};
    rocksdb_writebatch_iterate(wb, &c, note_put, note_delete);
    if (c.foreign)
        return -2;
    if (c.failed) { /* the changes are not all known: every mark goes, every prefix recomputes whole */
        forget_changes(s);
        for (size_t i = 0; i < s->n_synced; i++)
            s->unmark[i] = 1;
    }
    for (size_t i = 0; i < s->n_synced; i++) {
        if (!s->unmark[i])
            continue;
        size_t kl;
        char *k = marks ? tagged(FP_SYNCED, s->synced[i].bytes, s->synced[i].len, &kl) : NULL;
        if (!k) {
            c.failed = 1;
            continue;
        }
        rocksdb_writebatch_delete(marks, k, kl);
        free(k);
    }
    return c.failed ? -1 : 0;
}

int kv_segments_marked(const kv_segments *s)
{
    return s->n_synced > 0;
}

void kv_segments_written(kv_segments *s)
{
    for (size_t i = s->n_synced; i-- > 0;) {
        if (s->unmark[i]) {
            s->unmark[i] = 0;
            prefix_remove(s->synced, &s->n_synced, i);
            s->unmark[i] = s->unmark[s->n_synced]; /* (prefix_remove moved the last one here) */
            s->unmark[s->n_synced] = 0;
        }
    }
}

/* ------------------------------------------------------------------------
 * computing a fingerprint */

typedef struct {
    XXH3_state_t *all; /* the fingerprint */
    XXH3_state_t *seg; /* the segment being read */
} fp_hashers;

/* Adds one segment (name and hash) to the fingerprint. */
static void add_segment(fp_hashers *h, const char *name, size_t len, uint64_t hash)
{
    unsigned char f[8];
    put_u64(f, len);
    XXH3_64bits_update(h->all, f, 8);
    XXH3_64bits_update(h->all, name, len);
    put_u64(f, hash);
    XXH3_64bits_update(h->all, f, 8);
}

void kv_hash_record(XXH3_state_t *xs, const char *k, size_t kl, const char *v, size_t vl)
{
    uint64_t lengths[2] = {kl, vl};
    XXH3_64bits_update(xs, lengths, sizeof lengths);
    XXH3_64bits_update(xs, k, kl);
    XXH3_64bits_update(xs, v, vl);
}

rocksdb_readoptions_t *kv_whole_prefix_readoptions(const rocksdb_snapshot_t *snap)
{
    rocksdb_readoptions_t *read = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(read, 0);
    rocksdb_readoptions_set_readahead_size(read, FP_SCAN_READAHEAD_BYTES);
    if (snap)
        rocksdb_readoptions_set_snapshot(read, snap);
    return read;
}

/* The cache entry of segment name: its hash, or (hash NULL) its deletion. */
static int cache_update(rocksdb_writebatch_t *wb, const char *name, size_t len, const uint64_t *hash)
{
    size_t kl;
    char *k = tagged(FP_CACHE, name, len, &kl);
    if (!k)
        return -1;
    if (hash) {
        unsigned char v[8];
        put_u64(v, *hash);
        rocksdb_writebatch_put(wb, k, kl, (const char *)v, 8);
    } else {
        rocksdb_writebatch_delete(wb, k, kl);
    }
    free(k);
    return 0;
}

static rocksdb_iterator_t *scan_from(rocksdb_t *db, rocksdb_readoptions_t *read, const char *p, size_t plen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, read);
    rocksdb_iter_seek(it, p, plen);
    return it;
}

static int iter_error(rocksdb_iterator_t *it, char **errptr)
{
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (!err)
        return 0;
    set_error(errptr, "fingerprint: %s", err);
    free(err);
    return -1;
}

/* Queues the deletion of prefix p's every cache entry into cache (entries
 * still wanted are put again after).  0 or -1. */
static int drop_cache(rocksdb_t *db, rocksdb_readoptions_t *read, const char *p, size_t plen,
                      rocksdb_writebatch_t *cache, char **errptr)
{
    size_t cl;
    char *cp = tagged(FP_CACHE, p, plen, &cl);
    rocksdb_iterator_t *it = cp ? scan_from(db, read, cp, cl) : NULL;
    for (; it && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (!has_prefix(k, kl, cp, cl))
            break;
        rocksdb_writebatch_delete(cache, k, kl);
    }
    int rc = !cp ? set_error(errptr, "out of memory") : iter_error(it, errptr);
    if (it)
        rocksdb_iter_destroy(it);
    free(cp);
    return rc;
}

/* Every segment of prefix p read from its records in one pass (cache
 * NULL: nothing written; else the prefix's cache rebuilt into it): a
 * prefix with a NUL, whose keys may share a segment with keys outside it,
 * and any prefix on one processor (fingerprint_listed reads the others).
 * 0 or -1. */
static int fingerprint_whole(rocksdb_t *db, const rocksdb_snapshot_t *snap, const char *p, size_t plen,
                             fp_hashers *h, rocksdb_writebatch_t *cache, char **errptr)
{
    rocksdb_readoptions_t *read = kv_whole_prefix_readoptions(snap);
    int rc = cache ? drop_cache(db, read, p, plen, cache, errptr) : 0;
    char *name = NULL; /* the current segment */
    size_t name_len = 0, name_cap = 0;
    rocksdb_iterator_t *it = rc == 0 ? scan_from(db, read, p, plen) : NULL;
    for (; it && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (!has_prefix(k, kl, p, plen))
            break;
        if (reserved(k, kl))
            continue;
        const char *v = rocksdb_iter_value(it, &vl);
        size_t sl = segment_len(k, kl);
        if (!name || sl != name_len || memcmp(name, k, sl) != 0) {
            if (name) {
                uint64_t sh = XXH3_64bits_digest(h->seg);
                add_segment(h, name, name_len, sh);
                if (cache && cache_update(cache, name, name_len, &sh) != 0) {
                    rc = set_error(errptr, "out of memory");
                    break;
                }
            }
            if (sl + 1 > name_cap) {
                char *grown = realloc(name, sl + 1);
                if (!grown) {
                    rc = set_error(errptr, "out of memory");
                    break;
                }
                name = grown, name_cap = sl + 1;
            }
            memcpy(name, k, sl);
            name_len = sl;
            XXH3_64bits_reset(h->seg);
        }
        kv_hash_record(h->seg, k, kl, v, vl);
    }
    if (rc == 0 && it)
        rc = iter_error(it, errptr);
    if (rc == 0 && name) {
        uint64_t sh = XXH3_64bits_digest(h->seg);
        add_segment(h, name, name_len, sh);
        if (cache && cache_update(cache, name, name_len, &sh) != 0)
            rc = set_error(errptr, "out of memory");
    }
    if (it)
        rocksdb_iter_destroy(it);
    free(name);
    rocksdb_readoptions_destroy(read);
    return rc;
}

/* Byte order of two names (RocksDB's key order). */
static int compare_names(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Whether the key [k, k+kl) is a record of the segment [name, name+len):
 * under the name, which ends with the NUL; or, for a name without one (a
 * key without a NUL is a segment by itself), the very key. */
static int in_segment(const char *k, size_t kl, const char *name, size_t len)
{
    int whole_key = len == 0 || name[len - 1] != '\0';
    return has_prefix(k, kl, name, len) && (!whole_key || kl == len);
}

/* The hash of the segment [name, name+len) from its records, read by the
 * iterator it (moved to the segment, unless it stands at its first key:
 * the caller hashes segments in key order, it then stands where the last
 * one ended), left at the first key past it: 1 with *out, 0 when it has
 * none (the segment is gone), -1 on error. */
static int segment_hash(rocksdb_iterator_t *it, XXH3_state_t *seg, const char *name, size_t len, uint64_t *out,
                        char **errptr)
{
    XXH3_64bits_reset(seg);
    int found = 0;
    /* segments come in key order: where the last one ended (the first key
     * past it) is this one's first key when that key is in this segment */
    size_t kl;
    if (!rocksdb_iter_valid(it) || !in_segment(rocksdb_iter_key(it, &kl), kl, name, len))
        rocksdb_iter_seek(it, name, len);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (!in_segment(k, kl, name, len))
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        kv_hash_record(seg, k, kl, v, vl);
        found = 1;
    }
    if (iter_error(it, errptr) != 0)
        return -1;
    if (found)
        *out = XXH3_64bits_digest(seg);
    return found;
}

/* A segment to hash: its name (not owned), then its hash (found 1) or
 * nothing (found 0: no record); done when that is known already (a small
 * segment, hashed as it was listed). */
typedef struct {
    const char *name;
    size_t len;
    uint64_t hash;
    int found, done;
} seg_task;

/* qsort's order of tasks: their names' (key order). */
static int compare_tasks(const void *a, const void *b)
{
    const seg_task *x = a, *y = b;
    return compare_names(x->name, x->len, y->name, y->len);
}

/* One thread's share of the segments to hash: the tasks pending[from, to). */
typedef struct {
    rocksdb_t *db;
    const rocksdb_snapshot_t *snap; /* NULL: the latest state (writers wait: kv.c holds the order lock) */
    seg_task **pending;
    size_t from, to;
    int rc;
    char *err; /* malloc'd, when rc is -1 */
} hash_share;

/* Hashes a share through an iterator of its own (a thread's entry point;
 * also run on the calling thread).  Never raises. */
static void *hash_share_run(void *arg)
{
    hash_share *sh = arg;
    rocksdb_readoptions_t *read = kv_whole_prefix_readoptions(sh->snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator(sh->db, read);
    XXH3_state_t *seg = XXH3_createState();
    sh->rc = seg ? 0 : set_error(&sh->err, "out of memory");
    for (size_t i = sh->from; sh->rc == 0 && i < sh->to; i++) {
        seg_task *t = sh->pending[i];
        int got = segment_hash(it, seg, t->name, t->len, &t->hash, &sh->err);
        if (got < 0)
            sh->rc = -1;
        else
            t->found = got;
    }
    XXH3_freeState(seg);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(read);
    return NULL;
}

/* The threads that hash a fingerprint's segments: one per processor the
 * process may use, up to FP_HASH_THREADS_MAX. */
static size_t hash_threads(void)
{
    unsigned cpus = retape_cpus();
    return cpus < FP_HASH_THREADS_MAX ? cpus : FP_HASH_THREADS_MAX;
}

/* Hashes the segments of tasks (n, in key order) not done yet, in equal
 * shares of consecutive ones, one per processor up to FP_HASH_THREADS_MAX
 * (one share below FP_HASH_PARALLEL_MIN segments); a share whose thread
 * does not start runs on this one.  0, or -1 with the first share's error. */
static int hash_segments(rocksdb_t *db, const rocksdb_snapshot_t *snap, seg_task *tasks, size_t n, char **errptr)
{
    seg_task **pending = malloc((n ? n : 1) * sizeof *pending);
    if (!pending)
        return set_error(errptr, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i].done)
            pending[m++] = &tasks[i];
    size_t k = m >= FP_HASH_PARALLEL_MIN ? hash_threads() : 1;
    hash_share shares[FP_HASH_THREADS_MAX];
    pthread_t threads[FP_HASH_THREADS_MAX];
    int started[FP_HASH_THREADS_MAX] = {0};
    for (size_t i = 0; i < k; i++)
        shares[i] = (hash_share){db, snap, pending, m * i / k, m * (i + 1) / k, 0, NULL};
    for (size_t i = 1; i < k; i++)
        started[i] = pthread_create(&threads[i], NULL, hash_share_run, &shares[i]) == 0;
    hash_share_run(&shares[0]);
    for (size_t i = 1; i < k; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            hash_share_run(&shares[i]);
    }
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        if (shares[i].rc != 0 && rc == 0) {
            rc = -1;
            if (errptr && !*errptr) {
                *errptr = shares[i].err;
                shares[i].err = NULL;
            }
        }
        free(shares[i].err);
    }
    free(pending);
    return rc;
}

/* Lists the segments of prefix p (a prefix without a NUL: every key under
 * it has its segment's name under it) in key order into *tasks (n of
 * them; their names in *names, one malloc'd block: the caller frees both),
 * the cache's own keys left out.
 * A segment of at most FP_LIST_STEPS records is hashed on the way (done);
 * past a longer one, a seek (hash_segments hashes it).  0 or -1. */
static int list_segments(rocksdb_t *db, rocksdb_readoptions_t *read, const char *p, size_t plen, seg_task **tasks,
                         size_t *n, char **names, char **errptr)
{
    size_t cap = 0, names_len = 0, names_cap = 0;
    *tasks = NULL, *n = 0, *names = NULL;
    char *next = NULL; /* the first key past a segment */
    size_t next_cap = 0;
    XXH3_state_t *seg = XXH3_createState();
    int rc = seg ? 0 : set_error(errptr, "out of memory");
    rocksdb_iterator_t *it = scan_from(db, read, p, plen);
    while (rc == 0 && rocksdb_iter_valid(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (!has_prefix(k, kl, p, plen))
            break;
        size_t sl = segment_len(k, kl);
        if (reserved(k, kl)) { /* past the cache's namespace: its last byte one higher */
            char past[FP_NAMESPACE_LEN];
            memcpy(past, FP_NAMESPACE, FP_NAMESPACE_LEN);
            past[FP_NAMESPACE_LEN - 1]++;
            rocksdb_iter_seek(it, past, FP_NAMESPACE_LEN);
            continue;
        }
        if (*n == cap) {
            size_t grown_cap = cap ? 2 * cap : 256;
            seg_task *grown = realloc(*tasks, grown_cap * sizeof *grown);
            if (!grown) {
                rc = set_error(errptr, "out of memory");
                break;
            }
            *tasks = grown, cap = grown_cap;
        }
        if (grow_buffer(names, &names_cap, names_len + sl + 1, 4096) != 0) {
            rc = set_error(errptr, "out of memory");
            break;
        }
        char *name = *names + names_len; /* (moves as the block grows: offsets until the end) */
        memcpy(name, k, sl);
        seg_task *t = &(*tasks)[(*n)++];
        *t = (seg_task){(const char *)(uintptr_t)names_len, sl, 0, 1, 1};
        names_len += sl;
        /* its records, hashed while there are at most FP_LIST_STEPS of
         * them (a key without a NUL is a segment by itself: one) */
        XXH3_64bits_reset(seg);
        int stepped = 0, inside = 1;
        while (inside && stepped < FP_LIST_STEPS) {
            size_t vl;
            const char *v = rocksdb_iter_value(it, &vl);
            kv_hash_record(seg, k, kl, v, vl);
            rocksdb_iter_next(it);
            stepped++;
            inside = rocksdb_iter_valid(it) && (k = rocksdb_iter_key(it, &kl), in_segment(k, kl, name, sl));
        }
        if (!inside) {
            t->hash = XXH3_64bits_digest(seg);
            continue;
        }
        /* a longer one: left to hash_segments; past it, the first key past
         * its keys: its name with 1 for the final NUL */
        t->done = t->found = 0;
        if (grow_buffer(&next, &next_cap, sl, 64) != 0) {
            rc = set_error(errptr, "out of memory");
            break;
        }
        memcpy(next, name, sl);
        next[sl - 1] = 1;
        rocksdb_iter_seek(it, next, sl);
    }
    if (rc == 0)
        rc = iter_error(it, errptr);
    rocksdb_iter_destroy(it);
    XXH3_freeState(seg);
    free(next);
    for (size_t i = 0; i < *n; i++) /* the block is where it stays now: offsets to names */
        (*tasks)[i].name = *names + (uintptr_t)(*tasks)[i].name;
    return rc;
}

/* Every segment of prefix p (without a NUL) read from its records: listed,
 * then hashed in shares (hash_segments), then added in key order (cache
 * NULL: nothing written; else the prefix's cache rebuilt into it).  The
 * same value and cache as fingerprint_whole's one pass.  0 or -1. */
static int fingerprint_listed(rocksdb_t *db, const rocksdb_snapshot_t *snap, const char *p, size_t plen,
                              fp_hashers *h, rocksdb_writebatch_t *cache, char **errptr)
{
    rocksdb_readoptions_t *read = kv_whole_prefix_readoptions(snap);
    seg_task *tasks = NULL;
    char *names = NULL;
    size_t n = 0;
    int rc = cache ? drop_cache(db, read, p, plen, cache, errptr) : 0;
    if (rc == 0)
        rc = list_segments(db, read, p, plen, &tasks, &n, &names, errptr);
    if (rc == 0)
        rc = hash_segments(db, snap, tasks, n, errptr);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!tasks[i].found)
            continue; /* (listed, so never: nothing is written meanwhile) */
        add_segment(h, tasks[i].name, tasks[i].len, tasks[i].hash);
        if (cache && cache_update(cache, tasks[i].name, tasks[i].len, &tasks[i].hash) != 0)
            rc = set_error(errptr, "out of memory");
    }
    free(tasks);
    free(names);
    rocksdb_readoptions_destroy(read);
    return rc;
}

/* The fingerprint of prefix p from the cache and the dirty segments under
 * it, recomputed (their cache entries into `cache`).  0 or -1. */
static int fingerprint_dirty(rocksdb_t *db, kv_segments *s, const char *p, size_t plen, fp_hashers *h,
                             rocksdb_writebatch_t *cache, char **errptr)
{
    /* the dirty segments under p, in key order, hashed first in shares
     * of consecutive ones, each through one iterator read as a whole
     * prefix is (a re-run of a day dirties every ticker: one iterator a
     * segment cost 11 % of it) */
    size_t n = 0;
    seg_task *tasks = malloc((s->count ? s->count : 1) * sizeof *tasks);
    if (!tasks)
        return set_error(errptr, "out of memory");
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].name && has_prefix(s->slots[i].name, s->slots[i].len, p, plen))
            tasks[n++] = (seg_task){s->slots[i].name, s->slots[i].len, 0, 0, 0};
    qsort(tasks, n, sizeof *tasks, compare_tasks);
    int rc = hash_segments(db, NULL, tasks, n, errptr);
    rocksdb_readoptions_t *read = rocksdb_readoptions_create();
    size_t cl;
    char *cp = rc == 0 ? tagged(FP_CACHE, p, plen, &cl) : NULL;
    rocksdb_iterator_t *it = cp ? scan_from(db, read, cp, cl) : NULL;
    if (rc == 0 && !cp)
        rc = set_error(errptr, "out of memory");
    size_t di = 0;
    const size_t tl = sizeof FP_CACHE - 1;
    /* merge, in name order, the cached segments and the dirty ones */
    while (rc == 0) {
        const char *cn = NULL;
        size_t cnl = 0;
        if (rocksdb_iter_valid(it)) {
            size_t kl;
            const char *k = rocksdb_iter_key(it, &kl);
            if (has_prefix(k, kl, cp, cl))
                cn = k + tl, cnl = kl - tl;
        }
        if (!cn && di == n)
            break;
        int take_dirty = 0, skip_cached = 0;
        if (di < n) {
            if (!cn) {
                take_dirty = 1;
            } else {
                int c = compare_names(tasks[di].name, tasks[di].len, cn, cnl);
                take_dirty = c <= 0;
                skip_cached = c == 0;
            }
        }
        if (take_dirty) {
            const seg_task *t = &tasks[di];
            if (t->found)
                add_segment(h, t->name, t->len, t->hash);
            if (cache_update(cache, t->name, t->len, t->found ? &t->hash : NULL) != 0)
                rc = set_error(errptr, "out of memory");
            di++;
            if (skip_cached)
                rocksdb_iter_next(it);
        } else {
            size_t vl;
            const char *v = rocksdb_iter_value(it, &vl);
            if (vl != 8) {
                rc = set_error(errptr, "fingerprint: a cached segment hash of %zu bytes", vl);
                break;
            }
            add_segment(h, cn, cnl, get_u64((const unsigned char *)v));
            rocksdb_iter_next(it);
        }
    }
    if (rc == 0 && it)
        rc = iter_error(it, errptr);
    if (it)
        rocksdb_iter_destroy(it);
    free(cp);
    rocksdb_readoptions_destroy(read);
    free(tasks);
    return rc;
}

int kv_fingerprint_compute(rocksdb_t *db, const rocksdb_snapshot_t *snap, kv_segments *s, const char *p, size_t plen,
                           uint64_t *out, rocksdb_writebatch_t *cache, char **errptr)
{
    if (!p)
        p = "", plen = 0;
    fp_hashers h = {XXH3_createState(), XXH3_createState()};
    int rc;
    if (!h.all || !h.seg) {
        rc = set_error(errptr, "out of memory");
    } else {
        XXH3_64bits_reset(h.all);
        /* the cache serves prefixes without a NUL (their segments are the
         * names that start with them), read at the latest state */
        int cached = s && !snap && !memchr(p, '\0', plen) && !reserved(p, plen);
        if (cached && prefix_index(s->complete, s->n_complete, p, plen) >= 0)
            rc = fingerprint_dirty(db, s, p, plen, &h, cache, errptr);
        else if (!memchr(p, '\0', plen) && hash_threads() > 1)
            rc = fingerprint_listed(db, snap, p, plen, &h, cached ? cache : NULL, errptr);
        else
            rc = fingerprint_whole(db, snap, p, plen, &h, cached ? cache : NULL, errptr);
        /* the mark, once this handle will delete it with the next write
         * under p (remembered first: a mark nobody deletes would lie) */
        if (rc == 0 && cached && prefix_add(s->synced, &s->n_synced, p, plen) == 0 &&
            prefix_index(s->synced, s->n_synced, p, plen) >= 0) {
            size_t kl;
            char *k = tagged(FP_SYNCED, p, plen, &kl);
            if (k)
                rocksdb_writebatch_put(cache, k, kl, "", 0);
            free(k);
        }
        if (rc == 0)
            *out = XXH3_64bits_digest(h.all);
    }
    XXH3_freeState(h.all);
    XXH3_freeState(h.seg);
    return rc;
}

void kv_segments_cached(kv_segments *s, const char *p, size_t plen)
{
    /* a dirty segment under p is in step now; the set is rebuilt without them */
    dirty_slot *old = s->slots;
    size_t cap = s->cap;
    s->slots = NULL, s->cap = s->count = 0;
    int lost = 0;
    for (size_t i = 0; i < cap; i++) {
        if (!old[i].name)
            continue;
        if (!has_prefix(old[i].name, old[i].len, p, plen) && !lost && dirty_add(s, old[i].name, old[i].len) != 0)
            lost = 1;
        free(old[i].name);
    }
    free(old);
    if (lost)
        forget_changes(s);
    else if (prefix_add(s->complete, &s->n_complete, p, plen) != 0)
        forget_changes(s); /* (p is not complete then: its next fingerprint reads it whole) */
}
