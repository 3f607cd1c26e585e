/*
 * Worker process creation: the path from clone to exec, as one checklist of named
 * steps that run in the child (see child_checklist). Each step is a small function that
 * returns 0 or an errno; the first failure is written to a close-on-exec socket as
 * (step, errno) and the child exits, so the parent learns exactly what failed. When
 * exec succeeds the socket closes empty. (A socket and not a pipe: where the parent
 * moves the child into its cgroups, it answers through it once the move is done.)
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
 * the daemon, pid/cgroup/IPC/UTS/mount/network namespaces, a root of its own
 * (fsroot.c), the worker's cgroups, an unprivileged uid of its own without
 * capabilities, resource limits, no_new_privs and the seccomp filters.
 *
 * How the child gets into its cgroups is chosen for speed. On cgroup v1, moving a
 * process (or another thread) into a group waits for an RCU grace period, 6-15 ms
 * measured here for the first move after a quiet spell: as long as all the other
 * steps together. A thread that moves itself takes no such wait (the kernel skips the
 * lock a process move needs), and a child is born in its creator's groups. So the
 * spawning thread moves itself into the worker's groups through their tasks files,
 * clones, and moves itself back home (spec->home_fds), 0.1 ms in all; the zygote's
 * thread does the same with the daemon's files. Where home is not known (the
 * daemon's own groups could not be opened), the parent moves the child by pid
 * instead, while the child builds its root; the child waits for that answer before it
 * does anything that must happen inside the limits: it enters its cgroup namespace,
 * leaves root and starts the runtime only after the move.
 *
 * In a pid namespace the cloned child is pid 1, and pid 1 has duties a runtime does
 * not expect: orphans are reparented to it and must be reaped, and it ignores every
 * signal it has no handler for. So the child stays behind as a tiny init (init_main)
 * once the checklist is done, and forks the runtime as pid 2. The init reaps
 * whatever is orphaned and exits when the runtime does, which makes the kernel kill
 * every process left in the namespace: nothing a function started outlives its
 * worker, whatever session or process group it moved to. The init cannot die of the
 * runtime's signal itself, so it exits with 128 + the signal, and sandbox_reap turns
 * that back into the signal.
 *
 * A daemon that is not root cannot create those namespaces directly, but it can in a
 * user namespace of the worker's own: the child is then all-powerful over its own
 * namespaces only, maps one id (Lambda's sbx_user1051, 993:990) onto the daemon's
 * uid and gid, builds its root as a root daemon's child would, and loses every
 * capability before the exec. What it cannot get are cgroups (writing them needs the
 * host's root) and a uid distinct from the daemon's on the host; its pid namespace
 * and private root still keep it from seeing or touching the daemon or other workers.
 *
 * The same checklist also runs without the exec, in a fork server (zygote.c): there
 * the child is cloned from an interpreter that has already started, walks the
 * checklist and returns into it, and CLONE_PARENT makes it the daemon's child, so the
 * daemon reaps it and reads its status exactly as for a worker it spawned itself.
 */
#include "fnd/sandbox.h"

#include "fnd/fdpass.h"
#include "fnd/log.h"
#include "fnd/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <poll.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The child's end of the report socket sits here, just above the protocol fd, so that
 * closing every other descriptor keeps it until exec closes it. */
#define CHILD_ERROR_FD (FND_CHANNEL_FD + 1)

/* A blank's two ends of the socket to its init (see "blanks" below) sit above it: the
 * blank's end, which the init answers on, and until the init is forked the init's. */
#define BLANK_INIT_FD (CHILD_ERROR_FD + 1)
#define BLANK_INIT_ORDERS_FD (CHILD_ERROR_FD + 2)

#define SANDBOX_STEPS(X)                                                                       \
    X(RESET_SIGNALS, "reset signals")                                                          \
    X(MAP_IDS, "write uid_map and gid_map")                                                    \
    X(NEW_SESSION, "setsid")                                                                   \
    X(DIE_WITH_PARENT, "prctl(PR_SET_PDEATHSIG)")                                              \
    X(SCHEDULING, "sched_setscheduler(SCHED_BATCH)")                                           \
    X(PLACE_FDS, "place descriptors")                                                          \
    X(CLOSE_FDS, "close_range")                                                                \
    X(LOOPBACK, "bring up lo")                                                                 \
    X(FSROOT, "pivot_root into the worker's root")                                             \
    X(JOIN_CGROUPS, "join cgroups")                                                            \
    X(CGROUP_NAMESPACE, "unshare(CLONE_NEWCGROUP)")                                            \
    X(DROP_PRIVILEGES, "drop privileges")                                                      \
    X(RLIMITS, "setrlimit")                                                                    \
    X(NO_NEW_PRIVS, "prctl(PR_SET_NO_NEW_PRIVS)")                                              \
    X(UMASK, "umask")                                                                          \
    X(CHDIR, "chdir")                                                                          \
    X(SECCOMP, "prctl(PR_SET_SECCOMP)")                                                        \
    X(START_INIT, "fork the runtime under the namespace's init")                               \
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

