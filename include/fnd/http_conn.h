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
    uv_tcp_t server;
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

/* Accepts one connection from gw->server and starts reading it. 0 or a libuv error. */
int http_conn_accept(struct gateway *gw);
/* Serves an already connected stream socket fd as a connection of gw (the HTTP fuzz
 * driver feeds it one end of a socketpair). Takes fd in every case: 0, or a libuv
 * error with fd closed. */
int http_conn_open(struct gateway *gw, uv_os_sock_t fd);
/* Closes every connection of gw (for gateway_close). */
void http_conn_close_all(struct gateway *gw);
/* Called by http_conn.c when a connection is freed, so the gateway can finish
 * closing. */
void gateway_on_conn_freed(struct gateway *gw);

#endif
