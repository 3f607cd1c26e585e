/*
 * The native HTTP API (/healthz and /v1/...): a route table and one handler per
 * endpoint, translating between JSON over HTTP and the registry and controller.
 * Every endpoint is documented in docs/api.md.
 *
 * Handlers that wait (deploy on the threadpool, invoke on a worker) keep the request
 * and answer it from their completion callback; the gateway keeps the request valid
 * until then.
 */
#include "fnd/daemon.h"

#include "fnd/codec.h"
#include "fnd/function_url.h"
#include "fnd/lambda_api.h"
#include "fnd/log.h"
#include "fnd/ops_api.h"
#include "fnd/router.h"
#include "fnd/trace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void respond_json(struct http_request *req, int status, cJSON *json)
{
    static const struct http_header content_type = {SLICE_LIT("Content-Type"),
                                                    SLICE_LIT("application/json")};
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    http_respond(req, status, &content_type, 1, text, strlen(text));
    cJSON_free(text);
}

/* Validates the {name} capture; answers 400 and returns false when it is not a name. */
static bool take_name(struct http_request *req, struct slice name, char out[FN_NAME_MAX + 1])
{
    if (!fn_name_valid(name)) {
        http_respond_error(req, FND_E_BAD_REQUEST,
                           "function names are 1 to 64 characters of A-Z, a-z, 0-9, _ and -");
        return false;
    }
    memcpy(out, name.ptr, name.len);
    out[name.len] = '\0';
    return true;
}

static struct function *find_function(struct daemon *d, struct http_request *req,
                                      struct slice name)
{
    char cname[FN_NAME_MAX + 1];
    if (!take_name(req, name, cname))
        return NULL;
    struct function *fn = registry_lookup(d->registry, name);
    if (fn == NULL)
        http_respond_error(req, FND_E_NOT_FOUND, "function %s does not exist", cname);
    return fn;
}

/* --- health and stats -------------------------------------------------------------- */

static void on_healthz(struct http_request *req, const struct route_match *m, void *data)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    respond_json(req, 200, o);
}

static void on_stats(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", FND_VERSION);
    cJSON_AddNumberToObject(o, "uptime_ms", (double)(clock_wall_ms() - d->started_ms));
    cJSON_AddNumberToObject(o, "functions", (double)registry_count(d->registry));
    cJSON_AddNumberToObject(o, "connections", (double)gateway_connections(d->gateway));
    controller_stats(d->controller, o);
    if (d->async)
        async_stats(d->async, o);
    respond_json(req, 200, o);
}

/* The daemon's version and its sandbox: which layers workers get, so that a degraded
 * sandbox is visible to clients, not only in the start-up log. */
static void on_info(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", FND_VERSION);
    cJSON *sandbox = cJSON_AddObjectToObject(o, "sandbox");
    for (size_t i = 0; i < d->nlayers; i++)
        cJSON_AddStringToObject(sandbox, d->layers[i].name, d->layers[i].state);
    respond_json(req, 200, o);
}

/* --- registry endpoints ------------------------------------------------------------ */

static cJSON *function_json(struct daemon *d, const struct function *fn, bool with_state)
{
    cJSON *o = fn_version_to_json(fn->current);
    if (with_state) {
        cJSON *state = cJSON_CreateObject();
        controller_function_state(d->controller, fn, state);
        cJSON_AddItemToObject(o, "state", state);
    }
    return o;
}

struct list_ctx {
    struct daemon *d;
    cJSON *array;
};

static void add_to_list(struct function *fn, void *data)
{
    struct list_ctx *lc = data;
    cJSON_AddItemToArray(lc->array, function_json(lc->d, fn, false));
}

static void on_list(struct http_request *req, const struct route_match *m, void *data)
{
    struct list_ctx lc = {data, cJSON_CreateArray()};
    registry_foreach(lc.d->registry, add_to_list, &lc);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "functions", lc.array);
    respond_json(req, 200, o);
}

static void on_get(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct function *fn = find_function(d, req, m->params[0]);
    if (fn)
        respond_json(req, 200, function_json(d, fn, true));
}

