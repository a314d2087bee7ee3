/*
 * lua_decode.c — `require "retape.decode"`: decode only the payload fields a
 * ruleset reads.
 *
 *   local decode = require "retape.decode"
 *   local fs = decode.compile({ "price", "flags", "tf_tech.*.ema.stack" }, ...)
 *   local p = decode.decode(fs, text)      -- table | nil, message
 *   cur:fetch(256, fs)                      -- rows whose payload is decoded so
 *   decode.copy(fs, p, {"flags"})           -- a copy that still decodes lazily
 *
 * A field set is a list of dotted paths: "a" is the whole value of a, "a.b"
 * only key b of object a, "*" any key of an object (or every element of an
 * array).  The payload becomes a table holding the declared fields (numbers
 * parsed as lua-cjson would, keys pushed from strings interned once per
 * field set).  Every other field is still there: the first read of an
 * undeclared key (or pairs()) decodes that object with lua-cjson and fills
 * in what is missing, so a rule never sees a silent nil; values the rules
 * wrote, and declared fields (present or deleted), are never overwritten.
 * A declared key that the payload lacks reads as nil without any decoding;
 * an object whose every key is declared comes out as a plain table.
 *
 * Two parsers: payloads of DECODE_SIMD_MIN_BYTES or more are scanned first
 * by simdjson (json_simd.h), whose operations are replayed here into the
 * very tables the hand-written scanner (decode.h) builds; what simdjson
 * leaves undecided, and smaller payloads, go to the scanner.  Anything
 * outside the scanner's strict JSON subset falls back to a full lua-cjson
 * decode of the whole text, so results and error messages (with cjson's
 * byte offset) are exactly those of a full decode.
 *
 * Memory: every structure here is GC-owned (userdata, tables); nothing is
 * malloc'd, so a raise (out of memory) leaks nothing.
 */
#include "lua_common.h"

#include "decode.h"
#include "json_simd.h"

#include <lua-cjson.h>

#include <stdlib.h>
#include <string.h>

#define FIELDSET_MT RETAPE_FIELDSET_MT
#define SIMD_MT "retape.decode.simd"

/* Payloads shorter than this go straight to the hand-written scanner: on
 * the real receipts (~235 bytes, all under 1 KB) its single pass beats
 * simdjson's parse and walk by ~13 %; from ~0.5 KB up simdjson is faster
 * (1.2x at 0.6-0.9 KB and on the full-size bodies, ~5-7.6 KB), the Lua
 * tables costing most of the time either way (tools/bench_decode.lua,
 * `make bench` "floor +fields"). */
#define DECODE_SIMD_MIN_BYTES 1024

/* Which decoder decode_with runs first (decode.decode's third argument). */
enum { ENGINE_AUTO, ENGINE_SIMD, ENGINE_SCANNER };

/* The nodes of a field set are decode.h's decode_node (one per declared
 * object level), each inside a userdata with uservalues 1 keys (array of
 * key strings, anchoring the entries' names), 2 children (array of child
 * node userdata, kept alive; the "*" child at index 0), 3 the metatable of
 * the partial tables built for this node, and on the root only: 4 the side
 * table {partial table -> what of it is not decoded yet}, 5 cjson.decode,
 * 6 the miss table {undeclared key -> lazy decodes it caused}, 7 the
 * simdjson scanner (a json_simd box, made on first use), 8 the metamethods
 * of nested partial tables ({__index, __pairs}, shared by every payload).
 *
 * The side table holds, for the root of a payload, its whole text (the
 * payload's own string: no copy); the root gets its node's metatable.  A
 * nested partial object costs no string of its own: its side entry is an
 * integer (its node's id, and the offset and length of its text inside
 * the root's), and its metatable is the payload's own (one per decoded
 * payload that has nested partial objects, made with the first), which
 * holds the root's text at [1] (so the text lives as long as any of them)
 * and the shared nested metamethods, which find the declared keys by the
 * node id.  An object beyond the integer's reach (a text past 64 MB, a
 * field set of over 2047 nodes) keeps a copy of its text and its node's
 * metatable, as a root does. */
typedef decode_entry dentry;
typedef decode_node dnode;

enum { UV_KEYS = 1, UV_CHILDREN, UV_MT, UV_SIDE, UV_CJSON, UV_MISSES, UV_SIMD, UV_NESTED, N_UV };

/* A nested partial object's side entry: node id, offset and length of its
 * text in the root's, in one integer (11 + 26 + 26 bits: non-negative). */
#define NESTED_OFFSET_BITS 26
#define NESTED_MAX_ID ((1 << 11) - 1)
#define NESTED_MAX_SPAN (((lua_Integer)1 << NESTED_OFFSET_BITS) - 1)

static lua_Integer nested_entry(int id, size_t offset, size_t len)
{
    return ((lua_Integer)id << (2 * NESTED_OFFSET_BITS)) | ((lua_Integer)offset << NESTED_OFFSET_BITS) | (lua_Integer)len;
}

static void nested_unpack(lua_Integer e, int *id, size_t *offset, size_t *len)
{
    *id = (int)(e >> (2 * NESTED_OFFSET_BITS));
    *offset = (size_t)((e >> NESTED_OFFSET_BITS) & NESTED_MAX_SPAN);
    *len = (size_t)(e & NESTED_MAX_SPAN);
}

/* Where a decode keeps what its partial tables need (both builders). */
typedef struct partial_ctx {
    int side;         /* stack index of the side table */
    int text;         /* stack index of the whole text (the root's side entry, no copy) */
    int root;         /* stack index of the field set (the root node) */
    int mt;           /* stack slot of the payload's metatable (nil until a nested partial object needs it) */
    const char *base; /* the text's bytes */
} partial_ctx;

/* Marks the table at t (built per the node at node_idx, keys left out) as
 * partial: its text is [obj, obj+obj_len) of the payload's text, or (obj
 * NULL) that whole text, the root's.  A nested object gets the payload's
 * metatable (made on first use in the slot pc->mt) and an integer side
 * entry; a root, or an object the integer cannot describe, its node's
 * metatable and a text (see the header).  Raises only on out of memory. */
