/*
 * The invocation controller (include/fnd/controller.h; the policy is explained in
 * docs/controller.md).
 *
 * Each function has a pool: its queue of waiting invocations, every worker it owns (of
 * any version, until they are gone) and the subset that is idle and usable, most
 * recently used first. The controller also threads every usable idle worker through
 * one LRU list, for eviction when the daemon-wide worker limit is reached.
 *
 * A worker's state changes inside worker.c; the pool accounts it in worker->counted
 * and brings its counters and idle lists up to date in account(), called from every
 * worker event, so dispatch decisions read counters instead of walking lists.
 *
 * dispatch() is the single place where work meets workers: it pairs queued
 * invocations with idle workers, then starts as many workers as the remaining queue
 * needs beyond those already starting. It runs after anything that may have created
 * an opportunity: a submit, a worker becoming ready or idle, a worker going away.
 *
 * A pool outlives its function when the function is deleted while workers still
 * drain; it is freed when its last worker is gone.
 */
#include "fnd/controller.h"

#include "fnd/log.h"
#include "fnd/metrics.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

struct pool {
    struct list_node link;      /* controller->pools */
    struct controller *ctl;
    struct function *fn;        /* NULL once the function was deleted */
    char name[FN_NAME_MAX + 1];
    struct fn_version *version; /* the current version, or the published one (a reference) */
    bool published;             /* serves one published version, never drained by deploys */
    struct list_node queue;     /* waiting invocations, FIFO */
    size_t queue_len;
    struct list_node workers;   /* every worker not yet gone */
    struct list_node idle;      /* usable idle workers, most recently used first */
    size_t count[WORKER__STATES];
    uv_timer_t idle_timer;      /* fires when the oldest idle worker expires */
    uv_timer_t queue_timer;     /* fires when the oldest queued invocation waited too long */
    uv_timer_t spare_timer;     /* starts the spares refill_to asks for, just after an answer */
    int open_timers;
    bool warm_failed;           /* a min_warm start failed: wait for a deploy or a success */
    bool freeing;
    uint64_t invocations;
    uint64_t errors;
    uint64_t cold_starts;       /* invocations that waited for their worker to start */
    uint64_t sent_ahead;        /* invocations sent to a busy worker (feed_ahead) */
    uint64_t worker_starts;     /* workers that became ready: demanded, min_warm or spare */
    size_t refill_to;           /* live workers to have, spares included, after the next answer */
};

struct controller {
    uv_loop_t *loop;
    struct controller_options opts;
    struct list_node pools;
    struct list_node lru;       /* every usable idle worker, least recently used first */
    size_t workers;             /* processes not yet gone, all pools */
    uint64_t memory_mb;         /* memory_mb summed over those processes */
    size_t evicting;            /* workers stopped to make room, not yet gone */
    uint64_t invocations;
    bool closing;
    void (*on_closed)(void *);
    void *closed_data;
};

#define REDISPATCH_MAX 8 /* times one invocation is put back after undelivered events */

static void dispatch(struct pool *p);
static void dispatch_all(struct controller *ctl);
static void maybe_free_pool(struct pool *p);
static void maybe_finish_close(struct controller *ctl);
static void on_idle_timer(uv_timer_t *t);
static void on_queue_timer(uv_timer_t *t);
static void on_spare_timer(uv_timer_t *t);

static const struct worker_events pool_worker_events;

static size_t pool_live(const struct pool *p)
{
    return p->count[WORKER_STARTING] + p->count[WORKER_IDLE] + p->count[WORKER_BUSY];
}

static bool usable(const struct pool *p, const struct worker *w)
{
    return w->state == WORKER_IDLE && w->version == p->version && !w->stop_requested &&
           p->fn != NULL && !p->ctl->closing;
}

/* Brings the pool's books in line with w->state. A worker that just became usable
 * goes to the front of the idle lists' recency order; one that has never served (a
 * spare, a min_warm worker) to the back, so warm workers keep their invocations (and
 * their module state) and the unused one is the first to age out or be evicted. It
 * takes the oldest idle worker's time, which keeps the list ordered by last use. */
