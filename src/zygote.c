/*
 * The Python fork server (include/fnd/zygote.h).
 *
 * The daemon's side starts the zygote once, through sandbox_spawn with no layer but
 * the hygiene ones (it must keep the privileges its children drop), and then for each
 * python3 worker sends one request on a private stream socket:
 *
 *   request = wire_len:u32 env_len:u32 wire env      + descriptors (SCM_RIGHTS)
 *   wire    = struct zygote_wire, then the three seccomp programs' instructions
 *   env     = the worker's environment, "NAME=value\0" each
 *   reply   = result:i32 flags:i32                   + the worker's pidfd, dead blanks'
 *
 * The descriptors are the worker's channel, stdout and stderr, then the tasks files of
 * the worker's cgroups and of the daemon's own (where the zygote lives too): the daemon
 * opened them, so the zygote's thread can step into the worker's groups for the fork
 * and back home (sandbox.c), with the daemon's permission. The zygote's side
 * (fnd_zygote_serve, called once by the Python runtime through ctypes) reads each
 * request, decodes it back into a sandbox_spec and calls sandbox_fork; the child is
 * the daemon's own (CLONE_PARENT), and its pidfd travels back in the reply, so the
 * worker module handles it like any spawned worker. The zygote sleeps until a request
 * comes: a heads-up that kept it polling while the daemon prepared the request made
 * native cold starts 0.4-0.6 ms slower (docs/benchmarks.md), as the woken zygote
 * spun on the daemon's own CPU.
 *
 * Blanks: once the zygote has had a request and then nothing for BLANK_DELAY_MS, it
 * forks a blank (sandbox.c): a child in the namespaces and the root that request's
 * worker had, but without its code, cgroups, uid or filters, which rehearses an
 * invocation (bootstrap.py) and then waits on its own socket. The next request of the
 * same shape goes to the blank instead of a new fork, with one more descriptor: the
 * function's code as a detached read-only mount (open_tree), which only the zygote,
 * in the host's mount namespace, can make. Before the request, the zygote sends the
 * blank's init its own share of the worker (sandbox_order_blank_init), so that the
 * two work at once. The blank attaches the code, walks the rest of the checklist and
 * answers the zygote, which answers the daemon with the blank's pidfd. A request of
 * another shape (another network setting, say) gets a fresh fork, and the blank is
 * killed; so is a blank that died or did not answer. A blank the daemon must reap (it
 * is the daemon's child, as every worker is) travels back with the next reply,
 * counted in its flags. Daemons in a user namespace of their own get no blanks: the
 * zygote cannot copy the host's mounts for them.
 *
 * Native workers use blanks too, though the zygote never forks them: a request marked
 * blank_only carries the program to exec (the runner), and a blank of that kind execs
 * it right after its birth; the runner calls fnd_zygote_specialise before it loads the
 * handler. Without a fitting blank the answer is -ENOENT and the daemon execs the
 * runner itself, as it did before; so does a native start that finds the zygote busy,
 * so that native starts never wait for python3 ones.
 *
 * The zygote's loop is C, not Python, because of what a fork costs afterwards: every
 * page the parent writes after a fork is copied (the children share them), and a
 * Python loop writes reference counts all over the interpreter's heap, so each request
 * paid for hundreds of page copies before its own fork. In C the parent touches only
 * its stack and one receive buffer, and the interpreter's heap stays shared, as it
 * was at start-up, until a child touches it. Even those few pages cost a fault each
 * when a request wrote them after a blank's fork; own_request_pages copies them
 * beforehand, while the zygote is idle.
 *
 * Both sides are built from this file (the zygote's into the small shared library
 * libfnd-zygote.so), so the wire struct needs no versioning: it is the same layout in
 * both. The zygote still checks sizes and counts, since a bug on either side must not
 * become an out-of-bounds read in a process that runs as root.
 */
#include "fnd/zygote.h"

#include "fnd/common.h"
#include "fnd/fdpass.h"
#include "fnd/log.h"
#include "fnd/protocol.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define WIRE_MAGIC 0x6f67797aU /* "zygo" */
#define MAX_FDS 7              /* channel, stdout, stderr, 2 tasks files each: worker's, daemon's */
#define READY_TIMEOUT_MS 10000
#define REPLY_TIMEOUT_MS 10000
#define REQUEST_MAX (1u << 20) /* wire and environment; both are far smaller */
#define REQUEST_STACK (32u << 10) /* the stack below the zygote's loop a request uses */
#define BLANK_DELAY_MS 50      /* idle after a request before a blank is made */

