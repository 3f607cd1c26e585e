/*
 * Growable byte buffers with a hard limit (include/fnd/buf.h). Capacity doubles so
 * appends are amortised O(1); the limit is checked before anything is allocated.
 */
#include "fnd/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_release(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
    if (b->max && (n > b->max || b->len > b->max - n))
        return -E2BIG;
    size_t need = b->len + n + 1; /* +1 keeps room for the trailing NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): buf_reserve always leaves room */
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_append_uint(struct buf *b, uint64_t v, unsigned min_digits)
{
    char text[20];
    size_t n = format_uint(text, v, min_digits);
    return buf_append(b, text, n);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_move(struct buf *dst, struct buf *src)
{
    buf_release(dst);
    *dst = *src;
    src->data = NULL;
    src->len = 0;
    src->cap = 0;
}

char *buf_steal(struct buf *b, size_t *len)
{
    if (b->data == NULL)
        buf_append(b, "", 0); /* hand out a valid empty string, never NULL */
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
