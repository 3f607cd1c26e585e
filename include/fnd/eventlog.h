/*
 * The event log: an append-only, checksummed, group-committed record log in
 * <data>/eventlog/, the durable memory of async invocations (docs/eventlog.md).
 *
 * - Records (type, payload) get consecutive sequence numbers and are framed with their
 *   length and a CRC32C over header and payload. Segments are preallocated files of
 *   segment_size bytes, named after their first sequence number, rotated when full.
 * - Group commit: records appended while a flush is in flight form the next batch,
 *   written and fdatasync'ed together. An append's callback runs only once its record
 *   is durable (or with the error that made the log read-only); callbacks run in
 *   append order, on the loop thread, never from inside eventlog_append.
 * - I/O goes through one backend chosen at open: io_uring (linked write + fdatasync,
 *   completions through an eventfd polled by the loop) or the libuv threadpool
 *   (pwritev + fdatasync); "faulty" injects short writes and errors for tests.
 * - A write or fdatasync error latches the log read-only: every pending and later
 *   append fails with that error (-EIO, -ENOSPC, ...). ENOSPC is probed every second
 *   and the log continues in a fresh segment once space returns.
 * - Recovery at open replays every valid record in order, truncates a torn tail of
 *   the last segment and refuses (-EBADMSG) corruption followed by valid data unless
 *   repair is set, which keeps a copy of the damaged segment and cuts it there.
 */
#ifndef FND_EVENTLOG_H
#define FND_EVENTLOG_H

#include "fnd/common.h"

#include <uv.h>

#define EVENTLOG_RECORD_MAX (16 * 1024 * 1024) /* largest payload, before segment bounds */

struct eventlog;

/* Knobs of the "faulty" backend, owned by the test and read at every write. */
struct eventlog_faults {
    size_t short_write_max; /* each write call writes at most this many bytes; 0 = all */
    int fail_sync_after;    /* fdatasync calls that succeed before one returns sync_error */
    int sync_error;         /* e.g. EIO; 0 = never fail */
    int write_error;        /* every write fails with this errno while set (e.g. ENOSPC) */
};

struct eventlog_options {
    const char *dir;            /* the log's folder, created if missing */
    uint64_t segment_size;      /* bytes per preallocated segment */
    const char *backend;        /* "auto", "uring", "threadpool" or "faulty" */
    bool repair;                /* cut corruption out instead of refusing to open */
    struct eventlog_faults *faults; /* "faulty" only */
};

/* Called once per valid record during eventlog_open, in sequence order. The payload
 * is valid only during the call. */
typedef void eventlog_replay_fn(uint32_t type, uint64_t seq, struct slice payload, void *data);
/* status 0 once the record is durable, else the negative errno that latched the log. */
typedef void eventlog_append_cb(int status, void *data);
/* After a rotation: the owner may append a checkpoint (a full image of its live state)
 * from inside the call; returns true if it did, so that every older segment is deleted
 * once those records are durable. */
typedef bool eventlog_rotate_fn(void *data);

/* Opens (creating) the log, recovers it and calls replay for every record. Returns 0,
 * -EBADMSG for corruption that needs repair, -ENOSYS/-EPERM/-ENOMEM when the forced
 * "uring" backend is unavailable, or another negative errno; err says what failed. */
int eventlog_open(struct eventlog **out, uv_loop_t *loop, const struct eventlog_options *opts,
                  eventlog_replay_fn *replay, void *data, char *err, size_t errsize);
/* Where checkpoints are requested; set once after open. */
void eventlog_set_rotate(struct eventlog *log, eventlog_rotate_fn *fn, void *data);
/* Flushes what is pending (callbacks run), then frees the log; on_closed runs last. */
void eventlog_close(struct eventlog *log, void (*on_closed)(void *), void *data);

/* Appends one record (payload copied). Returns 0 and later calls cb exactly once; or
 * without calling cb: -E2BIG when the payload passes eventlog_record_max(), or the
 * latched error (-EIO, -ENOSPC, ...) when the log is read-only. cb may be NULL. */
int eventlog_append(struct eventlog *log, uint32_t type, const void *payload, size_t len,
                    eventlog_append_cb *cb, void *data);
/* Calls cb once every record appended before it is durable; no record is written.
 * Same returns as eventlog_append. */
int eventlog_barrier(struct eventlog *log, eventlog_append_cb *cb, void *data);

/* 0 while writable, else the negative errno that latched the log read-only. */
int eventlog_error(const struct eventlog *log);
size_t eventlog_record_max(const struct eventlog *log);
/* The backend in use: "uring", "threadpool" or "faulty". */
const char *eventlog_backend(const struct eventlog *log);
/* Bytes of records written since the last checkpoint (or since open). */
uint64_t eventlog_bytes_since_checkpoint(const struct eventlog *log);
/* Counters for stats and benchmarks: records, flushes (fdatasyncs), segments on disk. */
void eventlog_counters(const struct eventlog *log, uint64_t *records, uint64_t *flushes,
                       uint64_t *segments);

#endif
