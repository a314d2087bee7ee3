/*
 * lua_sandbox.c — the Lua side of the rule sandbox (module retape.sandboxcore):
 * guard() runs a function under an instruction budget (a C count hook), a
 * memory cap and a cap on strings (the state's lua_Alloc, see sandbox.c,
 * which also charges each long string made to the budget) and a CPU-time
 * safety net, none of which a rule's own pcall can swallow; guards nest
 * within one budget.  The costly string, table and utf8 functions are
 * replaced by wrappers that charge their work to the budget, refuse a
 * pattern whose worst-case backtracking exceeds it, and turn a refused
 * allocation into a limit error raised where the rule called them; rule
 * environments get a tostring and a string.format that never show an
 * address.  state_print() fingerprints what a ruleset's functions keep
 * between calls.  The string metatable is locked (getmetatable("") is false).
 */
#define _POSIX_C_SOURCE 200809L
#include "lua_common.h"
#include "sandbox.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(SANDBOX_TSTRING == LUA_TSTRING, "the allocator tags new strings with LUA_TSTRING");

#define STATE_KEY "retape.sandbox.state"
#define LIMIT_MT "retape.sandbox.limit"
#define HANDLER_KEY "retape.sandbox.handler"
#define INSTALLED_KEY "retape.sandbox.installed"
#define ENV_FUNCTIONS_KEY "retape.sandbox.env_functions"

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

static void count_hook(lua_State *L, lua_Debug *ar);

/* Raises the limit error of the frame's tripped limit: a table {message,
 * limit} whose metatable is LIMIT_MT (sandbox.is_limit_error).  A refused
 * string is named in the message.  Raises. */
static int raise_limit(lua_State *L, const sandbox_frame *f, const char *detail)
{
    char refused[200] = "";
    if (f->tripped == SANDBOX_MEMORY && f->refused_string) { /* the string cap, after what made the string */
        snprintf(refused, sizeof refused, "%s%sa string longer than %lld bytes (the longest rule code may make)",
                 detail ? detail : "", detail ? ": " : "", (long long)f->string_max);
        detail = refused;
    }
    lua_createtable(L, 0, 3);
    const char *kind = f->tripped == SANDBOX_MEMORY ? "memory" : f->tripped == SANDBOX_TIME ? "time" : "instructions";
    if (f->tripped == SANDBOX_MEMORY)
        lua_pushfstring(L, "rule exceeded its memory cap (%d MB per receipt)%s%s",
                        (int)((f->mem_cap + (1 << 20) - 1) >> 20), detail ? ": " : "", detail ? detail : "");
    else if (f->tripped == SANDBOX_TIME)
        lua_pushfstring(L, "rule exceeded its CPU time limit (%f s per receipt, a safety net for work the "
                           "instruction budget cannot count)%s%s", (lua_Number)f->cpu_limit,
                        detail ? ": " : "", detail ? detail : "");
    else
        lua_pushfstring(L, "rule exceeded its instruction budget (%I per receipt)%s%s", (lua_Integer)f->budget,
                        detail ? ": " : "", detail ? detail : "");
    lua_setfield(L, -2, "message");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "limit");
    if (f->where[0]) { /* where the rule was when the allocator refused it (no traceback then) */
        lua_pushstring(L, f->where);
        lua_setfield(L, -2, "where");
    }
    luaL_setmetatable(L, LIMIT_MT);
    return lua_error(L);
}

/* on_trip of the sandbox state: notes the rule line running now (the first
 * Lua frame) and, when the allocation goes ahead (the budget, not memory),
 * makes the hook run at the next instruction, so the limit is raised right
 * after the instruction that hit it.  Neither allocates
 * nor raises. */
static void note_trip(retape_sandbox *sb)
{
    lua_State *L = sb->frame.lua;
    if (!L)
        return;
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(sb->frame.where, sizeof sb->frame.where, "%s:%d", ar.short_src, ar.currentline);
            break;
        }
    }
    if (sb->frame.tripped == SANDBOX_INSTRUCTIONS) /* the string was made: stop right after this instruction */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
}

/* Seconds of CPU time this thread has used (the watchdog's clock: other
 * processes on the machine do not advance it). */
static double thread_cpu_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The CPU-time safety net, checked at each hook tick: starts the clock at
 * the first tick (calls shorter than one tick never read it) and trips the
 * frame with SANDBOX_TIME past cpu_limit. */
static void check_watchdog(sandbox_frame *f)
{
    if (f->cpu_limit <= 0 || f->tripped)
        return;
    double now = thread_cpu_seconds();
    if (f->cpu_start < 0)
        f->cpu_start = now;
    else if (now - f->cpu_start > f->cpu_limit)
        f->tripped = SANDBOX_TIME;
}

