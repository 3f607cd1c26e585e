/*
 * One HTTP/1.1 connection: llhttp parsing, limits, timeouts, and responses in request
 * order (include/fnd/http.h has the contract with the API layer).
 *
 * The connection parses from an input buffer. When a request is complete the parser
 * pauses and the handler runs; when the handler answers, the response is written, and
 * parsing resumes over bytes that were already buffered (pipelined requests). So at
 * most one request per connection is in flight and responses leave in order. Reading
 * goes on while the handler works -- stopping and restarting it would cost two
 * epoll_ctl calls per request -- but only until one read's worth of bytes is buffered
 * ahead, so a client cannot make the daemon buffer more than that. A client's EOF
 * while its request is answered (a half-close) still gets the answers to everything
 * it sent.
 *
 * Header bytes arrive as slices that may span reads; they are copied into one
 * per-request buffer as offsets, and turned into slices when the headers are
 * complete. Every limit is checked in the callback where the bytes arrive, before
 * anything grows. A limit or parse error answers with the JSON error and closes.
 *
 * One timer per connection: idle (no request started), header (request started,
 * headers incomplete), body (no body progress); none runs while the handler works.
 *
 * Lifetime: the struct is freed when both handles are closed and no handler holds its
 * request; a handler answering after the peer left only releases memory.
 */
#include "fnd/http_conn.h"

#include "fnd/log.h"
#include "fnd/metrics.h"
#include "fnd/stream.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define LINGER_MS 2000 /* after refusing a request, how long to discard the rest of it */

enum phase { PHASE_IDLE, PHASE_HEAD, PHASE_BODY, PHASE_HANDLER, PHASE_WRITING, PHASE_STREAMING };

/* A streamed answer's chunk, freed by its write callback. */
struct stream_chunk {
    uv_write_t req;
    size_t len;
    char data[];
};

struct header_offsets {
    size_t name_off, name_len, value_off, value_len;
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct list_node link;
    struct gateway *gw;
    llhttp_t parser;
    struct buf in;        /* read but not yet parsed: in.data[parsed..in.len) */
    size_t parsed;
    struct buf head;      /* the URL and header bytes of the current request */
    size_t url_len;
    struct header_offsets *hoffs; /* limits.max_headers entries */
    size_t nheaders;
    bool in_value;        /* the last header callback was a value */
    size_t trailer_bytes; /* trailer fields of a chunked body: counted, dropped */
    struct http_request req;
    enum phase phase;
    int error;            /* an fnd_error + 1 to answer with, set by callbacks */
    bool closed;          /* handles are closing */
    bool close_after;     /* close once the current response is written */
    bool refused;         /* the gateway refused the request: the client may still send */
    bool lingering;       /* answered and shut down: discarding input until close */
    bool reading;         /* uv_read_start is in effect */
    bool sent_at_once;    /* the response went out whole; its completion is due (timer) */
    bool peer_eof;        /* the client sent EOF while a request was being answered */
    int open_handles;
    struct sockaddr_storage peer; /* read once at accept: policies ask on every request */
    int peer_status;              /* 0, or the negative errno of reading it */
    uv_write_t write_req;
    struct buf whead;
    struct buf wbody;
    void (*on_stream_gone)(struct http_request *req); /* PHASE_STREAMING */
    bool stream_chunked;  /* HTTP/1.1: chunked framing; 1.0: raw bytes, then close */
};

static llhttp_settings_t parser_settings;
static void parse(struct http_conn *c);
static void write_response(struct http_conn *c, int status, const struct http_header *headers,
                           size_t nheaders, struct buf *body);

/* --- lifetime ---------------------------------------------------------------------- */

