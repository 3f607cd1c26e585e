/*
 * Worker process creation: the path from clone to exec, as one checklist of named
 * steps that run in the child (see child_main). Each step is a small function that
 * returns 0 or an errno; the first failure is written to a close-on-exec pipe as
 * (step, errno) and the child exits, so the parent learns exactly what failed. When
 * exec succeeds the pipe closes empty.
 *
 * Why clone3 and not fork: clone3(CLONE_PIDFD) hands back a pidfd atomically, which the
 * daemon polls for the child's exit (no SIGCHLD handler, no pid reuse races), and it
 * is where namespace flags go. Because the daemon has threads (libuv's threadpool),
 * the child may only make async-signal-safe calls between clone and exec: everything
 * it needs (argv, envp, paths) is prepared by the parent beforehand, and no step
 * allocates. Signals are blocked around the clone so that no handler of the daemon
 * can run in the child before the child resets them all to their defaults.
 *
 * Layers applied today: descriptor and environment hygiene, a new session, death with
 * the daemon, the worker's cgroups (joined first, so that everything the child does
 * counts), IPC/UTS/mount/network namespaces, a root of its own (fsroot.c), an
 * unprivileged uid of its own without capabilities, resource limits, no_new_privs and
 * the seccomp filters.
 * NEEDSWORK: a pid namespace (the death check below already works inside one; the
 * runtime would be pid 1 there and needs a small reaping init) and a user namespace
 * for unprivileged daemons.
 */
#include "fnd/sandbox.h"

#include "fnd/log.h"
#include "fnd/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The error pipe's write end sits here in the child, just above the protocol fd, so
 * that closing every other descriptor keeps it until exec closes it. */
#define CHILD_ERROR_FD (FND_CHANNEL_FD + 1)

#define SANDBOX_STEPS(X)                                                                       \
    X(RESET_SIGNALS, "reset signals")                                                          \
    X(JOIN_CGROUPS, "join cgroups")                                                            \
    X(NEW_SESSION, "setsid")                                                                   \
    X(DIE_WITH_PARENT, "prctl(PR_SET_PDEATHSIG)")                                              \
    X(PLACE_FDS, "place descriptors")                                                          \
    X(CLOSE_FDS, "close_range")                                                                \
    X(LOOPBACK, "bring up lo")                                                                 \
    X(FSROOT, "pivot_root into the worker's root")                                             \
    X(DROP_PRIVILEGES, "drop privileges")                                                      \
    X(RLIMITS, "setrlimit")                                                                    \
    X(NO_NEW_PRIVS, "prctl(PR_SET_NO_NEW_PRIVS)")                                              \
    X(UMASK, "umask")                                                                          \
    X(CHDIR, "chdir")                                                                          \
    X(SECCOMP, "prctl(PR_SET_SECCOMP)")                                                        \
    X(EXEC, "execve")

enum sandbox_step {
#define SANDBOX_STEP_ENUM(id, name) STEP_##id,
    SANDBOX_STEPS(SANDBOX_STEP_ENUM)
#undef SANDBOX_STEP_ENUM
};

static const char *const step_names[] = {
#define SANDBOX_STEP_NAME(id, name) name,
    SANDBOX_STEPS(SANDBOX_STEP_NAME)
#undef SANDBOX_STEP_NAME
};

struct child_report {
    int32_t step;
    int32_t err;
};

/* Everything the child needs, prepared by the parent. */
struct child_plan {
    const struct sandbox_spec *spec;
    int error_fd;
    int devnull_fd;
};

/* --- the child's steps ------------------------------------------------------------- */

static int child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        sigaction(sig, &sa, NULL); /* fails harmlessly for the real-time signals glibc owns */
    }
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? errno : 0;
}

static int child_join_cgroups(const struct sandbox_spec *s)
{
    /* "0" moves the writer itself; done first so that every process the worker ever
     * starts is inside its limits and within reach of teardown. */
    for (int i = 0; i < 2; i++)
        if (s->cgroup_fds[i] >= 0 && write(s->cgroup_fds[i], "0", 1) != 1)
            return errno;
    return 0;
}

