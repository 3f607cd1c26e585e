/*
 * Per-worker control groups (include/fnd/cgroup.h).
 *
 * Layout: <memory hierarchy>/fnd-<daemon pid>/w<n> and the same under the pids
 * hierarchy. The daemon creates the groups and writes the limits before the clone,
 * most often well before, for the stock (include/fnd/cgroup.h says why); the worker is
 * then born inside them, or moved in right after (sandbox.c says how, and why through
 * the tasks files, which move one thread, and not cgroup.procs). The memory limit is
 * set on memory.limit_in_bytes and on memory.memsw.limit_in_bytes, so swap cannot
 * extend a function's memory.
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

/* How long after a start the stock is made again. The threadpool's quarter of a
 * millisecond then runs after the start's answer went out, and not beside it: the
 * client woken by the answer would wait for the CPU it takes. */
#define RESTOCK_DELAY_MS 20

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

/* Moves cg's memory limit from `from` bytes to `to`, the swap-inclusive one too. The
 * kernel keeps memory.limit_in_bytes at or below memory.memsw.limit_in_bytes at every
 * step, so a limit that grows is raised on memsw first and one that shrinks on memory
 * first. A fresh group is unlimited: from is UINT64_MAX. */
static int set_memory_limit(const struct cgroup *cg, uint64_t from, uint64_t to)
{
    static const char *const files[] = {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"};
    char value[24];
    snprintf(value, sizeof(value), "%llu", (unsigned long long)to);
    bool growing = to > from;
    int rc = write_file(cg->memory_dir, files[growing ? 1 : 0], value);
    if (rc == 0)
        rc = write_file(cg->memory_dir, files[growing ? 0 : 1], value);
    return rc;
}

static void release_ready(struct cgroup_ready *r)
{
    for (size_t i = 0; i < 2; i++) {
        if (r->join_fds[i] >= 0)
            close(r->join_fds[i]);
        r->join_fds[i] = -1;
    }
    cgroup_destroy(&r->cg);
}

/* Makes group w<name> with its limits and opens what a spawn needs. Runs on the loop
 * or the threadpool: it reads only what cgroup_setup wrote. 0 or a negative errno;
 * out holds nothing on failure. */
static int make_group(const struct cgroup_root *root, uint64_t name, uint64_t memory_bytes,
                      struct cgroup_ready *out)
{
    struct cgroup *cg = &out->cg;
    out->join_fds[0] = out->join_fds[1] = -1;
    out->memory_bytes = memory_bytes;
    cg->memory_dir = xasprintf("%s/w%llu", root->memory_dir, (unsigned long long)name);
    cg->pids_dir = xasprintf("%s/w%llu", root->pids_dir, (unsigned long long)name);
    cg->peak_fd = -1;
    int rc = 0;
    if (mkdir(cg->memory_dir, 0700) < 0 || mkdir(cg->pids_dir, 0700) < 0)
        rc = -errno;
    if (rc == 0)
        rc = set_memory_limit(cg, UINT64_MAX, memory_bytes);
    if (rc == 0) {
        char value[24];
        snprintf(value, sizeof(value), "%u", root->pids_max);
        rc = write_file(cg->pids_dir, "pids.max", value);
    }
    char path[512];
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/memory.max_usage_in_bytes", cg->memory_dir);
        cg->peak_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (cg->peak_fd < 0)
            rc = -errno;
    }
    const char *dirs[] = {cg->memory_dir, cg->pids_dir};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/tasks", dirs[i]);
        out->join_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (out->join_fds[i] < 0)
            rc = -errno;
    }
    if (rc < 0) {
        log_error("cgroup creation failed", "path=%s err=\"%s\"", cg->memory_dir, strerror(-rc));
        release_ready(out);
    }
    return rc;
}

void cgroup_setup(struct cgroup_root *root, uv_loop_t *loop, unsigned pids_max,
                  uint64_t memory_bytes)
{
    remove_stale(V1_BASE "/memory");
    remove_stale(V1_BASE "/pids");
    memset(root, 0, sizeof(*root));
    root->home_fds[0] = root->home_fds[1] = -1;
    root->pids_max = pids_max;
    root->stock_memory = memory_bytes;
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
    uv_timer_init(loop, &root->restock_timer);
    uv_unref((uv_handle_t *)&root->restock_timer); /* it never keeps the daemon up */
    /* The first starts find their groups ready too. */
    while (root->stocked < CGROUP_STOCK &&
           make_group(root, root->next_name, memory_bytes, &root->stock[root->stocked]) == 0) {
        root->next_name++;
        root->stocked++;
    }
}

void cgroup_teardown(struct cgroup_root *root)
{
    while (root->stocked > 0)
        release_ready(&root->stock[--root->stocked]);
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

int cgroup_take(struct cgroup_root *root, struct cgroup *cg, int join_fds[2],
                uint64_t memory_bytes)
{
    memset(cg, 0, sizeof(*cg));
    cg->peak_fd = -1;
    join_fds[0] = join_fds[1] = -1;
    if (!root->enabled)
        return 0;
    root->stock_memory = memory_bytes;
    struct cgroup_ready r;
    int rc = -ENOENT;
    if (root->stocked > 0) {
        r = root->stock[--root->stocked];
        rc = r.memory_bytes == memory_bytes ? 0 : set_memory_limit(&r.cg, r.memory_bytes,
                                                                   memory_bytes);
        if (rc < 0) {
            log_warn("stocked cgroup unusable", "path=%s err=\"%s\"", r.cg.memory_dir,
                     strerror(-rc));
            release_ready(&r);
        }
    }
    if (rc < 0)
        rc = make_group(root, root->next_name++, memory_bytes, &r);
    if (rc < 0)
        return rc;
    *cg = r.cg;
    join_fds[0] = r.join_fds[0];
    join_fds[1] = r.join_fds[1];
    return 0;
}

static void restock_done(uv_work_t *req, int status);

static void restock_work(uv_work_t *req)
{
    struct cgroup_root *root = container_of(req, struct cgroup_root, restock_req);
    root->making_rc = make_group(root, root->making_name, root->making.memory_bytes,
                                 &root->making);
}

static void restock_one(struct cgroup_root *root)
{
    if (root->closed || root->restocking || root->stocked == CGROUP_STOCK)
        return;
    root->restocking = true;
    root->making_name = root->next_name++;
    root->making.memory_bytes = root->stock_memory;
    uv_queue_work(root->restock_timer.loop, &root->restock_req, restock_work, restock_done);
}

static void restock_done(uv_work_t *req, int status)
{
    struct cgroup_root *root = container_of(req, struct cgroup_root, restock_req);
    root->restocking = false;
    if (status < 0 || root->making_rc < 0)
        return; /* make_group said why; the next start makes its own */
    root->stock[root->stocked++] = root->making;
    restock_one(root);
}

static void on_restock_timer(uv_timer_t *t)
{
    restock_one(container_of(t, struct cgroup_root, restock_timer));
}

void cgroup_restock(struct cgroup_root *root)
{
    if (root->enabled && !root->closed && root->stocked < CGROUP_STOCK &&
        !uv_is_active((uv_handle_t *)&root->restock_timer))
        uv_timer_start(&root->restock_timer, on_restock_timer, RESTOCK_DELAY_MS, 0);
}

void cgroup_close(struct cgroup_root *root)
{
    if (!root->enabled || root->closed)
        return;
    root->closed = true;
    uv_close((uv_handle_t *)&root->restock_timer, NULL);
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