/* Count hook: charges the period to the budget, checks the soft memory
 * cap (after a full collection) and the CPU-time safety net; raises the limit error when either is
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
        check_watchdog(f);
    }
    if (f->tripped) {
        if (lua_gethookcount(L) == 1) /* set by note_trip: the message handler must not trip again at once */
            lua_sethook(L, count_hook, LUA_MASKCOUNT, 10000);
        raise_limit(L, f, NULL);
    }
}

/* guard(limits, fn, ...) -> fn's results.  Runs fn with the handler set by
 * set_handler under limits.instructions and limits.memory_mb (both must be
 * positive) and, when limits.seconds is positive, the CPU-time safety net;
 * restores the previous frame and hook afterwards.  Guards nest within one
 * budget: an inner guard gets at most what the outer has left (instructions,
 * the same memory base and cap, the same clock), and its work is charged to
 * the outer, so a ruleset that loads others (or itself) has one budget.
 * Raises fn's error, or a limit error when a limit was hit (even if fn's own
 * code caught it). */
static int l_guard(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lua_getfield(L, 1, "instructions");
    lua_getfield(L, 1, "memory_mb");
    lua_getfield(L, 1, "seconds");
    int ok_i = 0, ok_m = 0;
    lua_Integer instructions = lua_tointegerx(L, -3, &ok_i);
    lua_Number memory_mb = lua_tonumberx(L, -2, &ok_m);
    lua_Number seconds = lua_isnil(L, -1) ? 0 : lua_tonumber(L, -1);
    lua_pop(L, 3);
    if (!ok_i || instructions <= 0)
        return luaL_error(L, "sandbox limit 'instructions' must be a positive integer");
    if (!ok_m || !(memory_mb > 0) || memory_mb > 1e6)
        return luaL_error(L, "sandbox limit 'memory_mb' must be a positive number of MB");
    if (!(seconds >= 0) || seconds > 1e6)
        return luaL_error(L, "sandbox limit 'seconds' must be a positive number");
    retape_sandbox *sb = state_of(L);
    sandbox_frame saved = sb->frame;
    if (saved.active && saved.tripped)
        return raise_limit(L, &saved, NULL);
    lua_Hook old_hook = lua_gethook(L);
    int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
    int64_t cap = (int64_t)(memory_mb * 1048576.0);
    sandbox_frame f = {.active = 1, .budget = instructions, .mem_cap = cap,
                       .mem_hard = cap + cap / 4 + ((int64_t)1 << 20), .mem_base = heap_bytes(L, sb),
                       .string_max = cap < SANDBOX_STRING_MAX ? cap : SANDBOX_STRING_MAX,
                       .cpu_limit = seconds, .cpu_start = -1, .lua = L};
    if (saved.active) { /* one budget: the inner call goes on counting the outer's */
        f.used = saved.used;
        f.budget = saved.budget - saved.used < instructions ? saved.budget : saved.used + instructions;
        f.mem_base = saved.mem_base;
        if (saved.mem_cap < f.mem_cap)
            f.mem_cap = saved.mem_cap;
        if (saved.mem_hard < f.mem_hard)
            f.mem_hard = saved.mem_hard;
        if (saved.string_max < f.string_max)
            f.string_max = saved.string_max;
        if (saved.cpu_limit > 0 && (f.cpu_limit <= 0 || saved.cpu_limit < f.cpu_limit))
            f.cpu_limit = saved.cpu_limit;
        f.cpu_start = saved.cpu_start;
    }
    sb->frame = f;
    int64_t period = f.budget - f.used;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, period < 10000 ? (int)(period > 0 ? period : 1) : 10000);
    int nargs = lua_gettop(L) - 2;
    lua_getfield(L, LUA_REGISTRYINDEX, HANDLER_KEY);
    lua_insert(L, 2); /* handler at 2, fn at 3 */
    int handler = lua_isnil(L, 2) ? 0 : 2;
    int status = lua_pcall(L, nargs, LUA_MULTRET, handler);
    sandbox_frame done = sb->frame;
    sb->frame = saved;
    if (saved.active) {
        sb->frame.used = done.used;
        if (done.tripped && !sb->frame.tripped) { /* the inner limit is the outer's too */
            sb->frame.tripped = done.tripped;
            sb->frame.refused_string = done.refused_string;
            memcpy(sb->frame.where, done.where, sizeof done.where);
        }
        if (sb->frame.cpu_start < 0)
            sb->frame.cpu_start = done.cpu_start;
    }
    lua_sethook(L, old_hook, old_mask, old_count);
    if (status == LUA_OK && done.tripped) /* hit, then swallowed before a tick raised it (cjson.safe on a refused allocation) */
        return raise_limit(L, &done, NULL);
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

