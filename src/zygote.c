/*
 * The Python fork server (include/fnd/zygote.h).
 *
 * The daemon's side starts the zygote once, through sandbox_spawn with no layer but
 * the hygiene ones (it must keep the privileges its children drop), and then for each
 * python3 worker sends one request on a private stream socket:
 *
 *   request = wire_len:u32 env_len:u32 wire env      + descriptors (SCM_RIGHTS)
 *   wire    = struct zygote_wire, then the two seccomp programs' instructions
 *   env     = the worker's environment, "NAME=value\0" each
 *   reply   = result:i32 has_pidfd:i32               + the worker's pidfd
 *
 * The descriptors are the worker's channel, stdout and stderr, then the tasks files of
 * the worker's cgroups and of the daemon's own (where the zygote lives too): the daemon
 * opened them, so the zygote's thread can step into the worker's groups for the fork
 * and back home (sandbox.c), with the daemon's permission. The zygote's side
 * (fnd_zygote_serve, called once by the Python runtime through ctypes) reads each
 * request, decodes it back into a sandbox_spec and calls sandbox_fork; the child is
 * the daemon's own (CLONE_PARENT), and its pidfd travels back in the reply, so the
 * worker module handles it like any spawned worker.
 *
 * The zygote's loop is C, not Python, because of what a fork costs afterwards: every
 * page the parent writes after a fork is copied (the children share them), and a
 * Python loop writes reference counts all over the interpreter's heap, so each request
 * paid for hundreds of page copies before its own fork. In C the parent touches only
 * its stack and one receive buffer, and the interpreter's heap stays shared, as it
 * was at start-up, until a child touches it.
 *
 * Both sides are built from this file (the zygote's into the small shared library
 * libfnd-zygote.so), so the wire struct needs no versioning: it is the same layout in
 * both. The zygote still checks sizes and counts, since a bug on either side must not
 * become an out-of-bounds read in a process that runs as root.
 */
#include "fnd/zygote.h"

#include "fnd/common.h"
#include "fnd/log.h"
#include "fnd/protocol.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct zygote_wire {
    uint32_t magic;
    uint32_t nfds;
    int32_t cgroup_slot[2]; /* index of each worker's tasks file among the fds, or -1 */
    int32_t home_slot[2];   /* the same for the daemon's own groups (the zygote's too) */
    char cwd[PATH_MAX];
    uint64_t max_open_files;
    uint64_t max_file_size;
    uint64_t max_cpu_seconds;
    uint64_t namespaces;
    uint32_t uid;
    uint32_t gid;
    uint8_t own_network;
    uint8_t has_fsroot;
    uint8_t seccomp;
    uint8_t reserved;
    uint32_t allow_len; /* instructions of the allowlist program, then of the args one */
    uint32_t args_len;
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

static struct zygote_wire *encode(const struct sandbox_spec *spec, size_t *len, int fds[MAX_FDS],
                                  size_t *nfds)
{
    const struct seccomp_policy *sc = spec->seccomp && spec->seccomp->enabled ? spec->seccomp
                                                                              : NULL;
    size_t nallow = sc ? sc->allowlist.len : 0, nargs = sc ? sc->args.len : 0;
    *len = sizeof(struct zygote_wire) + (nallow + nargs) * sizeof(struct sock_filter);
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
    w->max_open_files = spec->max_open_files;
    w->max_file_size = spec->max_file_size;
    w->max_cpu_seconds = spec->max_cpu_seconds;
    w->namespaces = spec->namespaces;
    w->uid = spec->uid;
    w->gid = spec->gid;
    w->own_network = spec->own_network;
    if (spec->fsroot) {
        w->has_fsroot = 1;
        w->fsroot = *spec->fsroot;
    }
    if (sc) {
        w->seccomp = 1;
        w->allow_len = (uint32_t)nallow;
        w->args_len = (uint32_t)nargs;
        struct sock_filter *prog = (struct sock_filter *)(w + 1);
        memcpy(prog, sc->allowlist.filter, nallow * sizeof(*prog));
        memcpy(prog + nallow, sc->args.filter, nargs * sizeof(*prog));
    }
    return w;
}

