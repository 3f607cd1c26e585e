/*
 * Durable async invocations (include/fnd/async.h, docs/eventlog.md): the pending set
 * in memory, every change of it recorded in the event log first.
 *
 * Each invocation is an entry, found by id and, when it has one, by (function,
 * Idempotency-Key). Its life in records:
 *   ACCEPT   the full image of the entry (payload, status, attempts, result); written
 *            when it is accepted and again by every checkpoint
 *   START    attempt n began (written before the attempt is handed to the controller)
 *   END      attempt n ended: outcome, the entry's new status, next due time, result
 *   REDRIVE  a dead letter starts over
 *   FORGET   drop the entry (a sync invocation that was throttled or cancelled)
 * Replaying them in order rebuilds the entries. An entry still running after replay
 * was interrupted by the daemon's death: that attempt counts as failed (at-least-once).
 *
 * Memory follows the log, never the reverse, where it matters: an accept is answered,
 * and a terminal status shown, only from the append's durability callback. So a
 * succeeded invocation never runs again after a crash, and a 202 is never lost.
 *
 * Scheduling: entries due now wait in per-function FIFOs, dispatched while the
 * function has fewer than max_instances async attempts on the controller (so async
 * backlogs never fill the queue sync callers need); entries waiting for a retry sit in
 * a min-heap on their due time under one timer. Dispatch pauses while the log is
 * read-only, since no outcome could be recorded.
 *
 * Retention: terminal entries (except dead letters) and idempotency keys expire after
 * the idempotency window; a sweep drops them from memory and checkpoints drop them
 * from disk.
 */
#include "fnd/async.h"

#include "fnd/codec.h"
#include "fnd/log.h"
#include "fnd/metrics.h"
#include "fnd/slab.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* status, API word; terminal statuses come last */
#define ASYNC_STATUSES(X)                                                                      \
    X(QUEUED, "queued")                                                                        \
    X(RUNNING, "running")                                                                      \
    X(RETRYING, "retrying")                                                                    \
    X(SUCCEEDED, "succeeded")                                                                  \
    X(FAILED, "failed")                                                                        \
    X(DEAD_LETTER, "dead_letter")

enum status {
#define ASYNC_STATUS_ENUM(name, word) ST_##name,
    ASYNC_STATUSES(ASYNC_STATUS_ENUM)
#undef ASYNC_STATUS_ENUM
};

static const char *const status_words[] = {
#define ASYNC_STATUS_WORD(name, word) word,
    ASYNC_STATUSES(ASYNC_STATUS_WORD)
#undef ASYNC_STATUS_WORD
};

enum rec_type { REC_ACCEPT = 1, REC_START, REC_END, REC_REDRIVE, REC_FORGET };

#define NO_OUTCOME 0xff      /* an attempt without an end, or an entry without a result */
#define NO_ATTEMPT UINT32_MAX /* an END that changes the status without an attempt */
#define ATTEMPTS_MAX 64       /* attempts kept per entry; later ones replace the last */
#define ERROR_MAX 1024        /* bytes of an attempt's error kept */
#define SWEEP_MS 60000
#define REQUEUE_MS 100        /* when the controller's queue was full */
#define TABLE_MIN 1024

static bool terminal(enum status s)
{
    return s >= ST_SUCCEEDED;
}

struct attempt {
    int64_t started_ms, ended_ms; /* wall clock; ended 0 while running */
    uint8_t outcome;              /* enum inv_outcome or NO_OUTCOME */
    char *error;                  /* owned or NULL */
};

struct entry {
    char id[INVOCATION_ID_LEN + 1];
    struct fnq *q;              /* its function's queue, which holds the name */
    char *idem;                 /* "fn\nkey", owned, or NULL */
    unsigned char sha[32];      /* of the payload, to compare idempotent requests */
    bool sync;
    bool durable;               /* the accept record is on disk */
    enum status status;
    struct buf payload;         /* dropped once succeeded */
    char *trace_id, *client_context;
    int64_t accepted_ms, due_ms, ended_ms;
    uint32_t failures;          /* attempts that count against max_attempts */
    struct attempt *attempts;
    uint32_t nattempts;
    uint8_t outcome;            /* the final (or last) outcome, NO_OUTCOME before */
    struct buf result;          /* response or error body, at most result_max */
    bool truncated;
    struct list_node link;      /* in its function's ready FIFO */
    size_t heap_at;             /* index + 1 in the retry heap; 0 = not there */
    /* A sync caller waiting for the answer. */
    async_sync_cb *sync_cb;
    void *sync_data;
};

/* Open addressing with linear probing; a slot keeps its key's hash, so probing past
 * other keys and growing the table never touch the entries themselves (a million of
 * them are rebuilt at recovery). Deleted slots become tombstones, which keeps
 * iteration stable while entries are freed; growing clears them. */
struct slot {
    uint64_t hash;
    struct entry *e; /* NULL: empty; TOMBSTONE: deleted */
};

struct table {
    struct slot *slots;
    size_t cap;   /* a power of two, or 0 */
    size_t count; /* live entries */
    size_t used;  /* live entries and tombstones */
    bool by_idem;
};

/* Per function: entries due now and the async attempts it has on the controller. */
struct fnq {
    char name[FN_NAME_MAX + 1];
    struct list_node ready;
    unsigned running;
};

/* One attempt on the controller. */
struct run {
    struct invocation inv;
    struct async *a;
    struct entry *e;
    struct fnq *q;
    uint32_t index;
};

/* An END waiting for durability: the result goes to memory only then. */
struct ending {
    struct async *a;
    struct entry *e;
    struct fnq *q;
    enum status status;
    int64_t due_ms;
    struct buf result;
    bool truncated;
    uint8_t outcome;
};

/* An answer waiting for a barrier or an accept. */
struct pending_answer {
    struct async *a;
    struct entry *e; /* NULL for a redrive of a vanished entry */
    char id[INVOCATION_ID_LEN + 1];
    async_submit_cb *cb;
    async_sync_cb *sync_cb;
    void *data;
    bool redrive;
};

struct async {
    uv_loop_t *loop;
    struct registry *registry;
    struct controller *controller;
    struct eventlog *log;
    uint64_t window_ms;
    size_t result_max;
    struct slab entries; /* every struct entry */
    struct table ids, idems;
    struct fnq **fnqs;
    size_t nfnqs;
    struct entry **heap; /* min-heap on due_ms */
    size_t nheap, capheap;
    uv_timer_t retry_timer;
    uv_timer_t sweep_timer;
    unsigned running;    /* attempts on the controller, async and sync */
    unsigned outstanding; /* appends and answers whose callbacks have not run */
    bool stopping;
    bool log_closing, log_closed;
    int open_handles;
    void (*on_closed)(void *);
    void *closed_data;
    struct buf scratch;
};