/* reply flags */
#define REPLY_PIDFD 1      /* the worker's pidfd comes with the reply */
#define REPLY_BLANK 2      /* the worker was a blank */
#define REPLY_DEAD_SHIFT 8 /* bits 8 up: how many dead blanks' pidfds follow, to reap */
#define MAX_DEAD 4

struct zygote_wire {
    uint32_t magic;
    uint32_t nfds;
    int32_t cgroup_slot[2]; /* index of each worker's tasks file among the fds, or -1 */
    int32_t home_slot[2];   /* the same for the daemon's own groups (the zygote's too) */
    char cwd[PATH_MAX];
    char exec_path[PATH_MAX]; /* "" in a python3 request; else a program for a blank to exec */
    uint64_t max_open_files;
    uint64_t max_file_size;
    uint64_t max_cpu_seconds;
    uint64_t namespaces;
    uint32_t uid;
    uint32_t gid;
    uint8_t own_network;
    uint8_t sched_batch;
    uint8_t has_fsroot;
    uint8_t seccomp;
    uint8_t blank_only; /* from a blank, or not at all (-ENOENT): the daemon execs */
    uint32_t program_len[SECCOMP_PROGRAMS]; /* instructions of each, in that order */
    uint32_t programs_loaded; /* 0 from the daemon; to a blank, what it was born with */
    struct fsroot_plan fsroot;
};

struct zygote {
    pthread_mutex_t lock; /* one request at a time: workers start on several threads */
    int sock;             /* blocking; the daemon's end of the control socket */
    struct sandbox_process proc;
};

/* --- the daemon's side ------------------------------------------------------------- */

static void stop(struct zygote *z)
{
    if (z->sock >= 0)
        close(z->sock);
    z->sock = -1;
    if (z->proc.pidfd >= 0) {
        sandbox_kill_group(&z->proc);
        sandbox_reap(&z->proc);
        close(z->proc.pidfd);
        z->proc.pidfd = -1;
    }
}

/* Waits up to timeout_ms for fd to become readable: 0, -ETIMEDOUT or -errno. */
static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

int zygote_open(struct zygote **out, const char *python, const char *bootstrap,
                const char *library)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    char *argv[] = {(char *)python, "-s", (char *)bootstrap, "--zygote", (char *)library, NULL};
    /* Read once, at the interpreter's start: they hold for every worker forked later. */
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                    "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", NULL};
    struct sandbox_spec spec = {
        .path = python, .argv = argv, .envp = envp, .cwd = "/", .channel_fd = sv[1],
        .stdout_fd = STDOUT_FILENO, .stderr_fd = STDERR_FILENO, .cgroup_fds = {-1, -1},
        .home_fds = {-1, -1}, .max_open_files = 1024, .max_file_size = UINT64_C(4) << 30,
    };
    struct zygote *z = xcalloc(1, sizeof(*z));
    pthread_mutex_init(&z->lock, NULL);
    z->sock = sv[0];
    z->proc.pidfd = -1;
    int rc = sandbox_spawn(&spec, &z->proc);
    close(sv[1]);
    if (rc < 0) {
        z->proc.pidfd = -1;
        goto fail;
    }
    /* A zygote that stops reading must not stall the daemon's loop for good. */
    struct timeval send_timeout = {REPLY_TIMEOUT_MS / 1000, 0};
    if (setsockopt(z->sock, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout)) < 0) {
        rc = -errno;
        goto fail;
    }
    char ready;
    if ((rc = wait_readable(z->sock, READY_TIMEOUT_MS)) < 0)
        goto fail;
    if (read(z->sock, &ready, 1) != 1 || ready != 'R') {
        rc = -EPROTO;
        goto fail;
    }
    *out = z;
    return 0;

fail:
    log_warn("zygote_open failed", "err=\"%s\"", strerror(-rc));
    stop(z);
    pthread_mutex_destroy(&z->lock);
    free(z);
    return rc;
}

/* Lays spec out for the zygote: the wire struct, then the filters' instructions. */
/* A descriptor's index in a request: -1 (none), or one past the three standard ones. */
static bool slot_valid(int32_t slot, size_t nfds)
{
    return slot == -1 || (slot >= 3 && (size_t)slot < nfds);
}

static int slot_fd(const int *fds, int32_t slot)
{
    return slot >= 0 ? fds[slot] : -1;
}

