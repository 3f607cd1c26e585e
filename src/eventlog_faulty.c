/*
 * The event log's fault-injecting backend (include/fnd/eventlog_io.h), for tests
 * only: the threadpool backend's shape, but each operation obeys the test's
 * struct eventlog_faults, read when the operation starts: writes stop short after
 * short_write_max bytes, every write fails with write_error while it is set, and the
 * fdatasync after fail_sync_after successful ones returns sync_error.
 */
#include "fnd/eventlog_io.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct faulty_io {
    struct eventlog_io base;
    struct eventlog_faults *faults;
    uv_work_t work;
    int syncs; /* successful fdatasyncs so far */
    int fd;
    uint64_t off;
    const char *buf;
    size_t len;
    int write_error, sync_error; /* decided on the loop when the operation starts */
    long result;
    eventlog_io_cb *cb;
    void *cb_data;
};

static void do_faulty_write(uv_work_t *w)
{
    struct faulty_io *f = container_of(w, struct faulty_io, work);
    if (f->write_error) {
        f->result = -f->write_error;
        return;
    }
    ssize_t n = pwrite(f->fd, f->buf, f->len, (off_t)f->off);
    if (n <= 0) {
        f->result = n < 0 ? -errno : -EIO;
        return;
    }
    if (f->sync_error)
        f->result = -f->sync_error;
    else
        f->result = fdatasync(f->fd) < 0 ? -errno : (long)n;
}

static void on_faulty_done(uv_work_t *w, int status)
{
    struct faulty_io *f = container_of(w, struct faulty_io, work);
    if (f->result >= 0)
        f->syncs++;
    f->cb(status < 0 ? status : f->result, f->cb_data);
}

static int faulty_write_sync(struct eventlog_io *io, int fd, uint64_t off, const void *buf,
                             size_t len, eventlog_io_cb *cb, void *data)
{
    struct faulty_io *f = (struct faulty_io *)io;
    const struct eventlog_faults *c = f->faults;
    f->fd = fd;
    f->off = off;
    f->buf = buf;
    f->len = c->short_write_max ? FND_MIN(len, c->short_write_max) : len;
    f->write_error = c->write_error;
    f->sync_error = c->sync_error && f->syncs >= c->fail_sync_after ? c->sync_error : 0;
    f->cb = cb;
    f->cb_data = data;
    return uv_queue_work(io->loop, &f->work, do_faulty_write, on_faulty_done);
}

static void faulty_close(struct eventlog_io *io, void (*on_closed)(void *), void *data)
{
    free(io);
    if (on_closed)
        on_closed(data);
}

static const struct eventlog_io_ops faulty_ops = {"faulty", faulty_write_sync, faulty_close};

int eventlog_faulty_open(struct eventlog_io **out, uv_loop_t *loop,
                         struct eventlog_faults *faults)
{
    if (faults == NULL)
        return -EINVAL;
    struct faulty_io *f = xcalloc(1, sizeof(*f));
    f->base = (struct eventlog_io){&faulty_ops, loop};
    f->faults = faults;
    *out = &f->base;
    return 0;
}
