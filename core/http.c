/*
 * http.c — the HTTP server of `retape serve`, over libmicrohttpd.
 *
 * libmicrohttpd (Debian libmicrohttpd-dev, GNU project, in Debian since 2008)
 * gives HTTP/1.1 parsing, keep-alive, a thread pool, per-connection memory
 * limits, idle timeouts and a per-peer connection limit in one C library
 * with no other dependency; we add only what is ours: the body size limit,
 * the header size limit, a request deadline, and one handler call per
 * complete request.  Nothing here knows routes or JSON.
 *
 * The request deadline (slowloris): libmicrohttpd's timeout is an idle one,
 * reset by every byte, so a client trickling a header byte every few seconds
 * would hold its connection for ever.  Each connection is registered when it
 * opens (MHD_OPTION_NOTIFY_CONNECTION) with a deadline: its request's headers
 * and body must arrive within request_timeout_s of the connection opening (or
 * of the previous answer on a kept-alive connection).  A reaper thread shuts
 * down the socket of any connection past its deadline; libmicrohttpd then
 * sees the end of the stream and closes it.  The registry's lock makes this
 * safe: libmicrohttpd notifies a closing connection (which unregisters it
 * under the lock) before it closes the descriptor.  Once a request has
 * fully arrived its deadline is lifted: a deferred answer (retape_http_defer)
 * or an event stream may then take as long as it needs, and only the idle
 * timeout or the client leaving ends it.
 */
#define _POSIX_C_SOURCE 200809L
#include "http.h"
#include "retape.h"
#include "util.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef RETAPE_MHD_SONAME
#error "RETAPE_MHD_SONAME: libmicrohttpd's soname, from the build (DEP_CFLAGS)"
#endif

/* libmicrohttpd's functions, resolved from the library when the first
 * server starts (load_mhd): the library and the TLS stack it links (gnutls,
 * p11-kit, nettle, gmp and six more) are loaded by `retape serve` alone,
 * not by every start of the host, where loading and initialising them cost
 * ~8 ms of each (see docs/performance.md).  RETAPE_MHD_SONAME is the
 * library's soname, found at build time (Makefile). */
static struct mhd_api {
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_create_response_from_callback) *create_response_from_callback;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_get_connection_info) *get_connection_info;
    __typeof__(MHD_get_connection_values) *get_connection_values;
    __typeof__(MHD_get_connection_values_n) *get_connection_values_n;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_quiesce_daemon) *quiesce_daemon;
    __typeof__(MHD_resume_connection) *resume_connection;
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_suspend_connection) *suspend_connection;
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static char mhd_error[512]; /* "" once loaded */

/* Loads libmicrohttpd and fills `mhd`, or leaves the reason in mhd_error.
 * Runs once per process (pthread_once); the library stays loaded. */