static void on_delete(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct function *fn = find_function(d, req, m->params[0]);
    if (fn == NULL)
        return;
    char name[FN_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", fn->name);
    int rc = registry_delete(d->registry, fn);
    if (rc == -EBUSY) {
        http_respond_error(req, FND_E_CONFLICT, "a deploy of %s is in progress", name);
    } else if (rc < 0) {
        log_error("registry_delete failed", "fn=%s err=\"%s\"", name, strerror(-rc));
        http_respond_error(req, FND_E_INTERNAL, "could not delete %s: %s", name, strerror(-rc));
    } else {
        log_info("function deleted", "fn=%s", name);
        http_respond(req, 204, NULL, 0, NULL, 0);
    }
}

static void on_deployed(int status, struct function *fn, bool created, const char *err,
                        void *data)
{
    struct http_request *req = data;
    struct daemon *d = req->data;
    switch (status) {
    case 0:
        log_info("function deployed", "fn=%s version=%llu sha256=%.12s", fn->name,
                 (unsigned long long)fn->current->number, fn->current->code_sha256);
        respond_json(req, created ? 201 : 200, function_json(d, fn, false));
        break;
    case -EINVAL:
        http_respond_error(req, FND_E_INVALID_PARAMETER, "code: %s", err);
        break;
    case -EFBIG:
        http_respond_error(req, FND_E_PAYLOAD_TOO_LARGE, "code: %s", err);
        break;
    case -ENOENT:
        http_respond_error(req, FND_E_NOT_FOUND, "%s", err && *err ? err : "no such function");
        break;
    default:
        log_error("deploy failed", "err=\"%s\" detail=\"%s\"", strerror(-status), err ? err : "");
        http_respond_error(req, fnd_error_from_storage_errno(-status), "deploy failed: %s",
                           strerror(-status));
        break;
    }
}

/* Hands spec to the registry and answers when the deploy ends. */
static void deploy(struct daemon *d, struct http_request *req, struct deploy_spec *spec)
{
    char name[FN_NAME_MAX + 1];
    memcpy(name, spec->name, sizeof(name));
    req->data = d;
    int rc = registry_deploy(d->registry, spec, on_deployed, req);
    if (rc == -EBUSY)
        http_respond_error(req, FND_E_CONFLICT, "a deploy of %s is already in progress", name);
    else if (rc == -ENOENT)
        http_respond_error(req, FND_E_NOT_FOUND, "function %s does not exist", name);
    else if (rc < 0)
        http_respond_error(req, fnd_error_from_storage_errno(-rc), "deploy failed: %s",
                           strerror(-rc));
}

static void on_put(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    if (!take_name(req, m->params[0], spec.name))
        return;
    cJSON *json = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        http_respond_error(req, FND_E_BAD_REQUEST, "the body must be a JSON object");
        return;
    }
    char err[256];
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(json, "name");
    if (name && !(cJSON_IsString(name) && strcmp(name->valuestring, spec.name) == 0)) {
        snprintf(err, sizeof(err), "name: must match the name in the path");
        goto invalid;
    }
    if (fn_config_parse(&spec.config, json, NULL, err, sizeof(err)) < 0)
        goto invalid;
    if (spec.config.network == NETWORK_NONE && !d->network_isolation) {
        /* Running it on the host's network would break the promise silently. */
        fn_config_release(&spec.config);
        snprintf(err, sizeof(err), "network: none needs a daemon that may create network "
                                   "namespaces (run it as root)");
        goto invalid;
    }
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(json, "code");
    if (code == NULL) {
        if (registry_lookup(d->registry, slice_from_cstr(spec.name)) == NULL) {
            fn_config_release(&spec.config);
            snprintf(err, sizeof(err), "code: required when creating a function");
            goto invalid;
        }
        spec.code = DEPLOY_CODE_KEEP;
    } else if (deploy_spec_parse_code(&spec, code, d->cfg->max_body, err, sizeof(err)) < 0) {
        fn_config_release(&spec.config);
        goto invalid;
    }
    cJSON_Delete(json);
    deploy(d, req, &spec);
    return;

invalid:
    cJSON_Delete(json);
    http_respond_error(req, FND_E_INVALID_PARAMETER, "%s", err);
}

static void on_put_code(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct function *fn = find_function(d, req, m->params[0]);
    if (fn == NULL)
        return;
    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.name, sizeof(spec.name), "%s", fn->name);
    fn_config_copy(&spec.config, &fn->current->config);
    spec.code = DEPLOY_CODE_ZIP;
    buf_init(&spec.zip, 0);
    buf_move(&spec.zip, &req->body);
    deploy(d, req, &spec);
}

