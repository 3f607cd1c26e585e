/*
 * The HTTP listener (include/fnd/http.h): binds, accepts and keeps the set of open
 * connections; everything per connection lives in http_conn.c.
 *
 * The gateway accepts by itself (a uv_poll_t on the listening socket, accept4 up to
 * ACCEPT_BATCH connections a wakeup) rather than through uv_listen, because libuv
 * handles running out of descriptors silently: it accepts and closes what waits with
 * a spare descriptor and tells no one. Here the same happens in the open: when accept
 * fails with EMFILE or ENFILE, the spare descriptor is closed, every waiting connection
 * accepted and closed at once (the client sees the close instead of hanging in the
 * backlog), the spare reopened, and a warning logged at most once a second with the
 * count refused since the last one (a count left over is logged when its second is
 * over, by a timer). Accept never spins: should the spare itself not reopen,
 * accepting pauses for ACCEPT_PAUSE_MS instead of polling a socket that stays
 * readable.
 */
#include "fnd/http_conn.h"

#include "fnd/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64     /* connections a wakeup: the loop's other work goes on */
#define ACCEPT_PAUSE_MS 100 /* out of descriptors without a spare: retry after this */
#define REFUSED_LOG_MS 1000 /* at most one warning a second */

static void on_listener_readable(uv_poll_t *h, int status, int events);

/* As libuv's own: /dev/null, harmless should it ever reach a child; "/" without it. */
static int open_spare(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : open("/", O_RDONLY | O_CLOEXEC);
}

static void on_timer(uv_timer_t *t);

/* Warns of the connections refused since the last warning, or, within a second of it,
 * arms the timer to do so when the second is over. */
static void warn_refused(struct gateway *gw)
{
    uint64_t since = uv_now(gw->loop) - gw->refused_logged_ms;
    if (gw->refused_logged_ms != 0 && since < REFUSED_LOG_MS) {
        if (!uv_is_active((uv_handle_t *)&gw->timer))
            uv_timer_start(&gw->timer, on_timer, REFUSED_LOG_MS - since, 0);
        return;
    }
    log_warn("accept failed: out of descriptors", "err=\"%s\" refused=%llu",
             strerror(gw->refused_err), (unsigned long long)gw->refused);
    gw->refused = 0;
    gw->refused_logged_ms = uv_now(gw->loop);
}

/* A pause is over (accept again), or a warning is due. */
static void on_timer(uv_timer_t *t)
{
    struct gateway *gw = container_of(t, struct gateway, timer);
    if (gw->listener_closed)
        return;
    uv_poll_start(&gw->listener, UV_READABLE, on_listener_readable);
    if (gw->refused > 0)
        warn_refused(gw);
}

/* accept4 failed with EMFILE or ENFILE: accepts and closes what waits, on the spare. */
static void refuse_waiting(struct gateway *gw, int err)
{
    if (gw->spare_fd >= 0) {
        close(gw->spare_fd);
        gw->spare_fd = -1;
    }
    uint64_t n = 0;
    for (;;) {
        int fd = accept4(gw->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            break;
        close(fd);
        n++;
    }
    gw->spare_fd = open_spare();
    gw->refused += n;
    gw->refused_err = err;
    if (n > 0 || gw->spare_fd < 0)
        warn_refused(gw);
    if (gw->spare_fd < 0) {
        /* Without a spare nothing can be taken off the backlog: stop polling a socket
         * that stays readable, and try again shortly (on_timer warns if due, too). */
        uv_poll_stop(&gw->listener);
        uv_timer_start(&gw->timer, on_timer, ACCEPT_PAUSE_MS, 0);
    }
}

static void on_listener_readable(uv_poll_t *h, int status, int events)
{
    struct gateway *gw = container_of(h, struct gateway, listener);
    (void)events;
    if (status < 0) {
        log_warn("accept failed", "err=\"%s\"", uv_strerror(status));
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !gw->listener_closed; i++) {
        int fd = accept4(gw->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err == EMFILE || err == ENFILE)
                refuse_waiting(gw, err);
            else if (err != EAGAIN && err != EWOULDBLOCK)
                log_warn("accept failed", "err=\"%s\"", strerror(err));
            return;
        }
        int rc = http_conn_open(gw, fd);
        if (rc < 0)
            log_debug("connection refused", "err=\"%s\"", uv_strerror(rc));
    }
}

