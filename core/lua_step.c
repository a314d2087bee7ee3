/*
 * lua_step.c — the per-receipt loop of a replay, in C: `require "retape.step"`.
 *
 *   step.setup { guard = sandbox.guard, traceback = sandbox.traceback,
 *                extract = jsonenc.extract, pick = pack.pick,
 *                rule_failed = function(row, err) }
 *   local done = step.walk(rp, rows, bucket, counters [, plans, counts])
 *   local list = step.versions(dirty, names, view_names)
 *
 * walk runs a fetched batch of rows (a list of row tables) through the
 * ruleset of the replay `rp` (lua/retape/run/step.lua), in order.  For
 * each receipt: its payload decoded now when the row came undecoded
 * (retape_lua_decode_row with rp.fields: a payload lives only while its
 * receipt runs), the ticker's working record from memory (rp.ticks; rp:ticker
 * reads the store only for a ticker the run has not met), the ruleset's
 * `step` and `simulate` each in one protected call (under the sandbox guard
 * when rp.limits is set), the declared state extracted from the stamped
 * payload, and the receipt's lane appended to the ticker's log of the
 * bucket.  The receipt's view fields (rp.schema.view) are packed at once
 * into the working record (tk.view_packed), so that its payload dies with
 * the receipt (a field that cannot be packed: the payload is kept as
 * tk.last_p, for the bucket's end to report); and each row of the batch is
 * cleared from `rows` once run.  The policy stays in Lua: rp:ticker (where a ticker starts),
 * rp:report (problems that do not stop a run), rule_failed (what a rule
 * error says), the rules themselves.  Returns the rows of the batch seen.
 *
 * With plans (a refresh: {T = rows to follow}) only the tickers planned run,
 * each for at most its planned number of rows (counted in counts).
 * Raises: a rule error (through rule_failed, naming the receipt), a state
 * field the store cannot keep; rp.failing_row is the row being processed.
 *
 * versions packs the bucket's version of each ticker `names` (a list) of
 * `dirty` (T = working record), as the replay's encode_version would, with
 * no table per record; with a batch, straight into it under the store's
 * keys (prefix .. T .. tail, from the store), with no string per record;
 * see l_versions.
 */
#include "lua_common.h"

#include "pack.h"
#include "step.h"
#include <stdio.h>

#define WRITER_MT "retape.step.writer"
/* The longest final lane (a stage name) a receipt's log keeps: each is
 * written in every version of its bucket's lanes. */
#define STEP_LANE_MAX 256

#define SETUP_KEY "retape.step.setup"

/* step.setup(t): the functions walk calls (see the header comment). */
static int l_setup(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const needed[] = {"guard", "traceback", "extract", "rule_failed", "pick", NULL};
    for (int i = 0; needed[i]; i++) {
        if (lua_getfield(L, 1, needed[i]) != LUA_TFUNCTION)
            return luaL_error(L, "step.setup: '%s' must be a function", needed[i]);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, SETUP_KEY);
    return 0;
}

/* The stack slots of walk's context (pushed once per batch). */
enum {
    A_RP = 1, A_ROWS, A_BUCKET, A_COUNTERS, A_PLANS, A_COUNTS,
    C_GUARD, C_TRACEBACK, C_EXTRACT, C_RULE_FAILED, C_PICK,
    C_TICKS, C_DIRTY, C_LIMITS, C_BOOK, C_BEGIN, C_STEP, C_SIMULATE, C_TRACE_RECORD,
    C_NAMES, C_TYPES, C_MT, C_PAYLOAD_ERROR, C_VIEW, C_TRACE, C_ON_ROW, C_TICKER, C_REPORT, C_FIELDS,
    /* the field names read or written per receipt, pushed once per batch:
     * lua_getfield would look each C string up in Lua's string cache (a
     * strcmp) every time */
    K_TICKER, K_RECEIPT_ID, K_N, K_ERROR, K_PAYLOAD, K_STATE, K_CURRENT, K_OPEN, K_TS,
    K_VIEW_PACKED, K_VIEW, K_LAST_P, K_RECEIPT, K_LANES, K_FAILING_ROW,
    C_TOP = K_FAILING_ROW
};

