/*
 * Seeding: `fnd serve --seed DIR` deploys every DIR/<folder> holding an fnd.json
 * manifest, unless a function of that name already exists, so that a fresh daemon
 * has example functions ready to invoke. A manifest is the native API's deploy body
 * without "code" ({"name", "runtime", "handler", limits, "env"}); the folder itself is
 * the code. The daemon starts serving once every seed deploy has finished.
 */
#include "fnd/daemon.h"

#include "fnd/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_MAX (64 * 1024)

static void on_seeded(int status, struct function *fn, bool created, const char *err, void *data)
{
    struct daemon *d = data;
    if (status == 0)
        log_info("seed deployed", "fn=%s version=%llu", fn->name,
                 (unsigned long long)fn->current->number);
    else
        log_warn("seed deploy failed", "err=\"%s\" detail=\"%s\"", strerror(-status),
                 err ? err : "");
    daemon_seed_done(d);
}

/* Reads a whole small file into out. 0 or a negative errno. */
static int read_small_file(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char chunk[4096];
    ssize_t n;
    int rc = 0;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        if (buf_append(out, chunk, (size_t)n) < 0) {
            rc = -EFBIG;
            break;
        }
    }
    if (n < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Starts the deploy of one folder; returns true when a deploy was started. */
static bool seed_one(struct daemon *d, const char *folder, const char *entry)
{
    char *manifest_path = xasprintf("%s/fnd.json", folder);
    if (access(manifest_path, F_OK) != 0) {
        free(manifest_path);
        return false;
    }

    struct buf text;
    buf_init(&text, MANIFEST_MAX);
    int rc = read_small_file(manifest_path, &text);
    cJSON *json = rc == 0 ? cJSON_ParseWithLength(text.data, text.len) : NULL;
    buf_release(&text);
    if (!cJSON_IsObject(json)) {
        log_warn("seed manifest unreadable", "path=%s", manifest_path);
        cJSON_Delete(json);
        free(manifest_path);
        return false;
    }

    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(json, "name");
    const char *fname = cJSON_IsString(name) ? name->valuestring : entry;
    char err[256];
    bool started = false;
    if (!fn_name_valid(slice_from_cstr(fname))) {
        log_warn("seed manifest invalid", "path=%s err=\"bad function name\"", manifest_path);
    } else if (registry_lookup(d->registry, slice_from_cstr(fname)) != NULL) {
        log_debug("seed skipped", "fn=%s reason=exists", fname);
    } else if (fn_config_parse(&spec.config, json, NULL, err, sizeof(err)) < 0) {
        log_warn("seed manifest invalid", "path=%s err=\"%s\"", manifest_path, err);
    } else {
        snprintf(spec.name, sizeof(spec.name), "%s", fname);
        spec.code = DEPLOY_CODE_DIR;
        spec.dir = realpath(folder, NULL);
        if (spec.dir == NULL)
            spec.dir = xstrdup(folder);
        rc = registry_deploy(d->registry, &spec, on_seeded, d);
        if (rc < 0)
            log_warn("seed deploy failed", "fn=%s err=\"%s\"", fname, strerror(-rc));
        started = rc == 0;
    }
    cJSON_Delete(json);
    free(manifest_path);
    return started;
}

size_t seed_start(struct daemon *d, const char *dir)
{
    struct dirent **entries;
    int n = scandir(dir, &entries, NULL, alphasort);
    if (n < 0) {
        log_warn("seed folder unreadable", "path=%s err=\"%s\"", dir, strerror(errno));
        return 0;
    }
    size_t started = 0;
    for (int i = 0; i < n; i++) {
        const char *entry = entries[i]->d_name;
        if (entry[0] != '.') {
            char *folder = xasprintf("%s/%s", dir, entry);
            if (seed_one(d, folder, entry))
                started++;
            free(folder);
        }
        free(entries[i]);
    }
    free(entries);
    return started;
}