static int child_new_session(void)
{
    /* The worker leads its own process group, so one kill(-pid) reaches everything it
     * started, and no terminal signal of the daemon's session reaches it. */
    return setsid() < 0 ? errno : 0;
}

static int child_die_with_parent(int error_fd)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        return errno;
    /* The parent may have died before the prctl took effect. getppid() cannot tell
     * from inside a new pid namespace (it is 0 there), but the error pipe can: the
     * parent holds its read end until our exec, and a pipe whose reader is gone polls
     * as an error. */
    struct pollfd p = {.fd = error_fd, .events = POLLOUT};
    if (poll(&p, 1, 0) < 0)
        return errno;
    return (p.revents & (POLLERR | POLLHUP)) ? ESRCH : 0;
}

/* Moves fd to target, clearing close-on-exec (dup2 onto itself would not). */
static int place_fd(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0) < 0 ? errno : 0;
    return dup2(fd, target) < 0 ? errno : 0;
}

static int child_place_fds(struct child_plan *plan)
{
    const struct sandbox_spec *s = plan->spec;
    /* Every source fd is >= 3 (the daemon keeps 0-2 open), but a source may sit on a
     * target number of a later step, so first lift all of them above the targets. */
    int err_fd = fcntl(plan->error_fd, F_DUPFD_CLOEXEC, 16);
    int chan = fcntl(s->channel_fd, F_DUPFD_CLOEXEC, 16);
    int out = fcntl(s->stdout_fd, F_DUPFD_CLOEXEC, 16);
    int err = fcntl(s->stderr_fd, F_DUPFD_CLOEXEC, 16);
    int null = fcntl(plan->devnull_fd, F_DUPFD_CLOEXEC, 16);
    if (err_fd < 0 || chan < 0 || out < 0 || err < 0 || null < 0)
        return errno;
    plan->error_fd = err_fd;
    int rc;
    if ((rc = place_fd(null, STDIN_FILENO)) || (rc = place_fd(out, STDOUT_FILENO)) ||
        (rc = place_fd(err, STDERR_FILENO)) || (rc = place_fd(chan, FND_CHANNEL_FD)))
        return rc;
    if (dup3(err_fd, CHILD_ERROR_FD, O_CLOEXEC) < 0)
        return errno;
    plan->error_fd = CHILD_ERROR_FD;
    return 0;
}

static int child_close_fds(void)
{
    /* Nothing of the daemon's survives: listening sockets, client connections, other
     * workers' channels, the data folder's files. */
    return syscall(SYS_close_range, CHILD_ERROR_FD + 1, ~0U, 0) < 0 ? errno : 0;
}

static int child_loopback(const struct sandbox_spec *s)
{
    /* A fresh network namespace has lo down: up it is the whole network of a
     * network:none function. */
    if (!s->own_network)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        rc = errno;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (rc == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        rc = errno;
    close(fd);
    return rc;
}

static int child_drop_privileges(const struct sandbox_spec *s)
{
    if (s->uid == 0)
        return 0;
    /* Empty the bounding set while we still may (CAP_SETPCAP), so no exec can ever
     * regain a capability; then leave root: the kernel clears the permitted and
     * effective sets on the switch to a non-zero uid. Groups first, uid last. */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return errno;
    if (setgroups(0, NULL) < 0 || setresgid(s->gid, s->gid, s->gid) < 0 ||
        setresuid(s->uid, s->uid, s->uid) < 0)
        return errno;
    /* The race-free check that it worked: going back must fail. */
    if (setuid(0) == 0)
        return EPERM;
    return 0;
}

static int child_rlimits(const struct sandbox_spec *s)
{
    struct rlimit none = {0, 0};
    struct rlimit files = {s->max_open_files, s->max_open_files};
    struct rlimit size = {s->max_file_size, s->max_file_size};
    /* No core dumps (they would land in the code folder, and leak memory to disk); a
     * backstop on descriptors and on the size of any one file. Never RLIMIT_AS: V8
     * reserves far more address space than it uses. */
    if (setrlimit(RLIMIT_CORE, &none) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0 ||
        setrlimit(RLIMIT_FSIZE, &size) < 0)
        return errno;
    return 0;
}

static int child_no_new_privs(void)
{
    /* From here on no exec can gain privileges (setuid binaries, file capabilities). */
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? errno : 0;
}

static int child_umask(void)
{
    umask(077);
    return 0;
}

static int child_chdir(const char *dir)
{
    return chdir(dir) < 0 ? errno : 0;
}

static int child_seccomp(const struct seccomp_policy *p)
{
    /* Last before exec: the filters allow execve, and everything before them may use
     * calls that functions may not. The programs were built by the parent. */
    if (p == NULL || !p->enabled)
        return 0;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->allowlist) < 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->args) < 0)
        return errno;
    return 0;
}

