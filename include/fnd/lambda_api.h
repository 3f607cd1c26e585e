/*
 * The AWS Lambda API on the gateway's port (docs/lambda.md): the control plane
 * (/2015-03-31/functions and friends, lambda_api.c) and Invoke (lambda_invoke.c), in
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

#endif
