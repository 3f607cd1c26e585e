/*
 * The Lambda control plane (include/fnd/lambda_api.h): CreateFunction, GetFunction,
 * GetFunctionConfiguration, ListFunctions, DeleteFunction, UpdateFunctionCode,
 * UpdateFunctionConfiguration, PublishVersion and ListVersionsByFunction (the
 * settings calls are in lambda_settings.c), each translated onto the registry in
 * native terms:
 *
 *   Runtime python3.x / nodejs*.x / provided*  -> runtime python3 / nodejs / provided
 *   Timeout (s), MemorySize, Environment       -> timeout_ms, memory_mb, env
 *   ReservedConcurrentExecutions               -> max_instances
 *   MaximumRetryAttempts, MaximumEventAgeInSeconds -> retry.max_attempts - 1,
 *                                                 retry.max_event_age_s
 *
 * A Lambda request body becomes a native configuration object that fn_config_parse
 * validates, so both APIs enforce the same rules and a function deployed through one
 * is served by the other. Every change to $LATEST is a registry deploy; published
 * versions are the registry's immutable snapshots. Answers use Lambda's shapes
 * (FunctionConfiguration) and its errors ({"Type", "message"} with x-amzn-ErrorType).
 */
#include "fnd/lambda_api.h"

#include "fnd/auth.h"
#include "fnd/codec.h"
#include "fnd/lambda_body.h"
#include "fnd/log.h"
#include "fnd/router.h"
#include "fnd/runtime.h"
#include "fnd/sigv4.h"
#include "fnd/urlcode.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#define LIST_MAX_ITEMS_DEFAULT 50
#define LIST_MAX_ITEMS 10000
#define FUNCTION_REF_MAX 256 /* an ARN with a qualifier is at most ~170 bytes */

/* --- answers ----------------------------------------------------------------------- */

static void request_id_header(struct http_header *h, char id[INVOCATION_ID_LEN + 1])
{
    invocation_new_id(id);
    *h = (struct http_header){SLICE_LIT("x-amzn-RequestId"), {id, INVOCATION_ID_LEN}};
}

void lambda_respond_json(struct http_request *req, int status, cJSON *json)
{
    char id[INVOCATION_ID_LEN + 1];
    struct http_header headers[2] = {{SLICE_LIT("Content-Type"), SLICE_LIT("application/json")}};
    request_id_header(&headers[1], id);
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    http_respond(req, status, headers, 2, text, strlen(text));
    cJSON_free(text);
}

void lambda_respond_empty(struct http_request *req, int status)
{
    char id[INVOCATION_ID_LEN + 1];
    struct http_header h;
    request_id_header(&h, id);
    http_respond(req, status, &h, 1, NULL, 0);
}

