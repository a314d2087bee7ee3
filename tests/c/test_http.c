/* test_http.c — the server of `retape serve` from C alone (no Lua): kv views
 * and snapshots, requests over a loopback socket, limits, drain. */
#include "check.h"
#include "http.h"
#include "retape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

static atomic_int calls;

/* Echoes "METHOD PATH n=ARGS a=<value of a> body=<len> limit=<over_limit>". */
static void echo(void *ctx, const retape_http_request *req, retape_http_response *resp)
{
    (void)ctx;
    atomic_fetch_add(&calls, 1);
    const char *a = "-";
    for (size_t i = 0; i < req->n_args; i++)
        if (strcmp(req->arg_names[i], "a") == 0)
            a = req->arg_values[i];
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s %s n=%zu a=%s body=%zu limit=%d", req->method, req->path, req->n_args, a,
                     req->body_len, req->over_limit);
    resp->body = malloc((size_t)n);
    memcpy(resp->body, buf, (size_t)n);
    resp->body_len = (size_t)n;
    resp->status = req->over_limit ? req->over_limit : 200;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain");
}

/* Sends raw bytes to 127.0.0.1:port, returns what came back (malloc'd). */
static char *roundtrip(int port, const char *head, size_t body_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    (void)!write(fd, head, strlen(head));
    char chunk[4096];
    memset(chunk, 'b', sizeof chunk);
    for (size_t sent = 0; sent < body_len;) {
        size_t n = body_len - sent < sizeof chunk ? body_len - sent : sizeof chunk;
        ssize_t w = write(fd, chunk, n);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    size_t cap = 65536, len = 0;
    char *out = calloc(1, cap);
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - len - 1)) > 0)
        len += (size_t)r;
    close(fd);
    return out;
}

int main(void)
{
    /* --- kv views and snapshots */
    char *dir = check_tempdir(), path[600], *err = NULL, *val = NULL;
    size_t vlen = 0;
    snprintf(path, sizeof path, "%s/state", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "store opens");
    retape_kv_put(kv, "k", 1, "v1", 2, &err);
    retape_kv *view = retape_kv_view(kv, &err);
    CHECK(view != NULL, "a view opens on the same database (no second lock)");
    CHECK(retape_kv_get(view, "k", 1, &val, &vlen, &err) == 1 && vlen == 2 && memcmp(val, "v1", 2) == 0,
          "the view reads the base's data");
    retape_free(val);
    retape_kv_pin(view);
    retape_kv_batch *b = retape_kv_batch_new(NULL);
    retape_kv_batch_put(b, "k", 1, "v2", 2);
    retape_kv_batch_put(b, "k2", 2, "new", 3);
    retape_kv_write(kv, b, &err);
    retape_kv_batch_free(b);
    CHECK(retape_kv_get(view, "k", 1, &val, &vlen, &err) == 1 && memcmp(val, "v1", 2) == 0,
          "pinned: a batch written after the pin is invisible");
    retape_free(val);
    retape_kv_iter *it = retape_kv_scan(view, "k", 1, NULL);
    const char *k, *v;
    size_t kl, vl;
    int n = 0;
    while (retape_kv_iter_next(it, &k, &kl, &v, &vl, &err) == 1)
        n++;
    retape_kv_iter_close(it);
    CHECK(n == 1, "pinned: a scan sees the snapshot (1 key, not 2)");
    retape_kv_unpin(view);
    CHECK(retape_kv_get(view, "k", 1, &val, &vlen, &err) == 1 && memcmp(val, "v2", 2) == 0,
          "unpinned: the latest value");
    retape_free(val);
    CHECK(retape_kv_put(view, "k3", 2, "w", 1, &err) == 0 && retape_kv_get(kv, "k3", 2, &val, &vlen, &err) == 1,
          "writes through a view land in the base");
    retape_free(val);
    retape_kv_pin(view);
    retape_kv_close(view); /* closes with a snapshot pinned; the base stays open */
    CHECK(retape_kv_get(kv, "k", 1, &val, &vlen, &err) == 1, "closing a view leaves the base open");
    retape_free(val);
    retape_kv_close(kv);

    /* --- the server */
    retape_http_options o = {.host = "127.0.0.1", .port = 0, .threads = 2, .max_body = 1000,
                             .max_header = 2048, .timeout_s = 5};
    retape_http_server *srv = retape_http_start(&o, echo, NULL, &err);
    CHECK(srv != NULL, "server starts on a free port");
    int port = retape_http_port(srv);
    CHECK(port > 0, "the bound port is known (%d)", port);
    char *r = roundtrip(port, "GET /x/y?a=1%202&b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 0);
    CHECK(r && strstr(r, "HTTP/1.1 200") && strstr(r, "GET /x/y n=2 a=1 2 body=0 limit=0"),
          "GET: path, decoded query arguments, value-less argument");
    CHECK(r && strstr(r, "Content-Type: text/plain"), "the handler's content type");
    free(r);
    r = roundtrip(port, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 600\r\nConnection: close\r\n\r\n", 600);
    CHECK(r && strstr(r, "POST /p n=0 a=- body=600 limit=0"), "POST body under the limit is read whole");
    free(r);
    r = roundtrip(port, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n", 0);
    CHECK(r && strstr(r, "HTTP/1.1 413") && strstr(r, "limit=413"), "Content-Length over max_body: 413 before the body");
    free(r);
    char big[4096];
    snprintf(big, sizeof big, "GET /h HTTP/1.1\r\nHost: t\r\nX-Fill: %03000d\r\nConnection: close\r\n\r\n", 0);
    r = roundtrip(port, big, 0);
    CHECK(r && strstr(r, "HTTP/1.1 431") && strstr(r, "limit=431"), "headers over max_header: 431 from the handler");
    free(r);
    CHECK(retape_http_drain(srv, 1000) == 0, "drain: nothing in flight");
    retape_http_options o2 = o;
    o2.port = port;
    retape_http_server *dup = retape_http_start(&o2, echo, NULL, &err);
    CHECK(dup == NULL && err && strstr(err, "cannot listen"), "a port in use is an error");
    retape_free(err);
    err = NULL;
    o2.host = "localhost";
    dup = retape_http_start(&o2, echo, NULL, &err);
    CHECK(dup == NULL && err && strstr(err, "IPv4"), "a host name is refused (IPv4 address expected)");
    retape_free(err);
    retape_http_quiesce(srv);
    r = roundtrip(port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0);
    CHECK(r == NULL || r[0] == '\0', "quiesced: new connections are refused");
    free(r);
    CHECK(atomic_load(&calls) == 4, "one handler call per request (%d)", atomic_load(&calls));
    retape_http_stop(srv);
    retape_http_stop(NULL);
    free(dir);
    return done_testing();
}
