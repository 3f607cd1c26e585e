/*
 * Lambda's per-function settings beside code and configuration (include/fnd/
 * lambda_api.h), each one a field of the native configuration, so a change is a
 * registry deploy like any other:
 *
 *   Put/Get/DeleteFunctionConcurrency         -> max_instances (reserved concurrency)
 *   Put/Update/Get/DeleteFunctionEventInvokeConfig -> the async retry policy:
 *       MaximumRetryAttempts n -> retry.max_attempts n + 1,
 *       MaximumEventAgeInSeconds -> retry.max_event_age_s
 *   GetAccountSettings                        -> the daemon's limits and usage
 *
 * Reserved concurrency equal to the default max_instances reads as "not reserved";
 * every function has a retry policy, so GetFunctionEventInvokeConfig always answers.
 */
#include "fnd/lambda_api.h"

#include "fnd/lambda_body.h"
#include "fnd/runtime.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

cJSON *lambda_concurrency_json(const struct fn_config *c, bool always)
{
    struct fn_config def;
    fn_config_init_defaults(&def);
    cJSON *o = cJSON_CreateObject();
    if (always || c->max_instances != def.max_instances)
        cJSON_AddNumberToObject(o, "ReservedConcurrentExecutions", c->max_instances);
    return o;
}

/* FunctionEventInvokeConfig: the function's async retry policy in Lambda's terms. */
static cJSON *event_config_json(struct daemon *d, const struct fn_version *v)
{
    cJSON *o = cJSON_CreateObject();
    char *arn = runtime_function_arn(d->cfg->region, v->name);
    char *qualified = xasprintf("%s:$LATEST", arn);
    cJSON_AddStringToObject(o, "FunctionArn", qualified);
    free(qualified);
    free(arn);
    cJSON_AddNumberToObject(o, "MaximumRetryAttempts", v->config.retry.max_attempts - 1);
    cJSON_AddNumberToObject(o, "MaximumEventAgeInSeconds", v->config.retry.max_event_age_s);
    cJSON_AddNumberToObject(o, "LastModified", (double)v->modified_ms / 1000.0);
    cJSON *dest = cJSON_AddObjectToObject(o, "DestinationConfig");
    cJSON_AddObjectToObject(dest, "OnSuccess");
    cJSON_AddObjectToObject(dest, "OnFailure");
    return o;
}

/* PutFunctionConcurrency's answer: the reservation in force. */
static cJSON *reserved_json(struct daemon *d, const struct fn_version *v)
{
    (void)d;
    return lambda_concurrency_json(&v->config, true);
}

/* --- concurrency ------------------------------------------------------------------- */

void lambda_on_put_concurrency(struct http_request *req, const struct route_match *m,
                               void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    cJSON *body = lambda_target_and_body(d, req, m->params[0], &t);
    if (body == NULL)
        return;
    cJSON *patch = NULL;
    char err[256];
    int rc = lambda_body_concurrency(body, &patch, err, sizeof(err));
    cJSON_Delete(body);
    if (rc < 0) {
        lambda_error(req, FND_E_INVALID_PARAMETER, "%s", err);
        return;
    }
    lambda_deploy_patch(d, req, t.fn, patch, reserved_json, 200);
}

void lambda_on_get_concurrency(struct http_request *req, const struct route_match *m,
                               void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (!lambda_resolve(d, req, m->params[0], &t))
        return;
    lambda_respond_json(req, 200, lambda_concurrency_json(&t.fn->current->config, false));
}

void lambda_on_delete_concurrency(struct http_request *req, const struct route_match *m,
                                  void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (!lambda_resolve(d, req, m->params[0], &t))
        return;
    struct fn_config def;
    fn_config_init_defaults(&def);
    cJSON *patch = cJSON_CreateObject();
    cJSON_AddNumberToObject(patch, "max_instances", def.max_instances);
    lambda_deploy_patch(d, req, t.fn, patch, NULL, 204);
}

/* --- event invoke config: the async retry policy ----------------------------------- */

/* Put (replace: unset members take the defaults) or Update (merge) the retry policy:
 * MaximumRetryAttempts n -> retry.max_attempts n + 1, MaximumEventAgeInSeconds ->
 * retry.max_event_age_s. */
static void put_event_config(struct http_request *req, struct daemon *d, struct slice name,
                             bool replace)
{
    struct lambda_target t;
    if (!lambda_resolve(d, req, name, &t))
        return;
    if (t.version->published) {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "fnd keeps the event invoke config of $LATEST only");
        return;
    }
    cJSON *body = lambda_json_body(req);
    if (body == NULL)
        return;
    cJSON *patch = NULL;
    char err[256];
    int rc = lambda_body_event_config(body, replace, &patch, err, sizeof(err));
    cJSON_Delete(body);
    if (rc < 0) {
        lambda_error(req, FND_E_INVALID_PARAMETER, "%s", err);
        return;
    }
    lambda_deploy_patch(d, req, t.fn, patch, event_config_json, 200);
}

void lambda_on_put_event_config(struct http_request *req, const struct route_match *m,
                                void *data)
{
    put_event_config(req, data, m->params[0], true);
}

void lambda_on_update_event_config(struct http_request *req, const struct route_match *m,
                                   void *data)
{
    put_event_config(req, data, m->params[0], false);
}

/* The policy in effect; fnd has one for every function (the defaults follow Lambda). */
void lambda_on_get_event_config(struct http_request *req, const struct route_match *m,
                                void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (lambda_resolve(d, req, m->params[0], &t))
        lambda_respond_json(req, 200, event_config_json(d, t.fn->current));
}

void lambda_on_delete_event_config(struct http_request *req, const struct route_match *m,
                                   void *data)
{
    struct daemon *d = data;
    struct lambda_target t;
    if (!lambda_resolve(d, req, m->params[0], &t))
        return;
    /* Deleting is putting an empty config: every member back to its default. */
    cJSON *none = cJSON_CreateObject(), *patch = NULL;
    char err[64];
    int rc = lambda_body_event_config(none, true, &patch, err, sizeof(err));
    cJSON_Delete(none);
    assert(rc == 0); /* an empty body names nothing to refuse */
    (void)rc;
    lambda_deploy_patch(d, req, t.fn, patch, NULL, 204);
}

/* --- account ----------------------------------------------------------------------- */

static void add_code_size(struct function *fn, void *data)
{
    *(uint64_t *)data += fn->current->code_size;
}

void lambda_on_account_settings(struct http_request *req, const struct route_match *m,
                                void *data)
{
    struct daemon *d = data;
    uint64_t total = 0;
    registry_foreach(d->registry, add_code_size, &total);
    cJSON *o = cJSON_CreateObject();
    cJSON *limit = cJSON_AddObjectToObject(o, "AccountLimit");
    cJSON_AddNumberToObject(limit, "CodeSizeUnzipped", (double)d->cfg->max_code_size);
    cJSON_AddNumberToObject(limit, "CodeSizeZipped", (double)d->cfg->max_body);
    cJSON_AddNumberToObject(limit, "ConcurrentExecutions", (double)d->cfg->max_workers);
    cJSON_AddNumberToObject(limit, "UnreservedConcurrentExecutions", (double)d->cfg->max_workers);
    cJSON *usage = cJSON_AddObjectToObject(o, "AccountUsage");
    cJSON_AddNumberToObject(usage, "TotalCodeSize", (double)total);
    cJSON_AddNumberToObject(usage, "FunctionCount", (double)registry_count(d->registry));
    lambda_respond_json(req, 200, o);
}
