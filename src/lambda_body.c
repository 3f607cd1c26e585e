/*
 * Lambda request bodies into native configuration patches (include/fnd/lambda_body.h).
 *
 * Each function reads one body shape and builds the native object fn_config_parse()
 * takes, checking only what the Lambda API states beyond the native rules (Timeout in
 * whole seconds of 1..900, retry attempts 0..2, event age 60..21600 s, Zip packages
 * only, no layers or destinations); fn_config_parse() then validates the result as
 * it does a native deploy, so both APIs enforce the same limits. Nothing here touches
 * the registry or answers a request: a refusal is -EINVAL with the reason in err,
 * in Lambda's wording, for the caller to send as InvalidParameterValueException.
 * Every body is first checked for a repeated member (lambda_body_check_members), so
 * that the readers, which take members in order or by name, never have to choose.
 */
#include "fnd/lambda_body.h"

#include "fnd/codec.h"
#include "fnd/common.h"
#include "fnd/fnconfig.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int lambda_body_check_members(const cJSON *body, char *err, size_t errsize)
{
    /* Sorted names, neighbours compared: a body of n members costs n log n, where
     * comparing each pair would let a large body of many members cost n^2. */
    size_t n = 0, i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, body)
        n += item->string != NULL;
    if (n < 2)
        return 0;
    const char **names = xcalloc(n, sizeof(*names));
    cJSON_ArrayForEach(item, body)
        if (item->string)
            names[i++] = item->string;
    qsort(names, n, sizeof(*names), name_cmp);
    int rc = 0;
    for (i = 1; i < n && rc == 0; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            snprintf(err, errsize, "The request body repeats the member %.64s", names[i]);
            rc = -EINVAL;
        }
    }
    free(names);
    return rc;
}

/* Maps a Lambda runtime identifier to an fnd runtime name; fnd's own names pass. */
static const char *map_runtime(const char *id)
{
    static const char *const native[] = {"python3", "nodejs", "native", "provided"};
    for (size_t i = 0; i < ARRAY_SIZE(native); i++)
        if (strcmp(id, native[i]) == 0)
            return native[i];
    if (strncmp(id, "python3.", 8) == 0)
        return "python3";
    size_t len = strlen(id);
    if (strncmp(id, "nodejs", 6) == 0 && len > 8 && strcmp(id + len - 2, ".x") == 0)
        return "nodejs";
    if (strcmp(id, "provided.al2") == 0 || strcmp(id, "provided.al2023") == 0)
        return "provided";
    return NULL;
}

int lambda_body_config(const cJSON *body, cJSON *patch, char *err, size_t errsize)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, body)
    {
        const char *k = item->string;
        if (k == NULL)
            continue; /* an array body has unnamed items: nothing to take */
        if (strcmp(k, "Runtime") == 0) {
            const char *rt = cJSON_IsString(item) ? map_runtime(item->valuestring) : NULL;
            if (rt == NULL) {
                snprintf(err, errsize, "Value %.40s at 'runtime' failed to satisfy constraint: "
                         "fnd runs python3.x, nodejs*.x, provided, provided.al2 and "
                         "provided.al2023", cJSON_IsString(item) ? item->valuestring : "?");
                return -EINVAL;
            }
            cJSON_AddStringToObject(patch, "runtime", rt);
            cJSON_AddStringToObject(patch, "lambda_runtime", item->valuestring);
        } else if (strcmp(k, "Handler") == 0 || strcmp(k, "Description") == 0) {
            cJSON_AddItemToObject(patch, k[0] == 'H' ? "handler" : "description",
                                  cJSON_Duplicate(item, true));
        } else if (strcmp(k, "MemorySize") == 0) {
            cJSON_AddItemToObject(patch, "memory_mb", cJSON_Duplicate(item, true));
        } else if (strcmp(k, "Timeout") == 0) {
            if (!cJSON_IsNumber(item) || item->valuedouble < 1 || item->valuedouble > 900 ||
                floor(item->valuedouble) != item->valuedouble) {
                snprintf(err, errsize, "Timeout: must be an integer between 1 and 900");
                return -EINVAL;
            }
            cJSON_AddNumberToObject(patch, "timeout_ms", item->valuedouble * 1000);
        } else if (strcmp(k, "Environment") == 0) {
            const cJSON *vars = cJSON_GetObjectItemCaseSensitive(item, "Variables");
            cJSON_AddItemToObject(patch, "env", vars ? cJSON_Duplicate(vars, true)
                                                     : cJSON_CreateObject());
        } else if (strcmp(k, "PackageType") == 0 &&
                   !(cJSON_IsString(item) && strcmp(item->valuestring, "Zip") == 0)) {
            snprintf(err, errsize, "PackageType: fnd runs Zip packages only");
            return -EINVAL;
        } else if (strcmp(k, "Layers") == 0 && cJSON_GetArraySize(item) > 0) {
            snprintf(err, errsize, "Layers: not supported by fnd");
            return -EINVAL;
        }
    }
    return 0;
}

