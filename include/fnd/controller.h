/*
 * The invocation controller: per-function FIFO queues feeding pools of warm workers.
 * It decides when to start, reuse and stop worker processes (docs/controller.md):
 *
 * - An invocation goes to an idle worker of the function's current version, the most
 *   recently used first (so surplus workers age out), or waits in the queue.
 * - Scale up by queue depth: when invocations wait, as many workers start at once as
 *   the queue needs beyond those already starting, bounded by the function's
 *   max_instances and the daemon's max_workers and memory budget. When the daemon is
 *   full, idle workers of other functions are stopped, least recently used first.
 * - Fairness: when the daemon is full, a function with waiting work and no worker
 *   takes the next worker that another function frees, and capacity that comes free
 *   goes to such starved functions first.
 * - Scale down: a worker idle for idle_timeout_ms stops, never below min_warm; min_warm
 *   workers start at deploy and at daemon start and are replaced when they die.
 * - Back-pressure: a function's queue holds at most max_queue invocations; beyond it
 *   controller_submit refuses (429); an invocation that waits longer than
 *   max_queue_wait_ms ends THROTTLED (429).
 * - Published versions (Lambda's `name:1`) run in pools of their own, beside the
 *   current version's, and are never drained by a deploy.
 * - A new version drains the old one: busy old workers finish what they run and stop,
 *   idle and starting ones stop at once, queued work runs on the new version.
 */
#ifndef FND_CONTROLLER_H
#define FND_CONTROLLER_H

#include "fnd/busy_poll.h"
#include "fnd/invocation.h"
#include "fnd/registry.h"
#include "fnd/worker.h"

#include <cjson/cJSON.h>
#include <uv.h>

struct controller;

struct controller_options {
    struct worker_options worker;
    uint64_t max_workers;      /* worker processes at once, all functions together */
    uint64_t memory_budget_mb; /* sum of memory_mb over workers not yet gone */
    uint64_t spare_workers;    /* started beyond demand at each scale-up (pre-warming) */
    struct busy_poll *busy_poll; /* kicked at each hand-off to a worker; NULL: none */
};

struct controller *controller_new(uv_loop_t *loop, const struct controller_options *opts);
/* Cancels queued invocations, kills every worker and frees the controller once all
 * are gone; on_closed runs then. */
void controller_close(struct controller *ctl, void (*on_closed)(void *), void *data);

/* Registry hooks: a function got a new current version (or was loaded, old == NULL),
 * or is being deleted. */
void controller_on_publish(struct controller *ctl, struct function *fn, struct fn_version *old);
void controller_on_remove(struct controller *ctl, struct function *fn);

/* Queues inv for fn. Returns 0, after which inv->on_done is called exactly once,
 * possibly before controller_submit returns; or -EAGAIN when the function's queue is
 * full (on_done is not called). */
int controller_submit(struct controller *ctl, struct function *fn, struct invocation *inv);
/* Like controller_submit, for a published version v of fn (v->published != 0; 0 means
 * the current version): it runs in a pool of its own, started on first use and gone
 * with the function. */
int controller_submit_version(struct controller *ctl, struct function *fn, struct fn_version *v,
                              struct invocation *inv);

/* Adds the function's live state to obj: "instances" by state, "queue_depth",
 * "cold_starts", "sent_ahead", "invocations", "errors", and "workers": [{pid (on the
 * host), state, version, served}]. */
void controller_function_state(struct controller *ctl, const struct function *fn, cJSON *obj);
/* Invocations accepted and not yet done (queued or running), all functions. */
size_t controller_pending(const struct controller *ctl);
/* Adds daemon-wide counters to obj: "workers" by state, "queued", "invocations". */
void controller_stats(struct controller *ctl, cJSON *obj);

#endif
