/*
 * Creating worker processes. sandbox_spawn() is the only way fnd starts code it did not
 * write: it clones a child, walks the child through the isolation checklist in
 * sandbox.c, and execs the runtime. Layers are applied once, when a worker is created,
 * so warm invocations pay nothing for them.
 */
#ifndef FND_SANDBOX_H
#define FND_SANDBOX_H

#include "fnd/fsroot.h"
#include "fnd/seccomp_policy.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sandbox_spec {
    const char *path;   /* executable to run */
    char *const *argv;  /* NULL-terminated */
    char *const *envp;  /* NULL-terminated; the child's whole environment */
    const char *cwd;    /* working folder (the function's code) */
    int channel_fd;     /* becomes fd 3 in the child */
    int stdout_fd;      /* becomes fd 1 */
    int stderr_fd;      /* becomes fd 2 */
    int cgroup_fds[2];  /* tasks files of the worker's memory and pids groups; -1 */
    int home_fds[2];    /* tasks files of the caller's own groups: with them the child is
                         * born in its groups, without them moved in by pid; -1 */
    uint64_t max_open_files; /* RLIMIT_NOFILE */
    uint64_t max_file_size;  /* RLIMIT_FSIZE, bytes */
    uint64_t max_cpu_seconds; /* RLIMIT_CPU; 0: unlimited */
    const struct seccomp_policy *seccomp; /* NULL or disabled: no filter */
    unsigned seccomp_loaded;              /* its first programs the process has already
                                           * (a blank's, loaded at birth): not loaded again */
    uint64_t namespaces;     /* CLONE_NEW* flags for the child */
    bool own_network;        /* a network namespace with only loopback, up */
    bool sched_batch;        /* SCHED_BATCH: its wake-ups do not preempt (see sandbox.c) */
    const struct fsroot_plan *fsroot; /* NULL: the host's filesystem */
    uid_t uid;               /* 0: keep the daemon's ids; else run as uid:gid, no caps */
    gid_t gid;
};

/* The namespaces this daemon can give workers (probed once: creating them needs
 * privilege): CLONE_NEWIPC|CLONE_NEWUTS, CLONE_NEWPID|CLONE_NEWCGROUP and CLONE_NEWNS
 * (its own root) for every worker, CLONE_NEWNET for network:none functions. Logs a
 * warning naming what is missing. */
uint64_t sandbox_probe_namespaces(void);

struct sandbox_process {
    pid_t pid;     /* also the process group id: the child leads a new session */
    int pidfd;     /* readable when the child exits; owned by the caller */
    bool has_init; /* pid is the init of the worker's pid namespace, not the runtime */
};

/* Starts the child and waits until its exec succeeded. 0 with *out filled, or a
 * negative errno (the child's failing step is logged and the child reaped). */
int sandbox_spawn(const struct sandbox_spec *spec, struct sandbox_process *out);

/* For a fork server (zygote.c) whose parent is the daemon: clones a child that walks
 * the same checklist but, instead of an exec, returns 0 into the caller's program,
 * which then runs the runtime in-process. The child is a child of the caller's parent
 * (CLONE_PARENT). In the caller: the child's pid with *pidfd set once the checklist
 * is done, or a negative errno (the failing step logged; *pidfd is the failed child
 * for the daemon to reap, or -1). */
pid_t sandbox_fork(const struct sandbox_spec *spec, int *pidfd);

/* Blanks, for a fork server: a child born before it is known which worker it will be
 * (sandbox.c says why). sandbox_fork_blank clones it as sandbox_fork does, from a spec
 * whose layers are the same for every worker it could become (namespaces, network,
 * the root without the function's code), and walks it through the first half of the
 * checklist; it returns 0 in the blank, which then runs the server's program (or, when
 * spec->argv is set, execs spec->path: a program that calls sandbox_specialise itself),
 * and the blank's pid (with *pidfd set) or a negative errno in the caller. With a pid
 * namespace, *init_orders is then a socket to the blank's init, which waits on it for
 * sandbox_order_blank_init; else -1. */
pid_t sandbox_fork_blank(const struct sandbox_spec *spec, int *pidfd, int *init_orders);

/* Sends a blank's init (on init_orders, which the caller then closes) its share of the
 * worker spec describes: the worker's cgroups, uid, limits and filters. Before the
 * blank gets its request, so that both work at once. 0 or a negative errno. */
int sandbox_order_blank_init(int init_orders, const struct sandbox_spec *spec);

/* In the blank, once it is known which worker it becomes: walks the rest of the
 * checklist for spec (same namespaces, network and root as at birth), attaching
 * code_tree (a detached mount from open_tree, or -1) at /var/task. Reports on the
 * socket that was its channel at birth, as a struct sandbox_report: step SANDBOX_DONE
 * when every step succeeded, then it returns; else the failing step, and it exits. */
void sandbox_specialise(const struct sandbox_spec *spec, int code_tree);

/* What a child reports on failure, and a specialised blank on success. */
#define SANDBOX_DONE (-1)
struct sandbox_report {
    int32_t step; /* SANDBOX_DONE, or the failing step (sandbox_step_name) */
    int32_t err;  /* errno */
};

/* The name of a checklist step, "?" for none. */
const char *sandbox_step_name(int32_t step);

/* Kills every process of the child's group with SIGKILL. Safe to call repeatedly
 * until the child has been reaped. */
void sandbox_kill_group(const struct sandbox_process *p);

/* Reaps the child after its pidfd turned readable. Returns the wait status (as
 * waitpid(2) reports it) of the runtime, or a negative errno. Under an init, a runtime
 * that exited with a code above 128 is reported as killed by that signal. */
int sandbox_reap(const struct sandbox_process *p);

#endif