enum { W_FIND, W_MATCH, W_GMATCH, W_GSUB, W_REP, W_CONCAT, W_MOVE, W_FORMAT, W_BYTE,
       W_INSERT, W_REMOVE, W_SORT, W_UNPACK, W_ULEN, W_UCODEPOINT, W_UOFFSET, W_UCHAR };
static const char *const wrapped_names[] = {"string.find", "string.match", "string.gmatch", "string.gsub",
                                            "string.rep", "table.concat", "table.move", "string.format",
                                            "string.byte", "table.insert", "table.remove", "table.sort",
                                            "table.unpack", "utf8.len", "utf8.codepoint", "utf8.offset",
                                            "utf8.char"};

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
    case W_INSERT:
    case W_REMOVE: { /* the elements shifted up or down */
        double n, pos;
        if (!lua_istable(L, 1))
            return 0;
        n = (double)lua_rawlen(L, 1);
        if (kind == W_INSERT ? lua_gettop(L) < 3 : lua_isnoneornil(L, 2))
            return 1;
        if (!arg_integral(L, 2, &pos) || pos > n + 1 || pos < 1)
            return 1;
        snprintf(detail, cap, "%s shifting %.3g elements", wrapped_names[kind], n - pos + 1);
        return (int64_t)(n - pos + 1) + 1;
    }
    case W_SORT: { /* n log2 n comparisons */
        if (!lua_istable(L, 1))
            return 0;
        double n = (double)lua_rawlen(L, 1), lg = 1;
        for (double m = n; m > 1; m /= 2)
            lg++;
        snprintf(detail, cap, "table.sort of %.3g elements", n);
        return (int64_t)(n * lg) + 1;
    }
    case W_UNPACK:
    case W_BYTE:
    case W_UCODEPOINT: { /* one value pushed per element or byte in [i, j] */
        double i = 1, j;
        if (kind == W_UNPACK) {
            if (!lua_istable(L, 1))
                return 0;
            j = (double)lua_rawlen(L, 1);
        } else {
            size_t l = 0;
            if (!lua_isstring(L, 1))
                return 0;
            lua_tolstring(L, 1, &l);
            j = (double)l;
        }
        if (!lua_isnoneornil(L, 2) && !arg_integral(L, 2, &i))
            return 0;
        if (kind != W_UNPACK && i < 0)
            i = j + i + 1;
        if (lua_isnoneornil(L, 3))
            j = kind == W_UNPACK ? j : i;
        else if (!arg_integral(L, 3, &j))
            return 0;
        else if (kind != W_UNPACK && j < 0)
            j = j + (double)lua_rawlen(L, 1) + 1;
        if (j < i)
            return 1;
        snprintf(detail, cap, "%s of %.3g values", wrapped_names[kind], j - i + 1);
        return j - i + 1 > 9e18 ? INT64_MAX : (int64_t)(j - i + 1);
    }
    case W_UCHAR:
        return lua_gettop(L);
    default: { /* the bytes of the subject (format: every string argument) */
        size_t l = 0;
        int64_t total = 0;
        int last = kind == W_FORMAT ? lua_gettop(L) : 1;
        for (int a = 1; a <= last; a++) {
            if (lua_type(L, a) == LUA_TSTRING) {
                lua_tolstring(L, a, &l);
                total += (int64_t)l;
            }
        }
        snprintf(detail, cap, "%s over %lld bytes", wrapped_names[kind], (long long)total);
        return total;
    }
    }
}

/* If the value at idx would print with its address (a table, function,
 * thread or userdata without __tostring), pushes what rule code sees
 * instead (its __name, else its type name) and returns 1; else pushes
 * nothing and returns 0. */
static int push_addressless_name(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    if (t != LUA_TTABLE && t != LUA_TFUNCTION && t != LUA_TTHREAD && t != LUA_TUSERDATA && t != LUA_TLIGHTUSERDATA)
        return 0;
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    int name = luaL_getmetafield(L, idx, "__name");
    if (name == LUA_TSTRING)
        return 1;
    if (name != LUA_TNIL)
        lua_pop(L, 1);
    lua_pushstring(L, luaL_typename(L, idx));
    return 1;
}

/* Inside a frame, string.format may not print an address: "%p" is refused
 * and a value that would print with its address is replaced by its name.
 * Raises. */