static void account(struct pool *p, struct worker *w)
{
    p->count[w->counted]--;
    p->count[w->state]++;
    w->counted = w->state;
    if (usable(p, w)) {
        if (list_unlinked(&w->idle_link) && w->served > 0) {
            list_push_front(&p->idle, &w->idle_link);
            list_push_back(&p->ctl->lru, &w->lru_link);
        } else if (list_unlinked(&w->idle_link)) {
            if (!list_empty(&p->idle)) {
                struct worker *oldest = container_of(p->idle.prev, struct worker, idle_link);
                w->last_used_ms = FND_MIN(w->last_used_ms, oldest->last_used_ms);
            }
            list_push_back(&p->idle, &w->idle_link);
            list_push_front(&p->ctl->lru, &w->lru_link);
        }
    } else if (!list_unlinked(&w->idle_link)) {
        list_remove(&w->idle_link);
        list_remove(&w->lru_link);
    }
}

/* --- scale down -------------------------------------------------------------------- */

/* Arms the pool's timer for the moment its least recently used idle worker expires. */
static void arm_idle_timer(struct pool *p)
{
    /* At min_warm nothing may stop, so nothing needs waking for. */
    if (list_empty(&p->idle) || pool_live(p) <= p->version->config.min_warm) {
        uv_timer_stop(&p->idle_timer);
        return;
    }
    struct worker *oldest = container_of(p->idle.prev, struct worker, idle_link);
    uint64_t expires = oldest->last_used_ms + p->version->config.idle_timeout_ms;
    uint64_t now = uv_now(p->ctl->loop);
    /* Never 0: a timer re-armed at 0 from its own callback would run again in the same
     * pass of the loop, forever. */
    uv_timer_start(&p->idle_timer, on_idle_timer, expires > now ? expires - now : 1, 0);
}

static void on_idle_timer(uv_timer_t *t)
{
    struct pool *p = container_of(t, struct pool, idle_timer);
    uint64_t now = uv_now(p->ctl->loop);
    uint64_t idle_ms = p->version->config.idle_timeout_ms;
    /* Oldest first; never below min_warm. */
    while (!list_empty(&p->idle) && pool_live(p) > p->version->config.min_warm) {
        struct worker *w = container_of(p->idle.prev, struct worker, idle_link);
        if (w->last_used_ms + idle_ms > now)
            break;
        log_debug("worker idle timeout", "fn=%s worker=%llu", p->name,
                  (unsigned long long)w->tag);
        worker_stop(w);
        account(p, w);
    }
    arm_idle_timer(p);
}

/* --- scale up ---------------------------------------------------------------------- */

static bool start_worker(struct pool *p)
{
    struct controller *ctl = p->ctl;
    struct worker *w;
    /* Ahead of need when every queued invocation has a worker starting for it already:
     * a spare, a min_warm start. Such a worker may spend a moment on warming up. */
    bool ahead_of_need = p->queue_len <= p->count[WORKER_STARTING];
    int rc = worker_start(&w, ctl->loop, &ctl->opts.worker, p->version, &pool_worker_events, p,
                          ahead_of_need);
    if (rc < 0) {
        log_error("worker_start failed", "fn=%s err=\"%s\"", p->name, strerror(-rc));
        return false;
    }
    w->counted = WORKER_STARTING;
    p->count[WORKER_STARTING]++;
    list_push_back(&p->workers, &w->link);
    ctl->workers++;
    ctl->memory_mb += p->version->config.memory_mb;
    return true;
}

/* Whether one more worker of mem_mb fits under the daemon-wide limits. */
static bool has_room(const struct controller *ctl, uint64_t mem_mb)
{
    return ctl->workers < ctl->opts.max_workers &&
           ctl->memory_mb + mem_mb <= ctl->opts.memory_budget_mb;
}

/* Stops w to make room for another pool; the room appears when w is gone. */
static void evict(struct pool *owner, struct worker *w, const char *for_name)
{
    log_debug("worker evicted", "fn=%s worker=%llu for=%s", owner->name,
              (unsigned long long)w->tag, for_name);
    w->evicted = true;
    owner->ctl->evicting++;
    worker_stop(w);
    account(owner, w);
    arm_idle_timer(owner);
}