/* --- encoding ---------------------------------------------------------------------- */

static void put_u8(struct buf *b, uint8_t v)
{
    buf_append(b, &v, 1);
}

static void put_u32(struct buf *b, uint32_t v)
{
    buf_append(b, &v, sizeof(v));
}

static void put_u64(struct buf *b, uint64_t v)
{
    buf_append(b, &v, sizeof(v));
}

static void put_bytes(struct buf *b, const void *p, size_t len)
{
    put_u32(b, (uint32_t)len);
    if (len)
        buf_append(b, p, len);
}

static void put_str(struct buf *b, const char *s)
{
    put_bytes(b, s, s ? strlen(s) : 0);
}

struct reader {
    const char *p;
    size_t left;
    bool bad;
};

static const char *take(struct reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint8_t get_u8(struct reader *r)
{
    const char *p = take(r, 1);
    return p ? (uint8_t)*p : 0;
}

static uint32_t get_u32(struct reader *r)
{
    uint32_t v = 0;
    const char *p = take(r, sizeof(v));
    if (p)
        memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t get_u64(struct reader *r)
{
    uint64_t v = 0;
    const char *p = take(r, sizeof(v));
    if (p)
        memcpy(&v, p, sizeof(v));
    return v;
}

static struct slice get_bytes(struct reader *r)
{
    uint32_t len = get_u32(r);
    const char *p = take(r, len);
    return p ? (struct slice){p, len} : SLICE_NULL;
}

/* A string field into a fresh allocation; NULL when empty. */
static char *get_str(struct reader *r)
{
    struct slice s = get_bytes(r);
    return s.len ? xstrndup(s.ptr, s.len) : NULL;
}

static void get_fixed(struct reader *r, char *out, size_t size)
{
    struct slice s = get_bytes(r);
    if (s.len >= size) {
        r->bad = true;
        s.len = 0;
    }
    memcpy(out, s.ptr ? s.ptr : "", s.len);
    out[s.len] = '\0';
}

/* --- hash tables ------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    /* FNV's low bits, which pick the slot, mix poorly for keys that differ only near
     * their end; linear probing needs them spread (a 64-bit finalizer, as MurmurHash3's). */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static const char *table_key(const struct table *t, const struct entry *e)
{
    return t->by_idem ? e->idem : e->id;
}

static struct entry tombstone;
#define TOMBSTONE (&tombstone)

/* The live entry in slot i, or NULL: for loops over every entry, which may free the
 * entry they are given. */
static struct entry *table_at(const struct table *t, size_t i)
{
    struct entry *e = t->slots[i].e;
    return e == TOMBSTONE ? NULL : e;
}

static void table_resize(struct table *t, size_t cap)
{
    struct slot *slots = huge_calloc(cap * sizeof(*slots));
    for (size_t i = 0; i < t->cap; i++) {
        struct slot sl = t->slots[i];
        if (sl.e == NULL || sl.e == TOMBSTONE)
            continue;
        size_t at = sl.hash & (cap - 1);
        while (slots[at].e)
            at = (at + 1) & (cap - 1);
        slots[at] = sl;
    }
    huge_free(t->slots, t->cap * sizeof(*t->slots));
    t->slots = slots;
    t->cap = cap;
    t->used = t->count;
}

/* Adds e, whose key is not in t. */
static void table_put(struct table *t, struct entry *e)
{
    if ((t->used + 1) * 2 > t->cap) /* at most half full, tombstones included */
        table_resize(t, t->count * 4 >= t->cap ? FND_MAX(t->cap * 2, (size_t)TABLE_MIN) : t->cap);
    uint64_t h = hash_str(table_key(t, e));
    size_t at = h & (t->cap - 1);
    while (t->slots[at].e && t->slots[at].e != TOMBSTONE)
        at = (at + 1) & (t->cap - 1);
    if (t->slots[at].e == NULL)
        t->used++;
    t->slots[at] = (struct slot){h, e};
    t->count++;
}

/* The slot of key (or of entry e, when given), or NULL. */
static struct slot *table_find(const struct table *t, const char *key, const struct entry *e)
{
    if (t->cap == 0)
        return NULL;
    uint64_t h = hash_str(key);
    for (size_t at = h & (t->cap - 1);; at = (at + 1) & (t->cap - 1)) {
        struct slot *sl = &t->slots[at];
        if (sl->e == NULL)
            return NULL;
        if (sl->e != TOMBSTONE && sl->hash == h &&
            (e ? sl->e == e : strcmp(table_key(t, sl->e), key) == 0))
            return sl;
    }
}

static struct entry *table_get(const struct table *t, const char *key)
{
    struct slot *sl = table_find(t, key, NULL);
    return sl ? sl->e : NULL;
}

static void table_del(struct table *t, struct entry *e)
{
    struct slot *sl = table_find(t, table_key(t, e), e);
    if (sl) {
        sl->e = TOMBSTONE;
        t->count--;
    }
}

/* --- entries ----------------------------------------------------------------------- */

static struct fnq *fnq_get(struct async *a, const char *name);

static struct entry *entry_new(struct async *a, const char *id, const char *fn)
{
    struct entry *e = slab_alloc(&a->entries);
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->q = fnq_get(a, fn);
    buf_init(&e->payload, 0);
    buf_init(&e->result, 0);
    list_init(&e->link);
    e->outcome = NO_OUTCOME;
    return e;
}

static void attempts_clear(struct entry *e)
{
    for (uint32_t i = 0; i < e->nattempts; i++)
        free(e->attempts[i].error);
    free(e->attempts);
    e->attempts = NULL;
    e->nattempts = 0;
}

static void heap_remove(struct async *a, struct entry *e);

static void entry_free(struct async *a, struct entry *e)
{
    table_del(&a->ids, e);
    if (e->idem)
        table_del(&a->idems, e);
    list_remove(&e->link);
    heap_remove(a, e);
    free(e->idem);
    buf_release(&e->payload);
    buf_release(&e->result);
    free(e->trace_id);
    free(e->client_context);
    attempts_clear(e);
    slab_free(&a->entries, e);
}

static struct attempt *attempt_at(struct entry *e, uint32_t index)
{
    if (index < e->nattempts)
        return &e->attempts[index];
    if (e->nattempts >= ATTEMPTS_MAX) { /* keep the first ones and the latest */
        struct attempt *last = &e->attempts[ATTEMPTS_MAX - 1];
        free(last->error);
        memset(last, 0, sizeof(*last));
        last->outcome = NO_OUTCOME;
        return last;
    }
    e->attempts = xrealloc(e->attempts, (e->nattempts + 1) * sizeof(*e->attempts));
    struct attempt *at = &e->attempts[e->nattempts++];
    memset(at, 0, sizeof(*at));
    at->outcome = NO_OUTCOME;
    return at;
}

static void encode_image(struct buf *b, const struct entry *e)
{
    buf_reset(b);
    put_str(b, e->id);
    put_str(b, e->q->name);
    put_str(b, e->idem);
    buf_append(b, e->sha, sizeof(e->sha));
    put_u8(b, e->sync);
    put_u64(b, (uint64_t)e->accepted_ms);
    put_str(b, e->trace_id);
    put_str(b, e->client_context);
    put_bytes(b, e->payload.data, e->payload.len);
    put_u8(b, (uint8_t)e->status);
    put_u32(b, e->failures);
    put_u64(b, (uint64_t)e->due_ms);
    put_u64(b, (uint64_t)e->ended_ms);
    put_u8(b, e->outcome);
    put_bytes(b, e->result.data, e->result.len);
    put_u8(b, e->truncated);
    put_u32(b, e->nattempts);
    for (uint32_t i = 0; i < e->nattempts; i++) {
        put_u64(b, (uint64_t)e->attempts[i].started_ms);
        put_u64(b, (uint64_t)e->attempts[i].ended_ms);
        put_u8(b, e->attempts[i].outcome);
        put_str(b, e->attempts[i].error);
    }
}

/* --- the retry heap ---------------------------------------------------------------- */

static void heap_set(struct async *a, size_t i, struct entry *e)
{
    a->heap[i] = e;
    e->heap_at = i + 1;
}

static void heap_up(struct async *a, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (a->heap[parent]->due_ms <= a->heap[i]->due_ms)
            break;
        struct entry *t = a->heap[parent];
        heap_set(a, parent, a->heap[i]);
        heap_set(a, i, t);
        i = parent;
    }
}

static void heap_down(struct async *a, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < a->nheap && a->heap[l]->due_ms < a->heap[m]->due_ms)
            m = l;
        if (r < a->nheap && a->heap[r]->due_ms < a->heap[m]->due_ms)
            m = r;
        if (m == i)
            return;
        struct entry *t = a->heap[m];
        heap_set(a, m, a->heap[i]);
        heap_set(a, i, t);
        i = m;
    }
}