static void mark_partial(lua_State *L, int t, int node_idx, const partial_ctx *pc, const char *obj, size_t obj_len)
{
    int side = pc->side, text_idx = pc->text, root_idx = pc->root, mt_slot = pc->mt;
    const char *base = pc->base;
    const dnode *node = lua_touserdata(L, node_idx);
    size_t offset = obj ? (size_t)(obj - base) : 0;
    if (obj && node->id <= NESTED_MAX_ID && offset <= (size_t)NESTED_MAX_SPAN && obj_len <= (size_t)NESTED_MAX_SPAN) {
        if (lua_isnil(L, mt_slot)) { /* the payload's metatable: the shared metamethods, its text at [1] */
            lua_createtable(L, 1, 2);
            lua_getiuservalue(L, root_idx, UV_NESTED);
            lua_getfield(L, -1, "__index");
            lua_setfield(L, -3, "__index");
            lua_getfield(L, -1, "__pairs");
            lua_setfield(L, -3, "__pairs");
            lua_pop(L, 1);
            lua_pushvalue(L, text_idx);
            lua_rawseti(L, -2, 1);
            lua_replace(L, mt_slot);
        }
        lua_pushvalue(L, mt_slot);
        lua_setmetatable(L, t);
        lua_pushvalue(L, t);
        lua_pushinteger(L, nested_entry(node->id, offset, obj_len));
        lua_rawset(L, side);
        return;
    }
    lua_getiuservalue(L, node_idx, UV_MT);
    lua_setmetatable(L, t);
    lua_pushvalue(L, t);
    if (obj)
        lua_pushlstring(L, obj, obj_len);
    else
        lua_pushvalue(L, text_idx);
    lua_rawset(L, side);
}

/* Finds the entry for key [s, s+len) in node (its index in *index), or NULL. */
static const dentry *node_find(const dnode *node, const char *s, size_t len, int *index)
{
    int e = decode_node_find(node, s, len);
    if (e < 0)
        return NULL;
    *index = e;
    return &node->entries[e];
}

/* ------------------------------------------------------------------------
 * building values (each builder pushes exactly one value and returns the
 * position after it, or returns NULL for "outside the subset": the caller
 * then resets the stack and falls back to cjson).  They hold no C memory
 * and raise only on out of memory (a Lua allocation). */

typedef struct build_ctx {
    lua_State *L;
    const char *end;
    partial_ctx pc;
} build_ctx;

/* Pushes the string [s, s+len), unescaping if needed (escapes were checked
 * by decode_string; \u is never a surrogate there). */
static void push_string(lua_State *L, const char *s, size_t len, int escaped)
{
    if (!escaped) {
        lua_pushlstring(L, s, len);
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c != '\\') {
            luaL_addchar(&b, c);
            continue;
        }
        c = s[++i];
        switch (c) {
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u': {
            unsigned v = 0;
            for (int k = 1; k <= 4; k++) {
                char h = s[i + (size_t)k];
                v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            i += 4;
            if (v < 0x80) {
                luaL_addchar(&b, (char)v);
            } else if (v < 0x800) {
                luaL_addchar(&b, (char)(0xC0 | (v >> 6)));
                luaL_addchar(&b, (char)(0x80 | (v & 0x3F)));
            } else {
                luaL_addchar(&b, (char)(0xE0 | (v >> 12)));
                luaL_addchar(&b, (char)(0x80 | ((v >> 6) & 0x3F)));
                luaL_addchar(&b, (char)(0x80 | (v & 0x3F)));
            }
            break;
        }
        default: luaL_addchar(&b, c); break; /* " \ / */
        }
    }
    luaL_pushresult(&b);
}

static const char *build_whole(build_ctx *c, const char *p, int depth);
static const char *build_node(build_ctx *c, const char *p, int node_idx, int depth);

/* Pushes a scalar (string, number, true/false/null) at p. */
static const char *build_scalar(build_ctx *c, const char *p)
{
    lua_State *L = c->L;
    const char *end = c->end;
    const char *s;
    size_t len;
    int esc;
    double d;
    switch (*p) {
    case '"':
        p = decode_string(p, end, &s, &len, &esc);
        if (p)
            push_string(L, s, len, esc);
        return p;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            return NULL;
        lua_pushboolean(L, 1);
        return p + 4;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            return NULL;
        lua_pushboolean(L, 0);
        return p + 5;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return NULL;
        lua_pushlightuserdata(L, NULL); /* cjson.null */
        return p + 4;
    default:
        p = decode_number(p, end, &d);
        if (p)
            lua_pushnumber(L, d); /* lua-cjson 2.1 decodes every number as a float */
        return p;
    }
}

/* Pushes an array; each element is built whole (node_idx 0) or partially
 * per the node userdata at node_idx. */
static const char *build_array(build_ctx *c, const char *p, int node_idx, int depth)
{
    lua_State *L = c->L;
    lua_newtable(L);
    p = decode_skip_ws(p + 1, c->end);
    if (p < c->end && *p == ']')
        return p + 1;
    for (lua_Integer i = 1;; i++) {
        p = decode_skip_ws(p, c->end);
        if (p >= c->end)
            return NULL;
        p = node_idx ? build_node(c, p, node_idx, depth + 1) : build_whole(c, p, depth + 1);
        if (!p)
            return NULL;
        lua_rawseti(L, -2, i);
        p = decode_skip_ws(p, c->end);
        if (p < c->end && *p == ',') {
            p++;
            continue;
        }
        if (p < c->end && *p == ']')
            return p + 1;
        return NULL;
    }
}

