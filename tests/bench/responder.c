/*
 * The benchmark suite's minimal HTTP responder: the floor that fnd's gateway is compared
 * with. It is the same stack as fnd's gateway (libuv for the sockets, llhttp for the
 * parser) with nothing behind it: every request gets the same small 200 with keep-alive.
 * Pipelined requests that arrive in one read are answered with one write.
 *
 * Usage: bench_responder [PORT]  (0 or nothing: any free port). It listens on 127.0.0.1
 * only, prints "listening PORT" on stdout once bound, and runs until SIGTERM or SIGINT.
 */
#include <llhttp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Content-Length: 11\r\n\r\n{\"ok\":true}";
#define RESPONSE_LEN (sizeof(RESPONSE) - 1)
/* Responses one read can produce; more pipelined requests than this in one read are
 * answered in several writes. */
#define BATCH_MAX 256

struct conn {
    uv_tcp_t tcp;
    llhttp_t parser;
    llhttp_settings_t *settings;
    size_t pending; /* complete requests seen in the current read */
    char rbuf[64 * 1024];
};

struct write_req {
    uv_write_t req;
    char data[];
};

static llhttp_settings_t settings;
static char batch[BATCH_MAX * RESPONSE_LEN];

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write means the peer went away: its read ends it */
    free(req);
}

/* Writes n copies of the response; the bytes are copied because the write is async. */
static int respond(struct conn *c, size_t n)
{
    while (n > 0) {
        size_t k = n < BATCH_MAX ? n : BATCH_MAX;
        struct write_req *w = malloc(sizeof(*w) + k * RESPONSE_LEN);
        if (!w)
            return UV_ENOMEM;
        memcpy(w->data, batch, k * RESPONSE_LEN);
        uv_buf_t b = uv_buf_init(w->data, (unsigned)(k * RESPONSE_LEN));
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
        if (rc < 0) {
            free(w);
            return rc;
        }
        n -= k;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->pending++;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct conn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n == 0)
        return;
    if (n < 0)
        goto fail;
    c->pending = 0;
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (respond(c, c->pending) < 0 || err != HPE_OK)
        goto fail;
    return;
fail:
    if (!uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < BATCH_MAX; i++)
        memcpy(batch + i * RESPONSE_LEN, RESPONSE, RESPONSE_LEN);
    llhttp_settings_init(&settings);
    settings.on_message_complete = on_message_complete;
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (rc < 0) {
        fprintf(stderr, "bench_responder: %s\n", uv_strerror(rc));
        return 1;
    }
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    printf("listening %d\n", ntohs(bound.sin_port));
    fflush(stdout);

    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