static struct zygote_wire *encode(const struct sandbox_spec *spec, bool blank_only, size_t *len,
                                  int fds[MAX_FDS],
                                  size_t *nfds)
{
    const struct seccomp_policy *sc = spec->seccomp && spec->seccomp->enabled ? spec->seccomp
                                                                              : NULL;
    size_t ninsns = 0;
    for (size_t i = 0; sc && i < SECCOMP_PROGRAMS; i++)
        ninsns += sc->programs[i].len;
    *len = sizeof(struct zygote_wire) + ninsns * sizeof(struct sock_filter);
    struct zygote_wire *w = xcalloc(1, *len);
    w->magic = WIRE_MAGIC;
    size_t n = 0;
    fds[n++] = spec->channel_fd;
    fds[n++] = spec->stdout_fd;
    fds[n++] = spec->stderr_fd;
    for (int i = 0; i < 2; i++) {
        w->cgroup_slot[i] = w->home_slot[i] = -1;
        if (spec->cgroup_fds[i] >= 0) {
            w->cgroup_slot[i] = (int32_t)n;
            fds[n++] = spec->cgroup_fds[i];
        }
        if (spec->home_fds[i] >= 0) {
            w->home_slot[i] = (int32_t)n;
            fds[n++] = spec->home_fds[i];
        }
    }
    w->nfds = (uint32_t)n;
    *nfds = n;
    snprintf(w->cwd, sizeof(w->cwd), "%s", spec->cwd);
    if (blank_only) {
        w->blank_only = 1;
        snprintf(w->exec_path, sizeof(w->exec_path), "%s", spec->path);
    }
    w->max_open_files = spec->max_open_files;
    w->max_file_size = spec->max_file_size;
    w->max_cpu_seconds = spec->max_cpu_seconds;
    w->namespaces = spec->namespaces;
    w->uid = spec->uid;
    w->gid = spec->gid;
    w->own_network = spec->own_network;
    w->sched_batch = spec->sched_batch;
    if (spec->fsroot) {
        w->has_fsroot = 1;
        w->fsroot = *spec->fsroot;
    }
    if (sc) {
        w->seccomp = 1;
        struct sock_filter *prog = (struct sock_filter *)(w + 1);
        for (size_t i = 0; i < SECCOMP_PROGRAMS; i++) {
            w->program_len[i] = sc->programs[i].len;
            memcpy(prog, sc->programs[i].filter, sc->programs[i].len * sizeof(*prog));
            prog += sc->programs[i].len;
        }
    }
    return w;
}

static int send_request(int sock, const void *wire, size_t wire_len, const char *env,
                        size_t env_len, const int *fds, size_t nfds)
{
    uint32_t head[2] = {(uint32_t)wire_len, (uint32_t)env_len};
    struct iovec iov[3] = {{head, sizeof(head)}, {(void *)wire, wire_len}, {(void *)env, env_len}};
    return fdpass_send(sock, iov, 3, fds, nfds);
}

/* Waits for a child that has exited, or is about to, and lets its pidfd go. */
static void reap(int pidfd)
{
    siginfo_t info;
    while (waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR)
        ;
    close(pidfd);
}

/* Reads the 8-byte reply and the pidfd that may come with it; reaps a dead blank
 * that comes after it. */
static int read_reply(int sock, int32_t reply[2], int *pidfd)
{
    *pidfd = -1;
    int rc = wait_readable(sock, REPLY_TIMEOUT_MS);
    if (rc < 0)
        return rc;
    int fds[1 + MAX_DEAD];
    size_t nfds = 0;
    ssize_t n = fdpass_recv(sock, reply, 2 * sizeof(int32_t), fds, 1 + MAX_DEAD, &nfds);
    if (n <= 0) {
        fdpass_close_all(fds, nfds);
        return n < 0 ? (int)n : -EPROTO;
    }
    size_t has_pidfd = (reply[1] & REPLY_PIDFD) != 0;
    if (nfds != has_pidfd + ((uint32_t)reply[1] >> REPLY_DEAD_SHIFT)) {
        fdpass_close_all(fds, nfds);
        return -EPROTO;
    }
    if (has_pidfd)
        *pidfd = fds[0];
    for (size_t i = has_pidfd; i < nfds; i++)
        reap(fds[i]);
    return 0;
}

