/*
 * The AWS Lambda API on the gateway's port (docs/lambda.md): the control plane
 * (/2015-03-31/functions and friends, lambda_api.c), the per-function settings
 * (concurrency, event invoke config: lambda_settings.c) and Invoke (lambda_invoke.c), in
 * Lambda's JSON shapes and with its error types, so that the AWS CLI and SDKs work
 * unchanged with --endpoint-url. Lambda functions and native /v1 functions are the same
 * registry entries.
 *
 * Requests may be SigV4-signed, as the SDKs sign them; signatures are not checked
 * (a local emulator's clients carry dummy credentials).
 */
#ifndef FND_LAMBDA_API_H
#define FND_LAMBDA_API_H

#include "fnd/daemon.h"
#include "fnd/router.h"

#define LAMBDA_SYNC_PAYLOAD_MAX (6 * 1024 * 1024) /* RequestResponse and DryRun */
#define LAMBDA_ASYNC_PAYLOAD_MAX (256 * 1024)     /* Event */
#define LAMBDA_QUALIFIER_MAX 128

/* Answers req when its path belongs to the Lambda API (a /YYYY-MM-DD/ API version
 * prefix) and returns true; returns false, without answering, for any other path. */
bool lambda_api_handle(struct http_request *req, struct daemon *d);

/* --- shared by lambda_api.c and lambda_invoke.c ------------------------------------ */

/* A function named in a path: name, partial ARN or ARN, with an optional qualifier
 * (from the name or from ?Qualifier=). */
struct lambda_target {
    struct function *fn;
    struct fn_version *version; /* fn->current, or a published version */
    char qualifier[LAMBDA_QUALIFIER_MAX + 1]; /* "" when none was given */
};

/* Resolves the {name} capture and the query's Qualifier. Returns true with *t filled,
 * or answers req with ResourceNotFoundException / InvalidParameterValueException and
 * returns false. */
bool lambda_resolve(struct daemon *d, struct http_request *req, struct slice name,
                    struct lambda_target *t);
/* Answers with a Lambda error: x-amzn-ErrorType, {"Type", "message"}, kind's status. */
void lambda_error(struct http_request *req, enum fnd_error kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "$LATEST" or the published number, into out (24 bytes). */
void lambda_version_name(const struct fn_version *v, char out[24]);

/* POST /2015-03-31/functions/{name}/invocations (lambda_invoke.c). */
void lambda_invoke(struct http_request *req, struct daemon *d, const struct lambda_target *t);

/* Answers with a JSON body (taken) and x-amzn-RequestId; an empty answer of status. */
void lambda_respond_json(struct http_request *req, int status, cJSON *json);
void lambda_respond_empty(struct http_request *req, int status);
/* The request's JSON object body ("{}" when empty), or NULL after answering 400. */
cJSON *lambda_json_body(struct http_request *req);
/* lambda_resolve, then lambda_json_body: the body, or NULL after answering. */
cJSON *lambda_target_and_body(struct daemon *d, struct http_request *req, struct slice name,
                              struct lambda_target *t);

/* What a deploy answers with, built from the new version. */
typedef cJSON *lambda_shape_fn(struct daemon *d, const struct fn_version *v);
/* Deploys fn's current code with its configuration changed by the native members in
 * patch (taken); answers ok_status with shape(new version), or empty when shape is
 * NULL, or the deploy's error. */
void lambda_deploy_patch(struct daemon *d, struct http_request *req, struct function *fn,
                         cJSON *patch, lambda_shape_fn *shape, int ok_status);
/* {"ReservedConcurrentExecutions": max_instances}, or {} when c reserves nothing
 * (max_instances at its default) unless always (lambda_settings.c). */
cJSON *lambda_concurrency_json(const struct fn_config *c, bool always);

/* The settings operations (lambda_settings.c), rows of the Lambda route table. */
route_handler_fn lambda_on_put_concurrency, lambda_on_get_concurrency,
    lambda_on_delete_concurrency, lambda_on_put_event_config, lambda_on_update_event_config,
    lambda_on_get_event_config, lambda_on_delete_event_config, lambda_on_account_settings;

#endif
