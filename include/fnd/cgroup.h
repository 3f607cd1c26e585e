/*
 * Per-worker control groups: a memory limit (the function's memory_mb, swap included)
 * and a pids limit for every worker, and a handle on every process the worker starts,
 * so that teardown reaches even the ones that left its session. Uses cgroup v1 (the
 * memory and pids hierarchies); where the hierarchies cannot be written (an
 * unprivileged daemon) the layer is off and cgroup_setup says why.
 *
 * Making a group costs a quarter of a millisecond of system calls (two mkdirs, the
 * limits, four opens), which would be a tenth of a native cold start. So the root
 * keeps a small stock of groups made ahead, off the request path, on libuv's
 * threadpool; a start takes one and writes only its memory limit if it differs.
 */
#ifndef FND_CGROUP_H
#define FND_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cgroup {
    char *memory_dir; /* NULL when the layer is off */
    char *pids_dir;
    int peak_fd;      /* memory.max_usage_in_bytes, read after every invocation; or -1 */
};

/* A group made ahead with the descriptors a spawn needs to move a thread into it. */
struct cgroup_ready {
    struct cgroup cg;
    int join_fds[2];       /* its memory and pids tasks files */
    uint64_t memory_bytes; /* the memory limit it carries */
};

#define CGROUP_STOCK 2 /* groups kept ready: a scale-up step rarely starts more */

struct cgroup_root {
    bool enabled;
    char *memory_dir; /* <hierarchy>/fnd-<daemon pid> */
    char *pids_dir;
    int home_fds[2];  /* the tasks files of the daemon's own memory and pids groups, or -1 */
    char reason[160]; /* why the layer is off */
    unsigned pids_max;
    uint64_t next_name;    /* groups are w<n>, numbered by the root */
    struct cgroup_ready stock[CGROUP_STOCK];
    size_t stocked;
    uint64_t stock_memory; /* the limit restocked groups get: the last one asked for */
    bool restocking;       /* restock_req is on the threadpool, making `making` */
    bool closed;           /* cgroup_close: no more restocking */
    uv_timer_t restock_timer;
    uint64_t making_name;
    int making_rc;
    struct cgroup_ready making;
    uv_work_t restock_req;
};

/* Creates the daemon's parent groups and fills the stock with groups of
 * memory_bytes each, limited to pids_max processes and threads. Never fails: when it
 * cannot, root->enabled is false and root->reason says why (the caller warns). */
void cgroup_setup(struct cgroup_root *root, uv_loop_t *loop, unsigned pids_max,
                  uint64_t memory_bytes);
/* Stops restocking, as the daemon shuts down (the loop then closes root's timer). */
void cgroup_close(struct cgroup_root *root);
/* Removes the stock and the parent groups (the workers' must be gone) and frees
 * root's strings. The loop has run out: no restock is on the threadpool. */
void cgroup_teardown(struct cgroup_root *root);

/* The group of one new worker, limited to memory_bytes: one from the stock, or made
 * now when the stock is empty. Also opens its tasks files, through which one thread is
 * moved into it ("0": the writer; a pid: that thread), close-on-exec, into
 * join_fds[0..1]. 0 or a negative errno; with the layer off, 0, an empty cg and -1s. */
int cgroup_take(struct cgroup_root *root, struct cgroup *cg, int join_fds[2],
                uint64_t memory_bytes);
/* Refills the stock a little later (after the answer that may be on its way), on the
 * loop's threadpool, one group at a time, unless it is full or being refilled. Called
 * once a start is over. */
void cgroup_restock(struct cgroup_root *root);
/* Whether the memory limit killed a process of cg. */
bool cgroup_oom_killed(const struct cgroup *cg);
/* The peak memory use of cg's processes in bytes (memory.max_usage_in_bytes); 0 when
 * the layer is off or the file cannot be read. */
uint64_t cgroup_max_memory(const struct cgroup *cg);
/* Sends SIGKILL to every process in cg. */
void cgroup_kill_all(const struct cgroup *cg);
/* Removes cg's folders (kills stragglers first). 0, or -EBUSY while processes remain. */
int cgroup_destroy(struct cgroup *cg);

#endif
