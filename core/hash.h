/*
 * hash.h — the FNV-1a hashes of the engine (hash.c), in one place: the
 * original's 32-bit hash over UTF-16 code units (receipt ids, payload and
 * rule hashes, the part/shard of a ticker: declared in retape.h, which is
 * public) and the 64-bit one over bytes (store fingerprints).
 */
#ifndef RETAPE_HASH_H
#define RETAPE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a 64 offset basis: the start value of retape_fnv1a64. */
#define RETAPE_FNV64_BASIS 0xcbf29ce484222325ULL

/* FNV-1a 64 over n bytes at p, continuing from h (RETAPE_FNV64_BASIS to
 * start).  Never fails. */
uint64_t retape_fnv1a64(uint64_t h, const void *p, size_t n);

#endif
