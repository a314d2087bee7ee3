/*
 * lua_common.h — helpers shared by the Lua bridges (lua_*.c).  Only bridges
 * include Lua headers; the subsystems they wrap know nothing of Lua.
 */
#ifndef RETAPE_LUA_COMMON_H
#define RETAPE_LUA_COMMON_H

#include "retape.h"
#include "util.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

/* Protected body of push_owned: pushes the bytes (lightuserdata 1, length 2). */
static inline int push_owned_body(lua_State *L)
{
    lua_pushlstring(L, (const char *)lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

/* Pushes len bytes of buf as a Lua string and frees buf (malloc'd by the
 * core), also when the copy fails: the copy runs protected and any error
 * (out of memory, the sandbox's cap) is raised only after the free, so no
 * raise ever leaks the buffer.  Raises. */
static inline void push_owned(lua_State *L, char *buf, size_t len)
{
    if (!lua_checkstack(L, 3)) {
        retape_free(buf);
        luaL_error(L, "stack overflow");
    }
    lua_pushcfunction(L, push_owned_body);
    lua_pushlightuserdata(L, buf);
    lua_pushinteger(L, (lua_Integer)len);
    int status = lua_pcall(L, 2, 1, 0);
    retape_free(buf);
    if (status != LUA_OK)
        lua_error(L); /* the copy's error, now that nothing is held */
}

/* __gc of an owner box (retape_lua_push_owner). */
static inline int retape_lua_owner_gc(lua_State *L)
{
    void **slot = lua_touserdata(L, 1);
    retape_free(*slot);
    *slot = NULL;
    return 0;
}

/* Pushes a userdata owning one malloc'd pointer, freed with retape_free
 * when the box is collected unless taken back first (*slot = NULL): what
 * a C function holds while a Lua call may raise.  Returns the slot (NULL
 * inside).  Raises only out of memory (before anything is owned). */
static inline void **retape_lua_push_owner(lua_State *L)
{
    void **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    if (luaL_newmetatable(L, "retape.owner")) {
        lua_pushcfunction(L, retape_lua_owner_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return slot;
}

/* Pushes the environmental-failure result `nil, message` and frees the
 * malloc'd message (before any raise).  Returns 2. */
static inline int push_failure(lua_State *L, char *msg)
{
    lua_pushnil(L);
    if (msg)
        push_owned(L, msg, strlen(msg));
    else
        lua_pushliteral(L, "unknown error");
    return 2;
}

/* Raises with a malloc'd message (freed before the raise). */
static inline int raise_message(lua_State *L, char *msg)
{
    if (msg)
        push_owned(L, msg, strlen(msg));
    else
        lua_pushliteral(L, "unknown error");
    return lua_error(L);
}

/* Reads an optional integer field of the table at idx (def when nil). */
static inline lua_Integer opt_int_field(lua_State *L, int idx, const char *name, lua_Integer def)
{
    lua_getfield(L, idx, name);
    lua_Integer v = lua_isnoneornil(L, -1) ? def : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A malloc'd copy of the string field `name` of the table at idx (def when
 * absent; NULL when def is too); the caller frees it.  Raises (holding
 * nothing) on a non-string. */
static inline char *opt_string_field(lua_State *L, int idx, const char *name, const char *def)
{
    lua_getfield(L, idx, name);
    char *copy = dup_string(luaL_optstring(L, -1, def));
    lua_pop(L, 1);
    return copy;
}

/* Registers a class metatable `name` whose __index holds `methods` and whose
 * __gc and __close both call `fin` (which must tolerate being called twice). */
static inline void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction fin)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, fin);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, fin);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}

/* The module openers, registered together by lua_retape.c. */
int luaopen_retape_core(lua_State *L);
int luaopen_retape_source(lua_State *L);
int luaopen_retape_kv(lua_State *L);
int luaopen_retape_time(lua_State *L);
int luaopen_retape_ingest(lua_State *L);
int luaopen_retape_sql(lua_State *L);
int luaopen_retape_jsonenc(lua_State *L);
int luaopen_retape_pack(lua_State *L);
int luaopen_retape_step(lua_State *L);
int luaopen_retape_fs(lua_State *L);
int luaopen_retape_decode(lua_State *L);
/* Pushes a new empty table presized like the table at idx (its array part
 * and its key count), for a copy of it; returns the new table's index.
 * Raises only on out of memory. */
static inline int push_table_sized_like(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    int narr = (int)lua_rawlen(L, idx), nall = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        nall++;
        lua_pop(L, 1);
    }
    lua_createtable(L, narr, nall > narr ? nall - narr : 0);
    return lua_gettop(L);
}

/* The field sets of retape.decode, and the selective decode of one payload
 * (lua_decode.c: simdjson for full-size bodies, the hand-written scanner for
 * small ones, lua-cjson for what neither decides): pushes the table and
 * returns 1, or pushes a message and returns 0 (malformed: cjson's message
 * with its byte offset).  Raises only on out of memory. */
#define RETAPE_FIELDSET_MT "retape.decode.fieldset"
int retape_decode_payload(lua_State *L, int fs_idx, int text);
/* Fills in now the undeclared fields of the table at idx when it is one of
 * retape.decode's partial tables (a payload decoded selectively, or an
 * object nested in one), so that a raw walk (lua_next) sees every field;
 * any other table is left alone (a rule's own __pairs is never called: it
 * would run outside the sandbox's budget).  Every serializer (JSON encode,
 * pack, state extract, deep copy) calls it before walking a table with a
 * metatable.  Raises on a memory error (the table stays pending, what was
 * filled in kept), or on a partial table whose text is gone (never). */
