/*
 * lua_sandbox.c — the Lua side of the rule sandbox (module retape.sandboxcore):
 * guard() runs a function under an instruction budget (a C count hook) and
 * a memory cap (the state's lua_Alloc, see sandbox.c), both of which a
 * rule's own pcall cannot swallow; the costly string and table functions
 * are replaced by wrappers that charge their work to the budget, refuse a
 * pattern whose worst-case backtracking exceeds it, and turn a refused
 * allocation into a limit error raised where the rule called them.  The
 * string metatable is locked (getmetatable("") is false).
 */
#include "lua_common.h"
#include "sandbox.h"

#include <stdio.h>
#include <string.h>

#define STATE_KEY "retape.sandbox.state"
#define LIMIT_MT "retape.sandbox.limit"
#define HANDLER_KEY "retape.sandbox.handler"
#define INSTALLED_KEY "retape.sandbox.installed"

/* Work a wrapped library call may cost per budgeted instruction before it
 * is refused up front (matching steps are cheaper than VM instructions). */
#define STEPS_PER_INSTRUCTION 16

/* The sandbox state of L (never NULL after luaopen_retape_sandboxcore). */
static retape_sandbox *state_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    retape_sandbox *sb = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return sb;
}

/* Bytes the state holds now: exact with the accounting allocator, else
 * the collector's count. */
static int64_t heap_bytes(lua_State *L, const retape_sandbox *sb)
{
    if (sb->accounting)
        return sb->in_use;
    return (int64_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
}

/* Raises the limit error of the frame's tripped limit: a table {message,
 * limit} whose metatable is LIMIT_MT (sandbox.is_limit_error).  Raises. */
static int raise_limit(lua_State *L, const sandbox_frame *f, const char *detail)
{
    lua_createtable(L, 0, 3);
    const char *kind = f->tripped == SANDBOX_MEMORY ? "memory" : "instructions";
    if (f->tripped == SANDBOX_MEMORY)
        lua_pushfstring(L, "rule exceeded its memory cap (%d MB per receipt)%s%s",
                        (int)((f->mem_cap + (1 << 20) - 1) >> 20), detail ? ": " : "", detail ? detail : "");
    else
        lua_pushfstring(L, "rule exceeded its instruction budget (%I per receipt)%s%s", (lua_Integer)f->budget,
                        detail ? ": " : "", detail ? detail : "");
    lua_setfield(L, -2, "message");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "limit");
    luaL_setmetatable(L, LIMIT_MT);
    return lua_error(L);
}

/* Count hook: charges the period to the budget and checks the soft memory
 * cap (after a full collection); raises the limit error when either is
 * exceeded, and again at every tick once tripped. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    retape_sandbox *sb = state_of(L);
    if (!sb || !sb->frame.active)
        return;
    sandbox_frame *f = &sb->frame;
    if (!f->tripped) {
        retape_sandbox_charge(sb, lua_gethookcount(L), SANDBOX_INSTRUCTIONS);
        if (!f->tripped && heap_bytes(L, sb) - f->mem_base > f->mem_cap) {
            lua_gc(L, LUA_GCCOLLECT, 0);
            if (heap_bytes(L, sb) - f->mem_base > f->mem_cap)
                f->tripped = SANDBOX_MEMORY;
        }
    }
    if (f->tripped)
        raise_limit(L, f, NULL);
}

/* guard(limits, fn, ...) -> fn's results.  Runs fn with the handler set by
 * set_handler under limits.instructions and limits.memory_mb (both must be
 * positive); restores the previous frame and hook afterwards (guards nest:
 * the inner call's work is charged to the outer).  Raises fn's error, or a
 * limit error when a limit was hit (even if fn's own code caught it). */
