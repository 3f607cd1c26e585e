/*
 * `fnd dev DIR --name N --runtime R --handler H`: a function whose code follows a
 * folder (docs/cli.md).
 *
 * The folder is watched with one uv_fs_event per directory (inotify does not recurse;
 * the set is rebuilt after every change, so new folders are seen). Changes are
 * debounced for DEV_DEBOUNCE_MS; then the folder is zipped, and if its bytes differ
 * from what was last deployed the new code is checked before it is published:
 *
 *   1. it is deployed as a scratch function (N-dev-check) with min_warm 1, so the
 *      daemon starts one worker, which loads the handler and nothing more;
 *   2. a worker that becomes idle means the code loads: the same zip is deployed as
 *      N, and new invocations run it (ones already running finish on the old version,
 *      which the registry keeps alive); then the scratch function is deleted;
 *   3. a worker that fails to start means a syntax or import error: one invocation of
 *      the scratch function returns the runtime's init error (the handler is never
 *      run, since init failed), which is printed, and N keeps its last good version.
 *
 * The check happens client-side with the ordinary API, so it works with any daemon
 * and needs no "validated deploy" in the registry; its price is one cold start per
 * change (measured in docs/cli.md).
 */
#include "fnd/cli.h"

#include "fnd/codec.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <uv.h>

#define DEV_DEBOUNCE_MS 50
#define DEV_MAX_DIRS 2000
#define DEV_CHECK_WAIT_MS 20000
#define DEV_CHECK_SUFFIX "-dev-check"

struct watch {
    uv_fs_event_t ev;
    struct dev *dev;
};

struct dev {
    struct cli *c;
    struct cli_deploy d;
    uv_loop_t loop;
    uv_timer_t debounce;
    uv_signal_t sigint, sigterm;
    struct watch *watches[DEV_MAX_DIRS];
    size_t nwatches;
    char last_sha[65];
    char check_name[80];
    double serving;       /* the version of N that is live; 0: none yet */
    int exit_code;
};

/* --- requests ---------------------------------------------------------------------- */

static void delete_function(struct dev *v, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    struct http_client_response resp;
    if (cli_request(v->c, "DELETE", path, NULL, 0, NULL, 0, &resp, 30000) == 0)
        http_client_response_release(&resp);
}

/* The scratch function's worker counts; false when they could not be read. */
static bool check_state(struct dev *v, double *starting, double *idle, double *busy)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", v->check_name);
    struct http_client_response resp;
    if (cli_request(v->c, "GET", path, NULL, 0, NULL, 0, &resp, 30000) != 0)
        return false;
    cJSON *o = resp.status == 200 ? cJSON_ParseWithLength(resp.body.data, resp.body.len) : NULL;
    http_client_response_release(&resp);
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(o, "state"), "instances");
    bool ok = cJSON_IsObject(inst);
    if (ok) {
        *starting = cJSON_GetObjectItemCaseSensitive(inst, "starting")->valuedouble;
        *idle = cJSON_GetObjectItemCaseSensitive(inst, "idle")->valuedouble;
        *busy = cJSON_GetObjectItemCaseSensitive(inst, "busy")->valuedouble;
    }
    cJSON_Delete(o);
    return ok;
}

/* Prints why the scratch function cannot start: its init error, from one invocation
 * that cannot reach the handler. */
static void report_init_error(struct dev *v)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s/invoke", v->check_name);
    struct http_client_response resp;
    if (cli_request(v->c, "POST", path, NULL, 0, "{}", 2, &resp, 60000) != 0)
        return;
    cJSON *o = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "errorType");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "errorMessage");
    printf("error: the new code does not load: %s: %s\n",
           cJSON_IsString(type) ? type->valuestring : "Runtime.InitError",
           cJSON_IsString(msg) ? msg->valuestring : "the worker did not start");
    cJSON_Delete(o);
    http_client_response_release(&resp);
}

/* Deploys zip as the scratch function and waits for its one worker. 1: the code
 * loads; 0: it does not (reported); or a negative exit code. */
static int check(struct dev *v, const struct buf *zip)
{
    struct http_client_response resp;
    int rc = cli_put_function(v->c, &v->d, v->check_name, zip,
                              "{\"min_warm\": 1, \"max_instances\": 1}", &resp);
    if (rc)
        return -rc;
    http_client_response_release(&resp);
    uint64_t deadline = uv_hrtime() / 1000000 + DEV_CHECK_WAIT_MS;
    int verdict = -1;
    while (verdict < 0 && uv_hrtime() / 1000000 < deadline) {
        double starting = 0, idle = 0, busy = 0;
        if (!check_state(v, &starting, &idle, &busy))
            return -CLI_EXIT_SERVER;
        if (idle + busy > 0)
            verdict = 1;
        else if (starting == 0)
            verdict = 0;
        else
            uv_sleep(10);
    }
    if (verdict < 0) {
        printf("error: the new code did not finish loading in %d s\n", DEV_CHECK_WAIT_MS / 1000);
        verdict = 0;
    } else if (verdict == 0) {
        report_init_error(v);
    }
    return verdict;
}