/* Stops the least recently used idle worker of a pool other than for_pool. */
static bool evict_lru(struct controller *ctl, const struct pool *for_pool)
{
    struct list_node *n;
    for (n = ctl->lru.next; n != &ctl->lru; n = n->next) {
        struct worker *w = container_of(n, struct worker, lru_link);
        if (w->owner != for_pool) {
            evict(w->owner, w, for_pool->name);
            return true;
        }
    }
    return false;
}

/* Starts up to want workers for waiting invocations, within the function's and the
 * daemon's limits. When the daemon is full, stops idle workers of other functions
 * instead; the workers start when those are gone (on_worker_gone dispatches again).
 * Once every wanted worker is starting, starts up to spares more where there is room:
 * a spare never evicts anyone, it only saves the next step up its cold start. */
static void scale_up(struct pool *p, size_t want, size_t spares)
{
    struct controller *ctl = p->ctl;
    size_t cap = p->version->config.max_instances;
    size_t live = pool_live(p);
    uint64_t mem = p->version->config.memory_mb;
    if (live >= cap)
        return;
    size_t n = FND_MIN(want, cap - live);
    while (n > 0 && has_room(ctl, mem)) {
        if (!start_worker(p))
            return;
        n--;
    }
    if (n > 0) {
        /* Workers already stopping for someone count against what is still missing,
         * so a burst of submits does not evict the whole LRU list. */
        while (n > ctl->evicting && evict_lru(ctl, p))
            ;
        return;
    }
    for (; spares > 0 && pool_live(p) < cap && has_room(ctl, mem); spares--) {
        if (!start_worker(p))
            return;
        log_debug("spare worker started", "fn=%s", p->name);
    }
}

static void ensure_min_warm(struct pool *p)
{
    if (p->fn == NULL || p->warm_failed || p->ctl->closing)
        return;
    size_t live = pool_live(p);
    if (live < p->version->config.min_warm)
        scale_up(p, p->version->config.min_warm - live, 0);
}

/* --- dispatch ---------------------------------------------------------------------- */

/* Arms the pool's queue timer for the moment its oldest invocation waited too long. */
static void arm_queue_timer(struct pool *p)
{
    if (list_empty(&p->queue)) {
        uv_timer_stop(&p->queue_timer);
        return;
    }
    struct invocation *head = container_of(p->queue.next, struct invocation, link);
    uint64_t deadline_us = head->submitted_us + p->version->config.max_queue_wait_ms * 1000u;
    uint64_t now_us = clock_mono_us();
    uint64_t wait_ms = deadline_us > now_us ? (deadline_us - now_us + 999) / 1000 : 1;
    uv_timer_start(&p->queue_timer, on_queue_timer, wait_ms, 0);
}

/* Runs inv on w. Returns whether w was a spare: a new worker that was ready before inv
 * arrived. Only an invocation that waited for its worker's start is a cold start. */
static bool run_on(struct pool *p, struct worker *w, struct invocation *inv)
{
    bool spare = w->served == 0 && w->ready_us <= inv->submitted_us;
    inv->cold_start = w->served == 0 && !spare;
    if (inv->cold_start) {
        const char *rt = runtime_name(w->version->config.runtime);
        p->cold_starts++;
        metrics_inc(METRIC_COLD_STARTS, rt, NULL);
        metrics_observe(METRIC_COLD_START_DURATION, (double)w->init_us / 1e6, rt, NULL);
    }
    w->served++;
    /* The next invocation may be sent ahead to w (feed_ahead) only if none is idle
     * then: w is the last idle worker (it still counts as idle) of a full pool. */
    bool may_send_ahead = pool_live(p) >= p->version->config.max_instances &&
                          p->count[WORKER_IDLE] <= 1;
    worker_invoke(w, inv, may_send_ahead);
    busy_poll_kick(p->ctl->opts.busy_poll);
    account(p, w);
    return spare;
}