void lambda_error(struct http_request *req, enum fnd_error kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *type = fnd_error_lambda_type(kind);
    int status = fnd_error_status(kind);
    char id[INVOCATION_ID_LEN + 1];
    struct http_header headers[3] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("x-amzn-ErrorType"), slice_from_cstr(type)},
    };
    request_id_header(&headers[2], id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Type", status >= 500 ? "Service" : "User");
    cJSON_AddStringToObject(o, "message", msg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_respond(req, status, headers, 3, text, strlen(text));
    cJSON_free(text);
}

/* --- names, ARNs, qualifiers ------------------------------------------------------- */

void lambda_version_name(const struct fn_version *v, char out[24])
{
    if (v->published)
        snprintf(out, 24, "%llu", (unsigned long long)v->published);
    else
        snprintf(out, 24, "$LATEST");
}

/* Splits "name[:q]", "account:function:name[:q]" or "arn:aws:lambda:region:account:
 * function:name[:q]" (ref is modified). Returns false when it is none of these. */
static bool split_function_ref(char *ref, char **name, char **qualifier)
{
    char *parts[9];
    size_t n = 0;
    for (char *p = ref; n < ARRAY_SIZE(parts);) {
        parts[n++] = p;
        char *colon = strchr(p, ':');
        if (colon == NULL)
            break;
        *colon = '\0';
        p = colon + 1;
        if (n == ARRAY_SIZE(parts))
            return false;
    }
    size_t at;
    if (n >= 7 && strcmp(parts[0], "arn") == 0 && strcmp(parts[2], "lambda") == 0 &&
        strcmp(parts[5], "function") == 0)
        at = 6;
    else if (n >= 3 && n <= 4 && strcmp(parts[1], "function") == 0)
        at = 2;
    else if (n <= 2)
        at = 0;
    else
        return false;
    if (n > at + 2)
        return false;
    *name = parts[at];
    *qualifier = n == at + 2 ? parts[at + 1] : NULL;
    return true;
}

/* Decodes a function reference into name (and qualifier, "" when none). Answers 400
 * and returns false when it is not one. */
static bool parse_function_ref(struct http_request *req, struct slice raw, bool decode,
                               char name[FN_NAME_MAX + 1],
                               char qualifier[LAMBDA_QUALIFIER_MAX + 1])
{
    struct buf b;
    buf_init(&b, FUNCTION_REF_MAX);
    int rc = decode ? url_decode(&b, raw, false) : buf_append(&b, raw.ptr, raw.len);
    char *n = NULL, *q = NULL;
    bool ok = rc == 0 && b.len > 0 && memchr(b.data, '\0', b.len) == NULL &&
              split_function_ref(b.data, &n, &q) && fn_name_valid(slice_from_cstr(n)) &&
              (q == NULL || (*q && strlen(q) <= LAMBDA_QUALIFIER_MAX));
    if (ok) {
        snprintf(name, FN_NAME_MAX + 1, "%s", n);
        snprintf(qualifier, LAMBDA_QUALIFIER_MAX + 1, "%s", q ? q : "");
    } else {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "1 validation error detected: Value '%.*s' at 'functionName' failed to "
                     "satisfy constraint: Member must be a function name or ARN",
                     (int)FND_MIN(raw.len, 200), raw.ptr);
    }
    buf_release(&b);
    return ok;
}

bool lambda_resolve(struct daemon *d, struct http_request *req, struct slice name,
                    struct lambda_target *t)
{
    char cname[FN_NAME_MAX + 1], query_q[LAMBDA_QUALIFIER_MAX + 1] = "";
    memset(t, 0, sizeof(*t));
    if (!parse_function_ref(req, name, true, cname, t->qualifier))
        return false;
    int rc = url_query_get(req->query, "Qualifier", query_q, sizeof(query_q));
    if (rc < 0 || (rc > 0 && t->qualifier[0] && strcmp(query_q, t->qualifier) != 0)) {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "The derived qualifier from the function name does not match the "
                     "specified qualifier.");
        return false;
    }
    if (rc > 0)
        snprintf(t->qualifier, sizeof(t->qualifier), "%s", query_q);
    char *arn = runtime_function_arn(d->cfg->region, cname);
    t->fn = registry_lookup(d->registry, slice_from_cstr(cname));
    if (t->fn == NULL) {
        lambda_error(req, FND_E_NOT_FOUND, "Function not found: %s", arn);
        free(arn);
        return false;
    }
    t->version = t->fn->current;
    const char *q = t->qualifier;
    if (*q && strcmp(q, "$LATEST") != 0) {
        char *end;
        unsigned long long n = strtoull(q, &end, 10);
        t->version = *end == '\0' && q[0] != '0' ? registry_published(t->fn, n) : NULL;
        if (t->version == NULL) {
            /* Aliases are not supported: every other qualifier names nothing. */
            lambda_error(req, FND_E_NOT_FOUND, "Function not found: %s:%s", arn, q);
            free(arn);
            return false;
        }
    }
    free(arn);
    return true;
}

/* --- shapes ------------------------------------------------------------------------ */

static void add_time(cJSON *o, const char *key, int64_t ms)
{
    char when[48];
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03d+0000", (int)(ms % 1000));
    cJSON_AddStringToObject(o, key, when);
}