static void load_mhd(void)
{
#define MHD_FN(name) {"MHD_" #name, (void **)&mhd.name}
    static const struct {
        const char *symbol;
        void **slot;
    } functions[] = {
    MHD_FN(add_response_header),
    MHD_FN(create_response_from_buffer),
    MHD_FN(create_response_from_callback),
    MHD_FN(destroy_response),
    MHD_FN(get_connection_info),
    MHD_FN(get_connection_values),
    MHD_FN(get_connection_values_n),
    MHD_FN(get_daemon_info),
    MHD_FN(lookup_connection_value),
    MHD_FN(queue_response),
    MHD_FN(quiesce_daemon),
    MHD_FN(resume_connection),
    MHD_FN(start_daemon),
    MHD_FN(stop_daemon),
    MHD_FN(suspend_connection)
    };
#undef MHD_FN
    void *lib = dlopen(RETAPE_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(mhd_error, sizeof mhd_error,
                 "the HTTP server needs libmicrohttpd (%s), which cannot be loaded: %s "
                 "(on Debian: apt install libmicrohttpd-dev, which brings it)", RETAPE_MHD_SONAME, dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        *functions[i].slot = dlsym(lib, functions[i].symbol);
        if (!*functions[i].slot) {
            snprintf(mhd_error, sizeof mhd_error, "the HTTP server needs libmicrohttpd (%s): %s has no %s",
                     RETAPE_MHD_SONAME, RETAPE_MHD_SONAME, functions[i].symbol);
            memset(&mhd, 0, sizeof mhd); /* nothing points into the library closed below */
            dlclose(lib);
            return;
        }
    }
}

int retape_http_load(char **errptr)
{
    pthread_once(&mhd_once, load_mhd);
    if (mhd_error[0])
        return set_error(errptr, "%s", mhd_error);
    return 0;
}

/* A registered connection: its socket and its request deadline (monotonic
 * ms; 0 while its request is being answered).  socket_context of MHD. */
typedef struct conn_slot {
    int fd;
    _Atomic int64_t deadline;
    struct conn_slot *prev, *next;
} conn_slot;

struct retape_http_server {
    struct MHD_Daemon *daemon;
    retape_http_handler handler;
    void *ctx;
    retape_http_options opts;
    int port;
    int quiesced_fd; /* the listening socket retape_http_quiesce took back (-1: none): closed after the daemon stops */
    atomic_int inflight; /* requests from their first callback to their completion notice (streams: to their start) */
    pthread_mutex_t conns_mu; /* the registry of open connections */
    conn_slot *conns;
    pthread_t reaper;
    int reaper_started;
    pthread_cond_t reaper_cv;  /* signalled to stop the reaper (under conns_mu) */
    int reaper_stop;
    /* event streams (text/event-stream responses): the latest event, and
     * the streams suspended until there is a newer one */
    pthread_mutex_t feed_mu;
    char *event;
    size_t event_len;
    uint64_t event_seq;
    int closing;
    struct stream_conn *waiting;
};

/* One open event stream: what is left to send of the current chunk, and
 * the sequence number of the last event taken. */
typedef struct stream_conn {
    retape_http_server *srv;
    struct MHD_Connection *conn;
    char *buf;
    size_t len, off, cap;
    uint64_t seen;
    int waiting;
    struct stream_conn *next;
} stream_conn;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The registered slot of a connection, or NULL. */
static conn_slot *slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = mhd.get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* MHD_NotifyConnectionCallback: registers an opening connection with its
 * deadline, unregisters a closing one (before MHD closes its socket). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    retape_http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_slot *slot = calloc(1, sizeof *slot);
        if (!slot || !ci) { /* unregistered: only the idle timeout applies */
            free(slot);
            return;
        }
        slot->fd = ci->connect_fd;
        atomic_init(&slot->deadline, monotonic_ms() + (int64_t)srv->opts.request_timeout_s * 1000);
        pthread_mutex_lock(&srv->conns_mu);
        slot->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = slot;
        srv->conns = slot;
        pthread_mutex_unlock(&srv->conns_mu);
        *socket_context = slot;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_slot *slot = *socket_context;
        pthread_mutex_lock(&srv->conns_mu);
        if (slot->prev)
            slot->prev->next = slot->next;
        else
            srv->conns = slot->next;
        if (slot->next)
            slot->next->prev = slot->prev;
        pthread_mutex_unlock(&srv->conns_mu);
        free(slot);
        *socket_context = NULL;
    }
}

/* The reaper thread: every 250 ms, shuts down the sockets of connections
 * past their request deadline (their request never completed). */
static void *reaper_main(void *arg)
{
    retape_http_server *srv = arg;
    pthread_mutex_lock(&srv->conns_mu);
    while (!srv->reaper_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&srv->reaper_cv, &srv->conns_mu, &until);
        if (rc != 0 && rc != ETIMEDOUT)
            continue;
        int64_t now = monotonic_ms();
        for (conn_slot *c = srv->conns; c; c = c->next) {
            int64_t d = atomic_load(&c->deadline);
            if (d > 0 && now > d) {
                shutdown(c->fd, SHUT_RDWR);
                atomic_store(&c->deadline, 0);
            }
        }
    }
    pthread_mutex_unlock(&srv->conns_mu);
    return NULL;
}

/* Per-request state, from the first callback to the completion notice. */
typedef struct request_state {
    char *body;
    size_t len, cap;
    int over_limit; /* 0, 413 or 431 */
    int streaming;  /* answered with an event stream (no longer counted in flight) */
    /* deferred (retape_http_defer): the answer, once given, and whether the
     * connection is suspended waiting for it; guarded by the server's feed_mu */
    int deferred, ready, suspended;
    retape_http_response answer;
    struct MHD_Connection *conn;
    retape_http_server *srv;
} request_state;