static int l_guard(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lua_getfield(L, 1, "instructions");
    lua_getfield(L, 1, "memory_mb");
    int ok_i = 0, ok_m = 0;
    lua_Integer instructions = lua_tointegerx(L, -2, &ok_i);
    lua_Number memory_mb = lua_tonumberx(L, -1, &ok_m);
    lua_pop(L, 2);
    if (!ok_i || instructions <= 0)
        return luaL_error(L, "sandbox limit 'instructions' must be a positive integer");
    if (!ok_m || !(memory_mb > 0) || memory_mb > 1e6)
        return luaL_error(L, "sandbox limit 'memory_mb' must be a positive number of MB");
    retape_sandbox *sb = state_of(L);
    sandbox_frame saved = sb->frame;
    lua_Hook old_hook = lua_gethook(L);
    int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
    int64_t cap = (int64_t)(memory_mb * 1048576.0);
    sb->frame = (sandbox_frame){.active = 1, .budget = instructions, .mem_cap = cap,
                                .mem_hard = cap + cap / 4 + ((int64_t)1 << 20), .mem_base = heap_bytes(L, sb)};
    lua_sethook(L, count_hook, LUA_MASKCOUNT, instructions < 10000 ? (int)instructions : 10000);
    int nargs = lua_gettop(L) - 2;
    lua_getfield(L, LUA_REGISTRYINDEX, HANDLER_KEY);
    lua_insert(L, 2); /* handler at 2, fn at 3 */
    int handler = lua_isnil(L, 2) ? 0 : 2;
    int status = lua_pcall(L, nargs, LUA_MULTRET, handler);
    sandbox_frame done = sb->frame;
    sb->frame = saved;
    if (saved.active)
        retape_sandbox_charge(sb, done.used, SANDBOX_INSTRUCTIONS);
    lua_sethook(L, old_hook, old_mask, old_count);
    if (status == LUA_OK)
        return lua_gettop(L) - 2;
    if (done.tripped) {
        int is_limit = 0;
        if (lua_getmetatable(L, -1)) {
            luaL_getmetatable(L, LIMIT_MT);
            is_limit = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
        if (!is_limit) /* e.g. "not enough memory" from a refused allocation */
            return raise_limit(L, &done, NULL);
    }
    return lua_error(L);
}

/* check() raises the limit error of the current frame if one was hit (the
 * rule's pcall/xpcall call it after a failure). */
static int l_check(lua_State *L)
{
    retape_sandbox *sb = state_of(L);
    if (sb->frame.active && sb->frame.tripped)
        return raise_limit(L, &sb->frame, NULL);
    return 0;
}

/* set_handler(fn): the message handler guard() calls fn under. */
static int l_set_handler(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, HANDLER_KEY);
    return 0;
}

/* limit_metatable() -> the metatable of limit errors. */
static int l_limit_metatable(lua_State *L)
{
    luaL_getmetatable(L, LIMIT_MT);
    return 1;
}

/* stats() -> {active, used, budget, heap_bytes, accounting} (tests). */
static int l_stats(lua_State *L)
{
    retape_sandbox *sb = state_of(L);
    lua_createtable(L, 0, 5);
    lua_pushboolean(L, sb->frame.active);
    lua_setfield(L, -2, "active");
    lua_pushinteger(L, sb->frame.used);
    lua_setfield(L, -2, "used");
    lua_pushinteger(L, sb->frame.budget);
    lua_setfield(L, -2, "budget");
    lua_pushinteger(L, heap_bytes(L, sb));
    lua_setfield(L, -2, "heap_bytes");
    lua_pushboolean(L, sb->accounting);
    lua_setfield(L, -2, "accounting");
    return 1;
}

/* --- wrappers of costly library functions -------------------------------- */

enum { W_FIND, W_MATCH, W_GMATCH, W_GSUB, W_REP, W_CONCAT, W_MOVE, W_FORMAT };
static const char *const wrapped_names[] = {"string.find", "string.match", "string.gmatch", "string.gsub",
                                            "string.rep", "table.concat", "table.move", "string.format"};

