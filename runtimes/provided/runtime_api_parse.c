/*
 * Parsing of a custom runtime's Runtime API requests (runtime_api_parse.h), split out of
 * the adapter so that the fuzz driver links exactly the code the adapter runs.
 *
 * Bytes are buffered as they are read and handed to llhttp, which pauses at the end of
 * each request: the adapter answers one request before the next is parsed, and a
 * pipelined request waits in the buffer meanwhile. What the parser keeps is bounded
 * before it is stored: the request target at RUNTIME_API_MAX_URL bytes (longer is
 * malformed), the one header the adapter reads (Lambda-Runtime-Function-Error-Type) at
 * RUNTIME_API_MAX_ERROR_TYPE, other headers not at all, and the body at max_body, past
 * which its bytes are dropped and the request flagged too_large so that it can still
 * be answered (413) and the connection go on. The route and the invocation id come
 * from the path alone; whether the id is the one being served is the adapter's call.
 * Only a malformed stream is refused, and a refusal is final: llhttp cannot resume
 * after an error.
 */
#include "runtime_api_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const route_names[] = {
#define RUNTIME_API_ROUTE_NAME(name, text) text,
    RUNTIME_API_ROUTES(RUNTIME_API_ROUTE_NAME)
#undef RUNTIME_API_ROUTE_NAME
};

const char *runtime_api_route_name(enum runtime_api_route route)
{
    return route_names[route];
}