static const char *machine_arch(void)
{
    static struct utsname u;
    if (u.machine[0] == '\0' && uname(&u) < 0)
        return "x86_64";
    return strcmp(u.machine, "aarch64") == 0 ? "arm64" : u.machine;
}

/* Lambda's FunctionConfiguration of version v. */
static cJSON *configuration_json(struct daemon *d, const struct fn_version *v)
{
    const struct fn_config *c = &v->config;
    cJSON *o = cJSON_CreateObject();
    char version[24];
    lambda_version_name(v, version);
    char *arn = runtime_function_arn(d->cfg->region, v->name);
    cJSON_AddStringToObject(o, "FunctionName", v->name);
    if (v->published) {
        char *qualified = xasprintf("%s:%s", arn, version);
        cJSON_AddStringToObject(o, "FunctionArn", qualified);
        free(qualified);
    } else {
        cJSON_AddStringToObject(o, "FunctionArn", arn);
    }
    free(arn);
    cJSON_AddStringToObject(o, "Runtime", c->lambda_runtime ? c->lambda_runtime
                                                            : runtime_name(c->runtime));
    cJSON_AddStringToObject(o, "Handler", c->handler ? c->handler : "");
    cJSON_AddNumberToObject(o, "CodeSize", (double)v->code_size);
    cJSON_AddStringToObject(o, "Description", c->description ? c->description : "");
    cJSON_AddNumberToObject(o, "Timeout", ceil((double)c->timeout_ms / 1000.0));
    cJSON_AddNumberToObject(o, "MemorySize", c->memory_mb);
    add_time(o, "LastModified", v->modified_ms);
    unsigned char digest[32];
    struct buf sha;
    buf_init(&sha, 0);
    if (hex_decode(digest, sizeof(digest), v->code_sha256) == 0)
        base64_encode(&sha, digest, sizeof(digest));
    cJSON_AddStringToObject(o, "CodeSha256", sha.data ? sha.data : "");
    buf_release(&sha);
    cJSON_AddStringToObject(o, "Version", version);
    if (c->nenv) {
        cJSON *vars = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "Environment"),
                                              "Variables");
        for (size_t i = 0; i < c->nenv; i++)
            cJSON_AddStringToObject(vars, c->env[i].name, c->env[i].value);
    }
    cJSON_AddStringToObject(o, "State", "Active");
    cJSON_AddStringToObject(o, "LastUpdateStatus", "Successful");
    cJSON_AddStringToObject(o, "PackageType", "Zip");
    cJSON_AddItemToObject(o, "Architectures",
                          cJSON_CreateStringArray((const char *[]){machine_arch()}, 1));
    return o;
}

/* --- requests into native configurations ------------------------------------------- */

cJSON *lambda_json_body(struct http_request *req)
{
    cJSON *json = cJSON_ParseWithLength(req->body.data ? req->body.data : "{}",
                                        req->body.len ? req->body.len : 2);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        lambda_error(req, FND_E_BAD_REQUEST, "Could not parse request body into json");
        return NULL;
    }
    char err[128];
    if (lambda_body_check_members(json, err, sizeof(err)) < 0) {
        cJSON_Delete(json);
        lambda_error(req, FND_E_BAD_REQUEST, "%s", err);
        return NULL;
    }
    return json;
}

cJSON *lambda_target_and_body(struct daemon *d, struct http_request *req, struct slice name,
                              struct lambda_target *t)
{
    return lambda_resolve(d, req, name, t) ? lambda_json_body(req) : NULL;
}

/* Code.ZipFile into spec as a zip; 0 or -EINVAL with err set. */
static int take_code(struct daemon *d, const cJSON *code, struct deploy_spec *spec, char *err,
                     size_t errsize)
{
    spec->code = DEPLOY_CODE_ZIP;
    return lambda_body_zip(code, &spec->zip, d->cfg->max_body, err, errsize);
}

/* --- deploys ----------------------------------------------------------------------- */

struct lambda_deploy {
    struct daemon *d;
    struct http_request *req;
    lambda_shape_fn *shape; /* the answer; NULL: none */
    bool publish;
    int status; /* on success */
};

