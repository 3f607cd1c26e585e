/*
 * Fuzz driver for the HTTP request path: http_conn.c's llhttp callbacks, limits,
 * chunked bodies, keep-alive and pipelining, and the router, fed through a real
 * connection. Each input is written into one end of a socketpair whose other end is
 * served by http_conn_open() on a libuv loop, exactly as an accepted TCP connection
 * is served, with a handler that routes like api.c and answers some requests at
 * once and others from a later loop turn (as an invocation does).
 *
 * Input: byte 0 picks how the bytes are split into writes (1 to 128 bytes, or all at
 * once), so header and body slices also cross reads; the rest is what the client
 * sends before it half-closes. Properties checked: every request the handler sees
 * is within the limits and its slices are consistent; the connection always ends on
 * its own once the client has sent everything (no stall, nothing left on the loop);
 * whatever comes back starts as an HTTP/1.1 response.
 */
#include "fuzz.h"

#include "fnd/http_conn.h"
#include "fnd/log.h"
#include "fnd/router.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_TURNS 200000 /* loop turns per input before a stall is declared */

static uv_loop_t loop;
static struct gateway gw;

struct deferred {
    uv_timer_t timer;
    struct http_request *req;
};

static void check_request(const struct http_request *r)
{
    FUZZ_CHECK(r->target.len <= gw.limits.max_url);
    FUZZ_CHECK(r->nheaders <= gw.limits.max_headers);
    FUZZ_CHECK(r->body.len <= gw.limits.max_body);
    FUZZ_CHECK(r->path.ptr == r->target.ptr && r->path.len <= r->target.len);
    FUZZ_CHECK(memchr(r->path.ptr, '?', r->path.len) == NULL);
    if (r->query.len)
        FUZZ_CHECK(r->query.ptr == r->path.ptr + r->path.len + 1);
    size_t header_bytes = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        FUZZ_CHECK(r->headers[i].name.ptr != NULL && r->headers[i].value.ptr != NULL);
        header_bytes += r->headers[i].name.len + r->headers[i].value.len;
    }
    FUZZ_CHECK(header_bytes <= gw.limits.max_header_bytes);
    FUZZ_CHECK(r->method_name != NULL);
}

static void on_deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_deferred(uv_timer_t *t)
{
    struct deferred *df = t->data;
    struct http_request *req = df->req;
    http_respond(req, 200, NULL, 0, req->body.data, req->body.len);
    uv_close((uv_handle_t *)t, on_deferred_closed);
}

/* Answers from a later loop turn, as an invocation answers when its worker is done. */
static void on_later(struct http_request *req, const struct route_match *m, void *data)
{
    struct deferred *df = calloc(1, sizeof(*df));
    FUZZ_CHECK(df != NULL);
    df->req = req;
    df->timer.data = df;
    uv_timer_init(&loop, &df->timer);
    uv_timer_start(&df->timer, on_deferred, 0, 0);
}

static void on_now(struct http_request *req, const struct route_match *m, void *data)
{
    static const struct http_header type = {SLICE_LIT("Content-Type"), SLICE_LIT("text/plain")};
    struct slice host = http_request_header(req, "Host");
    http_respond(req, 200, &type, 1, host.ptr, host.len);
}

static void on_throttled(struct http_request *req, const struct route_match *m, void *data)
{
    static const struct http_header retry = {SLICE_LIT("Retry-After"), SLICE_LIT("1")};
    FUZZ_CHECK(m->nparams == 1 && m->params[0].len > 0);
    http_respond_error_headers(req, FND_E_TOO_MANY_REQUESTS, &retry, 1, "%.*s is busy",
                               (int)m->params[0].len, m->params[0].ptr);
}

static void on_gone(struct http_request *req, const struct route_match *m, void *data)
{
    http_respond(req, 204, NULL, 0, NULL, 0);
}

/* The native API's patterns (api.c), so routing sees the shapes it sees in service. */
static const struct route routes[] = {
    {"GET", "/healthz", on_now},
    {"GET", "/v1/stats", on_now},
    {"GET", "/v1/functions", on_now},
    {"GET", "/v1/functions/{name}", on_now},
    {"PUT", "/v1/functions/{name}", on_throttled},
    {"DELETE", "/v1/functions/{name}", on_gone},
    {"PUT", "/v1/functions/{name}/code", on_later},
    {"POST", "/v1/functions/{name}/invoke", on_later},
    {"*", "/files/{rest...}", on_later},
};

static void handle(struct http_request *req, void *data)
{
    check_request(req);
    const struct route *route;
    struct route_match m;
    char allow[128];
    int rc = router_match(routes, ARRAY_SIZE(routes), req->method_name, req->path, &route, &m,
                          allow, sizeof(allow));
    if (rc == -ENOENT) {
        http_respond_error(req, FND_E_NOT_FOUND, "no such endpoint: %.*s", (int)req->path.len,
                           req->path.ptr);
        return;
    }
    if (rc == -EPERM) {
        FUZZ_CHECK(allow[0] != '\0');
        http_respond_method_not_allowed(req, allow);
        return;
    }
    FUZZ_CHECK(rc == 0 && m.nparams <= ROUTE_MAX_PARAMS);
    route->handler(req, &m, data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT);
    uv_loop_init(&loop);
    gw.loop = &loop;
    gw.handler = handle;
    list_init(&gw.conns);
    /* Small limits, so that inputs of a few KiB reach every one of them. */
    gw.limits = (struct http_limits){
        .max_url = 256,
        .max_header_bytes = 1024,
        .max_headers = 8,
        .max_body = 4096,
        .idle_timeout_ms = 600000, /* the client always half-closes: no timer should */
        .header_timeout_ms = 600000, /* ever be what ends a connection here */
        .body_timeout_ms = 600000,
        .max_connections = 4,
    };
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = data[0] % 8 == 7 ? size : (size_t)1 << (data[0] % 8);
    data++;
    size--;

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(http_conn_open(&gw, sv[0]) == 0);
    size_t off = 0, got = 0;
    bool shut = false;
    char head[9]; /* the first bytes that came back */
    for (int turns = 0; gw.nconns > 0; turns++) {
        if (turns > MAX_TURNS) {
            fprintf(stderr, "the connection stalled: %zu of %zu bytes sent\n", off, size);
            abort();
        }
        if (off < size) {
            size_t n = size - off < piece ? size - off : piece;
            ssize_t w = write(sv[1], data + off, n);
            if (w > 0)
                off += (size_t)w;
            else if (errno != EAGAIN)
                off = size; /* the daemon closed: the rest cannot be delivered */
        } else if (!shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        char chunk[16384];
        ssize_t r;
        while ((r = read(sv[1], chunk, sizeof(chunk))) > 0) {
            for (ssize_t i = 0; i < r && got < sizeof(head); i++)
                head[got++] = chunk[i];
        }
    }
    close(sv[1]);
    for (int turns = 0; turns < 1000 && uv_run(&loop, UV_RUN_NOWAIT); turns++)
        ;
    FUZZ_CHECK(!uv_loop_alive(&loop)); /* nothing of the connection outlives it */
    FUZZ_CHECK(memcmp(head, "HTTP/1.1 ", got) == 0);
    return 0;
}
