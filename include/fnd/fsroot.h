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
#define FSROOT_STRINGS 20480 /* bytes for all of a plan's paths */
#define FSROOT_TASK_ROOT "/var/task"

/* Paths are offsets into the plan's strings: a plan is a few pages, not one path's
 * worth of bytes per field, because it is copied for every worker (into the child,
 * and to the zygote) and each fresh page costs a fault. */
struct fsroot_bind {
    uint16_t src; /* on the host */
    uint16_t dst; /* in the new root, absolute */
    bool is_file;
};

struct fsroot_link {
    uint16_t path; /* in the new root, absolute */
    uint16_t target;
};

struct fsroot_plan {
    uint64_t tmp_bytes; /* size of /tmp */
    uint16_t base;      /* an empty host folder the new root is mounted on */
    uint16_t nbinds;
    uint16_t nlinks;
    uint16_t used;      /* bytes of strings taken */
    struct fsroot_bind binds[FSROOT_MAX_BINDS];
    struct fsroot_link links[FSROOT_MAX_LINKS];
    char strings[FSROOT_STRINGS]; /* NUL-terminated paths, one after another */
};

/* Builds the plan for a worker (in the parent). base must exist (an empty folder of
 * the daemon's); extra_files are binaries outside /usr the runtime needs (the native
 * runner), bound at their own paths. 0 or -ENAMETOOLONG. */
int fsroot_plan_build(struct fsroot_plan *plan, const char *base, const char *code_dir,
                      const char *runtime_dir, const char *extra_file, uint64_t tmp_bytes);

/* The host folder the plan binds at /var/task, or NULL. */
const char *fsroot_plan_code_dir(const struct fsroot_plan *plan);

/* Takes the code's bind out of the plan, leaving the plan of a root that every
 * function of the same runtime shares (a blank's, sandbox.c). */
void fsroot_plan_drop_code(struct fsroot_plan *plan);

/* Whether two plans build the same root but for the code at /var/task. */
bool fsroot_plan_same_root(const struct fsroot_plan *a, const struct fsroot_plan *b);

/* In the child, inside a new mount namespace: builds the root, pivots into it and
 * leaves the working folder at /var/task. 0 or an errno. Async-signal-safe. */
int fsroot_enter(const struct fsroot_plan *plan);

#endif
