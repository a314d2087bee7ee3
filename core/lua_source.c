/*
 * lua_source.c — Lua bridge of source.c: `require "retape.source"`.
 *
 *   local src = assert(source.open("receipts.db"))
 *   for _, b in ipairs(src:buckets(scope)) do
 *     local <close> cur = src:cursor(b.bucket, scope)
 *     for _, row in ipairs(cur:fetch(500)) do ... end
 *   end
 *   local lists, rows, more = src:list_parts(bucket, scope, 2)  -- a packed list per part
 *   local <close> pc = other_src:rows_cursor(lists[1])            -- part 1's rows, each with `index`
 *
 * Payloads are decoded here with cjson.safe, so a malformed one becomes a
 * row with an `error` field (receipt id and byte offset) instead of a raise:
 * the replay decides what to do with it.
 */
#include "lua_common.h"

#include <lua-cjson.h>

#include "decode.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCE_MT "retape.source"
#define CURSOR_MT "retape.cursor"

typedef struct source_box { retape_source *src; } source_box;
typedef struct cursor_box { retape_cursor *cur; } cursor_box;

/* Returns the open source at idx; raises if it was closed. */
static retape_source *to_source(lua_State *L, int idx)
{
    source_box *box = luaL_checkudata(L, idx, SOURCE_MT);
    if (!box->src)
        luaL_error(L, "attempt to use a closed receipts source");
    return box->src;
}

static retape_cursor *to_cursor(lua_State *L, int idx)
{
    cursor_box *box = luaL_checkudata(L, idx, CURSOR_MT);
    if (!box->cur)
        luaL_error(L, "attempt to use a closed cursor");
    return box->cur;
}

/* source.open(path) -> source | nil, message */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    source_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->src = NULL; /* created closed, then acquired */
    luaL_setmetatable(L, SOURCE_MT);
    char *err = NULL;
    box->src = retape_source_open(path, &err);
    if (!box->src)
        return push_failure(L, err);
    return 1;
}

static int l_source_close(lua_State *L)
{
    source_box *box = luaL_checkudata(L, 1, SOURCE_MT);
    retape_source_close(box->src);
    box->src = NULL;
    return 0;
}

/* Reads a scope table at idx into *scope.  Every string stays anchored by
 * the scope table (an argument, so alive for the whole call); the pointer
 * array for tickers is a userdata left on the stack.  The subsystem copies
 * what it keeps, so nothing needs to outlive the call. */