/* One round: zip, compare, check, publish. */
static void redeploy(struct dev *v)
{
    uint64_t t0 = uv_hrtime();
    struct buf zip;
    buf_init(&zip, 0);
    if (cli_pack(v->c, v->d.source, &zip) != 0)
        goto out;
    unsigned char digest[32];
    char sha[65];
    sha256(zip.data ? zip.data : "", zip.len, digest);
    hex_encode(sha, digest, sizeof(digest));
    if (strcmp(sha, v->last_sha) == 0)
        goto out; /* touched, not changed */
    int ok = check(v, &zip);
    if (ok == 0)
        delete_function(v, v->check_name);
    if (ok < 0) {
        v->exit_code = -ok;
        goto out;
    }
    snprintf(v->last_sha, sizeof(v->last_sha), "%s", sha);
    if (ok == 0) {
        if (v->serving)
            printf("still serving version %.0f of %s\n", v->serving, v->d.name);
        else
            printf("%s is not deployed until its code loads\n", v->d.name);
        goto out;
    }
    struct http_client_response resp;
    int rc = cli_put_function(v->c, &v->d, v->d.name, &zip, NULL, &resp);
    delete_function(v, v->check_name); /* after publishing: one round trip less to wait */
    if (rc != 0)
        goto out;
    cJSON *o = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    v->serving = cJSON_IsNumber(ver) ? ver->valuedouble : v->serving;
    printf("deployed %s version %.0f in %.0f ms\n", v->d.name, v->serving,
           (double)(uv_hrtime() - t0) / 1e6);
    cJSON_Delete(o);
    http_client_response_release(&resp);
out:
    buf_release(&zip);
    fflush(stdout);
}

/* --- watching ---------------------------------------------------------------------- */

static void on_watch_closed(uv_handle_t *h)
{
    free(container_of((uv_fs_event_t *)h, struct watch, ev));
}

static void unwatch_all(struct dev *v)
{
    for (size_t i = 0; i < v->nwatches; i++)
        uv_close((uv_handle_t *)&v->watches[i]->ev, on_watch_closed);
    v->nwatches = 0;
}

static bool ignored(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || (n && name[n - 1] == '~') || strcmp(name, "__pycache__") == 0 ||
           strcmp(name, "4913") == 0; /* vim's probe file */
}

static void on_debounced(uv_timer_t *t);

static void on_change(uv_fs_event_t *ev, const char *filename, int events, int status)
{
    (void)events;
    struct watch *w = container_of(ev, struct watch, ev);
    if (status < 0 || (filename && ignored(filename)))
        return;
    uv_timer_start(&w->dev->debounce, on_debounced, DEV_DEBOUNCE_MS, 0);
}

static void watch_tree(struct dev *v, const char *dir)
{
    if (v->nwatches >= DEV_MAX_DIRS)
        return;
    struct watch *w = xcalloc(1, sizeof(*w));
    w->dev = v;
    uv_fs_event_init(&v->loop, &w->ev);
    if (uv_fs_event_start(&w->ev, on_change, dir, 0) < 0) {
        uv_close((uv_handle_t *)&w->ev, on_watch_closed);
        return;
    }
    v->watches[v->nwatches++] = w;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (ignored(de->d_name) || strcmp(de->d_name, "node_modules") == 0)
            continue;
        char *sub = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(v, sub);
        free(sub);
    }
    if (d)
        closedir(d);
}

static void on_debounced(uv_timer_t *t)
{
    struct dev *v = container_of(t, struct dev, debounce);
    unwatch_all(v);
    watch_tree(v, v->d.source);
    redeploy(v);
    if (v->exit_code)
        uv_stop(&v->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    struct dev *v = s->data;
    uv_stop(&v->loop);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

int cli_dev(struct cli *c, int argc, char **argv)
{
    struct dev *v = xcalloc(1, sizeof(*v));
    v->c = c;
    int rc = CLI_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        int r = cli_deploy_flag(&v->d, argc, argv, &i);
        if (r < 0)
            goto out;
        if (r == 0 && argv[i][0] != '-' && !v->d.source) {
            v->d.source = argv[i];
        } else if (r == 0) {
            fprintf(stderr, "fnd dev: unexpected argument '%s' (see fnd help)\n", argv[i]);
            goto out;
        }
    }
    if (!cli_deploy_complete(c, &v->d))
        goto out;
    struct stat st;
    if (stat(v->d.source, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "fnd dev: %s is not a folder\n", v->d.source);
        goto out;
    }
    snprintf(v->check_name, sizeof(v->check_name), "%.*s" DEV_CHECK_SUFFIX,
             (int)(64 - strlen(DEV_CHECK_SUFFIX)), v->d.name);

    uv_loop_init(&v->loop);
    uv_timer_init(&v->loop, &v->debounce);
    uv_signal_init(&v->loop, &v->sigint);
    uv_signal_init(&v->loop, &v->sigterm);
    v->sigint.data = v->sigterm.data = v;
    uv_signal_start(&v->sigint, on_signal, SIGINT);
    uv_signal_start(&v->sigterm, on_signal, SIGTERM);
    watch_tree(v, v->d.source);
    printf("watching %s (%zu folders) for %s; Ctrl-C stops\n", v->d.source, v->nwatches,
           v->d.name);
    fflush(stdout);
    redeploy(v);
    if (v->exit_code == 0)
        uv_run(&v->loop, UV_RUN_DEFAULT);
    rc = v->exit_code;
    unwatch_all(v);
    uv_close((uv_handle_t *)&v->debounce, on_closed);
    uv_close((uv_handle_t *)&v->sigint, on_closed);
    uv_close((uv_handle_t *)&v->sigterm, on_closed);
    uv_run(&v->loop, UV_RUN_DEFAULT);
    uv_loop_close(&v->loop);
out:
    free(v);
    return rc;
}