/* The integral value of argument idx (floats with an integral value too,
 * as the library accepts them); 0 when it is none. */
static int arg_integral(lua_State *L, int idx, double *out)
{
    int isnum = 0;
    lua_Number v = lua_tonumberx(L, idx, &isnum);
    if (!isnum || v != v)
        return 0;
    *out = (double)v;
    return 1;
}

/* Work a call of wrapper `kind` will do, from its arguments (0 when it
 * cannot be told up front; argument errors are left to the original). */
static int64_t call_cost(lua_State *L, int kind, char *detail, size_t cap, double *bytes_out)
{
    switch (kind) {
    case W_FIND:
    case W_MATCH:
    case W_GMATCH:
    case W_GSUB: {
        size_t n = 0, plen = 0;
        if (!lua_isstring(L, 1) || !lua_isstring(L, 2))
            return 0;
        lua_tolstring(L, 1, &n);
        const char *p = lua_tolstring(L, 2, &plen);
        int plain = kind == W_FIND && lua_toboolean(L, 4);
        int64_t c = retape_sandbox_pattern_cost(p, plen, n, plain);
        snprintf(detail, cap, "%s of a pattern that may take ~%.3g steps over %zu bytes", wrapped_names[kind],
                 (double)c, n);
        return c;
    }
    case W_REP: {
        size_t l = 0, lsep = 0;
        double n;
        if (!lua_isstring(L, 1) || !arg_integral(L, 2, &n))
            return 0;
        lua_tolstring(L, 1, &l);
        if (lua_isstring(L, 3))
            lua_tolstring(L, 3, &lsep);
        if (n <= 0)
            return 1;
        double bytes = ((double)l + (double)lsep) * n;
        *bytes_out = bytes;
        snprintf(detail, cap, "string.rep of %.3g bytes (%.3g copies)", bytes, n);
        double c = bytes / 16 + n;
        return c > 9e18 ? INT64_MAX : (int64_t)c;
    }
    case W_CONCAT:
    case W_MOVE: {
        int first = kind == W_CONCAT ? 3 : 2, last = first + 1;
        double i = 1, j;
        if (!lua_isnoneornil(L, first) && !arg_integral(L, first, &i))
            return 0;
        if (kind == W_CONCAT && lua_isnoneornil(L, last)) {
            if (!lua_istable(L, 1))
                return 0;
            j = (double)lua_rawlen(L, 1);
        } else if (!arg_integral(L, last, &j))
            return 0;
        if (j < i)
            return 1;
        double span = j - i + 1;
        snprintf(detail, cap, "%s over %.3g elements", wrapped_names[kind], span);
        return span > 9e18 ? INT64_MAX : (int64_t)span;
    }
    default: {
        size_t l = 0;
        if (lua_isstring(L, 1))
            lua_tolstring(L, 1, &l);
        return (int64_t)l;
    }
    }
}

/* The wrapper: upvalue 1 is the original function, 2 its kind, 3 the
 * sandbox state.  Outside a guard it only forwards the call.  Inside, it
 * refuses work beyond STEPS_PER_INSTRUCTION times the remaining budget,
 * charges the work, and calls the original protected so a refused
 * allocation becomes a memory limit error raised here.  Raises. */
