/*
 * Messages with descriptors over a Unix stream socket (SCM_RIGHTS), blocking: how the
 * daemon, the zygote, a blank worker and the blank's init hand each other a worker's
 * descriptors (zygote.c, sandbox.c).
 */
#ifndef FND_FDPASS_H
#define FND_FDPASS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define FDPASS_MAX 8 /* descriptors in one message */

/* Sends the whole of iov (iovcnt entries, modified as it is consumed), with nfds
 * descriptors on its first bytes. 0 or a negative errno (-EPIPE when the peer is gone). */
int fdpass_send(int sock, struct iovec *iov, int iovcnt, const int *fds, size_t nfds);

/* Receives exactly len bytes (a small fixed head) and the descriptors sent with them,
 * close-on-exec, keeping up to max in fds (*nfds) and closing the rest. The byte
 * count, 0 at EOF, or a negative errno; -EPROTO when the head came short or its
 * descriptors were cut. */
ssize_t fdpass_recv(int sock, void *head, size_t len, int *fds, size_t max, size_t *nfds);

/* Closes fds[0..n). */
void fdpass_close_all(const int *fds, size_t n);

#endif