/* Pipelining (worker.h): when the pool has every worker it may have, a queued
 * invocation waits for a busy one anyway, so a worker that takes its next event before
 * it answers gets the oldest one now; it finds it there when it answers, instead of
 * falling asleep and being woken for it. Below the limit, the queue makes the pool
 * grow instead. */
static void feed_ahead(struct pool *p, struct worker *w)
{
    if (list_empty(&p->queue) || p->fn == NULL || p->ctl->closing || w->version != p->version ||
        p->count[WORKER_STARTING] > 0 || pool_live(p) < p->version->config.max_instances ||
        !worker_takes_ahead(w))
        return;
    struct invocation *inv = container_of(p->queue.next, struct invocation, link);
    list_remove(&inv->link);
    p->queue_len--;
    w->served++;
    p->sent_ahead++;
    worker_send_ahead(w, inv);
    busy_poll_kick(p->ctl->opts.busy_poll);
}

static void dispatch(struct pool *p)
{
    if (p->ctl->closing)
        return;
    bool took_spare = false;
    while (!list_empty(&p->queue) && !list_empty(&p->idle)) {
        struct worker *w = container_of(p->idle.next, struct worker, idle_link);
        if (w->state != WORKER_IDLE) {
            /* It died while idle (killed, crashed): nothing is told before on_gone, so
             * take it off the idle list here instead of handing it an invocation. One
             * whose exit the loop has not seen yet gets the event, cannot take it (the
             * write fails: nothing was delivered) and the invocation goes back to the
             * queue (on_worker_finished). No system call per dispatch asks first. */
            account(p, w);
            continue;
        }
        struct invocation *inv = container_of(p->queue.next, struct invocation, link);
        list_remove(&inv->link);
        p->queue_len--;
        took_spare |= run_on(p, w, inv);
    }
    arm_idle_timer(p);
    arm_queue_timer(p);
    if (p->fn == NULL)
        return;
    /* Pre-warming: a function that must scale up wants spares beyond its demand, and
     * one that just used its last spare wants it replaced, since its load is still
     * growing. A steady load reuses its most recent workers and lets the spares age
     * out. Spares start a moment after the next invocation has its answer
     * (refill_spares): a process start takes a core for milliseconds, and started
     * beside a cold start on two cores it doubled that cold start. */
    size_t starting = p->count[WORKER_STARTING];
    size_t spares = p->ctl->opts.spare_workers;
    if (p->queue_len > starting) {
        scale_up(p, p->queue_len - starting, 0);
        p->refill_to = FND_MAX(p->refill_to, pool_live(p) + spares);
    } else if (took_spare && list_empty(&p->idle) && starting == 0) {
        p->refill_to = FND_MAX(p->refill_to, pool_live(p) + spares);
    }
}

/* How long after an answer the spares it allows start. Started at once, beside the
 * answer, a spare's process start took a CPU away from the client that had just been
 * woken to read it: a Node step up to a spare measured 2.6-2.7 ms, against 2.4 ms
 * with the start 2 or 10 ms later, which is the same step's cost once both workers are
 * warm (docs/benchmarks.md). */
#define SPARE_START_DELAY_MS 5

/* Starts the spares a dispatch asked for, if they are still missing. */
static void refill_spares(struct pool *p)
{
    size_t live = pool_live(p), target = p->refill_to;
    p->refill_to = 0;
    if (target > live && p->fn != NULL && !p->ctl->closing)
        scale_up(p, 0, target - live);
}

static void on_spare_timer(uv_timer_t *t)
{
    refill_spares(container_of(t, struct pool, spare_timer));
}

/* A pool with waiting work and no worker at all. */
static bool starved(const struct pool *p)
{
    return p->queue_len > 0 && pool_live(p) == 0 && p->fn != NULL;
}

static bool any_starved(const struct controller *ctl, const struct pool *except)
{
    const struct list_node *n;
    for (n = ctl->pools.next; n != &ctl->pools; n = n->next) {
        const struct pool *p = container_of(n, struct pool, link);
        if (p != except && starved(p))
            return true;
    }
    return false;
}

/* Capacity came free daemon-wide: starved pools try first, then every pool with
 * waiting work, each pass in round-robin order (the pools list rotates). */
