/*
 * The requests a custom runtime sends to the Runtime API adapter, parsed from the bytes
 * of one connection: the request line and its route (next, response or error of an
 * invocation id, init error), the one header the adapter reads, and a body bounded
 * before it is buffered. Shared by the adapter (adapter.c) and its fuzz driver
 * (tests/fuzz/fuzz_runtime_api.c); it depends on llhttp and libc only, like the
 * adapter, which does not link the daemon's library.
 */
#ifndef FND_RUNTIME_API_PARSE_H
#define FND_RUNTIME_API_PARSE_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

#define RUNTIME_API_PREFIX "/2018-06-01/runtime/"
#define RUNTIME_API_MAX_URL 1024       /* longer request targets are malformed */
#define RUNTIME_API_MAX_ERROR_TYPE 127 /* Lambda-Runtime-Function-Error-Type, truncated */

/* route, its name */
#define RUNTIME_API_ROUTES(X)                                                                  \
    X(NONE, "none")             /* no endpoint: 404 */                                         \
    X(NEXT, "next")             /* GET  invocation/next */                                     \
    X(RESPONSE, "response")     /* POST invocation/{id}/response */                            \
    X(ERROR, "error")           /* POST invocation/{id}/error */                               \
    X(INIT_ERROR, "init/error") /* POST init/error */

enum runtime_api_route {
#define RUNTIME_API_ROUTE_ENUM(name, text) RUNTIME_API_ROUTE_##name,
    RUNTIME_API_ROUTES(RUNTIME_API_ROUTE_ENUM)
#undef RUNTIME_API_ROUTE_ENUM
};

/* A growable byte buffer, always NUL-terminated once allocated. */
struct runtime_api_buffer {
    char *data; /* malloc'd, NULL until the first append */
    size_t len, cap;
};

/* One parsed request; valid until the next runtime_api_parser_next(). */
struct runtime_api_request {
    llhttp_method_t method;
    bool post;                  /* only POST reaches response, error and init/error */
    enum runtime_api_route route;
    char path[RUNTIME_API_MAX_URL + 1]; /* the target without its query */
    const char *id;             /* RESPONSE, ERROR: the invocation id, a slice of path */
    size_t id_len;
    char error_type[RUNTIME_API_MAX_ERROR_TYPE + 1]; /* the last such header, or "" */
    const char *body;           /* the body, or "" when too_large */
    size_t body_len;            /* <= the parser's max_body */
    bool too_large;             /* the body exceeded max_body; its bytes were dropped */
    bool keep_alive;            /* the client keeps the connection open after the answer */
};

struct runtime_api_parser {
    llhttp_t http;
    llhttp_settings_t settings;
    size_t max_body;
    struct runtime_api_buffer in;   /* read, not yet parsed */
    struct runtime_api_buffer body; /* of the request being parsed */
    size_t url_len;
    char field[64];                 /* the header name being read, truncated */
    size_t field_len;
    bool field_is_error_type;
    bool complete;                  /* a whole request awaits runtime_api_parser_next */
    bool no_memory;
    const char *refusal;            /* why the stream was refused; static text */
    struct runtime_api_request req;
};

/* Appends len bytes to b. 0, or -ENOMEM with b unchanged. */
int runtime_api_buffer_append(struct runtime_api_buffer *b, const void *data, size_t len);
/* Frees b's bytes and empties it. */
void runtime_api_buffer_release(struct runtime_api_buffer *b);

/* Starts parsing a new connection's requests; bodies over max_body bytes are dropped
 * and flagged too_large. */
void runtime_api_parser_init(struct runtime_api_parser *p, size_t max_body);
/* Frees what the parser holds. */
void runtime_api_parser_release(struct runtime_api_parser *p);
/* Buffers bytes read from the connection, to be parsed by runtime_api_parser_next.
 * 0, or -ENOMEM. */
int runtime_api_parser_feed(struct runtime_api_parser *p, const void *data, size_t len);
/* Parses buffered bytes up to the end of the next request. 1: a request is in p->req;
 * 0: every buffered byte is used and more are needed; -EPROTO: the stream is not a
 * request within the limits (p->refusal says why) and cannot go on; -ENOMEM. */
int runtime_api_parser_next(struct runtime_api_parser *p);
/* Bytes buffered and not yet parsed. */
size_t runtime_api_parser_pending(const struct runtime_api_parser *p);
/* The name of a route. */
const char *runtime_api_route_name(enum runtime_api_route route);

#endif