static void on_deployed(int status, struct function *fn, bool created, const char *err,
                        void *data)
{
    struct lambda_deploy *ld = data;
    struct http_request *req = ld->req;
    struct daemon *d = ld->d;
    int ok_status = ld->status;
    lambda_shape_fn *shape = ld->shape;
    bool publish = ld->publish;
    free(ld);
    if (status == -EINVAL || status == -EFBIG) {
        lambda_error(req, status == -EINVAL ? FND_E_INVALID_PARAMETER : FND_E_PAYLOAD_TOO_LARGE,
                     "Code: %s", err);
        return;
    }
    if (status == -ENOENT) {
        lambda_error(req, FND_E_NOT_FOUND, "Function not found");
        return;
    }
    if (status < 0) {
        log_error("deploy failed", "err=\"%s\" detail=\"%s\"", strerror(-status), err ? err : "");
        lambda_error(req, fnd_error_from_storage_errno(-status), "deploy failed: %s",
                     strerror(-status));
        return;
    }
    log_info("function deployed", "fn=%s version=%llu api=lambda", fn->name,
             (unsigned long long)fn->current->number);
    struct fn_version *v = fn->current;
    if (publish) {
        bool fresh;
        int rc = registry_publish(d->registry, fn, &v, &fresh);
        if (rc < 0) {
            lambda_error(req, fnd_error_from_storage_errno(-rc), "publish failed: %s",
                         strerror(-rc));
            return;
        }
    }
    if (shape)
        lambda_respond_json(req, ok_status, shape(d, v));
    else
        lambda_respond_empty(req, ok_status);
}

/* Hands spec to the registry; the answer is given when the deploy ends. */
static void deploy(struct daemon *d, struct http_request *req, struct deploy_spec *spec,
                   lambda_shape_fn *shape, bool publish, int ok_status)
{
    char name[FN_NAME_MAX + 1];
    memcpy(name, spec->name, sizeof(name));
    if (spec->config.network == NETWORK_NONE && !d->network_isolation) {
        fn_config_release(&spec->config);
        buf_release(&spec->zip);
        lambda_error(req, FND_E_INVALID_PARAMETER, "network none needs a privileged daemon");
        return;
    }
    struct lambda_deploy *ld = xcalloc(1, sizeof(*ld));
    *ld = (struct lambda_deploy){d, req, shape, publish, ok_status};
    int rc = registry_deploy(d->registry, spec, on_deployed, ld);
    if (rc < 0)
        free(ld);
    if (rc == -EBUSY)
        lambda_error(req, FND_E_CONFLICT, "The operation cannot be performed at this time. An "
                     "update is in progress for resource: %s", name);
    else if (rc == -ENOENT)
        lambda_error(req, FND_E_NOT_FOUND, "Function not found: %s", name);
    else if (rc < 0)
        lambda_error(req, fnd_error_from_storage_errno(-rc), "deploy failed: %s", strerror(-rc));
}

void lambda_deploy_patch(struct daemon *d, struct http_request *req, struct function *fn,
                         cJSON *patch, lambda_shape_fn *shape, int ok_status)
{
    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.name, sizeof(spec.name), "%s", fn->name);
    char err[256];
    int rc = fn_config_parse(&spec.config, patch, &fn->current->config, err, sizeof(err));
    cJSON_Delete(patch);
    if (rc < 0) {
        lambda_error(req, FND_E_INVALID_PARAMETER, "%s", err);
        return;
    }
    spec.code = DEPLOY_CODE_KEEP;
    deploy(d, req, &spec, shape, false, ok_status);
}

/* --- handlers ---------------------------------------------------------------------- */

