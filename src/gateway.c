/*
 * The HTTP listener (include/fnd/http.h): binds, accepts and keeps the set of open
 * connections; everything per connection lives in http_conn.c.
 *
 * Accept never spins: libuv keeps a spare descriptor to accept-and-drop a connection
 * when the process is out of descriptors (EMFILE), and reports the error, which is
 * logged at most once a second.
 */
#include "fnd/http_conn.h"

#include "fnd/log.h"

#include <errno.h>
#include <stdlib.h>

static void on_connection(uv_stream_t *server, int status)
{
    struct gateway *gw = container_of((uv_tcp_t *)server, struct gateway, server);
    if (status < 0) {
        static uint64_t last_ms;
        uint64_t now = uv_now(gw->loop);
        if (now - last_ms >= 1000) {
            log_warn("accept failed", "err=\"%s\"", uv_strerror(status));
            last_ms = now;
        }
        return;
    }
    int rc = http_conn_accept(gw);
    if (rc < 0)
        log_debug("connection refused", "err=\"%s\"", uv_strerror(rc));
}

int gateway_open(struct gateway **out, uv_loop_t *loop, const char *host, int port,
                 const struct http_limits *limits, http_handler_fn *handler, void *data)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    int rc = uv_ip4_addr(host, port, &addr.in4);
    if (rc < 0)
        rc = uv_ip6_addr(host, port, &addr.in6);
    if (rc < 0)
        return rc;

    struct gateway *gw = xcalloc(1, sizeof(*gw));
    gw->loop = loop;
    gw->limits = *limits;
    gw->handler = handler;
    gw->data = data;
    list_init(&gw->conns);
    uv_tcp_init(loop, &gw->server);
    gw->open_handles = 1;
    rc = uv_tcp_bind(&gw->server, &addr.sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&gw->server, 511, on_connection);
    if (rc < 0) {
        gw->closing = true;
        uv_close((uv_handle_t *)&gw->server, NULL);
        /* freed once the close callback ran: the loop still refers to the handle */
        uv_run(loop, UV_RUN_NOWAIT);
        free(gw);
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&gw->server, (struct sockaddr *)&bound, &len);
    gw->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = gw;
    return 0;
}

int gateway_port(const struct gateway *gw)
{
    return gw->port;
}

size_t gateway_connections(const struct gateway *gw)
{
    return gw->nconns;
}

static void maybe_closed(struct gateway *gw)
{
    if (!gw->closing || gw->open_handles > 0 || gw->nconns > 0)
        return;
    void (*cb)(void *) = gw->on_closed;
    void *data = gw->closed_data;
    free(gw);
    if (cb)
        cb(data);
}

static void on_server_closed(uv_handle_t *h)
{
    struct gateway *gw = container_of((uv_tcp_t *)h, struct gateway, server);
    gw->open_handles--;
    maybe_closed(gw);
}

void gateway_on_conn_freed(struct gateway *gw)
{
    maybe_closed(gw);
}

void gateway_stop_accepting(struct gateway *gw)
{
    gw->draining = true;
    if (!gw->listener_closed) {
        gw->listener_closed = true;
        uv_close((uv_handle_t *)&gw->server, on_server_closed);
    }
}

void gateway_close(struct gateway *gw, void (*on_closed)(void *), void *data)
{
    gw->closing = true;
    gw->on_closed = on_closed;
    gw->closed_data = data;
    if (!gw->listener_closed) {
        gw->listener_closed = true;
        uv_close((uv_handle_t *)&gw->server, on_server_closed);
    }
    http_conn_close_all(gw);
    maybe_closed(gw); /* the listener may have closed already, with no connections left */
}
