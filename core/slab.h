/*
 * slab.h — small blocks for one Lua state: per-size free lists carved from
 * chunks (not part of the public API).
 *
 * A Lua state makes and frees tens of small blocks per receipt (tables,
 * their parts, short strings, closures), and frees them in bursts when the
 * collector runs.  glibc's malloc serves such bursts from its slow paths
 * (its per-thread cache holds 7 blocks a size), about a tenth of a
 * replay's CPU.  A slab keeps every freed small block on the free list of
 * its size class, so taking and giving back one is a pointer swap.  One
 * slab belongs to one Lua state (no locking): the allocator of that state
 * (sandbox.c) is its only user.  It keeps the chunks it carved until
 * retape_slab_release: what a state once held at its peak stays reusable by
 * it, and nothing more.
 *
 * Under AddressSanitizer a free block is poisoned, so a use after free in
 * the state is still reported.
 */
#ifndef RETAPE_SLAB_H
#define RETAPE_SLAB_H

#include <stddef.h>

/* The largest block a slab serves (bigger ones are malloc's) and the step
 * between its size classes. */
#define SLAB_MAX_BLOCK 512
#define SLAB_GRAIN 16
#define SLAB_CLASSES (SLAB_MAX_BLOCK / SLAB_GRAIN)

typedef struct slab_chunk slab_chunk;

typedef struct retape_slab {
    void *free[SLAB_CLASSES];   /* free blocks of each class, linked through their first word */
    char *bump, *bump_end;      /* the unused tail of the newest chunk */
    slab_chunk *chunks;         /* every chunk carved, newest first */
    size_t chunk_bytes;         /* bytes held in chunks */
} retape_slab;

/* Whether a block of `size` bytes is the slab's (0 < size <= SLAB_MAX_BLOCK). */
static inline int retape_slab_serves(size_t size)
{
    return size - 1 < SLAB_MAX_BLOCK;
}

/* A block of `size` bytes (retape_slab_serves(size)), or NULL when no
 * chunk can be had (malloc failed).  Never raises. */
void *retape_slab_take(retape_slab *slab, size_t size);

/* Gives back `block`, taken with the same `size` (its class). */
void retape_slab_give(retape_slab *slab, void *block, size_t size);

/* Whether blocks of sizes a and b are of one class (a resize between them
 * keeps the block). */
static inline int retape_slab_same_class(size_t a, size_t b)
{
    return (a - 1) / SLAB_GRAIN == (b - 1) / SLAB_GRAIN;
}

/* Frees every chunk (all blocks taken from them become invalid) and leaves
 * the slab empty and usable. */
void retape_slab_release(retape_slab *slab);

#endif
