/*
 * The workers' seccomp policy (include/fnd/seccomp_policy.h), three stacked filters:
 *
 * 1. An allowlist derived from Docker's default profile, minus what functions never
 *    need. Anything not listed fails with ENOSYS, which is what a kernel too old for a
 *    call would say, so runtimes fall back (glibc retries clone3 as clone). Calls that
 *    are known and refused on purpose — debugging other processes, mounting, new
 *    namespaces, keyrings, BPF, perf, userfaultfd, io_uring, modules, clocks — fail with
 *    EPERM. Only the native ABI is allowed: a 32-bit (int 0x80) or x32 system call
 *    kills the process.
 * 2. Argument checks, in a second filter because libseccomp folds an unconditional
 *    allow and a conditional deny of the same call into a plain allow: clone with any
 *    namespace flag, the TIOCSTI and TIOCLINUX ioctls (compared on the low 32 bits, the
 *    way the kernel reads the argument), sockets of the AF_ALG, AF_VSOCK and AF_PACKET
 *    families, personality changes other than the query, and kill/tkill aimed at every
 *    process (-1) or at a process group.
 * 3. The seal: move_mount and unshare, which the first filter lets through because
 *    the checklist itself makes them after a blank has loaded the first two (it
 *    attaches the function's code and enters the cgroup namespace once it knows its
 *    worker), fail with EPERM like the rest of the mount and namespace family. Every
 *    worker runs with all three.
 *
 * All are exported to BPF here, once; the child only calls prctl(PR_SET_SECCOMP).
 */
#include "fnd/seccomp_policy.h"

#include "fnd/common.h"
#include "fnd/log.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const allowed[] = {
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "clock_getres", "clock_gettime", "clock_nanosleep", "clone",
    "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
    "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
    "futex_waitv", "futimesat", "get_mempolicy", "get_robust_list", "get_thread_area",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresuid", "getrlimit", "getrusage", "getsid", "getsockname",
    "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy",
    "io_getevents", "io_pgetevents", "io_setup", "io_submit", "ioctl", "ioprio_get",
    "ioprio_set", "kill", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr",
    "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "mbind",
    "membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open",
    "openat", "openat2", "pause", "personality", "pidfd_open", "pidfd_send_signal", "pipe",
    "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "pselect6", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg",
    "sendto", "set_mempolicy", "set_robust_list", "set_thread_area", "set_tid_address",
    "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority",
    "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "setsid", "setsockopt",
    "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "socket", "socketpair", "splice", "stat", "statfs", "statx",
    "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill",
    "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
    "truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes",
    "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
};

/* Known and refused on purpose: EPERM, so the caller learns it is not allowed. */
static const char *const refused[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "mount", "umount2",
    "pivot_root", "chroot", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "setns", "keyctl", "add_key", "request_key",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf",
    "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "sethostname", "setdomainname", "clock_settime", "clock_adjtime",
    "settimeofday", "adjtimex", "mknod", "mknodat", "acct", "swapon", "swapoff", "reboot",
    "syslog", "quotactl", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
    "vhangup", "fanotify_init", "iopl", "ioperm", "modify_ldt", "uselib", "ustat", "sysfs",
    "_sysctl", "nfsservctl", "vm86", "vm86old", "create_module", "get_kernel_syms",
    "query_module", "process_madvise", "memfd_secret",
};

/* Refused by the seal (3.) rather than the allowlist: see the header comment. */
static const char *const sealed[] = {"move_mount", "unshare"};

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int add_named(scmp_filter_ctx ctx, uint32_t action, const char *name)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not a system call on this architecture */
    return seccomp_rule_add(ctx, action, nr, 0);
}

static int build_allowlist(scmp_filter_ctx ctx)
{
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* A binary tree of system call numbers instead of a chain of 250 comparisons: an
     * interpreter's start-up makes thousands of calls, each walking the filter. */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(allowed); i++)
        rc = add_named(ctx, SCMP_ACT_ALLOW, allowed[i]);
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(refused); i++)
        rc = add_named(ctx, SCMP_ACT_ERRNO(EPERM), refused[i]);
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(sealed); i++)
        rc = add_named(ctx, SCMP_ACT_ALLOW, sealed[i]);
    /* clone3 is in neither list on purpose: it gets the default ENOSYS, and glibc then
     * falls back to clone, whose flags the second filter can inspect (clone3 passes
     * them in memory, out of seccomp's reach). */
    return rc;
}

static int build_arg_checks(scmp_filter_ctx ctx)
{
    const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
    static const uint64_t namespace_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
                                               CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                               CLONE_NEWCGROUP, CLONE_NEWTIME};
    static const uint64_t socket_families[] = {AF_ALG, AF_VSOCK, AF_PACKET};
    static const uint64_t tty_ioctls[] = {TIOCSTI, TIOCLINUX};
    int rc = 0;
    /* "any namespace flag set" is one rule per flag: (flags & f) == f */
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(namespace_flags); i++)
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags[i], namespace_flags[i]));
    /* The kernel reads these as 32-bit values: compare only the low 32 bits, or
     * setting a high bit would slip past an exact comparison. */
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(tty_ioctls); i++)
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, tty_ioctls[i]));
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(socket_families); i++)
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, socket_families[i]));
    if (rc == 0) /* only the query (0xffffffff) may call personality */
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(personality), 1,
                              SCMP_A0(SCMP_CMP_NE, 0xffffffffu));
    if (rc == 0) /* a negative pid is every process (-1) or a process group */
        rc = seccomp_rule_add(ctx, deny, SCMP_SYS(kill), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000u, 0x80000000u));
    return rc;
}

static int build_seal(scmp_filter_ctx ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(sealed); i++)
        rc = add_named(ctx, SCMP_ACT_ERRNO(EPERM), sealed[i]);
    return rc;
}

/* Exports ctx as classic BPF into prog (a private copy). */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
    int fd = memfd_create("fnd-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (rc == 0 && (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0))
        rc = -EINVAL;
    if (rc == 0) {
        struct sock_filter *code = xmalloc((size_t)size);
        if (pread(fd, code, (size_t)size, 0) != size) {
            free(code);
            rc = -EIO;
        } else {
            prog->filter = code;
            prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
        }
    }
    close(fd);
    return rc;
}

void seccomp_policy_build(struct seccomp_policy *policy)
{
    static int (*const build[SECCOMP_PROGRAMS])(scmp_filter_ctx) = {
        [SECCOMP_ALLOWLIST] = build_allowlist,
        [SECCOMP_ARGS] = build_arg_checks,
        [SECCOMP_SEAL] = build_seal,
    };
    memset(policy, 0, sizeof(*policy));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < SECCOMP_PROGRAMS; i++) {
        /* Only the allowlist refuses what it does not name. */
        scmp_filter_ctx ctx = seccomp_init(i == SECCOMP_ALLOWLIST ? SCMP_ACT_ERRNO(ENOSYS)
                                                                   : SCMP_ACT_ALLOW);
        rc = ctx ? build[i](ctx) : -ENOMEM;
        if (rc == 0)
            rc = export_bpf(ctx, &policy->programs[i]);
        if (ctx)
            seccomp_release(ctx);
    }
    if (rc == 0) {
        policy->enabled = true;
        return;
    }
    seccomp_policy_release(policy);
    snprintf(policy->reason, sizeof(policy->reason), "building the filter: %s", strerror(-rc));
}

void seccomp_policy_release(struct seccomp_policy *policy)
{
    for (size_t i = 0; i < SECCOMP_PROGRAMS; i++)
        free(policy->programs[i].filter);
    memset(policy, 0, sizeof(*policy));
}
