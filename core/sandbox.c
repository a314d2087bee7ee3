/*
 * sandbox.c — the mechanism of the rule sandbox: an accounting allocator
 * with a cap, the budget arithmetic and the cost of a Lua pattern.  See
 * sandbox.h; lua_sandbox.c puts it to work (hook, guard, wrappers).
 */
#include "sandbox.h"

#include <stdlib.h>
#include <string.h>

/* Frees a block of `size` bytes (NULL: nothing): the slab's, or malloc's. */
static void block_free(retape_sandbox *sb, void *ptr, size_t size)
{
    if (ptr && retape_slab_serves(size))
        retape_slab_give(&sb->slab, ptr, size);
    else
        free(ptr);
}

/* A block of nsize bytes holding the first min(old, nsize) bytes of ptr
 * (old bytes; NULL with old 0: a new block), which it replaces; NULL when
 * memory cannot be had (ptr then stays valid).  Small blocks come from the
 * state's slab, others from malloc.  A shrink from a malloc block to a
 * slab size that fails leaves the bigger block in place: the caller keeps
 * it as the smaller size, and the slab later takes it as one of its own. */
static void *block_resize(retape_sandbox *sb, void *ptr, size_t old, size_t nsize)
{
    int old_small = ptr && retape_slab_serves(old);
    if (retape_slab_serves(nsize)) {
        if (old_small && retape_slab_same_class(old, nsize))
            return ptr;
        void *p = retape_slab_take(&sb->slab, nsize);
        if (p && ptr) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            block_free(sb, ptr, old);
        }
        return p;
    }
    if (!old_small)
        return realloc(ptr, nsize);
    void *p = malloc(nsize);
    if (p) {
        memcpy(p, ptr, old);
        retape_slab_give(&sb->slab, ptr, old);
    }
    return p;
}

void *retape_sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    retape_sandbox *sb = ud;
    size_t old = ptr ? osize : 0; /* for a new block Lua passes the type in osize */
    if (nsize == 0) {
        block_free(sb, ptr, old);
        sb->in_use -= (int64_t)old;
        return NULL;
    }
    if (nsize > old && sb->frame.active) {
        sandbox_frame *f = &sb->frame;
        if (!ptr && osize == SANDBOX_TSTRING && nsize > SANDBOX_SHORT_STRING_BLOCK) {
            /* a new long string: capped, and its copy charged to the budget;
             * once a limit is hit only what the error needs (Lua retries a
             * refused allocation after a collection: it must stay refused) */
            if (f->tripped) {
                if (nsize > SANDBOX_TRIPPED_STRING_MAX)
                    return NULL;
            } else if ((int64_t)nsize > f->string_max + SANDBOX_SHORT_STRING_BLOCK) {
                f->tripped = SANDBOX_MEMORY;
                f->refused_string = (int64_t)nsize;
                if (sb->on_trip)
                    sb->on_trip(sb);
                return NULL;
            } else if (retape_sandbox_charge(sb, (int64_t)nsize / SANDBOX_BYTES_PER_INSTRUCTION, SANDBOX_INSTRUCTIONS)) {
                if (sb->on_trip)
                    sb->on_trip(sb);
            }
        }
        int64_t limit = sb->frame.mem_base + sb->frame.mem_hard;
        if (sb->frame.tripped)
            limit += SANDBOX_GRACE_BYTES;
        if (sb->in_use + (int64_t)(nsize - old) > limit) {
            if (!sb->frame.tripped) {
                sb->frame.tripped = SANDBOX_MEMORY;
                if (sb->on_trip)
                    sb->on_trip(sb);
            }
            return NULL;
        }
    }
    void *p = block_resize(sb, ptr, old, nsize);
    if (p)
        sb->in_use += (int64_t)nsize - (int64_t)old;
    else if (nsize <= old) /* Lua assumes a shrink never fails */
        return ptr;
    return p;
}

/* a * b, saturating at INT64_MAX (both non-negative). */
static int64_t mul_sat(int64_t a, int64_t b)
{
    if (a != 0 && b > INT64_MAX / a)
        return INT64_MAX;
    return a * b;
}

int64_t retape_sandbox_pattern_cost(const char *pat, size_t plen, size_t subject_len, int plain)
{
    int64_t n = (int64_t)subject_len + 1;
    int special = 0, quantifiers = 0, anchored = plen > 0 && pat[0] == '^';
    for (size_t i = 0; i < plen && !plain; i++) {
        char c = pat[i];
        if (c == '%') {
            special = 1;
            if (i + 1 < plen && pat[i + 1] == 'b')
                quantifiers++; /* %bxy scans the rest of the subject */
            i++;
        } else if (c == '*' || c == '+' || c == '-') {
            special = 1; /* each variable-length item multiplies the backtracking */
            quantifiers++;
        } else if (c == '?' || c == '^' || c == '$' || c == '(' || c == ')' || c == '.' || c == '[') {
            special = 1;
        }
    }
    if (plain || !special)
        return n;
    int64_t cost = anchored ? 1 : n;
    for (int k = 0; k < quantifiers && cost < INT64_MAX; k++)
        cost = mul_sat(cost, n);
    return mul_sat(cost, 1 + (int64_t)plen / 8);
}

int retape_sandbox_charge(retape_sandbox *sb, int64_t cost, int kind)
{
    sandbox_frame *f = &sb->frame;
    if (!f->active)
        return 0;
    if (cost < 0 || f->used > INT64_MAX - cost)
        f->used = INT64_MAX;
    else
        f->used += cost;
    if (f->used > f->budget) {
        if (!f->tripped)
            f->tripped = kind;
        return 1;
    }
    return 0;
}