/* The ids a worker has inside a user namespace of its own: Lambda's sandbox user. */
#define USERNS_UID 993
#define USERNS_GID 990

/* Everything the child needs, prepared by the parent. */
struct child_plan {
    const struct sandbox_spec *spec;
    int error_fd;     /* the child's end of the report socket */
    int devnull_fd;
    bool join_wait;   /* the parent joins the child to cgroups: wait for its answer */
    bool userns;      /* in a user namespace of its own, mapping the ids below */
    char uid_map[48]; /* "993 <daemon uid> 1" */
    char gid_map[48];
    uid_t uid;        /* the ids the runtime runs as; 0: the daemon's */
    gid_t gid;
    int init_socks[2]; /* a blank's: the init's orders socket, the blank's end; or -1 */
};

/* --- the child's steps ------------------------------------------------------------- */

/* Writes text to each of the tasks files fds (-1: none). 0 or an errno. */
static int write_tasks(const int fds[2], const char *text)
{
    size_t len = strlen(text);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0 && write(fds[i], text, len) != (ssize_t)len)
            return errno ? errno : EIO;
    return 0;
}

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

/* Workers run as SCHED_BATCH unless the daemon is told otherwise. The policy keeps a
 * nice-0 task's share of the CPU and changes one thing: a task it wakes does not
 * preempt the running one, it waits for the tick or for the running task to sleep.
 * Every invocation wakes a worker, and on 2 cores that worker used to preempt the
 * daemon halfway through a batch of ready connections, twice a request: the daemon
 * then paid a switch out and back for each. Under load this lifted the native no-op's
 * throughput by a third to a half in paired runs, and left one connection's latency
 * alone (docs/benchmarks.md). The price: a worker woken while another worker
 * computes on its CPU waits up to a tick. */
static int child_scheduling(const struct sandbox_spec *s)
{
    if (!s->sched_batch)
        return 0;
    struct sched_param none = {.sched_priority = 0};
    return sched_setscheduler(0, SCHED_BATCH, &none) < 0 ? errno : 0;
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : errno ? errno : EIO;
    close(fd);
    return rc;
}

static int child_map_ids(const struct child_plan *plan)
{
    /* Until the maps exist the child's ids are unmapped: files it creates could not be
     * owned by anyone, so this comes before any other step. setgroups must be denied
     * before an unprivileged process may write gid_map. */
    if (!plan->userns)
        return 0;
    int rc;
    if ((rc = write_text("/proc/self/setgroups", "deny")) ||
        (rc = write_text("/proc/self/uid_map", plan->uid_map)) ||
        (rc = write_text("/proc/self/gid_map", plan->gid_map)))
        return rc;
    return 0;
}

static int child_join_cgroups(const struct child_plan *plan)
{
    /* The parent's answer (move_child): 0 once the child is inside the groups, else
     * the errno of the move. Before the runtime or anything it starts
     * exists, so that all of them are inside the limits and within reach of teardown. */
    if (!plan->join_wait)
        return 0;
    int32_t err;
    ssize_t n;
    do {
        n = read(plan->error_fd, &err, sizeof(err));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(err))
        return n < 0 ? errno : ESRCH; /* the parent is gone */
    return err;
}

static int child_cgroup_namespace(const struct sandbox_spec *s)
{
    /* After the join, so that the namespace's root is the worker's own group and
     * /proc/self/cgroup names nothing of the host's hierarchy. */
    if (!(s->namespaces & CLONE_NEWCGROUP))
        return 0;
    return unshare(CLONE_NEWCGROUP) < 0 ? errno : 0;
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
     * from inside a new pid namespace (it is 0 there), but the report socket can: the
     * parent holds its end until our exec, and a socket whose peer is gone polls as
     * hung up. */
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
    int init[2] = {-1, -1};
    for (int i = 0; i < 2; i++)
        if (plan->init_socks[i] >= 0 &&
            (init[i] = fcntl(plan->init_socks[i], F_DUPFD_CLOEXEC, 16)) < 0)
            return errno;
    plan->error_fd = err_fd;
    int rc;
    if ((rc = place_fd(null, STDIN_FILENO)) || (rc = place_fd(out, STDOUT_FILENO)) ||
        (rc = place_fd(err, STDERR_FILENO)) || (rc = place_fd(chan, FND_CHANNEL_FD)))
        return rc;
    if (dup3(err_fd, CHILD_ERROR_FD, O_CLOEXEC) < 0)
        return errno;
    plan->error_fd = CHILD_ERROR_FD;
    if (init[0] >= 0) {
        if (dup3(init[0], BLANK_INIT_ORDERS_FD, O_CLOEXEC) < 0 ||
            dup3(init[1], BLANK_INIT_FD, O_CLOEXEC) < 0)
            return errno;
        plan->init_socks[0] = BLANK_INIT_ORDERS_FD;
        plan->init_socks[1] = BLANK_INIT_FD;
    }
    return 0;
}

