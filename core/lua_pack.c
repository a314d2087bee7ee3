/*
 * lua_pack.c — Lua bridge of pack.c: `require "retape.pack"`.
 *
 *   local bytes = pack.encode(value)   -- raises on what JSON cannot hold
 *   local value = pack.decode(bytes)   -- raises on malformed input
 *   local bytes = pack.pick(t, names)  -- = pack.encode of {k = t[k]} for k in names
 *   local bytes = pack.encode(obj, key, packed)  -- obj with member key = packed bytes
 *
 * encode takes what retape.json takes (nil/null, booleans, numbers,
 * strings, lists, string-keyed objects) and decode gives back exactly what
 * a JSON encode + decode (with nulls dropped) would: numbers as floats
 * (NaN and infinities as nil), lists as sequences, objects with string
 * keys.  The state store keeps its version records this way (store.lua).
 *
 * pick and the spliced member of encode serve a replay's versions: the view
 * fields of a receipt's payload are packed once, without a table of their
 * own, and those bytes go into every version of the ticker until its next
 * receipt (run/ticker.lua, encode_version).
 */
#include "lua_common.h"

#include "pack.h"
#include "util.h"
#include <stdlib.h>

#define WRITER_MT "retape.pack.writer"
#define SMALL_OBJECT 32

typedef struct key_ref {
    const char *s;
    size_t len;
    int slot;          /* the value's stack slot (0: a packed member) */
    const char *raw;   /* a packed member: its bytes, written as they are */
    size_t raw_len;
} key_ref;

static int writer_gc(lua_State *L)
{
    pack_writer_free(luaL_checkudata(L, 1, WRITER_MT));
    return 0;
}

/* Byte order of keys (a shorter key before its extensions). */
static int compare_keys(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sorts n keys in byte order: by insertion for the small objects of a
 * record (util.h), qsort beyond. */
static void sort_keys(key_ref *keys, int n)
{
    if (n > 24)
        qsort(keys, (size_t)n, sizeof *keys, compare_keys);
    else
        INSERTION_SORT(key_ref, keys, 0, n, compare_keys);
}

static void put_value(lua_State *L, pack_writer *w, int idx, int depth);
static void check_bytes(lua_State *L, const pack_writer *w);

/* Writes the n members of keys (stack slots or packed bytes) as an object,
 * keys in byte order (sorts keys). */
static void put_members(lua_State *L, pack_writer *w, key_ref *keys, int n, int depth)
{
    sort_keys(keys, n);
    pack_put_count(w, PACK_OBJECT, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        pack_put_key(w, keys[i].s, keys[i].len);
        if (depth == 0 && w->bound_members) { /* a record's members are bounded one by one (step.versions) */
            if (i > 0)
                check_bytes(L, w); /* the member before, after its last value (the entry point checks the last) */
            w->values_left = RETAPE_KEPT_VALUES_MAX;
            w->bytes_from = w->len;
        }
        if (keys[i].slot)
            put_value(L, w, keys[i].slot, depth + 1);
        else
            pack_put_raw(w, keys[i].raw, keys[i].raw_len);
    }
}

/* An array for n key refs (plus one spare): small on the C stack, else a
 * GC-owned userdata pushed on the stack (safe on a raise). */
static key_ref *key_array(lua_State *L, key_ref *small, int n)
{
    return n + 1 > SMALL_OBJECT ? lua_newuserdatauv(L, (size_t)(n + 1) * sizeof(key_ref), 0) : small;
}

/* The object at idx, keys in byte order, with (when raw is not NULL) its
 * member raw_key replaced by the packed bytes raw.  Its keys and values are
 * copied onto the stack as lua_next gives them (no string is created;
 * they stay anchored there should completing a partial value below
 * allocate), then written in key order; the key array is on the C stack
 * for small objects, in a GC-owned
 * userdata for larger ones (safe on a raise). */
static void put_object_with(lua_State *L, pack_writer *w, int idx, int depth, const char *raw_key, size_t raw_key_len,
                            const char *raw, size_t raw_len)
{
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "cannot store a table mixing list and keys (key %s)", retape_push_key_text(L, -2));
        if (raw) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            if (kl == raw_key_len && memcmp(k, raw_key, kl) == 0) {
                lua_pop(L, 1); /* replaced by the packed member */
                continue;
            }
        }
        luaL_checkstack(L, 4, "object");
        lua_pushvalue(L, -2); /* key, value, key: lua_next goes on from the copy */
        n++;
    }
    int base = lua_gettop(L) - 2 * n; /* pairs at base+1 .. base+2n */
    key_ref small[SMALL_OBJECT];
    key_ref *keys = key_array(L, small, n);
    for (int i = 0; i < n; i++) {
        keys[i].s = lua_tolstring(L, base + 1 + 2 * i, &keys[i].len);
        keys[i].slot = base + 2 + 2 * i;
    }
    if (raw) {
        keys[n] = (key_ref){raw_key, raw_key_len, 0, raw, raw_len};
        n++;
    }
    put_members(L, w, keys, n, depth);
    lua_settop(L, base);
}

