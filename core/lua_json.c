/*
 * lua_json.c — `require "retape.jsonenc"`: the deterministic JSON encoder
 * behind retape.json (lua/retape/json.lua documents the format).  It lives
 * in C because the replay encodes every touched ticker's state once per
 * bucket: in Lua that was the largest cost of a replay.
 *
 *   jsonenc.setup(raw_mt, object_mt, null)   -- once, by retape.json: encode, fits
 *   encode(value, ranks) -> text               -- ranks: {key = position}
 *   fits(value, max_values) -> boolean         -- encode surely succeeds
 *   jsonenc.copy(value) -> deep copy           -- a decoded payload, per sweep variant
 *
 * Object keys come out by rank (keys listed in `ranks` first, in that
 * order), then byte order; numbers as the shortest text that reads back to
 * the same double; tables whose metatable is raw_mt are spliced verbatim.
 * Raises on values JSON cannot hold (functions, mixed tables, cycles).
 */
#include "dtoa.h"
#include "lua_common.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* Output buffer: a userdata (the encoder closure's, reused from call to
 * call) whose __gc frees the text, so a raise in the middle of an encoding
 * leaks nothing.  (luaL_Buffer cannot be used: it
 * requires a balanced stack at every add, and the walk pushes values.) */
typedef struct out_buf {
    char *data;
    size_t len, cap;
    lua_Alloc alloc; /* the state's allocator, so the sandbox's memory cap counts the text */
    void *ud;
    size_t values_left, values_max; /* this encoding's bound on values (SIZE_MAX: none) */
    size_t bytes_max;                /* ... and on its text (SIZE_MAX: none) */
} out_buf;

#define OUT_MT "retape.jsonenc.buffer"

const char *retape_push_key_text(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_pushvalue(L, idx);
        return lua_tostring(L, -1); /* converts the copy */
    }
    return lua_pushfstring(L, "a %s", luaL_typename(L, idx));
}

/* __gc of the output buffer: frees the text (after a raise mid-encoding). */
static int out_gc(lua_State *L)
{
    out_buf *o = luaL_checkudata(L, 1, OUT_MT);
    if (o->data)
        o->alloc(o->ud, o->data, o->cap, 0);
    o->data = NULL;
    return 0;
}

/* Makes room for len more bytes, doubling the buffer; raises on out of
 * memory.  The slow path of out_add and out_char. */
static void out_grow(lua_State *L, out_buf *o, size_t len)
{
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + len)
        cap *= 2;
    char *grown = o->alloc(o->ud, o->data, o->cap, cap);
    if (!grown)
        luaL_error(L, "out of memory encoding JSON");
    o->data = grown;
    o->cap = cap;
}

/* Appends len bytes; raises on out of memory. */
static inline void out_add(lua_State *L, out_buf *o, const char *s, size_t len)
{
    if (len == 0)
        return;
    if (o->len + len > o->cap)
        out_grow(L, o, len);
    memcpy(o->data + o->len, s, len);
    o->len += len;
}

/* Appends one byte (the encoder's punctuation); raises on out of memory. */
static inline void out_char(lua_State *L, out_buf *o, char c)
{
    if (o->len == o->cap)
        out_grow(L, o, 1);
    o->data[o->len++] = c;
}

#define out_lit(L, o, lit) out_add(L, o, lit, sizeof(lit) - 1)

/* Upvalues of encode: 1 raw_mt, 2 object_mt, 3 null. */
typedef struct key_ref {
    const char *s;
    size_t len;
    lua_Integer rank; /* LUA_MAXINTEGER when unranked */
    int slot;         /* the value's place on the Lua stack */
} key_ref;

/* qsort order of object keys: rank first (listed keys), then bytes. */
static int compare_keys(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : (x->len > y->len);
}

