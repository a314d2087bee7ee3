/*
 * lua_http.c — Lua bridge of http.c: `require "retape.http"`, the threads
 * and Lua states of `retape serve`.
 *
 *   http.serve { host =, port =, threads =, max_body =, max_header =,
 *                timeout =, max_connections =, max_per_peer =, request_timeout =,
 *                state = DIR, app = "retape.serve.app",
 *                config = JSON, on_ready = function(port) end }
 *       -> "SIGTERM" | "SIGINT"  (blocks until one of them)  | nil, message
 *   http.exclusive(text) -> reply | nil, "busy" | nil, "stopping" | nil, error
 *   http.defer(text) -> true | nil, "stopping"   -- the ingest state's batch answers
 *   http.settle()        -- waits until what was answered so far is classified
 *   http.publish(text)   -- one server-sent event to every open event stream
 *   http.stopping() -> boolean
 *   http.writing() -> boolean (a writer call is running)
 *   http.available() -> true | nil, message (libmicrohttpd loads: serve asks first)
 *
 * Lua states are not thread-safe, so serve() builds one Lua state per server
 * thread ("readers") plus one "writer" state and one "ingest" state, each
 * with the Lua layer of this process and its own view (retape_kv_view) of
 * one shared RocksDB store.  Each state runs `require(app).init(role,
 * config, kv)`, which returns its handler.  A request runs in a free reader
 * state, its kv view pinned to a snapshot for the whole request (a read
 * never sees half of a committed batch).  A reader that needs to write
 * calls http.exclusive(): the writer state runs the text through its
 * handler under a mutex taken with trylock — one writer at a time, "busy"
 * otherwise — while the other readers keep serving.
 * The live ingest is a pipeline of two threads.  http.defer() is its group
 * commit: a request queues its text and leaves its connection waiting
 * (holding no thread: retape_http_defer); the live thread takes every text
 * queued so far, runs them through the ingest state's handler in one call
 * (a table of texts in, a table of "STATUS\nBODY" replies out: the batch
 * stored in one transaction), counts the batch as stored and answers each
 * connection.  The classify thread runs the writer state's handler with no
 * argument (one catch-up pass: everything stored so far, classified) under
 * the writer's mutex whenever batches were stored since its last pass, so a
 * pass covers every batch that arrived while the previous one ran, and the
 * answers never wait for the classification (the classify thread runs at
 * a lower priority: CLASSIFY_NICE).  http.settle() is the read
 * barrier that makes that invisible: it waits until a pass that started
 * after the last stored batch has ended, then pins the reader's snapshot
 * again, so a read sent after a webhook's 200 reflects it.  Reads see the
 * store as the last writer call (pass, admin call or start) left it — a
 * snapshot published at its end — never half of one (a run commits its
 * cleared scope before its buckets).
 * SIGTERM/SIGINT: stop accepting, wait for the ingest batch in progress
 * (answered; what is queued gets 503), then for the classify thread's
 * pass in progress and one last pass over what was stored, then for the
 * writer call in progress and the reads in flight; close everything, return.
 */
#define _POSIX_C_SOURCE 200809L
#include "http.h"
#include "lua_common.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/resource.h>
#endif

#define SERVE_MT "retape.http.serve"
#define CBUF_MT "retape.http.cbuf"
#define SERVER_KEY "retape.http.server" /* registry: the serve_state of a worker state */
#define WORKER_KEY "retape.http.worker" /* registry: the worker of a worker state */

typedef struct worker {
    retape_host *host;
    lua_State *L;
    retape_kv *view;  /* borrowed: owned by the store object inside L */
    int handler_ref;  /* registry ref of the handler init() returned */
    const retape_http_request *current; /* the request a reader state is running */
    pthread_mutex_t mu;
    int mu_ready;
} worker;

/* One queued http.defer(): its text (owned) and the request to answer. */
typedef struct submission {
    char *text;
    size_t len;
    retape_http_deferred *answer;
    char *reply; /* set by the batch: "STATUS\nBODY" (malloc'd) */
    size_t reply_len;
    struct submission *next;
} submission;

/* Texts a batch takes at most. */
#define SUBMIT_BATCH_MAX 1024

