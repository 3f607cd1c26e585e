/*
 * The seccomp policy of workers, compiled once at daemon start-up with libseccomp into
 * two classic-BPF programs that the clone-to-exec checklist loads with one prctl each
 * (no allocation in the child).
 */
#ifndef FND_SECCOMP_POLICY_H
#define FND_SECCOMP_POLICY_H

#include <linux/filter.h>
#include <stdbool.h>

struct seccomp_policy {
    bool enabled;
    struct sock_fprog allowlist; /* default ENOSYS; dangerous calls EPERM */
    struct sock_fprog args;      /* stacked: argument-level denies */
    char reason[160];            /* why the layer is off */
};

/* Builds the programs. Never fails: on error policy->enabled is false and reason says
 * why (the caller warns). */
void seccomp_policy_build(struct seccomp_policy *policy);
void seccomp_policy_release(struct seccomp_policy *policy);

#endif