/* The names of the K_ slots, in their order. */
static const char *const key_names[] = {"ticker", "receipt_id", "n", "error", "payload", "state", "current", "open",
                                        "ts", "view_packed", "view", "last_p", "receipt", "lanes", "failing_row"};
_Static_assert(sizeof key_names / sizeof *key_names == K_FAILING_ROW - K_TICKER + 1, "a name for each K_ slot");

/* Pushes t[key] (key: a K_ slot; t: an absolute index), as lua_getfield
 * does; returns its type. */
static int get_key(lua_State *L, int t, int key)
{
    lua_pushvalue(L, key);
    return lua_gettable(L, t);
}

/* t[key] = the value on top (popped), as lua_setfield does. */
static void set_key(lua_State *L, int t, int key)
{
    lua_pushvalue(L, key);
    lua_insert(L, -2);
    lua_settable(L, t);
}

/* Calls the rule function at fn_idx with the nargs values on top of the
 * stack, protected (under the sandbox guard with limits), leaving nres
 * results.  A failure goes to rule_failed(row, err), which raises. */
static void call_rule(lua_State *L, int fn_idx, int nargs, int nres, int row_idx)
{
    int status;
    if (!lua_isnil(L, C_LIMITS)) {
        int base = lua_gettop(L) - nargs;
        lua_pushvalue(L, C_GUARD);
        lua_pushvalue(L, C_LIMITS);
        lua_pushvalue(L, fn_idx);
        lua_rotate(L, base + 1, 3); /* guard, limits, fn, args... */
        status = lua_pcall(L, nargs + 2, nres, 0);
    } else {
        lua_pushvalue(L, fn_idx);
        lua_insert(L, -(nargs + 1));
        status = lua_pcall(L, nargs, nres, C_TRACEBACK);
    }
    if (status != LUA_OK) {
        lua_pushvalue(L, C_RULE_FAILED);
        lua_pushvalue(L, row_idx);
        lua_pushvalue(L, -3);
        lua_call(L, 2, 0); /* raises */
        luaL_error(L, "rule_failed returned");
    }
}

/* Whether the payload at p_idx holds a declared state field with another
 * type than declared (read raw, as extract does): then the receipt is bad
 * input, which schema.payload_error describes. */
static int payload_mistyped(lua_State *L, int p_idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, C_NAMES);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, C_NAMES, i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, p_idx) != LUA_TNIL) {
            const char *got = luaL_typename(L, -1);
            lua_pushvalue(L, -2);
            lua_rawget(L, C_TYPES);
            const char *want = lua_tostring(L, -1);
            int bad = !want || strcmp(want, got) != 0;
            lua_pop(L, 3);
            if (bad)
                return 1;
        } else {
            lua_pop(L, 2);
        }
    }
    return 0;
}

/* Adds d to the integer field k of the table at idx. */
static void add_field(lua_State *L, int idx, const char *k, lua_Integer d)
{
    lua_getfield(L, idx, k);
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, v + d);
    lua_setfield(L, idx, k);
}

/* Runs the decoded row at row_idx (ticker at t_idx) against the working
 * record at tk_idx.  Returns 1 if processed, 0 if skipped (reported). */