static int child_close_fds(const struct child_plan *plan)
{
    /* Nothing of the daemon's survives: listening sockets, client connections, other
     * workers' channels, the data folder's files. */
    unsigned first = plan->init_socks[0] >= 0 ? BLANK_INIT_ORDERS_FD + 1 : CHILD_ERROR_FD + 1;
    return syscall(SYS_close_range, first, ~0U, 0) < 0 ? errno : 0;
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

static int child_drop_privileges(const struct child_plan *plan)
{
    if (plan->uid == 0)
        return 0;
    /* Empty the bounding set while we still may (CAP_SETPCAP), so no exec can ever
     * regain a capability; then leave root: the kernel clears the permitted and
     * effective sets on the switch to a non-zero uid. Groups first, uid last. In a
     * user namespace the ids are already the mapped ones and setgroups is denied. */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return errno;
    if ((!plan->userns && setgroups(0, NULL) < 0) ||
        setresgid(plan->gid, plan->gid, plan->gid) < 0 ||
        setresuid(plan->uid, plan->uid, plan->uid) < 0)
        return errno;
    /* A namespace's creator keeps its capabilities over a uid change; exec would clear
     * them, but the init never execs. */
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof(none));
    if (syscall(SYS_capset, &hdr, none) < 0)
        return errno;
    /* The race-free check that it worked: going back must fail. */
    if (setuid(0) == 0)
        return EPERM;
    /* The uid switch made the process undumpable, which turns /proc/self into root's;
     * exec would restore it, but a worker forked by the zygote never execs. */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        return errno;
    return 0;
}

static int child_rlimits(const struct sandbox_spec *s)
{
    struct rlimit none = {0, 0};
    struct rlimit files = {s->max_open_files, s->max_open_files};
    struct rlimit size = {s->max_file_size, s->max_file_size};
    struct rlimit cpu = {RLIM_INFINITY, RLIM_INFINITY};
    if (s->max_cpu_seconds)
        cpu.rlim_cur = cpu.rlim_max = s->max_cpu_seconds;
    /* No core dumps (they would land in the code folder, and leak memory to disk); a
     * backstop on descriptors, on the size of any one file, and on CPU time should
     * the daemon's timeouts ever fail to stop a process (SIGKILL at the limit, as the
     * soft and hard limits are equal). Never RLIMIT_AS: V8 reserves far more address
     * space than it uses. */
    if (setrlimit(RLIMIT_CORE, &none) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0 ||
        setrlimit(RLIMIT_FSIZE, &size) < 0 || setrlimit(RLIMIT_CPU, &cpu) < 0)
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

/* Loads p's programs from the first one the process does not have yet. */
static int child_seccomp(const struct seccomp_policy *p, unsigned loaded)
{
    /* Last before exec: the filters allow execve, and everything before them may use
     * calls that functions may not. The programs were built by the parent. */
    if (p == NULL || !p->enabled)
        return 0;
    for (size_t i = loaded; i < SECCOMP_PROGRAMS; i++)
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->programs[i]) < 0)
            return errno;
    return 0;
}

/* A blank's first programs, loaded while it waits rather than while its request does:
 * the kernel translates and compiles each program per process, 0.3 ms for the
 * allowlist here. What the blank does after them, the code's mount and the cgroup
 * namespace included, they allow; the seal that refuses those two comes last, as in
 * every worker. The fork server tells the blank with its request that they are loaded
 * (spec->seccomp_loaded), when the request's programs are the ones it was born with.
 * no_new_privs first: without CAP_SYS_ADMIN the kernel requires it. */
static int child_seccomp_ahead(const struct seccomp_policy *p)
{
    if (p == NULL || !p->enabled)
        return 0;
    int rc = child_no_new_privs();
    for (size_t i = 0; rc == 0 && i < SECCOMP_AHEAD; i++)
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->programs[i]) < 0)
            rc = errno;
    return rc;
}

/* pid 1 of the worker's namespace, from the fork of the runtime until the runtime
 * exits. It holds no descriptor, so the channel and the output pipes close when the
 * runtime's copies do, and the report socket when the runtime execs. Never returns. */
static void init_main(pid_t runtime)
{
    syscall(SYS_close_range, 0, ~0U, 0);
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid == runtime)
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        if (pid < 0 && errno == ECHILD)
            _exit(127);
        /* Anything else was an orphan: reaped, so it holds no pid of pids.max. */
    }
}

