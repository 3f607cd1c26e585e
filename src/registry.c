/*
 * The registry (include/fnd/registry.h has the on-disk layout and the guarantees).
 *
 * Functions live in an array sorted by name (binary search; listing is a walk).
 * Deploys run on the threadpool: hash, unpack beside the old code (in the fnd-bundle
 * helper, through unpacker.h), fsync, rename into code/<sha256>, then write
 * function.json through a rename — the commit point. Back on the loop the new version
 * becomes current.
 *
 * Code folders are shared, refcounted objects: versions with the same code share one.
 * When the last version using a folder goes, the folder goes too — except while a
 * deploy of that function is in flight, since that deploy may be about to reuse the
 * very folder; such folders wait in a graveyard, and the sweep after the deploy either
 * revives them or removes them. Removal runs on the loop; it is rare and bounded by the
 * bundle size limit.
 */
#include "fnd/registry.h"

#include "fnd/codec.h"
#include "fnd/list.h"
#include "fnd/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUNCTION_JSON_MAX (64 * 1024)

struct code_dir {
    struct list_node link; /* registry->code_dirs (live) or registry->graveyard */
    struct registry *reg;
    unsigned refs;
    char *path;
    char name[FN_NAME_MAX + 1];
};

struct registry {
    uv_loop_t *loop;
    char *functions_dir;
    const struct unpacker *unpacker; /* the daemon's; outlives the registry */
    struct registry_hooks hooks;
    struct function **fns; /* sorted by name */
    size_t nfns, capfns;
    struct list_node code_dirs;
    struct list_node graveyard;
    size_t live_code_dirs;
    char (*creating)[FN_NAME_MAX + 1]; /* names whose first deploy is in flight */
    size_t ncreating, capcreating;
    bool closed;
};

/* --- helpers ----------------------------------------------------------------------- */

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int write_file_durably(const char *path, const char *text, size_t len)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, text, len);
    if (rc == 0 && fdatasync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return fsync_path(dir);
}

