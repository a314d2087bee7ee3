/*
 * host.c — the Lua host: state creation, module search (embedded Lua layer
 * or a development override directory), the version handshake between core
 * and Lua layer, and the one protected call every entry into Lua goes
 * through (message handler with traceback, as lua.c's docall).
 */
#define _POSIX_C_SOURCE 200809L
#include "embedded.h"
#include "lua_common.h"
#include "sandbox.h"
#include "util.h"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The collector of every Lua state: generational (see setup_state). */
#define RETAPE_GC_MINOR 20 /* percent of heap growth between minor collections (Lua's default) */
#define RETAPE_GC_MAJOR 50 /* percent of growth over the last major one (Lua: 100) */

struct retape_host {
    lua_State *L;
    char *lua_dir; /* override directory, or NULL */
    retape_sandbox sandbox; /* the allocator's accounting and the rule limits */
};

/* Registry key of the layer searcher (retape.core.layer_loader uses it so
 * bundled rulesets never come from package.path or package.cpath). */
#define LAYER_SEARCHER_KEY "retape.layer_searcher"

/* Message handler: turns any error value into a string and appends a
 * traceback (lua.c's msghandler). */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The one door from C into Lua (declared in lua_common.h; the server's
 * states use it too): calls the function below its nargs arguments under
 * msghandler.  On error stores the message (with traceback) in *errptr
 * (caller frees) and returns -1; nresults are left on the stack on
 * success.  Never raises. */
int retape_lua_docall(lua_State *L, int nargs, int nresults, char **errptr)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (status != LUA_OK) {
        set_error(errptr, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* Module name "a.b" -> relative path "a/b.lua" (and "a/b/init.lua").
 * Returns 0, or -1 when the path does not fit in cap bytes (out is then
 * not a path to open). */
static int module_path(char *out, size_t cap, const char *dir, const char *name, int init)
{
    int w = snprintf(out, cap, "%s/", dir);
    if (w < 0 || (size_t)w >= cap)
        return -1;
    size_t n = (size_t)w;
    for (const char *c = name; *c; c++) {
        if (n + 1 >= cap)
            return -1;
        out[n++] = *c == '.' ? '/' : *c;
    }
    out[n] = '\0';
    const char *ext = init ? "/init.lua" : ".lua";
    if (n + strlen(ext) >= cap)
        return -1;
    memcpy(out + n, ext, strlen(ext) + 1);
    return 0;
}

/* package.searchers entry: the override directory first (if any), then the
 * Lua layer embedded at build time.  Chunks are named "@lua/..." (embedded)
 * or "@DIR/..." so every error carries file:line. */
static int search_layer(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *dir = lua_tostring(L, lua_upvalueindex(1));
    if (dir) {
        char path[4096];
        for (int init = 0; init < 2; init++) {
            if (module_path(path, sizeof path, dir, name, init) != 0)
                return luaL_error(L, "--lua-dir path too long for module '%s'", name);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            fclose(f);
            if (luaL_loadfilex(L, path, "t") != LUA_OK)
                return lua_error(L);
            lua_pushstring(L, path);
            return 2;
        }
    }
    const retape_embedded_file *m = retape_embedded_find(name);
    if (!m) {
        lua_pushfstring(L, "no module '%s' in the retape Lua layer", name);
        return 1;
    }
    char chunkname[512];
    snprintf(chunkname, sizeof chunkname, "@%s", m->path);
    /* the chunk compiled at build time, loaded ~8x faster than the text
     * is parsed (tools/embed.c); a Lua 5.4 built otherwise than the one
     * that compiled it (an embedder's) refuses it: then the text */
    if (luaL_loadbufferx(L, m->chunk, m->chunk_length, chunkname, "b") != LUA_OK) {
        lua_pop(L, 1);
        if (luaL_loadbufferx(L, m->source, m->length, chunkname, "t") != LUA_OK)
            return lua_error(L);
    }
    lua_pushstring(L, m->path);
    return 2;
}

/* Installs search_layer as the second searcher (after preload). */
static void install_searcher(lua_State *L, const char *dir)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    if (dir)
        lua_pushstring(L, dir);
    else
        lua_pushnil(L);
    lua_pushcclosure(L, search_layer, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LAYER_SEARCHER_KEY);
    for (lua_Integer i = (lua_Integer)luaL_len(L, -2) + 1; i > 2; i--) {
        lua_geti(L, -2, i - 1);
        lua_seti(L, -3, i);
    }
    lua_seti(L, -2, 2);
    lua_pop(L, 2);
}

/* The override directory of this state's Lua layer (the upvalue of the
 * searcher installed by install_searcher), so that states made for other
 * threads load the same layer; NULL = embedded.  Caller frees.  Never
 * raises (a failed copy gives NULL: the embedded layer). */
char *retape_lua_layer_dir(lua_State *L)
{
    char *dir = NULL;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    lua_geti(L, -1, 2);
    if (lua_iscfunction(L, -1) && lua_getupvalue(L, -1, 1)) {
        if (lua_type(L, -1) == LUA_TSTRING)
            dir = dup_string(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
    return dir;
}

/* type(v), with the nine names interned once (upvalues): the base
 * library's pushes the name with lua_pushstring, a string-cache lookup and
 * a strcmp at every call, and rules ask type() tens of times a receipt
 * (real days: 1.7 % of a replay's CPU).  The same results and errors. */
static int l_type(lua_State *L)
{
    int t = lua_type(L, 1);
    luaL_argcheck(L, t != LUA_TNONE, 1, "value expected");
    lua_pushvalue(L, lua_upvalueindex(t + 1));
    return 1;
}

/* Replaces the global type by l_type. */
static void install_type(lua_State *L)
{
    for (int t = 0; t < LUA_NUMTYPES; t++)
        lua_pushstring(L, lua_typename(L, t));
    lua_pushcclosure(L, l_type, LUA_NUMTYPES);
    lua_setglobal(L, "type");
}

/* Protected set-up (lua.c's pmain): libraries, modules, version check. */
static int setup_state(lua_State *L)
{
    const char *dir = lua_tostring(L, 1);
    luaL_checkversion(L);
    luaL_openlibs(L);
    install_type(L);
    /* A replay churns through receipts whose tables (decoded payload, row,
     * lanes) die young, a bucket or two later: the generational collector
     * frees them in minor collections instead of marking the whole heap
     * (real days: ~30 % less CPU than incremental at a 130 % pause); a major
     * collection at 50 % growth (Lua: 100 %) keeps a day of full-size bodies
     * at the incremental mode's peak RSS (~58 MB, make bench). */
    lua_gc(L, LUA_GCGEN, RETAPE_GC_MINOR, RETAPE_GC_MAJOR);
    retape_preload_modules(L);
    install_searcher(L, dir);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "retape.version");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "version");
    lua_getfield(L, -2, "lua_api");
    const char *version = lua_tostring(L, -2);
    lua_Integer api = lua_tointeger(L, -1);
    if (!version || strcmp(version, RETAPE_VERSION) != 0 || api != RETAPE_LUA_API)
        return luaL_error(L, "the Lua layer%s%s is version %s (Lua API %d) but the core is %s (Lua API %d)",
                          dir ? " in " : "", dir ? dir : "", version ? version : "?", (int)api,
                          RETAPE_VERSION, RETAPE_LUA_API);
    return 0;
}

/* Panic function (an error outside any protected call): print and abort,
 * as lauxlib's does. */
static int host_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "retape: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
    return 0;
}