/* Appends s as a JSON string; runs of plain bytes are copied at once. */
static void add_string(lua_State *L, out_buf *b, const char *s, size_t len)
{
    out_char(L, b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out_add(L, b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out_lit(L, b, "\\\""); break;
        case '\\': out_lit(L, b, "\\\\"); break;
        case '\n': out_lit(L, b, "\\n"); break;
        case '\r': out_lit(L, b, "\\r"); break;
        case '\t': out_lit(L, b, "\\t"); break;
        case '\b': out_lit(L, b, "\\b"); break;
        case '\f': out_lit(L, b, "\\f"); break;
        default: {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            out_add(L, b, esc, strlen(esc));
        }
        }
    }
    out_add(L, b, s + run, len - run);
    out_char(L, b, '"');
}

/* Appends the number at idx: integers as integers, doubles as
 * retape_format_double writes them (non-finite ones as null). */
static void add_number(lua_State *L, out_buf *b, int idx)
{
    char buf[RETAPE_DOUBLE_TEXT];
    if (lua_isinteger(L, idx)) {
        char *p = retape_format_integer(buf + sizeof buf, (long long)lua_tointeger(L, idx));
        out_add(L, b, p, strlen(p));
        return;
    }
    double x = lua_tonumber(L, idx);
    if (!isfinite(x)) {
        out_lit(L, b, "null");
        return;
    }
    out_add(L, b, buf, retape_format_double(x, buf));
}

static void encode_value(lua_State *L, out_buf *b, int idx, int ranks, int depth);

/* Ranks below this place a large object's keys directly (a trade's ~40
 * keys, ranked by the trade order) */
#define RANK_SLOTS 128

/* Sorts n keys by rank, then bytes: insertion sort for the small objects
 * of a version or a history event (a dozen keys); a large object whose
 * ranked keys all rank below RANK_SLOTS by placing each at its rank (an
 * order list gives each key its own) and its unranked ones after them by
 * insertion; qsort otherwise (and when two keys share a rank). */
static void sort_keys(key_ref *keys, size_t n)
{
    if (n <= 24) {
        INSERTION_SORT(key_ref, keys, 0, n, compare_keys);
        return;
    }
    signed char at[RANK_SLOTS]; /* rank -> 1 + the key's index in keys (0: none); n <= 127 */
    int placeable = n < 128;
    for (size_t i = 0; placeable && i < n; i++)
        placeable = keys[i].rank == LUA_MAXINTEGER || (keys[i].rank >= 0 && keys[i].rank < RANK_SLOTS);
    if (!placeable) {
        qsort(keys, n, sizeof *keys, compare_keys);
        return;
    }
    memset(at, 0, sizeof at);
    key_ref unranked[128], ranked[128];
    size_t nu = 0, nr = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].rank == LUA_MAXINTEGER)
            unranked[nu++] = keys[i];
        else if (at[keys[i].rank]) { /* two keys of one rank (a rank map may say so): as qsort sorts them */
            qsort(keys, n, sizeof *keys, compare_keys);
            return;
        } else
            at[keys[i].rank] = (signed char)(1 + i);
    }
    for (int r = 0; r < RANK_SLOTS; r++)
        if (at[r])
            ranked[nr++] = keys[at[r] - 1];
    memcpy(keys, ranked, nr * sizeof *keys);
    memcpy(keys + nr, unranked, nu * sizeof *keys);
    INSERTION_SORT(key_ref, keys, nr, n, compare_keys);
}

/* Encodes the object at idx with its string keys sorted by rank then bytes.
 * Each value stays on the Lua stack where lua_next left it (no second
 * lookup by key); the keys sort in a C array on the C stack, or past
 * SMALL_OBJECT in a GC-owned userdata held in a reserved slot (safe on a
 * raise). */