static void maybe_free(struct http_conn *c)
{
    if (c->open_handles > 0 || c->phase == PHASE_HANDLER || c->phase == PHASE_WRITING ||
        c->phase == PHASE_STREAMING)
        return;
    struct gateway *gw = c->gw;
    list_remove(&c->link);
    gw->nconns--;
    buf_release(&c->in);
    buf_release(&c->head);
    buf_release(&c->req.body);
    buf_release(&c->whead);
    buf_release(&c->wbody);
    free(c->req.headers);
    free(c->hoffs);
    free(c);
    gateway_on_conn_freed(gw);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void read_on(struct http_conn *c)
{
    if (!c->reading && !c->closed && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void read_off(struct http_conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void conn_close(struct http_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    if (c->sent_at_once) { /* closing the timer cancels the completion: finish here */
        c->sent_at_once = false;
        c->phase = PHASE_IDLE;
    }
    if (c->phase == PHASE_STREAMING) {
        /* The streaming handler lets go of the request now. */
        c->phase = PHASE_IDLE;
        if (c->on_stream_gone)
            c->on_stream_gone(&c->req);
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void http_conn_close_all(struct gateway *gw)
{
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &gw->conns)
    {
        conn_close(container_of(n, struct http_conn, link));
    }
}

/* --- timers ------------------------------------------------------------------------ */

static void on_timeout(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    log_debug("connection timed out", "phase=%d", (int)c->phase);
    conn_close(c);
}

static void arm_timer(struct http_conn *c)
{
    const struct http_limits *l = &c->gw->limits;
    uint64_t ms = c->phase == PHASE_IDLE   ? l->idle_timeout_ms
                  : c->phase == PHASE_HEAD ? l->header_timeout_ms
                  : c->phase == PHASE_BODY ? l->body_timeout_ms
                                           : 0;
    if (ms == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    /* The header deadline runs from the request's first byte: do not push it back. */
    if (c->phase == PHASE_HEAD && uv_is_active((uv_handle_t *)&c->timer))
        return;
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* --- parser callbacks -------------------------------------------------------------- */

static struct http_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int fail(struct http_conn *c, enum fnd_error kind)
{
    c->error = (int)kind + 1;
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = conn_of(p);
    buf_reset(&c->head);
    buf_reset(&c->req.body);
    c->url_len = 0;
    c->nheaders = 0;
    c->in_value = false;
    c->trailer_bytes = 0;
    c->req.started_us = clock_mono_us();
    c->req.route = NULL;
    c->req.method_name = NULL;
    c->req.path = SLICE_NULL;
    c->req.request_id[0] = c->req.trace_id[0] = '\0';
    c->req.traceparent[0] = c->req.tracestate[0] = '\0';
    c->phase = PHASE_HEAD;
    uv_timer_stop(&c->timer);
    arm_timer(c);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);
    if (c->url_len + len > c->gw->limits.max_url)
        return fail(c, FND_E_URI_TOO_LONG);
    buf_append(&c->head, at, len);
    c->url_len += len;
    return 0;
}

/* Trailer fields after a chunked body arrive once the headers were handed out as
 * slices of c->head: appending them could move that buffer under the slices. They are
 * counted against the header limit and dropped. */
static int on_trailer(struct http_conn *c, size_t len)
{
    c->trailer_bytes += len;
    if (c->trailer_bytes > c->gw->limits.max_header_bytes)
        return fail(c, FND_E_HEADERS_TOO_LARGE);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);
    const struct http_limits *l = &c->gw->limits;
    if (c->phase == PHASE_BODY)
        return on_trailer(c, len);
    if (c->head.len - c->url_len + len > l->max_header_bytes)
        return fail(c, FND_E_HEADERS_TOO_LARGE);
    if (c->nheaders == 0 || c->in_value) {
        if (c->nheaders == l->max_headers)
            return fail(c, FND_E_HEADERS_TOO_LARGE);
        c->hoffs[c->nheaders++] = (struct header_offsets){c->head.len, 0, 0, 0};
        c->in_value = false;
    }
    c->hoffs[c->nheaders - 1].name_len += len;
    buf_append(&c->head, at, len);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);
    if (c->phase == PHASE_BODY)
        return on_trailer(c, len);
    if (c->head.len - c->url_len + len > c->gw->limits.max_header_bytes)
        return fail(c, FND_E_HEADERS_TOO_LARGE);
    struct header_offsets *h = &c->hoffs[c->nheaders - 1];
    if (!c->in_value) {
        h->value_off = c->head.len;
        c->in_value = true;
    }
    h->value_len += len;
    buf_append(&c->head, at, len);
    return 0;
}

static void on_continue_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = conn_of(p);
    struct http_request *r = &c->req;
    /* The head buffer is complete: offsets become slices now. */
    for (size_t i = 0; i < c->nheaders; i++) {
        struct header_offsets *h = &c->hoffs[i];
        r->headers[i].name = (struct slice){c->head.data + h->name_off, h->name_len};
        r->headers[i].value = (struct slice){h->value_len ? c->head.data + h->value_off : "",
                                             h->value_len};
    }
    r->nheaders = c->nheaders;
    r->target = (struct slice){c->head.data ? c->head.data : "", c->url_len};
    const char *q = memchr(r->target.ptr, '?', r->target.len);
    r->path = (struct slice){r->target.ptr, q ? (size_t)(q - r->target.ptr) : r->target.len};
    r->query = q ? (struct slice){q + 1, r->target.len - r->path.len - 1} : SLICE_LIT("");
    r->method = llhttp_get_method(p);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);

    bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > c->gw->limits.max_body)
        return fail(c, FND_E_PAYLOAD_TOO_LARGE);
    struct slice expect = http_request_header(r, "Expect");
    if (expect.len && slice_eq_nocase(expect, "100-continue") && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_write_t *w = xmalloc(sizeof(*w));
        uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
        if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) < 0)
            free(w);
    }
    c->phase = PHASE_BODY;
    uv_timer_stop(&c->timer);
    arm_timer(c);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);
    if (buf_append(&c->req.body, at, len) < 0)
        return fail(c, FND_E_PAYLOAD_TOO_LARGE);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = conn_of(p);
    c->req.keep_alive = llhttp_should_keep_alive(p) != 0;
    c->phase = PHASE_HANDLER;
    return HPE_PAUSED;
}