static int wrapped_call(lua_State *L)
{
    retape_sandbox *sb = lua_touserdata(L, lua_upvalueindex(3));
    int nargs = lua_gettop(L);
    if (sb->frame.active && sb->frame.tripped) /* e.g. from a __close handler after the limit */
        return raise_limit(L, &sb->frame, NULL);
    if (!sb->frame.active) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, nargs, LUA_MULTRET);
        return lua_gettop(L);
    }
    int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
    char detail[160] = "";
    double bytes = 0;
    int64_t cost = call_cost(L, kind, detail, sizeof detail, &bytes);
    sandbox_frame *f = &sb->frame;
    if (bytes > (double)(f->mem_base + f->mem_hard - heap_bytes(L, sb))) {
        f->tripped = SANDBOX_MEMORY;
        return raise_limit(L, f, detail);
    }
    int64_t remaining = f->budget > f->used ? f->budget - f->used : 0;
    if (cost / STEPS_PER_INSTRUCTION > remaining) {
        f->tripped = SANDBOX_INSTRUCTIONS;
        return raise_limit(L, f, detail);
    }
    retape_sandbox_charge(sb, cost / STEPS_PER_INSTRUCTION + 1, SANDBOX_INSTRUCTIONS);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) {
        if (f->active && f->tripped) {
            int is_limit = 0;
            if (lua_getmetatable(L, -1)) {
                luaL_getmetatable(L, LIMIT_MT);
                is_limit = lua_rawequal(L, -1, -2);
                lua_pop(L, 2);
            }
            if (!is_limit)
                return raise_limit(L, f, f->tripped == SANDBOX_MEMORY ? wrapped_names[kind] : NULL);
        }
        return lua_error(L);
    }
    if (f->active && heap_bytes(L, sb) - f->mem_base > f->mem_cap) { /* the soft cap, as the hook checks it */
        lua_gc(L, LUA_GCCOLLECT, 0);
        if (heap_bytes(L, sb) - f->mem_base > f->mem_cap) {
            f->tripped = SANDBOX_MEMORY;
            return raise_limit(L, f, wrapped_names[kind]);
        }
    }
    return lua_gettop(L);
}

/* Replaces field `name` of the table at idx by a wrapper of kind `kind`. */
static void wrap_field(lua_State *L, int idx, const char *name, int kind, retape_sandbox *sb)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, name);
    if (!lua_iscfunction(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushinteger(L, kind);
    lua_pushlightuserdata(L, sb);
    lua_pushcclosure(L, wrapped_call, 3);
    lua_setfield(L, idx, name);
}

/* Installs the wrappers (once per state): into `string` and `table` (so
 * the copies rule environments take have them) and into the table the
 * string metatable's __index points to (method calls); then locks the
 * string metatable. */
static void install_wrappers(lua_State *L, retape_sandbox *sb)
{
    lua_getfield(L, LUA_REGISTRYINDEX, INSTALLED_KEY);
    int done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (done)
        return;
    static const struct {
        const char *lib, *name;
        int kind;
    } list[] = {{"string", "find", W_FIND},     {"string", "match", W_MATCH}, {"string", "gmatch", W_GMATCH},
                {"string", "gsub", W_GSUB},     {"string", "rep", W_REP},     {"string", "format", W_FORMAT},
                {"table", "concat", W_CONCAT}, {"table", "move", W_MOVE}};
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (lua_getfield(L, -1, list[i].lib) == LUA_TTABLE)
            wrap_field(L, -1, list[i].name, list[i].kind, sb);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, INSTALLED_KEY);
}

int luaopen_retape_sandboxcore(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"guard", l_guard}, {"check", l_check}, {"set_handler", l_set_handler},
        {"limit_metatable", l_limit_metatable}, {"stats", l_stats}, {NULL, NULL},
    };
    if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) != LUA_TLIGHTUSERDATA) {
        void *ud = NULL;
        lua_Alloc f = lua_getallocf(L, &ud);
        retape_sandbox *sb;
        if (f == retape_sandbox_alloc) {
            sb = ud;
            sb->accounting = 1;
        } else { /* a state made by someone else: GC-owned, counted by the collector */
            sb = lua_newuserdatauv(L, sizeof *sb, 0);
            memset(sb, 0, sizeof *sb);
            lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY ".box");
        }
        lua_pushlightuserdata(L, sb);
        lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LIMIT_MT)) {
        lua_pushliteral(L, "limit error");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    install_wrappers(L, state_of(L));
    luaL_newlib(L, fns);
    return 1;
}
