/*
 * The daemon's side of the fnd-bundle helper (include/fnd/unpacker.h).
 *
 * Each call starts the helper with posix_spawn: glibc's clone(CLONE_VM|CLONE_VFORK)
 * copies no page of the daemon, which may be large and multi-threaded, and the
 * child's steps before exec are async-signal-safe, so it is safe from a threadpool
 * thread. The child gets an empty environment, default signal dispositions and an
 * empty mask (so SIGXCPU and SIGXFSZ kill it even if the daemon ignores them), and
 * only three descriptors: fd 0, 1 and 2 are memfds (or /dev/null) — the zip in, the
 * zip out, the error line. Memfds rather than pipes: the helper can run to its end
 * without anyone reading, so there is no deadlock and no pipe-buffer limit, and
 * this thread simply waits for its own pid.
 *
 * Nothing the helper hands back is trusted: its zip is bounded by bundle_zip_max()
 * before it is copied, its error text by the caller's buffer. A refused, failed or
 * killed unpack leaves no destination behind: the helper removes what it made, and
 * this side removes it again, for a helper that was killed half-way.
 */
#include "fnd/unpacker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERR_FORWARD_MAX (64 * 1024) /* the helper's stderr past its error line, at most */

int unpacker_init(struct unpacker *u, const char *helper, const struct bundle_limits *limits,
                  char *err, size_t errsize)
{
    u->helper = helper ? xstrdup(helper) : exe_sibling_path("fnd-bundle");
    u->limits = *limits;
    if (access(u->helper, X_OK) < 0) {
        int rc = -errno;
        snprintf(err, errsize, "%s: %s", u->helper, strerror(errno));
        unpacker_release(u);
        return rc;
    }
    return 0;
}

void unpacker_release(struct unpacker *u)
{
    free(u->helper);
    u->helper = NULL;
}

/* A memfd numbered above 2, so that placing it at 0, 1 or 2 in the child cannot
 * clobber another one (a CLI started with a standard descriptor closed gets those). */
static int open_memfd(const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fd > 2)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    return high < 0 ? -e : high;
}

/* Copies what the helper wrote to fd 2 after its error line to ours: a sanitizer's
 * report from a test build, which would otherwise be lost. */
static void forward_rest(int err_fd, off_t from)
{
    char chunk[4096];
    ssize_t n;
    while (from < ERR_FORWARD_MAX && (n = pread(err_fd, chunk, sizeof(chunk), from)) > 0) {
        if (write_all(2, chunk, (size_t)n) < 0)
            break;
        from += n;
    }
}

/* The call's outcome from the helper's wait status and its error line. */
static int outcome(int status, int err_fd, char *err, size_t errsize)
{
    char text[1024];
    ssize_t n = pread(err_fd, text, sizeof(text) - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        forward_rest(err_fd, nl - text + 1);
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(err, errsize, "fnd-bundle killed by SIG%s (%s)", abbrev ? abbrev : "?",
                 strsignal(sig));
        /* Its CPU time or file size limit: the bundle asked for too much. */
        return sig == SIGXCPU || sig == SIGXFSZ ? -EFBIG : -EIO;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
    if (code == 0)
        return 0;
    if (text[0])
        snprintf(err, errsize, "%s", text);
    else
        snprintf(err, errsize, "fnd-bundle exited with status %d", code);
    return -code;
}

/* Runs `fnd-bundle task path max_bytes max_files` with in_fd and out_fd as its fd 0
 * and 1, and waits for it. */
static int run_helper(const struct unpacker *u, const char *task, const char *path, int in_fd,
                      int out_fd, char *err, size_t errsize)
{
    char max_bytes[24], max_files[24];
    snprintf(max_bytes, sizeof(max_bytes), "%" PRIu64, u->limits.max_bytes);
    snprintf(max_files, sizeof(max_files), "%" PRIu64, u->limits.max_files);
    char *const argv[] = {"fnd-bundle", (char *)task, (char *)path, max_bytes, max_files, NULL};
    char *const envp[] = {NULL}; /* nothing of the daemon's: FND_AUTH_TOKEN may be there */
    int err_fd = open_memfd("fnd-bundle-err");
    if (err_fd < 0) {
        snprintf(err, errsize, "memfd_create: %s", strerror(-err_fd));
        return err_fd;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3); /* the helper closes them too */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, u->helper, &actions, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        snprintf(err, errsize, "posix_spawn %s: %s", u->helper, strerror(rc));
        close(err_fd);
        return -rc;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            snprintf(err, errsize, "waitpid fnd-bundle: %s", strerror(errno));
            close(err_fd);
            return rc;
        }
    }
    rc = outcome(status, err_fd, err, errsize);
    close(err_fd);
    return rc;
}

int unpacker_unpack(const struct unpacker *u, const void *zip, size_t len, const char *dest,
                    char *err, size_t errsize)
{
    struct stat st;
    if (lstat(dest, &st) == 0) { /* not ours to remove when the unpack fails */
        snprintf(err, errsize, "%.200s: %s", dest, strerror(EEXIST));
        return -EEXIST;
    }
    int in = open_memfd("fnd-bundle-zip");
    int rc = in < 0 ? in : 0;
    int out = rc == 0 ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
    if (rc == 0 && out < 0)
        rc = -errno;
    if (rc == 0)
        rc = write_all(in, zip, len);
    if (rc == 0 && lseek(in, 0, SEEK_SET) < 0) /* the child shares the file offset */
        rc = -errno;
    if (rc < 0)
        snprintf(err, errsize, "passing the zip to fnd-bundle: %s", strerror(-rc));
    else
        rc = run_helper(u, "unpack", dest, in, out, err, errsize);
    if (rc < 0)
        remove_tree(dest);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Appends the helper's zip, in the memfd out_fd, to out. */
static int take_zip(const struct unpacker *u, int out_fd, struct buf *out, char *err,
                    size_t errsize)
{
    struct stat st;
    if (fstat(out_fd, &st) < 0) {
        int rc = -errno;
        snprintf(err, errsize, "fstat: %s", strerror(errno));
        return rc;
    }
    if (st.st_size <= 0) {
        snprintf(err, errsize, "fnd-bundle wrote no zip");
        return -EIO;
    }
    if ((uint64_t)st.st_size > bundle_zip_max(&u->limits)) {
        snprintf(err, errsize, "bundle: the zip is too large");
        return -EFBIG;
    }
    void *zip = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, out_fd, 0);
    if (zip == MAP_FAILED) {
        int rc = -errno;
        snprintf(err, errsize, "mmap: %s", strerror(errno));
        return rc;
    }
    int rc = buf_append(out, zip, (size_t)st.st_size) < 0 ? -EFBIG : 0;
    if (rc < 0)
        snprintf(err, errsize, "bundle: the zip is too large");
    munmap(zip, (size_t)st.st_size);
    return rc;
}

int unpacker_zip(const struct unpacker *u, const char *src, struct buf *out, char *err,
                 size_t errsize)
{
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = in < 0 ? -errno : 0;
    int zip = rc == 0 ? open_memfd("fnd-bundle-out") : -1;
    if (rc == 0 && zip < 0)
        rc = zip;
    if (rc < 0)
        snprintf(err, errsize, "opening fnd-bundle's descriptors: %s", strerror(-rc));
    else
        rc = run_helper(u, "zip", src, in, zip, err, errsize);
    if (rc == 0)
        rc = take_zip(u, zip, out, err, errsize);
    if (in >= 0)
        close(in);
    if (zip >= 0)
        close(zip);
    return rc;
}