/* --- reading and parsing ----------------------------------------------------------- */

/* The JSON error body every error answer carries: {"error": {"code", "message"}}. */
static void error_body(struct buf *out, enum fnd_error kind, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", fnd_error_code(kind));
    cJSON_AddStringToObject(e, "message", msg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    buf_append_str(out, text);
    cJSON_free(text);
}

static const struct http_header json_type = {SLICE_LIT("Content-Type"),
                                             SLICE_LIT("application/json")};

/* An error found by the gateway itself: answer it and close the connection. */
static void send_error(struct http_conn *c, enum fnd_error kind, const char *msg)
{
    c->close_after = true;
    c->refused = true;
    struct buf body;
    buf_init(&body, 0);
    error_body(&body, kind, msg);
    c->phase = PHASE_WRITING;
    /* The exception name lets AWS clients read a gateway error (a 413) as Lambda's. */
    struct http_header headers[2] = {json_type, {SLICE_LIT("x-amzn-ErrorType"),
                                                 slice_from_cstr(fnd_error_lambda_type(kind))}};
    write_response(c, fnd_error_status(kind), headers, 2, &body);
}

static void parse(struct http_conn *c)
{
    while (!c->closed && c->phase != PHASE_HANDLER && c->phase != PHASE_WRITING) {
        size_t avail = c->in.len - c->parsed;
        if (avail == 0)
            break;
        const char *start = c->in.data + c->parsed;
        llhttp_errno_t err = llhttp_execute(&c->parser, start, avail);
        if (err == HPE_OK) {
            c->parsed = c->in.len;
            break;
        }
        if (err == HPE_PAUSED) {
            c->parsed += (size_t)(llhttp_get_error_pos(&c->parser) - start);
            uv_timer_stop(&c->timer);
            c->req.conn = c;
            c->gw->handler(&c->req, c->gw->data);
            return;
        }
        read_off(c);
        uv_timer_stop(&c->timer);
        if (c->error) {
            enum fnd_error kind = (enum fnd_error)(c->error - 1);
            send_error(c, kind,
                       kind == FND_E_URI_TOO_LONG          ? "the request target is too long"
                       : kind == FND_E_HEADERS_TOO_LARGE   ? "the request headers are too large"
                       : kind == FND_E_PAYLOAD_TOO_LARGE   ? "the request body is too large"
                                                           : "bad request");
        } else {
            char msg[160];
            snprintf(msg, sizeof(msg), "malformed request: %s", llhttp_get_error_reason(&c->parser));
            send_error(c, FND_E_BAD_REQUEST, msg);
        }
        return;
    }
    /* Everything buffered was parsed: drop it and wait for more. */
    if (c->parsed == c->in.len) {
        c->in.len = 0;
        c->parsed = 0;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = h->data;
    (void)suggested;
    if (c->parsed > 0) { /* compact what is left of earlier reads */
        memmove(c->in.data, c->in.data + c->parsed, c->in.len - c->parsed);
        c->in.len -= c->parsed;
        c->parsed = 0;
    }
    buf_reserve(&c->in, READ_CHUNK);
    b->base = c->in.data + c->in.len;
    b->len = c->in.cap - c->in.len - 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = s->data;
    (void)b;
    bool answering = c->phase == PHASE_HANDLER || c->phase == PHASE_WRITING;
    if (nread == UV_EOF && answering && !c->lingering) {
        read_off(c); /* half-closed: answer what was sent, then close (on_written) */
        c->peer_eof = true;
        return;
    }
    if (nread < 0) {
        conn_close(c); /* EOF or reset: nothing is waiting for us */
        return;
    }
    if (c->lingering)
        return; /* discarded: c->in stays empty */
    c->in.len += (size_t)nread;
    if (answering || c->phase == PHASE_STREAMING) {
        /* Pipelined bytes wait in the buffer, and past one chunk of them reading stops
         * until the answer is written. While streaming, reading only watches for the
         * peer leaving. */
        if (c->in.len - c->parsed > READ_CHUNK)
            read_off(c);
        return;
    }
    if (c->phase == PHASE_BODY)
        arm_timer(c); /* progress: the body timer restarts */
    parse(c);
}

/* --- responses --------------------------------------------------------------------- */

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

static const char *http_date(void)
{
    static char cached[40];
    static time_t cached_at;
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    return cached;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* After a refusal (431, 413, 400) the client may still be sending the request. Closing
 * now would make the kernel answer those bytes with a reset, which can destroy the
 * answer before the client reads it; so shut down our side, discard what still
 * arrives, and close at the client's EOF or after LINGER_MS (nginx's lingering close). */
static void linger(struct http_conn *c)
{
    uv_shutdown_t *req = xmalloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(req);
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->in.len = 0;
    c->parsed = 0;
    read_on(c);
    uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
}

/* The response is out (or failed): on to the next request, or close. */
static void written(struct http_conn *c, int status)
{
    buf_reset(&c->whead);
    buf_release(&c->wbody);
    c->phase = PHASE_IDLE;
    if (c->closed) {
        maybe_free(c);
        return;
    }
    if (status == 0 && c->refused) {
        linger(c);
        return;
    }
    if (status < 0 || c->close_after) {
        conn_close(c);
        return;
    }
    /* Next request: first from what is already buffered, then from the socket. */
    llhttp_resume(&c->parser);
    c->req.data = NULL;
    c->req.method_name = NULL; /* an error before the next request's head logs no stale path */
    c->req.path = SLICE_NULL;
    parse(c);
    /* Reading stopped only at the bound of buffered bytes (or at EOF); a request that
     * is only partly buffered (cut by a read) needs the rest from the socket. */
    if (c->closed)
        return;
    if (c->phase != PHASE_HANDLER && c->phase != PHASE_WRITING) {
        if (c->peer_eof) {
            conn_close(c); /* everything the client sent is answered */
            return;
        }
        arm_timer(c);
    }
    if (!c->peer_eof)
        read_on(c);
}

static void on_written(uv_write_t *w, int status)
{
    written(w->data, status);
}

static void on_sent_at_once(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    c->sent_at_once = false;
    written(c, 0);
}

/* Writes the response, at once when the socket takes it all (the usual case): a write
 * request that completes costs libuv an epoll_ctl on every response. The completion
 * still runs from the loop, on the next iteration (a zero timer on the connection's
 * timer, which is idle while a response is written), never inside the handler. */
static int send_response(struct http_conn *c, uv_buf_t *bufs, unsigned nbufs)
{
    int rc = stream_write_now((uv_stream_t *)&c->tcp, &bufs, &nbufs);
    if (rc < 0)
        return rc;
    if (nbufs == 0) {
        c->sent_at_once = true;
        uv_timer_start(&c->timer, on_sent_at_once, 0, 0);
        return 0;
    }
    c->write_req.data = c;
    return uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written);
}

/* One line in the daemon's log and one count per answered request. */
static void account_request(struct http_conn *c, int status)
{
    const struct http_request *r = &c->req;
    uint64_t us = clock_mono_us() - r->started_us;
    double secs = (double)us / 1e6;
    const char *route = r->route ? r->route : "none";
    char code[4]; /* the status: three digits */
    struct text t = text_on(code, sizeof(code));
    text_put_uint(&t, (uint64_t)status, 3);
    metrics_inc(METRIC_HTTP_REQUESTS, route, code);
    metrics_observe(METRIC_HTTP_DURATION, secs, route, NULL);
    if (!log_enabled(LOG_INFO))
        return;
    /* Put together piece by piece, as every request writes it. */
    char kv[1024], path[512];
    t = text_on(kv, sizeof(kv));
    text_put_lit(&t, "method=");
    text_put_str(&t, r->method_name ? r->method_name : "-");
    text_put_lit(&t, " path=");
    text_put_str(&t, log_quote(path, sizeof(path), r->path.ptr ? r->path.ptr : "-",
                               r->path.ptr ? r->path.len : 1));
    text_put_lit(&t, " status=");
    text_put_str(&t, code);
    text_put_lit(&t, " duration_ms=");
    text_put_uint(&t, us / 1000, 1);
    text_put_lit(&t, ".");
    text_put_uint(&t, us % 1000, 3);
    text_put_lit(&t, " request_id=");
    text_put_str(&t, r->request_id[0] ? r->request_id : "-");
    text_put_lit(&t, " trace_id=");
    text_put_str(&t, r->trace_id[0] ? r->trace_id : "-");
    log_write_kv(LOG_INFO, "request", kv);
}

/* One header line, appended piece by piece: the head is built for every response, and
 * a printf per line was a visible part of the daemon's time per invocation. The head
 * buffer has no limit (an allocation failure ends the daemon), so appends cannot fail. */
static void append_header(struct buf *h, const char *name, size_t nlen, const char *value,
                          size_t vlen)
{
    buf_append(h, name, nlen);
    buf_append(h, ": ", 2);
    buf_append(h, value, vlen);
    buf_append(h, "\r\n", 2);
}

/* Accounts for the answer and writes its status line and the handler's headers into
 * c->whead; the caller adds the framing headers and the blank line. */
static struct buf *start_head(struct http_conn *c, int status, const struct http_header *headers,
                              size_t nheaders)
{
    account_request(c, status);
    struct buf *h = &c->whead;
    buf_reset(h);
    buf_append_str(h, "HTTP/1.1 ");
    buf_append_uint(h, (uint64_t)status, 3);
    buf_append(h, " ", 1);
    buf_append_str(h, http_status_reason(status));
    buf_append(h, "\r\n", 2);
    for (size_t i = 0; i < nheaders; i++)
        append_header(h, headers[i].name.ptr, headers[i].name.len, headers[i].value.ptr,
                      headers[i].value.len);
    if (c->req.traceparent[0])
        append_header(h, "traceparent", 11, c->req.traceparent, strlen(c->req.traceparent));
    if (c->req.tracestate[0])
        append_header(h, "tracestate", 10, c->req.tracestate, strlen(c->req.tracestate));
    return h;
}

static void write_response(struct http_conn *c, int status, const struct http_header *headers,
                           size_t nheaders, struct buf *body)
{
    struct buf *h = start_head(c, status, headers, nheaders);
    bool head_only = c->req.method == HTTP_HEAD;
    buf_append_str(h, "Content-Length: ");
    buf_append_uint(h, body->len, 1);
    buf_append_str(h, "\r\nDate: ");
    buf_append_str(h, http_date());
    buf_append_str(h, "\r\nServer: fnd\r\n");
    if (c->gw->draining)
        c->close_after = true; /* shutting down: no further requests on it */
    if (c->close_after || c->gw->closing)
        buf_append_str(h, "Connection: close\r\n");
    else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
        buf_append_str(h, "Connection: keep-alive\r\n");
    buf_append_str(h, "\r\n");
    buf_move(&c->wbody, body);
    uv_buf_t bufs[2] = {uv_buf_init(h->data, (unsigned)h->len),
                        uv_buf_init(c->wbody.data, (unsigned)c->wbody.len)};
    int rc = send_response(c, bufs, (head_only || c->wbody.len == 0) ? 1 : 2);
    if (rc < 0) {
        c->phase = PHASE_IDLE;
        conn_close(c);
    }
}

void http_respond_buf(struct http_request *req, int status, const struct http_header *headers,
                      size_t nheaders, struct buf *body)
{
    struct http_conn *c = req->conn;
    if (c->closed) {
        /* The peer left while the handler worked: nothing to write. */
        buf_release(body);
        c->phase = PHASE_IDLE;
        maybe_free(c);
        return;
    }
    if (!req->keep_alive)
        c->close_after = true;
    c->phase = PHASE_WRITING;
    write_response(c, status, headers, nheaders, body);
}

/* --- streamed responses ------------------------------------------------------------ */

static void on_chunk_written(uv_write_t *w, int status)
{
    struct stream_chunk *ch = container_of(w, struct stream_chunk, req);
    struct http_conn *c = w->data;
    free(ch);
    if (status < 0 && status != UV_ECANCELED)
        conn_close(c);
}

/* Queues bytes as they are (the head, or pre-framed chunks). 0 or -EPIPE. */
static int stream_send(struct http_conn *c, const char *prefix, size_t plen, const void *data,
                       size_t len, const char *suffix, size_t slen)
{
    struct stream_chunk *ch = xmalloc(sizeof(*ch) + plen + len + slen);
    memcpy(ch->data, prefix, plen);
    if (len)
        memcpy(ch->data + plen, data, len);
    memcpy(ch->data + plen + len, suffix, slen);
    ch->len = plen + len + slen;
    ch->req.data = c;
    uv_buf_t b = uv_buf_init(ch->data, (unsigned)ch->len);
    if (uv_write(&ch->req, (uv_stream_t *)&c->tcp, &b, 1, on_chunk_written) < 0) {
        free(ch);
        conn_close(c);
        return -EPIPE;
    }
    return 0;
}

int http_stream_begin(struct http_request *req, int status, const struct http_header *headers,
                      size_t nheaders, void (*on_gone)(struct http_request *req))
{
    struct http_conn *c = req->conn;
    if (c->closed) {
        c->phase = PHASE_IDLE;
        on_gone(req);
        maybe_free(c);
        return -EPIPE;
    }
    c->stream_chunked = c->parser.http_major == 1 && c->parser.http_minor >= 1;
    if (!req->keep_alive || !c->stream_chunked || c->gw->draining)
        c->close_after = true;
    struct buf *h = start_head(c, status, headers, nheaders);
    buf_printf(h, "%sDate: %s\r\nServer: fnd\r\n%s\r\n",
               c->stream_chunked ? "Transfer-Encoding: chunked\r\n" : "", http_date(),
               c->close_after || c->gw->closing ? "Connection: close\r\n" : "");
    c->phase = PHASE_STREAMING;
    c->on_stream_gone = on_gone;
    if (stream_send(c, h->data, h->len, NULL, 0, "", 0) < 0)
        return -EPIPE;
    /* Read on, only to notice the peer leaving (see on_read). */
    read_on(c);
    return 0;
}

int http_stream_write(struct http_request *req, const void *data, size_t len)
{
    struct http_conn *c = req->conn;
    if (c->closed || c->phase != PHASE_STREAMING)
        return -EPIPE;
    if (len == 0)
        return 0; /* an empty chunk would end the body */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > HTTP_STREAM_MAX_QUEUED)
        return -ENOBUFS;
    char size[24];
    int n = c->stream_chunked ? snprintf(size, sizeof(size), "%zx\r\n", len) : 0;
    return stream_send(c, size, (size_t)n, data, len, "\r\n", c->stream_chunked ? 2 : 0);
}

