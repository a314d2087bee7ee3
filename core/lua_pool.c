/*
 * lua_pool.c — the worker threads of a threaded replay: `require "retape.pool"`.
 *
 *   local p = assert(pool.start { parts = N, module = "retape.part",
 *                                 config = TEXT, kv = store_kv [, caller_walks = false] [, depth = D] })
 *   p:reset()                         -- empty the next round's inboxes
 *   local routed, more, bytes = p:route(cursor, first, stop) -- a bucket's rows to the next round's inboxes (repeatable)
 *   p:post(message)                   -- every worker runs handler(message, inbox) on that round
 *   local rows = p:inbox():fetch(n, fields)  -- meanwhile, part 0 works here (the round last posted)
 *   local replies, data, errors = p:collect() -- waits for every worker to finish the oldest round posted
 *   p:parts(), p:workers(), p:in_flight()  -- parts that walk rows; worker threads; rounds posted, not collected
 *   p:close()
 *   pool.cores() -> the processors this process may run on
 *
 * Lua states are not thread-safe, so each of the N-1 workers owns a Lua
 * state with this process's Lua layer, built in its own thread (all at
 * once; pool.start returns when every one is ready or one failed): it
 * runs `require(module).init(config, kv, inbox, part)`, which returns the
 * handler, with its own view of the caller's RocksDB store (retape_kv_view:
 * reads only; what a worker writes it returns as a serialized batch) and
 * its inbox.  Part 0 is the caller itself; with caller_walks = false it
 * gets no rows (the caller only routes and commits) and N workers walk
 * parts 1..N.  post/collect is one round: the workers run in parallel, and
 * collect waits for all of them.  Up to `depth` rounds (default 1) may be
 * posted before the oldest is collected, each with its own inboxes, message
 * and results (slots: the next round takes the lowest free one other
 * than that of the round last collected, whose writes p:append_kept may
 * still be reading, and that one only when no other is free; so only as
 * many are ever filled as rounds are in flight at once, plus one while the
 * caller commits: each keeps its buffers for the next round it holds): a
 * worker goes on to the next posted round as soon as it finished one, so
 * parts whose share of a round differs do not wait for each other at every
 * round, and the caller routes and commits while they walk.  A handler
 * that raises reports its message (with traceback) in errors[i]; the other
 * workers finish their round regardless, and the caller decides.
 */
#define _POSIX_C_SOURCE 200809L
#include "lua_common.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define POOL_MT "retape.pool"
#define INBOX_MT "retape.pool.inbox"

/* What one worker's handler returned for one round (malloc'd copies). */
typedef struct pool_result {
    char *reply, *data, *error;
    size_t reply_len, data_len;
} pool_result;

/* One slot of the ring: a round's inboxes (one per part), its message and
 * the workers' results.  Round n (1-based) lives in slot (n - 1) % depth. */
typedef struct pool_round {
    retape_inbox **inboxes; /* parts of them; inboxes[0] is the caller's */
    char *message;
    size_t message_len;
    pool_result *results;   /* parts - 1: one per worker */
    unsigned pending;       /* workers still running this round */
} pool_round;

struct inbox_box;

typedef struct pool_worker {
    retape_host *host;
    lua_State *L;
    int handler_ref;
    pthread_t thread;
    int started;
    size_t seen; /* rounds it ran */
    struct inbox_box *box; /* the inbox its handler gets, pointed at each round's */
    int inbox_ref;         /* that inbox object, in its registry */
    int ready;             /* its state is built (or failed: init_error) */
    char *init_error;
} pool_worker;