int runtime_api_buffer_append(struct runtime_api_buffer *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return -ENOMEM;
        b->data = grown;
        b->cap = cap;
    }
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void runtime_api_buffer_release(struct runtime_api_buffer *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* --- llhttp callbacks -------------------------------------------------------------- */

static struct runtime_api_parser *parser_of(llhttp_t *h)
{
    return h->data;
}

static int on_message_begin(llhttp_t *h)
{
    struct runtime_api_parser *p = parser_of(h);
    p->url_len = 0;
    p->req.path[0] = '\0';
    p->req.error_type[0] = '\0';
    p->field_len = 0;
    p->body.len = 0;
    p->req.too_large = false;
    return 0;
}

static int on_url(llhttp_t *h, const char *at, size_t len)
{
    struct runtime_api_parser *p = parser_of(h);
    if (p->url_len + len > RUNTIME_API_MAX_URL) {
        p->refusal = "the request target exceeds 1024 bytes";
        return -1;
    }
    memcpy(p->req.path + p->url_len, at, len);
    p->url_len += len;
    p->req.path[p->url_len] = '\0';
    return 0;
}

static int on_header_field(llhttp_t *h, const char *at, size_t len)
{
    struct runtime_api_parser *p = parser_of(h);
    size_t room = sizeof(p->field) - 1 - p->field_len;
    size_t take = len < room ? len : room;
    memcpy(p->field + p->field_len, at, take);
    p->field_len += take;
    p->field[p->field_len] = '\0';
    return 0;
}

static int on_header_field_complete(llhttp_t *h)
{
    struct runtime_api_parser *p = parser_of(h);
    p->field_is_error_type = strcasecmp(p->field, "Lambda-Runtime-Function-Error-Type") == 0;
    p->field_len = 0;
    if (p->field_is_error_type)
        p->req.error_type[0] = '\0'; /* a repeated header: the last one counts */
    return 0;
}

static int on_header_value(llhttp_t *h, const char *at, size_t len)
{
    struct runtime_api_parser *p = parser_of(h);
    if (p->field_is_error_type) {
        size_t have = strlen(p->req.error_type);
        size_t room = sizeof(p->req.error_type) - 1 - have;
        size_t take = len < room ? len : room;
        memcpy(p->req.error_type + have, at, take);
        p->req.error_type[have + take] = '\0';
    }
    return 0;
}

static int on_body(llhttp_t *h, const char *at, size_t len)
{
    struct runtime_api_parser *p = parser_of(h);
    if (p->req.too_large || p->body.len + len > p->max_body) {
        /* Keep parsing, drop the bytes: the answer is 413. What was kept goes too, so
         * that a refused body reads the same however its bytes arrived. */
        p->req.too_large = true;
        p->body.len = 0;
        return 0;
    }
    if (runtime_api_buffer_append(&p->body, at, len) < 0) {
        p->no_memory = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *h)
{
    parser_of(h)->complete = true;
    return HPE_PAUSED; /* one request at a time: answered before parsing on */
}

/* --- routes ------------------------------------------------------------------------ */

/* Whether path is PREFIX "invocation/<id>/<what>"; the id as a slice of path. */
static bool match_invocation(struct runtime_api_request *r, const char *what)
{
    static const char inv_prefix[] = RUNTIME_API_PREFIX "invocation/";
    if (strncmp(r->path, inv_prefix, sizeof(inv_prefix) - 1) != 0)
        return false;
    const char *id = r->path + sizeof(inv_prefix) - 1;
    const char *slash = strchr(id, '/');
    if (slash == NULL || strcmp(slash + 1, what) != 0)
        return false;
    r->id = id;
    r->id_len = (size_t)(slash - id);
    return true;
}

/* Completes p->req once llhttp has seen the end of a request. */
static void finish_request(struct runtime_api_parser *p)
{
    struct runtime_api_request *r = &p->req;
    char *q = strchr(r->path, '?');
    if (q)
        *q = '\0';
    r->method = (llhttp_method_t)p->http.method;
    r->post = r->method == HTTP_POST;
    r->keep_alive = llhttp_should_keep_alive(&p->http);
    if (p->body.data)
        p->body.data[p->body.len] = '\0'; /* not a previous request's bytes (cap > len) */
    r->body = p->body.data ? p->body.data : "";
    r->body_len = p->body.len;
    r->id = NULL;
    r->id_len = 0;
    r->route = RUNTIME_API_ROUTE_NONE;
    if (strcmp(r->path, RUNTIME_API_PREFIX "invocation/next") == 0 && r->method == HTTP_GET)
        r->route = RUNTIME_API_ROUTE_NEXT;
    else if (!r->post)
        r->route = RUNTIME_API_ROUTE_NONE;
    else if (strcmp(r->path, RUNTIME_API_PREFIX "init/error") == 0)
        r->route = RUNTIME_API_ROUTE_INIT_ERROR;
    else if (match_invocation(r, "response"))
        r->route = RUNTIME_API_ROUTE_RESPONSE;
    else if (match_invocation(r, "error"))
        r->route = RUNTIME_API_ROUTE_ERROR;
}

/* --- the parser -------------------------------------------------------------------- */

void runtime_api_parser_init(struct runtime_api_parser *p, size_t max_body)
{
    memset(p, 0, sizeof(*p));
    p->max_body = max_body;
    llhttp_settings_init(&p->settings);
    p->settings.on_message_begin = on_message_begin;
    p->settings.on_url = on_url;
    p->settings.on_header_field = on_header_field;
    p->settings.on_header_field_complete = on_header_field_complete;
    p->settings.on_header_value = on_header_value;
    p->settings.on_body = on_body;
    p->settings.on_message_complete = on_message_complete;
    llhttp_init(&p->http, HTTP_REQUEST, &p->settings);
    p->http.data = p;
}

void runtime_api_parser_release(struct runtime_api_parser *p)
{
    runtime_api_buffer_release(&p->in);
    runtime_api_buffer_release(&p->body);
}

int runtime_api_parser_feed(struct runtime_api_parser *p, const void *data, size_t len)
{
    return runtime_api_buffer_append(&p->in, data, len);
}

size_t runtime_api_parser_pending(const struct runtime_api_parser *p)
{
    return p->in.len;
}

int runtime_api_parser_next(struct runtime_api_parser *p)
{
    if (p->no_memory)
        return -ENOMEM;
    if (p->refusal)
        return -EPROTO;
    if (p->in.len == 0)
        return 0;
    llhttp_errno_t err = llhttp_execute(&p->http, p->in.data, p->in.len);
    size_t used = p->in.len;
    if (err == HPE_PAUSED) {
        used = (size_t)(llhttp_get_error_pos(&p->http) - p->in.data);
        llhttp_resume(&p->http);
    } else if (err != HPE_OK) {
        if (p->no_memory)
            return -ENOMEM;
        if (p->refusal == NULL) {
            const char *reason = llhttp_get_error_reason(&p->http);
            p->refusal = reason && *reason ? reason : llhttp_errno_name(err);
        }
        return -EPROTO;
    }
    memmove(p->in.data, p->in.data + used, p->in.len - used);
    p->in.len -= used;
    if (!p->complete)
        return 0;
    p->complete = false;
    finish_request(p);
    return 1;
}