static void put_object(lua_State *L, pack_writer *w, int idx, int depth)
{
    put_object_with(L, w, idx, depth, NULL, 0, NULL, 0);
}

/* The table at idx: a sequence as a list (extra keys refused), an empty
 * table as an empty list, anything else as an object. */
static void put_table(lua_State *L, pack_writer *w, int idx, int depth)
{
    if (depth > PACK_MAX_DEPTH)
        luaL_error(L, "cannot store: nesting deeper than %d (cycle?)", PACK_MAX_DEPTH);
    luaL_checkstack(L, 8, "nesting");
    idx = lua_absindex(L, idx);
    retape_decode_complete(L, idx); /* a partial payload table: every field */
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n == 0) {
        lua_pushnil(L);
        if (lua_next(L, idx) == 0) {
            pack_put_count(w, PACK_LIST, 0);
            return;
        }
        lua_pop(L, 2);
        put_object(L, w, idx, depth);
        return;
    }
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    if (count != n)
        luaL_error(L, "cannot store a table mixing list and keys");
    pack_put_count(w, PACK_LIST, n);
    for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        put_value(L, w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
}

/* Raises when what was written since w->bytes_from passes w->bytes_max. */
static void check_bytes(lua_State *L, const pack_writer *w)
{
    if (w->bytes_max != SIZE_MAX && w->len - w->bytes_from > w->bytes_max)
        luaL_error(L, "cannot store more than %d bytes of one value (a string held twice counts twice)",
                   (int)RETAPE_KEPT_BYTES_MAX);
}

static void put_value(lua_State *L, pack_writer *w, int idx, int depth)
{
    if (w->values_left-- == 0)
        luaL_error(L, "cannot store more than %d values in one value (a table held twice counts twice)",
                   RETAPE_KEPT_VALUES_MAX);
    check_bytes(L, w); /* before each value, and after the last (by the entry points) */
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        pack_put_string(w, s, len);
        break;
    }
    case LUA_TNUMBER: pack_put_number(w, (double)lua_tonumber(L, idx)); break;
    case LUA_TBOOLEAN: pack_put_bool(w, lua_toboolean(L, idx)); break;
    case LUA_TNIL: pack_put_nil(w); break;
    case LUA_TTABLE: put_table(L, w, idx, depth); break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* the JSON null */
            pack_put_nil(w);
            break;
        }
        /* fall through */
    default: luaL_error(L, "cannot store a %s", luaL_typename(L, idx));
    }
}

/* Pushes the writer's bytes; forgets a huge buffer (after a huge value). */
static void push_written(lua_State *L, pack_writer *w)
{
    if (w->failed)
        luaL_error(L, "not enough memory");
    lua_pushlstring(L, w->data ? w->data : "", w->len);
    if (w->cap > (1u << 20))
        pack_writer_free(w);
}

/* Whether bytes [s, s+len) are exactly one packed value. */
static int is_one_value(const char *s, size_t len)
{
    pack_reader r;
    pack_reader_init(&r, s, len);
    return pack_skip_value(&r, 0) == 0 && r.p == r.end;
}

/* pack.encode(value [, key, packed]) -> bytes.  With key and packed (the
 * bytes of one packed value), value is an object (a table with string
 * keys) whose member key is those bytes, as if value[key] were what they
 * decode to.  The writer is the closure's upvalue, reused from call to call
 * (encoding never re-enters it: the only code it calls is the decoder's
 * completion of a partial table).  Raises on what the store cannot
 * keep (functions, userdata, mixed tables, cycles, more than
 * RETAPE_KEPT_VALUES_MAX values; in each member, for an object: the
 * members of a version record, as step.versions bounds them) and on bytes
 * that are
 * not one packed value. */
static int l_encode(lua_State *L)
{
    lua_settop(L, 3);
    pack_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    pack_writer_reset(w);
    w->values_left = RETAPE_KEPT_VALUES_MAX;
    w->bytes_from = w->len, w->bytes_max = RETAPE_KEPT_BYTES_MAX;
    w->bound_members = 1;
    if (lua_isnil(L, 2)) {
        put_value(L, w, 1, 0);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        size_t kl, rl;
        const char *k = luaL_checklstring(L, 2, &kl);
        const char *raw = luaL_checklstring(L, 3, &rl);
        luaL_argcheck(L, is_one_value(raw, rl), 3, "not one packed value");
        retape_decode_complete(L, 1); /* a partial payload table: every field */
        put_object_with(L, w, 1, 0, k, kl, raw, rl);
    }
    check_bytes(L, w);
    w->bound_members = 0;
    push_written(L, w);
    return 1;
}

void retape_lua_pack_value(lua_State *L, pack_writer *w, int idx, size_t max_values)
{
    w->values_left = max_values;
    w->bytes_from = w->len, w->bytes_max = max_values == SIZE_MAX ? SIZE_MAX : RETAPE_KEPT_BYTES_MAX;
    w->bound_members = 0;
    put_value(L, w, lua_absindex(L, idx), 0);
    check_bytes(L, w);
}