/* Pushes the whole value at p (every key of every object). */
static const char *build_whole(build_ctx *c, const char *p, int depth)
{
    lua_State *L = c->L;
    if (depth > DECODE_MAX_DEPTH || !lua_checkstack(L, 4) || ((*p == '[' || *p == '{') && depth >= DECODE_MAX_DEPTH))
        return NULL;
    if (*p == '[')
        return build_array(c, p, 0, depth);
    if (*p != '{')
        return build_scalar(c, p);
    /* the keys and values go on the stack first, then into a table sized
     * once for them, in document order (as the simdjson replay sizes its
     * own from the key count: the same table either way); growing it by
     * rehash cost ~800 instructions a key */
    int base = lua_gettop(L);
    p = decode_skip_ws(p + 1, c->end);
    if (p < c->end && *p == '}') {
        lua_newtable(L);
        return p + 1;
    }
    for (;;) {
        const char *s;
        size_t len;
        int esc;
        if (!lua_checkstack(L, 6)) /* the pair, and build_whole's own */
            return NULL;
        p = decode_string(decode_skip_ws(p, c->end), c->end, &s, &len, &esc);
        if (!p)
            return NULL;
        push_string(L, s, len, esc);
        p = decode_skip_ws(p, c->end);
        if (p >= c->end || *p != ':')
            return NULL;
        p = decode_skip_ws(p + 1, c->end);
        if (p >= c->end || !(p = build_whole(c, p, depth + 1)))
            return NULL;
        p = decode_skip_ws(p, c->end);
        if (p < c->end && *p == ',') {
            p++;
            continue;
        }
        if (p < c->end && *p == '}')
            break;
        return NULL;
    }
    int n = (lua_gettop(L) - base) / 2;
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, base + 1 + 2 * i);
        lua_pushvalue(L, base + 2 + 2 * i);
        lua_rawset(L, -3);
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return p + 1;
}

/* Pushes the value at p built per the node userdata at node_idx: an object
 * gets only the declared keys (and, if it has others, the node's metatable
 * and its text in the side table for the lazy rest); an array gets each element per the node's
 * "*"; a scalar is pushed as is. */
static const char *build_node(build_ctx *c, const char *p, int node_idx, int depth)
{
    lua_State *L = c->L;
    if (depth > DECODE_MAX_DEPTH || !lua_checkstack(L, 8) || ((*p == '[' || *p == '{') && depth >= DECODE_MAX_DEPTH))
        return NULL;
    const dnode *node = lua_touserdata(L, node_idx);
    if (*p == '[') {
        if (node->wild == 2) {
            lua_getiuservalue(L, node_idx, UV_CHILDREN);
            lua_rawgeti(L, -1, 0); /* the "*" child sits at index 0 */
            lua_remove(L, -2);
            int child = lua_gettop(L);
            p = build_array(c, p, child, depth);
            if (p)
                lua_remove(L, child);
            return p;
        }
        return build_array(c, p, 0, depth);
    }
    if (*p != '{')
        return build_scalar(c, p);
    const char *obj_start = p;
    lua_getiuservalue(L, node_idx, UV_KEYS);
    lua_getiuservalue(L, node_idx, UV_CHILDREN);
    int keys = lua_gettop(L) - 1, children = keys + 1;
    lua_createtable(L, 0, node->n);
    int t = lua_gettop(L), skipped = 0;
    /* the root's undeclared members, while they may still all be added
     * (see DECODE_REST_MAX): each key and where its scalar value starts */
    struct { const char *key, *value; size_t key_len; } rest[DECODE_REST_MAX];
    int n_rest = 0, rest_ok = depth == 0;
    p = decode_skip_ws(p + 1, c->end);
    if (p < c->end && *p == '}') {
        p++;
    } else {
        for (;;) {
            const char *s;
            size_t len;
            int esc, index = -1;
            p = decode_string(decode_skip_ws(p, c->end), c->end, &s, &len, &esc);
            if (!p || esc) /* escaped keys: cjson decides */
                return NULL;
            p = decode_skip_ws(p, c->end);
            if (p >= c->end || *p != ':')
                return NULL;
            p = decode_skip_ws(p + 1, c->end);
            if (p >= c->end)
                return NULL;
            const dentry *e = node->wild ? NULL : node_find(node, s, len, &index);
            if (node->wild || e) {
                if (e)
                    lua_rawgeti(L, keys, index + 1); /* interned key */
                else
                    lua_pushlstring(L, s, len);
                const dnode *child = e ? e->child : node->wild_node;
                if (child) {
                    lua_rawgeti(L, children, e ? index + 1 : 0);
                    p = build_node(c, p, lua_gettop(L), depth + 1);
                    if (!p)
                        return NULL;
                    lua_remove(L, -2); /* the child node */
                } else {
                    p = build_whole(c, p, depth + 1);
                    if (!p)
                        return NULL;
                }
                lua_rawset(L, t);
            } else {
                if (rest_ok && n_rest < DECODE_REST_MAX && *p != '{' && *p != '[') {
                    rest[n_rest].key = s;
                    rest[n_rest].key_len = len;
                    rest[n_rest++].value = p;
                } else {
                    rest_ok = 0;
                }
                p = decode_skip_value(p, c->end, depth + 1);
                if (!p)
                    return NULL;
                skipped = 1;
            }
            p = decode_skip_ws(p, c->end);
            if (p < c->end && *p == ',') {
                p++;
                continue;
            }
            if (p < c->end && *p == '}') {
                p++;
                break;
            }
            return NULL;
        }
    }
    /* A small rest of the root's scalars joins the declared keys (validated
     * by the skip; a number the scanner cannot convert, e.g. a token of 512+
     * characters, gives NULL: lua-cjson decides, as simdjson's walk does). */
    if (skipped && rest_ok) {
        for (int i = 0; i < n_rest; i++) {
            lua_pushlstring(L, rest[i].key, rest[i].key_len);
            if (!build_scalar(c, rest[i].value))
                return NULL;
            lua_rawset(L, t);
        }
        skipped = 0;
    }
    /* Nothing skipped (every key was declared, or "*", or the remainder
     * joined them): t is the whole object, a plain table; otherwise it
     * completes itself lazily. */
    if (skipped)
        mark_partial(L, t, node_idx, &c->pc, depth == 0 ? NULL : obj_start,
                     (size_t)(p - obj_start));
    lua_replace(L, keys); /* t where keys was; drop children */
    lua_settop(L, keys);
    return p;
}

