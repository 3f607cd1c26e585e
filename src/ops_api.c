/*
 * Operability endpoints (include/fnd/ops_api.h): reading and following function
 * output logs. Answers are text/plain: an invocation's log is the text Lambda shows
 * (START, the function's lines, END, REPORT); a function's log is its records, one a
 * line, `time \t request-id \t stream \t text`, so a client can both read and filter.
 *
 * Metrics are mostly counted where things happen; the gauges (workers, queues,
 * connections, the process's own use) are read fresh at each scrape.
 *
 * Following streams records as the worker module writes them, until the client leaves
 * or the function is deleted (then the answer ends properly and the connection goes
 * on to its next request). A peer that reads too slowly loses records (and is told how
 * many); it never makes the daemon buffer more than HTTP_STREAM_MAX_QUEUED for it.
 */
#include "fnd/ops_api.h"

#include "fnd/daemon.h"
#include "fnd/log.h"
#include "fnd/metrics.h"

#include "fnd/urlcode.h"

#include <ctype.h>
#include <dirent.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const struct http_header text_type = {SLICE_LIT("Content-Type"),
                                             SLICE_LIT("text/plain; charset=utf-8")};

void ops_on_invocation_logs(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct slice id = m->params[0];
    char cid[INVOCATION_ID_LEN + 1];
    bool ok = id.len == INVOCATION_ID_LEN;
    for (size_t i = 0; ok && i < id.len; i++)
        ok = id.ptr[i] == '-' || isxdigit((unsigned char)id.ptr[i]);
    if (!ok) {
        http_respond_error(req, FND_E_BAD_REQUEST, "invocation ids are UUIDs (X-Request-Id)");
        return;
    }
    memcpy(cid, id.ptr, id.len);
    cid[id.len] = '\0';
    struct buf out;
    buf_init(&out, 0);
    if (funclog_read_invocation(d->funclog, cid, &out, OPS_LOGS_MAX) < 0) {
        buf_release(&out);
        http_respond_error(req, FND_E_NOT_FOUND, "no logs of invocation %s are retained", cid);
        return;
    }
    http_respond_buf(req, 200, &text_type, 1, &out);
}

/* --- following --------------------------------------------------------------------- */

struct log_follow {
    struct funclog_follower follower;
    struct http_request *req;
    uint64_t dropped; /* records the peer was too slow for, not yet reported */
};

static void on_follow_gone(struct http_request *req)
{
    struct log_follow *lf = req->data;
    funclog_unfollow(&lf->follower);
    free(lf);
}

/* The function was deleted: the stream ends and the connection goes on. */
static void on_follow_end(struct funclog_follower *f)
{
    struct log_follow *lf = container_of(f, struct log_follow, follower);
    http_stream_end(lf->req);
    free(lf);
}

static void on_follow_record(struct funclog_follower *f, struct slice record)
{
    struct log_follow *lf = container_of(f, struct log_follow, follower);
    if (lf->dropped) {
        char note[96];
        int n = snprintf(note, sizeof(note), "-\t-\tsystem\t(%llu records dropped: slow reader)\n",
                         (unsigned long long)lf->dropped);
        if (http_stream_write(lf->req, note, (size_t)n) == -ENOBUFS) {
            lf->dropped++;
            return;
        }
        lf->dropped = 0;
    }
    int rc = http_stream_write(lf->req, record.ptr, record.len);
    if (rc == -ENOBUFS)
        lf->dropped++;
    /* -EPIPE: on_follow_gone has run and lf is freed. */
}

