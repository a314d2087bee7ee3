/* kv_fingerprint.h — what kv.c and kv_fingerprint.c share: the segment
 * bookkeeping of a store's fingerprints (see kv_fingerprint.c). */
#ifndef RETAPE_KV_FINGERPRINT_H
#define RETAPE_KV_FINGERPRINT_H

#include <rocksdb/c.h>
#include <stddef.h>
#include <xxhash.h>

typedef struct kv_segments kv_segments;

/* Read options for one pass over a whole prefix, at snap (NULL: the
 * latest state): read ahead, and not kept in the block cache (a whole
 * prefix would evict what a replay reads).  The caller destroys them. */
rocksdb_readoptions_t *kv_whole_prefix_readoptions(const rocksdb_snapshot_t *snap);
/* Adds one record to a hash, framed by its key's and value's lengths (two
 * little-endian uint64): no two stores hash alike by moving bytes between
 * a key and a value.  retape_kv_hash_prefix and the fingerprints' own. */
void kv_hash_record(XXH3_state_t *xs, const char *k, size_t kl, const char *v, size_t vl);

/* The bookkeeping of a store just opened (db): which prefixes' cached
 * segment hashes the store says are in step with their records.  NULL
 * when out of memory or unreadable (*errptr, malloc'd). */
kv_segments *kv_segments_open(rocksdb_t *db, char **errptr);
void kv_segments_free(kv_segments *s);
/* Stamps the store with its last sequence number, this write's own (see
 * kv_fingerprint.c), when it holds marks: at the close of the handle that
 * noted every write since its open, after any unlogged write was flushed.
 * Writes nothing when nothing was written since an open that found its
 * stamp trusted (that stamp still holds).  0, or -1 (then the next open
 * trusts no mark). */
int kv_segments_stamp(const kv_segments *s, rocksdb_t *db, rocksdb_writeoptions_t *logged);

/* Whether the store holds "in step" marks this handle knows of: a write
 * needs a `marks` batch for kv_segments_note only then. */
int kv_segments_marked(const kv_segments *s);

/* Notes the segments a batch about to be written touches (dirty until
 * their next fingerprint), and appends to `marks` the deletion of the "in
 * step" mark of every prefix it touches that has one (marks may be NULL
 * when kv_segments_marked says none): the caller writes
 * `marks` before wb (deleting a mark early is always safe) and calls
 * kv_segments_written once it is written.  The caller excludes other
 * writers.  Returns 0, -1 when out of memory, or -2 when the batch writes
 * a key of the fingerprints' own (FP_NAMESPACE): the caller refuses the
 * write then (a mark might be left that the change makes false). */
int kv_segments_note(kv_segments *s, rocksdb_writebatch_t *wb, rocksdb_writebatch_t *marks);
void kv_segments_written(kv_segments *s);

/* The fingerprint of prefix p (see kv_fingerprint.c) into *out, read at
 * snap (NULL: the latest state).  With s and no snap, from the cached
 * segment hashes where they are in step, and the cache entries and mark
 * to write go into `cache` (to be written before the next write; then
 * kv_segments_cached); else from every record, nothing into `cache`.
 * The caller excludes writers.  0, or -1 with *errptr. */
int kv_fingerprint_compute(rocksdb_t *db, const rocksdb_snapshot_t *snap, kv_segments *s, const char *p, size_t plen,
                           uint64_t *out, rocksdb_writebatch_t *cache, char **errptr);
/* After `cache` of a fingerprint of p was written: p's dirty segments are
 * in step, and p's later fingerprints read only what changes. */
void kv_segments_cached(kv_segments *s, const char *p, size_t plen);

#endif
