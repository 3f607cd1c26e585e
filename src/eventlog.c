/*
 * The event log (include/fnd/eventlog.h, docs/eventlog.md): append-only segments of
 * CRC32C-framed records, group-committed through one I/O backend, recovered at open.
 *
 * On disk: <dir>/<first-seq as 16 hex digits>.seg, each preallocated to the segment
 * size, starting with a 32-byte header (magic, version, CRC, first sequence number,
 * size) followed by records: a 24-byte header (CRC32C, payload length, sequence
 * number, type, flags) and the payload. The only flag is REC_FLAG_BRIDGE: a record
 * repair wrote where it cut a middle segment, never replayed, whose type field counts
 * the records it stands for (those lost between the cut and the next segment). The CRC covers the header after its own field
 * and the payload. All integers are little-endian (the host's: fnd targets x86-64 and
 * arm64 Linux). Unused space is zeros.
 *
 * Writing: appends are encoded into the newest pending batch. Batches form a FIFO;
 * only its head is ever written, so while one write+fdatasync is in flight, every
 * append lands in the next batch, and that whole batch goes out in the next single
 * write+fdatasync (group commit). A batch never spans segments: a record that does not
 * fit seals the batch, a new segment is created and preallocated, and its header
 * travels in front of the first batch written to it. Callbacks run when their batch
 * is durable, in order. Flushes start from an idle handle, so every append made in one
 * loop iteration joins the same batch and no callback runs inside eventlog_append.
 *
 * Errors: a failed write or fdatasync fails every pending batch with that error and
 * latches the log read-only; nothing is acknowledged that is not durable. Sequence
 * numbers rewind to the last durable record. After ENOSPC a timer probes every second
 * by creating a new segment; once that works the log continues there. A reader ignores
 * records of an earlier segment whose numbers the next segment's header says were
 * reused, so bytes of a failed batch never come back.
 *
 * Recovery: segments are scanned in order, every record's length, CRC and sequence
 * number checked. The first invalid record ends the data of the last segment if no
 * valid record follows it (a torn tail: cut off and zeroed; a tail of preallocated
 * zeros is the normal case). An invalid record followed by valid ones, a gap between
 * segments or a bad header in a middle segment is corruption: open refuses with
 * -EBADMSG unless repair is set, which copies the segment to <name>.damaged-<ms> and
 * cuts it at the bad record (later records of that segment are lost), writing a
 * bridge record there for the lost sequence numbers when a later segment follows; a
 * damaged header is rewritten from the file's name. A repaired log opens again
 * without repair: replay then skips the lost numbers. A last segment
 * whose header is unreadable was being created when the daemon died and is removed.
 *
 * Checkpoints: after each rotation the owner may append an image of its live state;
 * once that is durable, every older segment is deleted, which bounds disk use and
 * recovery time by the live state rather than by history.
 *
 * NEEDSWORK: creating a segment (open, fallocate, directory fsync) and deleting old
 * ones run on the loop thread, once per segment; they could move to the threadpool.
 */
#include "fnd/eventlog.h"

#include "fnd/buf.h"
#include "fnd/eventlog_io.h"
#include "fnd/list.h"
#include "fnd/log.h"
#include "fnd/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEG_MAGIC "FNDEVLG1"
#define SEG_VERSION 1
#define SEG_HDR_SIZE 32
#define REC_HDR_SIZE 24
#define REC_FLAG_BRIDGE 1u /* written by repair: skips `type` sequence numbers */
#define PROBE_MS 1000
/* How far past the expected sequence number a record found after a bad one may be
 * and still prove that valid data follows the damage. */
#define SCAN_SEQ_WINDOW (UINT64_C(1) << 32)

struct segment {
    uint64_t first_seq;
    uint64_t size; /* bytes of the file (its preallocation) */
    int fd;        /* open for writing while it is the newest or a batch targets it */
    unsigned batches;
};

struct waiter {
    eventlog_append_cb *cb;
    void *data;
};

struct batch {
    struct list_node link;
    struct segment *seg;
    uint64_t off;   /* where bytes[0] goes in the segment */
    struct buf bytes;
    size_t done;    /* bytes already written (a short write leaves the rest) */
    struct waiter *waiters;
    size_t nwaiters, capwaiters;
    uint64_t last_seq; /* highest sequence number in the batch; 0 = none */
    bool sealed;       /* no more appends: it is being written or a rotation closed it */
};