typedef struct serve_state {
    retape_kv *kv;            /* the base store, owned */
    worker *readers;          /* n_readers states (calloc'd) */
    unsigned n_readers;
    worker writer;
    worker ingest;            /* stores the live thread's batches */
    retape_http_server *srv;
    atomic_int stopping;
    atomic_int writing; /* a writer call is running */
    atomic_int admin;   /* an http.exclusive() call is running or waiting */
    pthread_mutex_t qmu; /* the live queue (http.defer) */
    pthread_cond_t qcv;
    int q_ready;
    submission *qhead, *qtail;
    pthread_t live;      /* the live thread: runs the queued texts in batches */
    int live_started;
    pthread_mutex_t cmu; /* the classify thread's counters */
    pthread_cond_t ccv;  /* wakes the classify thread */
    pthread_cond_t settled; /* a classify pass ended */
    int c_ready;
    unsigned long long stored;     /* batches stored (and answered) so far */
    unsigned long long classified; /* batches the last ended pass covered */
    int classify_stop, classify_done;
    retape_kv_snapshot *published; /* what reads see: the store after the last writer call (cmu) */
    pthread_t classify;  /* the classify thread: catch-up passes in the writer state */
    int classify_started;
    char *app, *config, *lua_dir;
} serve_state;

/* A malloc'd buffer owned by a Lua userdata, so that text carried between
 * two Lua states is freed even if pushing it raises. */
typedef struct cbuf {
    char *p;
    size_t n;
} cbuf;


/* __gc/__close of a cbuf: frees the buffer (twice is harmless). */
static int cbuf_gc(lua_State *L)
{
    cbuf *b = luaL_checkudata(L, 1, CBUF_MT);
    free(b->p);
    b->p = NULL;
    return 0;
}

/* Pushes an empty cbuf (raises only on a memory error, holding nothing). */
static cbuf *new_cbuf(lua_State *L)
{
    cbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->n = 0;
    luaL_setmetatable(L, CBUF_MT);
    return b;
}

/* The serve_state of a worker state (NULL outside a server). */
static serve_state *state_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, SERVER_KEY);
    serve_state *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

/* ---------------------------------------------------------------------------
 * worker states */

/* What a worker state's init gets: the server, the worker, its role. */
typedef struct worker_args {
    serve_state *s;
    worker *w;
    const char *role;
} worker_args;

/* Pushes init's arguments in a new worker state (role, config, its own kv
 * view of the server's store) after noting the server and the worker in
 * its registry.  Raises (holding nothing) on a memory error. */
static int push_worker_args(lua_State *L, void *ud)
{
    const worker_args *a = ud;
    lua_pushlightuserdata(L, a->s);
    lua_setfield(L, LUA_REGISTRYINDEX, SERVER_KEY);
    lua_pushlightuserdata(L, a->w);
    lua_setfield(L, LUA_REGISTRYINDEX, WORKER_KEY);
    lua_pushstring(L, a->role);
    lua_pushstring(L, a->s->config);
    retape_kv **slot = retape_lua_kv_newbox(L);
    char *err = NULL;
    *slot = retape_kv_view(a->s->kv, &err);
    if (!*slot)
        return raise_message(L, err);
    a->w->view = *slot;
    return 3;
}

/* Creates a worker's Lua state and runs its init.  0, or -1 + *errptr. */
static int worker_start(serve_state *s, worker *w, const char *role, char **errptr)
{
    if (pthread_mutex_init(&w->mu, NULL) != 0)
        return set_error(errptr, "cannot create a mutex");
    w->mu_ready = 1;
    worker_args args = {s, w, role};
    char *err = NULL;
    w->host = retape_lua_worker_new(s->lua_dir, s->app, push_worker_args, &args, &w->handler_ref, &err);
    if (!w->host) {
        set_error(errptr, "serve: %s state: %s", role, err);
        free(err);
        return -1;
    }
    w->L = retape_host_lua(w->host);
    return 0;
}

/* Closes a worker's state (its kv view with it). */
static void worker_free(worker *w)
{
    retape_host_free(w->host);
    w->host = NULL;
    w->L = NULL;
    w->view = NULL;
    if (w->mu_ready)
        pthread_mutex_destroy(&w->mu);
    w->mu_ready = 0;
}

static void *live_main(void *arg);
static void *classify_main(void *arg);

/* Publishes the store as it is now as what reads see (after a writer
 * call); on a memory error the previous one stays. */
static void publish_snapshot(serve_state *s)
{
    retape_kv_snapshot *snap = retape_kv_snapshot_take(s->kv);
    if (!snap)
        return;
    pthread_mutex_lock(&s->cmu);
    retape_kv_snapshot *old = s->published;
    s->published = snap;
    pthread_mutex_unlock(&s->cmu);
    retape_kv_snapshot_release(old);
}