static void format_without_addresses(lua_State *L)
{
    size_t len = 0;
    const char *fmt = lua_tolstring(L, 1, &len);
    if (!fmt)
        return;
    for (size_t i = 0; i + 1 < len; i++) {
        if (fmt[i] != '%')
            continue;
        size_t j = i + 1;
        while (j < len && strchr("-+ #0123456789.", fmt[j]))
            j++;
        if (j < len && fmt[j] == 'p')
            luaL_error(L, "string.format: '%%p' is not allowed in rule code (addresses differ from run to run)");
        i = j;
    }
    for (int a = 2; a <= lua_gettop(L); a++)
        if (push_addressless_name(L, a))
            lua_replace(L, a);
}

/* tostring(v) for rule code: as the library's, but never an address
 * ("table", "function", or the __name of a userdata), so what a rule prints
 * or keys on is the same in every run. */
static int l_tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    if (push_addressless_name(L, 1))
        return 1;
    luaL_tolstring(L, 1, NULL);
    return 1;
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
    if (kind == W_FORMAT)
        format_without_addresses(L);
    char detail[160] = "";
    double bytes = 0;
    int64_t cost = call_cost(L, kind, detail, sizeof detail, &bytes);
    if (kind == W_MOVE || (kind >= W_INSERT && kind <= W_UNPACK) || kind == W_UCHAR) /* a step per element */
        cost = cost > INT64_MAX / STEPS_PER_INSTRUCTION ? INT64_MAX : cost * STEPS_PER_INSTRUCTION;
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
                {"table", "concat", W_CONCAT}, {"table", "move", W_MOVE},   {"string", "byte", W_BYTE}};
    /* only in rule environments (the engine's own calls stay direct) */
    static const struct {
        const char *lib, *name;
        int kind;
    } env_list[] = {{"table", "insert", W_INSERT}, {"table", "remove", W_REMOVE},
                    {"table", "sort", W_SORT},     {"table", "unpack", W_UNPACK},
                    {"utf8", "len", W_ULEN},       {"utf8", "codepoint", W_UCODEPOINT},
                    {"utf8", "offset", W_UOFFSET}, {"utf8", "char", W_UCHAR}};
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (lua_getfield(L, -1, list[i].lib) == LUA_TTABLE)
            wrap_field(L, -1, list[i].name, list[i].kind, sb);
        lua_pop(L, 1);
    }
    lua_newtable(L); /* "lib.name" -> wrapper, for sandbox.env */
    for (size_t i = 0; i < sizeof env_list / sizeof env_list[0]; i++) {
        if (lua_getfield(L, -2, env_list[i].lib) == LUA_TTABLE && lua_getfield(L, -1, env_list[i].name) == LUA_TFUNCTION) {
            lua_pushinteger(L, env_list[i].kind);
            lua_pushlightuserdata(L, sb);
            lua_pushcclosure(L, wrapped_call, 3);
            lua_setfield(L, -3, wrapped_names[env_list[i].kind]);
            lua_pop(L, 1);
        } else {
            lua_pop(L, lua_type(L, -1) == LUA_TTABLE ? 2 : 1);
        }
    }
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "tostring");
    lua_setfield(L, LUA_REGISTRYINDEX, ENV_FUNCTIONS_KEY);
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

/* env_functions() -> {["table.insert"] = wrapper, ..., tostring = ...}: the
 * wrapped functions only rule environments get. */
static int l_env_functions(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, ENV_FUNCTIONS_KEY);
    return 1;
}

/* --- the state a ruleset keeps between calls -------------------------- */

/* A set of pointers (open addressing), for the tables a walk has seen. */
typedef struct ptrset {
    const void **slots;
    size_t mask, n;
} ptrset;