#define SMALL_OBJECT 32
static void encode_object(lua_State *L, out_buf *b, int idx, int ranks, int depth)
{
    size_t n = 0, cap = SMALL_OBJECT;
    key_ref small[SMALL_OBJECT];
    key_ref *keys = small;
    int base = lua_gettop(L);
    lua_pushnil(L); /* base + 1: the userdata of a large object's keys */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "cannot encode a table mixing list and keys (key %s)", retape_push_key_text(L, -2));
        if (n == cap) {
            key_ref *bigger = lua_newuserdatauv(L, 2 * cap * sizeof *keys, 0);
            memcpy(bigger, keys, n * sizeof *keys);
            lua_replace(L, base + 1);
            keys = bigger;
            cap *= 2;
        }
        lua_insert(L, -2); /* the value stays below; the key goes on for lua_next */
        keys[n].s = lua_tolstring(L, -1, &keys[n].len); /* anchored by the table itself */
        keys[n].slot = lua_gettop(L) - 1;
        keys[n].rank = LUA_MAXINTEGER;
        if (ranks) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, ranks) == LUA_TNUMBER)
                keys[n].rank = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        n++;
        luaL_checkstack(L, 3, "JSON object");
    }
    sort_keys(keys, n);
    out_char(L, b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            out_char(L, b, ',');
        add_string(L, b, keys[i].s, keys[i].len);
        out_char(L, b, ':');
        encode_value(L, b, keys[i].slot, ranks, depth + 1);
    }
    out_char(L, b, '}');
    lua_settop(L, base);
}

/* Whether the key at key_idx belongs to a list of n elements: an integer in
 * 1..n (a table whose border is n may hold nil holes below it, and any
 * other key would be lost in a list's text). */
static int is_list_key(lua_State *L, int key_idx, lua_Unsigned n)
{
    if (!lua_isinteger(L, key_idx))
        return 0;
    lua_Integer k = lua_tointeger(L, key_idx);
    return k >= 1 && (lua_Unsigned)k <= n;
}

/* Encodes the table at idx: a raw fragment (raw_mt) verbatim, a sequence
 * (or an empty table without object_mt) as an array, anything else as an
 * object.  Raises past MAX_DEPTH (cycles) and on tables mixing both. */
static void encode_table(lua_State *L, out_buf *b, int idx, int ranks, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "cannot encode: nesting deeper than %d (cycle?)", MAX_DEPTH);
    luaL_checkstack(L, 8, "JSON nesting");
    int is_object_mt = 0;
    if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, lua_upvalueindex(1))) {
            lua_pop(L, 1);
            lua_rawgeti(L, idx, 1);
            size_t len;
            const char *raw = lua_tolstring(L, -1, &len);
            if (!raw)
                luaL_error(L, "cannot encode: raw JSON fragment is not a string");
            out_add(L, b, raw, len);
            lua_pop(L, 1);
            return;
        }
        is_object_mt = lua_rawequal(L, -1, lua_upvalueindex(2));
        lua_pop(L, 1);
        retape_decode_complete(L, idx); /* a partial payload table: every field, not the decoded ones */
    }
    lua_Unsigned n = lua_rawlen(L, idx);
    lua_pushnil(L);
    int empty = lua_next(L, idx) == 0;
    if (!empty)
        lua_pop(L, 2);
    if (n > 0) { /* a list: refuse other keys rather than drop them */
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (!is_list_key(L, -1, n))
                luaL_error(L, "cannot encode a table mixing list and keys");
        }
    }
    if (n > 0 || (empty && !is_object_mt)) {
        out_char(L, b, '[');
        for (lua_Unsigned i = 1; i <= n; i++) {
            if (i > 1)
                out_char(L, b, ',');
            lua_rawgeti(L, idx, (lua_Integer)i);
            encode_value(L, b, lua_gettop(L), ranks, depth + 1);
            lua_pop(L, 1);
        }
        out_char(L, b, ']');
        return;
    }
    encode_object(L, b, idx, ranks, depth);
}

/* Appends the JSON text of the value at idx.  The buffer's own stack slot
 * sits below everything pushed here, so pushes stay balanced per call. */