/* Pins a reader's view to the published snapshot (the latest state when
 * there is none). */
static void pin_published(serve_state *s, worker *w)
{
    pthread_mutex_lock(&s->cmu);
    if (s->published)
        retape_kv_pin_snapshot(w->view, s->published);
    else
        retape_kv_pin(w->view);
    pthread_mutex_unlock(&s->cmu);
}

/* Names the calling thread (as top and perf show it), where the system can. */
static void name_thread(const char *name)
{
#ifdef __linux__
    prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}

/* The classify thread's nice value: on a busy CPU, classifying yields to
 * what answers webhooks and reads (the server threads, the ingest thread),
 * so an answer does not wait for the CPU behind a pass; the passes grow
 * instead (their cost per receipt falls) and keep a third of a normal
 * thread's share (weight 335 of 1024), so they never starve. */
#define CLASSIFY_NICE 5

/* Lowers the calling thread's priority to nice `nice` (Linux: a thread's
 * own nice value), where the system can; failing is harmless. */
static void lower_priority(int nice)
{
#ifdef __linux__
    setpriority(PRIO_PROCESS, 0, nice); /* 0: the calling thread, on Linux */
#else
    (void)nice;
#endif
}

/* Ends the live thread (idempotent): stopping is set, so it answers what is
 * queued with 503 after the batch in progress, and returns. */
static void stop_live(serve_state *s)
{
    if (!s->live_started)
        return;
    pthread_mutex_lock(&s->qmu);
    atomic_store(&s->stopping, 1);
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    pthread_join(s->live, NULL);
    s->live_started = 0;
}

/* Ends the classify thread (idempotent), after its pass in progress and
 * one last pass over what is stored; the live thread has ended. */
static void stop_classify(serve_state *s)
{
    if (!s->classify_started)
        return;
    pthread_mutex_lock(&s->cmu);
    s->classify_stop = 1;
    pthread_cond_broadcast(&s->ccv);
    pthread_mutex_unlock(&s->cmu);
    pthread_join(s->classify, NULL);
    s->classify_started = 0;
}

/* Stops the server and frees everything of s (idempotent; the __gc of the
 * serve userdata). */
static void serve_teardown(serve_state *s)
{
    stop_live(s);
    stop_classify(s);
    retape_http_stop(s->srv);
    s->srv = NULL;
    if (s->readers) {
        for (unsigned i = 0; i < s->n_readers; i++)
            worker_free(&s->readers[i]);
        free(s->readers);
        s->readers = NULL;
    }
    worker_free(&s->writer);
    worker_free(&s->ingest);
    retape_kv_snapshot_release(s->published);
    s->published = NULL;
    retape_kv_close(s->kv);
    s->kv = NULL;
    free(s->app);
    free(s->config);
    free(s->lua_dir);
    s->app = s->config = s->lua_dir = NULL;
    if (s->q_ready) {
        pthread_mutex_destroy(&s->qmu);
        pthread_cond_destroy(&s->qcv);
        s->q_ready = 0;
    }
    if (s->c_ready) {
        pthread_mutex_destroy(&s->cmu);
        pthread_cond_destroy(&s->ccv);
        pthread_cond_destroy(&s->settled);
        s->c_ready = 0;
    }
}

/* __gc of the serve userdata: frees whatever serve() left (idempotent). */
static int serve_gc(lua_State *L)
{
    serve_teardown(luaL_checkudata(L, 1, SERVE_MT));
    return 0;
}

/* ---------------------------------------------------------------------------
 * requests */

/* Protected, in a reader state: builds the request table, calls the
 * handler, copies (status, body, content type, one more header "Name:
 * value" or nil) into the response.  The body is malloc'd last, after
 * everything that can raise. */
