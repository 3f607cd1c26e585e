/*
 * The event log's I/O backends: one operation, "write these bytes at this offset and
 * make them durable", in three implementations chosen in eventlog.c:
 * eventlog_uring.c (io_uring, completions through an eventfd on the loop),
 * eventlog_threadpool.c (pwrite + fdatasync on libuv's threadpool) and
 * eventlog_faulty.c (the threadpool path with injected short writes and errors).
 *
 * At most one write_sync is in flight per backend. Its callback runs on the loop with
 * the number of bytes written and made durable (possibly fewer than asked: the caller
 * writes the rest), or a negative errno.
 */
#ifndef FND_EVENTLOG_IO_H
#define FND_EVENTLOG_IO_H

#include "fnd/eventlog.h"

#include <sys/types.h>
#include <uv.h>

struct eventlog_io;
typedef void eventlog_io_cb(long result, void *data);

struct eventlog_io_ops {
    const char *name;
    /* Writes len bytes of buf at off in fd, then fdatasyncs fd; cb once. buf stays
     * valid until cb. 0, or a negative errno without calling cb. */
    int (*write_sync)(struct eventlog_io *io, int fd, uint64_t off, const void *buf,
                      size_t len, eventlog_io_cb *cb, void *data);
    /* Frees the backend once nothing is in flight; on_closed then runs on the loop. */
    void (*close)(struct eventlog_io *io, void (*on_closed)(void *), void *data);
};

struct eventlog_io {
    const struct eventlog_io_ops *ops;
    uv_loop_t *loop;
};

/* Each returns 0 or a negative errno (uring: the io_uring_queue_init error, so the
 * caller can fall back on -ENOSYS, -EPERM and -ENOMEM). */
int eventlog_uring_open(struct eventlog_io **out, uv_loop_t *loop);
int eventlog_threadpool_open(struct eventlog_io **out, uv_loop_t *loop);
int eventlog_faulty_open(struct eventlog_io **out, uv_loop_t *loop,
                         struct eventlog_faults *faults);

#endif