static void dispatch_all(struct controller *ctl)
{
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &ctl->pools)
    {
        struct pool *p = container_of(n, struct pool, link);
        if (starved(p))
            dispatch(p);
    }
    list_for_each_safe(n, tmp, &ctl->pools)
    {
        struct pool *p = container_of(n, struct pool, link);
        if (p->queue_len > 0)
            dispatch(p);
    }
    if (!list_empty(&ctl->pools)) {
        struct list_node *first = ctl->pools.next;
        list_remove(first);
        list_push_back(&ctl->pools, first);
    }
}

static void complete(struct pool *p, struct invocation *inv, const struct inv_result *res)
{
    metrics_inc(METRIC_INVOCATIONS, p->name, inv_outcome_word(res->outcome));
    if (res->duration_us) { /* it reached a worker */
        metrics_observe(METRIC_INVOCATION_DURATION, (double)res->duration_us / 1e6, p->name, NULL);
        metrics_observe(METRIC_INVOCATION_QUEUED, (double)res->queued_us / 1e6, p->name, NULL);
    }
    if (res->outcome == INV_THROTTLED)
        metrics_inc(METRIC_THROTTLES, p->name, NULL);
    p->invocations++;
    p->ctl->invocations++;
    if (res->outcome != INV_SUCCESS)
        p->errors++;
    inv->on_done(inv, res);
}

/* Ends a queued invocation without running it. */
static void fail_queued(struct pool *p, struct invocation *inv, enum inv_outcome outcome,
                        struct slice body)
{
    list_remove(&inv->link);
    p->queue_len--;
    inv->dispatched_us = clock_mono_us();
    struct inv_result res = {.outcome = outcome, .body = body, .queued_us =
                                 inv->dispatched_us - inv->submitted_us};
    complete(p, inv, &res);
}

static void cancel_queue(struct pool *p, const char *why)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"errorType\":\"Runtime.Cancelled\",\"errorMessage\":\"%s\"}",
             why);
    while (!list_empty(&p->queue)) {
        struct invocation *inv = container_of(p->queue.next, struct invocation, link);
        fail_queued(p, inv, INV_CANCELLED, slice_from_cstr(body));
    }
}

static void on_queue_timer(uv_timer_t *t)
{
    struct pool *p = container_of(t, struct pool, queue_timer);
    uint64_t now_us = clock_mono_us();
    uint64_t limit_us = p->version->config.max_queue_wait_ms * 1000u;
    static const char body[] = "{\"errorType\":\"TooManyRequestsException\","
                               "\"errorMessage\":\"no worker became free in time\"}";
    while (!list_empty(&p->queue)) {
        struct invocation *head = container_of(p->queue.next, struct invocation, link);
        if (head->submitted_us + limit_us > now_us)
            break;
        fail_queued(p, head, INV_THROTTLED, SLICE_LIT(body));
    }
    arm_queue_timer(p);
}

/* --- worker events ----------------------------------------------------------------- */

static void on_worker_ready(struct worker *w)
{
    struct pool *p = w->owner;
    p->worker_starts++;
    p->warm_failed = false;
    account(p, w);
    dispatch(p);
}

static void on_worker_start_failed(struct worker *w, struct slice error)
{
    struct pool *p = w->owner;
    account(p, w);
    /* The invocation that waits longest gets the failure, as on Lambda where the
     * invocation that caused a cold start sees its init error. The others keep
     * waiting: dispatch() tries a fresh worker for them. */
    if (!list_empty(&p->queue)) {
        struct invocation *inv = container_of(p->queue.next, struct invocation, link);
        fail_queued(p, inv, INV_INIT_ERROR, error);
    } else {
        p->warm_failed = true; /* a min_warm start: do not retry in a loop */
    }
}