static size_t find_index(const struct registry *reg, struct slice name, bool *found)
{
    size_t lo = 0, hi = reg->nfns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *n = reg->fns[mid]->name;
        size_t nlen = strlen(n);
        int c = memcmp(n, name.ptr, FND_MIN(nlen, name.len));
        if (c == 0)
            c = nlen < name.len ? -1 : nlen > name.len ? 1 : 0;
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void insert_function(struct registry *reg, struct function *fn)
{
    bool found;
    size_t at = find_index(reg, slice_from_cstr(fn->name), &found);
    if (reg->nfns == reg->capfns) {
        reg->capfns = reg->capfns ? reg->capfns * 2 : 16;
        reg->fns = xrealloc(reg->fns, reg->capfns * sizeof(struct function *));
    }
    memmove(&reg->fns[at + 1], &reg->fns[at], (reg->nfns - at) * sizeof(struct function *));
    reg->fns[at] = fn;
    reg->nfns++;
}

static size_t creating_index(const struct registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->ncreating; i++)
        if (strcmp(reg->creating[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static bool deploying(const struct registry *reg, const char *name)
{
    bool found;
    size_t at = find_index(reg, slice_from_cstr(name), &found);
    return (found && reg->fns[at]->deploying) || creating_index(reg, name) != SIZE_MAX;
}

/* --- code folders ------------------------------------------------------------------ */

static void registry_free(struct registry *reg)
{
    free(reg->creating);
    free(reg->fns);
    free(reg->functions_dir);
    free(reg);
}

static void code_dir_destroy(struct code_dir *cd)
{
    struct registry *reg = cd->reg;
    list_remove(&cd->link);
    int rc = remove_tree(cd->path);
    if (rc < 0)
        log_warn("code removal failed", "path=%s err=\"%s\"", cd->path, strerror(-rc));
    /* Remove code/ and the function's folder when they became empty (a deleted
     * function); rmdir fails harmlessly otherwise. */
    char *slash = strrchr(cd->path, '/');
    if (slash) {
        *slash = '\0';
        rmdir(cd->path);
        slash = strrchr(cd->path, '/');
        if (slash) {
            *slash = '\0';
            rmdir(cd->path);
        }
    }
    free(cd->path);
    free(cd);
    if (--reg->live_code_dirs == 0 && reg->closed)
        registry_free(reg);
}

static struct code_dir *code_dir_get(struct registry *reg, const char *name, const char *path)
{
    struct list_node *lists[] = {&reg->code_dirs, &reg->graveyard};
    for (size_t i = 0; i < 2; i++) {
        for (struct list_node *n = lists[i]->next; n != lists[i]; n = n->next) {
            struct code_dir *cd = container_of(n, struct code_dir, link);
            if (strcmp(cd->path, path) == 0) {
                if (i == 1) { /* revived */
                    list_remove(&cd->link);
                    list_push_back(&reg->code_dirs, &cd->link);
                }
                cd->refs++;
                return cd;
            }
        }
    }
    struct code_dir *cd = xcalloc(1, sizeof(*cd));
    cd->reg = reg;
    cd->refs = 1;
    cd->path = xstrdup(path);
    snprintf(cd->name, sizeof(cd->name), "%s", name);
    list_push_back(&reg->code_dirs, &cd->link);
    reg->live_code_dirs++;
    return cd;
}

static void code_dir_unref(struct code_dir *cd)
{
    if (--cd->refs > 0)
        return;
    list_remove(&cd->link);
    if (!cd->reg->closed && deploying(cd->reg, cd->name)) {
        list_push_back(&cd->reg->graveyard, &cd->link); /* the deploy may reuse it */
        return;
    }
    list_push_back(&cd->reg->code_dirs, &cd->link);
    if (cd->reg->closed) {
        /* After close the files stay: the next start-up cleans what no one uses. */
        struct registry *reg = cd->reg;
        list_remove(&cd->link);
        free(cd->path);
        free(cd);
        if (--reg->live_code_dirs == 0)
            registry_free(reg);
        return;
    }
    code_dir_destroy(cd);
}

static void sweep_graveyard(struct registry *reg, const char *name)
{
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &reg->graveyard)
    {
        struct code_dir *cd = container_of(n, struct code_dir, link);
        if (strcmp(cd->name, name) == 0)
            code_dir_destroy(cd);
    }
}

/* --- versions ---------------------------------------------------------------------- */

void fn_version_ref(struct fn_version *v)
{
    v->refs++;
}

void fn_version_unref(struct fn_version *v)
{
    if (--v->refs > 0)
        return;
    code_dir_unref(v->code);
    fn_config_release(&v->config);
    free(v->name);
    free(v);
}

cJSON *fn_version_to_json(const struct fn_version *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddNumberToObject(o, "version", (double)v->number);
    cJSON_AddStringToObject(o, "code_sha256", v->code_sha256);
    cJSON_AddNumberToObject(o, "code_size", (double)v->code_size);
    char when[40];
    time_t secs = (time_t)(v->modified_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03dZ", (int)(v->modified_ms % 1000));
    cJSON_AddStringToObject(o, "modified", when);
    if (v->published)
        cJSON_AddNumberToObject(o, "published", (double)v->published);
    fn_config_to_json(&v->config, o);
    return o;
}

static struct fn_version *version_new(struct registry *reg, const char *name, uint64_t number,
                                      const struct fn_config *config, const char *sha,
                                      uint64_t size, int64_t modified_ms)
{
    struct fn_version *v = xcalloc(1, sizeof(*v));
    v->refs = 1;
    v->name = xstrdup(name);
    v->number = number;
    fn_config_copy(&v->config, config);
    snprintf(v->code_sha256, sizeof(v->code_sha256), "%s", sha);
    v->code_size = size;
    v->modified_ms = modified_ms;
    char *path = xasprintf("%s/%s/code/%s", reg->functions_dir, name, sha);
    v->code = code_dir_get(reg, name, path);
    free(path);
    v->code_dir = v->code->path;
    return v;
}

static char *function_json_text(const struct fn_version *v, int64_t created_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddNumberToObject(o, "version", (double)v->number);
    cJSON_AddNumberToObject(o, "created_ms", (double)created_ms);
    cJSON_AddNumberToObject(o, "modified_ms", (double)v->modified_ms);
    cJSON_AddStringToObject(o, "code_sha256", v->code_sha256);
    cJSON_AddNumberToObject(o, "code_size", (double)v->code_size);
    if (v->published)
        cJSON_AddNumberToObject(o, "published", (double)v->published);
    cJSON *config = cJSON_AddObjectToObject(o, "config");
    fn_config_to_json(&v->config, config);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

/* --- loading ----------------------------------------------------------------------- */

static bool sha_in_use(const struct function *fn, const char *sha)
{
    if (strcmp(fn->current->code_sha256, sha) == 0)
        return true;
    for (size_t i = 0; i < fn->npublished; i++)
        if (strcmp(fn->published[i]->code_sha256, sha) == 0)
            return true;
    return false;
}

/* Removes what an interrupted deploy or delete left in a function's folder: tmp.*
 * folders and code/ folders that none of fn's versions uses. */
static void clean_function_dir(const char *dir, const struct function *fn)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "tmp.", 4) == 0 || strcmp(de->d_name, "function.json.tmp") == 0) {
            char *p = xasprintf("%s/%s", dir, de->d_name);
            remove_tree(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
    char *code = xasprintf("%s/code", dir);
    d = opendir(code);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.' && !sha_in_use(fn, de->d_name)) {
            char *p = xasprintf("%s/%s", code, de->d_name);
            remove_tree(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
    free(code);
}

/* Reads one version record (function.json or versions/<n>.json) into *out; created_ms
 * may be NULL. 0, -ENOENT when the file does not exist, -EINVAL (err names the file)
 * when it is not a valid record, another negative errno. */
static int read_record(struct registry *reg, const char *name, const char *path,
                       struct fn_version **out, int64_t *created_ms, char *err, size_t errsize)
{
    struct buf text;
    buf_init(&text, FUNCTION_JSON_MAX);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        if (buf_append(&text, chunk, (size_t)n) < 0)
            break;
    close(fd);

    cJSON *o = cJSON_ParseWithLength(text.data ? text.data : "", text.len);
    buf_release(&text);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "code_sha256");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "code_size");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(o, "created_ms");
    const cJSON *modified = cJSON_GetObjectItemCaseSensitive(o, "modified_ms");
    const cJSON *published = cJSON_GetObjectItemCaseSensitive(o, "published");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(o, "config");
    struct fn_config c;
    char cerr[256];
    if (!cJSON_IsNumber(version) || !cJSON_IsString(sha) || strlen(sha->valuestring) != 64 ||
        !cJSON_IsNumber(size) || !cJSON_IsNumber(created) || !cJSON_IsNumber(modified) ||
        (published && !cJSON_IsNumber(published)) ||
        fn_config_parse(&c, config, NULL, cerr, sizeof(cerr)) < 0) {
        snprintf(err, errsize, "%s: not a valid function record", path);
        cJSON_Delete(o);
        return -EINVAL;
    }
    struct fn_version *v = version_new(reg, name, (uint64_t)version->valuedouble, &c,
                                       sha->valuestring, (uint64_t)size->valuedouble,
                                       (int64_t)modified->valuedouble);
    v->published = published ? (uint64_t)published->valuedouble : 0;
    if (created_ms)
        *created_ms = (int64_t)created->valuedouble;
    fn_config_release(&c);
    cJSON_Delete(o);
    struct stat st;
    if (stat(v->code_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s: its code folder is missing", path);
        fn_version_unref(v);
        return -EINVAL;
    }
    *out = v; // NOLINT(clang-analyzer-core.NullDereference): out is never NULL
    return 0;
}

static int version_cmp(const void *a, const void *b)
{
    uint64_t x = (*(struct fn_version *const *)a)->published;
    uint64_t y = (*(struct fn_version *const *)b)->published;
    return x < y ? -1 : x > y;
}

/* Loads <dir>/versions/<n>.json into fn->published, in ascending order. */
static int load_published(struct registry *reg, struct function *fn, const char *dir, char *err,
                          size_t errsize)
{
    char *vdir = xasprintf("%s/versions", dir);
    DIR *d = opendir(vdir);
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && d && (de = readdir(d)) != NULL) {
        char *end;
        unsigned long long n = strtoull(de->d_name, &end, 10);
        if (n == 0 || strcmp(end, ".json") != 0)
            continue; /* ".", "..", and "<n>.json.tmp" of an interrupted publish */
        char *path = xasprintf("%s/%s", vdir, de->d_name);
        struct fn_version *v = NULL;
        rc = read_record(reg, fn->name, path, &v, NULL, err, errsize);
        free(path);
        if (rc < 0)
            break;
        if (v->published != n) { // NOLINT(clang-analyzer-core.NullDereference): set when rc is 0
            snprintf(err, errsize, "%s/%s: its number does not match its name", vdir, de->d_name);
            fn_version_unref(v);
            rc = -EINVAL;
            break;
        }
        fn->published = xrealloc(fn->published, (fn->npublished + 1) * sizeof(*fn->published));
        fn->published[fn->npublished++] = v;
    }
    if (d)
        closedir(d);
    free(vdir);
    if (fn->npublished > 1)
        qsort(fn->published, fn->npublished, sizeof(*fn->published), version_cmp);
    return rc;
}

static void function_free(struct function *fn)
{
    for (size_t i = 0; i < fn->npublished; i++)
        fn_version_unref(fn->published[i]);
    free(fn->published);
    if (fn->current)
        fn_version_unref(fn->current);
    free(fn);
}

static int load_function(struct registry *reg, const char *name, char *err, size_t errsize)
{
    char *dir = xasprintf("%s/%s", reg->functions_dir, name);
    char *path = xasprintf("%s/function.json", dir);
    struct function *fn = xcalloc(1, sizeof(*fn));
    snprintf(fn->name, sizeof(fn->name), "%s", name);
    int rc = read_record(reg, name, path, &fn->current, &fn->created_ms, err, errsize);
    if (rc == -ENOENT) {
        /* No commit point: an interrupted create or a finished delete. */
        remove_tree(dir);
        rc = 0;
        goto drop;
    }
    if (rc == 0)
        rc = load_published(reg, fn, dir, err, errsize);
    if (rc < 0)
        goto drop;
    clean_function_dir(dir, fn);
    insert_function(reg, fn);
    goto out;
drop:
    function_free(fn);
out:
    free(path);
    free(dir);
    return rc;
}

int registry_open(struct registry **out, uv_loop_t *loop, const char *data_dir,
                  const struct unpacker *unpacker, const struct registry_hooks *hooks,
                  char *err, size_t errsize)
{
    struct registry *reg = xcalloc(1, sizeof(*reg));
    reg->loop = loop;
    reg->unpacker = unpacker;
    reg->hooks = *hooks;
    list_init(&reg->code_dirs);
    list_init(&reg->graveyard);
    reg->functions_dir = xasprintf("%s/functions", data_dir);
    if (mkdir(reg->functions_dir, 0700) < 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(err, errsize, "mkdir %s: %s", reg->functions_dir, strerror(errno));
        registry_free(reg);
        return rc;
    }
    DIR *d = opendir(reg->functions_dir);
    if (d == NULL) {
        int rc = -errno;
        snprintf(err, errsize, "opendir %s: %s", reg->functions_dir, strerror(errno));
        registry_free(reg);
        return rc;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (!fn_name_valid(slice_from_cstr(de->d_name))) {
            log_warn("stray entry in the data folder", "name=%s", de->d_name);
            continue;
        }
        rc = load_function(reg, de->d_name, err, errsize);
    }
    closedir(d);
    if (rc < 0) {
        reg->closed = true;
        registry_close(reg);
        return rc;
    }
    *out = reg;
    return 0;
}

void registry_close(struct registry *reg)
{
    reg->closed = true;
    /* Hold the registry while dropping versions: the last code folder's unref would
     * otherwise free it in the middle of this loop. */
    reg->live_code_dirs++;
    for (size_t i = 0; i < reg->nfns; i++) {
        function_free(reg->fns[i]);
    }
    reg->nfns = 0;
    if (--reg->live_code_dirs == 0)
        registry_free(reg);
}

struct function *registry_lookup(struct registry *reg, struct slice name)
{
    bool found;
    size_t at = find_index(reg, name, &found);
    return found ? reg->fns[at] : NULL;
}

size_t registry_count(const struct registry *reg)
{
    return reg->nfns;
}

void registry_foreach(struct registry *reg, void (*fn)(struct function *, void *), void *data)
{
    for (size_t i = 0; i < reg->nfns; i++)
        fn(reg->fns[i], data);
}

/* --- deploy ------------------------------------------------------------------------ */

struct deploy_job {
    uv_work_t work;
    struct registry *reg;
    struct deploy_spec spec;
    registry_deploy_cb *cb;
    void *data;
    /* filled on the loop before, read on the threadpool */
    char keep_sha[65];
    uint64_t keep_size;
    uint64_t number;
    int64_t created_ms;
    /* filled on the threadpool */
    int status;
    char err[512];
    char sha[65];
    uint64_t code_size;
    int64_t modified_ms;
};

static void on_deploy_work(uv_work_t *w)
{
    struct deploy_job *job = container_of(w, struct deploy_job, work);
    struct registry *reg = job->reg;
    struct deploy_spec *spec = &job->spec;
    char *fdir = xasprintf("%s/%s", reg->functions_dir, spec->name);
    char *cdir = xasprintf("%s/code", fdir);
    char *code = NULL;
    int rc = 0;

    if ((mkdir(fdir, 0700) < 0 && errno != EEXIST) || (mkdir(cdir, 0755) < 0 && errno != EEXIST)) {
        rc = -errno;
        snprintf(job->err, sizeof(job->err), "mkdir %s: %s", fdir, strerror(errno));
        goto out;
    }
    if (spec->code == DEPLOY_CODE_DIR) {
        buf_init(&spec->zip, 0);
        rc = unpacker_zip(reg->unpacker, spec->dir, &spec->zip, job->err, sizeof(job->err));
        if (rc < 0)
            goto out;
    }
    if (spec->code == DEPLOY_CODE_KEEP) {
        memcpy(job->sha, job->keep_sha, sizeof(job->sha));
        job->code_size = job->keep_size;
    } else {
        unsigned char digest[32];
        sha256(spec->zip.data ? spec->zip.data : "", spec->zip.len, digest);
        hex_encode(job->sha, digest, 32);
        job->code_size = spec->zip.len;
        code = xasprintf("%s/%s", cdir, job->sha);
        struct stat st;
        if (stat(code, &st) < 0) {
            /* Unpack beside the old code; the rename publishes it whole. */
            unsigned char rnd[8];
            char rhex[17];
            if (getrandom(rnd, sizeof(rnd), 0) < 0)
                memset(rnd, 0, sizeof(rnd));
            hex_encode(rhex, rnd, sizeof(rnd));
            char *tmp = xasprintf("%s/tmp.%s", fdir, rhex);
            rc = unpacker_unpack(reg->unpacker, spec->zip.data, spec->zip.len, tmp, job->err,
                                 sizeof(job->err));
            if (rc == 0 && rename(tmp, code) < 0) {
                rc = errno == EEXIST || errno == ENOTEMPTY ? 0 : -errno;
                if (rc < 0)
                    snprintf(job->err, sizeof(job->err), "rename %s: %s", tmp, strerror(-rc));
                remove_tree(tmp);
            }
            free(tmp);
            if (rc == 0)
                rc = fsync_path(cdir);
            if (rc < 0)
                goto out;
        }
    }
    /* The commit point: function.json names the new version. */
    job->modified_ms = clock_wall_ms();
    struct fn_version tmpv = {.name = spec->name, .number = job->number, .config = spec->config,
                              .code_size = job->code_size, .modified_ms = job->modified_ms};
    memcpy(tmpv.code_sha256, job->sha, sizeof(tmpv.code_sha256));
    char *text = function_json_text(&tmpv, job->created_ms);
    char *path = xasprintf("%s/function.json", fdir);
    rc = write_file_durably(path, text, strlen(text));
    if (rc < 0)
        snprintf(job->err, sizeof(job->err), "write %s: %s", path, strerror(-rc));
    free(path);
    cJSON_free(text);
out:
    job->status = rc;
    free(code);
    free(cdir);
    free(fdir);
}

static void on_deploy_done(uv_work_t *w, int status)
{
    struct deploy_job *job = container_of(w, struct deploy_job, work);
    struct registry *reg = job->reg;
    struct deploy_spec *spec = &job->spec;
    if (status < 0 && job->status == 0)
        job->status = status;
    size_t ci = creating_index(reg, spec->name);
    if (ci != SIZE_MAX)
        memmove(&reg->creating[ci], &reg->creating[ci + 1],
                (--reg->ncreating - ci) * sizeof(*reg->creating));
    struct function *fn = registry_lookup(reg, slice_from_cstr(spec->name));
    bool created = false;
    if (job->status == 0) {
        if (fn == NULL) {
            fn = xcalloc(1, sizeof(*fn));
            snprintf(fn->name, sizeof(fn->name), "%s", spec->name);
            fn->created_ms = job->created_ms;
            insert_function(reg, fn);
            created = true;
        }
        struct fn_version *old = fn->current;
        fn->current = version_new(reg, spec->name, job->number, &spec->config, job->sha,
                                  job->code_size, job->modified_ms);
        fn->deploying = false;
        if (reg->hooks.on_publish)
            reg->hooks.on_publish(fn, old, reg->hooks.data);
        if (old)
            fn_version_unref(old);
    } else if (fn) {
        fn->deploying = false;
    }
    sweep_graveyard(reg, spec->name);
    if (job->status != 0 && fn == NULL) {
        /* A failed create leaves no function folder behind. */
        char *fdir = xasprintf("%s/%s", reg->functions_dir, spec->name);
        char *fjson = xasprintf("%s/function.json", fdir);
        if (access(fjson, F_OK) != 0)
            remove_tree(fdir);
        free(fjson);
        free(fdir);
    }
    job->cb(job->status, job->status == 0 ? fn : NULL, created, job->err, job->data);
    fn_config_release(&spec->config);
    buf_release(&spec->zip);
    free(spec->dir);
    free(job);
}

int deploy_spec_parse_code(struct deploy_spec *spec, const cJSON *code, size_t max_zip,
                           char *err, size_t errsize)
{
    if (!cJSON_IsObject(code) || cJSON_GetArraySize(code) != 1) {
        snprintf(err, errsize, "code: must be {\"zip\": \"<base64>\"} or {\"dir\": \"/path\"}");
        return -EINVAL;
    }
    const cJSON *zip = cJSON_GetObjectItemCaseSensitive(code, "zip");
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(code, "dir");
    if (cJSON_IsString(zip)) {
        spec->code = DEPLOY_CODE_ZIP;
        buf_init(&spec->zip, max_zip);
        if (base64_decode(&spec->zip, zip->valuestring, strlen(zip->valuestring)) < 0) {
            buf_release(&spec->zip);
            snprintf(err, errsize, "code.zip: must be base64 of a zip archive");
            return -EINVAL;
        }
        return 0;
    }
    if (cJSON_IsString(dir) && dir->valuestring[0] == '/') {
        spec->code = DEPLOY_CODE_DIR;
        spec->dir = xstrdup(dir->valuestring);
        return 0;
    }
    snprintf(err, errsize, "code: must be {\"zip\": \"<base64>\"} or {\"dir\": \"/absolute/path\"}");
    return -EINVAL;
}

int registry_deploy(struct registry *reg, struct deploy_spec *spec, registry_deploy_cb *cb,
                    void *data)
{
    struct function *fn = registry_lookup(reg, slice_from_cstr(spec->name));
    int rc = 0;
    if (deploying(reg, spec->name))
        rc = -EBUSY;
    else if (fn == NULL && spec->code == DEPLOY_CODE_KEEP)
        rc = -ENOENT;
    if (rc < 0) {
        fn_config_release(&spec->config);
        buf_release(&spec->zip);
        free(spec->dir);
        return rc;
    }
    struct deploy_job *job = xcalloc(1, sizeof(*job));
    job->reg = reg;
    job->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    job->cb = cb;
    job->data = data;
    if (fn) {
        fn->deploying = true;
        job->number = fn->current->number + 1;
        job->created_ms = fn->created_ms;
        memcpy(job->keep_sha, fn->current->code_sha256, sizeof(job->keep_sha));
        job->keep_size = fn->current->code_size;
    } else {
        job->number = 1;
        job->created_ms = clock_wall_ms();
        if (reg->ncreating == reg->capcreating) {
            reg->capcreating = reg->capcreating ? reg->capcreating * 2 : 4;
            reg->creating = xrealloc(reg->creating, reg->capcreating * sizeof(*reg->creating));
        }
        memcpy(reg->creating[reg->ncreating++], job->spec.name, FN_NAME_MAX + 1);
    }
    uv_queue_work(reg->loop, &job->work, on_deploy_work, on_deploy_done);
    return 0;
}

int registry_delete(struct registry *reg, struct function *fn)
{
    if (fn->deploying)
        return -EBUSY;
    char *fdir = xasprintf("%s/%s", reg->functions_dir, fn->name);
    char *path = xasprintf("%s/function.json", fdir);
    int rc = unlink(path) < 0 ? -errno : 0;
    if (rc == 0)
        rc = fsync_path(fdir);
    free(path);
    if (rc == 0) {
        /* After the commit point: start-up would remove what is left anyway. */
        char *vdir = xasprintf("%s/versions", fdir);
        remove_tree(vdir);
        free(vdir);
    }
    free(fdir);
    if (rc < 0)
        return rc;
    if (reg->hooks.on_remove)
        reg->hooks.on_remove(fn, reg->hooks.data);
    bool found;
    size_t at = find_index(reg, slice_from_cstr(fn->name), &found);
    if (found) {
        memmove(&reg->fns[at], &reg->fns[at + 1], (reg->nfns - at - 1) * sizeof(struct function *));
        reg->nfns--;
    }
    function_free(fn);
    return 0;
}

/* --- published versions ------------------------------------------------------------ */

static bool same_snapshot(const struct fn_version *a, const struct fn_version *b)
{
    if (strcmp(a->code_sha256, b->code_sha256) != 0)
        return false;
    cJSON *ja = cJSON_CreateObject(), *jb = cJSON_CreateObject();
    fn_config_to_json(&a->config, ja);
    fn_config_to_json(&b->config, jb);
    bool same = cJSON_Compare(ja, jb, true);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return same;
}

int registry_publish(struct registry *reg, struct function *fn, struct fn_version **out,
                     bool *created)
{
    struct fn_version *cur = fn->current;
    struct fn_version *last = fn->npublished ? fn->published[fn->npublished - 1] : NULL;
    if (last && same_snapshot(last, cur)) {
        *out = last;
        *created = false;
        return 0;
    }
    struct fn_version *v = version_new(reg, fn->name, cur->number, &cur->config,
                                       cur->code_sha256, cur->code_size, clock_wall_ms());
    v->published = last ? last->published + 1 : 1;
    char *vdir = xasprintf("%s/%s/versions", reg->functions_dir, fn->name);
    char *path = xasprintf("%s/%llu.json", vdir, (unsigned long long)v->published);
    char *text = function_json_text(v, fn->created_ms);
    int rc = mkdir(vdir, 0700) < 0 && errno != EEXIST ? -errno : 0;
    if (rc == 0)
        rc = write_file_durably(path, text, strlen(text));
    cJSON_free(text);
    free(path);
    free(vdir);
    if (rc < 0) {
        fn_version_unref(v);
        return rc;
    }
    fn->published = xrealloc(fn->published, (fn->npublished + 1) * sizeof(*fn->published));
    fn->published[fn->npublished++] = v;
    *out = v;
    *created = true;
    return 0;
}

struct fn_version *registry_published(const struct function *fn, uint64_t n)
{
    /* Ascending and dense except for none: a binary search would do, but functions
     * publish a handful of versions. */
    for (size_t i = 0; i < fn->npublished; i++)
        if (fn->published[i]->published == n)
            return fn->published[i];
    return NULL;
}
