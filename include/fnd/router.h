/*
 * Path routing: a static table of (method, pattern, handler) rows matched against a
 * request path. Patterns are literal segments and `{name}` captures that match one
 * non-empty segment, plus an optional final `{name...}` that captures the rest of the
 * path (possibly empty). Matching is exact: no trailing-slash folding.
 */
#ifndef FND_ROUTER_H
#define FND_ROUTER_H

#include "fnd/common.h"

#define ROUTE_MAX_PARAMS 4

struct http_request;

struct route_match {
    struct slice params[ROUTE_MAX_PARAMS]; /* in pattern order; point into the path */
    size_t nparams;
};

typedef void route_handler_fn(struct http_request *req, const struct route_match *m, void *data);

struct route {
    const char *method; /* "GET", "POST", ...; "*" matches any */
    const char *pattern;
    route_handler_fn *handler;
};

/* Finds the row for (method, path). Returns 0 with *out and *m set; -ENOENT when no
 * pattern matches the path (404); -EPERM when the path matches only rows of other
 * methods (405), with allow filled as "GET, PUT" (NUL-terminated, truncated to
 * allow_size). */
int router_match(const struct route *table, size_t n, const char *method, struct slice path,
                 const struct route **out, struct route_match *m, char *allow, size_t allow_size);

#endif
