/*
 * A growable byte buffer with an optional hard limit, in the spirit of curl's dynbuf:
 * input-driven growth is bounded by the limit set at init, so a peer cannot make the
 * daemon allocate without end.
 */
#ifndef FND_BUF_H
#define FND_BUF_H

#include "fnd/common.h"

struct buf {
    char *data; /* owned; NUL-terminated after every append (not counted in len) */
    size_t len;
    size_t cap;
    size_t max; /* appends that would pass this fail with -E2BIG; 0 = unbounded */
};

/* Starts an empty buffer that may hold at most max bytes (0 for no limit). */
void buf_init(struct buf *b, size_t max);
/* Frees the bytes; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);
/* Forgets the contents but keeps the allocation for reuse. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
/* Makes room for n more bytes. 0, or -E2BIG past the limit. */
int buf_reserve(struct buf *b, size_t n);
/* Appends bytes. 0, or -E2BIG past the limit (the buffer is unchanged then). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
/* v in decimal, zero-padded to at least min_digits (format_uint in common.h). */
int buf_append_uint(struct buf *b, uint64_t v, unsigned min_digits);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves the contents of src into dst (dst is released first); src is left empty. */
void buf_move(struct buf *dst, struct buf *src);
/* Takes the bytes out: the caller owns the returned pointer; the buffer is left empty. */
char *buf_steal(struct buf *b, size_t *len);

static inline struct slice buf_slice(const struct buf *b)
{
    return (struct slice){b->data, b->len};
}

#endif
