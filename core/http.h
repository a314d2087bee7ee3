/*
 * http.h — a small HTTP/1.1 server over libmicrohttpd (mechanism only).
 *
 * The server owns the sockets, a pool of threads, request size limits and
 * timeouts; it knows nothing of routes, auth or JSON.  Each complete request
 * is handed to one handler callback, on a server thread, possibly several at
 * once: the handler must be thread-safe.  Conventions as in retape.h (errors
 * as a malloc'd message in *errptr, freed with retape_free).
 */
#ifndef RETAPE_HTTP_H
#define RETAPE_HTTP_H

#include <stddef.h>

typedef struct retape_http_server retape_http_server;

/* One request.  Every pointer is borrowed for the duration of the handler call. */
typedef struct retape_http_request {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* URL path without the query, percent-decoded */
    const char *remote;  /* peer address, e.g. "127.0.0.1" */
    size_t n_args;       /* query arguments (a name given twice keeps its last value) */
    const char **arg_names, **arg_values; /* a value-less "?debug" has value "" */
    const size_t *arg_name_lens, *arg_value_lens; /* exact: a %00 is a NUL byte inside */
    const char *body;    /* request body ("" when none) */
    size_t body_len;
    /* 0 = complete; 413 = the body is over max_body (not read); 431 = the
     * request line and headers are over max_header.  The handler still
     * answers (with that status, typically). */
    int over_limit;
    void *internal;      /* the server's state of this request (retape_http_defer) */
} retape_http_request;

/* The handler fills status, content_type and body (malloc'd; the server frees
 * it), and optionally one more header line ("Name: value").  A handler that
 * leaves body NULL answers an empty body.  A response
 * of content type "text/event-stream" stays open: its body is sent first,
 * then every event published with retape_http_publish (server-sent events),
 * until the client goes or the server stops. */
typedef struct retape_http_response {
    int status;
    char content_type[64];
    char header[128]; /* "" or one more header, "Name: value" */
    char *body;
    size_t body_len;
} retape_http_response;

typedef void (*retape_http_handler)(void *ctx, const retape_http_request *req, retape_http_response *resp);

typedef struct retape_http_options {
    const char *host;    /* IPv4 address to listen on, e.g. "127.0.0.1" */
    int port;            /* 0 = any free port (see retape_http_port) */
    unsigned threads;    /* worker threads (>= 1) */
    size_t max_body;     /* bytes; larger bodies answer 413 without being read */
    size_t max_header;   /* bytes of URL + headers; larger requests answer 431 */
    unsigned timeout_s;  /* idle connection timeout */
    unsigned max_connections; /* open connections at most (0 = 1024) */
    unsigned max_per_peer;    /* open connections per client address at most (0 = 128) */
    unsigned request_timeout_s; /* a request's headers and body must arrive within this
                                   of the connection opening or of the previous answer
                                   (0 = 10): a trickling client is cut off */
} retape_http_options;

/* Loads libmicrohttpd, which the host does not link (core/http.c): 0, or
 * -1 + *errptr naming the library and why it cannot be loaded.  Once per
 * process; retape_http_start calls it too.  Thread-safe. */
int retape_http_load(char **errptr);
/* Starts listening and serving on a pool of opts->threads threads.  The
 * caller should block the signals it wants to handle itself before calling
 * (the threads inherit the mask).  NULL + *errptr on failure (address in use,
 * bad address, libmicrohttpd not loadable). */
retape_http_server *retape_http_start(const retape_http_options *opts, retape_http_handler handler,
                                      void *ctx, char **errptr);
/* The port actually bound. */
int retape_http_port(const retape_http_server *srv);
/* A handler may answer later, from any thread: it calls retape_http_defer
 * during its call (what it leaves in the response is then dropped) and the
 * connection waits, holding no thread, until retape_http_complete gives the
 * answer.  Every deferred request must be completed exactly once, before
 * retape_http_stop. */
typedef struct retape_http_deferred retape_http_deferred;
retape_http_deferred *retape_http_defer(const retape_http_request *req);
/* Answers a deferred request; takes ownership of body (malloc'd; NULL = empty).
 * Thread-safe. */
void retape_http_complete(retape_http_deferred *d, int status, const char *content_type, char *body, size_t len);

/* Sends `text` (one or more complete "data: ...\n\n" events) to every open
 * event stream; a stream that has not sent the previous one yet gets only
 * the latest (events say "something changed", the client reads what).
 * Thread-safe. */
void retape_http_publish(retape_http_server *srv, const char *text, size_t len);
/* Stops accepting new connections; requests in flight continue. */
void retape_http_quiesce(retape_http_server *srv);
/* Waits (up to timeout_ms) until every request received so far has been
 * answered and its response sent.  0, or -1 on timeout. */
int retape_http_drain(retape_http_server *srv, int timeout_ms);
/* Waits for the requests in flight, closes every connection and frees the
 * server.  NULL is a no-op. */
void retape_http_stop(retape_http_server *srv);

#endif