typedef struct pool {
    unsigned parts;  /* inboxes per round: the caller's, then one per worker */
    unsigned first;  /* the first part that gets rows: 0, or 1 when the caller does not walk */
    unsigned depth;  /* rounds that may be in flight */
    pool_round *rounds;     /* depth slots */
    pool_worker *workers;   /* parts - 1 */
    pthread_mutex_t mu;
    pthread_cond_t job, done;
    int sync_ready;
    size_t posted, collected; /* rounds posted, rounds collected (under mu) */
    unsigned *order;          /* round n (1-based) in flight is in slot order[(n - 1) % depth] */
    unsigned char *busy;      /* per slot: holds a round in flight */
    int next_slot;            /* the slot route/reset fill for the next post (-1: not chosen yet) */
    unsigned last_slot;       /* the slot of the round last collected */
    unsigned caller_slot;     /* the slot of the round last posted: the caller's inbox */
    int stopping;
    unsigned starting; /* workers still building their states (under mu) */
    char *lua_dir;
    char *module, *config; /* what each worker state runs: require(module).init(config, ...) */
    size_t config_len;     /* (config: any bytes; retape.wire's text carries long strings raw) */
} pool;

typedef struct inbox_box {
    retape_inbox *in;         /* a worker's: set before each round it runs */
    const struct pool *owner; /* the caller's inbox: its pool (NULL in a worker state) */
} inbox_box;

/* ---------------------------------------------------------------------------
 * inboxes, as Lua sees them */

/* The inbox at idx (the caller's: that of the round last posted); raises
 * if its pool was closed. */
static retape_inbox *to_inbox(lua_State *L, int idx)
{
    inbox_box *box = luaL_checkudata(L, idx, INBOX_MT);
    if (box->owner) {
        const pool *p = box->owner;
        if (!p->rounds)
            luaL_error(L, "attempt to use the inbox of a closed pool");
        return p->rounds[p->caller_slot].inboxes[0];
    }
    return box->in;
}

/* inbox:fetch(n, fieldset | decode [, bucket]) -> up to n rows, as
 * cur:fetch's, each with `index`, its position in the bucket's window; with
 * `bucket`, only the rows of that bucket (an inbox holds several in order).
 * Raises on bad arguments, a closed pool or a memory error. */
