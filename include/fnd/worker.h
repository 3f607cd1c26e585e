/*
 * A worker: one warm process running one function version, driven over the framed
 * protocol of include/fnd/protocol.h. The worker module owns the process and its
 * pipes; the controller decides when to start, use and stop workers and hears back
 * through struct worker_events.
 *
 * States: STARTING (spawned, loading the handler) -> IDLE <-> BUSY, and from any state
 * -> STOPPING (asked to stop, timed out, crashed, broke the protocol) -> gone. Every
 * invocation handed to worker_invoke() is reported back exactly once through
 * on_finished, and every worker ends with exactly one on_gone, after which it is freed.
 */
#ifndef FND_WORKER_H
#define FND_WORKER_H

#include "fnd/cgroup.h"
#include "fnd/funclog.h"
#include "fnd/invocation.h"
#include "fnd/protocol.h"
#include "fnd/list.h"
#include "fnd/registry.h"
#include "fnd/runtime.h"
#include "fnd/sandbox.h"

#include <uv.h>

#define WORKER_STATES(X)                                                                       \
    X(STARTING, "starting")                                                                    \
    X(IDLE, "idle")                                                                            \
    X(BUSY, "busy")                                                                            \
    X(STOPPING, "stopping")

enum worker_state {
#define WORKER_STATE_ENUM(id, name) WORKER_##id,
    WORKER_STATES(WORKER_STATE_ENUM)
#undef WORKER_STATE_ENUM
        WORKER__STATES
};

struct worker;
struct cJSON;

/* The per-invocation metadata of the INVOKE frame, as a cJSON tree built once per
 * worker: each invocation only sets its values and prints it into the frame (worker.c,
 * send_event), so an event costs no allocation. */
struct event_meta {
    struct cJSON *obj;            /* {"request_id", "deadline_ms", "invoked_function_arn"} */
    struct cJSON *request_id;     /* a string reference to the event's invocation id */
    struct cJSON *deadline;       /* a raw number, rewritten in place */
    struct cJSON *trace_id;       /* a string reference, attached when the event has one */
    struct cJSON *client_context; /* the same, for Lambda's client context */
    size_t room;                  /* bytes the fixed members print to, at most */
};

/* One of a worker's output pipes (stdout, stderr). It is read by hand, not through a
 * libuv stream, because a pipelined worker's output may only be read at moments the
 * daemon chooses (worker.c, "Pipelining"). */
struct worker_output {
    uv_poll_t poll;
    int fd;          /* the daemon's end, non-blocking */
    bool eof;        /* every writer has closed it */
    struct buf line; /* the partial last line */
};

struct worker_events {
    /* STARTING -> IDLE: the handler is loaded. */
    void (*on_ready)(struct worker *w);
    /* STARTING -> STOPPING: the worker could not start. error is a Lambda error object
     * ({"errorType":"Runtime.ImportModuleError",...}), valid during the call. */
    void (*on_start_failed)(struct worker *w, struct slice error);
    /* An invocation ended. The worker is IDLE again after a result or function error,
     * STOPPING after a timeout, crash or protocol violation. */
    void (*on_finished)(struct worker *w, struct invocation *inv, const struct inv_result *res);
    /* The process is reaped and every handle closed; w is freed when this returns. */
    void (*on_gone)(struct worker *w);
};

struct worker_options {
    const struct runtime_paths *paths;
    uint64_t init_timeout_ms;
    size_t max_response; /* largest RESULT/ERROR payload accepted */
    const char *region;
    struct cgroup_root *cgroups;
    const struct seccomp_policy *seccomp;
    uint64_t namespaces;      /* CLONE_NEW* flags workers get */
    const char *fsroot_base;  /* mount point of workers' roots; NULL: host filesystem */
    uint64_t tmp_bytes;       /* size of a worker's /tmp */
    bool drop_privileges;     /* run each worker as its own unprivileged uid */
    bool sched_batch;         /* workers run as SCHED_BATCH (--worker-scheduling) */
    uint64_t cpu_seconds;     /* RLIMIT_CPU of each worker process */
    struct zygote *zygote;    /* forks python3 workers; NULL: they are exec'd */
    struct funclog *funclog;  /* function output goes here; NULL: the daemon log only */
};

