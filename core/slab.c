/*
 * slab.c — small blocks for one Lua state (see slab.h).
 */
#include "slab.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Bytes of a chunk, header included: small enough that a state which only
 * ever holds a few hundred kilobytes of small blocks keeps little more. */
#define SLAB_CHUNK_BYTES ((size_t)32 << 10)

struct slab_chunk {
    slab_chunk *next;
    _Alignas(16) char blocks[]; /* Lua's blocks are aligned as malloc's */
};

static size_t class_of(size_t size)
{
    return (size - 1) / SLAB_GRAIN;
}

/* Carves a block of class c from the newest chunk's tail, starting a new
 * chunk when the tail is too short (its rest goes unused).  NULL when
 * malloc fails. */
static void *carve(retape_slab *slab, size_t c)
{
    size_t bytes = (c + 1) * SLAB_GRAIN;
    if ((size_t)(slab->bump_end - slab->bump) < bytes) {
        slab_chunk *chunk = malloc(SLAB_CHUNK_BYTES);
        if (!chunk)
            return NULL;
        chunk->next = slab->chunks;
        slab->chunks = chunk;
        slab->chunk_bytes += SLAB_CHUNK_BYTES;
        slab->bump = chunk->blocks;
        slab->bump_end = (char *)chunk + SLAB_CHUNK_BYTES;
        POISON(slab->bump, (size_t)(slab->bump_end - slab->bump));
    }
    void *block = slab->bump;
    slab->bump += bytes;
    UNPOISON(block, bytes);
    return block;
}

void *retape_slab_take(retape_slab *slab, size_t size)
{
    size_t c = class_of(size);
    void **head = slab->free[c];
    if (!head)
        return carve(slab, c);
    UNPOISON(head, sizeof(void *));
    void **next = *head;
    slab->free[c] = next;
    /* the collector frees blocks all over the heap: the next take of this
     * class would otherwise wait for this load from memory */
    if (next)
        __builtin_prefetch(next, 1, 3);
    UNPOISON(head, (c + 1) * SLAB_GRAIN);
    return head;
}

void retape_slab_give(retape_slab *slab, void *block, size_t size)
{
    size_t c = class_of(size);
    *(void **)block = slab->free[c];
    slab->free[c] = block;
    POISON(block, (c + 1) * SLAB_GRAIN);
}

void retape_slab_release(retape_slab *slab)
{
    slab_chunk *chunk = slab->chunks;
    while (chunk) {
        slab_chunk *next = chunk->next;
        UNPOISON(chunk, SLAB_CHUNK_BYTES);
        free(chunk);
        chunk = next;
    }
    for (size_t c = 0; c < SLAB_CLASSES; c++)
        slab->free[c] = NULL;
    slab->bump = slab->bump_end = NULL;
    slab->chunks = NULL;
    slab->chunk_bytes = 0;
}
