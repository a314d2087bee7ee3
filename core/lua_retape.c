/*
 * lua_retape.c — registers every engine module from one table, and the small
 * `retape.core` module (versions, process facts for the CLI).
 */
#define _POSIX_C_SOURCE 200809L
#include "embedded.h"
#include "lua_common.h"

#include <lua-cjson.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* core.monotonic_ms() -> milliseconds of a monotonic clock (for progress and
 * timing shown to the user; never for replay decisions). */
static int l_monotonic_ms(lua_State *L)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    lua_pushnumber(L, (lua_Number)t.tv_sec * 1000.0 + (lua_Number)t.tv_nsec / 1e6);
    return 1;
}

/* core.now_ms() -> wall clock ms (CLI defaults such as "today" only). */
static int l_now_ms(lua_State *L)
{
    lua_pushinteger(L, retape_time_now_ms());
    return 1;
}

/* The stop signals of a long-running command (`replay --follow`). */
static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* core.hold_stop_signals(): SIGINT and SIGTERM no longer kill the process;
 * they wait to be taken by core.wait_stop_signal (a clean stop between two
 * units of work). */
static int l_hold_stop_signals(lua_State *L)
{
    (void)L;
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return 0;
}

/* core.wait_stop_signal(ms) -> "SIGINT" | "SIGTERM" | nil: waits up to ms
 * (0 = only look) for a held stop signal and takes it. */
static int l_wait_stop_signal(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    sigset_t set;
    stop_signals(&set);
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(&set, NULL, &t);
    if (sig == SIGINT)
        lua_pushliteral(L, "SIGINT");
    else if (sig == SIGTERM)
        lua_pushliteral(L, "SIGTERM");
    else
        lua_pushnil(L);
    return 1;
}

/* core.isatty(fd) -> boolean (0 stdin, 1 stdout, 2 stderr) */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* core.peak_rss_kb() -> the process's peak resident set size in KiB */
static int l_peak_rss_kb(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lua_pushinteger(L, ru.ru_maxrss);
    return 1;
}

/* core.exe_path() -> absolute path of the running executable, or nil and a
 * message (so `retape run NAME` can find the scripts installed beside it). */
static int l_exe_path(lua_State *L)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0 || (size_t)n >= sizeof buf - 1) {
        lua_pushnil(L);
        lua_pushliteral(L, "cannot read /proc/self/exe");
        return 2;
    }
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* core.module_source(name) -> the source text of an embedded Lua module, or
 * nil when the binary embeds no such module (for `retape rules show`, which
 * reads the comments beside each setting). */
static int l_module_source(lua_State *L)
{
    const retape_embedded_file *m = retape_embedded_find(luaL_checkstring(L, 1));
    if (!m)
        return 0;
    lua_pushlstring(L, m->source, m->length);
    return 1;
}

/* core.embedded_modules() -> { name, ... }: the modules embedded in the
 * binary, in build order (`rules.list` takes the bundled rulesets from it). */
static int l_embedded_modules(lua_State *L)
{
    lua_newtable(L);
    lua_Integer n = 0;
    for (const retape_embedded_file *f = retape_embedded_files(); f->name; f++) {
        lua_pushstring(L, f->name);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* core.layer_loader(modname) -> loader, where | nil, message: finds a
 * module only in the Lua layer (--lua-dir or embedded), never through
 * package.path or package.cpath.  nil, message also when the host did not
 * install its searcher.  Raises a module's syntax error. */
static int l_layer_loader(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, "retape.layer_searcher") != LUA_TFUNCTION) {
        lua_pushnil(L);
        lua_pushliteral(L, "no Lua layer searcher in this state");
        return 2;
    }
    lua_pushvalue(L, 1);
    lua_call(L, 1, 2);
    if (!lua_isfunction(L, -2)) {
        lua_pushnil(L);
        lua_replace(L, -3);
    }
    return 2;
}

int luaopen_retape_core(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"monotonic_ms", l_monotonic_ms}, {"now_ms", l_now_ms},
        {"isatty", l_isatty}, {"hold_stop_signals", l_hold_stop_signals}, {"wait_stop_signal", l_wait_stop_signal}, {"peak_rss_kb", l_peak_rss_kb}, {"exe_path", l_exe_path},
        {"module_source", l_module_source}, {"layer_loader", l_layer_loader},
        {"embedded_modules", l_embedded_modules}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_pushliteral(L, RETAPE_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, RETAPE_LUA_API);
    lua_setfield(L, -2, "lua_api");
    return 1;
}

void retape_preload_modules(lua_State *L)
{
    static const luaL_Reg modules[] = {
        {"retape.core", luaopen_retape_core},
        {"retape.source", luaopen_retape_source},
        {"retape.kv", luaopen_retape_kv},
        {"retape.time", luaopen_retape_time},
        {"retape.ingest", luaopen_retape_ingest},
        {"retape.sql", luaopen_retape_sql},
        {"retape.jsonenc", luaopen_retape_jsonenc},
        {"retape.pack", luaopen_retape_pack},
        {"retape.step", luaopen_retape_step},
        {"retape.fs", luaopen_retape_fs},
        {"retape.http", luaopen_retape_http},
        {"retape.pool", luaopen_retape_pool},
        {"retape.decode", luaopen_retape_decode},
        {"retape.sandboxcore", luaopen_retape_sandboxcore},
        {"cjson", luaopen_cjson},
        {"cjson.safe", luaopen_cjson_safe},
        {NULL, NULL},
    };
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *m = modules; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
}