/* Adds p; returns 1 if it was new, 0 if seen, -1 when out of memory. */
static int ptrset_add(ptrset *s, const void *p)
{
    if ((s->n + 1) * 2 > s->mask + 1) {
        size_t cap = (s->mask + 1) * 2;
        const void **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i <= s->mask; i++) {
            if (!s->slots[i])
                continue;
            size_t j = ((uintptr_t)s->slots[i] >> 4) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = slots;
        s->mask = cap - 1;
    }
    size_t i = ((uintptr_t)p >> 4) & s->mask;
    while (s->slots[i]) {
        if (s->slots[i] == p)
            return 0;
        i = (i + 1) & s->mask;
    }
    s->slots[i] = p;
    s->n++;
    return 1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* The print of the value at idx, of type t: numbers and booleans by value,
 * everything else (strings included: short ones are interned) by identity. */
static uint64_t value_print(lua_State *L, int idx, int t)
{
    uint64_t bits = 0;
    if (t == LUA_TNUMBER) {
        int isint = 0;
        lua_Integer i = lua_tointegerx(L, idx, &isint);
        if (isint) {
            bits = (uint64_t)i;
        } else {
            double d = lua_tonumber(L, idx);
            memcpy(&bits, &d, sizeof bits);
        }
    } else if (t == LUA_TBOOLEAN) {
        bits = (uint64_t)lua_toboolean(L, idx);
    } else if (t != LUA_TNIL) {
        bits = (uint64_t)(uintptr_t)lua_topointer(L, idx);
    }
    return mix64(bits ^ ((uint64_t)t << 59));
}

#define STATE_MAX_DEPTH 200

typedef struct walker {
    lua_State *L;
    ptrset seen;
    uint64_t acc;
    int failed; /* 1 out of memory, 2 too deep */
} walker;

/* Adds the table at idx (its entries, and the tables among them and its
 * metatable, recursively) to the walk, once.  A weak table is a cache:
 * only its identity counts. */
static void walk_table(walker *w, int idx, int depth)
{
    lua_State *L = w->L;
    const void *p = lua_topointer(L, idx);
    int added = ptrset_add(&w->seen, p);
    if (added <= 0) {
        if (added < 0)
            w->failed = 1;
        return;
    }
    if (depth > STATE_MAX_DEPTH) {
        w->failed = 2;
        return;
    }
    if (!lua_checkstack(L, 4)) {
        w->failed = 1;
        return;
    }
    if (lua_getmetatable(L, idx)) {
        lua_pushliteral(L, "__mode");
        int weak = lua_rawget(L, -2) != LUA_TNIL;
        lua_pop(L, 1);
        if (weak) {
            lua_pop(L, 1);
            return;
        }
        w->acc += mix64(value_print(L, -1, LUA_TTABLE) + 0x9e3779b97f4a7c15ULL * (uint64_t)(uintptr_t)p);
        walk_table(w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    uint64_t sum = 0, n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2), vt = lua_type(L, -1);
        sum += mix64(value_print(L, -2, kt) * 31 + value_print(L, -1, vt));
        n++;
        if (vt == LUA_TTABLE && !w->failed)
            walk_table(w, lua_gettop(L), depth + 1);
        if (kt == LUA_TTABLE && !w->failed)
            walk_table(w, lua_gettop(L) - 1, depth + 1);
        lua_pop(L, 1);
    }
    w->acc += mix64((uint64_t)(uintptr_t)p ^ mix64(sum + n));
}

/* state_print(roots) -> integer: a print of everything in `roots` (a list)
 * that a later call can see: a table's entries, and the tables among them,
 * recursively; a Lua function's upvalues (every one) and what they hold
 * (but for _ENV: its identity only).
 * Equal prints: nothing changed (up to a 64-bit collision).  Weak tables
 * (caches) count by identity only.  Raises when nesting is deeper than 200
 * tables or out of memory. */
static int l_state_print(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    walker w = {.L = L};
    w.seen.slots = calloc(64, sizeof *w.seen.slots);
    w.seen.mask = 63;
    if (!w.seen.slots)
        return luaL_error(L, "state_print: out of memory");
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n && !w.failed; i++) {
        int t = lua_rawgeti(L, 1, i);
        int at = lua_gettop(L);
        if (t == LUA_TFUNCTION && !lua_iscfunction(L, at)) {
            const char *name;
            for (int u = 1; (name = lua_getupvalue(L, at, u)) != NULL && !w.failed; u++) {
                int ut = lua_type(L, -1);
                w.acc += mix64(value_print(L, -1, ut) * 131 + (uint64_t)u + value_print(L, at, t));
                if (ut == LUA_TTABLE && strcmp(name, "_ENV") != 0) /* the environment is read-only */
                    walk_table(&w, lua_gettop(L), 1);
                lua_pop(L, 1);
            }
        } else {
            w.acc += mix64(value_print(L, at, t));
            if (t == LUA_TTABLE)
                walk_table(&w, at, 0);
        }
        lua_settop(L, 1);
    }
    free(w.seen.slots);
    if (w.failed == 1)
        return luaL_error(L, "state_print: out of memory");
    if (w.failed == 2)
        return luaL_error(L, "rule state is nested deeper than %d tables", STATE_MAX_DEPTH);
    lua_pushinteger(L, (lua_Integer)w.acc);
    return 1;
}

int luaopen_retape_sandboxcore(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"guard", l_guard}, {"check", l_check}, {"set_handler", l_set_handler},
        {"limit_metatable", l_limit_metatable}, {"stats", l_stats}, {"state_print", l_state_print},
        {"env_functions", l_env_functions}, {NULL, NULL},
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
        sb->on_trip = note_trip;
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