void retape_decode_complete(lua_State *L, int idx);

/* lua_json.c: pushes and returns the text of a table key for an error: a
 * number as Lua writes it, anything else by its type ("a table") -- never a
 * rule's __tostring, which would run outside the sandbox's guard. */
const char *retape_push_key_text(lua_State *L, int idx);

/* The most values (numbers, strings, booleans, tables; a table held twice
 * counts twice) in one value the engine keeps for a rule: a state field,
 * the view of a receipt, a trade, a version's open trade.  A rule's shared
 * references let a small table stand for a huge one ({a = t, b = t} thirty
 * levels deep is 2^31 values), which a copy or an encoding would expand
 * outside the sandbox's limits (a 26-level one took 18 GB before this);
 * the walkers refuse such a value instead, and the caller names it. */
#define RETAPE_KEPT_VALUES_MAX 100000
/* ... and the most bytes it may take written (JSON or packed): a string
 * held many times counts each time, so 100,000 references to one 1 MB
 * string (a rule's longest) are refused, not written as 100 GB.  Three of
 * the longest strings fit. */
#define RETAPE_KEPT_BYTES_MAX (4u << 20)
/* The most bytes one batch of a store's writes may hold (a bucket's; with
 * threads, each part's and the main thread's of a round's parts together,
 * checked at every put and append): what the rules leave, each value within the bounds above, in
 * as many values as they like, stops there with an error instead of
 * growing RocksDB's memory until an allocation fails (it aborted the host
 * at ~1 GB).  A bucket of full-size receipts writes ~1 MB. */
#define RETAPE_BATCH_BYTES_MAX ((size_t)256 << 20)
/* lua_kv.c: raises when the batch holds more than RETAPE_BATCH_BYTES_MAX. */
void retape_lua_check_batch_size(lua_State *L, const retape_kv_batch *batch);
int luaopen_retape_sandboxcore(lua_State *L);
/* lua-cjson's safe variant (its header declares only luaopen_cjson). */
int luaopen_cjson_safe(lua_State *L);
int luaopen_retape_http(lua_State *L);
int luaopen_retape_pool(lua_State *L);
/* lua_pack.c: the value at idx (retape.pack's encode; at most max_values
 * values, SIZE_MAX: no bound), and the fields `names` (a list at
 * names_idx) of the table at t_idx as an object (its pick; at most
 * RETAPE_KEPT_VALUES_MAX values), appended to w.  Raise as pack.encode;
 * the stack is left as it was. */
typedef struct pack_writer pack_writer;
void retape_lua_pack_value(lua_State *L, pack_writer *w, int idx, size_t max_values);
void retape_lua_pack_pick(lua_State *L, pack_writer *w, int t_idx, int names_idx);
/* lua_kv.c: pushes a closed store object; the caller puts a retape_kv in the
 * returned slot and the object owns it from then on. */
retape_kv **retape_lua_kv_newbox(lua_State *L);
/* host.c: the one protected call from C into Lua (message handler with
 * traceback); 0, or -1 with a malloc'd message in *errptr.  Never raises. */
int retape_lua_docall(lua_State *L, int nargs, int nresults, char **errptr);
/* host.c: the one factory of worker Lua states (threaded replay, server):
 * a host with the Lua layer of lua_dir in which require(module).init(...)
 * ran, push_args(L, ud) pushing its arguments and returning their count;
 * the handler it returned is at *handler_ref in the registry.  NULL +
 * *errptr on failure.  Never raises. */
retape_host *retape_lua_worker_new(const char *lua_dir, const char *module, int (*push_args)(lua_State *L, void *ud),
                                   void *ud, int *handler_ref, char **errptr);
/* host.c: the override directory of L's Lua layer (NULL = embedded), for
 * states made on other threads; caller frees. */
char *retape_lua_layer_dir(lua_State *L);
/* lua_source.c: a receipt as a row table (fs: field set index or 0; decoder:
 * index of a cjson.safe decode or 0), the cursor at idx, and a payload
 * decoder configured as the cursor's. */
void retape_lua_push_row(lua_State *L, const retape_receipt *r, int fs, int decoder);
retape_cursor *retape_lua_check_cursor(lua_State *L, int idx);
/* lua_source.c: decodes a row fetched undecoded (cur:fetch(n, false)) per
 * the field set at fs, setting row.payload or row.error as a fetch with fs
 * would; rows already decoded or bad are left alone.  Raises only on a
 * memory error. */
void retape_lua_decode_row(lua_State *L, int row, int fs);
void retape_lua_push_payload_decoder(lua_State *L);
/* lua_decode.c, after a successful decode: 1 if the payload text has no
 * number that overflows a double (1e400), else 0 with a message naming the
 * field, the token and its byte offset pushed.  After a failed one, with
 * cjson's message on top: names the field when cjson stopped at NaN,
 * Infinity or hex.  Both raise only on out of memory. */
int retape_payload_numbers_ok(lua_State *L, const char *s, size_t len);
void retape_payload_explain(lua_State *L, const char *s, size_t len);
/* lua_kv.c: the open store of the retape.kv object at idx (raises otherwise). */
retape_kv *retape_lua_check_kv(lua_State *L, int idx);
/* lua_kv.c: the batch of the retape.kv batch object at idx (raises otherwise). */
retape_kv_batch *retape_lua_check_batch(lua_State *L, int idx);
/* Puts every engine module (and cjson) into package.preload. */
void retape_preload_modules(lua_State *L);

#endif