/* ------------------------------------------------------------------------
 * building values from json_simd's operations: the same Lua calls in the
 * same order as the builders above make for the same text, so the tables
 * are identical (keys, values, sizes, partial tables and their texts), but
 * for arrays, sized once for their elements (a sequence reads and iterates
 * the same whatever its array part's size).
 * Each returns 0 when the Lua stack cannot grow (the caller then resets
 * the stack and runs the scanner); they raise only on out of memory. */

typedef struct replay_ctx {
    lua_State *L;
    const json_simd_op *op; /* the next operation */
    partial_ctx pc;
} replay_ctx;

static int replay_whole(replay_ctx *c);
static int replay_node(replay_ctx *c, int node_idx);

/* Pushes the array whose ARRAY operation (of n elements) was just
 * consumed; elements per the node at node_idx (0: whole).  The table is
 * sized once for its n elements (the scanner's grows as it goes: the same
 * sequence either way, which reads and iterates alike). */
static int replay_array(replay_ctx *c, int n, int node_idx)
{
    lua_State *L = c->L;
    lua_createtable(L, n, 0);
    for (lua_Integer i = 1; c->op->kind != JSON_SIMD_END; i++) {
        if (!(node_idx ? replay_node(c, node_idx) : replay_whole(c)))
            return 0;
        lua_rawseti(L, -2, i);
    }
    c->op++;
    return 1;
}

/* Pushes the whole value at the next operation (as build_whole). */
static int replay_whole(replay_ctx *c)
{
    lua_State *L = c->L;
    if (!lua_checkstack(L, 4))
        return 0;
    const json_simd_op *op = c->op++;
    switch (op->kind) {
    case JSON_SIMD_NUMBER: lua_pushnumber(L, op->number); return 1;
    case JSON_SIMD_STRING: lua_pushlstring(L, op->str, op->len); return 1;
    case JSON_SIMD_TRUE: lua_pushboolean(L, 1); return 1;
    case JSON_SIMD_FALSE: lua_pushboolean(L, 0); return 1;
    case JSON_SIMD_NULL: lua_pushlightuserdata(L, NULL); return 1; /* cjson.null */
    case JSON_SIMD_ARRAY: return replay_array(c, op->entry, 0);
    case JSON_SIMD_OBJECT:
        /* sized once for its keys: growing by rehash cost ~800 instructions
         * a key (full-size bodies: 6 % of a replay's) */
        lua_createtable(L, 0, op->entry);
        while (c->op->kind == JSON_SIMD_KEY) {
            const json_simd_op *key = c->op++;
            lua_pushlstring(L, key->str, key->len);
            if (!replay_whole(c))
                return 0;
            lua_rawset(L, -3);
        }
        c->op++; /* END */
        return 1;
    default:
        return 0; /* not a value: cannot happen */
    }
}

/* Pushes the value at the next operation built per the node userdata at
 * node_idx (as build_node). */
static int replay_node(replay_ctx *c, int node_idx)
{
    lua_State *L = c->L;
    if (!lua_checkstack(L, 8))
        return 0;
    const dnode *node = lua_touserdata(L, node_idx);
    if (c->op->kind == JSON_SIMD_ARRAY && node->wild == 2) {
        int n = c->op->entry;
        c->op++;
        lua_getiuservalue(L, node_idx, UV_CHILDREN);
        lua_rawgeti(L, -1, 0); /* the "*" child */
        lua_remove(L, -2);
        int child = lua_gettop(L);
        if (!replay_array(c, n, child))
            return 0;
        lua_remove(L, child);
        return 1;
    }
    if (c->op->kind != JSON_SIMD_OBJECT)
        return replay_whole(c);
    c->op++;
    lua_getiuservalue(L, node_idx, UV_KEYS);
    lua_getiuservalue(L, node_idx, UV_CHILDREN);
    int keys = lua_gettop(L) - 1, children = keys + 1;
    lua_createtable(L, 0, node->n);
    int t = lua_gettop(L);
    while (c->op->kind == JSON_SIMD_KEY) {
        const json_simd_op *key = c->op++;
        if (key->entry >= 0)
            lua_rawgeti(L, keys, key->entry + 1); /* interned key */
        else
            lua_pushlstring(L, key->str, key->len);
        const dnode *child = key->entry >= 0 ? node->entries[key->entry].child : node->wild_node;
        if (child) {
            lua_rawgeti(L, children, key->entry >= 0 ? key->entry + 1 : 0);
            if (!replay_node(c, lua_gettop(L)))
                return 0;
            lua_remove(L, -2); /* the child node */
        } else if (!replay_whole(c)) {
            return 0;
        }
        lua_rawset(L, t);
    }
    const json_simd_op *end = c->op++;
    if (end->entry) /* keys left out: completes itself lazily (the root: end->str NULL) */
        mark_partial(L, t, node_idx, &c->pc, end->str, end->len);
    lua_replace(L, keys);
    lua_settop(L, keys);
    return 1;
}

/* __gc of the json_simd box. */
static int l_simd_gc(lua_State *L)
{
    json_simd **box = luaL_checkudata(L, 1, SIMD_MT);
    json_simd_free(*box);
    *box = NULL;
    return 0;
}

/* The json_simd of the field set at fs_idx, made on first use and owned by
 * the field set (a box whose __gc frees it); NULL when it cannot be made.
 * Raises only on out of memory (before anything is allocated in C). */
static json_simd *fieldset_simd(lua_State *L, int fs_idx)
{
    if (lua_getiuservalue(L, fs_idx, UV_SIMD) == LUA_TUSERDATA) {
        json_simd *js = *(json_simd **)lua_touserdata(L, -1);
        lua_pop(L, 1);
        return js;
    }
    lua_pop(L, 1);
    json_simd **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, SIMD_MT);
    *box = json_simd_new();
    lua_setiuservalue(L, fs_idx, UV_SIMD);
    return *box;
}

/* Pushes "field 'KEY' holds TOKEN" for the bad token at `bad` (its key from
 * decode_find_bad_number, or none). */