static int spawn_locked(struct zygote *z, const struct sandbox_spec *spec, bool blank_only,
                        struct sandbox_process *out, bool *blank)
{
    if (z->sock < 0)
        return -ECHILD;
    int fds[MAX_FDS];
    size_t nfds, wire_len, env_len = 0;
    struct zygote_wire *w = encode(spec, blank_only, &wire_len, fds, &nfds);
    for (size_t i = 0; spec->envp[i]; i++)
        env_len += strlen(spec->envp[i]) + 1;
    if (wire_len + env_len > REQUEST_MAX) {
        free(w);
        return -E2BIG; /* cannot happen within fnconfig's limits on the environment */
    }
    char *env = xmalloc(env_len + 1);
    for (size_t i = 0, at = 0; spec->envp[i]; i++) {
        size_t l = strlen(spec->envp[i]) + 1;
        memcpy(env + at, spec->envp[i], l);
        at += l;
    }
    int rc = send_request(z->sock, w, wire_len, env, env_len, fds, nfds);
    free(w);
    free(env);
    int32_t reply[2] = {0, 0};
    int pidfd = -1;
    if (rc == 0)
        rc = read_reply(z->sock, reply, &pidfd);
    if (rc < 0) {
        log_warn("zygote failed", "err=\"%s\" effect=\"python3 workers start without it\"",
                 strerror(-rc));
        if (pidfd >= 0)
            close(pidfd);
        stop(z);
        return -ECHILD;
    }
    if (reply[0] <= 0) {
        /* The child failed a step (the zygote logged which): it is ours to reap. */
        if (pidfd >= 0)
            reap(pidfd);
        return reply[0] < 0 ? reply[0] : -EIO;
    }
    if (pidfd < 0)
        return -EPROTO;
    out->pid = reply[0];
    out->pidfd = pidfd;
    out->has_init = (spec->namespaces & CLONE_NEWPID) != 0;
    *blank = (reply[1] & REPLY_BLANK) != 0;
    return 0;
}

int zygote_spawn(struct zygote *z, const struct sandbox_spec *spec, bool blank_only,
                 struct sandbox_process *out, bool *blank)
{
    *blank = false;
    /* A worker that may be exec'd instead does not wait for the zygote to be free. */
    if (blank_only) {
        if (pthread_mutex_trylock(&z->lock) != 0)
            return -ENOENT;
    } else {
        pthread_mutex_lock(&z->lock);
    }
    int rc = spawn_locked(z, spec, blank_only, out, blank);
    pthread_mutex_unlock(&z->lock);
    return rc;
}

void zygote_close(struct zygote *z)
{
    if (z == NULL)
        return;
    pthread_mutex_lock(&z->lock); /* waits for a request in flight */
    stop(z);
    pthread_mutex_unlock(&z->lock);
    pthread_mutex_destroy(&z->lock);
    free(z);
}

/* --- the zygote's side ------------------------------------------------------------- */

/* Checks a request and decodes it into spec (pointing into data and fds) and policy. */
static int decode(const void *data, size_t len, const int *fds, size_t nfds,
                  struct sandbox_spec *spec, struct seccomp_policy *policy)
{
    const struct zygote_wire *w = data;
    size_t ninsns = 0;
    for (size_t i = 0; len >= sizeof(*w) && i < SECCOMP_PROGRAMS; i++) {
        if (w->program_len[i] > BPF_MAXINSNS)
            return -EINVAL;
        ninsns += w->program_len[i];
    }
    if (len < sizeof(*w) || w->magic != WIRE_MAGIC || w->nfds != nfds || nfds < 3 ||
        w->programs_loaded > SECCOMP_PROGRAMS ||
        nfds > MAX_FDS || len != sizeof(*w) + ninsns * sizeof(struct sock_filter) ||
        memchr(w->cwd, '\0', sizeof(w->cwd)) == NULL)
        return -EINVAL;
    for (int i = 0; i < 2; i++)
        if (!slot_valid(w->cgroup_slot[i], nfds) || !slot_valid(w->home_slot[i], nfds))
            return -EINVAL;
    memset(policy, 0, sizeof(*policy));
    if (w->seccomp) {
        struct sock_filter *prog = (struct sock_filter *)(w + 1);
        policy->enabled = true;
        for (size_t i = 0; i < SECCOMP_PROGRAMS; i++) {
            policy->programs[i] = (struct sock_fprog){(unsigned short)w->program_len[i], prog};
            prog += w->program_len[i];
        }
    }
    *spec = (struct sandbox_spec){
        .path = "(zygote)",
        .cwd = w->cwd,
        .channel_fd = fds[0],
        .stdout_fd = fds[1],
        .stderr_fd = fds[2],
        .cgroup_fds = {slot_fd(fds, w->cgroup_slot[0]), slot_fd(fds, w->cgroup_slot[1])},
        /* The zygote was started in the daemon's groups, so the daemon's tasks files
         * take its thread home after each child is born in its own (sandbox.c). */
        .home_fds = {slot_fd(fds, w->home_slot[0]), slot_fd(fds, w->home_slot[1])},
        .max_open_files = w->max_open_files,
        .max_file_size = w->max_file_size,
        .max_cpu_seconds = w->max_cpu_seconds,
        .seccomp = w->seccomp ? policy : NULL,
        .seccomp_loaded = w->programs_loaded,
        .namespaces = w->namespaces,
        .own_network = w->own_network != 0,
        .sched_batch = w->sched_batch != 0,
        .fsroot = w->has_fsroot ? &w->fsroot : NULL,
        .uid = w->uid,
        .gid = w->gid,
    };
    return 0;
}