/* --- invoke ------------------------------------------------------------------------ */

struct api_invocation {
    struct invocation inv;
    struct http_request *req;
    enum runtime runtime;
    char name[FN_NAME_MAX + 1];
};

static void respond_throttled(struct http_request *req, const char *name);

/* The answer of a sync invocation: the function's body with its request id; replayed
 * marks an answer stored under an Idempotency-Key. log is the invocation's log tail
 * (funclog.h), sent when the request asked for it with Fn-Log-Type: Tail, as Lambda's
 * X-Amz-Log-Type does: base64 in Fn-Log-Result. */
static void respond_result(struct http_request *req, const char *id, enum runtime runtime,
                           enum inv_outcome outcome, struct slice body, bool replayed,
                           struct slice log)
{
    struct http_header headers[5];
    size_t n = 0;
    headers[n++] = (struct http_header){SLICE_LIT("X-Request-Id"), {id, INVOCATION_ID_LEN}};
    struct buf tail;
    buf_init(&tail, 0);
    if (log.ptr) { /* only with Fn-Log-Type: Tail (inv.wants_log) */
        base64_encode(&tail, log.ptr, log.len);
        headers[n++] = (struct http_header){SLICE_LIT("Fn-Log-Result"), buf_slice(&tail)};
    }
    bool json = outcome != INV_SUCCESS || runtime != RUNTIME_NATIVE;
    headers[n++] = (struct http_header){SLICE_LIT("Content-Type"),
                                        json ? SLICE_LIT("application/json")
                                             : SLICE_LIT("application/octet-stream")};
    if (outcome != INV_SUCCESS && outcome != INV_CANCELLED)
        headers[n++] = (struct http_header){SLICE_LIT("Fn-Error"), SLICE_LIT("Unhandled")};
    if (replayed)
        headers[n++] = (struct http_header){SLICE_LIT("Idempotent-Replayed"), SLICE_LIT("true")};
    http_respond(req, inv_outcome_status(outcome), headers, n, body.ptr, body.len);
    buf_release(&tail);
}

static void on_invocation_done(struct invocation *inv, const struct inv_result *res)
{
    struct api_invocation *ai = container_of(inv, struct api_invocation, inv);
    if (res->outcome == INV_THROTTLED) {
        respond_throttled(ai->req, ai->name);
        invocation_release(inv);
        free(ai);
        return;
    }
    log_debug("invocation done", "request_id=%s outcome=%s duration_us=%llu queued_us=%llu cold=%d",
              inv->id, inv_outcome_word(res->outcome), (unsigned long long)res->duration_us,
              (unsigned long long)res->queued_us, res->cold_start);
    respond_result(ai->req, inv->id, ai->runtime, res->outcome, res->body, false, res->log);
    invocation_release(inv);
    free(ai);
}

/* 429 with Retry-After, which tells well-behaved clients when to come back. */
static void respond_throttled(struct http_request *req, const char *name)
{
    static const struct http_header retry = {SLICE_LIT("Retry-After"), SLICE_LIT("1")};
    http_respond_error_headers(req, FND_E_TOO_MANY_REQUESTS, &retry, 1,
                               "%s is at its concurrency and queue limits; retry later", name);
}

/* --- async invocations and idempotency keys (docs/eventlog.md) ---------------------- */

struct api_durable {
    struct http_request *req;
    enum runtime runtime;
    char name[FN_NAME_MAX + 1];
};

/* 202 with the id and where to poll it, sent once the accept is durable. */
static void on_async_accepted(int status, const char *id, void *data)
{
    struct http_request *req = data;
    if (status < 0) {
        http_respond_error(req, FND_E_UNAVAILABLE, "the event log is read-only");
        return;
    }
    snprintf(req->request_id, sizeof(req->request_id), "%s", id); /* for the request log */
    char location[64];
    snprintf(location, sizeof(location), "/v1/invocations/%s", id);
    struct http_header loc = {SLICE_LIT("Location"), slice_from_cstr(location)};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "invocation_id", id);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    struct http_header headers[2] = {loc, {SLICE_LIT("Content-Type"),
                                           SLICE_LIT("application/json")}};
    http_respond(req, 202, headers, 2, text, strlen(text));
    cJSON_free(text);
}