static void encode_value(lua_State *L, out_buf *b, int idx, int ranks, int depth)
{
    if (b->values_left-- == 0)
        luaL_error(L, "cannot encode more than %I values in one value (a table held twice counts twice)",
                   (lua_Integer)b->values_max);
    if (b->len > b->bytes_max) /* checked before each value: no value adds more than a string's cap */
        luaL_error(L, "cannot encode more than %I bytes of one value (a string held twice counts twice)",
                   (lua_Integer)b->bytes_max);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        add_string(L, b, s, len);
        break;
    }
    case LUA_TNUMBER: add_number(L, b, idx); break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            out_lit(L, b, "true");
        else
            out_lit(L, b, "false");
        break;
    case LUA_TNIL: out_lit(L, b, "null"); break;
    case LUA_TTABLE: encode_table(L, b, idx, ranks, depth); break;
    default:
        if (lua_rawequal(L, idx, lua_upvalueindex(3))) {
            out_lit(L, b, "null");
            break;
        }
        luaL_error(L, "cannot encode a %s as JSON", luaL_typename(L, idx));
    }
}

/* jsonenc.encode(value [, ranks [, max_values]]) -> text; raises on a value
 * JSON cannot hold, or of more than max_values values (a table held twice
 * counting twice; default: no bound) and then of a text past
 * RETAPE_KEPT_BYTES_MAX.  The output buffer is the closure's
 * 4th upvalue, reused from call to call (encoding never re-enters it: the
 * only code it calls is the decoder's completion of a partial table, so
 * calls cannot nest). */
static int l_encode(lua_State *L)
{
    lua_Integer max = luaL_optinteger(L, 3, 0);
    lua_settop(L, 2);
    int ranks = lua_istable(L, 2) ? 2 : 0;
    out_buf *o = lua_touserdata(L, lua_upvalueindex(4));
    o->len = 0;
    o->values_max = o->values_left = max > 0 ? (size_t)max : SIZE_MAX;
    o->bytes_max = max > 0 ? RETAPE_KEPT_BYTES_MAX : SIZE_MAX;
    encode_value(L, o, 1, ranks, 0); /* on a raise the buffer stays the closure's */
    if (o->len > o->bytes_max) /* (checked before each value too) */
        luaL_error(L, "cannot encode more than %I bytes of one value (a string held twice counts twice)",
                   (lua_Integer)o->bytes_max);
    lua_pushlstring(L, o->data ? o->data : "", o->len);
    if (o->cap > (1u << 20)) { /* do not keep a huge buffer after a huge value */
        o->alloc(o->ud, o->data, o->cap, 0);
        o->data = NULL;
        o->cap = 0;
    }
    return 1;
}

/* What fits_value has left and has counted of a value. */
typedef struct fit_count {
    size_t values_left;
    size_t bytes; /* an upper bound on the text's length */
} fit_count;

/* Whether encode_value would surely accept the value at idx (at `depth`)
 * within c's bounds: it walks the value as encode_value does, writing
 * nothing, and bounds the text's length from above (every byte of a string
 * or key escaped, a number's longest form).  0 means "not sure" (a
 * metatable other than object_mt, a type JSON cannot hold, a table mixing
 * list and keys, past the depth or the values): the caller encodes, which
 * decides and names what fails.  Never raises but for the Lua stack. */
static int fits_value(lua_State *L, int idx, int depth, fit_count *c)
{
    if (c->values_left-- == 0)
        return 0;
    c->bytes += 1; /* the comma after it */
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: c->bytes += 6 * lua_rawlen(L, idx) + 2; return 1;
    case LUA_TNUMBER: c->bytes += 32; return 1;
    case LUA_TBOOLEAN:
    case LUA_TNIL: c->bytes += 5; return 1;
    case LUA_TTABLE: break;
    default:
        c->bytes += 5;
        return lua_rawequal(L, idx, lua_upvalueindex(3)); /* null */
    }
    if (depth > MAX_DEPTH)
        return 0;
    luaL_checkstack(L, 4, "JSON nesting");
    int base = lua_gettop(L);
    if (lua_getmetatable(L, idx)) {
        int plain_object = lua_rawequal(L, -1, lua_upvalueindex(2));
        lua_settop(L, base);
        if (!plain_object)
            return 0;
    }
    lua_Unsigned n = lua_rawlen(L, idx);
    c->bytes += 2;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (n > 0 && !is_list_key(L, -2, n)) { /* a list: no other keys */
            lua_settop(L, base);
            return 0;
        }
        if (n == 0) { /* an object: string keys only */
            if (lua_type(L, -2) != LUA_TSTRING) {
                lua_settop(L, base);
                return 0;
            }
            c->bytes += 6 * lua_rawlen(L, -2) + 3; /* quoted, and its colon */
        }
        if (!fits_value(L, lua_gettop(L), depth + 1, c)) {
            lua_settop(L, base);
            return 0;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, base);
    return 1;
}