void retape_lua_pack_pick(lua_State *L, pack_writer *w, int t_idx, int names_idx)
{
    t_idx = lua_absindex(L, t_idx);
    names_idx = lua_absindex(L, names_idx);
    w->values_left = RETAPE_KEPT_VALUES_MAX; /* for the view as a whole */
    w->bytes_from = w->len, w->bytes_max = RETAPE_KEPT_BYTES_MAX;
    w->bound_members = 0;
    int base = lua_gettop(L), count = (int)lua_rawlen(L, names_idx), n = 0;
    luaL_checkstack(L, 2 * count + 4, "pick");
    for (int i = 1; i <= count; i++) {
        if (lua_rawgeti(L, names_idx, i) != LUA_TSTRING)
            luaL_error(L, "pack.pick: names[%d] is not a string", i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, t_idx) == LUA_TNIL) {
            lua_pop(L, 2);
            continue;
        }
        n++;
    }
    key_ref small[SMALL_OBJECT];
    key_ref *keys = key_array(L, small, n);
    for (int i = 0; i < n; i++) {
        keys[i].s = lua_tolstring(L, base + 1 + 2 * i, &keys[i].len);
        keys[i].slot = base + 2 + 2 * i;
    }
    if (n > 1) { /* a name listed twice is one member */
        sort_keys(keys, n);
        int m = 1;
        for (int i = 1; i < n; i++)
            if (compare_keys(&keys[i], &keys[m - 1]) != 0)
                keys[m++] = keys[i];
        n = m;
    }
    if (n == 0)
        pack_put_count(w, PACK_LIST, 0); /* as an empty table packs */
    else
        put_members(L, w, keys, n, 0);
    check_bytes(L, w);
    lua_settop(L, base);
}

/* pack.pick(t, names) -> bytes: the object of the fields `names` (a list of
 * strings) of t, read raw, absent ones left out: what pack.encode of such a
 * table gives, without making the table (none present: an empty list, as
 * an empty table packs).  Raises as pack.encode. */
static int l_pick(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    pack_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    pack_writer_reset(w);
    retape_lua_pack_pick(L, w, 1, 2);
    push_written(L, w);
    return 1;
}

/* Pushes the value read from r; returns 0, or -1 (nothing pushed) on
 * malformed input. */
static int push_value(lua_State *L, pack_reader *r, int depth)
{
    const char *s;
    size_t len;
    uint64_t n;
    double x;
    if (depth > PACK_MAX_DEPTH || !lua_checkstack(L, 4))
        return -1;
    switch (pack_get_tag(r)) {
    case PACK_NIL: lua_pushnil(L); return 0;
    case PACK_FALSE: lua_pushboolean(L, 0); return 0;
    case PACK_TRUE: lua_pushboolean(L, 1); return 0;
    case PACK_NUMBER:
        if (pack_get_number(r, &x) != 0)
            return -1;
        lua_pushnumber(L, (lua_Number)x);
        return 0;
    case PACK_STRING:
        if (pack_get_string(r, &s, &len) != 0)
            return -1;
        lua_pushlstring(L, s, len);
        return 0;
    case PACK_LIST:
        if (pack_get_count(r, &n) != 0 || n > (uint64_t)(r->end - r->p))
            return -1;
        lua_createtable(L, (int)n, 0);
        for (uint64_t i = 1; i <= n; i++) {
            if (push_value(L, r, depth + 1) != 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_rawseti(L, -2, (lua_Integer)i); /* a nil leaves a hole, as JSON's null did */
        }
        return 0;
    case PACK_OBJECT:
        if (pack_get_count(r, &n) != 0 || n > (uint64_t)(r->end - r->p))
            return -1;
        lua_createtable(L, 0, (int)n);
        for (uint64_t i = 0; i < n; i++) {
            if (pack_get_string(r, &s, &len) != 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_pushlstring(L, s, len);
            if (push_value(L, r, depth + 1) != 0) {
                lua_pop(L, 2);
                return -1;
            }
            if (lua_isnil(L, -1))
                lua_pop(L, 2);
            else
                lua_rawset(L, -3);
        }
        return 0;
    default: return -1;
    }
}

/* pack.decode(bytes) -> value.  Raises "malformed packed value at byte N"
 * on bytes that are not one whole packed value. */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    pack_reader r;
    pack_reader_init(&r, data, len);
    if (push_value(L, &r, 0) != 0 || r.p != r.end)
        return luaL_error(L, "malformed packed value at byte %d", (int)((const char *)r.p - data));
    return 1;
}

int luaopen_retape_pack(lua_State *L)
{
    luaL_newmetatable(L, WRITER_MT);
    lua_pushcfunction(L, writer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    pack_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WRITER_MT);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_encode, 1);
    lua_setfield(L, -3, "encode");
    lua_pushcclosure(L, l_pick, 1);
    lua_setfield(L, -2, "pick");
    lua_pushcfunction(L, l_decode);
    lua_setfield(L, -2, "decode");
    return 1;
}
