/*
 * Durable async invocations on top of the event log and the controller
 * (docs/eventlog.md). Every API that accepts an async invocation (the native
 * `Prefer: respond-async`, Lambda's `X-Amz-Invocation-Type: Event`) calls
 * async_submit(); sync invocations that carry an Idempotency-Key call
 * async_invoke_sync(). Sync invocations without a key never come here.
 *
 * Guarantees: an accepted invocation's callback runs only after its record is
 * durable (fdatasync completed); from then on it reaches a terminal state even if
 * the daemon is killed at any instant. Execution is at-least-once: an attempt that
 * was running when the daemon died counts as failed and is retried if the function's
 * retry policy allows; every attempt sees the same invocation id (its request id).
 * A terminal state is shown only once it is durable, so an invocation reported
 * succeeded never runs again.
 *
 * Idempotency: within the window, the same function + key + payload returns the
 * first invocation (async: its id; sync: its stored answer) without running it again;
 * the same key with a different payload is refused.
 *
 * Statuses: queued, running, retrying, succeeded, failed, dead_letter. Retries follow
 * the function's `retry` policy (fnconfig.h): function errors, timeouts, crashes and
 * throttles are retried with exponential backoff and jitter; an invocation that runs
 * out of attempts or passes max_event_age_s becomes a dead letter, kept (with its
 * payload) until re-driven.
 */
#ifndef FND_ASYNC_H
#define FND_ASYNC_H

#include "fnd/buf.h"
#include "fnd/controller.h"
#include "fnd/eventlog.h"
#include "fnd/invocation.h"
#include "fnd/registry.h"

#include <cjson/cJSON.h>
#include <uv.h>

#define ASYNC_KEY_MAX 255 /* longest Idempotency-Key */

struct async;

struct async_options {
    struct registry *registry;
    struct controller *controller;
    struct eventlog_options log;     /* the event log's folder, segment size, backend */
    uint64_t idempotency_window_ms;  /* keys and terminal invocations are kept this long */
    size_t result_max;               /* bytes of a result kept; longer ones are cut */
};

/* Opens the event log, rebuilds the pending set from it and starts dispatching.
 * 0, or a negative errno with err saying why (-EBADMSG: the log needs --repair). */
int async_open(struct async **out, uv_loop_t *loop, const struct async_options *opts,
               char *err, size_t errsize);
/* Stops dispatching, flushes the log and frees everything once attempts still on the
 * controller have returned (their outcome is not recorded: after a restart they count
 * as interrupted). on_closed may be NULL. */
void async_close(struct async *a, void (*on_closed)(void *), void *data);

/* status 0: the invocation is durable (or key and payload matched an earlier one,
 * whose id this is); -EROFS: the log turned read-only before it was durable (503).
 * invocation_id is valid during the call. */
typedef void async_submit_cb(int status, const char *invocation_id, void *data);

/* Accepts an async invocation of fn. Takes payload (left empty) in every case. key
 * may be SLICE_NULL; trace_id and client_context may be NULL (copied). Returns 0 and
 * calls cb exactly once, never before returning; or, without calling cb:
 *   -EINVAL  key empty or longer than ASYNC_KEY_MAX              (400)
 *   -EEXIST  key already used for fn with a different payload    (422)
 *   -E2BIG   payload larger than the log's record limit          (413)
 *   -EROFS   the log is read-only (fsync error or disk full)     (503)
 *   -ECANCELED the daemon is stopping                            (503) */
int async_submit(struct async *a, struct function *fn, struct buf *payload, struct slice key,
                 const char *trace_id, const char *client_context, async_submit_cb *cb,
                 void *data);

struct async_sync_result {
    const char *invocation_id;
    enum inv_outcome outcome; /* THROTTLED and CANCELLED are never stored */
    struct slice body;        /* the response or error body; valid during the call */
    bool replayed;            /* the stored answer of an earlier call with the key */
};
/* status 0 with res, or -EROFS (log read-only; res NULL). */
typedef void async_sync_cb(int status, const struct async_sync_result *res, void *data);

/* A sync invocation with an Idempotency-Key: recorded durably, run once, its answer
 * stored for the window. Same takes and returns as async_submit, and -EBUSY while the
 * first invocation with the key is still running (409). A sync invocation interrupted
 * by a crash is forgotten, so the caller's retry runs it again. */
int async_invoke_sync(struct async *a, struct function *fn, struct buf *payload,
                      struct slice key, const char *trace_id, const char *client_context,
                      async_sync_cb *cb, void *data);

/* {"invocation_id", "function", "status", "accepted", "attempts": [{"started", "ended",
 * "outcome", "error"}], "result", "error", ...}, or NULL when the id is unknown (or
 * expired). The caller owns the result. */
cJSON *async_invocation_json(struct async *a, struct slice id);
/* {"dead_letters": [invocation objects without result]} for the function name. */
cJSON *async_dead_letters_json(struct async *a, struct slice fn_name);
/* Re-drives a dead letter (its attempts and event age start over). Returns 0 and
 * calls cb once the redrive is durable; or -ENOENT unknown id, -EINVAL not a dead
 * letter (409), -EROFS, -ECANCELED, without calling cb. */
int async_redrive(struct async *a, struct slice id, async_submit_cb *cb, void *data);

/* Adds "async": {"pending", "running", "dead_letters", "backend", "read_only"} to obj. */
void async_stats(struct async *a, cJSON *obj);

#endif
