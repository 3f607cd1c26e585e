/*
 * An invocation: one request to run a function on an event, from whoever asked (the
 * native API, later the event log and the Lambda API) to the controller that runs it
 * on a worker and reports the outcome through one completion callback.
 *
 * Ownership: the submitter allocates the invocation and owns it; the controller
 * borrows it from controller_submit() until on_done() returns, and never touches it
 * afterwards. on_done is called exactly once for every accepted invocation.
 */
#ifndef FND_INVOCATION_H
#define FND_INVOCATION_H

#include "fnd/buf.h"
#include "fnd/common.h"
#include "fnd/list.h"

#include <uv.h>

#define INVOCATION_ID_LEN 36 /* a UUID in text form */

/* outcome, HTTP status on the native API, log word */
#define INV_OUTCOMES(X)                                                                        \
    X(SUCCESS, 200, "success")                                                                 \
    X(FUNCTION_ERROR, 500, "error")       /* the handler raised or returned an error */        \
    X(TIMEOUT, 504, "timeout")            /* ran past timeout_ms; the worker was killed */     \
    X(CRASH, 502, "crash")                /* the worker died or broke the protocol */          \
    X(INIT_ERROR, 502, "init_error")      /* the worker could not load the handler */          \
    X(THROTTLED, 429, "throttled")        /* waited in the queue past max_queue_wait_ms */    \
    X(CANCELLED, 503, "cancelled")        /* the function was deleted or the daemon stopped */

enum inv_outcome {
#define INV_OUTCOME_ENUM(name, status, word) INV_##name,
    INV_OUTCOMES(INV_OUTCOME_ENUM)
#undef INV_OUTCOME_ENUM
};

struct inv_result {
    enum inv_outcome outcome;
    /* SUCCESS: the handler's response bytes. Otherwise a Lambda-style error object
     * {"errorType","errorMessage"[,"stackTrace"]}. Valid only during on_done. */
    struct slice body;
    bool cold_start;      /* this invocation waited for a new worker */
    uint64_t duration_us; /* from dispatch to a worker until the result */
    uint64_t queued_us;   /* from submit until dispatch */
    /* With wants_log, the last 4 KB of this invocation's log (START ... REPORT lines,
     * funclog.h); empty otherwise, or when it never reached a worker. Valid only
     * during on_done. */
    struct slice log;
    /* CRASH only: the event never reached the worker (writing it failed), so the
     * handler did not run and the invocation may run on another worker. */
    bool undelivered;
};

struct invocation;
typedef void invocation_done_fn(struct invocation *inv, const struct inv_result *res);

struct invocation {
    char id[INVOCATION_ID_LEN + 1];
    struct buf payload;   /* the event; owned */
    char *trace_id;       /* optional, owned */
    char *client_context; /* optional JSON text, owned */
    invocation_done_fn *on_done;
    void *data; /* the submitter's */
    /* The submitter wants the log's tail in the result (inv_result.log). Without it the
     * log is closed after on_done, off the answer's path. */
    bool wants_log;

    /* Controller-private from submit to on_done. */
    struct list_node link;
    uint64_t submitted_us;
    uint64_t dispatched_us;
    bool cold_start;
    uint8_t redispatches; /* times put back in the queue after an undelivered event */
    void *ctl_state;
};

/* Initialises inv with a fresh random id and an empty payload bounded by max_payload. */
void invocation_init(struct invocation *inv, size_t max_payload);
/* Frees what inv owns (not inv itself). */
void invocation_release(struct invocation *inv);
/* Writes a random (version 4) UUID and a NUL into out. */
void invocation_new_id(char out[INVOCATION_ID_LEN + 1]);

int inv_outcome_status(enum inv_outcome o);
const char *inv_outcome_word(enum inv_outcome o);

#endif
