/*
 * Percent-decoding and query strings (include/fnd/urlcode.h). Decoding never grows the
 * input, so a destination bounded by the request's URL limit is bounded too.
 */
#include "fnd/urlcode.h"

#include <errno.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int url_decode(struct buf *out, struct slice in, bool plus_is_space)
{
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            int hi = i + 2 < in.len ? hex_value(in.ptr[i + 1]) : -1;
            int lo = i + 2 < in.len ? hex_value(in.ptr[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        int rc = buf_append(out, &c, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

bool url_query_next(struct slice *query, struct slice *name, struct slice *value)
{
    while (query->len > 0) {
        const char *amp = memchr(query->ptr, '&', query->len);
        size_t len = amp ? (size_t)(amp - query->ptr) : query->len;
        struct slice pair = {query->ptr, len};
        query->ptr += amp ? len + 1 : len;
        query->len -= amp ? len + 1 : len;
        if (pair.len == 0)
            continue;
        const char *eq = memchr(pair.ptr, '=', pair.len);
        *name = (struct slice){pair.ptr, eq ? (size_t)(eq - pair.ptr) : pair.len};
        *value = eq ? (struct slice){eq + 1, pair.len - name->len - 1} : SLICE_LIT("");
        return true;
    }
    return false;
}

int url_query_get(struct slice query, const char *name, char *out, size_t size)
{
    struct slice n, v;
    while (url_query_next(&query, &n, &v)) {
        if (!slice_eq(n, name))
            continue;
        struct buf b;
        buf_init(&b, size - 1);
        int rc = url_decode(&b, v, true);
        if (rc == 0 && memchr(b.data ? b.data : "", '\0', b.len) != NULL)
            rc = -EINVAL; /* a NUL would cut the C string short */
        if (rc == 0) {
            memcpy(out, b.data ? b.data : "", b.len);
            out[b.len] = '\0';
        }
        buf_release(&b);
        return rc < 0 ? -EINVAL : 1;
    }
    return 0;
}