/* Warning function: warnings are off (as luaL_newstate leaves them). */
static void host_warn(void *ud, const char *msg, int tocont)
{
    (void)ud, (void)msg, (void)tocont;
}

retape_host *retape_host_new(const retape_host_options *opts, char **errptr)
{
    retape_host *host = calloc(1, sizeof *host);
    if (!host) {
        set_error(errptr, "out of memory");
        return NULL;
    }
    const char *dir = opts && opts->lua_dir ? opts->lua_dir : getenv("RETAPE_LUA_DIR");
    if (dir && *dir)
        host->lua_dir = dup_string(dir);
    host->L = lua_newstate(retape_sandbox_alloc, &host->sandbox);
    if (host->L) {
        lua_atpanic(host->L, host_panic);
        lua_setwarnf(host->L, host_warn, NULL);
    }
    if (!host->L) {
        set_error(errptr, "cannot create a Lua state: out of memory");
        retape_host_free(host);
        return NULL;
    }
    lua_pushcfunction(host->L, setup_state);
    lua_pushstring(host->L, host->lua_dir);
    if (retape_lua_docall(host->L, 1, 0, errptr) != 0) {
        retape_host_free(host);
        return NULL;
    }
    return host;
}

/* What worker_init runs: the module, and the callback pushing init's arguments. */
typedef struct worker_setup {
    const char *module;
    int (*push_args)(lua_State *L, void *ud);
    void *ud;
} worker_setup;

/* Protected, in a new worker state: require(module).init(args...) -> the
 * handler, pushed as its registry reference. */
static int worker_init(lua_State *L)
{
    const worker_setup *ws = lua_touserdata(L, 1);
    lua_getglobal(L, "require");
    lua_pushstring(L, ws->module);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "init");
    int nargs = ws->push_args(L, ws->ud);
    lua_call(L, nargs, 1);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s.init returned a %s, not a handler function", ws->module, luaL_typename(L, -1));
    lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
    return 1;
}

/* The one factory of worker states (a threaded replay's parts, the server's
 * readers and writer; declared in lua_common.h): a new host with the Lua
 * layer of lua_dir (NULL = embedded) in which require(module).init(...)
 * runs protected; push_args(L, ud) pushes init's arguments (it may raise:
 * the error comes back as init's would) and returns their number.  Returns
 * the host, the handler init returned kept in its registry at *handler_ref;
 * or NULL and a malloc'd message in *errptr (with traceback).  Never raises. */