/* Returns in the runtime; the init stays in init_main. */
static int child_start_init(const struct sandbox_spec *s)
{
    if (!(s->namespaces & CLONE_NEWPID))
        return 0;
    /* The raw system call, not fork(): glibc's fork runs its atfork handlers and takes
     * the allocator's locks, which another thread of the daemon may have held at the
     * clone and which nobody in this child will ever release. */
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0UL);
    if (pid < 0)
        return errno;
    if (pid > 0)
        init_main(pid);
    return 0;
}

static void child_fail(const struct child_plan *plan, enum sandbox_step step, int err)
{
    struct sandbox_report r = {step, err};
    ssize_t n = write(plan->error_fd, &r, sizeof(r));
    (void)n;
    _exit(127);
}

/* The checklist's first part: the layers that do not depend on which function the
 * worker is for, up to and including its root. A blank (below) stops after it. */
static void child_birth(struct child_plan *plan)
{
    const struct sandbox_spec *s = plan->spec;
    int rc;
    if ((rc = child_reset_signals()))
        child_fail(plan, STEP_RESET_SIGNALS, rc);
    if ((rc = child_map_ids(plan)))
        child_fail(plan, STEP_MAP_IDS, rc);
    if ((rc = child_new_session()))
        child_fail(plan, STEP_NEW_SESSION, rc);
    if ((rc = child_die_with_parent(plan->error_fd)))
        child_fail(plan, STEP_DIE_WITH_PARENT, rc);
    if ((rc = child_scheduling(s)))
        child_fail(plan, STEP_SCHEDULING, rc);
    if ((rc = child_place_fds(plan)))
        child_fail(plan, STEP_PLACE_FDS, rc);
    if ((rc = child_close_fds(plan)))
        child_fail(plan, STEP_CLOSE_FDS, rc);
    if ((rc = child_loopback(s)))
        child_fail(plan, STEP_LOOPBACK, rc);
    if (s->fsroot && (rc = fsroot_enter(s->fsroot)))
        child_fail(plan, STEP_FSROOT, rc);
}

/* The second part: from the worker's cgroups to its seccomp filters, of which the
 * process has the first `loaded` programs already. */
static void child_confine(struct child_plan *plan, unsigned loaded)
{
    const struct sandbox_spec *s = plan->spec;
    int rc;
    if ((rc = child_join_cgroups(plan)))
        child_fail(plan, STEP_JOIN_CGROUPS, rc);
    if ((rc = child_cgroup_namespace(s)))
        child_fail(plan, STEP_CGROUP_NAMESPACE, rc);
    if ((rc = child_drop_privileges(plan)))
        child_fail(plan, STEP_DROP_PRIVILEGES, rc);
    if ((rc = child_rlimits(s)))
        child_fail(plan, STEP_RLIMITS, rc);
    if ((rc = child_no_new_privs()))
        child_fail(plan, STEP_NO_NEW_PRIVS, rc);
    if ((rc = child_umask()))
        child_fail(plan, STEP_UMASK, rc);
    if ((rc = child_chdir(s->cwd)))
        child_fail(plan, STEP_CHDIR, rc);
    if ((rc = child_seccomp(s->seccomp, loaded)))
        child_fail(plan, STEP_SECCOMP, rc);
}

/* The checklist. Each line is one layer; the order matters and is explained at each
 * step. Returns only when every step succeeded. */
static void child_checklist(struct child_plan *plan)
{
    int rc;
    child_birth(plan);
    child_confine(plan, 0); /* a fresh clone: no filter yet, whatever the spec says */
    /* Last, so that the init is as contained as the runtime: filtered, unprivileged,
     * in the private root. */
    if ((rc = child_start_init(plan->spec)))
        child_fail(plan, STEP_START_INIT, rc);
}