/* fits(value [, max_values]) -> boolean: true when encode(value, ranks,
 * max_values) surely succeeds (see fits_value); false when not sure.
 * Cheaper than encoding (no text, no number formatted): for a value the
 * engine must know it can store now and writes later. */
static int l_fits(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, 0);
    lua_settop(L, 1);
    fit_count c = {max > 0 ? (size_t)max : SIZE_MAX, 0};
    int ok = fits_value(L, 1, 0, &c);
    lua_pushboolean(L, ok && (max <= 0 || c.bytes <= RETAPE_KEPT_BYTES_MAX));
    return 1;
}

/* jsonenc.setup(raw_mt, object_mt, null) -> encode, fits: functions bound
 * to them (see l_encode, l_fits) */
static int l_setup(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    for (int i = 1; i <= 3; i++)
        lua_pushvalue(L, i);
    lua_pushcclosure(L, l_fits, 3);
    lua_insert(L, 1); /* fits, raw_mt, object_mt, null */
    out_buf *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    o->alloc = lua_getallocf(L, &o->ud); /* the state's allocator: the sandbox's cap counts the text */
    luaL_setmetatable(L, OUT_MT);
    lua_pushcclosure(L, l_encode, 4);
    lua_insert(L, 1); /* encode, fits */
    return 2;
}

/* Pushes a copy of the value at idx as a JSON encode + decode would give it
 * back: numbers as floats (NaN and infinities as nil), strings and booleans
 * as they are, tables deep (a sequence as a list, otherwise string keys
 * only).  `field` names the value in errors.  Raises on what JSON cannot hold. */
static void push_roundtrip(lua_State *L, int idx, const char *field, int depth, size_t *left)
{
    if ((*left)-- == 0)
        luaL_error(L, "state field '%s' takes the state past %d values (a table held twice counts twice)", field,
                   RETAPE_KEPT_VALUES_MAX);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: {
        lua_Number x = lua_tonumber(L, idx);
        if (isfinite(x))
            lua_pushnumber(L, x);
        else
            lua_pushnil(L);
        return;
    }
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
    case LUA_TNIL:
        lua_pushvalue(L, idx);
        return;
    case LUA_TTABLE:
        break;
    default:
        luaL_error(L, "state field '%s' holds a %s, which the store cannot keep", field, luaL_typename(L, idx));
    }
    if (depth > 32)
        luaL_error(L, "state field '%s' nests deeper than 32 levels", field);
    luaL_checkstack(L, 6, "state copy");
    idx = lua_absindex(L, idx);
    retape_decode_complete(L, idx); /* a partial payload table: every field */
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_createtable(L, n > 0 ? (int)n : 0, n > 0 ? 0 : 4);
    int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (n > 0) {
            if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n)
                luaL_error(L, "state field '%s' mixes a list and keys", field);
        } else if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_error(L, "state field '%s' has a %s key (only string keys or a list survive the store)", field,
                       luaL_typename(L, -2));
        }
        push_roundtrip(L, -1, field, depth + 1, left);
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, out);
        lua_pop(L, 1);
    }
}

/* jsonenc.extract(src, names, types, mt) -> table: the fields `names` (a
 * list) of src, each checked against types[name] ("number", "string",
 * "boolean", "table") and copied as a store round trip returns it; the
 * result gets metatable mt.  Raises naming a field of the wrong type. */
