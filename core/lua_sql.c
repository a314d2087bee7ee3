/*
 * lua_sql.c — `require "retape.sql"`: a small read-write SQLite handle for
 * the Lua layer (the ledger sync, views over a ledger, scripts).  SQLite is
 * the subsystem; this file only binds it, so there is no C file beside it.
 *
 *   local db = assert(sql.open("ledger.db"))
 *   db:exec("CREATE TABLE IF NOT EXISTS t(a, b)")
 *   local ins <close> = db:prepare("INSERT INTO t VALUES(?, ?)")
 *   ins:run(1, "x")
 *   for _, row in ipairs(db:rows("SELECT a, b FROM t WHERE a > ?", 0)) do ... end
 *   db:close()
 *
 * Only bound parameters reach SQL text through prepare/rows; exec is for
 * fixed statements (DDL, BEGIN/COMMIT).  Errors raise with SQLite's message
 * and the file name.
 */
#include "lua_common.h"

#include <sqlite3.h>
#include <string.h>

#define DB_MT "retape.sql.db"
#define STMT_MT "retape.sql.stmt"

typedef struct db_box { sqlite3 *db; char *path; } db_box;
typedef struct stmt_box { sqlite3_stmt *stmt; } stmt_box;

/* The open database at idx; raises if it was closed. */
static sqlite3 *to_db(lua_State *L, int idx)
{
    db_box *box = luaL_checkudata(L, idx, DB_MT);
    if (!box->db)
        luaL_error(L, "attempt to use a closed database");
    return box->db;
}

/* The live statement at idx; raises if it was finalized. */
static sqlite3_stmt *to_stmt(lua_State *L, int idx)
{
    stmt_box *box = luaL_checkudata(L, idx, STMT_MT);
    if (!box->stmt)
        luaL_error(L, "attempt to use a finalized statement");
    return box->stmt;
}

/* Raises "FILE: message" for the database at idx (1). */
static int raise_db(lua_State *L, sqlite3 *db)
{
    db_box *box = luaL_checkudata(L, 1, DB_MT);
    return luaL_error(L, "%s: %s", box->path ? box->path : "sqlite", sqlite3_errmsg(db));
}

/* sql.open(path) -> db | nil, message.  Creates the file if needed. */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    db_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->db = NULL;
    box->path = NULL;
    luaL_setmetatable(L, DB_MT);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot open: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return 2;
    }
    sqlite3_busy_timeout(db, 5000);
    box->db = db;
    box->path = sqlite3_mprintf("%s", path);
    return 1;
}

/* db:close(); also __gc/__close.  Safe to call twice. */
static int l_close(lua_State *L)
{
    db_box *box = luaL_checkudata(L, 1, DB_MT);
    if (box->db)
        sqlite3_close_v2(box->db); /* statements still open keep it alive until finalized */
    box->db = NULL;
    sqlite3_free(box->path);
    box->path = NULL;
    return 0;
}

/* db:exec(sql) -> true; raises on error.  For fixed statements only. */
static int l_exec(lua_State *L)
{
    sqlite3 *db = to_db(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return raise_db(L, db);
    lua_pushboolean(L, 1);
    return 1;
}

/* Binds arguments first..top to the statement (nil, boolean, integer,
 * float, string).  Raises on other types or a count mismatch. */
static void bind_args(lua_State *L, sqlite3_stmt *st, int first)
{
    int n = lua_gettop(L) - first + 1;
    if (n != sqlite3_bind_parameter_count(st))
        luaL_error(L, "statement takes %d parameters, got %d", sqlite3_bind_parameter_count(st), n);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (int i = 0; i < n; i++) {
        int idx = first + i, rc;
        switch (lua_type(L, idx)) {
        case LUA_TNIL: rc = sqlite3_bind_null(st, i + 1); break;
        case LUA_TBOOLEAN: rc = sqlite3_bind_int(st, i + 1, lua_toboolean(L, idx)); break;
        case LUA_TNUMBER:
            rc = lua_isinteger(L, idx) ? sqlite3_bind_int64(st, i + 1, lua_tointeger(L, idx))
                                       : sqlite3_bind_double(st, i + 1, lua_tonumber(L, idx));
            break;
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, idx, &len);
            rc = sqlite3_bind_text(st, i + 1, s, (int)len, SQLITE_TRANSIENT);
            break;
        }
        default:
            luaL_error(L, "parameter %d: cannot bind a %s", i + 1, luaL_typename(L, idx));
            return;
        }
        if (rc != SQLITE_OK)
            luaL_error(L, "parameter %d: %s", i + 1, sqlite3_errstr(rc));
    }
}