static void on_worker_finished(struct worker *w, struct invocation *inv,
                               const struct inv_result *res)
{
    struct pool *p = w->owner;
    struct controller *ctl = p->ctl;
    if (w->state == WORKER_IDLE && !usable(p, w))
        worker_stop(w); /* an old version's worker, or its function is gone */
    account(p, w);
    feed_ahead(p, w); /* before the answer goes out: the worker may be done by then */
    /* When the daemon is full and another function waits with no worker at all, this
     * worker goes to it rather than to our own queue: one hot function cannot starve
     * the others. */
    if (w->state == WORKER_IDLE && p->queue_len > 0 && ctl->evicting == 0 &&
        !has_room(ctl, 0) && any_starved(ctl, p))
        evict(p, w, "a starved function");
    /* A worker that died while idle, before its exit was seen, took an invocation it
     * never received (res->undelivered): queue it again, first. Each try uses up one
     * dead worker; the bound stops a runtime that always drops its channel. */
    if (res->undelivered && inv->redispatches < REDISPATCH_MAX && !ctl->closing) {
        inv->redispatches++;
        log_info("invocation redispatched", "fn=%s request_id=%s", p->name, inv->id);
        list_push_front(&p->queue, &inv->link);
        p->queue_len++;
    } else {
        complete(p, inv, res);
    }
    dispatch(p);
    feed_ahead(p, w); /* it may have become busy again in dispatch */
    if (p->refill_to > 0 && !uv_is_active((uv_handle_t *)&p->spare_timer))
        uv_timer_start(&p->spare_timer, on_spare_timer, SPARE_START_DELAY_MS, 0);
}

static void on_worker_gone(struct worker *w)
{
    struct pool *p = w->owner;
    struct controller *ctl = p->ctl;
    w->state = WORKER_STOPPING; /* already; keeps account() honest */
    account(p, w);
    p->count[WORKER_STOPPING]--;
    list_remove(&w->link);
    ctl->workers--;
    ctl->memory_mb -= w->version->config.memory_mb;
    if (w->evicted)
        ctl->evicting--;
    if (!ctl->closing) {
        ensure_min_warm(p);
        dispatch_all(ctl);
    }
    maybe_free_pool(p);
    maybe_finish_close(ctl);
}

static const struct worker_events pool_worker_events = {
    .on_ready = on_worker_ready,
    .on_start_failed = on_worker_start_failed,
    .on_finished = on_worker_finished,
    .on_gone = on_worker_gone,
};

/* --- pools ------------------------------------------------------------------------- */

static void on_pool_timer_closed(uv_handle_t *h)
{
    struct pool *p = h->data;
    if (--p->open_timers > 0)
        return;
    struct controller *ctl = p->ctl;
    list_remove(&p->link);
    if (p->published && p->version->ctl == p)
        p->version->ctl = NULL;
    if (p->version)
        fn_version_unref(p->version);
    free(p);
    maybe_finish_close(ctl);
}

/* A pool goes once its function is gone and its last worker with it. */
static void maybe_free_pool(struct pool *p)
{
    if (p->fn != NULL || !list_empty(&p->workers) || p->freeing)
        return;
    assert(list_empty(&p->queue));
    p->freeing = true;
    uv_close((uv_handle_t *)&p->idle_timer, on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->queue_timer, on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->spare_timer, on_pool_timer_closed);
}

static struct pool *pool_new(struct controller *ctl, struct function *fn)
{
    struct pool *p = xcalloc(1, sizeof(*p));
    p->ctl = ctl;
    p->fn = fn;
    snprintf(p->name, sizeof(p->name), "%s", fn->name);
    list_init(&p->queue);
    list_init(&p->workers);
    list_init(&p->idle);
    uv_timer_init(ctl->loop, &p->idle_timer);
    uv_timer_init(ctl->loop, &p->queue_timer);
    uv_timer_init(ctl->loop, &p->spare_timer);
    p->idle_timer.data = p->queue_timer.data = p->spare_timer.data = p;
    p->open_timers = 3;
    list_push_back(&ctl->pools, &p->link);
    fn->ctl = p;
    return p;
}

/* The pool of a published version: its own queue and workers, so that invoking
 * `name:1` runs version 1's code while deploys replace $LATEST beside it. */
