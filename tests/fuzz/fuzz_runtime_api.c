/*
 * Fuzz driver for the Runtime API requests a custom runtime sends to its adapter:
 * runtime_api_parse.c (runtimes/provided), the unit adapter.c parses every request
 * with: llhttp, the request target and its route and invocation id, the error type
 * header, body bounds.
 *
 * Input: byte 0 seeds the sizes of the reads the bytes arrive in; the rest is what the
 * runtime sends on one connection. The stream is parsed twice, all at once and in
 * reads of 1 to 64 bytes, the second time sometimes leaving the buffered bytes alone
 * for a read or two after a .../next, as the adapter does while such a request waits
 * for an invocation. Both runs must see the same requests and end with the same
 * verdict (not always for the same reason: a target both too long and malformed is
 * refused for what llhttp sees first), and a request that does not keep the
 * connection alive ends it, as in the adapter. Every request is within the limits
 * (target, error type, body), its route is the one its method and path name
 * (restated here independently of the parser), its id a slice of its path, its body
 * a string of its length and empty when too large; a refusal names a reason; once
 * the parser asks for more bytes it holds none unparsed.
 */
#include "fuzz.h"

#include "runtime_api_parse.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define MAX_BODY 128
#define MAX_REQUESTS 256

struct seen_request {
    int method;
    enum runtime_api_route route;
    uint32_t path_sum, id_sum, error_type_sum, body_sum;
    size_t id_len, body_len;
    bool too_large, keep_alive;
};

struct run {
    struct seen_request req[MAX_REQUESTS];
    size_t n;
    int verdict;       /* 0: wants more bytes; 1: the connection ended; -EPROTO */
};

