/*
 * The contract between the listener (gateway.c) and the connections it accepts
 * (http_conn.c). Not used outside the HTTP layer; the rest of the daemon sees only
 * include/fnd/http.h.
 */
#ifndef FND_HTTP_CONN_H
#define FND_HTTP_CONN_H

#include "fnd/http.h"
#include "fnd/list.h"

struct gateway {
    uv_loop_t *loop;
    uv_poll_t listener;     /* on listen_fd: gateway.c accepts itself (see there) */
    uv_timer_t timer;       /* resumes accepting, or logs refusals, when due */
    int listen_fd;
    int spare_fd;           /* kept open to accept-and-close when out of descriptors */
    uint64_t refused;       /* connections refused for lack of descriptors, not yet logged */
    int refused_err;        /* EMFILE or ENFILE, the last seen */
    uint64_t refused_logged_ms;
    struct http_limits limits;
    http_handler_fn *handler;
    void *data;
    struct list_node conns; /* every open connection */
    size_t nconns;
    int port;
    bool closing;
    bool draining;          /* no longer accepting; answers say Connection: close */
    bool listener_closed;
    int open_handles;
    void (*on_closed)(void *);
    void *closed_data;
};

/* Serves a connected stream socket fd as a connection of gw: one the gateway accepted,
 * or one end of a socketpair (the HTTP fuzz driver). Takes fd in every case: 0, or a
 * libuv error with fd closed. */
int http_conn_open(struct gateway *gw, uv_os_sock_t fd);
/* Closes every connection of gw (for gateway_close). */
void http_conn_close_all(struct gateway *gw);
/* Called by http_conn.c when a connection is freed, so the gateway can finish
 * closing. */
void gateway_on_conn_freed(struct gateway *gw);

#endif