struct eventlog {
    uv_loop_t *loop;
    struct eventlog_io *io;
    char *dir;
    int dirfd;
    uint64_t segment_size;
    size_t record_max;
    struct segment **segs; /* on disk, oldest first; the last one is being appended to */
    size_t nsegs;
    uint64_t tail_off;     /* end of the data queued for the newest segment */
    uint64_t next_seq;     /* given to the next record */
    uint64_t durable_seq;  /* every record up to this one is durable */
    struct list_node batches;
    uint64_t write_started_us; /* when the batch in flight went to the backend (metrics) */
    bool in_flight;
    int error; /* latched: 0 or a negative errno */
    bool repair_mode;
    uv_idle_t idle;
    uv_timer_t probe;
    eventlog_rotate_fn *on_rotate;
    void *rotate_data;
    bool in_rotate;
    bool ckpt_pending;     /* delete segments before ckpt_cut once ckpt_last is durable */
    uint64_t ckpt_cut, ckpt_last;
    uint64_t bytes_since_ckpt;
    uint64_t nrecords, nflushes;
    bool closing;
    int open_handles;
    void (*on_closed)(void *);
    void *closed_data;
};

static uint32_t crc32c(const void *data, size_t len, uint32_t crc)
{
    return crc32_iscsi((unsigned char *)data, (int)len, crc);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

static uint32_t record_crc(const unsigned char *hdr, const void *payload, size_t len)
{
    return crc32c(payload, len, crc32c(hdr + 4, REC_HDR_SIZE - 4, 0xFFFFFFFFu));
}

static void encode_seg_header(unsigned char h[SEG_HDR_SIZE], uint64_t first_seq, uint64_t size)
{
    memcpy(h, SEG_MAGIC, 8); // NOLINT(bugprone-not-null-terminated-result): 8 bytes, no NUL on disk
    put32(h + 8, SEG_VERSION);
    put64(h + 16, first_seq);
    put64(h + 24, size);
    put32(h + 12, crc32c(h + 16, SEG_HDR_SIZE - 16, 0xFFFFFFFFu));
}

static bool seg_header_valid(const unsigned char *h, size_t size, uint64_t name_seq)
{
    return size >= SEG_HDR_SIZE && memcmp(h, SEG_MAGIC, 8) == 0 &&
           get32(h + 8) == SEG_VERSION &&
           get32(h + 12) == crc32c(h + 16, SEG_HDR_SIZE - 16, 0xFFFFFFFFu) &&
           get64(h + 16) == name_seq;
}

static char *seg_path(const struct eventlog *log, uint64_t first_seq)
{
    return xasprintf("%s/%016" PRIx64 ".seg", log->dir, first_seq);
}

static bool all_zero(const unsigned char *p, size_t len)
{
    /* Zero first byte, and every byte equal to the one before it. */
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* --- backends ---------------------------------------------------------------------- */

/* The one place a backend is chosen. */
static int open_backend(struct eventlog *log, const struct eventlog_options *opts, char *err,
                        size_t errsize)
{
    const char *want = opts->backend ? opts->backend : "auto";
    int rc;
    if (strcmp(want, "threadpool") == 0) {
        rc = eventlog_threadpool_open(&log->io, log->loop);
    } else if (strcmp(want, "faulty") == 0) {
        rc = eventlog_faulty_open(&log->io, log->loop, opts->faults);
    } else if (strcmp(want, "uring") == 0 || strcmp(want, "auto") == 0) {
        rc = eventlog_uring_open(&log->io, log->loop);
        if (rc < 0 && strcmp(want, "auto") == 0 &&
            (rc == -ENOSYS || rc == -EPERM || rc == -ENOMEM)) {
            log_warn("io_uring unavailable", "err=\"%s\" effect=\"event log on the threadpool\"",
                     strerror(-rc));
            rc = eventlog_threadpool_open(&log->io, log->loop);
        }
    } else {
        snprintf(err, errsize, "unknown event log backend %s (auto, uring or threadpool)", want);
        return -EINVAL;
    }
    if (rc < 0)
        snprintf(err, errsize, "event log backend %s: %s", want, strerror(-rc));
    return rc;
}

/* --- segments ---------------------------------------------------------------------- */

static void segment_free(struct segment *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

/* Creates, preallocates and makes visible a new segment starting at next_seq; the
 * header is queued as the first bytes of its first batch. */
static int segment_create(struct eventlog *log, struct segment **out)
{
    char *path = seg_path(log, log->next_seq);
    int rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (fallocate(fd, 0, 0, (off_t)log->segment_size) < 0) {
        rc = -errno;
        /* A file system without preallocation still works, only with more metadata
         * to sync per batch. */
        if (rc != -EOPNOTSUPP || ftruncate(fd, (off_t)log->segment_size) < 0)
            goto fail;
    }
    if (fsync(log->dirfd) < 0) {
        rc = -errno;
        goto fail;
    }
    struct segment *s = xcalloc(1, sizeof(*s));
    *s = (struct segment){log->next_seq, log->segment_size, fd, 0};
    *out = s;
    free(path);
    return 0;

fail:
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    log_error("event log segment creation failed", "path=%s err=\"%s\"", path, strerror(-rc));
    free(path);
    return rc;
}

static struct batch *batch_new(struct eventlog *log, struct segment *seg, uint64_t off)
{
    struct batch *b = xcalloc(1, sizeof(*b));
    b->seg = seg;
    b->off = off;
    buf_init(&b->bytes, 0);
    seg->batches++; // NOLINT(clang-analyzer-core.NullDereference): callers pass a segment
    list_push_back(&log->batches, &b->link);
    return b;
}

/* The batch appends go to: the newest one if it is open and targets the newest
 * segment. */
static struct batch *filling_batch(struct eventlog *log)
{
    struct segment *cur = log->segs[log->nsegs - 1];
    if (!list_empty(&log->batches)) {
        struct batch *b = container_of(log->batches.prev, struct batch, link);
        if (!b->sealed && b->seg == cur)
            return b;
    }
    return batch_new(log, cur, log->tail_off);
}

static void seal_filling(struct eventlog *log)
{
    if (!list_empty(&log->batches))
        container_of(log->batches.prev, struct batch, link)->sealed = true;
}

/* Switches appends to a new segment and offers the owner a checkpoint. */
static int rotate(struct eventlog *log)
{
    struct segment *s = NULL;
    int rc = segment_create(log, &s);
    if (rc < 0)
        return rc;
    seal_filling(log);
    struct segment *prev = log->nsegs ? log->segs[log->nsegs - 1] : NULL;
    log->segs = xrealloc(log->segs, (log->nsegs + 1) * sizeof(*log->segs));
    log->segs[log->nsegs++] = s;
    if (prev && prev->batches == 0) {
        close(prev->fd);
        prev->fd = -1;
    }
    struct batch *b = batch_new(log, s, 0);
    unsigned char h[SEG_HDR_SIZE];
    encode_seg_header(h, s->first_seq, s->size);
    buf_append(&b->bytes, h, sizeof(h));
    log->tail_off = SEG_HDR_SIZE;
    if (prev && log->on_rotate && !log->in_rotate) {
        log->in_rotate = true;
        uint64_t cut = s->first_seq;
        if (log->on_rotate(log->rotate_data)) {
            log->ckpt_pending = true;
            log->ckpt_cut = cut;
            log->ckpt_last = log->next_seq - 1;
            log->bytes_since_ckpt = 0;
        }
        log->in_rotate = false;
    }
    return 0;
}

/* After a durable checkpoint: older segments hold nothing the owner still needs. */
static void delete_old_segments(struct eventlog *log)
{
    log->ckpt_pending = false;
    size_t keep = 0;
    while (keep < log->nsegs - 1 && log->segs[keep]->first_seq < log->ckpt_cut &&
           log->segs[keep]->batches == 0)
        keep++;
    for (size_t i = 0; i < keep; i++) {
        char *path = seg_path(log, log->segs[i]->first_seq);
        if (unlink(path) < 0)
            log_warn("event log segment delete failed", "path=%s err=\"%s\"", path,
                     strerror(errno));
        free(path);
        segment_free(log->segs[i]);
    }
    if (keep == 0)
        return;
    memmove(log->segs, log->segs + keep, (log->nsegs - keep) * sizeof(*log->segs));
    log->nsegs -= keep;
    fsync(log->dirfd);
    log_debug("event log checkpointed", "deleted_segments=%zu", keep);
}

/* --- flushing ---------------------------------------------------------------------- */

static void on_idle(uv_idle_t *h);

static void kick(struct eventlog *log)
{
    if (!log->in_flight && (!list_empty(&log->batches) || log->closing))
        uv_idle_start(&log->idle, on_idle);
}

/* Removes the head batch and tells its waiters. */
static void complete_head(struct eventlog *log, int status)
{
    struct batch *b = container_of(log->batches.next, struct batch, link);
    list_remove(&b->link);
    if (status == 0 && b->last_seq > log->durable_seq)
        log->durable_seq = b->last_seq;
    struct segment *cur = log->segs[log->nsegs - 1];
    if (--b->seg->batches == 0 && b->seg != cur && b->seg->fd >= 0) {
        close(b->seg->fd);
        b->seg->fd = -1;
    }
    for (size_t i = 0; i < b->nwaiters; i++)
        if (b->waiters[i].cb)
            b->waiters[i].cb(status, b->waiters[i].data);
    buf_release(&b->bytes);
    free(b->waiters);
    free(b);
    if (log->ckpt_pending && log->durable_seq >= log->ckpt_last && status == 0)
        delete_old_segments(log);
}

static void on_probe(uv_timer_t *t);

/* Latches the log read-only and fails everything not yet durable. */
static void fail_all(struct eventlog *log, int err)
{
    if (log->error == 0)
        log_error("event log is read-only", "err=\"%s\" effect=\"async invocations get 503\"",
                  strerror(-err));
    log->error = err;
    while (!list_empty(&log->batches))
        complete_head(log, err);
    log->next_seq = log->durable_seq + 1;
    if (err == -ENOSPC && !log->closing)
        uv_timer_start(&log->probe, on_probe, PROBE_MS, PROBE_MS);
}

static void on_written(long res, void *data)
{
    struct eventlog *log = data;
    log->in_flight = false;
    if (res < 0) {
        fail_all(log, (int)res);
    } else {
        struct batch *b = container_of(log->batches.next, struct batch, link);
        b->done += (size_t)res;
        metrics_observe(METRIC_EVENTLOG_FSYNC_DURATION,
                        (double)(clock_mono_us() - log->write_started_us) / 1e6, NULL, NULL);
        if (b->done == b->bytes.len) {
            log->nflushes++;
            complete_head(log, 0);
        }
    }
    kick(log);
}

static void finish_close(struct eventlog *log);

static void on_idle(uv_idle_t *h)
{
    struct eventlog *log = container_of(h, struct eventlog, idle);
    uv_idle_stop(h);
    while (!log->in_flight && !list_empty(&log->batches)) {
        struct batch *b = container_of(log->batches.next, struct batch, link);
        b->sealed = true;
        if (b->done == b->bytes.len) { /* only barriers: nothing to write */
            complete_head(log, 0);
            continue;
        }
        log->write_started_us = clock_mono_us();
        int rc = log->io->ops->write_sync(log->io, b->seg->fd, b->off + b->done,
                                          b->bytes.data + b->done, b->bytes.len - b->done,
                                          on_written, log);
        if (rc < 0)
            fail_all(log, rc);
        else
            log->in_flight = true;
    }
    if (log->closing && !log->in_flight && list_empty(&log->batches))
        finish_close(log);
}

/* ENOSPC: space is back once a new segment can be preallocated. */
static void on_probe(uv_timer_t *t)
{
    struct eventlog *log = container_of(t, struct eventlog, probe);
    if (log->in_flight || log->error != -ENOSPC)
        return;
    if (rotate(log) == 0) {
        uv_timer_stop(t);
        log->error = 0;
        log_info("event log is writable again", "segment=%016" PRIx64,
                 log->segs[log->nsegs - 1]->first_seq);
        kick(log);
    }
}

/* --- appending --------------------------------------------------------------------- */

static struct batch *reserve(struct eventlog *log, size_t need, int *rc)
{
    if (log->error) {
        *rc = log->error;
        return NULL;
    }
    if (log->tail_off + need > log->segs[log->nsegs - 1]->size) {
        *rc = rotate(log);
        if (*rc < 0) {
            /* Nothing of this record was queued; what is queued still completes. */
            if (log->error == 0)
                log_error("event log is read-only", "err=\"%s\" effect=\"async invocations "
                          "get 503\"", strerror(-*rc));
            log->error = *rc;
            if (*rc == -ENOSPC)
                uv_timer_start(&log->probe, on_probe, PROBE_MS, PROBE_MS);
            return NULL;
        }
        if (log->error) { /* a checkpoint append inside the rotation failed */
            *rc = log->error;
            return NULL;
        }
    }
    return filling_batch(log);
}

static void add_waiter(struct batch *b, eventlog_append_cb *cb, void *data)
{
    if (b->nwaiters == b->capwaiters) {
        b->capwaiters = b->capwaiters ? b->capwaiters * 2 : 16;
        b->waiters = xrealloc(b->waiters, b->capwaiters * sizeof(*b->waiters));
    }
    b->waiters[b->nwaiters++] = (struct waiter){cb, data};
}

int eventlog_append(struct eventlog *log, uint32_t type, const void *payload, size_t len,
                    eventlog_append_cb *cb, void *data)
{
    if (log->closing)
        return -ECANCELED;
    if (len > log->record_max)
        return -E2BIG;
    int rc = 0;
    struct batch *b = reserve(log, REC_HDR_SIZE + len, &rc);
    if (b == NULL)
        return rc;
    unsigned char h[REC_HDR_SIZE];
    uint64_t seq = log->next_seq++;
    put32(h + 4, (uint32_t)len);
    put64(h + 8, seq);
    put32(h + 16, type);
    put32(h + 20, 0);
    put32(h, record_crc(h, payload, len));
    buf_append(&b->bytes, h, sizeof(h));
    if (len)
        buf_append(&b->bytes, payload, len);
    b->last_seq = seq;
    add_waiter(b, cb, data);
    log->tail_off += REC_HDR_SIZE + len;
    log->bytes_since_ckpt += REC_HDR_SIZE + len;
    log->nrecords++;
    metrics_inc(METRIC_EVENTLOG_APPENDS, NULL, NULL);
    metrics_add(METRIC_EVENTLOG_BYTES, (double)(REC_HDR_SIZE + len), NULL, NULL);
    kick(log);
    return 0;
}

int eventlog_barrier(struct eventlog *log, eventlog_append_cb *cb, void *data)
{
    if (log->closing)
        return -ECANCELED;
    if (log->error)
        return log->error;
    add_waiter(filling_batch(log), cb, data);
    kick(log);
    return 0;
}

/* --- recovery ---------------------------------------------------------------------- */

struct scan {
    struct eventlog *log;
    eventlog_replay_fn *replay;
    void *data;
    char *err;
    size_t errsize;
};

/* Whether a valid record numbered after expected starts anywhere in p[from, size). */
static bool valid_record_follows(const struct eventlog *log, const unsigned char *p,
                                 size_t from, size_t size, uint64_t expected)
{
    for (size_t o = from; o + REC_HDR_SIZE <= size; o++) {
        uint64_t seq = get64(p + o + 8);
        if (seq <= expected || seq - expected > SCAN_SEQ_WINDOW)
            continue;
        uint32_t len = get32(p + o + 4);
        if (len > log->record_max || o + REC_HDR_SIZE + len > size)
            continue;
        if (get32(p + o) == record_crc(p + o, p + o + REC_HDR_SIZE, len))
            return true;
    }
    return false;
}

/* Whether p[from, size) is all zeros. Ranges the file system reports as holes or
 * unwritten preallocation (SEEK_DATA) are zeros without reading them: a mostly
 * empty 64 MiB segment costs a few system calls, not 16k page faults. */
static bool rest_is_zero(int fd, const unsigned char *p, size_t from, size_t size)
{
    size_t pos = from;
    while (pos < size) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0)
            return errno == ENXIO || all_zero(p + pos, size - pos);
        if ((size_t)d >= size)
            return true;
        off_t h = lseek(fd, d, SEEK_HOLE);
        size_t end = h < 0 || (size_t)h > size ? size : (size_t)h;
        if ((size_t)d < pos)
            d = (off_t)pos;
        if (!all_zero(p + d, end - (size_t)d))
            return false;
        pos = end;
    }
    return true;
}

/* Keeps a copy of a damaged segment before repair changes it. */
static int keep_damaged_copy(const char *path, char *copy, size_t copysize)
{
    snprintf(copy, copysize, "%s.damaged-%" PRId64, path, clock_wall_ms());
    int in = open(path, O_RDONLY | O_CLOEXEC);
    int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (out < 0 && errno == EEXIST)
        goto done; /* kept this millisecond, before an earlier repair step of this open */
    if (in < 0 || out < 0) {
        rc = -errno;
        goto done;
    }
    char chunk[65536];
    ssize_t n;
    while ((n = read(in, chunk, sizeof(chunk))) > 0) {
        if (write(out, chunk, (size_t)n) != n) {
            rc = -EIO;
            goto done;
        }
    }
    if (n < 0 || fsync(out) < 0)
        rc = -errno;
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Cuts a segment at off: what follows becomes zeros again. */
static int cut_segment(const char *path, uint64_t off, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (ftruncate(fd, (off_t)off) < 0 ||
        (fallocate(fd, 0, 0, (off_t)size) < 0 && ftruncate(fd, (off_t)size) < 0) ||
        fdatasync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Gives a segment whose header is damaged a fresh one for first_seq, its file at least
 * min_size bytes (a header needs room), keeping the rest of the file. */
static int rewrite_header(const char *path, uint64_t first_seq, uint64_t min_size)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct stat st;
    unsigned char h[SEG_HDR_SIZE];
    if (fstat(fd, &st) < 0 ||
        ((uint64_t)st.st_size < min_size && ftruncate(fd, (off_t)min_size) < 0)) {
        rc = -errno;
        goto done;
    }
    encode_seg_header(h, first_seq, FND_MAX((uint64_t)st.st_size, min_size));
    if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || fdatasync(fd) < 0)
        rc = errno ? -errno : -EIO;
done:
    close(fd);
    return rc;
}

/* Writes a bridge record at off of a middle segment that repair cut: it stands for the
 * count records lost between the cut and the next segment, so that the repaired log
 * opens again without repair instead of finding that gap. */
static int write_bridge(const char *path, uint64_t off, uint64_t seq, uint64_t count,
                        uint64_t size)
{
    if (count > UINT32_MAX || off + REC_HDR_SIZE > size)
        return -EBADMSG; /* only crafted names jump so far; nothing to bridge with */
    unsigned char h[REC_HDR_SIZE];
    put32(h + 4, 0);
    put64(h + 8, seq);
    put32(h + 16, (uint32_t)count);
    put32(h + 20, REC_FLAG_BRIDGE);
    put32(h, record_crc(h, h, 0));
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (pwrite(fd, h, sizeof(h), (off_t)off) != (ssize_t)sizeof(h) || fdatasync(fd) < 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    return rc;
}

/* Scans one mapped segment from its header on; returns the sequence number after its
 * last record through *end_seq and the offset after it through *end_off. -EBADMSG on
 * corruption (err says where) unless repair cut it. */
static int scan_segment(struct scan *sc, struct segment *s, int fd, const unsigned char *p,
                        size_t size, uint64_t cutoff, bool last, uint64_t *end_seq,
                        uint64_t *end_off)
{
    struct eventlog *log = sc->log;
    uint64_t expected = s->first_seq;
    size_t off = SEG_HDR_SIZE;
    bool bad = false;
    while (off + REC_HDR_SIZE <= size && expected < cutoff) {
        const unsigned char *h = p + off;
        uint32_t len = get32(h + 4);
        if (len <= log->record_max && off + REC_HDR_SIZE + len <= size &&
            get64(h + 8) == expected && get32(h) == record_crc(h, h + REC_HDR_SIZE, len)) {
            off += REC_HDR_SIZE + len;
            if (get32(h + 20) & REC_FLAG_BRIDGE) { /* lost records a repair accounted for */
                expected += FND_MAX(get32(h + 16), 1u);
                continue;
            }
            sc->replay(get32(h + 16), expected, (struct slice){(const char *)h + REC_HDR_SIZE, len},
                       sc->data);
            expected++;
            continue;
        }
        /* The end of the data: zeros (the preallocation), a torn last write, or damage
         * if valid records follow. */
        if (!rest_is_zero(fd, p, off, size))
            bad = valid_record_follows(log, p, off + 1, size, expected);
        break;
    }
    bool rest_zero = off >= size || rest_is_zero(fd, p, off, size);
    if (off + REC_HDR_SIZE > size && !rest_zero && !last)
        bad = true; /* a torn fragment at the very end of a middle segment */
    if (!bad && !last && expected != cutoff)
        bad = true; /* records between this segment and the next are missing */
    char *path = seg_path(log, s->first_seq);
    int rc = 0;
    if (bad) {
        if (!log->repair_mode) {
            snprintf(sc->err, sc->errsize, "%s: damaged record at offset %zu (sequence %" PRIu64
                     ") before valid data; start with --repair to cut it out (a copy is kept)",
                     path, off, expected);
            rc = -EBADMSG;
            goto done;
        }
        char copy[PATH_MAX];
        rc = keep_damaged_copy(path, copy, sizeof(copy));
        if (rc == 0)
            rc = cut_segment(path, off, s->size);
        bool bridged = false;
        if (rc == 0 && !last && expected < cutoff) {
            rc = write_bridge(path, off, expected, cutoff - expected, s->size);
            bridged = rc == 0;
        }
        if (rc < 0) {
            snprintf(sc->err, sc->errsize, "repair of %s: %s", path, strerror(-rc));
            goto done;
        }
        log_warn("event log repaired", "path=%s offset=%zu sequence=%" PRIu64 " copy=%s", path,
                 off, expected, copy);
        if (bridged)
            expected = cutoff; /* the next segment follows the bridge */
    } else if (last && !rest_zero) {
        rc = cut_segment(path, off, s->size);
        if (rc < 0) {
            snprintf(sc->err, sc->errsize, "truncating the torn tail of %s: %s", path,
                     strerror(-rc));
            goto done;
        }
        log_warn("event log torn tail truncated", "path=%s offset=%zu sequence=%" PRIu64, path,
                 off, expected);
    } else if (last && size < s->size) {
        rc = cut_segment(path, off, s->size); /* a shortened file gets its zeros back */
    }
    *end_seq = expected;
    *end_off = off;
done:
    free(path);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment files of the folder by first sequence number. */
static int list_segments(struct eventlog *log, uint64_t **out, size_t *n)
{
    DIR *d = opendir(log->dir);
    if (d == NULL)
        return -errno;
    uint64_t *seqs = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        unsigned long long seq = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16 || strcmp(end, ".seg") != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            seqs = xrealloc(seqs, cap * sizeof(*seqs));
        }
        seqs[count++] = seq;
    }
    closedir(d);
    if (count)
        qsort(seqs, count, sizeof(*seqs), cmp_u64);
    *out = seqs;
    *n = count;
    return 0;
}

static int recover(struct eventlog *log, eventlog_replay_fn *replay, void *data, char *err,
                   size_t errsize)
{
    uint64_t *seqs = NULL;
    size_t n = 0;
    int rc = list_segments(log, &seqs, &n);
    if (rc < 0) {
        snprintf(err, errsize, "reading %s: %s", log->dir, strerror(-rc));
        return rc;
    }
    /* A last segment without a valid header was being created when the daemon died:
     * it never held a record. */
    while (n > 0) {
        char *path = seg_path(log, seqs[n - 1]);
        unsigned char h[SEG_HDR_SIZE];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? pread(fd, h, sizeof(h), 0) : -1;
        if (fd >= 0)
            close(fd);
        bool valid = got == (ssize_t)sizeof(h) && seg_header_valid(h, sizeof(h), seqs[n - 1]);
        if (!valid && fd >= 0) {
            log_warn("event log removing unfinished segment", "path=%s", path);
            unlink(path);
            n--;
        }
        free(path);
        break;
    }
    struct scan sc = {log, replay, data, err, errsize};
    uint64_t end_seq = 1, end_off = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = seg_path(log, seqs[i]);
        bool last = i + 1 == n;
        int fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            rc = -errno;
            snprintf(err, errsize, "opening %s: %s", path, strerror(-rc));
            if (fd >= 0)
                close(fd);
            free(path);
            break;
        }
        size_t size = (size_t)st.st_size;
        void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        if (map == MAP_FAILED) {
            rc = -errno;
            snprintf(err, errsize, "mapping %s: %s", path, strerror(-rc));
            close(fd);
            free(path);
            break;
        }
        if (!seg_header_valid(map, size, seqs[i])) {
            if (map)
                munmap(map, size);
            close(fd);
            if (!log->repair_mode) {
                snprintf(err, errsize, "%s: damaged segment header; start with --repair to "
                         "rewrite it (a copy is kept)", path);
                rc = -EBADMSG;
                free(path);
                break;
            }
            /* Its name says where it starts: a fresh header keeps its records, which the
             * scan then checks one by one. Setting it aside instead would leave a gap
             * that the next open without repair refuses. */
            char copy[PATH_MAX];
            rc = keep_damaged_copy(path, copy, sizeof(copy));
            if (rc == 0)
                rc = rewrite_header(path, seqs[i], log->segment_size);
            if (rc < 0) {
                snprintf(err, errsize, "repair of %s: %s", path, strerror(-rc));
                free(path);
                break;
            }
            log_warn("event log repaired", "path=%s header=rewritten copy=%s", path, copy);
            free(path);
            i--; /* scan it again (wraps to 0 from 0: i is unsigned) */
            continue;
        }
        free(path);
        struct segment *s = xcalloc(1, sizeof(*s));
        *s = (struct segment){seqs[i], FND_MAX(get64((const unsigned char *)map + 24), size), -1,
                              0};
        if (s->size > (uint64_t)1 << 40)
            s->size = size;
        uint64_t cutoff = last ? UINT64_MAX : seqs[i + 1];
        rc = scan_segment(&sc, s, fd, map, size, cutoff, last, &end_seq, &end_off);
        munmap(map, size);
        if (last && rc == 0)
            s->fd = fd;
        else
            close(fd);
        log->segs = xrealloc(log->segs, (log->nsegs + 1) * sizeof(*log->segs));
        log->segs[log->nsegs++] = s;
    }
    free(seqs);
    if (rc < 0)
        return rc;
    log->next_seq = end_seq;
    log->durable_seq = end_seq - 1;
    log->tail_off = end_off;
    if (log->nsegs == 0 || log->segs[log->nsegs - 1]->fd < 0) {
        /* Nothing usable to append to (a fresh log, or the last segment was removed):
         * start a new one. */
        rc = rotate(log);
        if (rc == -ENOSPC) {
            /* A full disk is no reason to refuse to serve: start read-only (async
             * refused, sync served), and the probe opens the log when space returns. */
            log_error("event log is read-only", "err=\"%s\" effect=\"async invocations get "
                      "503\"", strerror(-rc));
            log->error = rc;
            rc = 0;
        } else if (rc < 0) {
            snprintf(err, errsize, "creating a segment in %s: %s", log->dir, strerror(-rc));
        }
    }
    return rc;
}

