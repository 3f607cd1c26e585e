/*
 * The event log's threadpool backend (include/fnd/eventlog_io.h), used where io_uring
 * is unavailable: pwrite until done, then fdatasync, on one libuv threadpool worker;
 * the result comes back to the loop in the after-work callback. The semantics are the
 * io_uring backend's: a callback reports bytes written and made durable, or an error.
 */
#include "fnd/eventlog_io.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct pool_io {
    struct eventlog_io base;
    uv_work_t work;
    bool busy;
    int fd;
    uint64_t off;
    const char *buf;
    size_t len;
    long result;
    eventlog_io_cb *cb;
    void *cb_data;
};

/* Threadpool side: touches only the fields write_sync filled in. */
static void do_write_sync(uv_work_t *w)
{
    struct pool_io *p = container_of(w, struct pool_io, work);
    size_t done = 0;
    while (done < p->len) {
        ssize_t n = pwrite(p->fd, p->buf + done, p->len - done, (off_t)(p->off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            p->result = n < 0 ? -errno : -EIO;
            return;
        }
        done += (size_t)n;
    }
    p->result = fdatasync(p->fd) < 0 ? -errno : (long)done;
}

static void on_write_synced(uv_work_t *w, int status)
{
    struct pool_io *p = container_of(w, struct pool_io, work);
    p->busy = false;
    p->cb(status < 0 ? status : p->result, p->cb_data);
}

static int pool_write_sync(struct eventlog_io *io, int fd, uint64_t off, const void *buf,
                           size_t len, eventlog_io_cb *cb, void *data)
{
    struct pool_io *p = (struct pool_io *)io;
    if (p->busy)
        return -EBUSY;
    *p = (struct pool_io){p->base, p->work, true, fd, off, buf, len, 0, cb, data};
    int rc = uv_queue_work(io->loop, &p->work, do_write_sync, on_write_synced);
    if (rc < 0)
        p->busy = false;
    return rc;
}

static void pool_close(struct eventlog_io *io, void (*on_closed)(void *), void *data)
{
    free(io); /* the log closes only with nothing in flight */
    if (on_closed)
        on_closed(data);
}

static const struct eventlog_io_ops pool_ops = {"threadpool", pool_write_sync, pool_close};

int eventlog_threadpool_open(struct eventlog_io **out, uv_loop_t *loop)
{
    struct pool_io *p = xcalloc(1, sizeof(*p));
    p->base = (struct eventlog_io){&pool_ops, loop};
    *out = &p->base;
    return 0;
}