/* A listening socket on addr, and the port it got; the descriptor, or a negative
 * errno. */
static int listen_on(const struct sockaddr *addr, socklen_t len, int *port)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1; /* as uv_tcp_bind: a restart may bind while old connections linger */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } bound;
    memset(&bound, 0, sizeof(bound));
    socklen_t bound_len = sizeof(bound);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, addr, len) < 0 || listen(fd, 511) < 0 ||
        getsockname(fd, &bound.sa, &bound_len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *port = ntohs(addr->sa_family == AF_INET6 ? bound.in6.sin6_port : bound.in4.sin_port);
    return fd;
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
    socklen_t addr_len = sizeof(addr.in4);
    int rc = uv_ip4_addr(host, port, &addr.in4);
    if (rc < 0) {
        rc = uv_ip6_addr(host, port, &addr.in6);
        addr_len = sizeof(addr.in6);
    }
    if (rc < 0)
        return rc;
    int bound_port = 0;
    int fd = listen_on(&addr.sa, addr_len, &bound_port);
    if (fd < 0)
        return fd;

    struct gateway *gw = xcalloc(1, sizeof(*gw));
    gw->loop = loop;
    gw->limits = *limits;
    gw->handler = handler;
    gw->data = data;
    gw->listen_fd = fd;
    gw->spare_fd = open_spare();
    list_init(&gw->conns);
    uv_timer_init(loop, &gw->timer);
    gw->open_handles = 1;
    rc = uv_poll_init_socket(loop, &gw->listener, fd);
    if (rc == 0) {
        gw->open_handles++;
        rc = uv_poll_start(&gw->listener, UV_READABLE, on_listener_readable);
    } else {
        close(fd); /* no handle refers to it */
        gw->listen_fd = -1;
    }
    if (rc < 0) {
        gateway_close(gw, NULL, NULL); /* freed once the handles' close callbacks ran */
        uv_run(loop, UV_RUN_NOWAIT);
        return rc;
    }
    gw->port = bound_port;
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

static void on_listener_closed(uv_handle_t *h)
{
    struct gateway *gw = h->data;
    if (h == (uv_handle_t *)&gw->listener) {
        close(gw->listen_fd); /* no longer polled: it may close */
        gw->listen_fd = -1;
    }
    gw->open_handles--;
    maybe_closed(gw);
}

/* Stops accepting for good: the listener's handles close, then its descriptors. */
static void close_listener(struct gateway *gw)
{
    if (gw->listener_closed)
        return;
    gw->listener_closed = true;
    if (gw->spare_fd >= 0)
        close(gw->spare_fd);
    gw->spare_fd = -1;
    gw->timer.data = gw;
    uv_close((uv_handle_t *)&gw->timer, on_listener_closed);
    if (gw->listen_fd >= 0) { /* the poll handle was made */
        gw->listener.data = gw;
        uv_close((uv_handle_t *)&gw->listener, on_listener_closed);
    }
}

void gateway_on_conn_freed(struct gateway *gw)
{
    maybe_closed(gw);
}

void gateway_stop_accepting(struct gateway *gw)
{
    gw->draining = true;
    close_listener(gw);
}

void gateway_close(struct gateway *gw, void (*on_closed)(void *), void *data)
{
    gw->closing = true;
    gw->on_closed = on_closed;
    gw->closed_data = data;
    close_listener(gw);
    http_conn_close_all(gw);
    maybe_closed(gw); /* the listener may have closed already, with no connections left */
}