static int l_inbox_fetch(lua_State *L)
{
    retape_inbox *in = to_inbox(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    int fs = luaL_testudata(L, 3, RETAPE_FIELDSET_MT) ? 3 : 0;
    int decode = fs || lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    lua_Integer only = luaL_optinteger(L, 4, 0);
    luaL_argcheck(L, n > 0, 2, "batch size must be positive");
    lua_createtable(L, (int)(n < 1024 ? n : 1024), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        retape_receipt r;
        int64_t index;
        if (only && retape_inbox_peek_bucket(in) != only)
            break;
        if (!retape_inbox_next(in, &r, &index))
            break;
        retape_lua_push_row(L, &r, fs, decode ? lua_upvalueindex(1) : 0);
        lua_pushinteger(L, index);
        lua_setfield(L, -2, "index");
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* inbox:keep(batch) -> length: appends the batch's operations (serialized)
 * to the writes the inbox carries back, for the committing thread
 * (p:append_kept), and empties the batch.  Raises on bad arguments or out
 * of memory (keeping nothing then). */
static int l_inbox_keep(lua_State *L)
{
    retape_inbox *in = to_inbox(L, 1);
    retape_kv_batch *batch = retape_lua_check_batch(L, 2);
    size_t len;
    const char *data = retape_kv_batch_data(batch, &len);
    if (retape_inbox_keep(in, data, len) != 0)
        return luaL_error(L, "out of memory keeping a part's writes");
    retape_kv_batch_clear(batch);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

/* inbox:count() -> rows routed to it this round */
static int l_inbox_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)retape_inbox_count(to_inbox(L, 1)));
    return 1;
}

/* Pushes an inbox object over `in` (or, with `owner`, over the caller's
 * inbox of that pool's round last posted, checked on use) and returns it.
 * Raises only on a memory error. */
static inbox_box *push_inbox(lua_State *L, retape_inbox *in, const struct pool *owner)
{
    inbox_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->in = in;
    box->owner = owner;
    luaL_setmetatable(L, INBOX_MT);
    return box;
}

static void register_inbox_class(lua_State *L)
{
    if (luaL_newmetatable(L, INBOX_MT)) {
        lua_createtable(L, 0, 2);
        retape_lua_push_payload_decoder(L);
        lua_pushcclosure(L, l_inbox_fetch, 1);
        lua_setfield(L, -2, "fetch");
        lua_pushcfunction(L, l_inbox_count);
        lua_setfield(L, -2, "count");
        lua_pushcfunction(L, l_inbox_keep);
        lua_setfield(L, -2, "keep");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

/* ---------------------------------------------------------------------------
 * worker states and threads */

/* What a worker's init gets: the config, the caller's store, its inbox and part. */
typedef struct worker_args {
    const char *config;
    size_t config_len;
    retape_kv *base;
    retape_inbox *in;
    unsigned part;
} worker_args;

/* Pushes a worker's init arguments in its new state: config, its own kv
 * view of the caller's store (nil without one), its inbox, its part number
 * (1..parts-1).  Raises (holding nothing) on a memory error. */
static int push_worker_args(lua_State *L, void *ud)
{
    const worker_args *a = ud;
    register_inbox_class(L);
    lua_pushlstring(L, a->config, a->config_len);
    if (a->base) {
        retape_kv **slot = retape_lua_kv_newbox(L);
        char *err = NULL;
        *slot = retape_kv_view(a->base, &err);
        if (!*slot)
            return raise_message(L, err);
    } else {
        lua_pushnil(L);
    }
    push_inbox(L, a->in, NULL);
    lua_pushinteger(L, a->part);
    return 4;
}

/* Protected, in a worker state: handler(message, inbox) -> reply [, data],
 * copied (malloc'd) into the pool_result at 1.  Raises on a handler error,
 * a bad reply or out of memory (holding nothing then). */
static int worker_call(lua_State *L)
{
    pool_result *out = lua_touserdata(L, 1);
    const char *message = lua_touserdata(L, 2);
    size_t message_len = (size_t)lua_tointeger(L, 3);
    int handler_ref = (int)lua_tointeger(L, 5);
    lua_rawgeti(L, LUA_REGISTRYINDEX, handler_ref);
    lua_pushlstring(L, message, message_len);
    lua_pushvalue(L, 4); /* the inbox object */
    lua_call(L, 2, 2);
    size_t n, m = 0;
    const char *reply = luaL_checklstring(L, -2, &n);
    const char *data = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &m);
    char *rcopy = malloc(n + 1), *dcopy = data ? malloc(m + 1) : NULL;
    if (!rcopy || (data && !dcopy)) {
        free(rcopy);
        free(dcopy);
        return luaL_error(L, "out of memory");
    }
    memcpy(rcopy, reply, n);
    rcopy[n] = '\0';
    if (data) {
        memcpy(dcopy, data, m);
        dcopy[m] = '\0';
    }
    out->reply = rcopy;
    out->reply_len = n;
    out->data = dcopy;
    out->data_len = m;
    return 0;
}

typedef struct worker_arg {
    pool *p;
    unsigned index; /* 0-based: workers[index] walks part index + 1 */
    retape_kv *base;
} worker_arg;

/* Protected, in a new worker state: the inbox object its handler gets (at
 * 1, a lightuserdata: the inbox), kept in its registry; returns the box and
 * the reference. */
static int make_handler_inbox(lua_State *L)
{
    inbox_box *box = push_inbox(L, lua_touserdata(L, 1), NULL);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, box);
    lua_pushinteger(L, ref);
    return 2;
}

/* Builds a worker's state in its own thread (the workers build theirs at
 * the same time): the Lua layer, require(module).init(...), its handler's
 * inbox.  0, or -1 with a malloc'd message in w->init_error.  Never raises. */
static int build_worker(pool *p, unsigned index, retape_kv *base)
{
    pool_worker *w = &p->workers[index];
    worker_args args = {p->config, p->config_len, base, p->rounds[0].inboxes[index + 1], index + 1};
    char *why = NULL;
    w->host = retape_lua_worker_new(p->lua_dir, p->module, push_worker_args, &args, &w->handler_ref, &why);
    if (w->host) {
        w->L = retape_host_lua(w->host);
        lua_pushcfunction(w->L, make_handler_inbox);
        lua_pushlightuserdata(w->L, args.in);
        if (retape_lua_docall(w->L, 1, 2, &why) == 0) {
            w->box = lua_touserdata(w->L, -2);
            w->inbox_ref = (int)lua_tointeger(w->L, -1);
            lua_pop(w->L, 2);
            return 0;
        }
    }
    set_error(&w->init_error, "worker %u: %s", index + 1, why ? why : "unknown error");
    free(why);
    return -1;
}

/* The thread of a worker: builds its state, then runs every posted round
 * in order, as soon as it is posted (not waiting for the other workers),
 * and reports each. */
static void *worker_main(void *arg)
{
    pool *p = ((worker_arg *)arg)->p;
    unsigned index = ((worker_arg *)arg)->index;
    retape_kv *base = ((worker_arg *)arg)->base;
    pool_worker *w = &p->workers[index];
    free(arg);
#ifdef __linux__
    char name[16]; /* "retape:w2": told apart from the committing thread in top, perf and gdb */
    snprintf(name, sizeof name, "retape:w%u", index + 1);
    prctl(PR_SET_NAME, name, 0, 0, 0);
#endif
    int built = build_worker(p, index, base) == 0;
    pthread_mutex_lock(&p->mu);
    w->ready = 1;
    p->starting--;
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
    if (!built)
        return NULL;
    int inbox_ref = w->inbox_ref;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stopping && w->seen == p->posted)
            pthread_cond_wait(&p->job, &p->mu);
        if (p->stopping) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        pool_round *r = &p->rounds[p->order[w->seen % p->depth]];
        w->seen++;
        pthread_mutex_unlock(&p->mu);
        /* the slot is the caller's again only once every worker finished it */
        w->box->in = r->inboxes[index + 1];
        pool_result *out = &r->results[index];
        lua_State *L = w->L;
        lua_pushcfunction(L, worker_call);
        lua_pushlightuserdata(L, out);
        lua_pushlightuserdata(L, r->message);
        lua_pushinteger(L, (lua_Integer)r->message_len);
        lua_rawgeti(L, LUA_REGISTRYINDEX, inbox_ref);
        lua_pushinteger(L, w->handler_ref);
        char *err = NULL;
        if (retape_lua_docall(L, 5, 0, &err) != 0)
            out->error = err ? err : dup_string("unknown error");
        lua_gc(L, LUA_GCSTEP, 0);

        pthread_mutex_lock(&p->mu);
        if (--r->pending == 0)
            pthread_cond_broadcast(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Frees a round's results (not its inboxes nor message). */
static void clear_results(pool *p, pool_round *r)
{
    for (unsigned i = 0; r->results && i + 1 < p->parts; i++) {
        pool_result *o = &r->results[i];
        free(o->reply);
        free(o->data);
        free(o->error);
        memset(o, 0, sizeof *o);
    }
}

/* Stops the threads and frees everything (idempotent; the __gc). */
static void pool_teardown(pool *p)
{
    if (p->sync_ready) {
        pthread_mutex_lock(&p->mu);
        p->stopping = 1;
        pthread_cond_broadcast(&p->job);
        pthread_mutex_unlock(&p->mu);
    }
    if (p->workers) {
        for (unsigned i = 0; i + 1 < p->parts; i++) {
            pool_worker *w = &p->workers[i];
            if (w->started)
                pthread_join(w->thread, NULL);
            w->started = 0;
            retape_host_free(w->host);
            w->host = NULL;
            free(w->init_error);
            w->init_error = NULL;
        }
        free(p->workers);
        p->workers = NULL;
    }
    if (p->rounds) {
        for (unsigned d = 0; d < p->depth; d++) {
            pool_round *r = &p->rounds[d];
            clear_results(p, r);
            free(r->results);
            free(r->message);
            for (unsigned i = 0; r->inboxes && i < p->parts; i++)
                retape_inbox_free(r->inboxes[i]);
            free(r->inboxes);
        }
        free(p->rounds);
        p->rounds = NULL;
    }
    free(p->order);
    free(p->busy);
    p->order = NULL;
    p->busy = NULL;
    if (p->sync_ready) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->job);
        pthread_cond_destroy(&p->done);
        p->sync_ready = 0;
    }
    free(p->lua_dir);
    free(p->module);
    free(p->config);
    p->lua_dir = p->module = p->config = NULL;
}

