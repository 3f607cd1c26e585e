/*
 * Fuzz driver for the JSON bodies of the Lambda API: cJSON, then lambda_body.c's
 * readers (the configuration members of CreateFunction and UpdateFunctionConfiguration,
 * Code.ZipFile of UpdateFunctionCode, PutFunctionConcurrency, Put and Update
 * FunctionEventInvokeConfig), then fn_config_parse() as the handlers apply the patch:
 * from the defaults for a create, over an existing configuration for the others.
 *
 * Input: byte 0 picks the operation, the rest is the body. Properties: a body that
 * repeats a top-level member is refused, naming it, and any other passes that check
 * (as lambda_json_body runs it before any reader); a refusal, by the reader or by
 * fn_config_parse, names its reason; an accepted configuration
 * validates; what the body said is what the configuration holds (Timeout seconds as
 * milliseconds, ReservedConcurrentExecutions as max_instances, MaximumRetryAttempts n
 * as n + 1 attempts, MaximumEventAgeInSeconds); an update leaves untouched what its
 * body does not name; a decoded zip is within its limit.
 */
#include "fuzz.h"

#include "fnd/fnconfig.h"
#include "fnd/lambda_body.h"

#include <errno.h>
#include <string.h>

#define MAX_ZIP 4096

enum op { OP_CREATE, OP_UPDATE_CONFIG, OP_UPDATE_CODE, OP_CONCURRENCY, OP_PUT_EVENT,
          OP_UPDATE_EVENT, OP__COUNT };

static struct fn_config base; /* an existing function, as updates find it */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cJSON *json = cJSON_Parse("{\"runtime\":\"nodejs\",\"handler\":\"index.handler\","
                              "\"timeout_ms\":7000,\"max_instances\":3,"
                              "\"retry\":{\"max_attempts\":2,\"max_event_age_s\":600}}");
    char err[256];
    FUZZ_CHECK(fn_config_parse(&base, json, NULL, err, sizeof(err)) == 0);
    cJSON_Delete(json);
    return 0;
}

/* Applies patch as the handler does; the configuration, or false after a refusal. */
static bool apply(const cJSON *patch, bool create, struct fn_config *out)
{
    char err[256] = "";
    if (fn_config_parse(out, patch, create ? NULL : &base, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        return false;
    }
    FUZZ_CHECK(fn_config_validate(out, err, sizeof(err)) == 0);
    return true;
}

/* The member of that name: once lambda_body_check_members passed, there is one. */
static const cJSON *member(const cJSON *body, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(body, name);
}

/* The smallest name (strcmp order) of the members body repeats, or NULL: each pair
 * compared, independently of the sorting lambda_body_check_members does. */
static const char *smallest_repeated(const cJSON *body)
{
    const char *found = NULL;
    for (const cJSON *a = body->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0 &&
                (found == NULL || strcmp(a->string, found) < 0))
                found = a->string;
    return found;
}

static void check_config_body(const cJSON *body, bool create)
{
    cJSON *patch = cJSON_CreateObject();
    char err[256] = "";
    struct fn_config c;
    if (lambda_body_config(body, patch, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
    } else if (apply(patch, create, &c)) {
        const cJSON *t = member(body, "Timeout");
        if (t)
            FUZZ_CHECK(c.timeout_ms == (uint32_t)(t->valuedouble * 1000));
        else if (!create)
            FUZZ_CHECK(c.timeout_ms == base.timeout_ms);
        if (!create && !member(body, "Runtime"))
            FUZZ_CHECK(c.runtime == base.runtime);
        if (!create)
            FUZZ_CHECK(c.max_instances == base.max_instances &&
                       c.retry.max_attempts == base.retry.max_attempts);
        fn_config_release(&c);
    }
    cJSON_Delete(patch);
}

static void check_patch(int rc, cJSON *patch, const char *err, const cJSON *body, enum op op)
{
    if (rc < 0) {
        FUZZ_CHECK(err[0] != '\0' && patch == NULL);
        return;
    }
    struct fn_config c;
    if (apply(patch, false, &c)) {
        const cJSON *retries = cJSON_GetObjectItemCaseSensitive(body, "MaximumRetryAttempts");
        const cJSON *age = cJSON_GetObjectItemCaseSensitive(body, "MaximumEventAgeInSeconds");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, "ReservedConcurrentExecutions");
        if (op == OP_CONCURRENCY)
            FUZZ_CHECK(c.max_instances == (uint32_t)n->valuedouble);
        if (op == OP_PUT_EVENT || op == OP_UPDATE_EVENT) {
            FUZZ_CHECK(c.max_instances == base.max_instances);
            if (retries)
                FUZZ_CHECK(c.retry.max_attempts == (uint32_t)(retries->valuedouble + 1));
            else if (op == OP_UPDATE_EVENT)
                FUZZ_CHECK(c.retry.max_attempts == base.retry.max_attempts);
            if (age)
                FUZZ_CHECK(c.retry.max_event_age_s == (uint32_t)age->valuedouble);
            else if (op == OP_UPDATE_EVENT)
                FUZZ_CHECK(c.retry.max_event_age_s == base.retry.max_event_age_s);
        }
        fn_config_release(&c);
    }
    cJSON_Delete(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum op op = (enum op)(data[0] % OP__COUNT);
    cJSON *body = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (!cJSON_IsObject(body)) { /* the handlers answer 400 before any reader runs */
        cJSON_Delete(body);
        return 0;
    }
    char err[256] = "";
    const char *repeated = smallest_repeated(body);
    if (lambda_body_check_members(body, err, sizeof(err)) < 0) {
        FUZZ_CHECK(repeated != NULL && err[0] != '\0');
        if (strlen(repeated) <= 64)
            FUZZ_CHECK(strstr(err, repeated) != NULL);
        cJSON_Delete(body); /* the handlers answer 400 before any reader runs */
        return 0;
    }
    FUZZ_CHECK(repeated == NULL);
    cJSON *patch = NULL;
    switch (op) {
    case OP_CREATE:
    case OP_UPDATE_CONFIG:
        check_config_body(body, op == OP_CREATE);
        break;
    case OP_UPDATE_CODE: {
        struct buf zip;
        if (lambda_body_zip(body, &zip, MAX_ZIP, err, sizeof(err)) < 0) {
            FUZZ_CHECK(err[0] != '\0' && zip.data == NULL);
        } else {
            FUZZ_CHECK(zip.len <= MAX_ZIP);
            buf_release(&zip);
        }
        break;
    }
    case OP_CONCURRENCY: {
        int rc = lambda_body_concurrency(body, &patch, err, sizeof(err)); /* before patch is read */
        check_patch(rc, patch, err, body, op);
        break;
    }
    case OP_PUT_EVENT:
    case OP_UPDATE_EVENT: {
        int rc = lambda_body_event_config(body, op == OP_PUT_EVENT, &patch, err, sizeof(err));
        check_patch(rc, patch, err, body, op);
        break;
    }
    case OP__COUNT:
        break;
    }
    cJSON_Delete(body);
    return 0;
}