int fnd_zygote_fork(const void *data, size_t len, const int *fds, size_t nfds, int *pidfd)
{
    *pidfd = -1;
    struct sandbox_spec spec;
    struct seccomp_policy policy;
    int rc = decode(data, len, fds, nfds, &spec, &policy);
    return rc < 0 ? rc : (int)sandbox_fork(&spec, pidfd);
}

/* Receives one request: its 8-byte head with up to max descriptors, then wire and env
 * into buf. 0, -EPROTO for a request to refuse (its descriptors closed), or -1 when
 * the sender is gone. */
static int read_request(int sock, char *buf, uint32_t head[2], int *fds, size_t max,
                        size_t *nfds)
{
    ssize_t n = fdpass_recv(sock, head, 2 * sizeof(uint32_t), fds, max, nfds);
    if (n == 0 || (n < 0 && n != -EPROTO))
        return -1;
    if (n < 0 || (uint64_t)head[0] + head[1] > REQUEST_MAX) {
        fdpass_close_all(fds, *nfds);
        return -EPROTO;
    }
    if (fnd_read_full(sock, buf, (size_t)head[0] + head[1]) < 0) {
        fdpass_close_all(fds, *nfds);
        return -1;
    }
    return 0;
}

static int send_reply(int sock, int32_t result, int32_t flags, int pidfd, const int *dead,
                      size_t ndead)
{
    int fds[1 + MAX_DEAD];
    size_t nfds = 0;
    if (pidfd >= 0) {
        fds[nfds++] = pidfd;
        flags |= REPLY_PIDFD;
    }
    memcpy(fds + nfds, dead, ndead * sizeof(int));
    nfds += ndead;
    flags |= (int32_t)(ndead << REPLY_DEAD_SHIFT);
    int32_t reply[2] = {result, flags};
    struct iovec iov = {reply, sizeof(reply)};
    return fdpass_send(sock, &iov, 1, fds, nfds) == 0 ? 0 : -1;
}

/* The zygote is one thread, so its state is plain statics: a blank for each kind of
 * worker, python3 (it returns into this interpreter) and a program it execs (the
 * native runner), each made in the shape of the last request of its kind. */
enum blank_kind { BLANK_PYTHON, BLANK_EXEC, BLANK_KINDS };

static struct blank {
    pid_t pid;                 /* 0: none */
    int pidfd;
    int sock;                  /* the zygote's end of the blank's channel */
    int init_orders;           /* to the blank's init, until it has its orders; or -1 */
    struct zygote_wire shape;  /* of the requests it can serve (see shape_of) */
} blanks[BLANK_KINDS] = {{.pidfd = -1, .sock = -1, .init_orders = -1},
                         {.pidfd = -1, .sock = -1, .init_orders = -1}};
static struct zygote_wire last[BLANK_KINDS]; /* the shape of the last request of a kind */
static struct seccomp_policy last_policy[BLANK_KINDS]; /* and a copy of its programs */
static bool have_last[BLANK_KINDS];
static struct zygote_wire request_shape;     /* serve_request's, of the request at hand */
static bool blanks_off;        /* they failed once: the zygote forks on request only */
static int dead[MAX_DEAD];     /* blanks the daemon has yet to reap */
static size_t ndead;

static enum blank_kind kind_of(const struct zygote_wire *w)
{
    return w->exec_path[0] ? BLANK_EXEC : BLANK_PYTHON;
}

/* What two requests must share for one's blank to serve the other: everything a
 * blank's birth took from the request it was made from. */
static void shape_of(const struct zygote_wire *w, struct zygote_wire *shape)
{
    memset(shape, 0, offsetof(struct zygote_wire, fsroot));
    shape->magic = WIRE_MAGIC;
    memcpy(shape->exec_path, w->exec_path, sizeof(shape->exec_path));
    shape->namespaces = w->namespaces;
    shape->own_network = w->own_network;
    shape->sched_batch = w->sched_batch;
    shape->seccomp = w->seccomp; /* a blank loads the first programs at birth */
    shape->has_fsroot = w->has_fsroot;
    if (w->has_fsroot) {
        shape->fsroot = w->fsroot;
        fsroot_plan_drop_code(&shape->fsroot);
    }
}

