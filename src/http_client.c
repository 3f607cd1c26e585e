/*
 * The commands' HTTP client (include/fnd/http_client.h).
 *
 * Each fetch runs a private libuv loop until the answer is complete: connect, write
 * the head and then the body in pieces (so progress reflects what the socket took),
 * and read at the same time, since the daemon may answer early (401, 413) without
 * reading the whole body. llhttp parses the answer; a body without a length ends at
 * EOF (llhttp_finish). Header names and values may arrive in pieces across reads and
 * are accumulated before they are stored.
 */
#include "fnd/http_client.h"

#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define CLIENT_PIECE (256 * 1024)

struct fetch {
    uv_loop_t loop;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    llhttp_t parser;
    const struct http_client_request *rq;
    struct http_client_response *resp;
    struct buf head;      /* the request head */
    size_t sent;          /* body bytes handed to the socket */
    struct buf name, value;
    bool in_value;
    bool done;
    bool head_sent;
    int error;
    char *err;
    size_t errsize;
};

static void set_error(struct fetch *f, int rc, const char *fmt, const char *detail)
{
    if (f->error || f->done)
        return;
    f->error = rc;
    snprintf(f->err, f->errsize, fmt, detail);
    uv_stop(&f->loop);
}

/* --- parsing ----------------------------------------------------------------------- */

static struct fetch *fetch_of(llhttp_t *p)
{
    return p->data;
}

static void store_header(struct fetch *f)
{
    if (f->name.len && f->resp->nheaders < HTTP_CLIENT_MAX_HEADERS) {
        for (size_t i = 0; i < f->name.len; i++)
            f->name.data[i] = (char)tolower((unsigned char)f->name.data[i]);
        f->resp->header_names[f->resp->nheaders] = xstrndup(f->name.data, f->name.len);
        f->resp->header_values[f->resp->nheaders++] =
            xstrndup(f->value.data ? f->value.data : "", f->value.len);
    }
    buf_reset(&f->name);
    buf_reset(&f->value);
    f->in_value = false;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct fetch *f = fetch_of(p);
    if (f->in_value)
        store_header(f);
    return buf_append(&f->name, at, len) < 0 ? HPE_USER : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct fetch *f = fetch_of(p);
    f->in_value = true;
    return buf_append(&f->value, at, len) < 0 ? HPE_USER : 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct fetch *f = fetch_of(p);
    if (f->in_value)
        store_header(f);
    f->resp->status = p->status_code;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct fetch *f = fetch_of(p);
    if (f->rq->on_body && f->resp->status / 100 == 2) {
        f->rq->on_body(at, len, f->rq->data);
        return 0;
    }
    return buf_append(&f->resp->body, at, len) < 0 ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct fetch *f = fetch_of(p);
    f->done = true;
    uv_stop(&f->loop);
    return HPE_PAUSED;
}

static llhttp_settings_t settings;

/* --- the exchange ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char chunk[64 * 1024]; /* parsed before the next read */
    (void)h;
    (void)suggested;
    b->base = chunk;
    b->len = sizeof(chunk);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct fetch *f = s->data;
    if (nread > 0) {
        llhttp_errno_t e = llhttp_execute(&f->parser, b->base, (size_t)nread);
        if (e != HPE_OK && e != HPE_PAUSED)
            set_error(f, -EPROTO, "malformed answer from the daemon: %s",
                      llhttp_get_error_reason(&f->parser));
        return;
    }
    if (nread == UV_EOF) {
        if (llhttp_finish(&f->parser) == HPE_OK && f->done)
            return;
        if (!f->done)
            set_error(f, -EPROTO, "%s", "the daemon closed the connection before answering");
        return;
    }
    if (nread < 0)
        set_error(f, nread, "connection lost: %s", uv_strerror((int)nread));
}

static void write_next(struct fetch *f);

static void on_written(uv_write_t *w, int status)
{
    struct fetch *f = w->data;
    if (status < 0) {
        /* The daemon may have answered and closed (413): the read side reports it. */
        return;
    }
    if (f->head_sent && f->rq->on_progress && f->rq->body_len)
        f->rq->on_progress(f->sent, f->rq->body_len, f->rq->data);
    f->head_sent = true;
    write_next(f);
}

static void write_next(struct fetch *f)
{
    uv_buf_t b;
    if (!f->head_sent) {
        b = uv_buf_init(f->head.data, (unsigned)f->head.len);
    } else if (f->sent < f->rq->body_len) {
        size_t n = FND_MIN((size_t)CLIENT_PIECE, f->rq->body_len - f->sent);
        b = uv_buf_init((char *)f->rq->body + f->sent, (unsigned)n);
        f->sent += n;
    } else {
        return;
    }
    f->write_req.data = f;
    int rc = uv_write(&f->write_req, (uv_stream_t *)&f->tcp, &b, 1, on_written);
    if (rc < 0)
        set_error(f, rc, "sending the request failed: %s", uv_strerror(rc));
}