static void push_bad_field(lua_State *L, const char *s, size_t len, const char *bad, const char *key, size_t key_len)
{
    size_t n = 0;
    while (bad + n < s + len && n < 40 && !strchr(",}] \t\r\n", bad[n]))
        n++;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (key) {
        luaL_addstring(&b, "field '");
        luaL_addlstring(&b, key, key_len < 80 ? key_len : 80);
        luaL_addstring(&b, "' ");
    }
    luaL_addstring(&b, "holds ");
    luaL_addlstring(&b, bad, n);
    luaL_pushresult(&b);
}

/* After a successful decode: checks that the payload text holds no number
 * that overflows a double (1e400: JSON's grammar, but no double; NaN,
 * Infinity and hex never decode).  Returns 1, or 0 with a message naming
 * the field, the token and its byte offset pushed.  Raises only on out of
 * memory. */
int retape_payload_numbers_ok(lua_State *L, const char *s, size_t len)
{
    const char *key;
    size_t key_len;
    const char *bad = decode_find_bad_number(s, s + len, 1, &key, &key_len);
    if (!bad)
        return 1;
    push_bad_field(L, s, len, bad, key, key_len);
    lua_pushfstring(L, ", a number that is not finite as a double, at byte %d", (int)(bad - s) + 1);
    lua_concat(L, 2);
    return 0;
}

/* After a failed decode, with cjson's message on top: when cjson stopped at
 * a number it refuses (NaN, Infinity, hex: "at character N"), the field is
 * named after its message, which stays as cjson wrote it.  Raises only on
 * out of memory. */
void retape_payload_explain(lua_State *L, const char *s, size_t len)
{
    const char *msg = lua_tostring(L, -1);
    const char *at = msg && strncmp(msg, "Expected value but found invalid", 32) == 0 ? strstr(msg, "at character ") : NULL;
    if (!at)
        return;
    long pos = strtol(at + 13, NULL, 10);
    const char *key;
    size_t key_len;
    const char *bad = decode_find_bad_number(s, s + len, 0, &key, &key_len);
    if (!bad || !key || (long)(bad - s) + 1 != pos)
        return;
    lua_pushliteral(L, " (");
    push_bad_field(L, s, len, bad, key, key_len);
    lua_pushliteral(L, ")");
    lua_concat(L, 4);
}

/* Pushes the payload at index text decoded per the field set at fs_idx,
 * running the decoders engine allows in turn: json_simd (payloads of
 * DECODE_SIMD_MIN_BYTES or more under ENGINE_AUTO, any under ENGINE_SIMD),
 * then the hand-written scanner, then lua-cjson, each taking over what the
 * one before it leaves undecided.  Returns 1 with the table pushed, or 0
 * with an error message pushed (the text is malformed, or not a JSON
 * object: then the message is cjson's, or "payload is not a JSON object").
 * *used (if not NULL) names the decoder that gave the result.  Raises only
 * on out of memory. */
static int decode_with(lua_State *L, int fs_idx, int text, int engine, const char **used)
{
    fs_idx = lua_absindex(L, fs_idx);
    text = lua_absindex(L, text);
    size_t len;
    const char *s = lua_tolstring(L, text, &len);
    int base = lua_gettop(L);
    lua_getiuservalue(L, fs_idx, UV_SIDE);
    lua_pushnil(L); /* base + 2: the payload's metatable, when it needs one */
    const partial_ctx pc = {base + 1, text, fs_idx, base + 2, s};
    if (engine == ENGINE_SIMD || (engine == ENGINE_AUTO && len >= DECODE_SIMD_MIN_BYTES)) {
        json_simd *js = fieldset_simd(L, fs_idx);
        const json_simd_op *ops;
        if (js && json_simd_scan(js, lua_touserdata(L, fs_idx), s, len, &ops)) {
            replay_ctx r = {L, ops, pc};
            if (replay_node(&r, fs_idx)) {
                lua_replace(L, base + 1);
                lua_settop(L, base + 1);
                if (used)
                    *used = "simd";
                return 1;
            }
            lua_settop(L, base + 1);
            lua_pushnil(L);
        }
    }
    build_ctx c = {L, s + len, pc};
    const char *p = decode_skip_ws(s, s + len);
    if (p < c.end && *p == '{') {
        p = build_node(&c, p, fs_idx, 0);
        if (p && decode_skip_ws(p, c.end) == c.end) {
            lua_replace(L, base + 1);
            lua_settop(L, base + 1);
            if (used)
                *used = "scanner";
            return 1;
        }
    }
    /* Outside the subset (or malformed): lua-cjson decides (its message,
     * with the field named when it stopped at NaN, Infinity or hex); a
     * number that overflows a double (1e400) is refused after it. */
    lua_settop(L, base);
    if (used)
        *used = "cjson";
    lua_getiuservalue(L, fs_idx, UV_CJSON);
    lua_pushvalue(L, text);
    lua_call(L, 1, 2); /* cjson.safe never raises on bad input */
    if (lua_istable(L, -2)) {
        lua_pop(L, 1);
        if (retape_payload_numbers_ok(L, s, len))
            return 1;
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
        return 0;
    }
    const char *why = lua_isstring(L, -1) ? lua_tostring(L, -1) : "payload is not a JSON object";
    lua_pushstring(L, why);
    retape_payload_explain(L, s, len);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 0;
}

/* Pushes the payload at index text decoded per the field set at fs_idx
 * (lua_common.h): the fastest decoder for its size first, the others
 * taking over what it leaves undecided (decode_with, ENGINE_AUTO). */
int retape_decode_payload(lua_State *L, int fs_idx, int text)
{
    return decode_with(L, fs_idx, text, ENGINE_AUTO, NULL);
}

/* ------------------------------------------------------------------------
 * lazy completion: metamethods of partial tables */

/* Fills the partial table at t with every key of the text on top of the
 * stack (popped) that is neither present in t nor in the declared set at
 * declared_idx, then forgets t's entry in the side table at side_idx (t is
 * whole now).  cjson_idx: cjson.decode.  Raises on a memory error (t
 * stays pending, its keys so far kept), or if the text no longer decodes
 * (it was scanned valid: never). */
