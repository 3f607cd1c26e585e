/*
 * The event log's io_uring backend (include/fnd/eventlog_io.h): each write_sync is a
 * write SQE linked to an fdatasync SQE, submitted together, so one io_uring_enter
 * makes a batch durable. No thread waits: the ring signals completions on an eventfd
 * registered with io_uring_register_eventfd, which the libuv loop polls; the poll
 * callback reaps both CQEs and reports to the log.
 *
 * A short write breaks the link (the fdatasync completes -ECANCELED or runs anyway);
 * either way the written count is reported and the log resubmits the rest, so the
 * bytes it counts as durable were always followed by a successful fdatasync.
 */
#include "fnd/eventlog_io.h"

#include "fnd/log.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { TAG_WRITE = 1, TAG_SYNC = 2 };

struct uring_io {
    struct eventlog_io base;
    struct io_uring ring;
    int efd;
    uv_poll_t poll;
    /* The one operation in flight. */
    bool busy;
    int pending;     /* CQEs still expected: 2 while busy */
    size_t asked;    /* bytes submitted */
    long written;    /* the write's result */
    int sync_res;    /* the fdatasync's result */
    eventlog_io_cb *cb;
    void *cb_data;
    void (*on_closed)(void *);
    void *closed_data;
};

static void finish(struct uring_io *u)
{
    u->busy = false;
    long res = u->written;
    if (res == 0 && u->asked > 0)
        res = -EIO; /* no progress: a regular file only does this when it is broken */
    else if (res > 0 && u->sync_res < 0 && u->sync_res != -ECANCELED)
        res = u->sync_res;
    else if (res > 0 && u->sync_res == -ECANCELED && (size_t)res == u->asked)
        res = -EIO; /* a full write whose sync did not run: report nothing as durable */
    /* A short write with a cancelled sync reports its count: the log writes the rest,
     * and the fdatasync after that covers these bytes too. */
    eventlog_io_cb *cb = u->cb;
    u->cb = NULL;
    cb(res, u->cb_data);
}

static void on_eventfd(uv_poll_t *p, int status, int events)
{
    struct uring_io *u = container_of(p, struct uring_io, poll);
    uint64_t n;
    if (read(u->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_warn("eventfd read failed", "err=\"%s\"", strerror(errno));
    struct io_uring_cqe *cqe;
    while (u->busy && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        if (io_uring_cqe_get_data64(cqe) == TAG_WRITE)
            u->written = cqe->res;
        else
            u->sync_res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        if (--u->pending == 0)
            finish(u);
    }
}

static int uring_write_sync(struct eventlog_io *io, int fd, uint64_t off, const void *buf,
                            size_t len, eventlog_io_cb *cb, void *data)
{
    struct uring_io *u = (struct uring_io *)io;
    if (u->busy)
        return -EBUSY;
    struct io_uring_sqe *w = io_uring_get_sqe(&u->ring);
    struct io_uring_sqe *s = w ? io_uring_get_sqe(&u->ring) : NULL;
    if (s == NULL)
        return -EAGAIN; /* cannot happen with one operation in flight on an 8-entry ring */
    len = FND_MIN(len, (size_t)1 << 30);
    io_uring_prep_write(w, fd, buf, (unsigned)len, off);
    io_uring_sqe_set_data64(w, TAG_WRITE);
    w->flags |= IOSQE_IO_LINK;
    io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(s, TAG_SYNC);
    int rc = io_uring_submit(&u->ring);
    if (rc < 0)
        return rc;
    u->busy = true;
    u->pending = 2;
    u->asked = len;
    u->written = 0;
    u->sync_res = 0;
    u->cb = cb;
    u->cb_data = data;
    return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct uring_io *u = container_of((uv_poll_t *)h, struct uring_io, poll);
    io_uring_queue_exit(&u->ring);
    close(u->efd);
    void (*on_closed)(void *) = u->on_closed;
    void *data = u->closed_data;
    free(u);
    if (on_closed)
        on_closed(data);
}

static void uring_close(struct eventlog_io *io, void (*on_closed)(void *), void *data)
{
    struct uring_io *u = (struct uring_io *)io;
    u->on_closed = on_closed;
    u->closed_data = data;
    uv_poll_stop(&u->poll);
    uv_close((uv_handle_t *)&u->poll, on_poll_closed);
}

static const struct eventlog_io_ops uring_ops = {"uring", uring_write_sync, uring_close};

int eventlog_uring_open(struct eventlog_io **out, uv_loop_t *loop)
{
    struct uring_io *u = xcalloc(1, sizeof(*u));
    u->base = (struct eventlog_io){&uring_ops, loop};
    u->efd = -1;
    int rc = io_uring_queue_init(8, &u->ring, 0);
    if (rc < 0) {
        free(u);
        return rc;
    }
    u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->efd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = io_uring_register_eventfd(&u->ring, u->efd);
    if (rc < 0)
        goto fail;
    rc = uv_poll_init(loop, &u->poll, u->efd);
    if (rc < 0)
        goto fail;
    uv_poll_start(&u->poll, UV_READABLE, on_eventfd);
    *out = &u->base;
    return 0;

fail:
    if (u->efd >= 0)
        close(u->efd);
    io_uring_queue_exit(&u->ring);
    free(u);
    return rc;
}