static int process_row(lua_State *L, int row_idx, int t_idx, int tk_idx, int trades_only, uint32_t *sum,
                       step_budget *b, lua_Integer *errors)
{
    size_t rid_len;
    get_key(L, row_idx, K_RECEIPT_ID);
    const char *rid = lua_tolstring(L, -1, &rid_len);
    int rid_idx = lua_gettop(L);
    if (rid)
        *sum = step_sum_add(*sum, rid, rid_len);
    /* tk.n = (tk.n or 0) + 1 */
    get_key(L, tk_idx, K_N);
    if (lua_isinteger(L, -1))
        lua_pushinteger(L, lua_tointeger(L, -1) + 1);
    else
        lua_pushnumber(L, lua_tonumber(L, -1) + 1);
    set_key(L, tk_idx, K_N);
    lua_pop(L, 1);
    lua_pushvalue(L, t_idx);
    lua_pushvalue(L, tk_idx);
    lua_rawset(L, C_DIRTY);

    get_key(L, row_idx, K_ERROR);
    int has_error = lua_toboolean(L, -1);
    get_key(L, row_idx, K_PAYLOAD);
    int p_idx = lua_gettop(L);
    int bad = has_error || !lua_istable(L, p_idx);
    if (!bad) {
        lua_geti(L, p_idx, 1);
        bad = !lua_isnil(L, -1);
        lua_pop(L, 1);
    }
    int mistyped = !bad && payload_mistyped(L, p_idx);
    if (bad || mistyped) {
        (*errors)++;
        lua_pushvalue(L, C_REPORT);
        lua_pushvalue(L, A_RP);
        if (has_error) {
            lua_pushvalue(L, p_idx - 1);
        } else if (mistyped) { /* the message names the receipt, field and byte offset */
            lua_pushvalue(L, C_PAYLOAD_ERROR);
            lua_pushvalue(L, row_idx);
            lua_call(L, 1, 1);
        } else {
            lua_pushfstring(L, "receipt %s: payload_json is not a JSON object", rid ? rid : "?");
        }
        lua_getfield(L, row_idx, "index");
        lua_pushvalue(L, t_idx);
        lua_call(L, 4, 0);
        return 0;
    }
    lua_pushvalue(L, t_idx);
    set_key(L, p_idx, K_TICKER);
    get_key(L, tk_idx, K_STATE);
    int ex_idx = lua_gettop(L);
    lua_pushvalue(L, C_BEGIN);
    lua_pushvalue(L, t_idx);
    lua_call(L, 1, 0);
    lua_pushvalue(L, tk_idx);
    set_key(L, A_RP, K_CURRENT);

    double t0 = b->on ? step_clock_ms() : 0;
    lua_pushvalue(L, p_idx);
    lua_pushvalue(L, row_idx);
    lua_pushvalue(L, ex_idx);
    get_key(L, tk_idx, K_OPEN);
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    call_rule(L, C_STEP, 4, 4, row_idx); /* stage, final, forced, rule */
    int res_idx = lua_gettop(L) - 3;
    if (lua_toboolean(L, res_idx + 1) && /* kept in the lanes of every version: a name */
        (lua_type(L, res_idx + 1) != LUA_TSTRING || lua_rawlen(L, res_idx + 1) > STEP_LANE_MAX))
        luaL_error(L, "receipt %s (%s): the rules' step returned a final lane that is a %s%s (a lane is a name of at "
                      "most %d bytes, or false)", rid ? rid : "?", lua_tostring(L, t_idx), luaL_typename(L, res_idx + 1),
                   lua_type(L, res_idx + 1) == LUA_TSTRING ? " too long" : "", STEP_LANE_MAX);
    double t1 = b->on ? step_clock_ms() : 0;
    lua_pushvalue(L, p_idx);
    get_key(L, row_idx, K_TS);
    lua_pushvalue(L, C_BOOK);
    call_rule(L, C_SIMULATE, 3, 0, row_idx);
    double t2 = b->on ? step_clock_ms() : 0;

    /* the declared state, as a store round trip gives it back */
    lua_pushvalue(L, C_EXTRACT);
    lua_pushvalue(L, p_idx);
    lua_pushvalue(L, C_NAMES);
    lua_pushvalue(L, C_TYPES);
    lua_pushvalue(L, C_MT);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        const char *e = luaL_tolstring(L, -1, NULL);
        luaL_error(L, "receipt %s (%s): %s", rid ? rid : "?", lua_tostring(L, t_idx), e);
    }
    set_key(L, tk_idx, K_STATE);
    /* the view: packed now (the payload need not outlive the receipt) */
    int packed = 0;
    if (!trades_only) {
        lua_pushvalue(L, C_PICK);
        lua_pushvalue(L, p_idx);
        lua_pushvalue(L, C_VIEW);
        packed = lua_pcall(L, 2, 1, 0) == LUA_OK;
        if (packed) {
            set_key(L, tk_idx, K_VIEW_PACKED);
            lua_pushnil(L);
            set_key(L, tk_idx, K_VIEW);
        } else {
            lua_pop(L, 1); /* a field that cannot be stored: reported at the bucket's end */
        }
    }
    if (packed)
        lua_pushnil(L);
    else
        lua_pushvalue(L, p_idx);
    set_key(L, tk_idx, K_LAST_P);
    lua_pushvalue(L, rid_idx);
    set_key(L, tk_idx, K_RECEIPT);
    if (!trades_only) { /* the receipt's lane: {ts, final or false, receipt id} */
        get_key(L, tk_idx, K_LANES);
        lua_createtable(L, 3, 0);
        get_key(L, row_idx, K_TS);
        lua_rawseti(L, -2, 1);
        if (lua_toboolean(L, res_idx + 1))
            lua_pushvalue(L, res_idx + 1);
        else
            lua_pushboolean(L, 0);
        lua_rawseti(L, -2, 2);
        lua_pushvalue(L, rid_idx);
        lua_rawseti(L, -2, 3);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
    }
    if (b->on) {
        double t3 = step_clock_ms();
        b->ms[STEP_RULE] += t1 - t0;
        b->ms[STEP_SIMULATE] += t2 - t1;
        b->ms[STEP_PACK] += t3 - t2;
    }
    /* trace(R.trace_record(row, p, ex, stage, final, forced, rule), row),
     * the record made by rule code (so under the guard); on_row(row, p, ex,
     * ...) */
    for (int pass = 0; pass < 2; pass++) {
        int cb = pass == 0 ? C_TRACE : C_ON_ROW;
        if (lua_isnil(L, cb) || (pass == 0 && lua_isnil(L, C_TRACE_RECORD)))
            continue;
        lua_pushvalue(L, cb);
        lua_pushvalue(L, row_idx);
        lua_pushvalue(L, p_idx);
        lua_pushvalue(L, ex_idx);
        for (int i = 0; i < 4; i++)
            lua_pushvalue(L, res_idx + i);
        if (pass == 0) {
            call_rule(L, C_TRACE_RECORD, 7, 1, row_idx);
            lua_pushvalue(L, row_idx);
            lua_call(L, 2, 0);
        } else {
            lua_call(L, 7, 0);
        }
    }
    return 1;
}