static int send_request(int sock, const struct zygote_wire *w, size_t wire_len,
                        const char *env, size_t env_len, const int *fds, size_t nfds)
{
    uint32_t head[2] = {(uint32_t)wire_len, (uint32_t)env_len};
    struct iovec iov[3] = {{head, sizeof(head)}, {(void *)w, wire_len}, {(void *)env, env_len}};
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3, .msg_control = control.bytes,
                         .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    size_t total = sizeof(head) + wire_len + env_len;
    while (total > 0) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        total -= (size_t)n;
        /* The descriptors went with the first bytes; skip what was sent. */
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        while (n > 0 && msg.msg_iovlen > 0) {
            size_t take = (size_t)n < msg.msg_iov->iov_len ? (size_t)n : msg.msg_iov->iov_len;
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + take;
            msg.msg_iov->iov_len -= take;
            n -= (ssize_t)take;
            if (msg.msg_iov->iov_len == 0) {
                msg.msg_iov++;
                msg.msg_iovlen--;
            }
        }
    }
    return 0;
}

/* Receives exactly len bytes (a small fixed head) and the descriptors sent with them,
 * keeping up to max in fds (*nfds) and closing the rest. The byte count, 0 at EOF,
 * or -errno; -EPROTO when the head came short or its descriptors were cut. */
static ssize_t recv_with_fds(int sock, void *head, size_t len, int *fds, size_t max,
                             size_t *nfds)
{
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } control;
    struct iovec iov = {head, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                         .msg_controllen = sizeof(control.bytes)};
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    *nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < max)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (n > 0 && ((size_t)n != len || (msg.msg_flags & MSG_CTRUNC)))
        return -EPROTO;
    return n;
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Reads the 8-byte reply and the pidfd that may come with it. */
static int read_reply(int sock, int32_t reply[2], int *pidfd)
{
    *pidfd = -1;
    int rc = wait_readable(sock, REPLY_TIMEOUT_MS);
    if (rc < 0)
        return rc;
    size_t nfds;
    ssize_t n = recv_with_fds(sock, reply, 2 * sizeof(int32_t), pidfd, 1, &nfds);
    if (n <= 0)
        return n < 0 ? (int)n : -EPROTO;
    return 0;
}

static int spawn_locked(struct zygote *z, const struct sandbox_spec *spec,
                        struct sandbox_process *out)
{
    if (z->sock < 0)
        return -ECHILD;
    int fds[MAX_FDS];
    size_t nfds, wire_len, env_len = 0;
    struct zygote_wire *w = encode(spec, &wire_len, fds, &nfds);
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
        if (pidfd >= 0) {
            siginfo_t info;
            waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, &info, WEXITED);
            close(pidfd);
        }
        return reply[0] < 0 ? reply[0] : -EIO;
    }
    if (pidfd < 0)
        return -EPROTO;
    out->pid = reply[0];
    out->pidfd = pidfd;
    out->has_init = (spec->namespaces & CLONE_NEWPID) != 0;
    return 0;
}