static int pool_gc(lua_State *L)
{
    pool_teardown(luaL_checkudata(L, 1, POOL_MT));
    return 0;
}

static pool *to_pool(lua_State *L, int idx)
{
    pool *p = luaL_checkudata(L, idx, POOL_MT);
    if (!p->rounds)
        luaL_error(L, "attempt to use a closed pool");
    return p;
}

/* Under mu: the slot of the next round to post (chosen once: the lowest
 * free one but the slot of the round last collected, whose kept writes the
 * caller may not have appended yet; that slot when it is the only free
 * one), or -1 while every slot is in flight. */
static int choose_slot(pool *p)
{
    if (p->next_slot < 0) {
        int kept = p->collected > 0 ? (int)p->last_slot : -1;
        for (unsigned d = 0; d < p->depth && p->next_slot < 0; d++)
            if (!p->busy[d] && (int)d != kept)
                p->next_slot = (int)d;
        if (p->next_slot < 0 && kept >= 0 && !p->busy[kept])
            p->next_slot = kept;
    }
    return p->next_slot;
}

/* The slot of the next round to post, whose inboxes route and reset fill;
 * raises while every slot is in flight (its inboxes are being read). */
static pool_round *next_round(lua_State *L, pool *p)
{
    pthread_mutex_lock(&p->mu);
    int slot = choose_slot(p);
    pthread_mutex_unlock(&p->mu);
    if (slot < 0)
        luaL_error(L, "pool: the inboxes are in use until the round is collected");
    return &p->rounds[slot];
}