static void child_fail(const struct child_plan *plan, enum sandbox_step step, int err)
{
    struct child_report r = {step, err};
    ssize_t n = write(plan->error_fd, &r, sizeof(r));
    (void)n;
    _exit(127);
}

/* The checklist. Each line is one layer; the order matters and is explained at each
 * step. Never returns. */
static void child_main(struct child_plan *plan)
{
    const struct sandbox_spec *s = plan->spec;
    int rc;
    if ((rc = child_reset_signals()))
        child_fail(plan, STEP_RESET_SIGNALS, rc);
    if ((rc = child_join_cgroups(s)))
        child_fail(plan, STEP_JOIN_CGROUPS, rc);
    if ((rc = child_new_session()))
        child_fail(plan, STEP_NEW_SESSION, rc);
    if ((rc = child_die_with_parent(plan->error_fd)))
        child_fail(plan, STEP_DIE_WITH_PARENT, rc);
    if ((rc = child_place_fds(plan)))
        child_fail(plan, STEP_PLACE_FDS, rc);
    if ((rc = child_close_fds()))
        child_fail(plan, STEP_CLOSE_FDS, rc);
    if ((rc = child_loopback(s)))
        child_fail(plan, STEP_LOOPBACK, rc);
    if (s->fsroot && (rc = fsroot_enter(s->fsroot)))
        child_fail(plan, STEP_FSROOT, rc);
    if ((rc = child_drop_privileges(s)))
        child_fail(plan, STEP_DROP_PRIVILEGES, rc);
    if ((rc = child_rlimits(s)))
        child_fail(plan, STEP_RLIMITS, rc);
    if ((rc = child_no_new_privs()))
        child_fail(plan, STEP_NO_NEW_PRIVS, rc);
    if ((rc = child_umask()))
        child_fail(plan, STEP_UMASK, rc);
    if ((rc = child_chdir(s->cwd)))
        child_fail(plan, STEP_CHDIR, rc);
    if ((rc = child_seccomp(s->seccomp)))
        child_fail(plan, STEP_SECCOMP, rc);
    execve(s->path, s->argv, s->envp);
    child_fail(plan, STEP_EXEC, errno);
}

/* --- the parent's side ------------------------------------------------------------- */

static pid_t clone_child(int *pidfd, uint64_t namespaces)
{
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PIDFD | namespaces;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
    /* Kernels before 5.3 and valgrind have no clone3; clone(2) takes the same flags
     * and hands the pidfd back through its parent_tid argument. */
    if (pid < 0 && errno == ENOSYS)
        pid = (pid_t)syscall(SYS_clone, (unsigned long)(args.flags | SIGCHLD), NULL, pidfd,
                             NULL, 0UL);
    return pid;
}