static void heap_remove(struct async *a, struct entry *e)
{
    if (e->heap_at == 0)
        return;
    size_t i = e->heap_at - 1;
    e->heap_at = 0;
    struct entry *last = a->heap[--a->nheap];
    if (i < a->nheap) {
        heap_set(a, i, last);
        heap_up(a, i);
        heap_down(a, last->heap_at - 1);
    }
}

static void arm_retry_timer(struct async *a);

static void heap_push(struct async *a, struct entry *e)
{
    if (a->nheap == a->capheap) {
        a->capheap = a->capheap ? a->capheap * 2 : 64;
        a->heap = xrealloc(a->heap, a->capheap * sizeof(*a->heap));
    }
    heap_set(a, a->nheap++, e);
    heap_up(a, a->nheap - 1);
    arm_retry_timer(a);
}

/* --- dispatch ---------------------------------------------------------------------- */

/* The queue of a function, created on first use. fnqs is sorted by name: replay looks
 * one up per accepted invocation, and a daemon may hold thousands of functions. */
static struct fnq *fnq_get(struct async *a, const char *name)
{
    size_t lo = 0, hi = a->nfnqs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(a->fnqs[mid]->name, name);
        if (cmp == 0)
            return a->fnqs[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct fnq *q = xcalloc(1, sizeof(*q));
    snprintf(q->name, sizeof(q->name), "%s", name);
    list_init(&q->ready);
    a->fnqs = xrealloc(a->fnqs, (a->nfnqs + 1) * sizeof(*a->fnqs));
    memmove(&a->fnqs[lo + 1], &a->fnqs[lo], (a->nfnqs - lo) * sizeof(*a->fnqs));
    a->fnqs[lo] = q;
    a->nfnqs++;
    return q;
}

/* The entry is due: now or at due_ms. */
static void schedule(struct async *a, struct entry *e)
{
    list_remove(&e->link);
    heap_remove(a, e);
    if (e->due_ms > clock_wall_ms())
        heap_push(a, e);
    else
        list_push_back(&e->q->ready, &e->link);
}

static uint64_t backoff_ms(const struct fn_retry *r, uint32_t failures)
{
    double d = (double)r->base_delay_ms * pow(2.0, failures > 0 ? failures - 1 : 0);
    d = FND_MIN(d, (double)r->max_delay_ms);
    uint32_t rnd;
    random_bytes(&rnd, sizeof(rnd));
    /* Equal jitter: half the delay, plus up to another half at random, so retries of
     * many invocations that failed together spread out. */
    return (uint64_t)(d / 2 + d / 2 * ((double)rnd / 4294967296.0));
}

static void append_or_warn(struct async *a, uint32_t type, const struct buf *b)
{
    int rc = eventlog_append(a->log, type, b->data, b->len, NULL, NULL);
    if (rc < 0)
        log_warn("event log append failed", "type=%u err=\"%s\"", type, strerror(-rc));
}

static void on_ended(int status, void *data);
static void maybe_free(struct async *a);
static void pump(struct async *a);

/* Writes the END of attempt index (or a status change when NO_ATTEMPT); memory
 * follows in on_ended once it is durable. */
static void end_attempt(struct async *a, struct entry *e, struct fnq *q, uint32_t index,
                        uint8_t outcome, struct slice body, enum status st, int64_t due_ms)
{
    int64_t now = clock_wall_ms();
    struct ending *en = xcalloc(1, sizeof(*en));
    *en = (struct ending){a, e, q, st, due_ms, {0}, false, outcome};
    buf_init(&en->result, 0);
    /* The result must fit one record beside the error and the fixed fields. */
    size_t room = eventlog_record_max(a->log) - ERROR_MAX - 512;
    size_t keep = FND_MIN(body.len, FND_MIN(a->result_max, room));
    buf_append(&en->result, body.ptr, keep);
    en->truncated = keep < body.len;
    struct buf *b = &a->scratch;
    buf_reset(b);
    put_str(b, e->id);
    put_u32(b, index);
    put_u64(b, (uint64_t)now);
    put_u8(b, outcome);
    put_bytes(b, body.ptr, outcome == INV_SUCCESS ? 0 : FND_MIN(body.len, ERROR_MAX));
    put_u8(b, (uint8_t)st);
    put_u32(b, e->failures);
    put_u64(b, (uint64_t)due_ms);
    put_bytes(b, en->result.data, en->result.len);
    put_u8(b, en->truncated);
    /* The attempt's own record is memory-only until then, but harmless to show. */
    if (index != NO_ATTEMPT) {
        struct attempt *at = attempt_at(e, index);
        at->ended_ms = now;
        at->outcome = outcome;
        free(at->error);
        at->error = outcome == INV_SUCCESS || body.len == 0
                        ? NULL : xstrndup(body.ptr, FND_MIN(body.len, ERROR_MAX));
    }
    a->outstanding++;
    int rc = eventlog_append(a->log, REC_END, b->data, b->len, on_ended, en);
    if (rc < 0)
        on_ended(rc, en); /* read-only: the entry waits for the log to come back */
}

static void answer_sync(struct async *a, struct entry *e, bool replayed);

static void on_ended(int status, void *data)
{
    struct ending *en = data;
    struct async *a = en->a;
    struct entry *e = en->e;
    a->outstanding--;
    if (en->q)
        en->q->running--;
    if (status != 0 || a->stopping) {
        /* Not durable, or nobody will look: as after a crash, the attempt did not end
         * as far as the log knows, so it runs again once the log is writable. */
        buf_release(&en->result);
        free(en);
        if (e->sync) {
            async_sync_cb *cb = e->sync_cb;
            void *cbdata = e->sync_data;
            entry_free(a, e); /* forgotten, as a restart would */
            if (cb)
                cb(-EROFS, NULL, cbdata);
        } else if (!a->stopping) {
            e->status = ST_QUEUED;
            e->due_ms = clock_wall_ms() + 1000;
            schedule(a, e);
        }
        maybe_free(a);
        return;
    }
    e->status = en->status;
    e->due_ms = en->due_ms;
    if (en->outcome != NO_OUTCOME) {
        e->outcome = en->outcome;
        buf_move(&e->result, &en->result);
        e->truncated = en->truncated;
    }
    if (terminal(e->status)) {
        e->ended_ms = clock_wall_ms();
        if (e->status == ST_SUCCEEDED)
            buf_release(&e->payload);
    } else {
        schedule(a, e);
    }
    buf_release(&en->result);
    free(en);
    if (e->sync && e->sync_cb)
        answer_sync(a, e, false);
    pump(a);
}

static void on_attempt_done(struct invocation *inv, const struct inv_result *res)
{
    struct run *r = container_of(inv, struct run, inv);
    struct async *a = r->a;
    struct entry *e = r->e;
    a->running--;
    if (a->stopping) {
        /* The daemon is stopping: record nothing; the attempt counts as interrupted
         * at the next start. */
        if (r->q)
            r->q->running--;
        invocation_release(inv);
        free(r);
        if (e->sync && e->sync_cb) {
            async_sync_cb *cb = e->sync_cb;
            e->sync_cb = NULL;
            cb(-EROFS, NULL, e->sync_data);
        }
        maybe_free(a);
        return;
    }
    struct function *fn = registry_lookup(a->registry, slice_from_cstr(e->q->name));
    struct fn_retry policy = {3, 60000, 120000, 21600};
    if (fn)
        policy = fn->current->config.retry;
    int64_t now = clock_wall_ms();
    enum status st;
    int64_t due = 0;
    enum inv_outcome o = res->outcome;
    if (e->sync) {
        if (o == INV_THROTTLED || o == INV_CANCELLED) {
            /* Not an execution: forget the key, so that a retry may run it. */
            struct buf *b = &a->scratch;
            buf_reset(b);
            put_str(b, e->id);
            append_or_warn(a, REC_FORGET, b);
            char id[INVOCATION_ID_LEN + 1];
            memcpy(id, e->id, sizeof(id));
            struct async_sync_result sr = {id, o, res->body, false};
            async_sync_cb *cb = e->sync_cb;
            void *cbdata = e->sync_data;
            entry_free(a, e);
            invocation_release(inv);
            free(r);
            cb(0, &sr, cbdata);
            return;
        }
        st = o == INV_SUCCESS ? ST_SUCCEEDED : ST_FAILED;
    } else if (o == INV_SUCCESS) {
        st = ST_SUCCEEDED;
    } else if (o == INV_CANCELLED) {
        st = ST_FAILED; /* the function was deleted */
    } else {
        if (o != INV_THROTTLED) /* Lambda retries throttles without counting them */
            e->failures++;
        bool too_old = now - e->accepted_ms > (int64_t)policy.max_event_age_s * 1000;
        if (e->failures >= policy.max_attempts || too_old) {
            st = ST_DEAD_LETTER;
            metrics_inc(METRIC_DEAD_LETTERS, e->q->name, NULL);
        } else {
            st = ST_RETRYING;
            metrics_inc(METRIC_RETRIES, e->q->name, NULL);
            due = now + (int64_t)backoff_ms(&policy, FND_MAX(e->failures, 1));
        }
    }
    struct fnq *q = r->q;
    uint32_t index = r->index;
    end_attempt(a, e, q, index, (uint8_t)o, res->body, st, due);
    invocation_release(inv);
    free(r);
}

/* Hands the entry to the controller as attempt n. */
static void start_attempt(struct async *a, struct entry *e, struct fnq *q)
{
    struct function *fn = registry_lookup(a->registry, slice_from_cstr(e->q->name));
    if (fn == NULL) {
        static const char body[] = "{\"errorType\":\"ResourceNotFoundException\","
                                   "\"errorMessage\":\"the function was deleted\"}";
        e->status = ST_RUNNING;
        if (q)
            q->running++;
        end_attempt(a, e, q, NO_ATTEMPT, INV_CANCELLED, SLICE_LIT(body), ST_FAILED, 0);
        return;
    }
    int64_t now = clock_wall_ms();
    const struct fn_retry *policy = &fn->current->config.retry;
    if (!e->sync && now - e->accepted_ms > (int64_t)policy->max_event_age_s * 1000) {
        static const char body[] = "{\"errorType\":\"EventAgeExceeded\","
                                   "\"errorMessage\":\"the event passed max_event_age_s\"}";
        e->status = ST_RUNNING;
        if (q)
            q->running++;
        metrics_inc(METRIC_DEAD_LETTERS, e->q->name, NULL);
        end_attempt(a, e, q, NO_ATTEMPT, INV_TIMEOUT, SLICE_LIT(body), ST_DEAD_LETTER, 0);
        return;
    }
    uint32_t index = FND_MIN(e->nattempts, ATTEMPTS_MAX - 1);
    struct attempt *at = attempt_at(e, e->nattempts);
    at->started_ms = now;
    e->status = ST_RUNNING;
    struct buf *b = &a->scratch;
    buf_reset(b);
    put_str(b, e->id);
    put_u32(b, index);
    put_u64(b, (uint64_t)now);
    append_or_warn(a, REC_START, b);

    struct run *r = xcalloc(1, sizeof(*r));
    invocation_init(&r->inv, 0);
    memcpy(r->inv.id, e->id, sizeof(r->inv.id)); /* the same request id on every attempt */
    buf_append(&r->inv.payload, e->payload.data ? e->payload.data : "", e->payload.len);
    r->inv.trace_id = e->trace_id ? xstrdup(e->trace_id) : NULL;
    r->inv.client_context = e->client_context ? xstrdup(e->client_context) : NULL;
    r->inv.on_done = on_attempt_done;
    r->a = a;
    r->e = e;
    r->q = q;
    r->index = index;
    if (q)
        q->running++;
    a->running++;
    int rc = controller_submit(a->controller, fn, &r->inv);
    if (rc < 0) {
        /* The function's queue is full (sync traffic): a throttle, retried shortly. */
        static const char body[] = "{\"errorType\":\"TooManyRequestsException\","
                                   "\"errorMessage\":\"the function's queue is full\"}";
        struct inv_result res = {.outcome = rc == -EAGAIN ? INV_THROTTLED : INV_CANCELLED,
                                 .body = SLICE_LIT(body)};
        on_attempt_done(&r->inv, &res);
    }
}

static void pump(struct async *a)
{
    if (a->stopping)
        return;
    if (eventlog_error(a->log) != 0) {
        arm_retry_timer(a); /* look again once a second until the log is writable */
        return;
    }
    for (size_t i = 0; i < a->nfnqs; i++) {
        struct fnq *q = a->fnqs[i];
        if (list_empty(&q->ready))
            continue;
        struct function *fn = registry_lookup(a->registry, slice_from_cstr(q->name));
        unsigned limit = fn ? fn->current->config.max_instances : 1;
        while (!list_empty(&q->ready) && q->running < limit) {
            struct entry *e = container_of(q->ready.next, struct entry, link);
            list_remove(&e->link);
            start_attempt(a, e, q);
        }
    }
}

static void on_retry_timer(uv_timer_t *t)
{
    struct async *a = container_of(t, struct async, retry_timer);
    int64_t now = clock_wall_ms();
    while (a->nheap > 0 && a->heap[0]->due_ms <= now) {
        struct entry *e = a->heap[0];
        heap_remove(a, e);
        list_push_back(&e->q->ready, &e->link);
    }
    pump(a);
    arm_retry_timer(a);
}

static void arm_retry_timer(struct async *a)
{
    if (a->stopping)
        return;
    /* While the log is read-only, look again each second. */
    int64_t wait = a->nheap ? a->heap[0]->due_ms - clock_wall_ms() : 1000;
    wait = FND_MAX(wait, (int64_t)1);
    if (a->nheap || eventlog_error(a->log))
        uv_timer_start(&a->retry_timer, on_retry_timer, (uint64_t)FND_MIN(wait, 1000), 0);
}

/* Drops expired terminal entries and keys. */
static void sweep(struct async *a)
{
    int64_t now = clock_wall_ms();
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e == NULL)
            continue;
        if (terminal(e->status) && e->status != ST_DEAD_LETTER &&
            now - e->ended_ms > (int64_t)a->window_ms)
            entry_free(a, e);
        else if (e->idem && now - e->accepted_ms > (int64_t)a->window_ms) {
            table_del(&a->idems, e);
            free(e->idem);
            e->idem = NULL;
        }
    }
}

