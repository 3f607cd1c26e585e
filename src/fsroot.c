/*
 * A worker's filesystem (include/fnd/fsroot.h).
 *
 * In the child, in its own mount namespace, the steps are:
 *   1. make every mount private, so nothing propagates back to the host;
 *   2. mount a tmpfs on the plan's base folder: the new root;
 *   3. bind the plan's sources read-only into it, create the top-level links, mount a
 *      size-limited /tmp, a /dev with only the harmless devices, /proc, and write a
 *      synthetic /etc/passwd and /etc/group;
 *   4. pivot_root into it and detach the old root, which makes every host path
 *      unreachable;
 *   5. remount the root read-only and enter /var/task.
 * Binds are made read-only with a second, remounting mount(2) call, as the kernel
 * ignores MS_RDONLY on the first. Every step uses only system calls on buffers the
 * parent prepared or on the stack: the child may not allocate.
 */
#include "fnd/fsroot.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const host_links[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                         "/libx32"};
static const char *const etc_files[] = {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
                                        "/etc/ssl/certs", "/etc/localtime"};
static const char *const devices[] = {"null", "zero", "full", "random", "urandom"};

static const char passwd[] = "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                             "sbx_user1051:x:993:990::/tmp:/usr/sbin/nologin\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group[] = "root:x:0:\nsbx_user1051:x:990:\nnogroup:x:65534:\n";

/* --- the parent's side ------------------------------------------------------------- */

/* Copies text into the plan's strings: its offset, or -1 when they are full. */
static int add_string(struct fsroot_plan *p, const char *text, size_t len)
{
    if (len + 1 > sizeof(p->strings) - p->used)
        return -1;
    int at = p->used;
    memcpy(p->strings + at, text, len);
    p->strings[at + len] = '\0';
    p->used = (uint16_t)(p->used + len + 1);
    return at;
}

static const char *str(const struct fsroot_plan *p, uint16_t at)
{
    return p->strings + at;
}

static int add_bind(struct fsroot_plan *p, const char *src, const char *dst)
{
    struct stat st;
    if (stat(src, &st) < 0)
        return 0; /* absent on this host: nothing to bind */
    if (p->nbinds == FSROOT_MAX_BINDS)
        return -ENAMETOOLONG;
    int s = add_string(p, src, strlen(src)), d = add_string(p, dst, strlen(dst));
    if (s < 0 || d < 0)
        return -ENAMETOOLONG;
    p->binds[p->nbinds++] = (struct fsroot_bind){(uint16_t)s, (uint16_t)d, !S_ISDIR(st.st_mode)};
    return 0;
}

/* Where path is a symbolic link on the host, the same link in the new root. */
static int add_link(struct fsroot_plan *p, const char *path)
{
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0 || p->nlinks == FSROOT_MAX_LINKS)
        return 0;
    int at = add_string(p, path, strlen(path)), to = add_string(p, target, (size_t)n);
    if (at < 0 || to < 0)
        return -ENAMETOOLONG;
    p->links[p->nlinks++] = (struct fsroot_link){(uint16_t)at, (uint16_t)to};
    return 0;
}

int fsroot_plan_build(struct fsroot_plan *p, const char *base, const char *code_dir,
                      const char *runtime_dir, const char *extra_file, uint64_t tmp_bytes)
{
    memset(p, 0, offsetof(struct fsroot_plan, strings));
    if (strlen(base) >= PATH_MAX - 64)
        return -ENAMETOOLONG;
    int at = add_string(p, base, strlen(base));
    if (at < 0)
        return -ENAMETOOLONG;
    p->base = (uint16_t)at;
    p->tmp_bytes = tmp_bytes;
    int rc = add_bind(p, "/usr", "/usr");
    for (size_t i = 0; rc == 0 && i < sizeof(etc_files) / sizeof(etc_files[0]); i++) {
        struct stat st;
        if (lstat(etc_files[i], &st) == 0 && S_ISLNK(st.st_mode))
            rc = add_link(p, etc_files[i]);
        else
            rc = add_bind(p, etc_files[i], etc_files[i]);
    }
    if (rc == 0)
        rc = add_bind(p, runtime_dir, runtime_dir);
    if (rc == 0 && extra_file)
        rc = add_bind(p, extra_file, extra_file);
    if (rc == 0)
        rc = add_bind(p, code_dir, FSROOT_TASK_ROOT);
    /* /bin, /lib, ... are links into /usr on merged-/usr systems: copy the links; where
     * they are real folders, bind them. */
    for (size_t i = 0; rc == 0 && i < sizeof(host_links) / sizeof(host_links[0]); i++) {
        struct stat st;
        if (lstat(host_links[i], &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode))
            rc = add_link(p, host_links[i]);
        else if (S_ISDIR(st.st_mode))
            rc = add_bind(p, host_links[i], host_links[i]);
    }
    return rc;
}