void http_stream_end(struct http_request *req)
{
    struct http_conn *c = req->conn;
    if (c->closed || c->phase != PHASE_STREAMING)
        return;
    read_off(c);
    c->on_stream_gone = NULL;
    c->phase = PHASE_WRITING;
    /* The last chunk goes through the ordinary completion, which resumes parsing. */
    buf_reset(&c->whead);
    if (c->stream_chunked)
        buf_append_str(&c->whead, "0\r\n\r\n");
    buf_reset(&c->wbody);
    uv_buf_t b = uv_buf_init(c->whead.data ? c->whead.data : "", (unsigned)c->whead.len);
    if (send_response(c, &b, 1) < 0) {
        c->phase = PHASE_IDLE;
        conn_close(c);
    }
}

void http_respond(struct http_request *req, int status, const struct http_header *headers,
                  size_t nheaders, const void *body, size_t len)
{
    struct buf b;
    buf_init(&b, 0);
    if (len)
        buf_append(&b, body, len);
    http_respond_buf(req, status, headers, nheaders, &b);
}

static void respond_error_v(struct http_request *req, enum fnd_error kind,
                            const struct http_header *headers, size_t nheaders, const char *fmt,
                            va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    struct http_header all[8];
    size_t n = 0;
    all[n++] = json_type;
    all[n++] = (struct http_header){SLICE_LIT("x-amzn-ErrorType"),
                                    slice_from_cstr(fnd_error_lambda_type(kind))};
    for (size_t i = 0; i < nheaders && n < ARRAY_SIZE(all); i++)
        all[n++] = headers[i];
    struct buf body;
    buf_init(&body, 0);
    error_body(&body, kind, msg);
    http_respond_buf(req, fnd_error_status(kind), all, n, &body);
}

