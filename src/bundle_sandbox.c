/*
 * The fnd-bundle helper's confinement (include/fnd/bundle_sandbox.h), a checklist of
 * named steps run once, before the helper reads its input:
 *
 * 1. close every descriptor but 0, 1 and 2: nothing of the daemon's (its listening
 *    socket, connections, the event log) is reachable, whatever the spawn passed on;
 * 2. umask 022, so the unpacked tree is readable by workers of other uids;
 * 3. rlimits: no core dumps (they would hold the bundle's bytes), 60 s of CPU (a
 *    decompression bomb's inflate loop ends there, killed with SIGXCPU), the largest
 *    file the task may write (RLIMIT_FSIZE: SIGXFSZ past it), 64 descriptors;
 * 4. no_new_privs: no later exec could gain privileges (and seccomp needs it);
 * 5. the seccomp filter: an allowlist of the calls that reading a zip, creating and
 *    removing a tree, packing a folder and exiting need. Everything else fails with
 *    EPERM: the network (socket, connect), execve, fork and clone, ptrace and
 *    process_vm_*, kill, mount, namespaces, mprotect. mmap is allowed only without
 *    PROT_EXEC, so no new code can be mapped. Only the native ABI: a 32-bit or x32
 *    system call kills the process.
 *
 * Privileges: a helper started by a root daemon stays root. The files it unpacks
 * must end up owned by the daemon's user, and the uid it could drop to would still
 * own the data folder it writes into, so a uid switch would buy little; what confines
 * it is the filter and the limits. NEEDSWORK: Landlock could confine its writes to
 * DEST (and its reads to SRC); the filter cannot look at paths.
 */
#include "fnd/bundle_sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CPU_SECONDS 60
#define MAX_OPEN_FILES 64 /* 0-2, the tree's descriptors, nftw's 32 when removing one */

/* What unpacking, zipping and exiting call, legacy names included (they resolve to
 * nothing on architectures without them). */
static const char *const allowed[] = {
    /* the input, the output, the error line */
    "read", "pread64", "write", "writev", "lseek", "close", "dup",
    /* walking, creating and syncing the tree */
    "openat", "open", "mkdirat", "mkdir", "symlinkat", "symlink", "readlinkat", "readlink",
    "newfstatat", "fstat", "lstat", "stat", "statx", "getdents64", "fcntl", "syncfs", "fsync",
    "fdatasync",
    /* removing a refused bundle */
    "unlinkat", "unlink", "rmdir",
    /* memory (mmap is allowed below, without PROT_EXEC) */
    "brk", "munmap", "mremap", "madvise",
    /* the end */
    "exit", "exit_group", "rt_sigreturn",
};

static int build_filter(scmp_filter_ctx ctx)
{
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(allowed); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    return rc;
}

static int step_close_fds(void)
{
    return syscall(SYS_close_range, 3, ~0U, 0) < 0 ? -errno : 0;
}

static int step_rlimits(enum bundle_task task, const struct bundle_limits *limits)
{
    struct rlimit none = {0, 0};
    struct rlimit files = {MAX_OPEN_FILES, MAX_OPEN_FILES};
    uint64_t largest = task == BUNDLE_TASK_ZIP ? bundle_zip_max(limits) : limits->max_bytes;
    struct rlimit size = {largest, largest};
    /* SIGXCPU at the soft limit; the hard one, a second later, is SIGKILL. Never above
     * what the process already has: an unprivileged one cannot raise its hard limits. */
    struct rlimit cpu;
    if (getrlimit(RLIMIT_CPU, &cpu) < 0)
        return -errno;
    if (cpu.rlim_max == RLIM_INFINITY || cpu.rlim_max > CPU_SECONDS + 1)
        cpu.rlim_max = CPU_SECONDS + 1;
    cpu.rlim_cur = cpu.rlim_max > 1 ? cpu.rlim_max - 1 : cpu.rlim_max;
    if (setrlimit(RLIMIT_CORE, &none) < 0 || setrlimit(RLIMIT_CPU, &cpu) < 0 ||
        setrlimit(RLIMIT_FSIZE, &size) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0)
        return -errno;
    return 0;
}

static int step_seccomp(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL)
        return -ENOMEM;
    int rc = build_filter(ctx);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

int bundle_sandbox_enter(enum bundle_task task, const struct bundle_limits *limits, char *err,
                         size_t errsize)
{
    const char *step = "close_range";
    int rc = step_close_fds();
    if (rc == 0) {
        umask(022);
        step = "setrlimit";
        rc = step_rlimits(task, limits);
    }
    if (rc == 0) {
        step = "prctl(PR_SET_NO_NEW_PRIVS)";
        rc = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
    }
    if (rc == 0) {
        step = "seccomp_load";
        rc = step_seccomp();
    }
    if (rc < 0)
        snprintf(err, errsize, "fnd-bundle: %s: %s", step, strerror(-rc));
    return rc;
}
