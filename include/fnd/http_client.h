/*
 * A small blocking HTTP/1.1 client for the `fnd` commands: one request per call on its
 * own libuv loop, responses parsed by llhttp in response mode. It streams the upload
 * (reporting progress) and, when asked, the response body as it arrives (log follow).
 * Plain http:// only: the daemon's control plane is meant for loopback or a trusted
 * network behind a TLS proxy.
 */
#ifndef FND_HTTP_CLIENT_H
#define FND_HTTP_CLIENT_H

#include "fnd/buf.h"
#include "fnd/http.h"

#define HTTP_CLIENT_MAX_HEADERS 32
#define HTTP_CLIENT_MAX_BODY (256u << 20) /* a larger response is an error */

struct http_client_request {
    const char *method;
    const char *url;  /* http://host:port, a base without a path */
    const char *path; /* the target, query included */
    const struct http_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
    uint64_t timeout_ms; /* for the whole exchange; 0: none (following a stream) */
    /* Optional: called as the body goes out (sent of total bytes). */
    void (*on_progress)(size_t sent, size_t total, void *data);
    /* Optional: receives a 2xx response's body piece by piece instead of it being kept
     * (other answers are kept in resp->body). */
    void (*on_body)(const char *piece, size_t len, void *data);
    void *data;
};

struct http_client_response {
    int status;
    struct buf body; /* unless on_body was given */
    char *header_names[HTTP_CLIENT_MAX_HEADERS];  /* lower-case, owned */
    char *header_values[HTTP_CLIENT_MAX_HEADERS]; /* owned */
    size_t nheaders;
};

/* Performs rq. 0 with *resp filled (any status); or a negative errno with err saying
 * what went wrong: -ECONNREFUSED and other connect errors, -ETIMEDOUT, -EPROTO for a
 * malformed answer, -EINVAL for a bad URL. */
int http_client_fetch(const struct http_client_request *rq, struct http_client_response *resp,
                      char *err, size_t errsize);
/* The value of a response header (case-insensitive name), or NULL. */
const char *http_client_header(const struct http_client_response *resp, const char *name);
void http_client_response_release(struct http_client_response *resp);
/* Splits "http://host[:port][/]" into host and port (default 80). 0 or -EINVAL. */
int http_client_parse_url(const char *url, char *host, size_t hostsize, int *port);

#endif
