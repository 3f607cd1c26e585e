/*
 * A function's configuration: runtime, handler, limits and environment, with the
 * JSON form used by the native API and the registry's files. Every numeric field is
 * declared once in FN_LIMIT_FIELDS (name, default, bounds, help); parsing,
 * validation, serialisation and the docs come from that table.
 */
#ifndef FND_FNCONFIG_H
#define FND_FNCONFIG_H

#include "fnd/common.h"

#include <cjson/cJSON.h>

#define FN_NAME_MAX 64
#define FN_HANDLER_MAX 128
#define FN_ENV_MAX_BYTES 4096 /* Lambda's limit on all variables together */

/* runtime id, name in the API */
#define FN_RUNTIME_MAP(X)                                                                      \
    X(PYTHON3, "python3")                                                                      \
    X(NODEJS, "nodejs")                                                                        \
    X(NATIVE, "native")

enum runtime {
#define FN_RUNTIME_ENUM(id, name) RUNTIME_##id,
    FN_RUNTIME_MAP(FN_RUNTIME_ENUM)
#undef FN_RUNTIME_ENUM
        RUNTIME__COUNT
};

/* field, default, min, max, help */
#define FN_LIMIT_FIELDS(X)                                                                     \
    X(memory_mb, 128, 64, 10240, "memory limit of each worker, in MiB")                       \
    X(timeout_ms, 3000, 1, 900000, "longest run of one invocation, in ms")                     \
    X(max_instances, 10, 1, 1000, "most workers at once (Lambda's reserved concurrency)")      \
    X(min_warm, 0, 0, 1000, "workers kept started even when idle (provisioned concurrency)")   \
    X(idle_timeout_ms, 60000, 100, 86400000, "an idle worker is stopped after this many ms")   \
    X(max_queue, 1000, 0, 100000, "invocations that may wait for a worker before 429")        \
    X(max_queue_wait_ms, 30000, 1, 900000, "longest wait for a worker before 429")

/* The async retry policy, the object "retry" (docs/eventlog.md); defaults follow Lambda:
 * two retries, a minute then two minutes apart, events kept six hours.
 * field, default, min, max, help */
#define FN_RETRY_FIELDS(X)                                                                     \
    X(max_attempts, 3, 1, 100, "runs of an async invocation before it becomes a dead letter")  \
    X(base_delay_ms, 60000, 1, 3600000, "wait before the first retry; doubles on each retry")  \
    X(max_delay_ms, 120000, 1, 86400000, "longest wait between two attempts")                  \
    X(max_event_age_s, 21600, 1, 21600, "an event older than this is not retried")

struct fn_retry {
#define FN_RETRY_MEMBER(field, def, lo, hi, help) uint32_t field;
    FN_RETRY_FIELDS(FN_RETRY_MEMBER)
#undef FN_RETRY_MEMBER
};

struct fn_env {
    char *name;  /* owned */
    char *value; /* owned */
};

/* network id, name in the API */
#define FN_NETWORK_MAP(X)                                                                      \
    X(HOST, "host") /* the host's network, as Lambda functions have egress */                  \
    X(NONE, "none") /* a network namespace of its own with only loopback */

enum fn_network {
#define FN_NETWORK_ENUM(id, name) NETWORK_##id,
    FN_NETWORK_MAP(FN_NETWORK_ENUM)
#undef FN_NETWORK_ENUM
        NETWORK__COUNT
};

struct fn_config {
    enum runtime runtime;
    enum fn_network network;
    char *handler; /* owned */
#define FN_LIMIT_MEMBER(field, def, lo, hi, help) uint32_t field;
    FN_LIMIT_FIELDS(FN_LIMIT_MEMBER)
#undef FN_LIMIT_MEMBER
    struct fn_env *env; /* owned array of nenv, sorted by name */
    size_t nenv;
    struct fn_retry retry;
};

/* Fills c with the defaults (runtime python3, no handler, no env). */
void fn_config_init_defaults(struct fn_config *c);
/* Frees what c owns; c may be reused after fn_config_init_defaults. */
void fn_config_release(struct fn_config *c);
/* Deep copy. */
void fn_config_copy(struct fn_config *dst, const struct fn_config *src);

/* Parses and validates a JSON object into out. Members absent from json take their
 * value from base (a copy), or the defaults when base is NULL. The members "name" and
 * "code" are skipped (the API layer owns them); any other unknown member is an error.
 * Returns 0, or -EINVAL with err naming the field: "memory_mb: must be an integer
 * between 64 and 10240". On error out holds nothing to release. */
int fn_config_parse(struct fn_config *out, const cJSON *json, const struct fn_config *base,
                    char *err, size_t errsize);
/* Checks cross-field rules (handler syntax for the runtime, min_warm <= max_instances,
 * env names and size). 0 or -EINVAL with err naming the field. fn_config_parse calls it. */
int fn_config_validate(const struct fn_config *c, char *err, size_t errsize);
/* Adds the configuration's members ("runtime", "handler", the limits, "env",
 * "retry") to obj. */
void fn_config_to_json(const struct fn_config *c, cJSON *obj);

/* Function names match [A-Za-z0-9_-]{1,64}. */
bool fn_name_valid(struct slice name);
/* The runtime's API name, and the reverse lookup (-EINVAL when unknown). */
const char *runtime_name(enum runtime r);
int runtime_parse(const char *name, enum runtime *out);

#endif
