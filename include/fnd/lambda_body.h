/*
 * Lambda API request bodies into native configuration patches (lambda_body.c): the
 * parsing half of CreateFunction, UpdateFunctionConfiguration, UpdateFunctionCode,
 * PutFunctionConcurrency and Put/UpdateFunctionEventInvokeConfig, apart from the
 * daemon and the HTTP request so that it can be fuzzed. A patch is a native
 * configuration object for fn_config_parse(), which enforces the rules both APIs share.
 */
#ifndef FND_LAMBDA_BODY_H
#define FND_LAMBDA_BODY_H

#include "fnd/buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Refuses a body that repeats a member name at its top level (a client's mistake that
 * the readers below would settle differently: in order, or the first by name). 0, or
 * -EINVAL with err naming the member. */
int lambda_body_check_members(const cJSON *body, char *err, size_t errsize);
/* Adds to patch the native members for the Lambda configuration members of body
 * (Runtime, Handler, Timeout, ...); others (Role, Tags, ...) are ignored. 0, or
 * -EINVAL with err saying why. */
int lambda_body_config(const cJSON *body, cJSON *patch, char *err, size_t errsize);
/* Code.ZipFile (base64) decoded into zip (initialised here, bounded by max). 0, or
 * -EINVAL with err set and zip released. */
int lambda_body_zip(const cJSON *code, struct buf *zip, size_t max, char *err,
                    size_t errsize);
/* ReservedConcurrentExecutions as a patch (*patch, the caller's). 0 or -EINVAL. */
int lambda_body_concurrency(const cJSON *body, cJSON **patch, char *err, size_t errsize);
/* The event invoke config as a retry-policy patch: replace (Put) sets every member,
 * unset ones to their defaults; otherwise (Update) only those given. 0 or -EINVAL. */
int lambda_body_event_config(const cJSON *body, bool replace, cJSON **patch, char *err,
                             size_t errsize);

#endif