static void on_create(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    cJSON *body = lambda_json_body(req);
    if (body == NULL)
        return;
    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    char err[256] = "", qualifier[LAMBDA_QUALIFIER_MAX + 1];
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "FunctionName");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(body, "Code");
    const cJSON *publish = cJSON_GetObjectItemCaseSensitive(body, "Publish");
    cJSON *native = cJSON_CreateObject();
    if (!cJSON_IsString(name)) {
        snprintf(err, sizeof(err), "FunctionName: required");
    } else if (!parse_function_ref(req, slice_from_cstr(name->valuestring), false, spec.name,
                                   qualifier)) {
        goto done; /* answered */
    } else if (qualifier[0]) {
        snprintf(err, sizeof(err), "FunctionName: must not have a qualifier");
    } else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "Runtime"))) {
        snprintf(err, sizeof(err), "Runtime: required for Zip packages");
    } else if (registry_lookup(d->registry, slice_from_cstr(spec.name))) {
        lambda_error(req, FND_E_CONFLICT, "Function already exist: %s", spec.name);
        goto done;
    }
    if (err[0] == '\0' && lambda_body_config(body, native, err, sizeof(err)) == 0 &&
        fn_config_parse(&spec.config, native, NULL, err, sizeof(err)) == 0) {
        if (take_code(d, code, &spec, err, sizeof(err)) == 0) {
            deploy(d, req, &spec, configuration_json, cJSON_IsTrue(publish), 201);
            goto done;
        }
        fn_config_release(&spec.config);
    }
    lambda_error(req, FND_E_INVALID_PARAMETER, "%s", err);
done:
    cJSON_Delete(native);
    cJSON_Delete(body);
}

static void on_get_function(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (!lambda_resolve(d, req, m->params[0], &t))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "Configuration", configuration_json(d, t.version));
    cJSON *concurrency = lambda_concurrency_json(&t.fn->current->config, false);
    if (cJSON_GetArraySize(concurrency) > 0)
        cJSON_AddItemToObject(o, "Concurrency", concurrency);
    else
        cJSON_Delete(concurrency);
    lambda_respond_json(req, 200, o);
}

static void on_get_configuration(struct http_request *req, const struct route_match *m,
                                 void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (lambda_resolve(d, req, m->params[0], &t))
        lambda_respond_json(req, 200, configuration_json(d, t.version));
}

struct list_walk {
    struct daemon *d;
    cJSON *array;
    const char *marker; /* first name to include */
    size_t max, count;
    const char *next;   /* the first name left out */
};

static void list_one(struct function *fn, void *data)
{
    struct list_walk *w = data;
    if (w->marker && strcmp(fn->name, w->marker) < 0)
        return;
    if (w->count == w->max) {
        if (w->next == NULL)
            w->next = fn->name;
        return;
    }
    cJSON_AddItemToArray(w->array, configuration_json(w->d, fn->current));
    w->count++;
}

static void on_list(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    char marker[FN_NAME_MAX + 1] = "", max_items[16] = "";
    int has_marker = url_query_get(req->query, "Marker", marker, sizeof(marker));
    int has_max = url_query_get(req->query, "MaxItems", max_items, sizeof(max_items));
    char *end = NULL;
    long max = has_max > 0 ? strtol(max_items, &end, 10) : LIST_MAX_ITEMS_DEFAULT;
    if (has_marker < 0 || has_max < 0 || (has_max > 0 && *end) || max < 1 ||
        max > LIST_MAX_ITEMS) {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "MaxItems must be between 1 and %d; Marker must come from NextMarker",
                     LIST_MAX_ITEMS);
        return;
    }
    struct list_walk w = {d, cJSON_CreateArray(), has_marker > 0 ? marker : NULL, (size_t)max, 0,
                          NULL};
    registry_foreach(d->registry, list_one, &w);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "Functions", w.array);
    if (w.next) /* the marker is the next name: names are unique and sorted */
        cJSON_AddStringToObject(o, "NextMarker", w.next);
    lambda_respond_json(req, 200, o);
}