int sandbox_spawn(const struct sandbox_spec *spec, struct sandbox_process *out)
{
    int pipefd[2] = {-1, -1};
    int devnull = -1;
    int pidfd = -1;
    int rc;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        rc = -errno;
        goto fail;
    }

    struct child_plan plan = {
        .spec = spec, .error_fd = pipefd[1], .devnull_fd = devnull};

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    uint64_t flags = spec->namespaces | (spec->own_network ? CLONE_NEWNET : 0) |
                     (spec->fsroot ? CLONE_NEWNS : 0);
    pid_t pid = clone_child(&pidfd, flags);
    if (pid == 0)
        child_main(&plan); /* never returns */
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        rc = -clone_errno;
        log_error("clone3 failed", "err=\"%s\"", strerror(clone_errno));
        goto fail;
    }

    close(pipefd[1]);
    pipefd[1] = -1;
    /* Blocks until exec (a fraction of a millisecond) or the child's report, as
     * libuv's uv_spawn does. */
    struct child_report report;
    ssize_t n;
    do {
        n = read(pipefd[0], &report, sizeof(report));
    } while (n < 0 && errno == EINTR);

    if (n == (ssize_t)sizeof(report)) {
        int status;
        waitpid(pid, &status, 0);
        close(pidfd);
        const char *step = report.step >= 0 && (size_t)report.step < sizeof(step_names) /
                                                                          sizeof(step_names[0])
                               ? step_names[report.step]
                               : "?";
        log_error("worker start failed", "step=\"%s\" path=%s err=\"%s\"", step, spec->path,
                  strerror(report.err));
        rc = report.err > 0 ? -report.err : -EIO;
        goto fail;
    }
    close(pipefd[0]);
    close(devnull);
    out->pid = pid;
    out->pidfd = pidfd;
    return 0;

fail:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (devnull >= 0)
        close(devnull);
    return rc;
}

/* Whether a child may be created in new namespaces of kinds flags. */
static int try_namespaces(uint64_t flags)
{
    int pidfd = -1;
    pid_t pid = clone_child(&pidfd, flags);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return -errno;
    waitpid(pid, NULL, 0);
    close(pidfd);
    return 0;
}

uint64_t sandbox_probe_namespaces(void)
{
    /* IPC: no SysV shared memory, semaphores or queues shared with other functions or
     * the host. UTS: a host name of its own. Network: only for network:none
     * functions, so it is probed but not given to every worker. */
    uint64_t have = 0;
    int rc = try_namespaces(CLONE_NEWIPC | CLONE_NEWUTS);
    if (rc == 0)
        have |= CLONE_NEWIPC | CLONE_NEWUTS;
    else
        log_warn("sandbox layer unavailable", "layer=namespaces err=\"%s\" effect=\"workers "
                 "share SysV IPC and the host name\"", strerror(-rc));
    rc = try_namespaces(CLONE_NEWNS);
    if (rc == 0)
        have |= CLONE_NEWNS;
    else
        log_warn("sandbox layer unavailable", "layer=filesystem err=\"%s\" effect=\"workers "
                 "see the host's filesystem\"", strerror(-rc));
    rc = try_namespaces(CLONE_NEWNET);
    if (rc == 0)
        have |= CLONE_NEWNET;
    else
        log_warn("sandbox layer unavailable", "layer=network err=\"%s\" effect=\"functions "
                 "with network none cannot be deployed\"", strerror(-rc));
    return have;
}

void sandbox_kill_group(const struct sandbox_process *p)
{
    /* Until the leader is reaped its pid cannot be reused, so the group id is still
     * ours to signal. */
    if (kill(-p->pid, SIGKILL) < 0 && errno == ESRCH)
        kill(p->pid, SIGKILL);
}

int sandbox_reap(const struct sandbox_process *p)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int rc;
    do {
        rc = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &info, WEXITED);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (info.si_code == CLD_EXITED)
        return (info.si_status & 0xff) << 8;
    return info.si_status & 0x7f; /* killed or dumped: the signal number */
}