static void fill_from_text(lua_State *L, int t, int declared_idx, int side_idx, int cjson_idx)
{
    lua_pushvalue(L, cjson_idx);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
        luaL_error(L, "retape.decode: a scanned payload no longer decodes");
    int full = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, full)) {
        lua_pushvalue(L, -2);
        int declared = lua_rawget(L, declared_idx) != LUA_TNIL;
        lua_pop(L, 1);
        if (!declared) {
            lua_pushvalue(L, -2);
            if (lua_rawget(L, t) == LUA_TNIL) {
                lua_pop(L, 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, t);
                continue;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* whole now: forgotten only after the last key is in (a raise on the
     * way, out of memory, leaves it pending, and the next access fills in
     * the rest: keys present are never overwritten) */
    lua_pushvalue(L, t);
    lua_pushnil(L);
    lua_rawset(L, side_idx);
}

/* Completes the partial table at t that has its node's metatable (a root,
 * or an object with its own copy of its text): upvalues 1 declared set,
 * 2 side table, 3 cjson.decode.  A table already whole is left alone. */
static void complete(lua_State *L, int t)
{
    lua_pushvalue(L, t);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TSTRING) {
        lua_pop(L, 1);
        return;
    }
    fill_from_text(L, t, lua_upvalueindex(1), lua_upvalueindex(2), lua_upvalueindex(3));
}

/* misses[key] = (misses[key] or 0) + 1: the undeclared key at key_idx
 * forced a lazy decode (misses: the miss table at misses_idx). */
static void count_miss(lua_State *L, int key_idx, int misses_idx)
{
    lua_pushvalue(L, key_idx);
    lua_pushvalue(L, key_idx);
    lua_Integer n = lua_rawget(L, misses_idx) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    lua_pushinteger(L, n + 1);
    lua_rawset(L, misses_idx);
}

/* __index(t, k): a declared key (or any non-string key: JSON objects have
 * only string keys) that is absent is nil; any other key completes t once,
 * counted under k in the field set's miss table (upvalue 4). */
static int l_partial_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 0;
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) /* t is still partial: a miss */
        count_miss(L, 2, lua_upvalueindex(4));
    lua_pop(L, 1);
    complete(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* Pushes the declared set of the nested partial table at t (the payload's
 * metatable; upvalues 1 node list, 2 side table) and returns 1, with its
 * entry's text offset and length in *offset, *len; returns 0 with nothing
 * pushed when t is whole already. */
static int nested_pending(lua_State *L, int t, size_t *offset, size_t *len)
{
    lua_pushvalue(L, t);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNUMBER) {
        lua_pop(L, 1);
        return 0;
    }
    int id;
    nested_unpack(lua_tointeger(L, -1), &id, offset, len);
    lua_pop(L, 1);
    if (lua_rawgeti(L, lua_upvalueindex(1), id) != LUA_TTABLE)
        luaL_error(L, "retape.decode: a partial object of another field set");
    return 1;
}

/* Completes the nested partial table at t whose declared set is on top of
 * the stack (popped): its text cut from the root's text, which its
 * metatable holds at [1].  Upvalues 1 node list, 2 side table, 3
 * cjson.decode.  Raises only if the entry does not fit the text (never). */
static void complete_nested(lua_State *L, int t, size_t offset, size_t len)
{
    int declared = lua_gettop(L);
    size_t text_len = 0;
    const char *text = NULL;
    if (lua_getmetatable(L, t)) {
        lua_rawgeti(L, -1, 1);
        text = lua_tolstring(L, -1, &text_len);
    }
    if (!text || offset > text_len || len > text_len - offset)
        luaL_error(L, "retape.decode: a partial object's text is gone");
    lua_pushlstring(L, text + offset, len);
    fill_from_text(L, t, declared, lua_upvalueindex(2), lua_upvalueindex(3));
    lua_settop(L, declared - 1);
}

/* __index(t, k) of a nested partial table (the payload's metatable): as
 * l_partial_index, its declared set found by its side entry's node id.
 * Upvalues 1 node list, 2 side table, 3 cjson.decode, 4 miss table. */