static void on_delete(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (!lambda_resolve(d, req, m->params[0], &t))
        return;
    if (t.qualifier[0]) {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "fnd deletes whole functions only, not single versions");
        return;
    }
    char name[FN_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", t.fn->name);
    int rc = registry_delete(d->registry, t.fn);
    if (rc == -EBUSY) {
        lambda_error(req, FND_E_CONFLICT, "An update is in progress for resource: %s", name);
    } else if (rc < 0) {
        log_error("registry_delete failed", "fn=%s err=\"%s\"", name, strerror(-rc));
        lambda_error(req, FND_E_INTERNAL, "could not delete %s: %s", name, strerror(-rc));
    } else {
        log_info("function deleted", "fn=%s api=lambda", name);
        lambda_respond_empty(req, 204);
    }
}

static void on_update_code(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    cJSON *body = lambda_target_and_body(d, req, m->params[0], &t);
    if (body == NULL)
        return;
    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.name, sizeof(spec.name), "%s", t.fn->name);
    char err[256];
    if (take_code(d, body, &spec, err, sizeof(err)) < 0) {
        lambda_error(req, FND_E_INVALID_PARAMETER, "%s", err);
    } else {
        fn_config_copy(&spec.config, &t.fn->current->config);
        deploy(d, req, &spec, configuration_json,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "Publish")), 200);
    }
    cJSON_Delete(body);
}

static void on_update_configuration(struct http_request *req, const struct route_match *m,
                                    void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    cJSON *body = lambda_target_and_body(d, req, m->params[0], &t);
    if (body == NULL)
        return;
    cJSON *patch = cJSON_CreateObject();
    char err[256];
    int rc = lambda_body_config(body, patch, err, sizeof(err));
    cJSON_Delete(body);
    if (rc < 0) {
        cJSON_Delete(patch);
        lambda_error(req, FND_E_INVALID_PARAMETER, "%s", err);
        return;
    }
    lambda_deploy_patch(d, req, t.fn, patch, configuration_json, 200);
}

static void on_publish(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    cJSON *body = lambda_target_and_body(d, req, m->params[0], &t);
    if (body == NULL)
        return;
    /* CodeSha256, when given, must be that of $LATEST: a guard against publishing code
     * that changed since the caller looked. */
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(body, "CodeSha256");
    cJSON *current = configuration_json(d, t.fn->current);
    bool stale = cJSON_IsString(sha) &&
                 strcmp(sha->valuestring,
                        cJSON_GetObjectItemCaseSensitive(current, "CodeSha256")->valuestring) != 0;
    cJSON_Delete(current);
    cJSON_Delete(body);
    if (stale) {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "CodeSha256 does not match the function's current code");
        return;
    }
    struct fn_version *v;
    bool created;
    int rc = registry_publish(d->registry, t.fn, &v, &created);
    if (rc < 0) {
        lambda_error(req, fnd_error_from_storage_errno(-rc), "publish failed: %s",
                     strerror(-rc));
        return;
    }
    log_info("version published", "fn=%s published=%llu new=%d", t.fn->name,
             (unsigned long long)v->published, created);
    lambda_respond_json(req, 201, configuration_json(d, v));
}

static void on_list_versions(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (!lambda_resolve(d, req, m->params[0], &t))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON *versions = cJSON_AddArrayToObject(o, "Versions");
    cJSON_AddItemToArray(versions, configuration_json(d, t.fn->current));
    for (size_t i = 0; i < t.fn->npublished; i++)
        cJSON_AddItemToArray(versions, configuration_json(d, t.fn->published[i]));
    lambda_respond_json(req, 200, o);
}

static void on_invoke(struct http_request *req, const struct route_match *m, void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (lambda_resolve(d, req, m->params[0], &t))
        lambda_invoke(req, d, &t);
}

/* --- dispatch ---------------------------------------------------------------------- */