/* step.walk(rp, rows, bucket, counters [, plans, counts]) -> rows done.
 * Adds to counters.rows, .seen, .errors; keeps rp.rows_sum.  Clears each
 * entry of rows once run. */
static int l_walk(lua_State *L)
{
    luaL_checktype(L, A_RP, LUA_TTABLE);
    luaL_checktype(L, A_ROWS, LUA_TTABLE);
    luaL_checktype(L, A_COUNTERS, LUA_TTABLE);
    lua_settop(L, A_COUNTS);
    luaL_checkstack(L, C_TOP + 40, "step.walk"); /* the context, then a row's work */
    int planned = lua_istable(L, A_PLANS);
    if (lua_getfield(L, LUA_REGISTRYINDEX, SETUP_KEY) != LUA_TTABLE)
        return luaL_error(L, "step.walk: step.setup was not called");
    int s = lua_gettop(L);
    lua_getfield(L, s, "guard");
    lua_getfield(L, s, "traceback");
    lua_getfield(L, s, "extract");
    lua_getfield(L, s, "rule_failed");
    lua_getfield(L, s, "pick");
    lua_remove(L, s); /* the context slots start at C_GUARD */
    lua_getfield(L, A_RP, "ticks");
    lua_getfield(L, A_RP, "dirty");
    lua_getfield(L, A_RP, "limits");
    lua_getfield(L, A_RP, "book");
    lua_getfield(L, C_BOOK, "begin");
    lua_getfield(L, A_RP, "R");
    int r = lua_gettop(L);
    lua_getfield(L, r, "step");
    lua_getfield(L, r, "simulate");
    lua_getfield(L, r, "trace_record");
    lua_remove(L, r);
    lua_getfield(L, A_RP, "schema");
    int sc = lua_gettop(L);
    lua_getfield(L, sc, "names");
    lua_getfield(L, sc, "types");
    lua_getfield(L, sc, "mt");
    lua_getfield(L, sc, "payload_error");
    lua_getfield(L, sc, "view");
    lua_remove(L, sc);
    lua_getfield(L, A_RP, "trace");
    lua_getfield(L, A_RP, "on_row");
    lua_getfield(L, A_RP, "ticker");
    lua_getfield(L, A_RP, "report");
    lua_getfield(L, A_RP, "fields");
    int deferred = luaL_testudata(L, C_FIELDS, RETAPE_FIELDSET_MT) != NULL;
    for (size_t k = 0; k < sizeof key_names / sizeof *key_names; k++)
        lua_pushstring(L, key_names[k]);
    if (lua_gettop(L) != C_TOP)
        return luaL_error(L, "step.walk: context of %d slots, expected %d", lua_gettop(L), C_TOP);
    if (!lua_istable(L, C_TICKS) || !lua_istable(L, C_DIRTY) || !lua_isfunction(L, C_STEP) || !lua_isfunction(L, C_SIMULATE))
        return luaL_error(L, "step.walk: the replay has no working records or no ruleset");
    lua_getfield(L, A_RP, "rows_sum");
    uint32_t sum = (uint32_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    step_budget b = {0};
    lua_getfield(L, A_RP, "budget");
    b.on = lua_istable(L, -1);
    lua_getfield(L, A_RP, "trades_only");
    int trades_only = lua_toboolean(L, -1);
    lua_pop(L, 2);

    lua_Integer rows = 0, seen = 0, done = 0, errors = 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, A_ROWS);
    int top = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, A_ROWS, i);
        int row_idx = top + 1;
        get_key(L, row_idx, K_TICKER);
        int t_idx = top + 2;
        lua_pushvalue(L, t_idx);
        lua_rawget(L, C_TICKS);
        int tk_idx = top + 3;
        if (planned) {
            lua_pushvalue(L, t_idx);
            lua_rawget(L, A_COUNTS);
            lua_Integer c = lua_tointeger(L, -1) + 1;
            lua_pop(L, 1);
            lua_pushvalue(L, t_idx);
            lua_pushinteger(L, c);
            lua_rawset(L, A_COUNTS);
            lua_pushvalue(L, t_idx);
            lua_rawget(L, A_PLANS);
            lua_Integer plan = lua_tointeger(L, -1);
            lua_pop(L, 1);
            if (c > plan) {
                lua_pushnil(L);
                lua_replace(L, tk_idx);
            }
        } else if (lua_isnil(L, tk_idx)) {
            lua_pop(L, 1);
            lua_pushvalue(L, C_TICKER);
            lua_pushvalue(L, A_RP);
            lua_pushvalue(L, t_idx);
            lua_pushvalue(L, A_BUCKET);
            lua_call(L, 3, 1);
        }
        if (lua_istable(L, tk_idx)) {
            if (get_key(L, tk_idx, K_LANES) == LUA_TNIL) {
                lua_newtable(L);
                set_key(L, tk_idx, K_LANES);
                lua_pushinteger(L, 0);
                set_key(L, tk_idx, K_N);
            }
            lua_pop(L, 1);
            lua_pushvalue(L, row_idx);
            set_key(L, A_RP, K_FAILING_ROW);
            if (deferred) { /* a row fetched undecoded: its payload now, just before its receipt runs */
                double t0 = b.on ? step_clock_ms() : 0;
                retape_lua_decode_row(L, row_idx, C_FIELDS);
                if (b.on)
                    b.ms[STEP_FETCH] += step_clock_ms() - t0;
            }
            if (process_row(L, row_idx, t_idx, tk_idx, trades_only, &sum, &b, &errors))
                rows++;
            seen++;
            if (errors) { /* counted as they happen: a later raise keeps them */
                add_field(L, A_COUNTERS, "errors", errors);
                errors = 0;
            }
        }
        done++;
        lua_settop(L, top);
        lua_pushnil(L); /* the row is done with: garbage at once */
        lua_rawseti(L, A_ROWS, i);
    }
    add_field(L, A_COUNTERS, "rows", rows);
    add_field(L, A_COUNTERS, "seen", seen);
    lua_pushinteger(L, (lua_Integer)sum);
    lua_setfield(L, A_RP, "rows_sum");
    if (b.on) {
        lua_getfield(L, A_RP, "budget");
        static const char *const names[] = {"fetch", "step", "simulate", "pack"};
        for (int k = 0; k < 4; k++) {
            lua_getfield(L, -1, names[k]);
            lua_Number v = lua_tonumber(L, -1);
            lua_pop(L, 1);
            lua_pushnumber(L, v + b.ms[STEP_FETCH + k]);
            lua_setfield(L, -2, names[k]);
        }
        lua_pop(L, 1);
    }
    lua_pushinteger(L, done);
    return 1;
}

