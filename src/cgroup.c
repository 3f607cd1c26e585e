/*
 * Per-worker control groups (include/fnd/cgroup.h).
 *
 * Layout: <memory hierarchy>/fnd-<daemon pid>/w<tag> and the same under the pids
 * hierarchy. The parent creates the groups and writes the limits before the clone; the
 * worker is then born inside them, or moved in right after (sandbox.c says how, and
 * why through the tasks files, which move one thread, and not cgroup.procs). The memory
 * limit is set on memory.limit_in_bytes first and then on memory.memsw.limit_in_bytes
 * (the kernel requires that order), so swap cannot extend a function's memory.
 *
 * NEEDSWORK: cgroup v2 (a delegated unified hierarchy) is not used yet.
 */
#include "fnd/cgroup.h"

#include "fnd/common.h"
#include "fnd/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define V1_BASE "/sys/fs/cgroup"

static int write_file(const char *dir, const char *file, const char *value)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, value, strlen(value));
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int read_file(const char *dir, const char *file, char *out, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    out[n] = '\0';
    return 0;
}

/* Removes the groups of daemons that died without cleaning up (SIGKILL): fnd-<pid>
 * folders whose pid is gone, with their (empty) worker groups. */
static void remove_stale(const char *hierarchy)
{
    DIR *d = opendir(hierarchy);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "fnd-", 4) != 0)
            continue;
        char *end;
        long owner = strtol(de->d_name + 4, &end, 10);
        if (*end != '\0' || owner <= 0 || owner > INT_MAX)
            continue; /* not a folder this daemon names */
        pid_t pid = (pid_t)owner;
        if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char *dir = xasprintf("%s/%s", hierarchy, de->d_name);
        DIR *sub = opendir(dir);
        struct dirent *w;
        while (sub && (w = readdir(sub)) != NULL) {
            if (w->d_name[0] == 'w') {
                struct cgroup cg = {xasprintf("%s/%s", dir, w->d_name), NULL, -1};
                cg.pids_dir = xstrdup(cg.memory_dir); /* kill via whichever we have */
                cgroup_kill_all(&cg);
                rmdir(cg.memory_dir);
                free(cg.memory_dir);
                free(cg.pids_dir);
            }
        }
        if (sub)
            closedir(sub);
        rmdir(dir);
        free(dir);
    }
    if (d)
        closedir(d);
}

/* Opens the tasks files of the groups the daemon itself is in (as /proc/self/cgroup
 * names them), through which a spawning thread goes back home. Without them workers
 * are moved in by pid, which is slower (sandbox.c). */
static void open_home(struct cgroup_root *root)
{
    static const char *const names[] = {"memory", "pids"};
    char text[4096];
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
    if (fd >= 0)
        close(fd);
    text[n > 0 ? n : 0] = '\0';
    for (size_t i = 0; i < 2; i++) {
        /* lines are "<id>:<controllers>:<path>"; these two are alone on theirs in v1 */
        char key[16];
        snprintf(key, sizeof(key), ":%s:", names[i]);
        const char *at = strstr(text, key);
        if (at == NULL)
            break;
        at += strlen(key);
        int len = (int)strcspn(at, "\n");
        char path[512];
        snprintf(path, sizeof(path), V1_BASE "/%s%.*s/tasks", names[i], len, at);
        root->home_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
    }
    if (root->home_fds[0] < 0 || root->home_fds[1] < 0) {
        for (size_t i = 0; i < 2; i++)
            if (root->home_fds[i] >= 0)
                close(root->home_fds[i]);
        root->home_fds[0] = root->home_fds[1] = -1;
        log_warn("cgroup home not found", "detail=\"workers are moved into their groups by pid, "
                 "one RCU grace period per start\"");
    }
}

void cgroup_setup(struct cgroup_root *root)
{
    remove_stale(V1_BASE "/memory");
    remove_stale(V1_BASE "/pids");
    memset(root, 0, sizeof(*root));
    root->home_fds[0] = root->home_fds[1] = -1;
    root->memory_dir = xasprintf(V1_BASE "/memory/fnd-%d", (int)getpid());
    root->pids_dir = xasprintf(V1_BASE "/pids/fnd-%d", (int)getpid());
    const char *dirs[] = {root->memory_dir, root->pids_dir};
    for (size_t i = 0; i < 2; i++) {
        if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST) {
            snprintf(root->reason, sizeof(root->reason), "mkdir %s: %s", dirs[i],
                     strerror(errno));
            if (i == 1)
                rmdir(root->memory_dir);
            return;
        }
    }
    /* Memory limits are only meaningful with swap accounted too. */
    char probe[64];
    if (read_file(root->memory_dir, "memory.memsw.limit_in_bytes", probe, sizeof(probe)) < 0) {
        snprintf(root->reason, sizeof(root->reason), "no swap accounting (memory.memsw)");
        rmdir(root->memory_dir);
        rmdir(root->pids_dir);
        return;
    }
    root->enabled = true;
    open_home(root);
}