static int call_handler(lua_State *L)
{
    worker *w = lua_touserdata(L, 1);
    const retape_http_request *req = lua_touserdata(L, 2);
    retape_http_response *resp = lua_touserdata(L, 3);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->handler_ref);
    lua_createtable(L, 0, 7);
    lua_pushstring(L, req->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, req->remote);
    lua_setfield(L, -2, "remote");
    lua_pushlstring(L, req->body, req->body_len);
    lua_setfield(L, -2, "body");
    lua_pushinteger(L, req->over_limit);
    lua_setfield(L, -2, "over_limit");
    lua_createtable(L, 0, (int)req->n_args);
    for (size_t i = 0; i < req->n_args; i++) { /* exact lengths: "%00" stays "\0", never "" */
        lua_pushlstring(L, req->arg_names[i], req->arg_name_lens[i]);
        lua_pushlstring(L, req->arg_values[i], req->arg_value_lens[i]);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "query");
    lua_call(L, 1, 4);
    lua_Integer status = luaL_checkinteger(L, -4);
    size_t n;
    const char *body = luaL_checklstring(L, -3, &n);
    const char *ctype = luaL_optstring(L, -2, "application/json");
    const char *header = luaL_optstring(L, -1, "");
    if (strlen(header) >= sizeof resp->header || strpbrk(header, "\r\n"))
        return luaL_error(L, "handler: the extra header is over %d bytes or holds a line break",
                          (int)sizeof resp->header - 1);
    char *copy = malloc(n + 1);
    if (!copy)
        return luaL_error(L, "out of memory");
    memcpy(copy, body, n);
    resp->body = copy;
    resp->body_len = n;
    resp->status = (int)status;
    snprintf(resp->content_type, sizeof resp->content_type, "%s", ctype);
    snprintf(resp->header, sizeof resp->header, "%s", header);
    return 0;
}

/* Takes a free reader state (there are as many as server threads, so one is
 * free unless something is wrong; then waits for the first). */
static worker *acquire_reader(serve_state *s)
{
    for (unsigned i = 0; i < s->n_readers; i++)
        if (pthread_mutex_trylock(&s->readers[i].mu) == 0)
            return &s->readers[i];
    pthread_mutex_lock(&s->readers[0].mu);
    return &s->readers[0];
}

/* retape_http_handler: runs one request in a reader state, on a snapshot. */
static void on_request(void *ctx, const retape_http_request *req, retape_http_response *resp)
{
    serve_state *s = ctx;
    worker *w = acquire_reader(s);
    w->current = req;
    pin_published(s, w);
    lua_pushcfunction(w->L, call_handler);
    lua_pushlightuserdata(w->L, w);
    lua_pushlightuserdata(w->L, (void *)req);
    lua_pushlightuserdata(w->L, resp);
    char *err = NULL;
    if (retape_lua_docall(w->L, 3, 0, &err) != 0) {
        /* the router answers handler errors itself; this is the router failing */
        fprintf(stderr, "retape serve: %s %s: %s\n", req->method, req->path, err);
        free(err);
        static const char fallback[] = "{\"ok\":false,\"error\":\"internal error (see the server log)\"}";
        free(resp->body);
        resp->body = malloc(sizeof fallback);
        if (resp->body)
            memcpy(resp->body, fallback, sizeof fallback - 1);
        resp->body_len = resp->body ? sizeof fallback - 1 : 0;
        resp->status = 500;
        snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    }
    lua_settop(w->L, 0);
    retape_kv_unpin(w->view);
    w->current = NULL;
    pthread_mutex_unlock(&w->mu);
}

/* Protected, in the writer state: handler(text) -> reply copied into the
 * reader's cbuf (malloc'd last). */
static int call_writer(lua_State *W)
{
    worker *w = lua_touserdata(W, 1);
    const char *text = lua_touserdata(W, 2);
    size_t len = (size_t)lua_tointeger(W, 3);
    cbuf *out = lua_touserdata(W, 4);
    lua_rawgeti(W, LUA_REGISTRYINDEX, w->handler_ref);
    lua_pushlstring(W, text, len);
    lua_call(W, 1, 1);
    size_t n;
    const char *reply = luaL_checklstring(W, -1, &n);
    char *copy = malloc(n + 1);
    if (!copy)
        return luaL_error(W, "out of memory");
    memcpy(copy, reply, n);
    copy[n] = '\0';
    out->p = copy;
    out->n = n;
    return 0;
}

/* http.exclusive(text) -> reply | nil, "busy" | nil, "stopping" | nil, message
 * Runs text through the writer state's handler, if no other writer call is
 * in progress.  Called from a reader state's handler. */