static const struct route routes[] = {
    {"POST", "/2015-03-31/functions", on_create},
    {"GET", "/2015-03-31/functions", on_list},
    {"GET", "/2015-03-31/functions/{name}", on_get_function},
    {"DELETE", "/2015-03-31/functions/{name}", on_delete},
    {"GET", "/2015-03-31/functions/{name}/configuration", on_get_configuration},
    {"PUT", "/2015-03-31/functions/{name}/configuration", on_update_configuration},
    {"PUT", "/2015-03-31/functions/{name}/code", on_update_code},
    {"POST", "/2015-03-31/functions/{name}/versions", on_publish},
    {"GET", "/2015-03-31/functions/{name}/versions", on_list_versions},
    {"POST", "/2015-03-31/functions/{name}/invocations", on_invoke},
    {"PUT", "/2017-10-31/functions/{name}/concurrency", lambda_on_put_concurrency},
    {"DELETE", "/2017-10-31/functions/{name}/concurrency", lambda_on_delete_concurrency},
    {"GET", "/2019-09-30/functions/{name}/concurrency", lambda_on_get_concurrency},
    {"PUT", "/2019-09-25/functions/{name}/event-invoke-config", lambda_on_put_event_config},
    {"POST", "/2019-09-25/functions/{name}/event-invoke-config", lambda_on_update_event_config},
    {"GET", "/2019-09-25/functions/{name}/event-invoke-config", lambda_on_get_event_config},
    {"DELETE", "/2019-09-25/functions/{name}/event-invoke-config", lambda_on_delete_event_config},
    {"GET", "/2016-08-19/account-settings", lambda_on_account_settings},
};

/* Who may call (auth.h): Invoke follows --invoke-auth, as invocations on /v1 do, and
 * the rest needs the bearer token, which AWS clients cannot send. So with
 * --lambda-auth loopback (the default: a local emulator with dummy credentials) the
 * control plane is open to loopback peers; with sigv4 a request signed with the
 * token as the secret access key passes (sigv4.h); with none only the token does. */
static bool lambda_allowed(struct daemon *d, const struct http_request *req,
                           const struct route *route)
{
    bool invoke = route->handler == on_invoke;
    if (auth_allows(&d->auth, req, invoke ? AUTH_INVOKE : AUTH_CONTROL))
        return true;
    if (strcmp(d->cfg->lambda_auth, "sigv4") == 0) {
        char why[160];
        if (sigv4_verify(req, d->auth.token, clock_wall_ms() / 1000, why, sizeof(why)) == 0)
            return true;
        log_info("lambda request refused", "reason=\"%s\"", why);
        return false;
    }
    return !invoke && strcmp(d->cfg->lambda_auth, "loopback") == 0 && auth_peer_is_loopback(req);
}

/* "/YYYY-MM-DD/...": the Lambda API puts its version first in every path. */
static bool lambda_path(struct slice path)
{
    static const char shape[] = "/0000-00-00/";
    if (path.len < sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char c = path.ptr[i];
        if (shape[i] == '0' ? !(c >= '0' && c <= '9') : c != shape[i])
            return false;
    }
    return true;
}

bool lambda_api_handle(struct http_request *req, struct daemon *d)
{
    if (!lambda_path(req->path))
        return false;
    /* The CLI lists with ".../functions/": one trailing slash is not significant. */
    struct slice path = req->path;
    if (path.len > 1 && path.ptr[path.len - 1] == '/')
        path.len--;
    const struct route *route;
    struct route_match match;
    char allow[128];
    int rc = router_match(routes, ARRAY_SIZE(routes), req->method_name, path, &route, &match,
                          allow, sizeof(allow));
    if (rc == -ENOENT) {
        lambda_error(req, FND_E_NOT_FOUND, "fnd does not implement this Lambda operation: %s %.*s",
                     req->method_name, (int)FND_MIN(path.len, 200), path.ptr);
        return true;
    }
    if (rc == -EPERM) {
        lambda_error(req, FND_E_METHOD_NOT_ALLOWED, "%s is not allowed here (allowed: %s)",
                     req->method_name, allow);
        return true;
    }
    req->route = route->pattern;
    if (!lambda_allowed(d, req, route)) {
        lambda_error(req, FND_E_UNAUTHORIZED,
                     "the Lambda API needs the daemon's token here (Authorization: Bearer, see "
                     "--lambda-auth)");
        return true;
    }
    route->handler(req, &match, d);
    return true;
}