static bool same_shape(const struct zygote_wire *a, const struct zygote_wire *b)
{
    return memcmp(a, b, offsetof(struct zygote_wire, fsroot)) == 0 &&
           (!a->has_fsroot || fsroot_plan_same_root(&a->fsroot, &b->fsroot));
}

static void blanks_unavailable(const char *why, int err)
{
    log_warn("blank workers unavailable", "why=\"%s\" err=\"%s\" effect=\"workers are "
             "forked or exec'd when they are needed\"", why, strerror(err));
    blanks_off = true;
}

static void bury(int pidfd)
{
    if (pidfd < 0)
        return;
    if (ndead < MAX_DEAD)
        dead[ndead++] = pidfd;
    else
        close(pidfd); /* cannot happen: at most two a request, and a reply takes them */
}

/* The kind of blank to make next, or -1: none is missing. */
static int missing_blank(void)
{
    for (int k = 0; k < BLANK_KINDS && !blanks_off; k++)
        if (have_last[k] && !blanks[k].pid)
            return k;
    return -1;
}

/* Makes the pages a request writes the zygote's own again, after a blank was forked.
 * A fork leaves every page shared until one side writes it, and a write to a shared
 * page costs a fault and a copy, 12-17 us here: a request wrote two dozen of them (its
 * buffer, the shape, the stack below the loop), a third of a millisecond of the cold
 * start it was serving. The copies are made now, while the zygote would wait anyway;
 * the contents stay as they are. Best effort: what the kernel refuses (before Linux
 * 5.14, or below the stack's mapping) is left to fault as before. */
static void own_request_pages(const char *buf, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t stack = (uintptr_t)__builtin_frame_address(0);
    const struct {
        uintptr_t at;
        size_t len;
    } hot[] = {{(uintptr_t)buf, len},
               {(uintptr_t)&request_shape, sizeof(request_shape)},
               {stack - REQUEST_STACK, REQUEST_STACK}};
    /* Page by page from the top down: the stack's mapping may end below the loop. */
    for (size_t i = 0; i < sizeof(hot) / sizeof(hot[0]); i++) {
        uintptr_t from = hot[i].at & ~(uintptr_t)(page - 1);
        uintptr_t top = (hot[i].at + hot[i].len - 1) & ~(uintptr_t)(page - 1);
        for (uintptr_t at = top; hot[i].len > 0 && at >= from; at -= (uintptr_t)page)
            if (madvise((void *)at, (size_t)page, MADV_POPULATE_WRITE) < 0)
                break;
    }
}

/* Keeps a copy of policy's programs as those of the last request of kind k: its
 * blank loads them at birth (sandbox.c), long after the request's buffer is reused. */
static void remember_policy(enum blank_kind k, const struct seccomp_policy *policy)
{
    struct seccomp_policy *kept = &last_policy[k];
    for (size_t i = 0; i < SECCOMP_PROGRAMS; i++) {
        free(kept->programs[i].filter);
        kept->programs[i] = (struct sock_fprog){0, NULL};
        if (policy->enabled) {
            size_t size = policy->programs[i].len * sizeof(struct sock_filter);
            kept->programs[i].filter = memcpy(xmalloc(size ? size : 1),
                                              policy->programs[i].filter, size);
            kept->programs[i].len = policy->programs[i].len;
        }
    }
    kept->enabled = policy->enabled;
}

/* Forks a blank of kind k in the shape of its last request. 1 in a python3 blank
 * (a blank of a program execs it), 0 in the zygote. */
static int make_blank(int k)
{
    static struct fsroot_plan plan;
    const struct zygote_wire *shape = &last[k];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        blanks_unavailable("socketpair", errno);
        return 0;
    }
    plan = shape->fsroot;
    char *argv[] = {(char *)shape->exec_path, "--blank", NULL};
    char *envp[] = {NULL}; /* the worker's comes with its request */
    struct sandbox_spec spec = {
        .path = k == BLANK_EXEC ? shape->exec_path : "(blank)", .cwd = "/",
        .argv = k == BLANK_EXEC ? argv : NULL, .envp = envp, .channel_fd = sv[1],
        .stdout_fd = STDERR_FILENO, .stderr_fd = STDERR_FILENO, .cgroup_fds = {-1, -1},
        .home_fds = {-1, -1}, .namespaces = shape->namespaces,
        .own_network = shape->own_network != 0, .sched_batch = shape->sched_batch != 0,
        .fsroot = shape->has_fsroot ? &plan : NULL,
        .seccomp = last_policy[k].enabled ? &last_policy[k] : NULL,
    };
    int pidfd = -1, init_orders = -1;
    pid_t pid = sandbox_fork_blank(&spec, &pidfd, &init_orders);
    if (pid == 0)
        return 1;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        bury(pidfd);
        blanks_unavailable("its birth failed", (int)-pid);
        return 0;
    }
    blanks[k] = (struct blank){pid, pidfd, sv[0], init_orders, *shape};
    return 0;
}