static int l_exclusive(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    serve_state *s = state_of(L);
    if (!s || !s->writer.L)
        return luaL_error(L, "http.exclusive: not inside a server");
    cbuf *out = new_cbuf(L);
    /* one exclusive call at a time; it waits for a live batch in progress */
    int idle = 0;
    if (!atomic_compare_exchange_strong(&s->admin, &idle, 1)) {
        lua_pushnil(L);
        lua_pushliteral(L, "busy");
        return 2;
    }
    pthread_mutex_lock(&s->writer.mu);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&s->writer.mu);
        atomic_store(&s->admin, 0);
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    }
    lua_State *W = s->writer.L;
    lua_pushcfunction(W, call_writer);
    lua_pushlightuserdata(W, &s->writer);
    lua_pushlightuserdata(W, (void *)text);
    lua_pushinteger(W, (lua_Integer)len);
    lua_pushlightuserdata(W, out);
    char *err = NULL;
    atomic_store(&s->writing, 1);
    int rc = retape_lua_docall(W, 4, 0, &err);
    atomic_store(&s->writing, 0);
    lua_settop(W, 0);
    publish_snapshot(s);
    pthread_mutex_unlock(&s->writer.mu);
    atomic_store(&s->admin, 0);
    if (rc != 0) {
        out->p = err; /* owned by the cbuf from here: freed even if a push raises */
        out->n = err ? strlen(err) : 0;
        lua_pushnil(L);
        lua_pushlstring(L, out->p ? out->p : "writer failed", out->p ? out->n : 13);
        return 2;
    }
    lua_pushlstring(L, out->p, out->n);
    free(out->p);
    out->p = NULL;
    return 1;
}

/* Protected, in the ingest state: handler({texts}) -> {replies}, each
 * reply copied into its submission (malloc'd; a reply that is not a string
 * leaves the submission without one). */
static int call_ingest_batch(lua_State *W)
{
    worker *w = lua_touserdata(W, 1);
    submission *batch = lua_touserdata(W, 2);
    lua_rawgeti(W, LUA_REGISTRYINDEX, w->handler_ref);
    lua_newtable(W);
    int n = 0;
    for (submission *it = batch; it; it = it->next) {
        lua_pushlstring(W, it->text, it->len);
        lua_rawseti(W, -2, ++n);
    }
    lua_call(W, 1, 1);
    luaL_checktype(W, -1, LUA_TTABLE);
    n = 0;
    for (submission *it = batch; it; it = it->next) {
        lua_rawgeti(W, -1, ++n);
        size_t len;
        const char *reply = lua_tolstring(W, -1, &len);
        if (reply) {
            char *copy = malloc(len + 1);
            if (!copy)
                return luaL_error(W, "out of memory");
            memcpy(copy, reply, len);
            copy[len] = '\0';
            it->reply = copy;
            it->reply_len = len;
        }
        lua_pop(W, 1);
    }
    return 0;
}

/* Answers one submission from its reply ("STATUS\nBODY"), or with 500 (no
 * reply: the batch failed) or 503 (stopping), and frees it. */
static void answer_submission(submission *it, int stopping)
{
    static const char failed[] = "{\"ok\":false,\"error\":\"the receipt could not be stored (see the server log)\"}";
    static const char stopped[] = "{\"ok\":false,\"error\":\"the server is stopping\"}";
    int status = stopping ? 503 : 500;
    const char *text = stopping ? stopped : failed;
    size_t len = stopping ? sizeof stopped - 1 : sizeof failed - 1;
    char *nl = it->reply ? memchr(it->reply, '\n', it->reply_len) : NULL;
    if (nl) {
        status = atoi(it->reply);
        text = nl + 1;
        len = it->reply_len - (size_t)(nl + 1 - it->reply);
    }
    char *body = malloc(len + 1);
    if (body)
        memcpy(body, text, len);
    retape_http_complete(it->answer, status, "application/json", body, body ? len : 0);
    free(it->reply);
    free(it->text);
    free(it);
}

/* The live thread: takes what http.defer() queued, in batches of up to
 * SUBMIT_BATCH_MAX, runs each through the ingest state (stored), counts it
 * for the classify thread, and answers its requests; once the server
 * stops, answers what is left with 503 and ends. */