retape_host *retape_lua_worker_new(const char *lua_dir, const char *module, int (*push_args)(lua_State *L, void *ud),
                                   void *ud, int *handler_ref, char **errptr)
{
    retape_host_options ho = {.lua_dir = lua_dir};
    retape_host *host = retape_host_new(&ho, errptr);
    if (!host)
        return NULL;
    worker_setup ws = {module, push_args, ud};
    lua_pushcfunction(host->L, worker_init);
    lua_pushlightuserdata(host->L, &ws);
    if (retape_lua_docall(host->L, 1, 1, errptr) != 0) {
        retape_host_free(host);
        return NULL;
    }
    *handler_ref = (int)lua_tointeger(host->L, -1);
    lua_pop(host->L, 1);
    return host;
}

void retape_host_free(retape_host *host)
{
    if (!host)
        return;
    if (host->L)
        lua_close(host->L);
    retape_slab_release(&host->sandbox.slab);
    free(host->lua_dir);
    free(host);
}

lua_State *retape_host_lua(retape_host *host)
{
    return host->L;
}

/* Sets the global `arg` table as lua.c does: arg[0] = script, arg[1..]. */
static void set_arg_table(lua_State *L, int argc, char **argv)
{
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
}

int retape_host_run_file(retape_host *host, const char *path, int argc, char **argv, char **errptr)
{
    lua_State *L = host->L;
    set_arg_table(L, argc, argv);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        set_error(errptr, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    for (int i = 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    return retape_lua_docall(L, argc > 0 ? argc - 1 : 0, 0, errptr);
}

int retape_host_run_string(retape_host *host, const char *code, const char *name, char **errptr)
{
    lua_State *L = host->L;
    if (luaL_loadbufferx(L, code, strlen(code), name, "t") != LUA_OK) {
        set_error(errptr, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return retape_lua_docall(L, 0, 0, errptr);
}

int retape_host_run_cli(retape_host *host, int argc, char **argv, char **errptr)
{
    lua_State *L = host->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "retape.cli");
    if (retape_lua_docall(L, 1, 1, errptr) != 0)
        return 1;
    lua_getfield(L, -1, "main");
    lua_remove(L, -2);
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    if (retape_lua_docall(L, 1, 1, errptr) != 0)
        return 1;
    int status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (lua_toboolean(L, -1) ? 0 : 1);
    if (lua_isnil(L, -1))
        status = 0;
    lua_pop(L, 1);
    return status;
}

/* ---------------------------------------------------------------------------
 * retape_replay: the replay from C.  The parameters become a Lua table inside
 * the protected call (push_replay_params), so a memory error while building
 * it is reported like any other; the policy stays in Lua (retape.embed). */

/* Sets t[key] = value when value is not NULL (t at the top of the stack). */
static void set_string_field(lua_State *L, const char *key, const char *value)
{
    if (value) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

/* Protected: called with a light userdata (the params); returns what
 * require("retape.embed").replay(params_table) returns: the response table,
 * or nil and a message. */
static int replay_call(lua_State *L)
{
    const retape_replay_params *p = lua_touserdata(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "retape.embed");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "replay");
    lua_createtable(L, 0, 9);
    set_string_field(L, "db", p->db);
    set_string_field(L, "state", p->state);
    set_string_field(L, "date", p->date);
    set_string_field(L, "from", p->from);
    set_string_field(L, "to", p->to);
    set_string_field(L, "rules", p->rules);
    set_string_field(L, "ticker", p->tickers);
    lua_pushboolean(L, p->clean_slate);
    lua_setfield(L, -2, "clean_slate");
    lua_pushboolean(L, p->resume);
    lua_setfield(L, -2, "resume");
    if (p->threads > 0) {
        lua_pushinteger(L, p->threads);
        lua_setfield(L, -2, "threads");
    }
    lua_call(L, 1, 2);
    return 2;
}

/* Reads an integer field of the table at the top of the stack (0 if absent). */
static int64_t int_field(lua_State *L, const char *key)
{
    lua_getfield(L, -1, key);
    int64_t v = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : (int64_t)lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int retape_replay(retape_host *host, const retape_replay_params *params, retape_replay_result *out,
                  char **errptr)
{
    if (!host || !params || !params->db) {
        set_error(errptr, "retape_replay: a host and params with a receipts database (db) are required");
        return -1;
    }
    lua_State *L = host->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, replay_call);
    lua_pushlightuserdata(L, (void *)params);
    if (retape_lua_docall(L, 1, 2, errptr) != 0) {
        lua_settop(L, top);
        return -1;
    }
    if (!lua_istable(L, -2)) {
        set_error(errptr, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "retape_replay: no response");
        lua_settop(L, top);
        return -1;
    }
    lua_pop(L, 1);
    if (out) {
        out->rows = int_field(L, "rowsProcessed");
        out->trades = int_field(L, "tradesCreated");
        out->purged = int_field(L, "tradesPurged");
        out->errors = int_field(L, "errors");
        lua_getfield(L, -1, "hasMore");
        out->has_more = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    return 0;
}