static int l_nested_index(lua_State *L)
{
    size_t offset, len;
    if (lua_type(L, 2) != LUA_TSTRING || !nested_pending(L, 1, &offset, &len))
        return 0; /* whole already: the key is not there */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 0; /* a declared key that is absent */
    lua_pop(L, 1);
    count_miss(L, 2, lua_upvalueindex(4));
    complete_nested(L, 1, offset, len);
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* The iterator of __pairs: raw next (whatever the global `next` is). */
static int l_raw_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* __pairs(t): completes t, then iterates it raw. */
static int l_partial_pairs(lua_State *L)
{
    complete(L, 1);
    lua_pushcfunction(L, l_raw_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* __pairs(t) of a nested partial table: completes t, then iterates it raw.
 * Upvalues as l_nested_index's (but the miss table). */
static int l_nested_pairs(lua_State *L)
{
    size_t offset, len;
    if (nested_pending(L, 1, &offset, &len))
        complete_nested(L, 1, offset, len);
    lua_pushcfunction(L, l_raw_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void retape_decode_complete(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "decode: completing a partial table");
    if (!lua_getmetatable(L, idx))
        return;
    lua_pushliteral(L, "__pairs");
    lua_rawget(L, -2);
    lua_CFunction pairs = lua_tocfunction(L, -1);
    if (pairs == l_partial_pairs || pairs == l_nested_pairs) {
        lua_pushvalue(L, idx);
        lua_call(L, 1, 3); /* completes; the iterator it returns is not needed */
        lua_pop(L, 4);     /* and the metatable */
    } else {
        lua_pop(L, 2);
    }
}

/* ------------------------------------------------------------------------
 * compiling a field set */

/* Adds the dotted path s to the trie table at idx ({key = true | subtrie}).
 * true (whole) absorbs any deeper path.  Raises on an empty segment. */
static void trie_add(lua_State *L, int idx, const char *path)
{
    idx = lua_absindex(L, idx);
    const char *seg = path;
    lua_pushvalue(L, idx);
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (len == 0)
            luaL_error(L, "decode.compile: bad field path '%s' (empty segment)", path);
        lua_pushlstring(L, seg, len);
        lua_rawget(L, -2); /* the value at this trie level */
        if (!dot) {
            lua_pop(L, 1);
            lua_pushlstring(L, seg, len);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
            lua_pop(L, 1);
            return;
        }
        if (lua_type(L, -1) == LUA_TBOOLEAN) { /* already whole */
            lua_pop(L, 2);
            return;
        }
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushlstring(L, seg, len);
            lua_pushvalue(L, -2);
            lua_rawset(L, -4);
        }
        lua_remove(L, -2);
        seg = dot + 1;
    }
}

static int l_fieldset_tostring(lua_State *L)
{
    const dnode *n = luaL_checkudata(L, 1, FIELDSET_MT);
    lua_pushfstring(L, "retape.decode.fieldset (%d top-level fields%s)", n->n, n->wild ? ", *" : "");
    return 1;
}

/* A key of a trie level, for sorting them in byte order. */
typedef struct key_span {
    const char *s;
    size_t len;
} key_span;

static int compare_spans(const void *a, const void *b)
{
    const key_span *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Builds the node userdata for the trie table at idx and pushes it.
 * side_idx/cjson_idx: stack indices of the shared side table and
 * cjson.decode, with the miss table at cjson_idx + 1 (captured by the
 * metamethods; stored on the root) and the list of nodes at cjson_idx + 2
 * (each node's declared set is appended: its id).  Raises only on out of
 * memory. */
static dnode *make_node(lua_State *L, int idx, int side_idx, int cjson_idx, int root)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 12, "decode.compile: field paths nested too deeply");
    int n = 0, wild = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_tostring(L, -2);
        if (strcmp(k, "*") == 0)
            wild = lua_istable(L, -1) ? 2 : 1;
        else
            n++;
        lua_pop(L, 1);
    }
    if (wild)
        n = 0; /* "*" covers every key: named ones are built with it */
    uint32_t slots = 4;
    while (slots < 2u * (uint32_t)n)
        slots *= 2;
    size_t size = sizeof(dnode) + (size_t)n * sizeof(dentry) + slots * sizeof(int32_t);
    dnode *node = lua_newuserdatauv(L, size, root ? N_UV - 1 : UV_MT);
    memset(node, 0, size);
    node->entries = (dentry *)(node + 1);
    node->slots = (int32_t *)(node->entries + n);
    node->mask = slots - 1;
    node->wild = wild;
    int self = lua_gettop(L);
    lua_newtable(L); /* keys */
    lua_newtable(L); /* children */
    lua_newtable(L); /* declared set */
    int keys = self + 1, children = self + 2, declared = self + 3;
    lua_pushvalue(L, declared); /* the field set's list of nodes: their declared sets, by id */
    node->id = (int)lua_rawlen(L, cjson_idx + 2) + 1;
    lua_rawseti(L, cjson_idx + 2, node->id);
    /* the keys in byte order, so that node ids (and the entries) are the
     * same in every run, whatever the state's string hash seed */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    key_span *sorted = lua_newuserdatauv(L, (count ? count : 1) * sizeof *sorted, 0);
    int sorted_idx = lua_gettop(L);
    count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        sorted[count].s = lua_tolstring(L, -1, &sorted[count].len); /* anchored by the trie */
        count++;
    }
    qsort(sorted, count, sizeof *sorted, compare_spans);
    for (size_t at = 0; at < count; at++) {
        lua_pushlstring(L, sorted[at].s, sorted[at].len);
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);
        const char *k = lua_tostring(L, -2);
        int is_wild = strcmp(k, "*") == 0;
        if (wild && !is_wild) {
            lua_pop(L, 2);
            continue;
        }
        dnode *child = NULL;
        if (lua_istable(L, -1)) {
            child = make_node(L, -1, side_idx, cjson_idx, 0);
            lua_rawseti(L, children, is_wild ? 0 : node->n + 1);
        }
        if (is_wild) {
            node->wild_node = child;
        } else {
            dentry *e = &node->entries[node->n];
            lua_pushvalue(L, -2);
            lua_rawseti(L, keys, node->n + 1);
            lua_pushvalue(L, -2);
            lua_pushboolean(L, 1);
            lua_rawset(L, declared);
            e->name = lua_tolstring(L, -2, &e->len); /* anchored by keys */
            e->hash = decode_hash(e->name, e->len);
            e->child = child;
            uint32_t i = e->hash & node->mask;
            while (node->slots[i])
                i = (i + 1) & node->mask;
            node->slots[i] = ++node->n;
        }
        lua_pop(L, 2);
    }
    lua_remove(L, sorted_idx);
    /* metatable of this node's partial tables */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, declared);
    lua_pushvalue(L, side_idx);
    lua_pushvalue(L, cjson_idx);
    lua_pushvalue(L, cjson_idx + 1);
    lua_pushcclosure(L, l_partial_index, 4);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, declared);
    lua_pushvalue(L, side_idx);
    lua_pushvalue(L, cjson_idx);
    lua_pushcclosure(L, l_partial_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_setiuservalue(L, self, UV_MT);
    lua_pop(L, 1); /* declared */
    lua_setiuservalue(L, self, UV_CHILDREN);
    lua_setiuservalue(L, self, UV_KEYS);
    if (root) {
        lua_pushvalue(L, side_idx);
        lua_setiuservalue(L, self, UV_SIDE);
        lua_pushvalue(L, cjson_idx);
        lua_setiuservalue(L, self, UV_CJSON);
        lua_pushvalue(L, cjson_idx + 1);
        lua_setiuservalue(L, self, UV_MISSES);
        luaL_setmetatable(L, FIELDSET_MT);
    }
    return node;
}

/* decode.compile(paths, ...) -> field set.  Each argument is a list of
 * dotted paths (the lists are merged: a ruleset extending another appends).
 * Raises on a path that is not a non-empty string of non-empty segments.
 * Upvalue 1: cjson.decode of a private cjson instance. */