static struct pool *published_pool(struct controller *ctl, struct function *fn,
                                   struct fn_version *v)
{
    if (v->ctl)
        return v->ctl;
    void *latest = fn->ctl;
    struct pool *p = pool_new(ctl, fn);
    fn->ctl = latest; /* pool_new made itself the function's pool */
    p->published = true;
    p->version = v;
    fn_version_ref(v);
    v->ctl = p;
    ensure_min_warm(p);
    return p;
}

void controller_on_publish(struct controller *ctl, struct function *fn, struct fn_version *old)
{
    (void)old;
    struct pool *p = fn->ctl ? fn->ctl : pool_new(ctl, fn);
    struct fn_version *previous = p->version;
    p->version = fn->current;
    fn_version_ref(p->version);
    p->warm_failed = false;
    if (previous) {
        /* Spares asked for by the previous version's load: the new one earns its own. */
        p->refill_to = 0;
        /* Drain the previous version: idle and starting workers stop now, busy ones
         * when their invocation ends (worker_stop), so no invocation mixes versions. */
        struct list_node *n, *tmp;
        list_for_each_safe(n, tmp, &p->workers)
        {
            struct worker *w = container_of(n, struct worker, link);
            if (w->version != p->version) {
                worker_stop(w);
                account(p, w);
            }
        }
        fn_version_unref(previous);
    }
    ensure_min_warm(p);
    dispatch(p);
}

static void pool_remove(struct pool *p)
{
    p->fn = NULL;
    cancel_queue(p, "the function was deleted");
    uv_timer_stop(&p->queue_timer);
    uv_timer_stop(&p->spare_timer);
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &p->workers)
    {
        struct worker *w = container_of(n, struct worker, link);
        worker_stop(w);
        account(p, w);
    }
    uv_timer_stop(&p->idle_timer);
    maybe_free_pool(p);
}

void controller_on_remove(struct controller *ctl, struct function *fn)
{
    fn->ctl = NULL;
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &ctl->pools)
    {
        struct pool *p = container_of(n, struct pool, link);
        if (p->fn == fn)
            pool_remove(p);
    }
}

/* --- public ------------------------------------------------------------------------ */

struct controller *controller_new(uv_loop_t *loop, const struct controller_options *opts)
{
    struct controller *ctl = xcalloc(1, sizeof(*ctl));
    ctl->loop = loop;
    ctl->opts = *opts;
    list_init(&ctl->pools);
    list_init(&ctl->lru);
    return ctl;
}

static int submit(struct pool *p, struct invocation *inv)
{
    /* max_queue bounds the invocations that no worker is on its way for: one that can
     * run now, or that a starting worker will take, does not count against it. */
    size_t waiting = p->queue_len - FND_MIN(p->queue_len, p->count[WORKER_STARTING]);
    if (list_empty(&p->idle) && waiting >= p->version->config.max_queue) {
        metrics_inc(METRIC_THROTTLES, p->name, NULL);
        return -EAGAIN;
    }
    inv->submitted_us = clock_mono_us();
    inv->ctl_state = p;
    list_push_back(&p->queue, &inv->link);
    p->queue_len++;
    dispatch(p);
    return 0;
}

int controller_submit(struct controller *ctl, struct function *fn, struct invocation *inv)
{
    if (fn->ctl == NULL || ctl->closing)
        return -ESHUTDOWN;
    return submit(fn->ctl, inv);
}

int controller_submit_version(struct controller *ctl, struct function *fn, struct fn_version *v,
                              struct invocation *inv)
{
    if (v->published == 0)
        return controller_submit(ctl, fn, inv);
    if (fn->ctl == NULL || ctl->closing)
        return -ESHUTDOWN;
    return submit(published_pool(ctl, fn, v), inv);
}

static void maybe_finish_close(struct controller *ctl)
{
    if (!ctl->closing || !list_empty(&ctl->pools))
        return;
    void (*cb)(void *) = ctl->on_closed;
    void *data = ctl->closed_data;
    free(ctl);
    if (cb)
        cb(data);
}