static void on_sweep(uv_timer_t *t)
{
    sweep(container_of(t, struct async, sweep_timer));
}

/* --- replay and checkpoints -------------------------------------------------------- */

static void replay_accept(struct async *a, struct reader *r)
{
    char id[INVOCATION_ID_LEN + 1], fn[FN_NAME_MAX + 1];
    get_fixed(r, id, sizeof(id));
    get_fixed(r, fn, sizeof(fn));
    if (r->bad)
        return;
    struct entry *e = table_get(&a->ids, id);
    if (e) /* a checkpoint's image replaces what earlier records built */
        entry_free(a, e);
    e = entry_new(a, id, fn);
    e->idem = get_str(r);
    const char *sha = take(r, sizeof(e->sha));
    if (sha)
        memcpy(e->sha, sha, sizeof(e->sha));
    e->sync = get_u8(r);
    e->accepted_ms = (int64_t)get_u64(r);
    e->trace_id = get_str(r);
    e->client_context = get_str(r);
    struct slice p = get_bytes(r);
    if (p.len)
        buf_append(&e->payload, p.ptr, p.len);
    uint8_t st = get_u8(r);
    e->status = (enum status)FND_MIN(st, (uint8_t)ST_DEAD_LETTER);
    e->failures = get_u32(r);
    e->due_ms = (int64_t)get_u64(r);
    e->ended_ms = (int64_t)get_u64(r);
    e->outcome = get_u8(r);
    struct slice res = get_bytes(r);
    if (res.len)
        buf_append(&e->result, res.ptr, res.len);
    e->truncated = get_u8(r);
    uint32_t n = get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad && i < ATTEMPTS_MAX; i++) {
        struct attempt *at = attempt_at(e, i);
        at->started_ms = (int64_t)get_u64(r);
        at->ended_ms = (int64_t)get_u64(r);
        at->outcome = get_u8(r);
        at->error = get_str(r);
    }
    e->durable = true;
    table_put(&a->ids, e);
    if (e->idem) {
        struct entry *old = table_get(&a->idems, e->idem);
        if (old) { /* an expired key reused: the newer entry owns it */
            table_del(&a->idems, old);
            free(old->idem);
            old->idem = NULL;
        }
        table_put(&a->idems, e);
    }
}