/* --- blanks ------------------------------------------------------------------------
 *
 * A blank is a worker born before anyone knows whose it will be (zygote.c keeps one).
 * It walks the first half of the checklist, child_birth: its namespaces, session and
 * descriptors, and its root without the function's code at /var/task; and it loads the
 * seccomp programs that still allow the second half (child_seccomp_ahead). Then it returns
 * into the fork server's program, which warms itself up and waits. sandbox_specialise
 * later walks it through the second half for one worker: the function's code, the
 * worker's cgroups, its uid, limits and filters. Why: a forked interpreter pays a page
 * fault for each page it writes, and on these machines a fault costs 12-17 us, so a
 * fork's first milliseconds of Python cost more than the rest of a cold start; a blank
 * pays them while it waits instead of while a request does (docs/benchmarks.md).
 *
 * Its init was forked at birth too, so it cannot simply inherit what the worker will
 * be. It waits on a socket for its share of the second half: the worker's tasks
 * files, which it writes itself (a thread moving itself into a group does not wait
 * for the cgroup v1 lock, see the header comment), then the uid, limits and filters
 * it takes on before it becomes the reaper that init_main is. So a blank's init ends
 * as contained as any worker's. The fork server made that socket and keeps a copy of
 * the blank's end (sandbox_fork_blank's *init_orders), and sends the orders itself
 * (sandbox_order_blank_init) before it hands the blank its request: the init then
 * wakes and works while the server opens the code's tree and the blank walks its own
 * half, not after the blank has woken it. Waking a sleeping process costs 0.3-0.8 ms
 * on these machines, about what the init's share takes. The blank waits for the
 * init's answer on its end (BLANK_INIT_FD) before the function's code can run.
 */

/* What the blank tells its init; the filters' instructions follow it. */
struct blank_order {
    uint64_t max_open_files;
    uint64_t max_file_size;
    uint64_t max_cpu_seconds;
    uint32_t uid;
    uint32_t gid;
    uint32_t program_len[SECCOMP_PROGRAMS];
    uint32_t programs_loaded; /* inherited from the blank: see child_seccomp_ahead */
};

static void blank_init_main(int sock, pid_t runtime, int runtime_pidfd)
{
    static struct sock_filter filters[SECCOMP_PROGRAMS * BPF_MAXINSNS];
    /* Nothing but the socket and the runtime's pidfd: the worker's descriptors are the
     * runtime's. */
    int keep_lo = sock < runtime_pidfd ? sock : runtime_pidfd;
    int keep_hi = sock < runtime_pidfd ? runtime_pidfd : sock;
    if (keep_lo > 0)
        syscall(SYS_close_range, 0, (unsigned)keep_lo - 1, 0);
    if (keep_hi > keep_lo + 1)
        syscall(SYS_close_range, (unsigned)keep_lo + 1, (unsigned)keep_hi - 1, 0);
    syscall(SYS_close_range, (unsigned)keep_hi + 1, ~0U, 0);
    /* The fork server holds the socket's other end too, so a blank that dies waiting
     * does not end the wait: its exit does. */
    struct pollfd ready[2] = {{.fd = sock, .events = POLLIN},
                              {.fd = runtime_pidfd, .events = POLLIN}};
    while (poll(ready, 2, -1) < 0 && errno == EINTR)
        ;
    if (!(ready[0].revents & POLLIN) || (ready[1].revents & POLLIN))
        init_main(runtime);
    struct blank_order o;
    int fds[2];
    size_t nfds = 0;
    /* On anything short, the runtime is gone or about to fail: only reap it. */
    if (fdpass_recv(sock, &o, sizeof(o), fds, 2, &nfds) != (ssize_t)sizeof(o) ||
        o.programs_loaded > SECCOMP_PROGRAMS)
        init_main(runtime);
    struct seccomp_policy policy = {.enabled = o.program_len[0] > 0};
    size_t total = 0;
    for (size_t i = 0; i < SECCOMP_PROGRAMS; i++) {
        if (o.program_len[i] > BPF_MAXINSNS)
            init_main(runtime);
        policy.programs[i] = (struct sock_fprog){(unsigned short)o.program_len[i], filters + total};
        total += o.program_len[i];
    }
    if (fnd_read_full(sock, filters, total * sizeof(filters[0])) < 0)
        init_main(runtime);
    int tasks[2] = {nfds > 0 ? fds[0] : -1, nfds > 1 ? fds[1] : -1};
    int32_t err = write_tasks(tasks, "0");
    fdpass_close_all(fds, nfds);
    struct sandbox_spec limits = {.max_open_files = o.max_open_files,
                                  .max_file_size = o.max_file_size,
                                  .max_cpu_seconds = o.max_cpu_seconds};
    struct child_plan plan = {.uid = o.uid, .gid = o.gid};
    if (err == 0)
        err = child_drop_privileges(&plan);
    if (err == 0)
        err = child_rlimits(&limits);
    if (err == 0)
        err = child_no_new_privs();
    if (err == 0)
        err = child_seccomp(&policy, o.programs_loaded);
    (void)send(sock, &err, sizeof(err), MSG_NOSIGNAL);
    init_main(runtime);
}

/* The blank's init: like child_start_init's, but it waits for its orders first, on
 * its end of the socket child_place_fds placed. */
static int child_start_blank_init(const struct child_plan *plan)
{
    if (plan->init_socks[0] < 0)
        return 0;
    /* CLONE_PIDFD: the raw system call stores the pidfd where the parent's tid would go. */
    int pidfd = -1;
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | SIGCHLD), NULL, &pidfd,
                               NULL, 0UL);
    if (pid < 0)
        return errno;
    if (pid > 0)
        blank_init_main(plan->init_socks[0], pid, pidfd);
    close(plan->init_socks[0]);
    return 0;
}