int lambda_body_zip(const cJSON *code, struct buf *zip, size_t max, char *err,
                    size_t errsize)
{
    buf_init(zip, max);
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(code, "ZipFile");
    if (!cJSON_IsString(b64)) {
        snprintf(err, errsize, "Code: fnd takes ZipFile only (no S3 or image)");
        return -EINVAL;
    }
    if (base64_decode(zip, b64->valuestring, strlen(b64->valuestring)) < 0) {
        buf_release(zip);
        snprintf(err, errsize, "Code.ZipFile: must be base64 of a zip archive");
        return -EINVAL;
    }
    return 0;
}

int lambda_body_concurrency(const cJSON *body, cJSON **patch, char *err, size_t errsize)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, "ReservedConcurrentExecutions");
    if (!cJSON_IsNumber(n) || n->valuedouble < 1) {
        /* 0 would throttle every invocation; fnd's max_instances is at least 1. */
        snprintf(err, errsize, "ReservedConcurrentExecutions: must be an integer of at least 1");
        return -EINVAL;
    }
    *patch = cJSON_CreateObject();
    cJSON_AddNumberToObject(*patch, "max_instances", n->valuedouble);
    return 0;
}

int lambda_body_event_config(const cJSON *body, bool replace, cJSON **patch, char *err,
                             size_t errsize)
{
    const cJSON *retries = cJSON_GetObjectItemCaseSensitive(body, "MaximumRetryAttempts");
    const cJSON *age = cJSON_GetObjectItemCaseSensitive(body, "MaximumEventAgeInSeconds");
    const cJSON *dest = cJSON_GetObjectItemCaseSensitive(body, "DestinationConfig");
    const char *why = NULL;
    if (retries && !(cJSON_IsNumber(retries) && retries->valuedouble >= 0 &&
                     retries->valuedouble <= 2))
        why = "MaximumRetryAttempts: must be 0, 1 or 2";
    else if (age && !(cJSON_IsNumber(age) && age->valuedouble >= 60 &&
                      age->valuedouble <= 21600))
        why = "MaximumEventAgeInSeconds: must be between 60 and 21600";
    else if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dest, "OnSuccess")) > 0 ||
             cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dest, "OnFailure")) > 0)
        why = "DestinationConfig: destinations are not supported by fnd (failed events stay "
              "in its dead letters)";
    if (why) {
        snprintf(err, errsize, "%s", why);
        return -EINVAL;
    }
    struct fn_config def;
    fn_config_init_defaults(&def);
    *patch = cJSON_CreateObject();
    cJSON *retry = cJSON_AddObjectToObject(*patch, "retry");
    /* Put replaces the whole policy: what is not given takes its default. */
    if (retries || replace)
        cJSON_AddNumberToObject(retry, "max_attempts",
                                retries ? retries->valuedouble + 1 : def.retry.max_attempts);
    if (age || replace)
        cJSON_AddNumberToObject(retry, "max_event_age_s",
                                age ? age->valuedouble : def.retry.max_event_age_s);
    fn_config_release(&def);
    return 0;
}