/* Closes the zygote's copy of b's socket to its init: without orders the init then
 * reads the end once the blank's copy is gone too, and only reaps. */
static void drop_init_orders(struct blank *b)
{
    if (b->init_orders >= 0)
        close(b->init_orders);
    b->init_orders = -1;
}

/* Kills blank b and buries it. */
static void discard_blank(struct blank *b)
{
    syscall(SYS_pidfd_send_signal, b->pidfd, SIGKILL, NULL, 0);
    close(b->sock);
    drop_init_orders(b);
    bury(b->pidfd);
    b->pid = 0;
    b->pidfd = b->sock = -1;
}

/* Gives the request to blank b. The blank's pid (*pidfd set) once it is the worker,
 * a negative errno from its failing step (*pidfd: the failed child), or -ECHILD when
 * the blank cannot serve it (it is then still the zygote's to discard). */
static int hand_to_blank(struct blank *b, const struct zygote_wire *w, const uint32_t head[2],
                         const int *fds, size_t nfds, const struct sandbox_spec *spec, int *pidfd)
{
    /* The init's orders first: it wakes and carries them out while the code's tree is
     * opened and the blank walks its half (sandbox.c, "blanks"). */
    if (b->init_orders >= 0) {
        int sent = sandbox_order_blank_init(b->init_orders, spec);
        drop_init_orders(b);
        if (sent < 0)
            return -ECHILD;
    }
    int all[MAX_FDS + 1];
    memcpy(all, fds, nfds * sizeof(int));
    int tree = -1;
    if (w->has_fsroot) {
        const char *code = fsroot_plan_code_dir(&w->fsroot);
        if (code == NULL)
            return -ECHILD;
        /* The bind fsroot_enter would make, as a detached copy of the host's mount. */
        struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                            MOUNT_ATTR_NODEV};
        tree = open_tree(AT_FDCWD, code, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) < 0) {
            blanks_unavailable("open_tree of the code", errno);
            if (tree >= 0)
                close(tree);
            return -ECHILD;
        }
        all[nfds++] = tree;
    }
    int rc = send_request(b->sock, w, head[0], (const char *)w + head[0], head[1], all, nfds);
    if (tree >= 0)
        close(tree);
    struct sandbox_report report;
    if (rc < 0 || wait_readable(b->sock, REPLY_TIMEOUT_MS) < 0 ||
        fnd_read_full(b->sock, &report, sizeof(report)) < 0)
        return -ECHILD;
    *pidfd = b->pidfd;
    pid_t pid = b->pid;
    close(b->sock);
    b->pid = 0;
    b->pidfd = b->sock = -1;
    if (report.step == SANDBOX_DONE)
        return pid;
    log_error("worker start failed", "step=\"%s\" path=(blank) err=\"%s\"",
              sandbox_step_name(report.step), strerror(report.err));
    return report.err > 0 ? -report.err : -EIO;
}

/* How many of policy's first programs blank k has had since its birth (make_blank):
 * those of the last request of its kind, the same as every request's unless the
 * daemon's policy changed, when the blank loads them all on top. */
static unsigned born_programs(enum blank_kind k, const struct seccomp_policy *policy)
{
    const struct seccomp_policy *born = &last_policy[k];
    if (!born->enabled || !policy->enabled)
        return 0;
    for (size_t i = 0; i < SECCOMP_AHEAD; i++)
        if (born->programs[i].len != policy->programs[i].len ||
            memcmp(born->programs[i].filter, policy->programs[i].filter,
                   policy->programs[i].len * sizeof(struct sock_filter)) != 0)
            return 0;
    return SECCOMP_AHEAD;
}

/* One request: to the blank of its kind when that fits, else a fresh fork, or, for a
 * request that only a blank may serve, -ENOENT. As fnd_zygote_fork, plus *flags. The
 * request's buffer is the zygote's own: before it goes on to a blank, it is told how
 * many of the filters the blank has loaded already. */