static int l_compile(lua_State *L)
{
    int nargs = lua_gettop(L);
    lua_newtable(L);
    int trie = lua_gettop(L);
    for (int a = 1; a <= nargs; a++) {
        if (lua_isnil(L, a))
            continue;
        luaL_checktype(L, a, LUA_TTABLE);
        lua_Integer n = luaL_len(L, a);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, a, i) != LUA_TSTRING)
                luaL_error(L, "decode.compile: field %d of list %d is not a string", (int)i, a);
            trie_add(L, trie, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_newtable(L); /* side table: partial table -> text, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    int side = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_newtable(L); /* misses */
    lua_newtable(L); /* nodes: declared set by id */
    make_node(L, trie, side, side + 1, 1);
    int root = lua_gettop(L);
    /* the metamethods of nested partial tables (see the header) */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, side + 3); /* the nodes' declared sets */
    lua_pushvalue(L, side);     /* the side table */
    lua_pushvalue(L, side + 1); /* cjson.decode */
    lua_pushvalue(L, side + 2); /* the miss table */
    lua_pushcclosure(L, l_nested_index, 4);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, side + 3);
    lua_pushvalue(L, side);
    lua_pushvalue(L, side + 1);
    lua_pushcclosure(L, l_nested_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_setiuservalue(L, root, UV_NESTED);
    return 1;
}

/* decode.decode(fs, text [, engine]) -> table, nil, decoder | nil, message
 * (cjson's, with offset), "cjson".  engine: "auto" (default: by size),
 * "simd" (simdjson first) or "scanner" (the hand-written scanner first);
 * decoder: which one gave the result ("simd", "scanner" or "cjson"). */
static int l_decode(lua_State *L)
{
    static const char *const engines[] = {"auto", "simd", "scanner", NULL};
    luaL_checkudata(L, 1, FIELDSET_MT);
    luaL_checkstring(L, 2);
    int engine = luaL_checkoption(L, 3, "auto", engines);
    lua_settop(L, 2);
    const char *used = NULL;
    if (decode_with(L, 1, 2, engine, &used)) {
        lua_pushnil(L);
        lua_pushstring(L, used);
        return 3;
    }
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, used);
    return 3;
}

/* Completes t and, recursively, every partial table reachable from it. */
static void materialize(lua_State *L, int t, int depth)
{
    if (depth > 200)
        luaL_error(L, "decode.materialize: nesting deeper than 200");
    luaL_checkstack(L, 6, "decode.materialize");
    retape_decode_complete(L, t);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_istable(L, -1))
            materialize(L, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
}

/* decode.materialize(t) -> t, with every lazily decoded field filled in
 * (for exporting a payload, or comparing it with a full decode). */
static int l_materialize(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    materialize(L, 1, 0);
    return 1;
}

/* Pushes a copy of the table at t that decodes like it: the same metatable
 * and the same text still pending (side table at index side), so a key not
 * decoded yet completes on first read in the copy too.  Nested tables are
 * copied the same way when deep, shared otherwise.  Raises only on out of
 * memory or past 200 levels. */
static void push_partial_copy(lua_State *L, int side, int t, int deep, int depth)
{
    if (depth > 200)
        luaL_error(L, "decode.copy: nesting deeper than 200");
    luaL_checkstack(L, 8, "decode.copy");
    t = lua_absindex(L, t);
    int out = push_table_sized_like(L, t);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pushvalue(L, -2);
        if (deep && lua_istable(L, -2))
            push_partial_copy(L, side, -2, 1, depth + 1);
        else
            lua_pushvalue(L, -2);
        lua_rawset(L, out);
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, t))
        lua_setmetatable(L, out);
    lua_pushvalue(L, t);
    if (lua_rawget(L, side) != LUA_TNIL) { /* its text, or a nested entry (the metatable holds the text) */
        lua_pushvalue(L, out);
        lua_insert(L, -2);
        lua_rawset(L, side);
    } else {
        lua_pop(L, 1);
    }
}

/* decode.copy(fs, p [, writes]) -> a copy of payload p (decoded with fs) for
 * another reader, as retape.sweep hands one decoded receipt to every
 * variant: the top level copied, the nested tables named in `writes` (a
 * list of top-level keys) copied to any depth, every other nested table
 * shared.  Keys not decoded yet still decode lazily in the copy.  Raises
 * on bad arguments, out of memory or nesting deeper than 200. */
static int l_copy(lua_State *L)
{
    luaL_checkudata(L, 1, FIELDSET_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_getiuservalue(L, 1, UV_SIDE);   /* 4 */
    push_partial_copy(L, 4, 2, 0, 0);   /* 5 */
    if (lua_istable(L, 3)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 3, i);       /* key */
            lua_pushvalue(L, -1);
            if (lua_rawget(L, 5) == LUA_TTABLE) {
                push_partial_copy(L, 4, -1, 1, 1);
                lua_remove(L, -2);
                lua_rawset(L, 5);
            } else {
                lua_pop(L, 2);
            }
        }
    }
    lua_settop(L, 5);
    return 1;
}

/* decode.misses(fs) -> {key = n}: the undeclared keys whose first read
 * caused a lazy decode, and how often (a ruleset should declare them). */
static int l_misses(lua_State *L)
{
    luaL_checkudata(L, 1, FIELDSET_MT);
    lua_getiuservalue(L, 1, UV_MISSES);
    return 1;
}

/* decode.number(text) -> number | nil: the scanner's number parser alone
 * (for tests against tonumber/cjson). */
static int l_number(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    double d;
    const char *p = decode_number(s, s + len, &d);
    if (!p || p != s + len)
        return 0;
    lua_pushnumber(L, d);
    return 1;
}

int luaopen_retape_decode(lua_State *L)
{
    luaL_newmetatable(L, FIELDSET_MT);
    lua_pushcfunction(L, l_fieldset_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newmetatable(L, SIMD_MT);
    lua_pushcfunction(L, l_simd_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    retape_lua_push_payload_decoder(L); /* a private cjson.safe instance (its settings are its own) */
    lua_pushcclosure(L, l_compile, 1);
    lua_setfield(L, -2, "compile");
    static const luaL_Reg fns[] = {
        {"decode", l_decode}, {"copy", l_copy}, {"materialize", l_materialize}, {"misses", l_misses}, {"number", l_number}, {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
    return 1;
}