static void on_connect(uv_connect_t *c, int status)
{
    struct fetch *f = c->data;
    if (status < 0) {
        set_error(f, status, "%s", uv_strerror(status));
        return;
    }
    uv_read_start((uv_stream_t *)&f->tcp, on_alloc, on_read);
    write_next(f);
}

static void on_timeout(uv_timer_t *t)
{
    struct fetch *f = t->data;
    set_error(f, -ETIMEDOUT, "%s", "no answer in time");
}

int http_client_parse_url(const char *url, char *host, size_t hostsize, int *port)
{
    if (strncmp(url, "http://", 7) != 0)
        return -EINVAL;
    const char *h = url + 7, *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (close == NULL)
            return -EINVAL;
        colon = close[1] == ':' ? close + 1 : NULL;
        if ((size_t)(close - h - 1) >= hostsize || close == h + 1)
            return -EINVAL;
        memcpy(host, h + 1, (size_t)(close - h - 1));
        host[close - h - 1] = '\0';
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *hend = colon ? colon : end;
        if (hend == h || (size_t)(hend - h) >= hostsize)
            return -EINVAL;
        memcpy(host, h, (size_t)(hend - h));
        host[hend - h] = '\0';
    }
    *port = 80;
    if (colon) {
        char *stop;
        long p = strtol(colon + 1, &stop, 10);
        if (stop != end || p <= 0 || p > 65535)
            return -EINVAL;
        *port = (int)p;
    }
    return 0;
}

static int resolve(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *out)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    uv_getaddrinfo_t req;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int rc = uv_getaddrinfo(loop, &req, NULL, host, service, &hints); /* synchronous */
    if (rc < 0)
        return rc;
    memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

int http_client_fetch(const struct http_client_request *rq, struct http_client_response *resp,
                      char *err, size_t errsize)
{
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, HTTP_CLIENT_MAX_BODY);
    char host[256];
    int port;
    if (http_client_parse_url(rq->url, host, sizeof(host), &port) < 0) {
        snprintf(err, errsize, "bad URL %s: use http://HOST:PORT", rq->url);
        return -EINVAL;
    }
    if (settings.on_message_complete == NULL) {
        llhttp_settings_init(&settings);
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
    }
    struct fetch *f = xcalloc(1, sizeof(*f));
    f->rq = rq;
    f->resp = resp;
    f->err = err;
    f->errsize = errsize;
    buf_init(&f->head, 0);
    buf_init(&f->name, 8 * 1024);
    buf_init(&f->value, 64 * 1024);
    llhttp_init(&f->parser, HTTP_RESPONSE, &settings);
    f->parser.data = f;
    uv_loop_init(&f->loop);

    struct sockaddr_storage addr;
    int rc = resolve(&f->loop, host, port, &addr);
    if (rc < 0) {
        snprintf(err, errsize, "cannot resolve %s: %s", host, uv_strerror(rc));
        goto out;
    }
    bool v6 = strchr(host, ':') != NULL;
    buf_printf(&f->head, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: fnd/%s\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n",
               rq->method, rq->path, v6 ? "[" : "", host, v6 ? "]" : "", port, FND_VERSION,
               rq->body_len);
    for (size_t i = 0; i < rq->nheaders; i++)
        buf_printf(&f->head, "%.*s: %.*s\r\n", (int)rq->headers[i].name.len,
                   rq->headers[i].name.ptr, (int)rq->headers[i].value.len,
                   rq->headers[i].value.ptr);
    buf_append_str(&f->head, "\r\n");

    uv_tcp_init(&f->loop, &f->tcp);
    uv_timer_init(&f->loop, &f->timer);
    f->tcp.data = f->timer.data = f->connect_req.data = f;
    if (rq->timeout_ms)
        uv_timer_start(&f->timer, on_timeout, rq->timeout_ms, 0);
    rc = uv_tcp_connect(&f->connect_req, &f->tcp, (struct sockaddr *)&addr, on_connect);
    if (rc < 0)
        set_error(f, rc, "%s", uv_strerror(rc));
    else
        uv_run(&f->loop, UV_RUN_DEFAULT);
    rc = f->error;
    if (rc == 0 && !f->done) {
        rc = -EPROTO;
        snprintf(err, errsize, "the daemon closed the connection before answering");
    }
    uv_close((uv_handle_t *)&f->tcp, on_closed);
    uv_close((uv_handle_t *)&f->timer, on_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
out:
    uv_loop_close(&f->loop);
    buf_release(&f->head);
    buf_release(&f->name);
    buf_release(&f->value);
    free(f);
    if (rc < 0)
        http_client_response_release(resp);
    return rc;
}

const char *http_client_header(const struct http_client_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->header_names[i], name) == 0)
            return resp->header_values[i];
    return NULL;
}

void http_client_response_release(struct http_client_response *resp)
{
    buf_release(&resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    resp->nheaders = 0;
}