static void on_sync_answered(int status, const struct async_sync_result *res, void *data)
{
    struct api_durable *ad = data;
    if (status < 0)
        http_respond_error(ad->req, FND_E_UNAVAILABLE, "the event log is read-only");
    else if (res->outcome == INV_THROTTLED)
        respond_throttled(ad->req, ad->name);
    else {
        snprintf(ad->req->request_id, sizeof(ad->req->request_id), "%s", res->invocation_id);
        respond_result(ad->req, res->invocation_id, ad->runtime, res->outcome, res->body,
                       res->replayed, SLICE_NULL);
    }
    free(ad);
}

static void respond_durable_error(struct http_request *req, int rc)
{
    switch (rc) {
    case -EINVAL:
        http_respond_error(req, FND_E_BAD_REQUEST, "Idempotency-Key must be 1 to %d characters "
                           "on one line", ASYNC_KEY_MAX);
        break;
    case -EEXIST:
        http_respond_error(req, FND_E_UNPROCESSABLE, "this Idempotency-Key was used with a "
                           "different payload");
        break;
    case -EBUSY:
        http_respond_error(req, FND_E_CONFLICT, "the invocation with this Idempotency-Key is "
                           "still running");
        break;
    case -E2BIG:
        http_respond_error(req, FND_E_PAYLOAD_TOO_LARGE, "the event is too large for the event log");
        break;
    case -ECANCELED:
        http_respond_error(req, FND_E_UNAVAILABLE, "the daemon is stopping");
        break;
    default:
        http_respond_error(req, FND_E_UNAVAILABLE, "the event log is read-only (%s); async and "
                           "idempotent invocations are refused", strerror(-rc));
        break;
    }
}

/* Prefer: respond-async (RFC 7240), a token among others. */
static bool prefers_async(const struct http_request *req)
{
    struct slice v = http_request_header(req, "Prefer");
    for (size_t i = 0; v.ptr && i + 13 <= v.len; i++)
        if (strncasecmp(v.ptr + i, "respond-async", 13) == 0)
            return true;
    return false;
}

/* An async invocation, or a sync one with an Idempotency-Key: both go through the log. */
static void invoke_durable(struct daemon *d, struct http_request *req, struct function *fn,
                           enum runtime rt, struct slice key, const char *trace_id)
{
    int rc;
    if (prefers_async(req)) {
        rc = async_submit(d->async, fn, &req->body, key, trace_id, NULL, on_async_accepted, req);
    } else {
        struct api_durable *ad = xcalloc(1, sizeof(*ad));
        ad->req = req;
        ad->runtime = rt;
        snprintf(ad->name, sizeof(ad->name), "%s", fn->name);
        rc = async_invoke_sync(d->async, fn, &req->body, key, trace_id, NULL, on_sync_answered,
                               ad);
        if (rc < 0)
            free(ad);
    }
    if (rc < 0)
        respond_durable_error(req, rc);
}

static void on_get_invocation(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    cJSON *o = async_invocation_json(d->async, m->params[0]);
    if (o == NULL)
        http_respond_error(req, FND_E_NOT_FOUND, "no such invocation: %.*s",
                           (int)FND_MIN(m->params[0].len, 64), m->params[0].ptr);
    else
        respond_json(req, 200, o);
}

static void on_dead_letters(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    if (find_function(d, req, m->params[0]))
        respond_json(req, 200, async_dead_letters_json(d->async, m->params[0]));
}

static void on_retry_invocation(struct http_request *req, const struct route_match *m,
                                void *data)
{
    struct daemon *d = data;
    struct slice id = m->params[0];
    int rc = async_redrive(d->async, id, on_async_accepted, req);
    if (rc == -ENOENT)
        http_respond_error(req, FND_E_NOT_FOUND, "no such invocation: %.*s",
                           (int)FND_MIN(id.len, 64), id.ptr);
    else if (rc == -EINVAL)
        http_respond_error(req, FND_E_CONFLICT, "only a dead letter can be re-driven");
    else if (rc < 0)
        respond_durable_error(req, rc);
}

