/*
 * lua_ingest.c — Lua bridge of ingest.c: `require "retape.ingest"`.
 *
 *   for lineno, line in ingest.lines(path [, max_line]) do ... end   -- plain or .gz
 *   for line, sql, had_nul in ingest.statements(path) do ... end  -- SQL dump ("-" = stdin)
 *   (line / sql false, why: skipped over the cap, or an incomplete statement)
 *   local step, reader = ingest.lines(path); reader:problem()  -- a damaged .gz, found first
 *   local w = assert(ingest.writer(db_path))
 *   w:insert{receipt_id=…, ticker=…, ts=…, …}  -> true (inserted) | false (duplicate)
 *   w:stage(sql) -> { {receipt_id=…, ts="…", …}, … }  | nil, message
 *   w:commit()  -- what is pending, now (raises on an SQLite error)
 *   w:wal()     -- WAL mode, synchronous=NORMAL, no checkpoint on commit (raises on an SQLite error)
 *   w:close()
 *   ingest.fnv1a32(text) -> "1d0f82bc";  ingest.json_span(text, key) -> raw, offset | nil[, "malformed"]
 *   ingest.json_invalid_at(text) -> offset, why | nil
 */
#include "ingest.h"
#include "lua_common.h"

#include <stdio.h>
#include <string.h>

#define WRITER_MT "retape.writer"
#define LINES_MT "retape.lines"

typedef struct writer_box { retape_writer *w; } writer_box;
typedef struct lines_box { retape_lines *lr; int sql; size_t max_line; } lines_box;

static retape_writer *to_writer(lua_State *L, int idx)
{
    writer_box *box = luaL_checkudata(L, idx, WRITER_MT);
    if (!box->w)
        luaL_error(L, "attempt to use a closed writer");
    return box->w;
}

/* ingest.writer(path [, commit_every]) -> writer | nil, message */
static int l_writer(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int commit_every = (int)luaL_optinteger(L, 2, 5000);
    writer_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->w = NULL;
    luaL_setmetatable(L, WRITER_MT);
    char *err = NULL;
    box->w = retape_writer_open(path, commit_every, &err);
    if (!box->w)
        return push_failure(L, err);
    return 1;
}

/* Reads a required string field; raises naming it. */
static const char *need_string(lua_State *L, int idx, const char *name, size_t *len)
{
    lua_getfield(L, idx, name);
    const char *s = lua_tolstring(L, -1, len);
    if (!s)
        luaL_error(L, "receipt field '%s' must be a string", name);
    lua_pop(L, 1); /* anchored by the row table */
    return s;
}

static int64_t need_integer(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok)
        luaL_error(L, "receipt field '%s' must be an integer", name);
    lua_pop(L, 1);
    return v;
}

/* w:insert(row) -> true (inserted) | false (duplicate); raises on an SQLite error */
static int l_insert(lua_State *L)
{
    retape_writer *w = to_writer(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    retape_receipt_row row;
    memset(&row, 0, sizeof row);
    row.receipt_id = need_string(L, 2, "receipt_id", NULL);
    row.ticker = need_string(L, 2, "ticker", NULL);
    row.payload_hash = need_string(L, 2, "payload_hash", NULL);
    row.ts = need_integer(L, 2, "ts");
    row.bucket_5m = need_integer(L, 2, "bucket_5m");
    row.received_ts = need_integer(L, 2, "received_ts");
    lua_getfield(L, 2, "script_version");
    row.script_version = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "payload_json");
    row.payload_json = lua_tolstring(L, -1, &row.payload_len);
    lua_pop(L, 1);
    char *err = NULL;
    int rc = retape_writer_insert(w, &row, &err);
    if (rc < 0)
        return raise_message(L, err);
    lua_pushboolean(L, rc);
    return 1;
}