/* --- open and close ---------------------------------------------------------------- */

static uint64_t cpu_time_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int eventlog_open(struct eventlog **out, uv_loop_t *loop, const struct eventlog_options *opts,
                  eventlog_replay_fn *replay, void *data, char *err, size_t errsize)
{
    struct eventlog *log = xcalloc(1, sizeof(*log));
    log->loop = loop;
    log->dir = xstrdup(opts->dir);
    log->dirfd = -1;
    log->segment_size = opts->segment_size;
    log->repair_mode = opts->repair;
    log->record_max = FND_MIN((size_t)EVENTLOG_RECORD_MAX,
                              (size_t)(opts->segment_size - SEG_HDR_SIZE - REC_HDR_SIZE));
    list_init(&log->batches);
    int rc;
    if (opts->segment_size < 4096) {
        snprintf(err, errsize, "event log segments must be at least 4 KiB");
        rc = -EINVAL;
        goto fail;
    }
    if (mkdir(log->dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errsize, "creating %s: %s", log->dir, strerror(errno));
        goto fail;
    }
    log->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dirfd < 0) {
        rc = -errno;
        snprintf(err, errsize, "opening %s: %s", log->dir, strerror(errno));
        goto fail;
    }
    uint64_t t0 = clock_mono_us(), cpu0 = cpu_time_us();
    rc = recover(log, replay, data, err, errsize);
    if (rc < 0)
        goto fail;
    /* CPU time beside wall time: on a shared machine the wall clock includes waiting. */
    double recovery_ms = (double)(clock_mono_us() - t0) / 1000.0;
    double recovery_cpu_ms = (double)(cpu_time_us() - cpu0) / 1000.0;
    rc = open_backend(log, opts, err, errsize);
    if (rc < 0)
        goto fail;
    uv_idle_init(loop, &log->idle);
    uv_timer_init(loop, &log->probe);
    log->open_handles = 2;
    if (log->error == -ENOSPC)
        uv_timer_start(&log->probe, on_probe, PROBE_MS, PROBE_MS);
    metrics_set(METRIC_EVENTLOG_BACKEND, 1, log->io->ops->name, NULL);
    log_info("event log open", "backend=%s dir=%s segments=%zu next_seq=%" PRIu64
             " recovery_ms=%.1f recovery_cpu_ms=%.1f", log->io->ops->name, log->dir, log->nsegs,
             log->next_seq, recovery_ms, recovery_cpu_ms);
    *out = log;
    return 0;