static void on_replay(uint32_t type, uint64_t seq, struct slice payload, void *data)
{
    struct async *a = data;
    struct reader r = {payload.ptr, payload.len, false};
    if (type == REC_ACCEPT) {
        replay_accept(a, &r);
        return;
    }
    char id[INVOCATION_ID_LEN + 1];
    get_fixed(&r, id, sizeof(id));
    struct entry *e = r.bad ? NULL : table_get(&a->ids, id);
    if (e == NULL)
        return; /* its accept was checkpointed away: it had expired */
    if (type == REC_START) {
        uint32_t index = get_u32(&r);
        struct attempt *at = attempt_at(e, index < e->nattempts ? index : e->nattempts);
        at->started_ms = (int64_t)get_u64(&r);
        at->ended_ms = 0;
        at->outcome = NO_OUTCOME;
        e->status = ST_RUNNING;
    } else if (type == REC_END) {
        uint32_t index = get_u32(&r);
        int64_t ended = (int64_t)get_u64(&r);
        uint8_t outcome = get_u8(&r);
        struct slice err = get_bytes(&r);
        if (index != NO_ATTEMPT) {
            struct attempt *at = attempt_at(e, index < e->nattempts ? index : e->nattempts);
            at->ended_ms = ended;
            at->outcome = outcome;
            free(at->error);
            at->error = err.len ? xstrndup(err.ptr, err.len) : NULL;
        }
        uint8_t st = get_u8(&r);
        e->status = (enum status)FND_MIN(st, (uint8_t)ST_DEAD_LETTER);
        e->failures = get_u32(&r);
        e->due_ms = (int64_t)get_u64(&r);
        struct slice res = get_bytes(&r);
        uint8_t truncated = get_u8(&r);
        if (r.bad)
            return;
        e->outcome = outcome;
        buf_reset(&e->result);
        if (res.len)
            buf_append(&e->result, res.ptr, res.len);
        e->truncated = truncated;
        if (terminal(e->status)) {
            e->ended_ms = ended;
            if (e->status == ST_SUCCEEDED)
                buf_release(&e->payload);
        }
    } else if (type == REC_REDRIVE) {
        int64_t at = (int64_t)get_u64(&r);
        e->status = ST_QUEUED;
        e->failures = 0;
        e->accepted_ms = at;
        e->due_ms = 0;
    } else if (type == REC_FORGET) {
        entry_free(a, e);
    }
}