struct retape_http_deferred {
    request_state rs;
};

/* Query arguments collected from libmicrohttpd (names/values borrowed from
 * it), with their exact lengths: a decoded %00 is a NUL byte inside. */
typedef struct arg_list {
    const char **names, **values;
    size_t *name_lens, *value_lens;
    size_t n, cap;
    int failed;
} arg_list;

static void free_args(arg_list *a)
{
    free(a->names);
    free(a->values);
    free(a->name_lens);
    free(a->value_lens);
}

/* Grows the four arrays of an arg_list together; 0 or -1. */
static int grow_args(arg_list *a)
{
    size_t cap = a->cap ? a->cap * 2 : 8;
    const char **n = realloc(a->names, cap * sizeof *n);
    if (n)
        a->names = n;
    const char **v = realloc(a->values, cap * sizeof *v);
    if (v)
        a->values = v;
    size_t *nl = realloc(a->name_lens, cap * sizeof *nl);
    if (nl)
        a->name_lens = nl;
    size_t *vl = realloc(a->value_lens, cap * sizeof *vl);
    if (vl)
        a->value_lens = vl;
    if (!n || !v || !nl || !vl)
        return -1;
    a->cap = cap;
    return 0;
}

/* MHD_KeyValueIteratorN: appends one query argument; a name seen again
 * overwrites its earlier value. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    arg_list *a = cls;
    if (!key)
        return MHD_YES;
    if (!value)
        value = "", value_size = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->name_lens[i] == key_size && memcmp(a->names[i], key, key_size) == 0) {
            a->values[i] = value;
            a->value_lens[i] = value_size;
            return MHD_YES;
        }
    }
    if (a->n == a->cap && grow_args(a) != 0) {
        a->failed = 1;
        return MHD_NO;
    }
    a->names[a->n] = key;
    a->name_lens[a->n] = key_size;
    a->values[a->n] = value;
    a->value_lens[a->n] = value_size;
    a->n++;
    return MHD_YES;
}

/* MHD_KeyValueIterator: adds the size of one header line to *cls. */
static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    size_t *total = cls;
    *total += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* MHD_ContentReaderCallback of an event stream: the rest of the current
 * chunk, else the latest event if newer than the last one sent, else the
 * connection is suspended until retape_http_publish (or the server stops:
 * end of stream). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    stream_conn *sc = cls;
    retape_http_server *srv = sc->srv;
    if (sc->off == sc->len) {
        pthread_mutex_lock(&srv->feed_mu);
        if (srv->closing) {
            pthread_mutex_unlock(&srv->feed_mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (srv->event_seq == sc->seen) {
            sc->waiting = 1;
            sc->next = srv->waiting;
            srv->waiting = sc;
            mhd.suspend_connection(sc->conn);
            pthread_mutex_unlock(&srv->feed_mu);
            return 0;
        }
        if (grow_buffer(&sc->buf, &sc->cap, srv->event_len + 1, 256) != 0) {
            pthread_mutex_unlock(&srv->feed_mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        memcpy(sc->buf, srv->event, srv->event_len);
        sc->len = srv->event_len;
        sc->off = 0;
        sc->seen = srv->event_seq;
        pthread_mutex_unlock(&srv->feed_mu);
    }
    size_t n = sc->len - sc->off < max ? sc->len - sc->off : max;
    memcpy(out, sc->buf + sc->off, n);
    sc->off += n;
    return (ssize_t)n;
}

/* MHD_ContentReaderFreeCallback of an event stream. */
static void stream_free(void *cls)
{
    stream_conn *sc = cls;
    retape_http_server *srv = sc->srv;
    pthread_mutex_lock(&srv->feed_mu);
    for (stream_conn **p = &srv->waiting; *p; p = &(*p)->next) {
        if (*p == sc) {
            *p = sc->next;
            break;
        }
    }
    pthread_mutex_unlock(&srv->feed_mu);
    free(sc->buf);
    free(sc);
}

void retape_http_publish(retape_http_server *srv, const char *text, size_t len)
{
    pthread_mutex_lock(&srv->feed_mu);
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        free(srv->event);
        srv->event = copy;
        srv->event_len = len;
        srv->event_seq++;
    }
    for (stream_conn *sc = srv->waiting; sc; sc = sc->next) {
        sc->waiting = 0;
        mhd.resume_connection(sc->conn);
    }
    srv->waiting = NULL;
    pthread_mutex_unlock(&srv->feed_mu);
}

/* Queues an event stream whose first chunk is the handler's body (its
 * ownership passes to the stream). */
static enum MHD_Result send_stream(retape_http_server *srv, struct MHD_Connection *conn, retape_http_response *r)
{
    stream_conn *sc = calloc(1, sizeof *sc);
    if (!sc) {
        free(r->body);
        r->body = NULL;
        return MHD_NO;
    }
    sc->srv = srv;
    sc->conn = conn;
    sc->buf = r->body;
    sc->len = sc->cap = r->body ? r->body_len : 0;
    r->body = NULL;
    pthread_mutex_lock(&srv->feed_mu);
    sc->seen = srv->event_seq;
    pthread_mutex_unlock(&srv->feed_mu);
    struct MHD_Response *resp = mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, sc, stream_free);
    if (!resp) {
        free(sc->buf);
        free(sc);
        return MHD_NO;
    }
    mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    mhd.add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result rc = mhd.queue_response(conn, MHD_HTTP_OK, resp);
    mhd.destroy_response(resp);
    return rc;
}

/* Queues a response built from what the handler produced (the body's
 * ownership passes to libmicrohttpd, which frees it). */
static enum MHD_Result send_response(struct MHD_Connection *conn, retape_http_response *r)
{
    struct MHD_Response *resp;
    if (r->body)
        resp = mhd.create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
    else
        resp = mhd.create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    if (r->content_type[0])
        mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    char *colon = strstr(r->header, ": ");
    if (colon) {
        *colon = '\0';
        mhd.add_response_header(resp, r->header, colon + 2);
    }
    enum MHD_Result rc = mhd.queue_response(conn, (unsigned)(r->status > 0 ? r->status : 500), resp);
    mhd.destroy_response(resp);
    return rc;
}

/* A deferred request's answer: queued if given, else the connection is
 * suspended until retape_http_complete resumes it (and libmicrohttpd calls
 * on_request again, which comes back here). */
static enum MHD_Result answer_deferred(retape_http_server *srv, struct MHD_Connection *conn, request_state *rs)
{
    pthread_mutex_lock(&srv->feed_mu);
    if (!rs->ready) {
        if (!rs->suspended) {
            rs->suspended = 1;
            mhd.suspend_connection(conn);
        }
        pthread_mutex_unlock(&srv->feed_mu);
        return MHD_YES;
    }
    rs->suspended = 0;
    pthread_mutex_unlock(&srv->feed_mu);
    return send_response(conn, &rs->answer);
}

retape_http_deferred *retape_http_defer(const retape_http_request *req)
{
    request_state *rs = req->internal;
    rs->deferred = 1;
    return (retape_http_deferred *)(void *)rs;
}

void retape_http_complete(retape_http_deferred *d, int status, const char *content_type, char *body, size_t len)
{
    request_state *rs = &d->rs;
    retape_http_server *srv = rs->srv;
    pthread_mutex_lock(&srv->feed_mu);
    rs->answer.status = status;
    snprintf(rs->answer.content_type, sizeof rs->answer.content_type, "%s", content_type ? content_type : "");
    rs->answer.body = body;
    rs->answer.body_len = body ? len : 0;
    rs->ready = 1;
    if (rs->suspended)
        mhd.resume_connection(rs->conn);
    pthread_mutex_unlock(&srv->feed_mu);
}

/* Builds the request view and calls the handler; queues its response. */
static enum MHD_Result dispatch(retape_http_server *srv, struct MHD_Connection *conn, const char *url,
                                const char *method, request_state *rs)
{
    arg_list args = {0};
    mhd.get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    if (args.failed) {
        free_args(&args);
        return MHD_NO;
    }
    char remote[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *ci = mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, remote,
                  sizeof remote);
    retape_http_request req = {
        .method = method, .path = url, .remote = remote,
        .n_args = args.n, .arg_names = args.names, .arg_values = args.values,
        .arg_name_lens = args.name_lens, .arg_value_lens = args.value_lens,
        .body = rs->body ? rs->body : "", .body_len = rs->len, .over_limit = rs->over_limit, .internal = rs,
    };
    retape_http_response resp = {.status = 500};
    conn_slot *slot = slot_of(conn);
    /* answering: no deadline until the answer is sent (a deferred answer, an
     * event stream: the request has fully arrived; only the idle timeout and
     * the client's leaving end them) */
    if (slot)
        atomic_store(&slot->deadline, 0);
    rs->conn = conn;
    rs->srv = srv;
    srv->handler(srv->ctx, &req, &resp);
    free_args(&args);
    if (rs->deferred) {
        free(resp.body);
        return answer_deferred(srv, conn, rs);
    }
    if (resp.status == 200 && strcmp(resp.content_type, "text/event-stream") == 0) {
        rs->streaming = 1; /* open for as long as the client stays: not a request in flight */
        atomic_fetch_sub(&srv->inflight, 1);
        return send_stream(srv, conn, &resp);
    }
    return send_response(conn, &resp);
}

/* MHD_AccessHandlerCallback: called once with the headers, then once per
 * chunk of body, then once more when the body is complete. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    (void)version;
    retape_http_server *srv = cls;
    request_state *rs = *con_cls;
    if (!rs) {
        rs = calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        *con_cls = rs;
        atomic_fetch_add(&srv->inflight, 1);
        size_t header_bytes = strlen(url);
        mhd.get_connection_values(conn, MHD_HEADER_KIND, sum_header, &header_bytes);
        mhd.get_connection_values(conn, MHD_GET_ARGUMENT_KIND, sum_header, &header_bytes);
        const char *cl = mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (header_bytes > srv->opts.max_header)
            rs->over_limit = 431;
        else if (cl && strtoull(cl, NULL, 10) > srv->opts.max_body)
            rs->over_limit = 413;
        /* Over a limit: answer at once; libmicrohttpd then closes the
         * connection without reading the body. */
        if (rs->over_limit)
            return dispatch(srv, conn, url, method, rs);
        return MHD_YES;
    }
    if (rs->deferred) /* resumed: the answer is there */
        return answer_deferred(srv, conn, rs);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rs->over_limit)
            return MHD_YES;
        if (rs->len + n > srv->opts.max_body) { /* chunked body over the limit */
            rs->over_limit = 413;
            free(rs->body);
            rs->body = NULL;
            rs->len = rs->cap = 0;
            return MHD_YES;
        }
        if (grow_buffer(&rs->body, &rs->cap, rs->len + n + 1, 1024) != 0)
            return MHD_NO;
        memcpy(rs->body + rs->len, upload_data, n);
        rs->len += n;
        rs->body[rs->len] = '\0';
        return MHD_YES;
    }
    return dispatch(srv, conn, url, method, rs);
}