static int serve_request(char *buf, const uint32_t head[2], const int *fds, size_t nfds,
                         int *pidfd, int32_t *flags)
{
    struct zygote_wire *w = (void *)buf;
    struct sandbox_spec spec;
    struct seccomp_policy policy;
    *pidfd = -1;
    int rc = decode(buf, head[0], fds, nfds, &spec, &policy);
    if (rc < 0)
        return rc;
    if (memchr(w->exec_path, '\0', sizeof(w->exec_path)) == NULL ||
        (w->blank_only != 0) != (w->exec_path[0] != '\0'))
        return -EINVAL;
    enum blank_kind k = kind_of(w);
    struct blank *b = &blanks[k];
    shape_of(w, &request_shape);
    if (b->pid) {
        struct sandbox_spec to_blank = spec;
        to_blank.seccomp_loaded = w->programs_loaded = born_programs(k, &policy);
        if (same_shape(&request_shape, &b->shape) &&
            (rc = hand_to_blank(b, w, head, fds, nfds, &to_blank, pidfd)) != -ECHILD) {
            *flags |= REPLY_BLANK;
            return rc;
        }
        w->programs_loaded = 0;
        discard_blank(b);
    }
    last[k] = request_shape;
    remember_policy(k, &policy);
    have_last[k] = !(w->namespaces & CLONE_NEWUSER);
    return w->blank_only ? -ENOENT : (int)sandbox_fork(&spec, pidfd);
}

/* The interpreter's signal dispositions as its start-up left them: the checklist
 * resets every signal in a child, and the worker gets these back. */
static struct sigaction start_up[NSIG];

static void restore_start_up_signals(void)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (start_up[sig].sa_handler != SIG_DFL && sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &start_up[sig], NULL);
}

/* The worker's environment out of buf, which the zygote reuses. */
static int take_env(const char *buf, const uint32_t head[2], char **env, size_t *env_len)
{
    *env_len = head[1];
    *env = malloc(head[1] + 1);
    if (*env == NULL)
        return -1;
    memcpy(*env, buf + head[0], head[1]);
    (*env)[head[1]] = '\0';
    return 0;
}

int fnd_zygote_serve(int sock, char **env, size_t *env_len)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (sigaction(sig, NULL, &start_up[sig]) < 0)
            start_up[sig].sa_handler = SIG_DFL;
    char *buf = malloc(REQUEST_MAX);
    if (buf == NULL || write(sock, "R", 1) != 1) {
        free(buf);
        return -1;
    }
    size_t request_len = 0; /* the last one's: the next is much the same */
    for (;;) {
        int k = missing_blank();
        if (k >= 0 && wait_readable(sock, BLANK_DELAY_MS) == -ETIMEDOUT) {
            if (make_blank(k)) {
                free(buf);
                restore_start_up_signals();
                return 1;
            }
            own_request_pages(buf, request_len);
            continue;
        }
        uint32_t head[2];
        int fds[MAX_FDS], pidfd = -1;
        int32_t flags = 0;
        size_t nfds;
        int rc = read_request(sock, buf, head, fds, MAX_FDS, &nfds);
        if (rc == -1)
            break; /* the daemon is gone */
        if (rc == 0) {
            request_len = (size_t)head[0] + head[1];
            rc = serve_request(buf, head, fds, nfds, &pidfd, &flags);
            if (rc == 0) {
                if (take_env(buf, head, env, env_len) < 0)
                    _exit(127);
                free(buf);
                restore_start_up_signals();
                return 0;
            }
            fdpass_close_all(fds, nfds);
        }
        rc = send_reply(sock, rc, flags, pidfd, dead, ndead);
        if (pidfd >= 0)
            close(pidfd);
        fdpass_close_all(dead, ndead);
        ndead = 0;
        if (rc < 0)
            break;
    }
    for (int k = 0; k < BLANK_KINDS; k++)
        if (blanks[k].pid)
            discard_blank(&blanks[k]);
    fdpass_close_all(dead, ndead);
    free(buf);
    return -1;
}

int fnd_zygote_specialise(char **env, size_t *env_len)
{
    char *buf = calloc(1, REQUEST_MAX); /* zeroed: what a short request lacks reads as 0 */
    uint32_t head[2];
    int fds[MAX_FDS + 1];
    size_t nfds;
    if (buf == NULL || read_request(FND_CHANNEL_FD, buf, head, fds, MAX_FDS + 1, &nfds) != 0) {
        free(buf);
        return -1; /* the zygote is gone, or let the blank go */
    }
    const struct zygote_wire *w = (const void *)buf;
    int tree = -1;
    if (head[0] >= sizeof(*w) && w->has_fsroot && nfds > 0)
        tree = fds[--nfds];
    struct sandbox_spec spec;
    struct seccomp_policy policy;
    /* The zygote decoded the same bytes before it sent them: a failure here is a bug. */
    if (decode(buf, head[0], fds, nfds, &spec, &policy) < 0 ||
        take_env(buf, head, env, env_len) < 0)
        _exit(127);
    sandbox_specialise(&spec, tree);
    free(buf);
    return 0;
}