/* After replay: interrupted attempts count as failed; due entries are scheduled. */
static void resume(struct async *a)
{
    int64_t now = clock_wall_ms();
    size_t interrupted = 0, pending = 0;
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e == NULL)
            continue;
        if (e->status == ST_RUNNING) {
            interrupted++;
            if (e->nattempts) {
                struct attempt *at = &e->attempts[e->nattempts - 1];
                if (at->ended_ms == 0) {
                    at->ended_ms = now;
                    at->outcome = INV_CRASH;
                    at->error = xstrdup("{\"errorType\":\"Fnd.Interrupted\",\"errorMessage\":"
                                        "\"the daemon stopped during this attempt\"}");
                }
            }
            if (e->sync) { /* its caller is gone; a retry with the key runs again */
                entry_free(a, e);
                continue;
            }
            e->failures++;
            struct function *fn = registry_lookup(a->registry, slice_from_cstr(e->q->name));
            uint32_t max = fn ? fn->current->config.retry.max_attempts : 1;
            e->status = e->failures >= max ? ST_DEAD_LETTER : ST_RETRYING;
            if (e->status == ST_DEAD_LETTER) {
                e->ended_ms = now;
                e->outcome = INV_CRASH;
            }
            e->due_ms = now;
        }
        if (!terminal(e->status)) {
            if (e->sync) { /* accepted but never started: forget it too */
                entry_free(a, e);
                continue;
            }
            pending++;
            schedule(a, e);
        }
    }
    log_info("async invocations recovered", "invocations=%zu pending=%zu interrupted=%zu",
             a->ids.count, pending, interrupted);
}

/* A checkpoint: the image of every live entry, when that is much less than the log
 * holds since the last one. */
static bool on_rotate(void *data)
{
    struct async *a = data;
    sweep(a);
    uint64_t live = 0;
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e)
            live += 256 + e->payload.len + e->result.len;
    }
    if (live * 2 > eventlog_bytes_since_checkpoint(a->log))
        return false;
    struct buf img;
    buf_init(&img, 0);
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e == NULL || !e->durable)
            continue; /* a non-durable one: its own accept record is on the way */
        encode_image(&img, e);
        if (eventlog_append(a->log, REC_ACCEPT, img.data, img.len, NULL, NULL) < 0) {
            buf_release(&img);
            return false;
        }
    }
    buf_release(&img);
    return true;
}

/* --- accepting --------------------------------------------------------------------- */

static struct async_sync_result sync_result(const struct entry *e, bool replayed)
{
    return (struct async_sync_result){e->id, e->outcome == NO_OUTCOME ? INV_CRASH : e->outcome,
                                      buf_slice(&e->result), replayed};
}

static void answer_sync(struct async *a, struct entry *e, bool replayed)
{
    async_sync_cb *cb = e->sync_cb;
    void *data = e->sync_data;
    e->sync_cb = NULL;
    struct async_sync_result sr = sync_result(e, replayed);
    cb(0, &sr, data);
}

static void on_accepted(int status, void *data)
{
    struct pending_answer *pa = data;
    struct async *a = pa->a;
    struct entry *e = pa->e;
    a->outstanding--;
    if (status != 0) {
        /* Never durable: it does not exist (or stays a dead letter). */
        if (e && !pa->redrive)
            entry_free(a, e);
        else if (e)
            e->status = ST_DEAD_LETTER;
        if (pa->cb)
            pa->cb(-EROFS, pa->id, pa->data);
        else
            pa->sync_cb(-EROFS, NULL, pa->data);
        free(pa);
        maybe_free(a);
        return;
    }
    if (pa->redrive && e) {
        e->status = ST_QUEUED;
        e->failures = 0;
        e->accepted_ms = clock_wall_ms();
        e->due_ms = 0;
        e->ended_ms = 0;
        schedule(a, e);
    } else if (e) {
        e->durable = true;
    }
    if (pa->cb) {
        pa->cb(0, pa->id, pa->data);
        if (e && !pa->redrive && !a->stopping && !e->sync)
            schedule(a, e);
    } else if (e && !a->stopping) {
        /* A sync invocation runs at once, beside the async backlog. */
        e->sync_cb = pa->sync_cb;
        e->sync_data = pa->data;
        start_attempt(a, e, NULL);
    } else {
        pa->sync_cb(-EROFS, NULL, pa->data);
    }
    free(pa);
    pump(a);
    maybe_free(a);
}