static void on_invoke(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct function *fn = find_function(d, req, m->params[0]);
    if (fn == NULL)
        return;
    enum runtime rt = fn->current->config.runtime;
    if (rt != RUNTIME_NATIVE) {
        /* Interpreted runtimes receive the event as JSON; refuse what they could not
         * parse here, where the caller learns why (Lambda does the same). */
        if (req->body.len == 0) {
            buf_append_str(&req->body, "{}");
        } else {
            cJSON *probe = cJSON_ParseWithLength(req->body.data, req->body.len);
            bool ok = probe != NULL;
            cJSON_Delete(probe);
            if (!ok) {
                http_respond_error(req, FND_E_BAD_REQUEST, "the event must be valid JSON");
                return;
            }
        }
    }
    /* The caller's trace, or a new one: answered as traceparent (by the gateway), seen by
     * the function as _X_AMZN_TRACE_ID, and kept with an async invocation, so that its
     * retries run in the same trace. */
    struct trace_context trace;
    trace_from_request(&trace, req);
    char xray[TRACE_XRAY_MAX];
    trace_format_xray(&trace, xray);
    struct slice key = http_request_header(req, "Idempotency-Key");
    if (key.ptr || prefers_async(req)) {
        invoke_durable(d, req, fn, rt, key, xray);
        return;
    }
    struct api_invocation *ai = xmalloc(sizeof(*ai));
    invocation_init(&ai->inv, 0);
    memcpy(req->request_id, ai->inv.id, sizeof(req->request_id));
    ai->inv.trace_id = xstrdup(xray);
    buf_move(&ai->inv.payload, &req->body);
    ai->inv.on_done = on_invocation_done;
    ai->inv.wants_log = slice_eq_nocase(http_request_header(req, "Fn-Log-Type"), "Tail");
    ai->req = req;
    ai->runtime = rt;
    snprintf(ai->name, sizeof(ai->name), "%s", fn->name);
    int rc = controller_submit(d->controller, fn, &ai->inv);
    if (rc < 0) {
        invocation_release(&ai->inv);
        free(ai);
        if (rc == -EAGAIN)
            respond_throttled(req, fn->name);
        else
            http_respond_error(req, FND_E_UNAVAILABLE, "the daemon is stopping");
    }
}

/* --- dispatch ---------------------------------------------------------------------- */

static const struct route routes[] = {
    {"GET", "/healthz", on_healthz},
    {"GET", "/v1/stats", on_stats},
    {"GET", "/v1/info", on_info},
    {"GET", "/v1/functions", on_list},
    {"GET", "/v1/functions/{name}", on_get},
    {"PUT", "/v1/functions/{name}", on_put},
    {"DELETE", "/v1/functions/{name}", on_delete},
    {"PUT", "/v1/functions/{name}/code", on_put_code},
    {"POST", "/v1/functions/{name}/invoke", on_invoke},
    {"GET", "/v1/functions/{name}/logs", ops_on_function_logs},
    {"GET", "/v1/invocations/{id}/logs", ops_on_invocation_logs},
    {"GET", "/metrics", ops_on_metrics},
    {"GET", "/v1/functions/{name}/dead-letters", on_dead_letters},
    {"GET", "/v1/invocations/{id}", on_get_invocation},
    {"POST", "/v1/invocations/{id}/retry", on_retry_invocation},
};

/* What a route needs (auth.h): health checks are open, invocations follow
 * --invoke-auth, everything else needs the token. */
static enum auth_class route_auth(const struct route *r)
{
    if (r->handler == on_healthz)
        return AUTH_OPEN;
    if (r->handler == on_invoke)
        return AUTH_INVOKE;
    return AUTH_CONTROL;
}

void api_handle(struct http_request *req, void *data)
{
    struct daemon *d = data;
    if (lambda_api_handle(req, d) || function_url_handle(req, d))
        return;
    const struct route *route;
    struct route_match match;
    char allow[128];
    int rc = router_match(routes, ARRAY_SIZE(routes), req->method_name, req->path, &route,
                          &match, allow, sizeof(allow));
    if (rc == -ENOENT) {
        http_respond_error(req, FND_E_NOT_FOUND, "no such endpoint: %.*s", (int)req->path.len,
                           req->path.ptr);
        return;
    }
    if (rc == -EPERM) {
        http_respond_method_not_allowed(req, allow);
        return;
    }
    req->route = route->pattern;
    if (!auth_allows(&d->auth, req, route_auth(route))) {
        auth_respond_unauthorized(req);
        return;
    }
    route->handler(req, &match, data);
}