int zygote_spawn(struct zygote *z, const struct sandbox_spec *spec, struct sandbox_process *out)
{
    pthread_mutex_lock(&z->lock);
    int rc = spawn_locked(z, spec, out);
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

int fnd_zygote_fork(const void *data, size_t len, const int *fds, size_t nfds, int *pidfd)
{
    *pidfd = -1;
    const struct zygote_wire *w = data;
    if (len < sizeof(*w) || w->magic != WIRE_MAGIC || w->nfds != nfds || nfds < 3 ||
        nfds > MAX_FDS || len != sizeof(*w) + ((size_t)w->allow_len + w->args_len) *
                                                  sizeof(struct sock_filter) ||
        memchr(w->cwd, '\0', sizeof(w->cwd)) == NULL)
        return -EINVAL;
    for (int i = 0; i < 2; i++)
        if (!slot_valid(w->cgroup_slot[i], nfds) || !slot_valid(w->home_slot[i], nfds))
            return -EINVAL;
    struct seccomp_policy policy;
    memset(&policy, 0, sizeof(policy));
    if (w->seccomp) {
        struct sock_filter *prog = (struct sock_filter *)(w + 1);
        policy.enabled = true;
        policy.allowlist.len = (unsigned short)w->allow_len;
        policy.allowlist.filter = prog;
        policy.args.len = (unsigned short)w->args_len;
        policy.args.filter = prog + w->allow_len;
    }
    struct sandbox_spec spec = {
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
        .seccomp = w->seccomp ? &policy : NULL,
        .namespaces = w->namespaces,
        .own_network = w->own_network != 0,
        .fsroot = w->has_fsroot ? &w->fsroot : NULL,
        .uid = w->uid,
        .gid = w->gid,
    };
    return (int)sandbox_fork(&spec, pidfd);
}

/* Receives one request: its 8-byte head with the descriptors, then wire and env into
 * buf. 0, -EPROTO for a request to refuse (its descriptors closed), or -1 when the
 * daemon is gone. */
static int read_request(int sock, char *buf, uint32_t head[2], int fds[MAX_FDS], size_t *nfds)
{
    ssize_t n = recv_with_fds(sock, head, 2 * sizeof(uint32_t), fds, MAX_FDS, nfds);
    if (n == 0 || (n < 0 && n != -EPROTO))
        return -1;
    if (n < 0 || (uint64_t)head[0] + head[1] > REQUEST_MAX) {
        close_all(fds, *nfds);
        return -EPROTO;
    }
    if (fnd_read_full(sock, buf, (size_t)head[0] + head[1]) < 0) {
        close_all(fds, *nfds);
        return -1;
    }
    return 0;
}

static int send_reply(int sock, int32_t result, int pidfd)
{
    int32_t reply[2] = {result, pidfd >= 0};
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec iov = {reply, sizeof(reply)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pidfd >= 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof(control.bytes);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(reply) ? 0 : -1;
}

int fnd_zygote_serve(int sock, char **env, size_t *env_len)
{
    /* The interpreter's signal dispositions as its start-up left them: the checklist
     * resets every signal in the child, and the worker gets these back. */
    static struct sigaction start_up[NSIG];
    for (int sig = 1; sig < NSIG; sig++)
        if (sigaction(sig, NULL, &start_up[sig]) < 0)
            start_up[sig].sa_handler = SIG_DFL;
    char *buf = malloc(REQUEST_MAX);
    if (buf == NULL || write(sock, "R", 1) != 1) {
        free(buf);
        return -1;
    }
    for (;;) {
        uint32_t head[2];
        int fds[MAX_FDS], pidfd = -1;
        size_t nfds;
        int rc = read_request(sock, buf, head, fds, &nfds);
        if (rc == -1) {
            free(buf);
            return -1; /* the daemon is gone */
        }
        if (rc == 0) {
            rc = fnd_zygote_fork(buf, head[0], fds, nfds, &pidfd);
            if (rc == 0) {
                /* The worker: its environment leaves buf, which the zygote reuses. */
                *env_len = head[1];
                *env = malloc(head[1] + 1);
                if (*env == NULL)
                    _exit(127);
                memcpy(*env, buf + head[0], head[1]);
                (*env)[head[1]] = '\0';
                free(buf);
                for (int sig = 1; sig < NSIG; sig++)
                    if (start_up[sig].sa_handler != SIG_DFL && sig != SIGKILL && sig != SIGSTOP)
                        sigaction(sig, &start_up[sig], NULL);
                return 0;
            }
            close_all(fds, nfds);
        }
        if (send_reply(sock, rc, pidfd) < 0) {
            if (pidfd >= 0)
                close(pidfd);
            free(buf);
            return -1;
        }
        if (pidfd >= 0)
            close(pidfd);
    }
}