void cgroup_teardown(struct cgroup_root *root)
{
    if (root->enabled) {
        rmdir(root->memory_dir);
        rmdir(root->pids_dir);
    }
    for (size_t i = 0; i < 2; i++)
        if (root->home_fds[i] >= 0)
            close(root->home_fds[i]);
    root->home_fds[0] = root->home_fds[1] = -1;
    free(root->memory_dir);
    free(root->pids_dir);
    root->memory_dir = root->pids_dir = NULL;
}

int cgroup_create(const struct cgroup_root *root, struct cgroup *cg, uint64_t tag,
                  uint64_t memory_bytes, unsigned pids_max)
{
    memset(cg, 0, sizeof(*cg));
    cg->peak_fd = -1;
    if (!root->enabled)
        return 0;
    cg->memory_dir = xasprintf("%s/w%llu", root->memory_dir, (unsigned long long)tag);
    cg->pids_dir = xasprintf("%s/w%llu", root->pids_dir, (unsigned long long)tag);
    char value[32];
    int rc = 0;
    if (mkdir(cg->memory_dir, 0700) < 0 || mkdir(cg->pids_dir, 0700) < 0)
        rc = -errno;
    snprintf(value, sizeof(value), "%llu", (unsigned long long)memory_bytes);
    if (rc == 0)
        rc = write_file(cg->memory_dir, "memory.limit_in_bytes", value);
    if (rc == 0)
        rc = write_file(cg->memory_dir, "memory.memsw.limit_in_bytes", value);
    snprintf(value, sizeof(value), "%u", pids_max);
    if (rc == 0)
        rc = write_file(cg->pids_dir, "pids.max", value);
    if (rc == 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s/memory.max_usage_in_bytes", cg->memory_dir);
        cg->peak_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (cg->peak_fd < 0)
            rc = -errno;
    }
    if (rc < 0) {
        log_error("cgroup_create failed", "path=%s err=\"%s\"", cg->memory_dir, strerror(-rc));
        cgroup_destroy(cg);
    }
    return rc;
}

int cgroup_open_join(const struct cgroup *cg, int fds[2])
{
    fds[0] = fds[1] = -1;
    if (cg->memory_dir == NULL)
        return 0;
    const char *dirs[] = {cg->memory_dir, cg->pids_dir};
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/tasks", dirs[i]);
        fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int rc = -errno;
            if (i == 1)
                close(fds[0]);
            fds[0] = fds[1] = -1;
            return rc;
        }
    }
    return 0;
}

bool cgroup_oom_killed(const struct cgroup *cg)
{
    char text[512];
    if (cg->memory_dir == NULL ||
        read_file(cg->memory_dir, "memory.oom_control", text, sizeof(text)) < 0)
        return false;
    const char *p = strstr(text, "oom_kill ");
    return p && strtol(p + 9, NULL, 10) > 0;
}

/* One pread of a descriptor kept open: this runs once per invocation. */
uint64_t cgroup_max_memory(const struct cgroup *cg)
{
    char text[64];
    if (cg->memory_dir == NULL || cg->peak_fd < 0)
        return 0;
    ssize_t n = pread(cg->peak_fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    return strtoull(text, NULL, 10);
}

void cgroup_kill_all(const struct cgroup *cg)
{
    if (cg->pids_dir == NULL)
        return;
    char text[4096];
    if (read_file(cg->pids_dir, "cgroup.procs", text, sizeof(text)) < 0)
        return;
    /* A process may fork while we read; the pids limit bounds how many there are, and
     * cgroup_destroy kills again until the group is empty. */
    /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Branch): read_file terminates text */
    for (char *p = text, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        /* Never the daemon: a thread of its own is in the group while it spawns the
         * worker (sandbox.c), and cgroup.procs lists a process for any of its threads. */
        if (pid > 0 && pid != getpid())
            kill((pid_t)pid, SIGKILL);
    }
}

int cgroup_destroy(struct cgroup *cg)
{
    if (cg->memory_dir == NULL)
        return 0;
    if (cg->peak_fd >= 0)
        close(cg->peak_fd);
    cg->peak_fd = -1;
    int rc = 0;
    char *dirs[] = {cg->memory_dir, cg->pids_dir};
    for (size_t i = 0; i < 2; i++) {
        for (int attempt = 0; attempt < 50; attempt++) {
            if (rmdir(dirs[i]) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY) {
                rc = -errno;
                break;
            }
            cgroup_kill_all(cg);
            usleep(1000); /* a killed process leaves its group within microseconds */
            if (attempt == 49)
                rc = -EBUSY;
        }
    }
    if (rc < 0)
        log_warn("cgroup removal failed", "path=%s err=\"%s\"", cg->memory_dir, strerror(-rc));
    free(cg->memory_dir);
    free(cg->pids_dir);
    cg->memory_dir = cg->pids_dir = NULL;
    return rc;
}