void controller_close(struct controller *ctl, void (*on_closed)(void *), void *data)
{
    ctl->closing = true;
    ctl->on_closed = on_closed;
    ctl->closed_data = data;
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &ctl->pools)
    {
        struct pool *p = container_of(n, struct pool, link);
        if (p->fn) {
            p->fn->ctl = NULL;
            p->fn = NULL;
        }
        if (p->published && p->version->ctl == p)
            p->version->ctl = NULL;
        cancel_queue(p, "the daemon is stopping");
        uv_timer_stop(&p->idle_timer);
        uv_timer_stop(&p->queue_timer);
        uv_timer_stop(&p->spare_timer);
        struct list_node *wn, *wtmp;
        list_for_each_safe(wn, wtmp, &p->workers)
        {
            struct worker *w = container_of(wn, struct worker, link);
            worker_kill(w);
            account(p, w);
        }
        maybe_free_pool(p);
    }
    maybe_finish_close(ctl);
}

static cJSON *instances_json(const size_t count[WORKER__STATES])
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; s < WORKER__STATES; s++)
        cJSON_AddNumberToObject(o, worker_state_name((enum worker_state)s), (double)count[s]);
    return o;
}

void controller_function_state(struct controller *ctl, const struct function *fn, cJSON *obj)
{
    (void)ctl;
    const struct pool *p = fn->ctl;
    size_t zero[WORKER__STATES] = {0};
    cJSON_AddItemToObject(obj, "instances", instances_json(p ? p->count : zero));
    cJSON_AddNumberToObject(obj, "queue_depth", p ? (double)p->queue_len : 0);
    cJSON_AddNumberToObject(obj, "cold_starts", p ? (double)p->cold_starts : 0);
    cJSON_AddNumberToObject(obj, "sent_ahead", p ? (double)p->sent_ahead : 0);
    cJSON_AddNumberToObject(obj, "worker_starts", p ? (double)p->worker_starts : 0);
    cJSON_AddNumberToObject(obj, "invocations", p ? (double)p->invocations : 0);
    cJSON_AddNumberToObject(obj, "errors", p ? (double)p->errors : 0);
    /* Host pids: inside its pid namespace every runtime sees itself as pid 2. */
    cJSON *workers = cJSON_AddArrayToObject(obj, "workers");
    for (const struct list_node *n = p ? p->workers.next : NULL; p && n != &p->workers;
         n = n->next) {
        const struct worker *w = container_of(n, struct worker, link);
        cJSON *o = cJSON_CreateObject();
        if (w->spawning) /* no process yet */
            cJSON_AddNullToObject(o, "pid");
        else
            cJSON_AddNumberToObject(o, "pid", (double)w->proc.pid);
        cJSON_AddStringToObject(o, "state", worker_state_name(w->state));
        cJSON_AddNumberToObject(o, "version", (double)w->version->number);
        cJSON_AddNumberToObject(o, "served", (double)w->served);
        cJSON_AddItemToArray(workers, o);
    }
}

size_t controller_pending(const struct controller *ctl)
{
    size_t n = 0;
    for (const struct list_node *l = ctl->pools.next; l != &ctl->pools; l = l->next) {
        const struct pool *p = container_of(l, struct pool, link);
        n += p->queue_len + p->count[WORKER_BUSY];
    }
    return n;
}

void controller_stats(struct controller *ctl, cJSON *obj)
{
    size_t count[WORKER__STATES] = {0};
    size_t queued = 0;
    struct list_node *n;
    for (n = ctl->pools.next; n != &ctl->pools; n = n->next) {
        struct pool *p = container_of(n, struct pool, link);
        for (int s = 0; s < WORKER__STATES; s++)
            count[s] += p->count[s];
        queued += p->queue_len;
    }
    cJSON_AddItemToObject(obj, "workers", instances_json(count));
    cJSON_AddNumberToObject(obj, "queued", (double)queued);
    cJSON_AddNumberToObject(obj, "memory_mb", (double)ctl->memory_mb);
    cJSON_AddNumberToObject(obj, "memory_budget_mb", (double)ctl->opts.memory_budget_mb);
    cJSON_AddNumberToObject(obj, "max_workers", (double)ctl->opts.max_workers);
    cJSON_AddNumberToObject(obj, "invocations", (double)ctl->invocations);
}