int sandbox_order_blank_init(int sock, const struct sandbox_spec *s)
{
    const struct seccomp_policy *p = s->seccomp && s->seccomp->enabled ? s->seccomp : NULL;
    struct blank_order o = {s->max_open_files, s->max_file_size, s->max_cpu_seconds,
                            (uint32_t)s->uid, (uint32_t)s->gid, {0}, s->seccomp_loaded};
    struct iovec iov[1 + SECCOMP_PROGRAMS] = {{&o, sizeof(o)}};
    for (size_t i = 0; p && i < SECCOMP_PROGRAMS; i++) {
        o.program_len[i] = p->programs[i].len;
        iov[1 + i] = (struct iovec){p->programs[i].filter,
                                    p->programs[i].len * sizeof(struct sock_filter)};
    }
    int fds[2];
    size_t nfds = 0;
    for (int i = 0; i < 2; i++)
        if (s->cgroup_fds[i] >= 0)
            fds[nfds++] = s->cgroup_fds[i];
    return fdpass_send(sock, iov, 1 + SECCOMP_PROGRAMS, fds, nfds);
}

/* Its answer, once it has carried them out. 0 or an errno. */
static int blank_init_answer(void)
{
    int32_t err;
    if (fnd_read_full(BLANK_INIT_FD, &err, sizeof(err)) < 0)
        err = ESRCH; /* the init is gone */
    close(BLANK_INIT_FD);
    return err;
}

