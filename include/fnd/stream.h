/*
 * Writing to a libuv stream without a write request when the socket or pipe takes the
 * bytes at once. A uv_write that completes makes libuv re-arm the descriptor in epoll
 * (one epoll_ctl) when it finishes; on the hot path, one response or event per
 * invocation, that system call is worth saving.
 */
#ifndef FND_STREAM_H
#define FND_STREAM_H

#include <uv.h>

/* Writes what the stream takes now. Returns 0 with *nbufs 0 when everything went out;
 * 0 with *bufs and *nbufs advanced to what is left (to pass to uv_write); or a
 * negative libuv error. The buffers' bases and lengths are adjusted in place. */
int stream_write_now(uv_stream_t *s, uv_buf_t **bufs, unsigned *nbufs);

#endif
