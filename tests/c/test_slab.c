/*
 * test_slab.c — a Lua state's small blocks (core/slab.c) through the
 * state's allocator (retape_sandbox_alloc): blocks of every size keep their
 * bytes through every resize (within a class, across classes, between the
 * slab and malloc), a freed block is reused by its class and only by it,
 * the byte count follows, and a Lua state run on it (tables and strings in
 * a loop, the collector freeing them) comes back to the same chunks.
 * Under AddressSanitizer (make SANITIZE=1) a freed block is poisoned.
 */
#include "check.h"
#include "sandbox.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>

static retape_sandbox sb;

static void *alloc(void *ptr, size_t osize, size_t nsize)
{
    return retape_sandbox_alloc(&sb, ptr, osize, nsize);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31 + i);
}

static int holds(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i))
            return 0;
    return 1;
}

/* Resizes a filled block through sizes crossing every boundary; each step
 * keeps min(old, new) bytes.  Returns the failures. */
static int resize_walk(void)
{
    static const size_t sizes[] = {1, 15, 16, 17, 31, 32, 100, 511, 512, 513, 4096, 512, 600, 40, 8, 20000, 3, 0};
    int bad = 0;
    size_t old = sizes[0];
    unsigned char *p = alloc(NULL, 5 /* a type tag, as Lua passes */, old);
    fill(p, old, 7);
    for (int i = 1; sizes[i]; i++) {
        size_t n = sizes[i];
        p = alloc(p, old, n);
        if (!p || !holds(p, old < n ? old : n, 7))
            bad++;
        fill(p, n, 7);
        old = n;
    }
    alloc(p, old, 0);
    return bad;
}

int main(void)
{
    CHECK(resize_walk() == 0, "a block keeps its bytes through resizes across classes, the slab and malloc");
    CHECK(sb.in_use == 0, "every byte taken was given back (in_use %lld)", (long long)sb.in_use);

    /* reuse by class */
    void *a = alloc(NULL, 0, 40), *b = alloc(NULL, 0, 40);
    CHECK(a && b && a != b, "two live blocks of one class are distinct");
    alloc(a, 40, 0);
    void *c = alloc(NULL, 0, 33); /* 33..48: the class of 40 */
    CHECK(c == a, "a freed block is taken again by its class");
    void *d = alloc(NULL, 0, 100);
    CHECK(d != b && d != c, "another class never gets it");
    void *e = alloc(c, 33, 48);
    CHECK(e == c, "a resize within the class keeps the block");
    void *f = alloc(e, 48, 49);
    CHECK(f != e, "a resize into the next class moves it");
    alloc(f, 49, 0);
    alloc(b, 40, 0);
    alloc(d, 100, 0);
    CHECK(sb.in_use == 0, "in_use back to 0 (%lld)", (long long)sb.in_use);

    /* many blocks of every class: each holds its own bytes */
    enum { N = 20000 };
    static unsigned char *blocks[N];
    static size_t sizes[N];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        sizes[i] = 1 + (size_t)(i * 7919) % 700;
        blocks[i] = alloc(NULL, 0, sizes[i]);
        fill(blocks[i], sizes[i], (unsigned)i);
    }
    for (int i = 0; i < N; i += 2)
        alloc(blocks[i], sizes[i], 0);
    for (int i = 0; i < N; i += 2) {
        blocks[i] = alloc(NULL, 0, sizes[i]);
        fill(blocks[i], sizes[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++)
        if (!holds(blocks[i], sizes[i], (unsigned)i))
            bad++;
    CHECK(bad == 0, "%d live blocks of sizes 1..700 keep their own bytes after half are freed and taken again (%d bad)", N, bad);
    size_t chunk_bytes = sb.slab.chunk_bytes;
    for (int i = 0; i < N; i++)
        alloc(blocks[i], sizes[i], 0);
    for (int i = 0; i < N; i++)
        blocks[i] = alloc(NULL, 0, sizes[i]);
    CHECK(sb.slab.chunk_bytes == chunk_bytes, "taking the same blocks again carves no new chunk (%zu bytes)", sb.slab.chunk_bytes);
    for (int i = 0; i < N; i++)
        alloc(blocks[i], sizes[i], 0);
    CHECK(sb.in_use == 0, "in_use back to 0 after %d blocks", N);
    retape_slab_release(&sb.slab);
    CHECK(sb.slab.chunks == NULL && sb.slab.chunk_bytes == 0, "release frees every chunk");

    /* a Lua state on it: garbage made and collected in a loop reuses the chunks */
    lua_State *L = lua_newstate(retape_sandbox_alloc, &sb);
    luaL_openlibs(L);
    const char *churn =
        "local keep = {} "
        "for i = 1, 200000 do "
        "  local t = { i, tostring(i), x = i * 2, s = 'k' .. (i % 977) } "
        "  if i % 1000 == 0 then keep[#keep + 1] = t end "
        "end "
        "local sum = 0 for _, t in ipairs(keep) do sum = sum + t[1] + t.x end "
        "return sum";
    CHECK(luaL_dostring(L, churn) == LUA_OK && lua_tointeger(L, -1) == 60300000, "a Lua loop making 200k tables computes right on the slab");
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    size_t after_first = sb.slab.chunk_bytes;
    CHECK(luaL_dostring(L, churn) == LUA_OK, "the same loop again");
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    CHECK(sb.slab.chunk_bytes <= after_first + (after_first >> 2),
          "running it again holds about the same chunks (%zu then %zu bytes)", after_first, sb.slab.chunk_bytes);
    lua_close(L);
    CHECK(sb.in_use == 0, "lua_close gives back every byte (%lld)", (long long)sb.in_use);
    retape_slab_release(&sb.slab);
    return done_testing();
}