void sandbox_specialise(const struct sandbox_spec *s, int code_tree)
{
    /* The fork server's socket came at the channel's place at birth; the report goes
     * back on it, as from a child to start_child. */
    struct child_plan plan = {.spec = s, .error_fd = FND_CHANNEL_FD, .devnull_fd = STDIN_FILENO,
                              .uid = s->uid, .gid = s->gid, .init_socks = {-1, -1}};
    int rc;
    bool has_init = (s->namespaces & CLONE_NEWPID) != 0;
    /* The init carries out its orders (the fork server sent them) while this process
     * walks its own steps; its answer is awaited at the end, before the function's
     * code can run. */
    if ((rc = write_tasks(s->cgroup_fds, "0")))
        child_fail(&plan, STEP_JOIN_CGROUPS, rc);
    /* The code: a detached copy of the host's bind, read-only, made by the fork server
     * in the host's mount namespace, attached where fsroot_enter left its mount point. */
    if (code_tree >= 0 &&
        move_mount(code_tree, "", AT_FDCWD, FSROOT_TASK_ROOT, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        child_fail(&plan, STEP_FSROOT, errno);
    if ((rc = child_place_fds(&plan)))
        child_fail(&plan, STEP_PLACE_FDS, rc);
    /* As child_close_fds, but the init's socket stays until its answer. */
    if (syscall(SYS_close_range, BLANK_INIT_FD + 1, ~0U, 0) < 0)
        child_fail(&plan, STEP_CLOSE_FDS, errno);
    child_confine(&plan, s->seccomp_loaded);
    if (has_init && (rc = blank_init_answer()))
        child_fail(&plan, STEP_JOIN_CGROUPS, rc);
    struct sandbox_report done = {SANDBOX_DONE, 0};
    if (write(plan.error_fd, &done, sizeof(done)) != (ssize_t)sizeof(done))
        _exit(127); /* the fork server is gone: so is the worker it was for */
    close(plan.error_fd);
}

/* --- the parent's side ------------------------------------------------------------- */

/* Whether the calling thread can take the child's groups on for the clone: it knows
 * the way back for each group it would enter. */
static bool can_be_born_inside(const struct sandbox_spec *s)
{
    for (int i = 0; i < 2; i++)
        if (s->cgroup_fds[i] >= 0 && s->home_fds[i] < 0)
            return false;
    return true;
}

/* Moves the child (pid as the caller sees it) into the worker's cgroups and answers it
 * on sock; see the header comment for when. */
static void move_child(const struct sandbox_spec *s, pid_t pid, int sock)
{
    char text[16];
    snprintf(text, sizeof(text), "%d", (int)pid);
    int32_t err = write_tasks(s->cgroup_fds, text);
    /* A child that failed before it waits has closed its end: its report tells why. */
    (void)send(sock, &err, sizeof(err), MSG_NOSIGNAL);
}

static pid_t clone_child(int *pidfd, uint64_t flags)
{
    log_flush(); /* a child must not inherit batched log lines it could write again */
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PIDFD | flags;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    /* With CLONE_PARENT the kernel takes the caller's own exit signal instead. */
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
    /* Kernels before 5.3 and valgrind have no clone3; clone(2) takes the same flags
     * and hands the pidfd back through its parent_tid argument. */
    if (pid < 0 && errno == ENOSYS)
        pid = (pid_t)syscall(SYS_clone, (unsigned long)(args.flags | args.exit_signal), NULL,
                             pidfd, NULL, 0UL);
    return pid;
}

/* What start_child makes: a runtime it execs, or, in a fork server, a child that
 * returns into the server's program with the whole checklist walked or only its
 * first half (a blank). */
enum child_kind { CHILD_EXEC, CHILD_FORK, CHILD_BLANK };

/* Starts the child and walks it through the checklist. In the child: returns 0, or
 * execs the runtime (CHILD_EXEC). In the caller: the child's pid once it exec'd (or
 * finished its part of the checklist), with *pidfd set; or a negative errno, the
 * failing step logged and, when the child is the caller's own, reaped. A child that
 * does not exec is the caller's sibling (CLONE_PARENT): a fork server hands it to its
 * own parent, the daemon, to reap. */
static pid_t start_child(const struct sandbox_spec *spec, enum child_kind kind, int *pidfd_out,
                         int *init_orders)
{
    bool exec = kind == CHILD_EXEC;
    int report_sock[2] = {-1, -1};
    int init_socks[2] = {-1, -1}; /* a blank's init: its end, the blank's */
    int devnull = -1;
    int pidfd = -1;
    int rc;

    *pidfd_out = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, report_sock) < 0)
        return -errno;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        rc = -errno;
        goto fail;
    }
    if (kind == CHILD_BLANK && (spec->namespaces & CLONE_NEWPID) &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, init_socks) < 0) {
        rc = -errno;
        goto fail;
    }

    bool has_groups = spec->cgroup_fds[0] >= 0 || spec->cgroup_fds[1] >= 0;
    bool inside = has_groups && can_be_born_inside(spec);
    struct child_plan plan = {.spec = spec, .error_fd = report_sock[1], .devnull_fd = devnull,
                              .join_wait = has_groups && !inside,
                              .uid = spec->uid, .gid = spec->gid,
                              .init_socks = {init_socks[0], init_socks[1]}};
    if (spec->namespaces & CLONE_NEWUSER) {
        plan.userns = true;
        plan.uid = USERNS_UID;
        plan.gid = USERNS_GID;
        snprintf(plan.uid_map, sizeof(plan.uid_map), "%d %u 1\n", USERNS_UID, (unsigned)geteuid());
        snprintf(plan.gid_map, sizeof(plan.gid_map), "%d %u 1\n", USERNS_GID, (unsigned)getegid());
    }

    /* This thread takes the worker's groups on, so that the child is born in them. */
    if (inside && (rc = -write_tasks(spec->cgroup_fds, "0")) < 0) {
        (void)write_tasks(spec->home_fds, "0");
        log_error("worker start failed", "step=\"join cgroups\" path=%s err=\"%s\"", spec->path,
                  strerror(-rc));
        goto fail;
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* The cgroup namespace is entered later, from inside the worker's cgroup. */
    uint64_t flags = (spec->namespaces & ~(uint64_t)CLONE_NEWCGROUP) |
                     (spec->own_network ? CLONE_NEWNET : 0) | (spec->fsroot ? CLONE_NEWNS : 0) |
                     (exec ? 0 : CLONE_PARENT);
    pid_t pid = clone_child(&pidfd, flags);
    if (pid == 0) {
        if (kind == CHILD_BLANK) {
            child_birth(&plan);
            /* Before the init's birth, which then inherits them. */
            if ((rc = child_seccomp_ahead(spec->seccomp)))
                child_fail(&plan, STEP_SECCOMP, rc);
            if ((rc = child_start_blank_init(&plan)))
                child_fail(&plan, STEP_START_INIT, rc);
            if (spec->argv == NULL) {
                close(plan.error_fd);
                return 0;
            }
            /* A blank of a program: it calls sandbox_specialise itself, with the
             * init's socket where this one left it. */
            if ((spec->namespaces & CLONE_NEWPID) && fcntl(BLANK_INIT_FD, F_SETFD, 0) < 0)
                child_fail(&plan, STEP_EXEC, errno);
            execve(spec->path, spec->argv, spec->envp);
            child_fail(&plan, STEP_EXEC, errno);
        }
        child_checklist(&plan);
        if (!exec) {
            /* The report socket closes empty: the fork server reads success. */
            close(plan.error_fd);
            return 0;
        }
        execve(spec->path, spec->argv, spec->envp);
        child_fail(&plan, STEP_EXEC, errno);
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (inside && (rc = write_tasks(spec->home_fds, "0")) != 0)
        /* The thread stays in a worker's groups, under its limits: say so loudly. */
        log_error("cgroup move home failed", "err=\"%s\"", strerror(rc));
    if (pid < 0) {
        rc = -clone_errno;
        log_error("clone3 failed", "err=\"%s\"", strerror(clone_errno));
        goto fail;
    }

    close(report_sock[1]);
    report_sock[1] = -1;
    if (plan.join_wait)
        move_child(spec, pid, report_sock[0]);
    /* Blocks until exec (a fraction of a millisecond) or the child's report, as
     * libuv's uv_spawn does. */
    struct sandbox_report report;
    ssize_t n;
    do {
        n = read(report_sock[0], &report, sizeof(report));
    } while (n < 0 && errno == EINTR);

    if (n == (ssize_t)sizeof(report)) {
        if (exec) {
            int status;
            waitpid(pid, &status, 0);
            close(pidfd);
            pidfd = -1;
        }
        log_error("worker start failed", "step=\"%s\" path=%s err=\"%s\"",
                  sandbox_step_name(report.step), spec->path, strerror(report.err));
        rc = report.err > 0 ? -report.err : -EIO;
        goto fail;
    }
    close(report_sock[0]);
    close(devnull);
    if (init_socks[0] >= 0) {
        close(init_socks[0]);
        *init_orders = init_socks[1];
    }
    *pidfd_out = pidfd;
    return pid;

fail:
    *pidfd_out = pidfd; /* a child left to reap (fork server), or -1 */
    if (report_sock[0] >= 0)
        close(report_sock[0]);
    if (report_sock[1] >= 0)
        close(report_sock[1]);
    if (devnull >= 0)
        close(devnull);
    fdpass_close_all(init_socks, init_socks[0] >= 0 ? 2 : 0);
    return rc;
}

const char *sandbox_step_name(int32_t step)
{
    if (step >= 0 && (size_t)step < sizeof(step_names) / sizeof(step_names[0]))
        return step_names[step];
    return "?";
}

int sandbox_spawn(const struct sandbox_spec *spec, struct sandbox_process *out)
{
    int pidfd = -1;
    pid_t pid = start_child(spec, CHILD_EXEC, &pidfd, NULL);
    if (pid < 0)
        return (int)pid;
    out->pid = pid;
    out->pidfd = pidfd;
    out->has_init = (spec->namespaces & CLONE_NEWPID) != 0;
    return 0;
}

pid_t sandbox_fork(const struct sandbox_spec *spec, int *pidfd)
{
    return start_child(spec, CHILD_FORK, pidfd, NULL);
}

pid_t sandbox_fork_blank(const struct sandbox_spec *spec, int *pidfd, int *init_orders)
{
    *init_orders = -1;
    return start_child(spec, CHILD_BLANK, pidfd, init_orders);
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

/* Without root, every namespace comes inside a user namespace of the worker's own,
 * or not at all. */
static uint64_t probe_in_user_namespace(void)
{
    uint64_t all = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWIPC |
                   CLONE_NEWUTS | CLONE_NEWNS;
    int rc = try_namespaces(all);
    if (rc < 0) {
        log_warn("sandbox layer unavailable", "layer=namespaces err=\"%s\" effect=\"without "
                 "root or a user namespace, workers share the host's processes, files, IPC "
                 "and network\"", strerror(-rc));
        return 0;
    }
    rc = try_namespaces(all | CLONE_NEWNET);
    if (rc < 0) {
        log_warn("sandbox layer unavailable", "layer=network err=\"%s\" effect=\"functions "
                 "with network none cannot be deployed\"", strerror(-rc));
        return all;
    }
    return all | CLONE_NEWNET;
}

uint64_t sandbox_probe_namespaces(void)
{
    if (geteuid() != 0)
        return probe_in_user_namespace();
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
    /* pid: the worker sees only its own processes and can signal nothing else.
     * cgroup: /proc/self/cgroup shows the worker's group as the root. */
    rc = try_namespaces(CLONE_NEWPID | CLONE_NEWCGROUP);
    if (rc == 0)
        have |= CLONE_NEWPID | CLONE_NEWCGROUP;
    else
        log_warn("sandbox layer unavailable", "layer=namespaces err=\"%s\" effect=\"workers "
                 "see and may signal the host's processes\"", strerror(-rc));
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
    /* No process (yet): kill(0) and kill(-1) would mean the caller's own group and
     * every process it may signal. */
    if (p->pid <= 0)
        return;
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
    if (info.si_code == CLD_EXITED) {
        int code = info.si_status & 0xff;
        if (p->has_init && code > 128 && code < 128 + 65)
            return code - 128; /* the init's report of the runtime's signal */
        return code << 8;
    }
    return info.si_status & 0x7f; /* killed or dumped: the signal number */
}