static void check_scope(lua_State *L, int idx, retape_scope *scope)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    memset(scope, 0, sizeof *scope);
    scope->from_bucket = opt_int_field(L, idx, "from", INT64_MIN);
    scope->to_bucket = opt_int_field(L, idx, "to", INT64_MAX);
    lua_getfield(L, idx, "script_version");
    if (lua_type(L, -1) == LUA_TSTRING)
        scope->script_version = lua_tostring(L, -1);
    else if (lua_toboolean(L, -1))
        luaL_error(L, "scope.script_version must be a string, or nil/false for no filter");
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "tickers") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "scope.tickers must be a list of tickers or nil");
    size_t n = (size_t)luaL_len(L, -1);
    const char **list = lua_newuserdatauv(L, (n ? n : 1) * sizeof *list, 0);
    for (size_t i = 0; i < n; i++) {
        if (lua_geti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
            luaL_error(L, "scope.tickers[%d] is not a string", (int)i + 1);
        list[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    scope->tickers = list;
    scope->n_tickers = n;
}

/* src:snapshot(hold) -> true | nil, message: hold (or release) one
 * consistent view of the receipts for every read in between (holds nest). */
static int l_snapshot(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    char *err = NULL;
    if (retape_source_snapshot(src, lua_toboolean(L, 2), &err) != 0)
        return push_failure(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* src:holding() -> whether a snapshot is held (src:snapshot(true) would
 * nest in it and read what it began with) */
static int l_holding(lua_State *L)
{
    lua_pushboolean(L, retape_source_holding(to_source(L, 1)));
    return 1;
}

/* src:file_id() -> dev, ino of the receipts file it has open (as fs.stat
 * gives them) | nothing (not known) */
static int l_file_id(lua_State *L)
{
    int64_t dev, ino;
    if (!retape_source_file_id(to_source(L, 1), &dev, &ino))
        return 0;
    lua_pushinteger(L, (lua_Integer)dev);
    lua_pushinteger(L, (lua_Integer)ino);
    return 2;
}

/* src:busy_timeout(ms): how long its reads wait for a writer's lock (0:
 * they fail at once; 5000 unless told) */
static int l_busy_timeout(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    lua_Integer ms = luaL_checkinteger(L, 2);
    luaL_argcheck(L, ms >= 0 && ms <= 3600000, 2, "must be 0..3600000 ms");
    retape_source_busy_timeout(src, (int)ms);
    return 0;
}

/* src:last_rowid() -> rowid | nil, message: the last rowid of the receipts
 * (0: none), in the held snapshot if any. */
static int l_last_rowid(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    char *err = NULL;
    int64_t rowid;
    if (retape_source_last_rowid(src, &rowid, &err) != 0)
        return push_failure(L, err);
    lua_pushinteger(L, (lua_Integer)rowid);
    return 1;
}

typedef struct bucket_listing {
    const int64_t *buckets, *counts;
    size_t n;
} bucket_listing;

/* Protected: copies a bucket listing (lightuserdata 1) into a new userdata
 * of 2n int64 (buckets, then counts).  Raises on allocation failure. */
static int copy_listing(lua_State *L)
{
    const bucket_listing *l = lua_touserdata(L, 1);
    int64_t *copy = lua_newuserdatauv(L, (l->n ? 2 * l->n : 1) * sizeof *copy, 0);
    if (l->n > 0) { /* an empty listing may come back as NULL arrays */
        memcpy(copy, l->buckets, l->n * sizeof *copy);
        memcpy(copy + l->n, l->counts, l->n * sizeof *copy);
    }
    return 1;
}

/* src:buckets(scope) -> { {bucket=ms, count=n}, ... } | nil, message */
static int l_buckets(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    retape_scope scope;
    check_scope(L, 2, &scope);
    int64_t *buckets = NULL, *counts = NULL;
    size_t n = 0;
    char *err = NULL;
    if (retape_source_buckets(src, &scope, &buckets, &counts, &n, &err) != 0)
        return push_failure(L, err);
    /* Copy into a GC-owned array before building tables; the copy runs
     * protected and its error is raised only after the listing is freed. */
    bucket_listing listing = {buckets, counts, n};
    if (!lua_checkstack(L, 2)) {
        retape_free(buckets);
        retape_free(counts);
        return luaL_error(L, "stack overflow");
    }
    lua_pushcfunction(L, copy_listing);
    lua_pushlightuserdata(L, &listing);
    int status = lua_pcall(L, 1, 1, 0);
    retape_free(buckets);
    retape_free(counts);
    if (status != LUA_OK)
        return lua_error(L);
    const int64_t *copy = lua_touserdata(L, -1);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, copy[i]);
        lua_setfield(L, -2, "bucket");
        lua_pushinteger(L, copy[n + i]);
        lua_setfield(L, -2, "count");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* src:bad_rows(scope) -> count, first receipt id | nil, message: rows
 * that no listing shows (see retape_source_bad_rows) */
static int l_bad_rows(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    retape_scope scope;
    check_scope(L, 2, &scope);
    int64_t n = 0;
    char *first = NULL, *err = NULL;
    if (retape_source_bad_rows(src, &scope, &n, &first, &err) != 0)
        return push_failure(L, err);
    char id[256] = "";
    if (first)
        snprintf(id, sizeof id, "%s", first); /* freed before anything can raise */
    retape_free(first);
    lua_pushinteger(L, (lua_Integer)n);
    if (first)
        lua_pushstring(L, id);
    else
        lua_pushnil(L);
    return 2;
}

/* src:cursor(bucket, scope) -> cursor | nil, message */
static int l_cursor(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    lua_Integer bucket = luaL_checkinteger(L, 2);
    retape_scope scope;
    check_scope(L, 3, &scope);
    cursor_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->cur = NULL;
    luaL_setmetatable(L, CURSOR_MT);
    lua_pushvalue(L, 1); /* the cursor keeps its source alive (and open) */
    lua_setiuservalue(L, -2, 1);
    char *err = NULL;
    box->cur = retape_cursor_open(src, &scope, bucket, &err);
    if (!box->cur)
        return push_failure(L, err);
    return 1;
}

/* src:list_parts(bucket, scope, parts [, first [, stop]]) -> lists, rows,
 * more: the rows of the bucket's window [first, stop) in cursor order
 * (without their payloads), as one packed list per part (lists[1..parts]:
 * what src:rows_cursor reads), how many there are, and whether a row
 * remains at stop.  Raises on a read error. */
static int l_list_parts(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    lua_Integer bucket = luaL_checkinteger(L, 2);
    retape_scope scope;
    check_scope(L, 3, &scope);
    lua_Integer parts = luaL_checkinteger(L, 4);
    luaL_argcheck(L, parts >= 1 && parts <= 1024, 4, "parts must be 1..1024");
    lua_Integer first = luaL_optinteger(L, 5, 0), stop = luaL_optinteger(L, 6, -1);
    /* the listing belongs to a box until it is packed: a raise frees it */
    void **owned = retape_lua_push_owner(L);
    retape_listed_row *rows = NULL;
    size_t n = 0;
    int more = 0;
    char *err = NULL;
    if (retape_source_list_parts(src, &scope, bucket, (unsigned)parts, first, stop, &rows, &n, &more, &err) != 0)
        return raise_message(L, err);
    *owned = rows;
    lua_createtable(L, (int)parts, 0);
    for (lua_Integer k = 0; k < parts; k++) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (size_t i = 0; i < n; i++)
            if (rows[i].part == (uint32_t)k)
                luaL_addlstring(&b, (const char *)&rows[i], sizeof rows[i]);
        luaL_pushresult(&b);
        lua_rawseti(L, -2, k + 1);
    }
    retape_free(rows);
    *owned = NULL;
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushboolean(L, more);
    return 3;
}

/* src:rows_cursor(list) -> cursor | nil, message: the rows of one part's
 * list (src:list_parts of this receipts file) looked up by rowid, each
 * with `index`, its position in the bucket. */
static int l_rows_cursor(lua_State *L)
{
    retape_source *src = to_source(L, 1);
    size_t len;
    const char *list = luaL_checklstring(L, 2, &len);
    luaL_argcheck(L, len % sizeof(retape_listed_row) == 0, 2, "not a list of src:list_parts");
    cursor_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->cur = NULL;
    luaL_setmetatable(L, CURSOR_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    char *err = NULL;
    box->cur = retape_cursor_open_rows(src, list, len / sizeof(retape_listed_row), &err);
    if (!box->cur)
        return push_failure(L, err);
    return 1;
}

/* Decodes the payload on top of the stack with the cjson.safe decode
 * function at stack index `decoder` and stores `payload` (or `error`) into
 * the row table below it. */
static void decode_payload(lua_State *L, int decoder, const char *receipt_id)
{
    int row = lua_gettop(L) - 1;
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    lua_pushvalue(L, decoder);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 2); /* cjson.safe never raises on bad input */
    if (lua_istable(L, -2) && retape_payload_numbers_ok(L, text, len)) {
        lua_pop(L, 1);
        lua_setfield(L, row, "payload");
    } else {
        if (lua_istable(L, -3)) { /* decoded, but a number overflows: its message is on top */
            lua_replace(L, -3);
            lua_pop(L, 1);
        } else {
            if (!lua_isstring(L, -1)) {
                lua_pop(L, 1);
                lua_pushliteral(L, "payload is not a JSON object");
            }
            retape_payload_explain(L, text, len);
            lua_remove(L, -2);
        }
        lua_pushfstring(L, "receipt %s: malformed payload_json: %s", receipt_id, lua_tostring(L, -1));
        lua_setfield(L, row, "error");
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* the raw text */
}

/* Decodes the payload on top of the stack per the field set at fs
 * (retape.decode: declared fields now, the rest on first access) and stores
 * `payload` (or `error`, worded as decode_payload's) into the row below it. */
static void decode_selected(lua_State *L, int fs, const char *receipt_id)
{
    int row = lua_gettop(L) - 1;
    if (retape_decode_payload(L, fs, -1)) {
        lua_setfield(L, row, "payload");
    } else {
        lua_pushfstring(L, "receipt %s: malformed payload_json: %s", receipt_id, lua_tostring(L, -1));
        lua_setfield(L, row, "error");
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* the raw text */
}

/* Decodes the payload_json of the row table at row per the field set at fs
 * when the row holds neither `payload` nor `error` yet (fetched undecoded:
 * cur:fetch(n, false)), setting `payload` or `error` exactly as a fetch
 * with fs would; a row already decoded (or bad) is left alone.  Lets the
 * replay decode each payload just before its receipt runs, so that a
 * batch of decoded payloads never waits (and ages) in memory.  Owns
 * nothing; raises only on a memory error. */
void retape_lua_decode_row(lua_State *L, int row, int fs)
{
    row = lua_absindex(L, row);
    fs = lua_absindex(L, fs);
    int decoded = lua_getfield(L, row, "payload") != LUA_TNIL;
    int bad = lua_getfield(L, row, "error") != LUA_TNIL;
    lua_pop(L, 2);
    if (decoded || bad)
        return;
    if (lua_getfield(L, row, "payload_json") != LUA_TSTRING) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, row, "receipt_id"); /* anchored by the row */
    const char *receipt_id = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, row);
    lua_insert(L, -2); /* row, text: as decode_selected wants them */
    decode_selected(L, fs, receipt_id ? receipt_id : "?");
    lua_pop(L, 1);
}

/* Pushes one receipt as a row table (see cur:fetch), its payload decoded
 * per the field set at fs (0: none), else with the cjson.safe decode
 * function at `decoder` (0: not decoded).  Raises only on a memory error. */
void retape_lua_push_row(lua_State *L, const retape_receipt *r, int fs, int decoder)
{
    lua_createtable(L, 0, 8);
    /* lua_pushlstring: lua_pushstring would also look each (new) address
     * up in Lua's string cache first */
    lua_pushlstring(L, r->receipt_id, strlen(r->receipt_id));
    lua_setfield(L, -2, "receipt_id");
    lua_pushlstring(L, r->ticker, strlen(r->ticker));
    lua_setfield(L, -2, "ticker");
    lua_pushinteger(L, r->ts);
    lua_setfield(L, -2, "ts");
    lua_pushinteger(L, r->bucket_5m);
    lua_setfield(L, -2, "bucket_5m");
    if (r->script_version) {
        lua_pushlstring(L, r->script_version, strlen(r->script_version));
        lua_setfield(L, -2, "script_version");
    }
    if (r->ts == INT64_MIN) { /* a bad row (not written by import): reported, never decoded */
        lua_pushfstring(L, "receipt %s: field 'ts' is not an integer (ms)", r->receipt_id);
        lua_setfield(L, -2, "error");
    } else if (r->ts < RETAPE_TS_MIN || r->ts >= RETAPE_TS_MAX) {
        lua_pushfstring(L, "receipt %s: field 'ts' (%I) is outside the plausible range 2000-01-01..2100-01-01",
                        r->receipt_id, (lua_Integer)r->ts);
        lua_setfield(L, -2, "error");
    } else if (r->bucket_5m != r->ts - r->ts % 300000) {
        lua_pushfstring(L, "receipt %s: field 'bucket_5m' (%I) does not match ts %I", r->receipt_id,
                        (lua_Integer)r->bucket_5m, (lua_Integer)r->ts);
        lua_setfield(L, -2, "error");
    } else if (r->payload) {
        lua_pushlstring(L, r->payload, r->payload_len);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "payload_json");
        if (fs)
            decode_selected(L, fs, r->receipt_id);
        else if (decoder)
            decode_payload(L, decoder, r->receipt_id);
        else
            lua_pop(L, 1);
    } else {
        lua_pushfstring(L, "receipt %s: payload_json is NULL", r->receipt_id);
        lua_setfield(L, -2, "error");
    }
}

/* The cursor at idx (raises if it is not one, or closed). */
retape_cursor *retape_lua_check_cursor(lua_State *L, int idx)
{
    return to_cursor(L, idx);
}

/* cur:fetch(n [, decode=true | fieldset]) -> array of up to n rows (empty
 * at the end; a rows cursor's rows with `index`).  With a field set of
 * retape.decode, payloads are decoded selectively (decode.compile).
 * Row: {receipt_id, ticker, ts, bucket_5m, script_version, payload_json,
 *       payload (decoded table) | error (message)}. */
static int l_fetch(lua_State *L)
{
    retape_cursor *cur = to_cursor(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    int fs = luaL_testudata(L, 3, RETAPE_FIELDSET_MT) ? 3 : 0;
    int decode = fs || lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    luaL_argcheck(L, n > 0, 2, "batch size must be positive");
    lua_createtable(L, (int)(n < 1024 ? n : 1024), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        retape_receipt r;
        char *err = NULL;
        int rc = retape_cursor_next(cur, &r, &err);
        if (rc < 0)
            return raise_message(L, err);
        if (rc == 0)
            break;
        retape_lua_push_row(L, &r, fs, decode ? lua_upvalueindex(1) : 0);
        int64_t index = retape_cursor_index(cur);
        if (index >= 0) {
            lua_pushinteger(L, (lua_Integer)index);
            lua_setfield(L, -2, "index");
        }
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* Pushes the decode function of a private cjson.safe instance configured
 * for payloads (nesting capped at DECODE_MAX_DEPTH, no NaN/Infinity/hex).  Raises only on a
 * memory error. */
void retape_lua_push_payload_decoder(lua_State *L)
{
    luaopen_cjson_safe(L);
    /* Payloads nested deeper than this are malformed receipts (reported and
     * skipped): whatever the rules keep of them must still fit the store's
     * encoder (64 levels, with the record around it). */
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, DECODE_MAX_DEPTH);
    lua_call(L, 1, 0);
    /* NaN, Infinity and hex are not JSON: refused with cjson's offset
     * (retape_payload_numbers_ok names the field first). */
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
}

static int l_cursor_close(lua_State *L)
{
    cursor_box *box = luaL_checkudata(L, 1, CURSOR_MT);
    retape_cursor_close(box->cur);
    box->cur = NULL;
    return 0;
}

static int l_tostring_source(lua_State *L)
{
    source_box *box = luaL_checkudata(L, 1, SOURCE_MT);
    lua_pushstring(L, box->src ? "retape.source" : "retape.source (closed)");
    return 1;
}

int luaopen_retape_source(lua_State *L)
{
    static const luaL_Reg source_methods[] = {
        {"buckets", l_buckets}, {"bad_rows", l_bad_rows}, {"cursor", l_cursor},
        {"list_parts", l_list_parts}, {"rows_cursor", l_rows_cursor}, {"snapshot", l_snapshot},
        {"holding", l_holding}, {"file_id", l_file_id},
        {"last_rowid", l_last_rowid}, {"busy_timeout", l_busy_timeout}, {"close", l_source_close},
        {NULL, NULL},
    };
    new_class(L, SOURCE_MT, source_methods, l_source_close);
    luaL_getmetatable(L, SOURCE_MT);
    lua_pushcfunction(L, l_tostring_source);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newmetatable(L, CURSOR_MT);
    lua_createtable(L, 0, 2);
    retape_lua_push_payload_decoder(L);
    lua_pushcclosure(L, l_fetch, 1);
    lua_setfield(L, -2, "fetch");
    lua_pushcfunction(L, l_cursor_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_cursor_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_cursor_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);

    static const luaL_Reg fns[] = {{"open", l_open}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