/* Answers a duplicate once everything before it, its original included, is durable. */
static void on_duplicate(int status, void *data)
{
    struct pending_answer *pa = data;
    struct async *a = pa->a;
    a->outstanding--;
    struct entry *e = table_get(&a->ids, pa->id);
    if (status != 0 || e == NULL) {
        if (pa->cb)
            pa->cb(-EROFS, pa->id, pa->data);
        else
            pa->sync_cb(-EROFS, NULL, pa->data);
    } else if (pa->cb) {
        pa->cb(0, pa->id, pa->data);
    } else {
        struct async_sync_result sr = sync_result(e, true);
        pa->sync_cb(0, &sr, pa->data);
    }
    free(pa);
    maybe_free(a);
}

static int submit(struct async *a, struct function *fn, struct buf *payload, struct slice key,
                  const char *trace_id, const char *client_context, async_submit_cb *cb,
                  async_sync_cb *sync_cb, void *data)
{
    struct buf body;
    buf_init(&body, 0);
    buf_move(&body, payload);
    int rc;
    if (a->stopping) {
        rc = -ECANCELED;
        goto fail;
    }
    if (key.ptr && (key.len == 0 || key.len > ASYNC_KEY_MAX || memchr(key.ptr, '\n', key.len))) {
        rc = -EINVAL;
        goto fail;
    }
    if (eventlog_error(a->log) != 0) {
        rc = -EROFS;
        goto fail;
    }
    unsigned char sha[32] = {0};
    char *idem = NULL;
    if (key.ptr) {
        sha256(body.data ? body.data : "", body.len, sha);
        idem = xasprintf("%s\n%.*s", fn->name, (int)key.len, key.ptr);
        struct entry *old = table_get(&a->idems, idem);
        if (old && clock_wall_ms() - old->accepted_ms > (int64_t)a->window_ms) {
            table_del(&a->idems, old); /* expired: the key is free again */
            free(old->idem);
            old->idem = NULL;
            old = NULL;
        }
        if (old) {
            free(idem);
            if (memcmp(old->sha, sha, sizeof(sha)) != 0) {
                rc = -EEXIST;
                goto fail;
            }
            if (sync_cb && !terminal(old->status)) {
                rc = -EBUSY;
                goto fail;
            }
            struct pending_answer *pa = xcalloc(1, sizeof(*pa));
            *pa = (struct pending_answer){a, old, "", cb, sync_cb, data, false};
            memcpy(pa->id, old->id, sizeof(pa->id));
            rc = eventlog_barrier(a->log, on_duplicate, pa);
            if (rc < 0) {
                free(pa);
                rc = -EROFS;
                goto fail;
            }
            a->outstanding++;
            buf_release(&body);
            return 0;
        }
    }
    char id[INVOCATION_ID_LEN + 1];
    invocation_new_id(id);
    struct entry *e = entry_new(a, id, fn->name);
    e->idem = idem;
    memcpy(e->sha, sha, sizeof(sha));
    e->sync = sync_cb != NULL;
    e->accepted_ms = clock_wall_ms();
    e->status = ST_QUEUED;
    e->trace_id = trace_id ? xstrdup(trace_id) : NULL;
    e->client_context = client_context ? xstrdup(client_context) : NULL;
    buf_move(&e->payload, &body);
    encode_image(&a->scratch, e);
    struct pending_answer *pa = xcalloc(1, sizeof(*pa));
    *pa = (struct pending_answer){a, e, "", cb, sync_cb, data, false};
    memcpy(pa->id, id, sizeof(pa->id));
    rc = eventlog_append(a->log, REC_ACCEPT, a->scratch.data, a->scratch.len, on_accepted, pa);
    if (rc < 0) {
        free(pa);
        buf_move(&body, &e->payload);
        entry_free(a, e);
        rc = rc == -E2BIG ? -E2BIG : -EROFS;
        goto fail;
    }
    a->outstanding++;
    table_put(&a->ids, e);
    if (e->idem)
        table_put(&a->idems, e);
    return 0;

fail:
    buf_release(&body);
    return rc;
}

int async_submit(struct async *a, struct function *fn, struct buf *payload, struct slice key,
                 const char *trace_id, const char *client_context, async_submit_cb *cb,
                 void *data)
{
    return submit(a, fn, payload, key, trace_id, client_context, cb, NULL, data);
}

int async_invoke_sync(struct async *a, struct function *fn, struct buf *payload,
                      struct slice key, const char *trace_id, const char *client_context,
                      async_sync_cb *cb, void *data)
{
    return submit(a, fn, payload, key, trace_id, client_context, NULL, cb, data);
}

int async_redrive(struct async *a, struct slice id, async_submit_cb *cb, void *data)
{
    if (a->stopping)
        return -ECANCELED;
    char cid[INVOCATION_ID_LEN + 1];
    if (id.len != INVOCATION_ID_LEN)
        return -ENOENT;
    memcpy(cid, id.ptr, id.len);
    cid[id.len] = '\0';
    struct entry *e = table_get(&a->ids, cid);
    if (e == NULL)
        return -ENOENT;
    if (e->status != ST_DEAD_LETTER)
        return -EINVAL;
    if (eventlog_error(a->log) != 0)
        return -EROFS;
    struct buf *b = &a->scratch;
    buf_reset(b);
    put_str(b, e->id);
    put_u64(b, (uint64_t)clock_wall_ms());
    struct pending_answer *pa = xcalloc(1, sizeof(*pa));
    *pa = (struct pending_answer){a, e, "", cb, NULL, data, true};
    memcpy(pa->id, e->id, sizeof(pa->id));
    int rc = eventlog_append(a->log, REC_REDRIVE, b->data, b->len, on_accepted, pa);
    if (rc < 0) {
        free(pa);
        return -EROFS;
    }
    a->outstanding++;
    e->status = ST_QUEUED; /* refuses a second redrive meanwhile */
    return 0;
}

/* --- queries ----------------------------------------------------------------------- */

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    if (ms)
        cJSON_AddNumberToObject(o, name, (double)ms / 1000.0);
    else
        cJSON_AddNullToObject(o, name);
}