/* Pushes column c of the current row as integer, float, nil or string. */
static void push_column(lua_State *L, sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, c)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, c)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default:
        lua_pushlstring(L, (const char *)sqlite3_column_text(st, c), (size_t)sqlite3_column_bytes(st, c));
    }
}

/* db:prepare(sql) -> stmt; raises on a syntax error. */
static int l_prepare(lua_State *L)
{
    sqlite3 *db = to_db(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    stmt_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->stmt = NULL;
    luaL_setmetatable(L, STMT_MT);
    lua_pushvalue(L, 1); /* the statement keeps its database alive */
    lua_setiuservalue(L, -2, 1);
    if (sqlite3_prepare_v2(db, sql, -1, &box->stmt, NULL) != SQLITE_OK)
        return raise_db(L, db);
    return 1;
}

/* stmt:run(...) -> number of rows changed.  Binds, steps to the end, resets. */
static int l_run(lua_State *L)
{
    sqlite3_stmt *st = to_stmt(L, 1);
    bind_args(L, st, 2);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3 *db = sqlite3_db_handle(st);
    if (rc != SQLITE_DONE) {
        const char *msg = lua_pushstring(L, sqlite3_errmsg(db));
        sqlite3_reset(st);
        return luaL_error(L, "%s", msg);
    }
    sqlite3_reset(st);
    lua_pushinteger(L, sqlite3_changes(db));
    return 1;
}

/* Steps st and collects every row as {column = value} into a new array. */
static int collect_rows(lua_State *L, sqlite3_stmt *st)
{
    lua_newtable(L);
    int n = 0, rc, cols = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        lua_createtable(L, 0, cols);
        for (int c = 0; c < cols; c++) {
            push_column(L, st, c);
            lua_setfield(L, -2, sqlite3_column_name(st, c));
        }
        lua_rawseti(L, -2, ++n);
    }
    return rc;
}

/* db:rows(sql, ...) -> array of rows ({column = value}); raises on error. */
static int l_rows(lua_State *L)
{
    sqlite3 *db = to_db(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    stmt_box *box = lua_newuserdatauv(L, sizeof *box, 0); /* finalized by GC on a raise */
    box->stmt = NULL;
    luaL_setmetatable(L, STMT_MT);
    /* sql stays on the stack until prepared: a string made for this call
     * (a concatenation) is anchored nowhere else, and the allocations above
     * may run the collector */
    if (sqlite3_prepare_v2(db, sql, -1, &box->stmt, NULL) != SQLITE_OK)
        return raise_db(L, db);
    lua_replace(L, 2); /* the statement takes its place: db at 1, it at 2, args from 3 */
    bind_args(L, box->stmt, 3);
    int rc = collect_rows(L, box->stmt);
    if (rc != SQLITE_DONE)
        return raise_db(L, db);
    sqlite3_finalize(box->stmt);
    box->stmt = NULL;
    return 1;
}

/* stmt:finalize(); also __gc/__close.  Safe to call twice. */
static int l_finalize(lua_State *L)
{
    stmt_box *box = luaL_checkudata(L, 1, STMT_MT);
    sqlite3_finalize(box->stmt);
    box->stmt = NULL;
    return 0;
}

int luaopen_retape_sql(lua_State *L)
{
    static const luaL_Reg db_methods[] = {
        {"exec", l_exec}, {"prepare", l_prepare}, {"rows", l_rows}, {"close", l_close}, {NULL, NULL},
    };
    static const luaL_Reg stmt_methods[] = {{"run", l_run}, {"finalize", l_finalize}, {NULL, NULL}};
    new_class(L, DB_MT, db_methods, l_close);
    new_class(L, STMT_MT, stmt_methods, l_finalize);
    static const luaL_Reg fns[] = {{"open", l_open}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
