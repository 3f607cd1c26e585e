/*
 * The HTTP/1.1 gateway: a libuv TCP listener whose connections are parsed by llhttp.
 *
 * Contract with the layer above (api.c): the gateway calls one handler per complete
 * request. The handler answers with exactly one http_respond*() call, either before
 * it returns or later (an invocation that waits for a worker). While a request is
 * unanswered its connection reads nothing more, so pipelined requests are answered in
 * order, and the request (and its connection) stay valid until the answer is given,
 * even if the peer has gone. All limits are enforced here, before the handler runs:
 * URL (414), header bytes/count (431), body (413, decided from Content-Length before
 * the body is read, or as chunked data arrives), idle and slow-client timeouts
 * (connection closed), malformed input (400 and close).
 */
#ifndef FND_HTTP_H
#define FND_HTTP_H

#include "fnd/buf.h"
#include "fnd/common.h"
#include "fnd/error.h"

#include <uv.h>

struct http_conn;
struct gateway;

struct http_limits {
    size_t max_url;             /* request target bytes; 414 beyond */
    size_t max_header_bytes;    /* all header names and values; 431 beyond */
    size_t max_headers;         /* header count; 431 beyond */
    size_t max_body;            /* body bytes; 413 beyond */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request in progress */
    uint64_t header_timeout_ms; /* from first byte of a request to end of its headers */
    uint64_t body_timeout_ms;   /* longest gap between two reads of a body */
    size_t max_connections;     /* beyond it new connections are closed at once */
};

struct http_header {
    struct slice name;
    struct slice value;
};

/* One parsed request. Slices point into memory owned by the connection and stay valid
 * until the request is answered. */
struct http_request {
    struct http_conn *conn;
    int method;              /* llhttp_method_t */
    const char *method_name; /* "GET", "POST", ... */
    struct slice target;     /* raw request target */
    struct slice path;       /* target up to '?', not percent-decoded */
    struct slice query;      /* after '?', without it; empty if none */
    struct http_header *headers;
    size_t nheaders;
    struct buf body;         /* the whole body; the handler may take it with buf_move */
    bool keep_alive;
    uint64_t started_us;     /* clock_mono_us() when the first byte arrived */
    /* For the request log line and the HTTP metrics, filled by the handler: */
    const char *route;       /* the matched route's pattern (static); NULL: none */
    char request_id[37];     /* the invocation's id, when the request made one */
    char trace_id[33];       /* its W3C trace id (32 hex digits), when it has one */
    /* Answered as headers of the same names when set (trace.h fills them). */
    char traceparent[56];
    char tracestate[513];
    void *data;              /* free for the handler's use */
};

typedef void http_handler_fn(struct http_request *req, void *data);

/* Binds and listens on host:port (IPv4 or IPv6 literal, or "localhost"). Port 0 picks a
 * free port (see gateway_port). 0 or a negative errno. */
int gateway_open(struct gateway **out, uv_loop_t *loop, const char *host, int port,
                 const struct http_limits *limits, http_handler_fn *handler, void *data);
/* The port actually bound. */
int gateway_port(const struct gateway *gw);
/* Number of open connections. */
size_t gateway_connections(const struct gateway *gw);
/* Stops accepting new connections; open ones are served, each answer closing its
 * connection (a graceful shutdown's first step). */
void gateway_stop_accepting(struct gateway *gw);
/* Stops accepting and closes every connection; unanswered requests are discarded when
 * their handler answers. on_closed runs once all handles are closed. */
void gateway_close(struct gateway *gw, void (*on_closed)(void *data), void *data);

/* The peer's address. 0 or a libuv error. */
int http_request_peer(const struct http_request *req, struct sockaddr_storage *out);
/* Case-insensitive header lookup; SLICE_NULL when absent. */
struct slice http_request_header(const struct http_request *req, const char *name);

/* Answers the request. headers may be NULL; Content-Length, Date, Server and
 * Connection are added by the gateway. The body is copied. */
void http_respond(struct http_request *req, int status, const struct http_header *headers,
                  size_t nheaders, const void *body, size_t len);
/* Like http_respond, but takes the body's bytes (body is left empty): no copy. */
void http_respond_buf(struct http_request *req, int status, const struct http_header *headers,
                      size_t nheaders, struct buf *body);
/* Answers with the JSON error body {"error": {"code": ..., "message": ...}} and the
 * status of kind (error.h). */
void http_respond_error(struct http_request *req, enum fnd_error kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like http_respond_error, with extra headers (such as Retry-After) before the body. */
void http_respond_error_headers(struct http_request *req, enum fnd_error kind,
                                const struct http_header *headers, size_t nheaders,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Answers 405 with an Allow header listing the allowed methods ("GET, PUT"). */
void http_respond_method_not_allowed(struct http_request *req, const char *allow);

/* Streamed answers (long polls, log follow): the head now, the body in pieces, in
 * chunked encoding (HTTP/1.0 peers get raw bytes and a close). Takes the place of the
 * one http_respond* call: the connection answers nothing else until http_stream_end.
 * on_gone is called once if the peer leaves or the gateway closes first, possibly
 * inside http_stream_write or _begin; after it the request must not be used. */
#define HTTP_STREAM_MAX_QUEUED (1024 * 1024) /* unsent bytes beyond which writes are refused */
/* 0, or -EPIPE when the peer is already gone (on_gone has been called). */
int http_stream_begin(struct http_request *req, int status, const struct http_header *headers,
                      size_t nheaders, void (*on_gone)(struct http_request *req));
/* Sends one piece (copied). 0; -ENOBUFS when the peer reads too slowly (the piece is
 * dropped); -EPIPE when the peer is gone (on_gone has been called). */
int http_stream_write(struct http_request *req, const void *data, size_t len);
/* Ends the body; the connection goes on to its next request. */
void http_stream_end(struct http_request *req);

/* The standard reason phrase for a status ("Not Found"). */
const char *http_status_reason(int status);

#endif
