/*
 * lua_fs.c — Lua bridge of fs.c: `require "retape.fs"`.
 *
 *   local dir = assert(fs.tempdir("retape-test"))
 *   for _, name in ipairs(assert(fs.list(dir))) do ... end
 *   assert(fs.remove_tree(dir))
 *
 * Environmental failures return nil, message (the liolib convention).
 */
#include "lua_common.h"

#include <stdlib.h>
#include <string.h>

/* fs.tempdir([prefix [, parent]]) -> path | nil, message */
static int l_tempdir(lua_State *L)
{
    const char *prefix = luaL_optstring(L, 1, "retape"), *parent = luaL_optstring(L, 2, NULL);
    /* owned by a box while it is pushed: a memory error cannot leak it */
    char **owned = (char **)retape_lua_push_owner(L);
    char *err = NULL;
    if (!(*owned = retape_fs_tempdir(parent, prefix, &err)))
        return push_failure(L, err);
    lua_pushstring(L, *owned);
    retape_free(*owned);
    *owned = NULL;
    return 1;
}

/* The list of names owned by a userdata while it is turned into a table. */
typedef struct list_box { char **names; size_t count; } list_box;

static int list_free(lua_State *L)
{
    list_box *b = lua_touserdata(L, 1);
    retape_fs_free_list(b->names, b->count);
    b->names = NULL;
    b->count = 0;
    return 0;
}

/* fs.list(dir) -> { name, ... } sorted | nil, message */
static int l_list(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    list_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->names = NULL;
    b->count = 0;
    lua_newtable(L);
    lua_pushcfunction(L, list_free);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    char *err = NULL;
    if (retape_fs_list(dir, &b->names, &b->count, &err) != 0)
        return push_failure(L, err);
    lua_createtable(L, (int)b->count, 0);
    for (size_t i = 0; i < b->count; i++) {
        lua_pushstring(L, b->names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* fs.remove_tree(path) -> true | nil, message */
static int l_remove_tree(lua_State *L)
{
    char *err = NULL;
    if (retape_fs_remove_tree(luaL_checkstring(L, 1), &err) != 0)
        return push_failure(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* fs.mkdirs(path) -> true | nil, message */
static int l_mkdirs(lua_State *L)
{
    char *err = NULL;
    if (retape_fs_mkdirs(luaL_checkstring(L, 1), &err) != 0)
        return push_failure(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* fs.kind(path) -> "dir" | "file" | nil */
static int l_kind(lua_State *L)
{
    int k = retape_fs_kind(luaL_checkstring(L, 1));
    if (k == 0)
        lua_pushnil(L);
    else
        lua_pushstring(L, k == 2 ? "dir" : "file");
    return 1;
}

/* fs.stat(path) -> {dev, ino, size, mtime_ns, ctime_ns} | false (no such
 * file) | nil, message.  Times in nanoseconds since the epoch. */
static int l_stat(lua_State *L)
{
    retape_fs_stat st;
    char *err = NULL;
    int rc = retape_fs_stat_of(luaL_checkstring(L, 1), &st, &err);
    if (rc < 0)
        return push_failure(L, err);
    if (rc > 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, st.dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, st.ino);
    lua_setfield(L, -2, "ino");
    lua_pushinteger(L, st.size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, st.mtime_ns);
    lua_setfield(L, -2, "mtime_ns");
    lua_pushinteger(L, st.ctime_ns);
    lua_setfield(L, -2, "ctime_ns");
    return 1;
}

/* fs.absolute(path) -> absolute path (real path when it exists) | nil, message */
static int l_absolute(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    /* owned by a box while it is pushed: a memory error cannot leak it */
    char **owned = (char **)retape_lua_push_owner(L);
    char *err = NULL;
    if (!(*owned = retape_fs_absolute(path, &err)))
        return push_failure(L, err);
    lua_pushstring(L, *owned);
    retape_free(*owned);
    *owned = NULL;
    return 1;
}

int luaopen_retape_fs(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"tempdir", l_tempdir}, {"list", l_list}, {"remove_tree", l_remove_tree},
        {"mkdirs", l_mkdirs}, {"kind", l_kind}, {"stat", l_stat}, {"absolute", l_absolute}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
