/*
 * Per-worker control groups: a memory limit (the function's memory_mb, swap included)
 * and a pids limit for every worker, and a handle on every process the worker starts,
 * so that teardown reaches even the ones that left its session. Uses cgroup v1 (the
 * memory and pids hierarchies); where the hierarchies cannot be written (an
 * unprivileged daemon) the layer is off and cgroup_setup says why.
 */
#ifndef FND_CGROUP_H
#define FND_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cgroup_root {
    bool enabled;
    char *memory_dir; /* <hierarchy>/fnd-<daemon pid> */
    char *pids_dir;
    int home_fds[2];  /* the tasks files of the daemon's own memory and pids groups, or -1 */
    char reason[160]; /* why the layer is off */
};

struct cgroup {
    char *memory_dir; /* NULL when the layer is off */
    char *pids_dir;
    int peak_fd;      /* memory.max_usage_in_bytes, read after every invocation; or -1 */
};

/* Creates the daemon's parent groups. Never fails: when it cannot, root->enabled is
 * false and root->reason says why (the caller warns). */
void cgroup_setup(struct cgroup_root *root);
/* Removes the parent groups (they must be empty) and frees root's strings. */
void cgroup_teardown(struct cgroup_root *root);

/* Creates the group of one worker with its limits. 0 or a negative errno; with the
 * layer off, 0 and an empty cg. */
int cgroup_create(const struct cgroup_root *root, struct cgroup *cg, uint64_t tag,
                  uint64_t memory_bytes, unsigned pids_max);
/* Opens cg's tasks files, through which one thread is moved into it ("0": the writer;
 * a pid: that thread), close-on-exec. Fills fds[0..1] with descriptors or -1. 0 or a
 * negative errno. */
int cgroup_open_join(const struct cgroup *cg, int fds[2]);
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