static uint32_t checksum(const char *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static bool path_is(const char *path, const char *rest)
{
    return strncmp(path, RUNTIME_API_PREFIX, strlen(RUNTIME_API_PREFIX)) == 0 &&
           strcmp(path + strlen(RUNTIME_API_PREFIX), rest) == 0;
}

/* The route a request should have, from its method and path. */
static enum runtime_api_route expected_route(const struct runtime_api_request *r)
{
    if (r->method == HTTP_GET && path_is(r->path, "invocation/next"))
        return RUNTIME_API_ROUTE_NEXT;
    if (r->method != HTTP_POST)
        return RUNTIME_API_ROUTE_NONE;
    if (path_is(r->path, "init/error"))
        return RUNTIME_API_ROUTE_INIT_ERROR;
    static const char inv[] = RUNTIME_API_PREFIX "invocation/";
    if (strncmp(r->path, inv, sizeof(inv) - 1) != 0)
        return RUNTIME_API_ROUTE_NONE;
    const char *rest = strchr(r->path + sizeof(inv) - 1, '/');
    if (rest && strcmp(rest, "/response") == 0)
        return RUNTIME_API_ROUTE_RESPONSE;
    if (rest && strcmp(rest, "/error") == 0)
        return RUNTIME_API_ROUTE_ERROR;
    return RUNTIME_API_ROUTE_NONE;
}

static void check_request(const struct runtime_api_parser *p)
{
    const struct runtime_api_request *r = &p->req;
    size_t path_len = strlen(r->path);
    FUZZ_CHECK(path_len <= RUNTIME_API_MAX_URL);
    FUZZ_CHECK(strchr(r->path, '?') == NULL);
    FUZZ_CHECK(strlen(r->error_type) <= RUNTIME_API_MAX_ERROR_TYPE);
    FUZZ_CHECK(r->body != NULL && r->body_len <= MAX_BODY);
    FUZZ_CHECK(r->body[r->body_len] == '\0'); /* the adapter reads it as a string too */
    FUZZ_CHECK(!r->too_large || r->body_len == 0);
    FUZZ_CHECK(r->post == (r->method == HTTP_POST));
    FUZZ_CHECK(r->route == expected_route(r));
    if (r->route == RUNTIME_API_ROUTE_RESPONSE || r->route == RUNTIME_API_ROUTE_ERROR) {
        static const char inv[] = RUNTIME_API_PREFIX "invocation/";
        FUZZ_CHECK(r->id == r->path + sizeof(inv) - 1);
        FUZZ_CHECK(memchr(r->id, '/', r->id_len) == NULL);
        const char *what = runtime_api_route_name(r->route);
        FUZZ_CHECK(r->id[r->id_len] == '/' && strcmp(r->id + r->id_len + 1, what) == 0);
    } else {
        FUZZ_CHECK(r->id == NULL && r->id_len == 0);
    }
}

/* Takes one request from the parser into the run; false once the run is over. */
static bool record(struct run *run, struct runtime_api_parser *p, int rc)
{
    if (rc < 0) {
        FUZZ_CHECK(rc == -EPROTO);
        FUZZ_CHECK(p->refusal != NULL && p->refusal[0] != '\0');
        run->verdict = rc;
        return false;
    }
    check_request(p);
    const struct runtime_api_request *r = &p->req;
    if (run->n < MAX_REQUESTS) {
        struct seen_request *s = &run->req[run->n++];
        s->method = r->method;
        s->route = r->route;
        s->path_sum = checksum(r->path, strlen(r->path));
        s->id_sum = r->id ? checksum(r->id, r->id_len) : 0;
        s->id_len = r->id_len;
        s->error_type_sum = checksum(r->error_type, strlen(r->error_type));
        s->body_sum = checksum(r->body, r->body_len);
        s->body_len = r->body_len;
        s->too_large = r->too_large;
        s->keep_alive = r->keep_alive;
    }
    if (!r->keep_alive) {
        run->verdict = 1; /* the adapter closes the connection after its answer */
        return false;
    }
    return true;
}

/* Parses what is buffered until the parser wants more; false once the run is over.
 * With lazy, a .../next leaves the rest for later, as while it waits for work. */
static bool parse(struct run *run, struct runtime_api_parser *p, bool lazy, bool *parked)
{
    for (;;) {
        int rc = runtime_api_parser_next(p);
        if (rc == 0) {
            FUZZ_CHECK(runtime_api_parser_pending(p) == 0);
            return true;
        }
        if (!record(run, p, rc))
            return false;
        if (lazy && p->req.route == RUNTIME_API_ROUTE_NEXT) {
            *parked = true;
            return true;
        }
    }
}

static void run_stream(const uint8_t *data, size_t size, uint8_t seed, struct run *run)
{
    struct runtime_api_parser p;
    runtime_api_parser_init(&p, MAX_BODY);
    size_t off = 0;
    uint32_t state = seed;
    bool parked = false, going = true;
    while (going && off < size) {
        size_t n = fuzz_next_read(seed ? &state : NULL, size - off, 64);
        FUZZ_CHECK(runtime_api_parser_feed(&p, data + off, n) == 0);
        off += n;
        if (parked && (state >> 8) % 3 != 0)
            continue; /* still waiting for an invocation */
        parked = false;
        going = parse(run, &p, seed != 0, &parked);
    }
    while (going && parked) { /* the invocation came: answer, then parse on */
        parked = false;
        going = parse(run, &p, true, &parked);
    }
    runtime_api_parser_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t seed = data[0] | 1; /* never 0: that is the all-at-once run */
    static struct run whole, pieces;
    memset(&whole, 0, sizeof(whole));
    memset(&pieces, 0, sizeof(pieces));
    run_stream(data + 1, size - 1, 0, &whole);
    run_stream(data + 1, size - 1, seed, &pieces);
    FUZZ_CHECK(whole.verdict == pieces.verdict);
    /* Not the same reason: a target both too long and malformed is refused for what
     * llhttp sees first, and it hands the target over only at the ends of reads. The
     * adapter's answer (400) does not depend on it. */
    FUZZ_CHECK(whole.n == pieces.n);
    FUZZ_CHECK(memcmp(whole.req, pieces.req, whole.n * sizeof(whole.req[0])) == 0);
    return 0;
}