fail:
    for (size_t i = 0; i < log->nsegs; i++)
        segment_free(log->segs[i]);
    free(log->segs);
    if (log->dirfd >= 0)
        close(log->dirfd);
    free(log->dir);
    free(log);
    return rc;
}

void eventlog_set_rotate(struct eventlog *log, eventlog_rotate_fn *fn, void *data)
{
    log->on_rotate = fn;
    log->rotate_data = data;
}

static void free_log(struct eventlog *log)
{
    for (size_t i = 0; i < log->nsegs; i++)
        segment_free(log->segs[i]);
    free(log->segs);
    if (log->dirfd >= 0)
        close(log->dirfd);
    void (*on_closed)(void *) = log->on_closed;
    void *data = log->closed_data;
    free(log->dir);
    free(log);
    if (on_closed)
        on_closed(data);
}

static void on_io_closed(void *data)
{
    free_log(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct eventlog *log = h->data;
    if (--log->open_handles == 0)
        log->io->ops->close(log->io, on_io_closed, log);
}

static void finish_close(struct eventlog *log)
{
    uv_timer_stop(&log->probe);
    log->idle.data = log->probe.data = log;
    uv_close((uv_handle_t *)&log->idle, on_handle_closed);
    uv_close((uv_handle_t *)&log->probe, on_handle_closed);
}

void eventlog_close(struct eventlog *log, void (*on_closed)(void *), void *data)
{
    log->on_closed = on_closed;
    log->closed_data = data;
    log->closing = true;
    uv_timer_stop(&log->probe);
    uv_idle_start(&log->idle, on_idle);
}

/* --- queries ----------------------------------------------------------------------- */

int eventlog_error(const struct eventlog *log)
{
    return log->error;
}

size_t eventlog_record_max(const struct eventlog *log)
{
    return log->record_max;
}

const char *eventlog_backend(const struct eventlog *log)
{
    return log->io->ops->name;
}

uint64_t eventlog_bytes_since_checkpoint(const struct eventlog *log)
{
    return log->bytes_since_ckpt;
}

void eventlog_counters(const struct eventlog *log, uint64_t *records, uint64_t *flushes,
                       uint64_t *segments)
{
    *records = log->nrecords;
    *flushes = log->nflushes;
    *segments = log->nsegs;
}