static void *live_main(void *arg)
{
    serve_state *s = arg;
    name_thread("retape-ingest");
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->qhead && !atomic_load(&s->stopping))
            pthread_cond_wait(&s->qcv, &s->qmu);
        submission *batch = s->qhead, *last = batch;
        if (!batch) {
            pthread_mutex_unlock(&s->qmu);
            return NULL;
        }
        for (int n = 1; n < SUBMIT_BATCH_MAX && last->next; n++)
            last = last->next;
        s->qhead = last->next;
        if (!s->qhead)
            s->qtail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->qmu);

        int stopping = atomic_load(&s->stopping);
        if (!stopping) {
            lua_State *W = s->ingest.L;
            lua_pushcfunction(W, call_ingest_batch);
            lua_pushlightuserdata(W, &s->ingest);
            lua_pushlightuserdata(W, batch);
            char *err = NULL;
            if (retape_lua_docall(W, 2, 0, &err) != 0) {
                fprintf(stderr, "retape serve: live batch: %s\n", err);
                free(err);
                for (submission *it = batch; it; it = it->next) {
                    free(it->reply);
                    it->reply = NULL;
                }
            }
            lua_settop(W, 0);
            /* counted before the answers: a read sent after one waits for its pass */
            pthread_mutex_lock(&s->cmu);
            s->stored++;
            pthread_cond_signal(&s->ccv);
            pthread_mutex_unlock(&s->cmu);
        }
        for (submission *it = batch, *next; it; it = next) {
            next = it->next;
            answer_submission(it, stopping);
        }
    }
}

/* Protected, in the writer state: handler() — one catch-up pass. */
static int call_writer_pass(lua_State *W)
{
    worker *w = lua_touserdata(W, 1);
    lua_rawgeti(W, LUA_REGISTRYINDEX, w->handler_ref);
    lua_call(W, 0, 0);
    return 0;
}

/* The classify thread: whenever batches were stored since its last pass,
 * runs one pass in the writer state (under its mutex) and wakes the reads
 * waiting in http.settle(); once told to stop, ends after a last pass over
 * what is stored. */
static void *classify_main(void *arg)
{
    serve_state *s = arg;
    name_thread("retape-classify");
    lower_priority(CLASSIFY_NICE);
    for (;;) {
        pthread_mutex_lock(&s->cmu);
        while (s->classified == s->stored && !s->classify_stop)
            pthread_cond_wait(&s->ccv, &s->cmu);
        if (s->classified == s->stored) { /* stopping, nothing left */
            s->classify_done = 1;
            pthread_cond_broadcast(&s->settled);
            pthread_mutex_unlock(&s->cmu);
            return NULL;
        }
        unsigned long long target = s->stored;
        pthread_mutex_unlock(&s->cmu);

        pthread_mutex_lock(&s->writer.mu);
        lua_State *W = s->writer.L;
        lua_pushcfunction(W, call_writer_pass);
        lua_pushlightuserdata(W, &s->writer);
        char *err = NULL;
        atomic_store(&s->writing, 1);
        if (retape_lua_docall(W, 1, 0, &err) != 0) { /* the handler reports its own; this is it failing */
            fprintf(stderr, "retape serve: live pass: %s\n", err);
            free(err);
        }
        atomic_store(&s->writing, 0);
        lua_settop(W, 0);
        publish_snapshot(s);
        pthread_mutex_unlock(&s->writer.mu);

        /* ended, well or not: the reads waiting for it go on (a failed pass
         * is done again with the next batch) */
        pthread_mutex_lock(&s->cmu);
        s->classified = target;
        pthread_cond_broadcast(&s->settled);
        pthread_mutex_unlock(&s->cmu);
    }
}

/* http.settle(): in a reader's request, waits until every webhook batch
 * stored so far has been through a classify pass (see the top of the
 * file), then pins the request's snapshot again to read the pass's
 * results.  Returns at once outside a server request or once the classify
 * thread has ended. */
static int l_settle(lua_State *L)
{
    serve_state *s = state_of(L);
    lua_getfield(L, LUA_REGISTRYINDEX, WORKER_KEY);
    worker *w = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!s || !w || !w->current || !s->c_ready)
        return 0;
    pthread_mutex_lock(&s->cmu);
    unsigned long long target = s->stored;
    while (s->classify_started && !s->classify_done && s->classified < target)
        pthread_cond_wait(&s->settled, &s->cmu);
    pthread_mutex_unlock(&s->cmu);
    /* the snapshot published since, even without waiting: the pass may
     * have ended after the request's snapshot was pinned */
    pin_published(s, w);
    return 0;
}

/* http.defer(text) -> true | nil, "stopping"
 * Queues text for the live thread's next batch; the request being handled
 * is answered with the writer's reply for it (see the top of the file).
 * Called from a reader state's handler, once per request at most. */