/* MHD_RequestCompletedCallback: frees the per-request state. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    retape_http_server *srv = cls;
    request_state *rs = *con_cls;
    conn_slot *slot = slot_of(conn);
    if (slot) /* kept alive: the next request has its own deadline */
        atomic_store(&slot->deadline, monotonic_ms() + (int64_t)srv->opts.request_timeout_s * 1000);
    if (rs) {
        if (!rs->streaming)
            atomic_fetch_sub(&srv->inflight, 1);
        if (rs->deferred && rs->ready)
            free(rs->answer.body); /* not sent (the client went): still ours */
        free(rs->body);
        free(rs);
        *con_cls = NULL;
    }
}

retape_http_server *retape_http_start(const retape_http_options *opts, retape_http_handler handler,
                                      void *ctx, char **errptr)
{
    if (retape_http_load(errptr) != 0)
        return NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opts->port);
    if (opts->port < 0 || opts->port > 65535 || inet_pton(AF_INET, opts->host, &addr.sin_addr) != 1) {
        set_error(errptr, "cannot listen on %s:%d: not an IPv4 address and port", opts->host, opts->port);
        return NULL;
    }
    retape_http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        set_error(errptr, "out of memory");
        return NULL;
    }
    atomic_init(&srv->inflight, 0);
    srv->quiesced_fd = -1;
    pthread_mutex_init(&srv->feed_mu, NULL);
    srv->handler = handler;
    srv->ctx = ctx;
    srv->opts = *opts;
    if (!srv->opts.request_timeout_s)
        srv->opts.request_timeout_s = 10;
    pthread_mutex_init(&srv->conns_mu, NULL);
    pthread_cond_init(&srv->reaper_cv, NULL);
    /* libmicrohttpd's own per-connection buffer must hold what we accept, so
     * that our 431 (JSON, from the handler) answers before its own does. */
    size_t memory = opts->max_header * 2 + 16384;
    /* poll(), not the epoll() that MHD_USE_AUTO picks on Linux: with epoll,
     * MHD_quiesce_daemon and a pool thread both remove the listening socket
     * from that thread's epoll set, unlocked, and the loser of that race
     * aborts the process (MHD_PANIC "Failed to remove listen FD from epoll
     * set", libmicrohttpd 0.9.75): a SIGTERM could end in SIGABRT.  A pool
     * thread polls its share of max_connections (64 webhook connections:
     * level with epoll, docs/performance.md). */
    srv->daemon = mhd.start_daemon(
        MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(opts->threads ? opts->threads : 1),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(opts->max_connections ? opts->max_connections : 1024),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(opts->max_per_peer ? opts->max_per_peer : 128),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_END);
    if (!srv->daemon) {
        set_error(errptr, "cannot listen on %s:%d (address in use, or not allowed)", opts->host, opts->port);
        pthread_mutex_destroy(&srv->feed_mu);
        pthread_cond_destroy(&srv->reaper_cv);
        pthread_mutex_destroy(&srv->conns_mu);
        free(srv);
        return NULL;
    }
    srv->reaper_started = pthread_create(&srv->reaper, NULL, reaper_main, srv) == 0;
    if (!srv->reaper_started) {
        set_error(errptr, "cannot start the connection reaper thread");
        retape_http_stop(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *di = mhd.get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : opts->port;
    return srv;
}

int retape_http_port(const retape_http_server *srv)
{
    return srv->port;
}

void retape_http_quiesce(retape_http_server *srv)
{
    if (srv && srv->daemon) {
        /* the pool threads may still poll it until the daemon stops
         * (libmicrohttpd's manual), so it is closed by retape_http_stop,
         * after.  Shut down now, it refuses new connections at once
         * instead of leaving them in its backlog (Linux: a listening
         * socket shut down stops listening, poll() reports only POLLHUP
         * on it, which libmicrohttpd ignores; elsewhere shutdown() may
         * fail and the socket listens until the close) */
        MHD_socket s = mhd.quiesce_daemon(srv->daemon);
        if (s != MHD_INVALID_SOCKET && srv->quiesced_fd < 0) {
            shutdown(s, SHUT_RDWR);
            srv->quiesced_fd = s;
        }
    }
}

int retape_http_drain(retape_http_server *srv, int timeout_ms)
{
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int waited = 0; atomic_load(&srv->inflight) > 0; waited += 5) {
        if (waited >= timeout_ms)
            return -1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

void retape_http_stop(retape_http_server *srv)
{
    if (!srv)
        return;
    if (srv->reaper_started) {
        pthread_mutex_lock(&srv->conns_mu);
        srv->reaper_stop = 1;
        pthread_cond_signal(&srv->reaper_cv);
        pthread_mutex_unlock(&srv->conns_mu);
        pthread_join(srv->reaper, NULL);
    }
    /* event streams end (a suspended connection must be resumed before the
     * daemon stops) */
    pthread_mutex_lock(&srv->feed_mu);
    srv->closing = 1;
    for (stream_conn *sc = srv->waiting; sc; sc = sc->next) {
        sc->waiting = 0;
        mhd.resume_connection(sc->conn);
    }
    srv->waiting = NULL;
    pthread_mutex_unlock(&srv->feed_mu);
    if (srv->daemon)
        mhd.stop_daemon(srv->daemon); /* unregisters every connection */
    if (srv->quiesced_fd >= 0)
        close(srv->quiesced_fd);
    pthread_cond_destroy(&srv->reaper_cv);
    pthread_mutex_destroy(&srv->conns_mu);
    pthread_mutex_destroy(&srv->feed_mu);
    free(srv->event);
    free(srv);
}