/* Allocates the ring of `p->depth` rounds (inboxes, results).  0, or -1
 * when out of memory (teardown frees what was made). */
static int make_rounds(pool *p)
{
    p->rounds = calloc(p->depth, sizeof *p->rounds);
    p->order = calloc(p->depth, sizeof *p->order);
    p->busy = calloc(p->depth, 1);
    p->next_slot = -1;
    if (!p->rounds || !p->order || !p->busy)
        return -1;
    for (unsigned d = 0; d < p->depth; d++) {
        pool_round *r = &p->rounds[d];
        r->inboxes = calloc(p->parts, sizeof *r->inboxes);
        r->results = p->parts > 1 ? calloc(p->parts - 1, sizeof *r->results) : NULL;
        if (!r->inboxes || (p->parts > 1 && !r->results))
            return -1;
        for (unsigned i = 0; i < p->parts; i++)
            if (!(r->inboxes[i] = retape_inbox_new()))
                return -1;
    }
    return 0;
}

/* pool.start {parts =, module =, config =, kv =, caller_walks =, depth =}
 * -> pool | nil, message.  Starts the worker threads, which build and
 * initialise their states at the same time, and waits for them (the first
 * worker's error comes back as the message, naming it).  Raises on bad
 * arguments or out of memory (after freeing what it built). */