static int l_defer(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    serve_state *s = state_of(L);
    lua_getfield(L, LUA_REGISTRYINDEX, WORKER_KEY);
    worker *w = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!s || !w || !w->current)
        return luaL_error(L, "http.defer: not inside a server request");
    if (atomic_load(&s->stopping) || !s->live_started) {
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    }
    submission *it = calloc(1, sizeof *it);
    char *copy = malloc(len + 1);
    if (!it || !copy) {
        free(it);
        free(copy);
        return luaL_error(L, "out of memory");
    }
    memcpy(copy, text, len);
    it->text = copy;
    it->len = len;
    pthread_mutex_lock(&s->qmu);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&s->qmu);
        free(copy);
        free(it);
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    }
    it->answer = retape_http_defer(w->current);
    if (s->qtail)
        s->qtail->next = it;
    else
        s->qhead = it;
    s->qtail = it;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    w->current = NULL; /* one answer per request */
    lua_pushboolean(L, 1);
    return 1;
}

/* http.publish(text): sends text (complete server-sent events) to every
 * open event stream.  Called by the writer state (the live pass), under the
 * writer's mutex, which guards s->srv. */
static int l_publish(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    serve_state *s = state_of(L);
    if (s && s->srv)
        retape_http_publish(s->srv, text, len);
    return 0;
}

/* http.stopping() -> true once the server received SIGTERM/SIGINT */
static int l_stopping(lua_State *L)
{
    serve_state *s = state_of(L);
    lua_pushboolean(L, s && atomic_load(&s->stopping));
    return 1;
}

/* http.writing() -> true while a writer call runs */
static int l_writing(lua_State *L)
{
    serve_state *s = state_of(L);
    lua_pushboolean(L, s && atomic_load(&s->writing));
    return 1;
}

/* http.available() -> true | nil, message: whether the HTTP server's
 * library loads (retape_http_load); serve asks before it touches a file. */