/* Packs the member `name` of a version record: the field of the working
 * record at tk_idx, or (or_empty, when it is nil or false) an empty
 * table's bytes, as `tk[name] or {}` packs; at most max_values values
 * (what the rules made: RETAPE_KEPT_VALUES_MAX; the engine's lanes:
 * SIZE_MAX, no bound). */
static void put_member(lua_State *L, pack_writer *w, int tk_idx, const char *name, int or_empty, size_t max_values)
{
    pack_put_key(w, name, strlen(name));
    lua_getfield(L, tk_idx, name);
    if (or_empty && !lua_toboolean(L, -1))
        pack_put_count(w, PACK_LIST, 0); /* {} packs as an empty list */
    else
        retape_lua_pack_value(L, w, -1, max_values);
    lua_pop(L, 1);
}

/* Puts the record in w into batch under the key prefix .. names[i] ..
 * tail (names: the list at names_idx); the key is built on the C stack
 * when short, else in a GC-owned userdata (left on the stack).  Raises
 * only on a memory error or a name that is not a string. */
static void put_version(lua_State *L, retape_kv_batch *batch, const char *prefix, size_t prefix_len, int names_idx,
                        lua_Integer i, const char *tail, size_t tail_len, const pack_writer *w)
{
    size_t name_len;
    lua_rawgeti(L, names_idx, i);
    const char *name = lua_tolstring(L, -1, &name_len);
    if (!name)
        luaL_error(L, "step.versions: names[%d] is not a string", (int)i);
    size_t key_len = prefix_len + name_len + tail_len;
    char small[128];
    char *key = key_len <= sizeof small ? small : lua_newuserdatauv(L, key_len, 0);
    memcpy(key, prefix, prefix_len);
    memcpy(key + prefix_len, name, name_len);
    memcpy(key + prefix_len + name_len, tail, tail_len);
    retape_kv_batch_put(batch, key, key_len, w->data, w->len);
    retape_lua_check_batch_size(L, batch);
}

