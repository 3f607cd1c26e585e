/*
 * URL components: percent-decoding (RFC 3986) and walking a query string's
 * name=value pairs, shared by the Lambda API (function names, Qualifier, Marker) and
 * function URLs (queryStringParameters).
 */
#ifndef FND_URLCODE_H
#define FND_URLCODE_H

#include "fnd/buf.h"

/* Appends the percent-decoded in to out ('+' becomes a space when plus_is_space, as in
 * query strings). 0, -EINVAL for a malformed escape, -E2BIG past out's limit. */
int url_decode(struct buf *out, struct slice in, bool plus_is_space);

/* Takes the next "name[=value]" pair off *query (separated by '&'), still encoded.
 * Returns false when the query is used up. Empty pairs ("a=1&&b=2") are skipped. */
bool url_query_next(struct slice *query, struct slice *name, struct slice *value);

/* Decodes the value of the first parameter called name into out (a C string, at most
 * size-1 bytes). 1 found, 0 absent, -EINVAL malformed or too long. */
int url_query_get(struct slice query, const char *name, char *out, size_t size);

#endif