static int l_available(lua_State *L)
{
    char *err = NULL;
    if (retape_http_load(&err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err ? err : "the HTTP server cannot start");
        retape_free(err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* http.serve(opts) — see the top of the file.  Everything it allocates
 * hangs off a userdata whose __gc frees it, so a raise leaks nothing. */
static int l_serve(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer port = opt_int_field(L, 1, "port", 8787);
    lua_Integer threads = opt_int_field(L, 1, "threads", 2);
    lua_Integer max_body = opt_int_field(L, 1, "max_body", 65536);
    lua_Integer max_header = opt_int_field(L, 1, "max_header", 8192);
    lua_Integer timeout = opt_int_field(L, 1, "timeout", 30);
    lua_Integer max_conn = opt_int_field(L, 1, "max_connections", 1024);
    lua_Integer per_peer = opt_int_field(L, 1, "max_per_peer", 128);
    lua_Integer request_timeout = opt_int_field(L, 1, "request_timeout", 10);
    lua_getfield(L, 1, "state");
    const char *dir = luaL_checkstring(L, -1);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    if (threads < 1 || threads > 256)
        return luaL_error(L, "http.serve: threads must be 1..256");
    if (max_body < 0 || max_header < 256 || timeout < 1 || max_conn < 1 || max_conn > 65536 || per_peer < 1
        || per_peer > 65536 || request_timeout < 1 || request_timeout > 86400)
        return luaL_error(L, "http.serve: bad limits");

    serve_state *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    atomic_init(&s->stopping, 0);
    atomic_init(&s->writing, 0);
    atomic_init(&s->admin, 0);
    luaL_setmetatable(L, SERVE_MT);
    if (pthread_mutex_init(&s->qmu, NULL) != 0)
        return luaL_error(L, "cannot create a mutex");
    if (pthread_cond_init(&s->qcv, NULL) != 0) {
        pthread_mutex_destroy(&s->qmu);
        return luaL_error(L, "cannot create a condition variable");
    }
    s->q_ready = 1;
    if (pthread_mutex_init(&s->cmu, NULL) != 0)
        return luaL_error(L, "cannot create a mutex");
    if (pthread_cond_init(&s->ccv, NULL) != 0) {
        pthread_mutex_destroy(&s->cmu);
        return luaL_error(L, "cannot create a condition variable");
    }
    if (pthread_cond_init(&s->settled, NULL) != 0) {
        pthread_cond_destroy(&s->ccv);
        pthread_mutex_destroy(&s->cmu);
        return luaL_error(L, "cannot create a condition variable");
    }
    s->c_ready = 1;
    int sidx = lua_gettop(L);
    s->app = opt_string_field(L, 1, "app", "retape.serve.app");
    s->config = opt_string_field(L, 1, "config", "{}");
    s->lua_dir = retape_lua_layer_dir(L);
    char *err = NULL;
    s->kv = retape_kv_open(dir, &err);
    if (!s->kv)
        return push_failure(L, err);
    s->n_readers = (unsigned)threads;
    s->readers = calloc(s->n_readers, sizeof *s->readers);
    if (!s->readers)
        return luaL_error(L, "out of memory");
    int failed = worker_start(s, &s->writer, "writer", &err);
    if (!failed)
        failed = worker_start(s, &s->ingest, "ingest", &err);
    for (unsigned i = 0; i < s->n_readers && !failed; i++)
        failed = worker_start(s, &s->readers[i], "reader", &err);
    if (failed) {
        serve_teardown(s);
        return push_failure(L, err);
    }
    publish_snapshot(s); /* the store as the writer's start left it */

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old); /* the server threads inherit it */
    if (pthread_create(&s->classify, NULL, classify_main, s) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        serve_teardown(s);
        return luaL_error(L, "cannot start the classify thread");
    }
    s->classify_started = 1;
    if (pthread_create(&s->live, NULL, live_main, s) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        serve_teardown(s);
        return luaL_error(L, "cannot start the live thread");
    }
    s->live_started = 1;
    retape_http_options ho = {
        .host = host, .port = (int)port, .threads = (unsigned)threads, .max_body = (size_t)max_body,
        .max_header = (size_t)max_header, .timeout_s = (unsigned)timeout,
        .max_connections = (unsigned)max_conn, .max_per_peer = (unsigned)per_peer,
        .request_timeout_s = (unsigned)request_timeout,
    };
    retape_http_server *srv = retape_http_start(&ho, on_request, s, &err);
    /* the classify thread's passes already run: http.publish reads s->srv
     * under the writer's mutex */
    pthread_mutex_lock(&s->writer.mu);
    s->srv = srv;
    pthread_mutex_unlock(&s->writer.mu);
    if (!s->srv) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        serve_teardown(s);
        return push_failure(L, err);
    }
    lua_getfield(L, 1, "on_ready");
    if (lua_isfunction(L, -1)) {
        lua_pushinteger(L, retape_http_port(s->srv));
        if (retape_lua_docall(L, 1, 0, &err) != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            serve_teardown(s);
            return push_failure(L, err);
        }
    } else {
        lua_pop(L, 1);
    }

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    pthread_mutex_lock(&s->qmu);
    atomic_store(&s->stopping, 1);       /* nothing is queued from here on */
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    retape_http_quiesce(s->srv);
    stop_live(s);                        /* its batch in progress commits; what is queued gets 503 */
    stop_classify(s);                    /* its pass in progress, and a last one over what is stored */
    pthread_mutex_lock(&s->writer.mu);   /* the writer call in progress ends (and commits) */
    pthread_mutex_unlock(&s->writer.mu); /* later writer calls see stopping and do nothing */
    retape_http_drain(s->srv, 10000);    /* every answer already computed is sent */
    /* s->srv is unpublished under the writer's mutex (http.publish reads it
     * there), and the server stopped after, without it: the stop joins
     * the pool threads, and a writer call that a kept-alive connection
     * sends meanwhile waits for that mutex (then sees stopping) */
    pthread_mutex_lock(&s->writer.mu);
    srv = s->srv;
    s->srv = NULL;
    pthread_mutex_unlock(&s->writer.mu);
    retape_http_stop(srv);
    serve_teardown(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    lua_settop(L, sidx);
    lua_pushstring(L, sig == SIGINT ? "SIGINT" : "SIGTERM");
    return 1;
}

int luaopen_retape_http(lua_State *L)
{
    static const luaL_Reg none[] = {{NULL, NULL}};
    new_class(L, SERVE_MT, none, serve_gc);
    new_class(L, CBUF_MT, none, cbuf_gc);
    static const luaL_Reg fns[] = {
        {"serve", l_serve}, {"available", l_available}, {"exclusive", l_exclusive}, {"defer", l_defer}, {"settle", l_settle},
        {"publish", l_publish},
        {"stopping", l_stopping},
        {"writing", l_writing}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