void http_respond_error(struct http_request *req, enum fnd_error kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, kind, NULL, 0, fmt, ap);
    va_end(ap);
}

void http_respond_error_headers(struct http_request *req, enum fnd_error kind,
                                const struct http_header *headers, size_t nheaders,
                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, kind, headers, nheaders, fmt, ap);
    va_end(ap);
}

void http_respond_method_not_allowed(struct http_request *req, const char *allow)
{
    struct http_header headers[2] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("Allow"), slice_from_cstr(allow)},
    };
    char text[256];
    snprintf(text, sizeof(text),
             "{\"error\":{\"code\":\"%s\",\"message\":\"allowed methods: %s\"}}",
             fnd_error_code(FND_E_METHOD_NOT_ALLOWED), allow);
    http_respond(req, 405, headers, 2, text, strlen(text));
}

int http_request_peer(const struct http_request *req, struct sockaddr_storage *out)
{
    *out = req->conn->peer;
    return req->conn->peer_status;
}

struct slice http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (slice_eq_nocase(req->headers[i].name, name))
            return req->headers[i].value;
    return SLICE_NULL;
}

/* --- accepting --------------------------------------------------------------------- */

static void init_settings(void)
{
    if (parser_settings.on_message_begin)
        return;
    llhttp_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
}

int http_conn_open(struct gateway *gw, uv_os_sock_t fd)
{
    init_settings();
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->gw = gw;
    uv_tcp_init(gw->loop, &c->tcp);
    uv_timer_init(gw->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    list_push_back(&gw->conns, &c->link);
    gw->nconns++;
    buf_init(&c->in, 0);
    buf_init(&c->head, 0);
    buf_init(&c->req.body, gw->limits.max_body);
    buf_init(&c->whead, 0);
    buf_init(&c->wbody, 0);
    c->hoffs = xcalloc(gw->limits.max_headers, sizeof(*c->hoffs));
    c->req.headers = xcalloc(gw->limits.max_headers, sizeof(*c->req.headers));
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc < 0)
        close(fd); /* the connection takes fd in every case */
    if (rc < 0 || gw->nconns > gw->limits.max_connections || gw->closing) {
        conn_close(c);
        return rc < 0 ? rc : UV_EMFILE;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int len = (int)sizeof(c->peer);
    c->peer_status = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    c->phase = PHASE_IDLE;
    read_on(c);
    arm_timer(c);
    return 0;
}