static int l_extract(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    lua_createtable(L, 0, (int)n);
    int out = lua_gettop(L);
    size_t left = RETAPE_KEPT_VALUES_MAX; /* for the whole state, whatever its number of fields */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);                 /* name */
        const char *name = lua_tostring(L, -1);
        lua_pushvalue(L, -1);
        lua_rawget(L, 1);                     /* value */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 2);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_rawget(L, 3);                     /* declared type */
        const char *want = lua_tostring(L, -1);
        const char *got = luaL_typename(L, -2);
        if (!want || strcmp(want, got) != 0)
            return luaL_error(L, "state field '%s' is declared %s but the rules left a %s in it", name,
                              want ? want : "?", got);
        lua_pop(L, 1);
        push_roundtrip(L, -1, name, 0, &left); /* name, value, copy */
        lua_remove(L, -2);                    /* name, copy */
        lua_rawset(L, out);
    }
    if (!lua_isnoneornil(L, 4)) {
        lua_pushvalue(L, 4);
        lua_setmetatable(L, out);
    }
    return 1;
}

/* jsonenc.pick(src, names) -> table of those fields of src (shallow). */
static int l_pick(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    lua_createtable(L, 0, (int)n);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        lua_pushvalue(L, -1);
        lua_rawget(L, 1);
        lua_rawset(L, -3);
    }
    return 1;
}

/* Pushes a deep copy of the table at idx: every nested table copied (with
 * its metatable), every other value shared (strings, numbers, the JSON null
 * light userdata).  Each table is presized from a first pass over its keys.
 * A partial payload table (retape.decode) is completed first: the copy
 * holds every field (it has no pending text to complete from later).
 * Raises past MAX_DEPTH (a cycle); holds no C memory when it does. */
typedef struct copy_bound {
    size_t left, max; /* values a copy may still make, of max (SIZE_MAX: no bound) */
} copy_bound;

static void push_deep_copy(lua_State *L, int idx, int depth, copy_bound *bound)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "copy: tables nested deeper than %d (a cycle?)", MAX_DEPTH);
    if (bound->left-- == 0)
        luaL_error(L, "copy: more than %I values (a table held twice counts twice)", (lua_Integer)bound->max);
    luaL_checkstack(L, 6, "copy");
    idx = lua_absindex(L, idx);
    retape_decode_complete(L, idx);
    int out = push_table_sized_like(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) != LUA_TTABLE && bound->left-- == 0) /* a table counts itself, below */
            luaL_error(L, "copy: more than %I values (a table held twice counts twice)", (lua_Integer)bound->max);
        if (lua_type(L, -1) == LUA_TTABLE) {
            push_deep_copy(L, -1, depth + 1, bound);
            lua_remove(L, -2);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, out);
    }
    if (lua_getmetatable(L, idx))
        lua_setmetatable(L, out);
}

/* jsonenc.copy(value [, max_values]) -> a deep copy of a decoded JSON
 * value (tables copied, anything else returned as is): what a sweep hands
 * each variant, so a ruleset writing into its payload never touches
 * another variant's; a trades-only replay's held trades.  Raises past
 * max_values entries, a table held twice counting twice (default: no
 * bound). */
static int l_copy(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, 0);
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_settop(L, 1);
        return 1;
    }
    lua_settop(L, 1);
    copy_bound bound = {max > 0 ? (size_t)max : SIZE_MAX, max > 0 ? (size_t)max : SIZE_MAX};
    push_deep_copy(L, 1, 0, &bound);
    return 1;
}

int luaopen_retape_jsonenc(lua_State *L)
{
    luaL_newmetatable(L, OUT_MT);
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"setup", l_setup}, {"extract", l_extract}, {"pick", l_pick}, {"copy", l_copy},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushinteger(L, RETAPE_KEPT_VALUES_MAX);
    lua_setfield(L, -2, "KEPT_VALUES_MAX"); /* what a rule's value the engine keeps may hold */
    lua_pushinteger(L, RETAPE_KEPT_BYTES_MAX);
    lua_setfield(L, -2, "KEPT_BYTES_MAX"); /* ... and the bytes it may take written */
    return 1;
}