/* Bodies are JSON for interpreted runtimes; anything else is shown as a string. */
static void add_body(cJSON *o, const char *name, const char *p, size_t len)
{
    cJSON *j = len ? cJSON_ParseWithLength(p, len) : NULL;
    if (j == NULL && len) {
        char *text = xstrndup(p, len);
        j = cJSON_CreateString(text);
        free(text);
    }
    cJSON_AddItemToObject(o, name, j ? j : cJSON_CreateNull());
}

static cJSON *entry_json(const struct entry *e, bool with_result)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "invocation_id", e->id);
    cJSON_AddStringToObject(o, "function", e->q->name);
    cJSON_AddStringToObject(o, "status", status_words[e->status]);
    cJSON_AddStringToObject(o, "mode", e->sync ? "sync" : "async");
    add_time(o, "accepted", e->accepted_ms);
    if (e->status == ST_RETRYING)
        add_time(o, "next_attempt", e->due_ms);
    cJSON *list = cJSON_AddArrayToObject(o, "attempts");
    for (uint32_t i = 0; i < e->nattempts; i++) {
        const struct attempt *at = &e->attempts[i];
        cJSON *x = cJSON_CreateObject();
        add_time(x, "started", at->started_ms);
        add_time(x, "ended", at->ended_ms);
        if (at->outcome == NO_OUTCOME)
            cJSON_AddNullToObject(x, "outcome");
        else
            cJSON_AddStringToObject(x, "outcome", inv_outcome_word(at->outcome));
        add_body(x, "error", at->error, at->error ? strlen(at->error) : 0);
        cJSON_AddItemToArray(list, x);
    }
    bool ok = e->outcome == INV_SUCCESS;
    if (with_result && terminal(e->status)) {
        if (ok)
            add_body(o, "result", e->result.data, e->result.len);
        else
            cJSON_AddNullToObject(o, "result");
        if (e->truncated)
            cJSON_AddTrueToObject(o, "result_truncated");
    }
    if (terminal(e->status) && !ok)
        add_body(o, "error", e->result.data, e->result.len);
    else
        cJSON_AddNullToObject(o, "error");
    return o;
}

cJSON *async_invocation_json(struct async *a, struct slice id)
{
    if (id.len != INVOCATION_ID_LEN)
        return NULL;
    char cid[INVOCATION_ID_LEN + 1];
    memcpy(cid, id.ptr, id.len);
    cid[id.len] = '\0';
    struct entry *e = table_get(&a->ids, cid);
    return e && e->durable ? entry_json(e, true) : NULL;
}

cJSON *async_dead_letters_json(struct async *a, struct slice fn_name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "dead_letters");
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e && e->status == ST_DEAD_LETTER && slice_eq(fn_name, e->q->name))
            cJSON_AddItemToArray(list, entry_json(e, false));
    }
    return o;
}

void async_stats(struct async *a, cJSON *obj)
{
    size_t pending = 0, dead = 0;
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e) {
            pending += !terminal(e->status);
            dead += e->status == ST_DEAD_LETTER;
        }
    }
    cJSON *o = cJSON_AddObjectToObject(obj, "async");
    cJSON_AddNumberToObject(o, "pending", (double)pending);
    cJSON_AddNumberToObject(o, "running", a->running);
    cJSON_AddNumberToObject(o, "dead_letters", (double)dead);
    cJSON_AddStringToObject(o, "backend", eventlog_backend(a->log));
    int err = eventlog_error(a->log);
    if (err)
        cJSON_AddStringToObject(o, "read_only", strerror(-err));
    else
        cJSON_AddFalseToObject(o, "read_only");
}

/* --- open and close ---------------------------------------------------------------- */

/* Frees every entry and table a holds, not a itself. */
static void release_state(struct async *a)
{
    for (size_t i = 0; i < a->ids.cap; i++) {
        struct entry *e = table_at(&a->ids, i);
        if (e)
            entry_free(a, e);
    }
    huge_free(a->ids.slots, a->ids.cap * sizeof(*a->ids.slots));
    huge_free(a->idems.slots, a->idems.cap * sizeof(*a->idems.slots));
    free(a->heap);
    for (size_t i = 0; i < a->nfnqs; i++)
        free(a->fnqs[i]);
    free(a->fnqs);
    slab_release(&a->entries);
    buf_release(&a->scratch);
}

int async_open(struct async **out, uv_loop_t *loop, const struct async_options *opts,
               char *err, size_t errsize)
{
    struct async *a = xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->registry = opts->registry;
    a->controller = opts->controller;
    a->window_ms = opts->idempotency_window_ms;
    a->result_max = opts->result_max;
    a->idems.by_idem = true;
    slab_init(&a->entries, sizeof(struct entry));
    buf_init(&a->scratch, 0);
    int rc = eventlog_open(&a->log, loop, &opts->log, on_replay, a, err, errsize);
    if (rc < 0) {
        release_state(a);
        free(a);
        return rc;
    }
    eventlog_set_rotate(a->log, on_rotate, a);
    uv_timer_init(loop, &a->retry_timer);
    uv_timer_init(loop, &a->sweep_timer);
    a->open_handles = 2;
    resume(a);
    uv_timer_start(&a->sweep_timer, on_sweep, SWEEP_MS, SWEEP_MS);
    arm_retry_timer(a);
    pump(a);
    *out = a;
    return 0;
}

static void free_async(struct async *a)
{
    release_state(a);
    void (*on_closed)(void *) = a->on_closed;
    void *data = a->closed_data;
    free(a);
    if (on_closed)
        on_closed(data);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct async *a = h->data;
    a->open_handles--;
    maybe_free(a);
}

static void on_log_closed(void *data)
{
    struct async *a = data;
    a->log_closed = true;
    maybe_free(a);
}

/* Frees a stopping manager once the log is flushed, its timers are closed and no
 * attempt is still on the controller. */
static void maybe_free(struct async *a)
{
    if (!a->stopping)
        return;
    if (a->outstanding == 0 && !a->log_closing) {
        a->log_closing = true;
        eventlog_close(a->log, on_log_closed, a);
        return;
    }
    if (a->log_closed && a->open_handles == 0 && a->running == 0)
        free_async(a);
}

void async_close(struct async *a, void (*on_closed)(void *), void *data)
{
    a->stopping = true;
    a->on_closed = on_closed;
    a->closed_data = data;
    a->retry_timer.data = a->sweep_timer.data = a;
    uv_close((uv_handle_t *)&a->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&a->sweep_timer, on_timer_closed);
    maybe_free(a);
}