struct worker {
    struct list_node link;        /* the owner's list of its workers */
    struct list_node idle_link;   /* the owner's idle list, most recently used first */
    struct list_node lru_link;    /* the owner's global idle list, least recently used first */
    void *owner;                  /* the controller's per-function state */
    struct fn_version *version;   /* pinned for the worker's life */
    enum worker_state state;
    uint64_t tag;                 /* unique per daemon run, for logs */
    uint64_t last_used_ms;        /* loop time when it last became idle */
    struct invocation *current;   /* BUSY: the invocation it runs */
    struct invocation *ahead;     /* BUSY: the next one, sent before current answered */
    enum worker_state counted;    /* the state the owner last accounted it in */
    uint64_t served;              /* invocations dispatched to it */
    uint64_t ready_us;            /* clock_mono_us() when it became ready, 0 before */
    bool evicted;                 /* stopped by the owner to make room for another pool */
    /* The rest is private to worker.c. */
    const struct worker_events *ev;
    const struct worker_options *opts;
    uv_loop_t *loop;
    struct sandbox_process proc;
    struct cgroup cg;
    uv_pipe_t channel;
    struct worker_output out;
    struct worker_output err;
    uv_poll_t exit_watch;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_write_t drained_req;
    unsigned char drained[FND_FRAME_HEADER_SIZE]; /* the DRAINED frame while it is written */
    struct buf rx;          /* frame reassembly from the channel */
    struct buf tx;          /* the INVOKE header and meta being written */
    struct event_meta meta;
    char last_request_id[INVOCATION_ID_LEN + 1];
    struct funclog_capture capture; /* the running invocation's log tail */
    struct funclog_report report;   /* the last invocation's REPORT, while log_open */
    uint64_t spawned_us;
    uint64_t init_us;       /* spawn to READY */
    uint64_t last_duration_us; /* of its last answered invocation; UINT64_MAX before */
    uint64_t peak_memory_bytes; /* its peak memory when last read (peak_memory) */
    uint64_t peak_memory_read_us; /* when that was; 0 before the first read */
    int open_handles;
    bool reported_start;    /* on_ready or on_start_failed was called */
    bool stop_requested;    /* stop once the running invocation ends */
    bool channel_closed;
    bool exited;
    bool send_failed;       /* the running invocation's INVOKE frame could not be written */
    bool spawning;          /* its process is being created on the threadpool: no pid yet */
    bool log_open;          /* the last invocation answered; its END and REPORT are to come */
    bool pipelined;         /* its runtime said FND_READY_PIPELINED */
    bool asked_held;        /* the running (or last) INVOKE said FND_INVOKE_PIPELINED */
    bool held;              /* its last answer said FND_REPLY_HELD: DRAINED is owed */
};

/* Spawns a worker for v. 0 with *out set (state STARTING), or a negative errno (no
 * callback will be called). ahead_of_need: no invocation waits for this worker, which
 * may then warm up before it reports ready (runtime_command_build). */
int worker_start(struct worker **out, uv_loop_t *loop, const struct worker_options *opts,
                 struct fn_version *v, const struct worker_events *ev, void *owner,
                 bool ahead_of_need);
/* Pipelining: whether a BUSY worker takes its next event before it answers. Only a
 * pipelined runtime's does, one event ahead, after a short invocation (its
 * deadline_ms counts from the sending), with nothing else being written to it. */
bool worker_takes_ahead(const struct worker *w);
/* Sends inv to such a worker; it runs once the current one has answered. If the worker
 * ends before then, inv is reported back through on_finished as undelivered. */
void worker_send_ahead(struct worker *w, struct invocation *inv);
/* Sends inv to an IDLE worker, which becomes BUSY. The invocation's payload must stay
 * valid until on_finished. may_send_ahead: the worker may then take its next event
 * before it answers (worker_takes_ahead); its pipelined runtime is told so, and only
 * then asks its pipes what they hold before it answers. */
void worker_invoke(struct worker *w, struct invocation *inv, bool may_send_ahead);
/* Stops a worker: an idle or starting one at once, a busy one after its invocation
 * finishes (the invocation is not interrupted). */
void worker_stop(struct worker *w);
/* Kills the worker's whole process group now; a running invocation ends as CANCELLED. */
void worker_kill(struct worker *w);

const char *worker_state_name(enum worker_state s);

#endif