static int l_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer parts = opt_int_field(L, 1, "parts", 1);
    luaL_argcheck(L, parts >= 1 && parts <= 256, 1, "parts must be 1..256");
    lua_Integer depth = opt_int_field(L, 1, "depth", 1);
    luaL_argcheck(L, depth >= 1 && depth <= 64, 1, "depth must be 1..64");
    lua_getfield(L, 1, "caller_walks");
    unsigned first = lua_isboolean(L, -1) && !lua_toboolean(L, -1) ? 1 : 0;
    lua_pop(L, 1);
    lua_getfield(L, 1, "kv");
    retape_kv *base = lua_isnil(L, -1) ? NULL : retape_lua_check_kv(L, -1);
    lua_pop(L, 1);
    pool *p = lua_newuserdatauv(L, sizeof *p, 1);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, POOL_MT);
    int pidx = lua_gettop(L);
    lua_getfield(L, 1, "kv"); /* the views borrow its database: keep it alive */
    lua_setiuservalue(L, pidx, 1);
    /* held by the pool, so a raise from here on (a bad field, no memory) leaks nothing */
    p->module = opt_string_field(L, 1, "module", "retape.part");
    lua_getfield(L, 1, "config");
    static const char empty[] = "\0\0\0\0{}"; /* retape.wire's text of {} */
    const char *config = empty;
    p->config_len = sizeof empty - 1;
    if (!lua_isnil(L, -1))
        config = luaL_checklstring(L, -1, &p->config_len);
    if ((p->config = malloc(p->config_len + 1)) != NULL)
        memcpy(p->config, config, p->config_len + 1);
    lua_pop(L, 1);
    p->parts = (unsigned)parts + first;
    p->first = first;
    p->depth = (unsigned)depth;
    p->lua_dir = retape_lua_layer_dir(L);
    int oom = make_rounds(p) != 0;
    p->workers = p->parts > 1 ? calloc(p->parts - 1, sizeof *p->workers) : NULL;
    oom = oom || (p->parts > 1 && !p->workers);
    if (!oom && pthread_mutex_init(&p->mu, NULL) == 0) {
        pthread_cond_init(&p->job, NULL);
        pthread_cond_init(&p->done, NULL);
        p->sync_ready = 1;
    }
    if (oom || !p->module || !p->config || !p->sync_ready) {
        pool_teardown(p);
        return luaL_error(L, "pool.start: out of memory");
    }
    char *err = NULL;
    int failed = 0;
    /* the workers build their states in their threads, at the same time */
    for (unsigned i = 0; !failed && i + 1 < p->parts; i++) {
        pool_worker *w = &p->workers[i];
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg) {
            failed = 1;
            err = dup_string("out of memory");
            break;
        }
        arg->p = p;
        arg->index = i;
        arg->base = base;
        pthread_mutex_lock(&p->mu);
        p->starting++;
        pthread_mutex_unlock(&p->mu);
        if (pthread_create(&w->thread, NULL, worker_main, arg) != 0) {
            free(arg);
            pthread_mutex_lock(&p->mu);
            p->starting--;
            pthread_mutex_unlock(&p->mu);
            failed = 1;
            err = dup_string("cannot start a thread");
            break;
        }
        w->started = 1;
    }
    pthread_mutex_lock(&p->mu);
    while (p->starting > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; !failed && i + 1 < p->parts; i++) {
        pool_worker *w = &p->workers[i];
        if (w->init_error) {
            err = w->init_error;
            w->init_error = NULL;
            failed = 1;
        }
    }
    if (failed) {
        pool_teardown(p);
        return push_failure(L, err);
    }
    lua_pushvalue(L, pidx);
    return 1;
}

/* p:route(cursor, first, stop) -> routed, more, bytes: appends the
 * cursor's rows with index in [first, stop) (stop nil: all) to the parts'
 * inboxes of the next round (bytes: what they take there).  Raises while
 * every round is in flight, on a read error or out of memory. */
static int l_route(lua_State *L)
{
    pool *p = to_pool(L, 1);
    pool_round *r = next_round(L, p);
    retape_cursor *cur = retape_lua_check_cursor(L, 2);
    lua_Integer first = luaL_optinteger(L, 3, 0);
    lua_Integer stop = luaL_optinteger(L, 4, -1);
    int64_t routed;
    int more;
    char *err = NULL;
    size_t before = 0, after = 0;
    for (unsigned i = p->first; i < p->parts; i++)
        before += retape_inbox_bytes(r->inboxes[i]);
    if (retape_route(cur, r->inboxes + p->first, p->parts - p->first, first, stop, &routed, &more, &err) != 0)
        return raise_message(L, err);
    for (unsigned i = p->first; i < p->parts; i++)
        after += retape_inbox_bytes(r->inboxes[i]);
    lua_pushinteger(L, routed);
    lua_pushboolean(L, more);
    lua_pushinteger(L, (lua_Integer)(after - before));
    return 3;
}

