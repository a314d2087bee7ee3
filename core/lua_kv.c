/*
 * lua_kv.c — Lua bridge of kv.c: `require "retape.kv"`.
 *
 *   local store = assert(kv.open(dir))
 *   store:put(k, v); local v = store:get(k)
 *   for k, v in store:scan("timed:trade:") do ... end   -- closed on break/error
 *   local b = store:batch(); b:put(k, v); b:delete(k2); store:write(b)
 *
 * RocksDB requires every iterator to be destroyed before its database; the
 * store box therefore keeps a list of its open iterators and closes them
 * first, whatever order Lua's collector finalizes them in.
 */
#include "lua_common.h"

#include <stdio.h>
#include <string.h>

#define KV_MT "retape.kv"
#define BATCH_MT "retape.kv.batch"
#define ITER_MT "retape.kv.iter"

typedef struct iter_box iter_box;

typedef struct kv_box {
    retape_kv *kv;
    iter_box *iters; /* open iterators, closed before the store */
} kv_box;

struct iter_box {
    retape_kv_iter *it;
    kv_box *owner;
    iter_box *next, *prev;
};

typedef struct batch_box { retape_kv_batch *batch; } batch_box;

static retape_kv *to_kv(lua_State *L, int idx)
{
    kv_box *box = luaL_checkudata(L, idx, KV_MT);
    if (!box->kv)
        luaL_error(L, "attempt to use a closed store");
    return box->kv;
}

/* The open store of a retape.kv object at idx (raises otherwise); for
 * bridges that share it across threads (retape.pool). */
retape_kv *retape_lua_check_kv(lua_State *L, int idx)
{
    return to_kv(L, idx);
}

static retape_kv_batch *to_batch(lua_State *L, int idx)
{
    batch_box *box = luaL_checkudata(L, idx, BATCH_MT);
    if (!box->batch)
        luaL_error(L, "attempt to use a freed batch");
    return box->batch;
}

/* The batch of a retape.kv batch object at idx (raises otherwise); for
 * retape.pool, which carries a worker's writes to the committing thread. */
retape_kv_batch *retape_lua_check_batch(lua_State *L, int idx)
{
    return to_batch(L, idx);
}

/* Destroys an iterator and unlinks it from its store. */
static void iter_release(iter_box *ib)
{
    if (!ib->it)
        return;
    retape_kv_iter_close(ib->it);
    ib->it = NULL;
    if (ib->prev)
        ib->prev->next = ib->next;
    else if (ib->owner)
        ib->owner->iters = ib->next;
    if (ib->next)
        ib->next->prev = ib->prev;
    ib->next = ib->prev = NULL;
    ib->owner = NULL;
}

/* kv.open(dir [, {write_buffer_mb = N}]) -> store | nil, message */
static int l_open(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    lua_Integer buffer_mb = 0;
    if (!lua_isnoneornil(L, 2)) { /* {write_buffer_mb = N}: checked before anything is allocated */
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "write_buffer_mb");
        buffer_mb = luaL_optinteger(L, -1, 0);
        luaL_argcheck(L, buffer_mb >= 0 && buffer_mb <= 4096, 2, "write_buffer_mb must be 0..4096");
        lua_pop(L, 1);
    }
    kv_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->kv = NULL;
    box->iters = NULL;
    luaL_setmetatable(L, KV_MT);
    char *err = NULL;
    box->kv = retape_kv_open_sized(dir, (size_t)buffer_mb << 20, &err);
    if (!box->kv)
        return push_failure(L, err);
    return 1;
}

static int l_close(lua_State *L)
{
    kv_box *box = luaL_checkudata(L, 1, KV_MT);
    while (box->iters)
        iter_release(box->iters);
    retape_kv_close(box->kv);
    box->kv = NULL;
    return 0;
}

/* store:get(key) -> value | nil (absent); raises on a storage error */
static int l_get(lua_State *L)
{
    retape_kv *kv = to_kv(L, 1);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    char *val = NULL, *err = NULL;
    size_t vlen = 0;
    int rc = retape_kv_get(kv, key, klen, &val, &vlen, &err);
    if (rc < 0)
        return raise_message(L, err);
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    push_owned(L, val, vlen); /* frees val before any raise */
    return 1;
}

