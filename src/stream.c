/*
 * libuv stream helpers (include/fnd/stream.h): uv_try_write, then the part that did
 * not fit, for the caller to queue.
 */
#include "fnd/stream.h"

#include <stddef.h>

int stream_write_now(uv_stream_t *s, uv_buf_t **bufs, unsigned *nbufs)
{
    int n = uv_try_write(s, *bufs, *nbufs);
    if (n < 0 && n != UV_EAGAIN)
        return n;
    size_t done = n > 0 ? (size_t)n : 0;
    while (*nbufs > 0 && done >= (*bufs)->len) {
        done -= (*bufs)->len;
        (*bufs)++;
        (*nbufs)--;
    }
    if (*nbufs > 0) {
        (*bufs)->base += done;
        (*bufs)->len -= done;
    }
    return 0;
}
