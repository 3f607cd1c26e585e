/*
 * A worker's filesystem: a fresh root built in the worker's own mount namespace, with
 * read-only binds of what the runtime needs (/usr and the top-level links into it, the
 * runtime's files), the function's code read-only at /var/task, a private size-limited
 * /tmp, a minimal /dev, /proc, and a synthetic /etc. The data folder, other functions'
 * code and the host's secrets are not in the tree.
 *
 * The parent builds a plan (fixed-size paths, no pointers into its heap that could be
 * freed) and the child carries it out with system calls only, between clone and exec.
 */
#ifndef FND_FSROOT_H
#define FND_FSROOT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FSROOT_MAX_BINDS 16
#define FSROOT_MAX_LINKS 8
#define FSROOT_TASK_ROOT "/var/task"

struct fsroot_bind {
    char src[PATH_MAX]; /* on the host */
    char dst[PATH_MAX]; /* in the new root, absolute */
    bool is_file;
};

struct fsroot_link {
    char path[64];       /* in the new root, absolute */
    char target[PATH_MAX];
};

struct fsroot_plan {
    char base[PATH_MAX]; /* an empty host folder the new root is mounted on */
    struct fsroot_bind binds[FSROOT_MAX_BINDS];
    size_t nbinds;
    struct fsroot_link links[FSROOT_MAX_LINKS];
    size_t nlinks;
    uint64_t tmp_bytes;  /* size of /tmp */
};

/* Builds the plan for a worker (in the parent). base must exist (an empty folder of
 * the daemon's); extra_files are binaries outside /usr the runtime needs (the native
 * runner), bound at their own paths. 0 or -ENAMETOOLONG. */
int fsroot_plan_build(struct fsroot_plan *plan, const char *base, const char *code_dir,
                      const char *runtime_dir, const char *extra_file, uint64_t tmp_bytes);

/* In the child, inside a new mount namespace: builds the root, pivots into it and
 * leaves the working folder at /var/task. 0 or an errno. Async-signal-safe. */
int fsroot_enter(const struct fsroot_plan *plan);

#endif