void ops_on_function_logs(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct slice name = m->params[0];
    if (!fn_name_valid(name)) {
        http_respond_error(req, FND_E_BAD_REQUEST,
                           "function names are 1 to 64 characters of A-Z, a-z, 0-9, _ and -");
        return;
    }
    char cname[FN_NAME_MAX + 1];
    memcpy(cname, name.ptr, name.len);
    cname[name.len] = '\0';
    if (registry_lookup(d->registry, name) == NULL) {
        http_respond_error(req, FND_E_NOT_FOUND, "function %s does not exist", cname);
        return;
    }
    char value[64];
    int64_t since = 0;
    int rc = url_query_get(req->query, "since", value, sizeof(value));
    if (rc < 0 || (rc == 1 && funclog_parse_since(value, clock_wall_ms(), &since) < 0)) {
        http_respond_error(req, FND_E_INVALID_PARAMETER,
                           "since: an RFC 3339 UTC time (2026-01-02T03:04:05Z), epoch "
                           "milliseconds, or an age such as 30s, 5m, 2h, 1d");
        return;
    }
    bool follow = url_query_get(req->query, "follow", value, sizeof(value)) == 1 &&
                  (strcmp(value, "1") == 0 || strcmp(value, "true") == 0);

    struct buf out;
    buf_init(&out, 0);
    funclog_read_function(d->funclog, cname, since, &out, OPS_LOGS_MAX);
    if (!follow) {
        http_respond_buf(req, 200, &text_type, 1, &out);
        return;
    }
    struct log_follow *lf = xcalloc(1, sizeof(*lf));
    lf->req = req;
    lf->follower.on_record = on_follow_record;
    lf->follower.on_end = on_follow_end;
    list_init(&lf->follower.link);
    req->data = lf;
    /* Either call may find the peer gone; lf is freed by on_follow_gone then. */
    if (http_stream_begin(req, 200, &text_type, 1, on_follow_gone) == 0 &&
        (out.len == 0 || http_stream_write(req, out.data, out.len) != -EPIPE))
        funclog_follow(d->funclog, &lf->follower, cname);
    buf_release(&out);
}

/* --- metrics ----------------------------------------------------------------------- */

static void function_gauges(struct function *fn, void *data)
{
    struct daemon *d = data;
    cJSON *state = cJSON_CreateObject();
    controller_function_state(d->controller, fn, state);
    const cJSON *depth = cJSON_GetObjectItemCaseSensitive(state, "queue_depth");
    metrics_set(METRIC_QUEUE_DEPTH, cJSON_IsNumber(depth) ? depth->valuedouble : 0, fn->name,
                NULL);
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(state, "instances"), *n;
    cJSON_ArrayForEach(n, inst)
    {
        if (cJSON_IsNumber(n))
            metrics_set(METRIC_WORKERS, n->valuedouble, fn->name, n->string);
    }
    cJSON_Delete(state);
}

/* Resident bytes (from /proc/self/statm) and open descriptors of the daemon. */
static void process_gauges(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size, resident;
    /* The kernel writes these numbers: no conversion error to report. */
    if (f && fscanf(f, "%llu %llu", &size, &resident) == 2) // NOLINT(cert-err34-c)
        metrics_set(METRIC_PROCESS_RSS, (double)resident * (double)sysconf(_SC_PAGESIZE), NULL,
                    NULL);
    if (f)
        fclose(f);
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        size_t fds = 0;
        while (readdir(dir))
            fds++;
        closedir(dir);
        /* not counted: ".", ".." and the descriptor of the listing itself */
        metrics_set(METRIC_PROCESS_FDS, (double)(fds > 3 ? fds - 3 : 0), NULL, NULL);
    }
}

void ops_on_metrics(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    static const struct http_header type = {SLICE_LIT("Content-Type"),
                                            SLICE_LIT("text/plain; version=0.0.4; charset=utf-8")};
    metrics_clear(METRIC_QUEUE_DEPTH);
    metrics_clear(METRIC_WORKERS);
    registry_foreach(d->registry, function_gauges, d);
    metrics_set(METRIC_FUNCTIONS, (double)registry_count(d->registry), NULL, NULL);
    metrics_set(METRIC_HTTP_CONNECTIONS, (double)gateway_connections(d->gateway), NULL, NULL);
    metrics_set(METRIC_PROCESS_START, (double)d->started_ms / 1000.0, NULL, NULL);
    metrics_set(METRIC_UPTIME, (double)(clock_wall_ms() - d->started_ms) / 1000.0, NULL, NULL);
    process_gauges();
    struct buf out;
    buf_init(&out, 0);
    metrics_render(&out);
    http_respond_buf(req, 200, &type, 1, &out);
}
