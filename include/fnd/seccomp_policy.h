/*
 * The seccomp policy of workers, compiled once at daemon start-up with libseccomp into
 * three classic-BPF programs that the clone-to-exec checklist loads with one prctl each
 * (no allocation in the child). Each is stacked on the ones before; the kernel takes
 * the strictest answer of all.
 */
#ifndef FND_SECCOMP_POLICY_H
#define FND_SECCOMP_POLICY_H

#include <linux/filter.h>
#include <stdbool.h>

enum seccomp_program {
    /* Default ENOSYS; dangerous calls EPERM. The two calls the checklist's last steps
     * make (the code's mount, the cgroup namespace) pass here: see SECCOMP_SEAL. */
    SECCOMP_ALLOWLIST,
    SECCOMP_ARGS, /* argument-level denies */
    /* EPERM for those two calls. A tenth of the allowlist's load time: a blank loads
     * the first two before its request, and only this one after (sandbox.c). */
    SECCOMP_SEAL,
    SECCOMP_PROGRAMS
};

/* How many of the programs, from the first, leave the checklist's last steps open. */
#define SECCOMP_AHEAD SECCOMP_SEAL

struct seccomp_policy {
    bool enabled;
    struct sock_fprog programs[SECCOMP_PROGRAMS]; /* in loading order */
    char reason[160];                             /* why the layer is off */
};

/* Builds the programs. Never fails: on error policy->enabled is false and reason says
 * why (the caller warns). */
void seccomp_policy_build(struct seccomp_policy *policy);
void seccomp_policy_release(struct seccomp_policy *policy);

#endif