/* store:put(key, value) -> true | raises */
static int l_put(lua_State *L)
{
    retape_kv *kv = to_kv(L, 1);
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *val = luaL_checklstring(L, 3, &vlen);
    char *err = NULL;
    if (retape_kv_put(kv, key, klen, val, vlen, &err) != 0)
        return raise_message(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* store:delete(key) -> true | raises */
static int l_delete(lua_State *L)
{
    retape_kv *kv = to_kv(L, 1);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    char *err = NULL;
    if (retape_kv_delete(kv, key, klen, &err) != 0)
        return raise_message(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* The generic-for step function of store:scan(). */
static int iter_step(lua_State *L)
{
    iter_box *ib = luaL_checkudata(L, 1, ITER_MT);
    if (!ib->it)
        return 0;
    const char *k, *v;
    size_t kl, vl;
    char *err = NULL;
    int rc = retape_kv_iter_next(ib->it, &k, &kl, &v, &vl, &err);
    if (rc < 0) {
        iter_release(ib);
        return raise_message(L, err);
    }
    if (rc == 0) {
        iter_release(ib);
        return 0;
    }
    lua_pushlstring(L, k, kl);
    lua_pushlstring(L, v, vl);
    return 2;
}

static int l_iter_close(lua_State *L)
{
    iter_release(luaL_checkudata(L, 1, ITER_MT));
    return 0;
}

/* store:scan(prefix [, from]) -> step, iter, nil, iter   (the 4th value
 * closes it).  With `from`, the scan starts at the first key >= from. */
static int l_scan(lua_State *L)
{
    kv_box *box = luaL_checkudata(L, 1, KV_MT);
    to_kv(L, 1);
    size_t plen, flen = 0;
    const char *prefix = luaL_optlstring(L, 2, "", &plen);
    const char *from = luaL_optlstring(L, 3, NULL, &flen);
    lua_pushcfunction(L, iter_step);
    iter_box *ib = lua_newuserdatauv(L, sizeof *ib, 1);
    memset(ib, 0, sizeof *ib);
    luaL_setmetatable(L, ITER_MT);
    lua_pushvalue(L, 1); /* the iterator keeps its store alive */
    lua_setiuservalue(L, -2, 1);
    char *err = NULL;
    ib->it = retape_kv_scan_from(box->kv, prefix, plen, from, flen, &err);
    if (!ib->it)
        return raise_message(L, err);
    ib->owner = box;
    ib->next = box->iters;
    if (box->iters)
        box->iters->prev = ib;
    box->iters = ib;
    lua_pushnil(L);
    lua_pushvalue(L, -2);
    return 4;
}

/* Two malloc'd copies kept in a GC-owned box while they are pushed, so a
 * memory error raised by lua_pushlstring cannot leak them. */
typedef struct copies_box { char *a, *b; } copies_box;

static int copies_free(lua_State *L)
{
    copies_box *c = lua_touserdata(L, 1);
    retape_free(c->a);
    retape_free(c->b);
    c->a = c->b = NULL;
    return 0;
}

/* store:last_before(prefix, bound) -> key, value | nil: the greatest key
 * with that prefix strictly below bound.  Raises on a store error. */
static int l_last_before(lua_State *L)
{
    retape_kv *kv = to_kv(L, 1);
    size_t plen, blen;
    const char *prefix = luaL_checklstring(L, 2, &plen);
    const char *bound = luaL_checklstring(L, 3, &blen);
    copies_box *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->a = c->b = NULL;
    lua_newtable(L);
    lua_pushcfunction(L, copies_free);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    char *err = NULL;
    size_t kl = 0, vl = 0;
    int rc = retape_kv_last_before(kv, prefix, plen, bound, blen, &c->a, &kl, &c->b, &vl, &err);
    if (rc < 0)
        return raise_message(L, err);
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, c->a, kl);
    lua_pushlstring(L, c->b, vl);
    retape_free(c->a);
    retape_free(c->b);
    c->a = c->b = NULL;
    return 2;
}

/* Pushes fn(kv, prefix) (a 64-bit hash of the records under the prefix at
 * index 2; "" when absent and optional) as 16 hex digits.  Raises on a
 * store error, or a missing prefix that is not optional. */
static int push_prefix_hash(lua_State *L, int (*fn)(retape_kv *, const char *, size_t, uint64_t *, char **),
                            int optional)
{
    retape_kv *kv = to_kv(L, 1);
    size_t plen;
    const char *prefix = optional ? luaL_optlstring(L, 2, "", &plen) : luaL_checklstring(L, 2, &plen);
    uint64_t h = 0;
    char *err = NULL;
    if (fn(kv, prefix, plen, &h, &err) != 0)
        return raise_message(L, err);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    lua_pushstring(L, hex);
    return 1;
}

/* store:hash(prefix) -> 16 hex digits: XXH3 64 of every record under
 * prefix (retape_kv_hash_prefix).  Raises on a store error. */
static int l_hash(lua_State *L)
{
    return push_prefix_hash(L, retape_kv_hash_prefix, 1);
}

/* store:fingerprint(prefix) -> 16 hex digits: the fingerprint of the
 * records under prefix (retape_kv_fingerprint: by segment, the store's
 * cached segment hashes where they are in step; a prefix is required: the
 * cache of "" would hold one entry per key without a NUL).  Raises on a
 * store error. */
static int l_fingerprint(lua_State *L)
{
    return push_prefix_hash(L, retape_kv_fingerprint, 0);
}

/* store:batch() -> batch */
static int l_batch(lua_State *L)
{
    to_kv(L, 1);
    batch_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->batch = NULL;
    luaL_setmetatable(L, BATCH_MT);
    char *err = NULL;
    box->batch = retape_kv_batch_new(&err);
    if (!box->batch)
        return raise_message(L, err);
    return 1;
}

/* store:write(batch [, unlogged]) -> true | raises.  The batch is applied
 * atomically and then cleared, ready for reuse.  unlogged: without the
 * write-ahead log (retape_kv_write_unlogged: durable at the next flush). */
static int l_write(lua_State *L)
{
    retape_kv *kv = to_kv(L, 1);
    retape_kv_batch *batch = to_batch(L, 2);
    int unlogged = lua_toboolean(L, 3);
    char *err = NULL;
    if ((unlogged ? retape_kv_write_unlogged(kv, batch, &err) : retape_kv_write(kv, batch, &err)) != 0)
        return raise_message(L, err);
    retape_kv_batch_clear(batch);
    lua_pushboolean(L, 1);
    return 1;
}

/* store:persist() -> number of flushes so far | raises: makes the unlogged
 * writes durable now (a memtable flush; nothing when none is pending). */
static int l_persist(lua_State *L)
{
    retape_kv *kv = to_kv(L, 1);
    char *err = NULL;
    if (retape_kv_persist(kv, &err) != 0)
        return raise_message(L, err);
    lua_pushinteger(L, retape_kv_persist_count(kv));
    return 1;
}

void retape_lua_check_batch_size(lua_State *L, const retape_kv_batch *batch)
{
    size_t len;
    retape_kv_batch_data(batch, &len);
    if (len > RETAPE_BATCH_BYTES_MAX) { /* (no file:line: no value in it is to blame, the whole is) */
        lua_pushfstring(L, "a batch of the store's writes past %d MB (the values the rules left for a bucket)",
                        (int)(RETAPE_BATCH_BYTES_MAX >> 20));
        lua_error(L);
    }
}

static int l_batch_put(lua_State *L)
{
    retape_kv_batch *batch = to_batch(L, 1);
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *val = luaL_checklstring(L, 3, &vlen);
    retape_kv_batch_put(batch, key, klen, val, vlen);
    retape_lua_check_batch_size(L, batch);
    return 0;
}

static int l_batch_delete(lua_State *L)
{
    retape_kv_batch *batch = to_batch(L, 1);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    retape_kv_batch_delete(batch, key, klen);
    return 0;
}

static int l_batch_count(lua_State *L)
{
    lua_pushinteger(L, retape_kv_batch_count(to_batch(L, 1)));
    return 1;
}

/* batch:data() -> its operations, serialized (for batch:append elsewhere) */
static int l_batch_data(lua_State *L)
{
    size_t len;
    const char *data = retape_kv_batch_data(to_batch(L, 1), &len);
    lua_pushlstring(L, data, len);
    return 1;
}

/* batch:append(data): adds the operations of another batch's data();
 * raises (appending nothing) when data is not a whole batch. */
static int l_batch_append(lua_State *L)
{
    retape_kv_batch *batch = to_batch(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    char *err = NULL;
    if (retape_kv_batch_append(batch, data, len, &err) != 0)
        return raise_message(L, err);
    return 0;
}

static int l_batch_clear(lua_State *L)
{
    retape_kv_batch_clear(to_batch(L, 1));
    return 0;
}

static int l_batch_free(lua_State *L)
{
    batch_box *box = luaL_checkudata(L, 1, BATCH_MT);
    retape_kv_batch_free(box->batch);
    box->batch = NULL;
    return 0;
}

/* require "retape.kv": registers the store, batch and iterator classes
 * (each a metatable with its methods as __index and its finalizer as both
 * __gc and __close: new_class) and returns the module { open }. */
int luaopen_retape_kv(lua_State *L)
{
    static const luaL_Reg kv_methods[] = {
        {"get", l_get}, {"put", l_put}, {"delete", l_delete}, {"scan", l_scan}, {"last_before", l_last_before}, {"hash", l_hash}, {"fingerprint", l_fingerprint},
        {"batch", l_batch}, {"write", l_write}, {"persist", l_persist}, {"close", l_close}, {NULL, NULL},
    };
    static const luaL_Reg batch_methods[] = {
        {"put", l_batch_put}, {"delete", l_batch_delete}, {"count", l_batch_count},
        {"clear", l_batch_clear}, {"free", l_batch_free},
        {"data", l_batch_data}, {"append", l_batch_append}, {NULL, NULL},
    };
    static const luaL_Reg iter_methods[] = {{"close", l_iter_close}, {NULL, NULL}};
    new_class(L, KV_MT, kv_methods, l_close);
    new_class(L, BATCH_MT, batch_methods, l_batch_free);
    new_class(L, ITER_MT, iter_methods, l_iter_close);
    static const luaL_Reg fns[] = {{"open", l_open}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* Pushes a new, closed store object and returns the slot where the caller
 * stores the retape_kv it hands over (the object then owns it and closes it
 * on close/__gc).  For hosts that open or share a store in C, e.g. one
 * retape_kv_view per thread of `retape serve`.  Raises only on a memory
 * error, before anything is handed over. */
retape_kv **retape_lua_kv_newbox(lua_State *L)
{
    luaL_requiref(L, "retape.kv", luaopen_retape_kv, 0);
    lua_pop(L, 1);
    kv_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->kv = NULL;
    box->iters = NULL;
    luaL_setmetatable(L, KV_MT);
    return &box->kv;
}