/* p:reset(): empties the next round's inboxes (raises while every round is
 * in flight) */
static int l_reset(lua_State *L)
{
    pool *p = to_pool(L, 1);
    pool_round *r = next_round(L, p);
    for (unsigned i = 0; i < p->parts; i++)
        retape_inbox_reset(r->inboxes[i]);
    return 0;
}

/* p:post(message): starts the next round; every worker runs
 * handler(message, inbox) on it once it finished the rounds before.
 * Raises while every round is in flight, or out of memory. */
static int l_post(lua_State *L)
{
    pool *p = to_pool(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    pthread_mutex_lock(&p->mu);
    int slot = choose_slot(p);
    pthread_mutex_unlock(&p->mu);
    if (slot < 0)
        return luaL_error(L, "pool: post before the last round was collected");
    pool_round *r = &p->rounds[slot];
    char *copy = malloc(n + 1);
    if (!copy)
        return luaL_error(L, "out of memory");
    memcpy(copy, text, n);
    copy[n] = '\0';
    clear_results(p, r);
    pthread_mutex_lock(&p->mu);
    free(r->message);
    r->message = copy;
    r->message_len = n;
    r->pending = p->parts - 1;
    p->busy[slot] = 1;
    p->order[p->posted % p->depth] = (unsigned)slot;
    p->posted++;
    p->next_slot = -1;
    p->caller_slot = (unsigned)slot;
    pthread_cond_broadcast(&p->job);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Waits until every worker finished round slot r (never raises). */
static void wait_round(pool *p, const pool_round *r)
{
    pthread_mutex_lock(&p->mu);
    while (r->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* p:collect() -> replies, data, errors of the oldest round not collected
 * (empty tables when none is in flight): waits for it; arrays indexed by
 * worker (1..parts-1), an entry nil where the worker had none.  Raises only
 * on a memory error (the round stays for another collect then). */
static int l_collect(lua_State *L)
{
    pool *p = to_pool(L, 1);
    unsigned n = p->parts - 1;
    pthread_mutex_lock(&p->mu);
    int none = p->collected == p->posted;
    unsigned slot = p->order[p->collected % p->depth];
    pool_round *r = &p->rounds[slot];
    pthread_mutex_unlock(&p->mu);
    lua_createtable(L, (int)n, 0);
    lua_createtable(L, (int)n, 0);
    lua_createtable(L, (int)n, 0);
    if (none)
        return 3;
    wait_round(p, r);
    for (unsigned i = 0; i < n; i++) {
        const pool_result *o = &r->results[i];
        if (o->reply) {
            lua_pushlstring(L, o->reply, o->reply_len);
            lua_rawseti(L, -4, i + 1);
        }
        if (o->data) {
            lua_pushlstring(L, o->data, o->data_len);
            lua_rawseti(L, -3, i + 1);
        }
        if (o->error) {
            lua_pushstring(L, o->error);
            lua_rawseti(L, -2, i + 1);
        }
    }
    clear_results(p, r);
    pthread_mutex_lock(&p->mu);
    p->collected++;
    p->busy[slot] = 0;
    p->last_slot = slot;
    pthread_mutex_unlock(&p->mu);
    return 3;
}

static int l_inbox(lua_State *L)
{
    pool *p = to_pool(L, 1);
    push_inbox(L, NULL, p);
    lua_pushvalue(L, 1); /* keeps the pool alive */
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* p:append_kept(batch, worker, at, len): appends len bytes at offset `at`
 * (0-based) of what worker kept (inbox:keep) in the round last collected
 * -- one of its serialized batches -- to `batch`.  Valid until that
 * round's slot is reset (p:reset or p:route of a later round that takes
 * it).  Raises on a bad range, when the slot was posted again, when the
 * bytes are not a whole batch (appending nothing), or when the batch then
 * passes RETAPE_BATCH_BYTES_MAX. */
static int l_append_kept(lua_State *L)
{
    pool *p = to_pool(L, 1);
    retape_kv_batch *batch = retape_lua_check_batch(L, 2);
    lua_Integer w = luaL_checkinteger(L, 3);
    lua_Integer at = luaL_checkinteger(L, 4);
    lua_Integer len = luaL_checkinteger(L, 5);
    luaL_argcheck(L, w >= 1 && (lua_Unsigned)w < p->parts, 3, "no such worker");
    pthread_mutex_lock(&p->mu);
    /* the round last collected keeps its slot until another round is posted there */
    int ok = p->collected > 0 && !p->busy[p->last_slot];
    size_t slot = p->last_slot;
    pthread_mutex_unlock(&p->mu);
    if (!ok)
        return luaL_error(L, "pool: the round's writes are gone (its slot was posted again)");
    size_t have;
    const char *data = retape_inbox_kept(p->rounds[slot].inboxes[w], &have);
    luaL_argcheck(L, at >= 0 && len >= 0 && (lua_Unsigned)at + (lua_Unsigned)len <= have, 4, "out of the kept writes");
    char *err = NULL;
    if (retape_kv_batch_append(batch, data + at, (size_t)len, &err) != 0)
        return raise_message(L, err);
    retape_lua_check_batch_size(L, batch); /* the parts' writes of a round together */
    return 0;
}

/* p:in_flight() -> rounds posted and not collected yet */
static int l_in_flight(lua_State *L)
{
    pool *p = to_pool(L, 1);
    pthread_mutex_lock(&p->mu);
    size_t n = p->posted - p->collected;
    pthread_mutex_unlock(&p->mu);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* p:parts() -> the parts that walk rows (the threads a run uses) */
static int l_parts(lua_State *L)
{
    pool *p = to_pool(L, 1);
    lua_pushinteger(L, p->parts - p->first);
    return 1;
}

/* p:workers() -> worker threads (collect's arrays run 1..workers) */
static int l_workers(lua_State *L)
{
    lua_pushinteger(L, to_pool(L, 1)->parts - 1);
    return 1;
}

/* p:close(): waits for a round in flight, stops the threads, closes the
 * worker states (idempotent). */
static int l_close(lua_State *L)
{
    pool *p = luaL_checkudata(L, 1, POOL_MT);
    if (p->sync_ready && p->rounds)
        for (unsigned d = 0; d < p->depth; d++)
            wait_round(p, &p->rounds[d]);
    pool_teardown(p);
    return 0;
}

/* pool.part_of(ticker, parts) -> 0-based part (as route and --shard) */
static int l_part_of(lua_State *L)
{
    const char *T = luaL_checkstring(L, 1);
    lua_Integer parts = luaL_checkinteger(L, 2);
    luaL_argcheck(L, parts >= 1, 2, "parts must be positive");
    lua_pushinteger(L, retape_part_of(T, (unsigned)parts));
    return 1;
}

/* pool.cores() -> the processors this process may run on (retape_cpus) */
static int l_cores(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)retape_cpus());
    return 1;
}

int luaopen_retape_pool(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"route", l_route}, {"reset", l_reset}, {"post", l_post}, {"collect", l_collect},
        {"inbox", l_inbox}, {"in_flight", l_in_flight}, {"append_kept", l_append_kept}, {"parts", l_parts}, {"workers", l_workers}, {"close", l_close}, {NULL, NULL},
    };
    new_class(L, POOL_MT, methods, pool_gc);
    register_inbox_class(L);
    static const luaL_Reg fns[] = {{"start", l_start}, {"part_of", l_part_of}, {"cores", l_cores}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