static const struct fsroot_bind *code_bind(const struct fsroot_plan *p)
{
    for (size_t i = 0; i < p->nbinds; i++)
        if (strcmp(str(p, p->binds[i].dst), FSROOT_TASK_ROOT) == 0)
            return &p->binds[i];
    return NULL;
}

const char *fsroot_plan_code_dir(const struct fsroot_plan *p)
{
    const struct fsroot_bind *b = code_bind(p);
    return b ? str(p, b->src) : NULL;
}

void fsroot_plan_drop_code(struct fsroot_plan *p)
{
    const struct fsroot_bind *b = code_bind(p);
    if (b == NULL)
        return;
    size_t at = (size_t)(b - p->binds);
    memmove(&p->binds[at], &p->binds[at + 1], (p->nbinds - at - 1) * sizeof(*b));
    p->nbinds--; /* its strings stay, unused */
}

bool fsroot_plan_same_root(const struct fsroot_plan *a, const struct fsroot_plan *b)
{
    if (a->tmp_bytes != b->tmp_bytes || a->nlinks != b->nlinks ||
        strcmp(str(a, a->base), str(b, b->base)) != 0)
        return false;
    for (size_t i = 0; i < a->nlinks; i++)
        if (strcmp(str(a, a->links[i].path), str(b, b->links[i].path)) != 0 ||
            strcmp(str(a, a->links[i].target), str(b, b->links[i].target)) != 0)
            return false;
    const struct fsroot_bind *x = code_bind(a), *y = code_bind(b); /* skipped */
    size_t i = 0, j = 0;
    for (;;) {
        if (i < a->nbinds && &a->binds[i] == x)
            i++;
        if (j < b->nbinds && &b->binds[j] == y)
            j++;
        if (i == a->nbinds || j == b->nbinds)
            return i == a->nbinds && j == b->nbinds;
        const struct fsroot_bind *p = &a->binds[i++], *q = &b->binds[j++];
        if (p->is_file != q->is_file || strcmp(str(a, p->src), str(b, q->src)) != 0 ||
            strcmp(str(a, p->dst), str(b, q->dst)) != 0)
            return false;
    }
}

/* --- the child's side -------------------------------------------------------------- */

/* root + path into out, or ENAMETOOLONG. */
static int join(char *out, size_t size, const char *root, const char *path)
{
    size_t a = strlen(root), b = strlen(path);
    if (a + b + 1 > size)
        return ENAMETOOLONG;
    memcpy(out, root, a); /* NOLINT(bugprone-not-null-terminated-result): the next copy ends it */
    memcpy(out + a, path, b + 1);
    return 0;
}

/* mkdir -p, without allocating. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755) < 0 && errno != EEXIST ? errno : 0;
        *p = '/';
        if (rc)
            return rc;
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? errno : 0;
}

static int make_parent(char *path)
{
    char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return 0;
    *slash = '\0';
    int rc = make_dirs(path);
    *slash = '/';
    return rc;
}

static int bind_ro(const char *src, char *dst, bool is_file)
{
    int rc = make_parent(dst);
    if (rc)
        return rc;
    if (is_file) {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno;
        close(fd);
    } else if ((rc = make_dirs(dst))) {
        return rc;
    }
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return errno;
    /* The first bind ignores MS_RDONLY; the remount applies it. Inside a user
     * namespace the source's noexec and atime flags are locked, and a remount that
     * would clear them is refused: carry them over. */
    struct statvfs sv;
    if (statvfs(dst, &sv) < 0)
        return errno;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    if (mount(NULL, dst, NULL, flags, NULL) < 0)
        return errno;
    return 0;
}