/* w:commit() -> true; raises on an SQLite error */
static int l_commit(lua_State *L)
{
    char *err = NULL;
    if (retape_writer_commit(to_writer(L, 1), &err) != 0)
        return raise_message(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* w:wal() -> true; raises on an SQLite error */
static int l_wal(lua_State *L)
{
    char *err = NULL;
    if (retape_writer_wal(to_writer(L, 1), &err) != 0)
        return raise_message(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* w:close() -> true | nil, message */
static int l_writer_close(lua_State *L)
{
    writer_box *box = luaL_checkudata(L, 1, WRITER_MT);
    char *err = NULL;
    int rc = retape_writer_close(box->w, &err);
    box->w = NULL;
    if (rc != 0)
        return push_failure(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static const char *const staged_names[8] = {
    "receipt_id", "ticker", "ts", "bucket_5m", "received_ts",
    "payload_hash", "script_version", "payload_json",
};

/* Protected body of the staging callback: appends one row to the table at 2. */
static int push_staged_row(lua_State *L)
{
    const retape_staged_row *row = lua_touserdata(L, 1);
    lua_createtable(L, 0, 8);
    for (int i = 0; i < 8; i++) {
        if (!row->col[i])
            continue;
        lua_pushlstring(L, row->col[i], row->len[i]);
        lua_setfield(L, -2, staged_names[i]);
    }
    lua_rawseti(L, 2, (lua_Integer)luaL_len(L, 2) + 1);
    return 0;
}

/* Staging callback: builds the Lua row under lua_pcall, so an out-of-memory
 * error stops the walk (C cleans up) instead of unwinding through SQLite. */
static int stage_row(const retape_staged_row *row, void *ud)
{
    lua_State *L = ud;
    lua_pushcfunction(L, push_staged_row);
    lua_pushlightuserdata(L, (void *)row);
    lua_pushvalue(L, -3); /* the result table */
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_setfield(L, LUA_REGISTRYINDEX, "retape.ingest.stage_error");
        return 1;
    }
    return 0;
}

/* w:stage(sql) -> rows | nil, message.  Runs one dump statement against the
 * staging table and returns what it inserted, as strings. */
static int l_stage(lua_State *L)
{
    retape_writer *w = to_writer(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    lua_newtable(L);
    char *err = NULL;
    int n = retape_writer_stage_sql(w, sql, stage_row, L, &err);
    if (n == -2) {
        lua_getfield(L, LUA_REGISTRYINDEX, "retape.ingest.stage_error");
        return lua_error(L);
    }
    if (n < 0)
        return push_failure(L, err);
    return 1;
}

/* Step function shared by lines() and statements(): (lineno, text[, had_nul])
 * or (lineno, false, why) for a line or statement skipped (over the cap,
 * incomplete when the next one starts).  Raises on a read error (a
 * damaged gzip member, trailing garbage...), after closing the reader. */
static int lines_step(lua_State *L)
{
    lines_box *box = luaL_checkudata(L, 1, LINES_MT);
    if (!box->lr)
        return 0;
    char *err = NULL;
    int rc;
    if (box->sql) {
        const char *sql;
        size_t sql_len;
        long first;
        rc = retape_sql_next(box->lr, &sql, &sql_len, &first, &err);
        if (rc == 3) {
            lua_pushinteger(L, first);
            lua_pushboolean(L, 0);
            lua_pushstring(L, err ? err : "statement rejected");
            retape_free(err);
            return 3;
        }
        if (rc >= 1) {
            lua_pushinteger(L, first);
            lua_pushlstring(L, sql, sql_len);
            lua_pushboolean(L, rc == 2); /* the statement held NUL bytes */
            return 3;
        }
    } else {
        const char *line;
        size_t len;
        long lineno;
        rc = retape_lines_next(box->lr, &line, &len, &lineno, &err);
        if (rc == 1) {
            lua_pushinteger(L, lineno);
            lua_pushlstring(L, line, len);
            return 2;
        }
        if (rc == 2) {
            lua_pushinteger(L, lineno);
            lua_pushboolean(L, 0);
            lua_pushfstring(L, "the line is longer than %I bytes (the line cap, --max-line-bytes): skipped",
                            (lua_Integer)box->max_line);
            return 3;
        }
    }
    retape_lines_close(box->lr);
    box->lr = NULL;
    if (rc < 0)
        return raise_message(L, err);
    return 0;
}

static int lines_close(lua_State *L)
{
    lines_box *box = luaL_checkudata(L, 1, LINES_MT);
    retape_lines_close(box->lr);
    box->lr = NULL;
    return 0;
}

/* reader:problem() -> what the check of a gzip file found | nil (see
 * retape_lines_problem): to be reported before any line is read. */
static int lines_problem(lua_State *L)
{
    lines_box *box = luaL_checkudata(L, 1, LINES_MT);
    const char *p = box->lr ? retape_lines_problem(box->lr) : NULL;
    if (p)
        lua_pushstring(L, p);
    else
        lua_pushnil(L);
    return 1;
}

/* Opens a reader and returns the generic-for quadruple, or nil, message.
 * Argument 2: the line cap in bytes (nil: the default). */
static int open_reader(lua_State *L, int sql)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max_line = luaL_optinteger(L, 2, (lua_Integer)RETAPE_MAX_LINE_DEFAULT);
    luaL_argcheck(L, max_line > 0, 2, "the line cap must be positive");
    lua_pushcfunction(L, lines_step);
    lines_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->lr = NULL;
    box->sql = sql;
    box->max_line = (size_t)max_line;
    luaL_setmetatable(L, LINES_MT);
    char *err = NULL;
    box->lr = retape_lines_open(path, (size_t)max_line, !sql, &err);
    if (!box->lr)
        return push_failure(L, err);
    lua_pushnil(L);
    lua_pushvalue(L, -2);
    return 4;
}

/* ingest.lines(path [, max_line]) -> for lineno, line[, why] in ...
 * (blank lines are skipped; line is false for a line over the cap) */
static int l_lines(lua_State *L)
{
    return open_reader(L, 0);
}

/* ingest.statements(path [, max_line]) -> for first_line, sql, had_nul | false, why in ... */
static int l_statements(lua_State *L)
{
    return open_reader(L, 1);
}

/* ingest.fnv1a32(text) -> lower-case hex without padding, as the original */
static int l_fnv1a32(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    char hex[16];
    snprintf(hex, sizeof hex, "%x", retape_fnv1a32_utf16(text, len));
    lua_pushstring(L, hex);
    return 1;
}

/* ingest.json_invalid_at(text) -> byte offset where the text stops being
 * strict JSON (finite numbers, no repeated key), how | nil when it is one
 * valid JSON value */
static int l_json_invalid_at(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *why = NULL;
    size_t at = retape_json_invalid_at(text, len, &why);
    if (at == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)at);
    lua_pushstring(L, why ? why : "not strict JSON");
    return 2;
}

/* ingest.json_span(text, key) -> raw value text, 1-based byte offset | nil
 * | nil, "malformed" */
static int l_json_span(lua_State *L)
{
    size_t len, off, vlen;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *key = luaL_checkstring(L, 2);
    int rc = retape_json_value_span(text, len, key, &off, &vlen);
    if (rc == 1) {
        lua_pushlstring(L, text + off, vlen);
        lua_pushinteger(L, (lua_Integer)off + 1);
        return 2;
    }
    lua_pushnil(L);
    if (rc == 0)
        return 1;
    lua_pushliteral(L, "malformed");
    return 2;
}

int luaopen_retape_ingest(lua_State *L)
{
    static const luaL_Reg writer_methods[] = {
        {"insert", l_insert}, {"stage", l_stage}, {"commit", l_commit}, {"wal", l_wal}, {"close", l_writer_close}, {NULL, NULL},
    };
    new_class(L, WRITER_MT, writer_methods, l_writer_close);

    luaL_newmetatable(L, LINES_MT);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lines_problem);
    lua_setfield(L, -2, "problem");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lines_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lines_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);

    static const luaL_Reg fns[] = {
        {"writer", l_writer}, {"lines", l_lines}, {"statements", l_statements},
        {"fnv1a32", l_fnv1a32}, {"json_span", l_json_span}, {"json_invalid_at", l_json_invalid_at}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