/* step.versions(dirty, names, view_names [, batch, prefix, tail]) -> list
 * of bytes, one per name (with a batch: the number of records put in it,
 * names[i]'s under the key prefix .. names[i] .. tail): the packed version
 * record {lanes, n, open, receipt, state, view} of the
 * working record dirty[T] (run/ticker.lua, encode_version), the very bytes
 * pack.encode gives for it, members in key order.  A record's view: the
 * fields view_names of its last receipt's payload (tk.last_p), packed once
 * into tk.view_packed (tk.last_p and tk.view cleared); else tk.view_packed;
 * else the table tk.view.  Raises on a value the store cannot keep
 * (the caller then takes the path that names it); the records packed
 * before it keep their packed view, which that path reuses. */
static int l_versions(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    retape_kv_batch *batch = lua_isnoneornil(L, 4) ? NULL : retape_lua_check_batch(L, 4);
    size_t prefix_len = 0, tail_len = 0;
    const char *prefix = batch ? luaL_checklstring(L, 5, &prefix_len) : NULL;
    const char *tail = batch ? luaL_checklstring(L, 6, &tail_len) : NULL;
    lua_settop(L, 6);
    pack_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    if (batch)
        lua_pushnil(L); /* no list */
    else
        lua_createtable(L, (int)n, 0);
    int out = 7;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        if (lua_rawget(L, 1) != LUA_TTABLE)
            return luaL_error(L, "step.versions: names[%d] is not a dirty ticker", (int)i);
        int tk = lua_gettop(L);
        if (lua_getfield(L, tk, "last_p") == LUA_TTABLE) { /* the view of its last receipt, packed once */
            pack_writer_reset(w);
            retape_lua_pack_pick(L, w, -1, 3);
            if (w->failed)
                return luaL_error(L, "not enough memory");
            lua_pushlstring(L, w->data, w->len);
            lua_setfield(L, tk, "view_packed");
            lua_pushnil(L);
            lua_setfield(L, tk, "view");
            lua_pushnil(L);
            lua_setfield(L, tk, "last_p");
        }
        lua_pop(L, 1);
        int has_open = lua_getfield(L, tk, "open") != LUA_TNIL && lua_toboolean(L, -1);
        int has_receipt = lua_getfield(L, tk, "receipt") != LUA_TNIL;
        lua_pop(L, 2);
        pack_writer_reset(w);
        pack_put_count(w, PACK_OBJECT, (uint64_t)(4 + has_open + has_receipt));
        put_member(L, w, tk, "lanes", 1, SIZE_MAX);
        pack_put_key(w, "n", 1);
        lua_getfield(L, tk, "n");
        pack_put_number(w, lua_toboolean(L, -1) ? (double)luaL_checknumber(L, -1) : 0); /* tk.n or 0 */
        lua_pop(L, 1);
        if (has_open)
            put_member(L, w, tk, "open", 0, RETAPE_KEPT_VALUES_MAX);
        if (has_receipt)
            put_member(L, w, tk, "receipt", 0, RETAPE_KEPT_VALUES_MAX);
        put_member(L, w, tk, "state", 1, RETAPE_KEPT_VALUES_MAX);
        size_t vlen;
        if (lua_getfield(L, tk, "view_packed") == LUA_TSTRING) {
            const char *v = lua_tolstring(L, -1, &vlen);
            pack_put_key(w, "view", 4);
            pack_put_raw(w, v, vlen);
            lua_pop(L, 1);
        } else {
            lua_pop(L, 1);
            put_member(L, w, tk, "view", 1, RETAPE_KEPT_VALUES_MAX);
        }
        if (w->failed)
            return luaL_error(L, "not enough memory");
        if (batch)
            put_version(L, batch, prefix, prefix_len, 2, i, tail, tail_len, w);
        else {
            lua_pushlstring(L, w->data, w->len);
            lua_rawseti(L, out, i);
        }
        lua_settop(L, out);
    }
    if (w->cap > (1u << 20))
        pack_writer_free(w); /* do not keep a huge buffer after a huge record */
    if (batch)
        lua_pushinteger(L, n);
    return 1;
}

static int writer_gc(lua_State *L)
{
    pack_writer_free(luaL_checkudata(L, 1, WRITER_MT));
    return 0;
}

int luaopen_retape_step(lua_State *L)
{
    static const luaL_Reg fns[] = {{"setup", l_setup}, {"walk", l_walk}, {NULL, NULL}};
    luaL_newlib(L, fns);
    luaL_newmetatable(L, WRITER_MT);
    lua_pushcfunction(L, writer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    pack_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WRITER_MT);
    lua_pushcclosure(L, l_versions, 1);
    lua_setfield(L, -2, "versions");
    return 1;
}