static int write_whole(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : EIO;
    close(fd);
    return rc;
}

static int build_dev(const char *root)
{
    char path[PATH_MAX], src[64];
    int rc = join(path, sizeof(path), root, "/dev");
    if (rc || (rc = make_dirs(path)))
        return rc;
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") < 0)
        return errno;
    for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
        snprintf(src, sizeof(src), "/dev/%s", devices[i]);
        if ((rc = join(path, sizeof(path), root, src)))
            return rc;
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return errno;
        close(fd);
        if (mount(src, path, NULL, MS_BIND, NULL) < 0)
            return errno;
    }
    static const char *const fd_links[][2] = {{"/dev/fd", "/proc/self/fd"},
                                              {"/dev/stdin", "/proc/self/fd/0"},
                                              {"/dev/stdout", "/proc/self/fd/1"},
                                              {"/dev/stderr", "/proc/self/fd/2"}};
    for (size_t i = 0; i < 4; i++) {
        if ((rc = join(path, sizeof(path), root, fd_links[i][0])))
            return rc;
        if (symlink(fd_links[i][1], path) < 0)
            return errno;
    }
    if ((rc = join(path, sizeof(path), root, "/dev/shm")) || (rc = make_dirs(path)))
        return rc;
    return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64m,mode=1777")
               < 0
               ? errno
               : 0;
}

int fsroot_enter(const struct fsroot_plan *plan)
{
    const char *root = str(plan, plan->base);
    char path[PATH_MAX];
    int rc;
    /* The tree is built world-readable whatever umask the process arrived with (a
     * fork server's is already the worker's 077): the worker's uid must traverse it. */
    umask(022);
    /* 1. Nothing done here may be seen by the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return errno;
    /* 2. The new root. */
    if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
        return errno;
    /* 3. Its content. /tmp comes first: a bind below it (the runtime of a daemon
     * installed under /tmp) must land on top of the tmpfs, not be hidden by it. */
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%llu,mode=1777", (unsigned long long)plan->tmp_bytes);
    if ((rc = join(path, sizeof(path), root, "/tmp")) || (rc = make_dirs(path)))
        return rc;
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
        return errno;
    /* The code's mount point, also in a root built before the code is known (a
     * blank's, sandbox.c), where the code is attached later. */
    if ((rc = join(path, sizeof(path), root, FSROOT_TASK_ROOT)) || (rc = make_dirs(path)))
        return rc;
    for (size_t i = 0; i < plan->nbinds; i++) {
        const struct fsroot_bind *b = &plan->binds[i];
        if ((rc = join(path, sizeof(path), root, str(plan, b->dst))) ||
            (rc = bind_ro(str(plan, b->src), path, b->is_file)))
            return rc;
    }
    for (size_t i = 0; i < plan->nlinks; i++) {
        const struct fsroot_link *l = &plan->links[i];
        if ((rc = join(path, sizeof(path), root, str(plan, l->path))) || (rc = make_parent(path)))
            return rc;
        if (symlink(str(plan, l->target), path) < 0)
            return errno;
    }
    if ((rc = build_dev(root)))
        return rc;
    if ((rc = join(path, sizeof(path), root, "/proc")) || (rc = make_dirs(path)))
        return rc;
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return errno;
    if ((rc = join(path, sizeof(path), root, "/etc")) || (rc = make_dirs(path)))
        return rc;
    if ((rc = join(path, sizeof(path), root, "/etc/passwd")) || (rc = write_whole(path, passwd)))
        return rc;
    if ((rc = join(path, sizeof(path), root, "/etc/group")) || (rc = write_whole(path, group)))
        return rc;
    /* 4. Pivot: stack the new root over the old one, then detach the old. */
    if (chdir(root) < 0)
        return errno;
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return errno;
    if (umount2(".", MNT_DETACH) < 0)
        return errno;
    /* 5. Read-only from here; only /tmp (and /dev/shm) stay writable. */
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return errno;
    return chdir(FSROOT_TASK_ROOT) < 0 ? errno : 0;
}
