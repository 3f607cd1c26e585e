/*
 * Function configurations (include/fnd/fnconfig.h). Parsing, validation and JSON
 * output walk the FN_LIMIT_FIELDS table, so adding a limit is one line in the header.
 * Validation errors always start with the field's name, which the API passes on to
 * the caller verbatim.
 */
#include "fnd/fnconfig.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct limit_field {
    const char *name;
    size_t offset;
    uint32_t def, lo, hi;
};

static const struct limit_field limit_fields[] = {
#define FN_LIMIT_ROW(field, def, lo, hi, help) {#field, offsetof(struct fn_config, field), def, lo, hi},
    FN_LIMIT_FIELDS(FN_LIMIT_ROW)
#undef FN_LIMIT_ROW
};

static const struct limit_field retry_fields[] = {
#define FN_RETRY_ROW(field, def, lo, hi, help) {#field, offsetof(struct fn_retry, field), def, lo, hi},
    FN_RETRY_FIELDS(FN_RETRY_ROW)
#undef FN_RETRY_ROW
};

static const char *const runtime_names[] = {
#define FN_RUNTIME_NAME(id, name) name,
    FN_RUNTIME_MAP(FN_RUNTIME_NAME)
#undef FN_RUNTIME_NAME
};

static const char *const network_names[] = {
#define FN_NETWORK_NAME(id, name) name,
    FN_NETWORK_MAP(FN_NETWORK_NAME)
#undef FN_NETWORK_NAME
};

/* Variables Lambda sets itself; a function may not override them. */
static const char *const reserved_env[] = {"_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
                                           "AWS_REGION", "AWS_DEFAULT_REGION",
                                           "AWS_EXECUTION_ENV"};

static uint32_t *limit_slot(struct fn_config *c, const struct limit_field *f)
{
    return (uint32_t *)((char *)c + f->offset);
}

const char *runtime_name(enum runtime r)
{
    return r < RUNTIME__COUNT ? runtime_names[r] : "?";
}

int runtime_parse(const char *name, enum runtime *out)
{
    for (int r = 0; r < RUNTIME__COUNT; r++) {
        if (strcmp(name, runtime_names[r]) == 0) {
            *out = (enum runtime)r;
            return 0;
        }
    }
    return -EINVAL;
}

bool fn_name_valid(struct slice name)
{
    if (name.len == 0 || name.len > FN_NAME_MAX)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

void fn_config_init_defaults(struct fn_config *c)
{
    memset(c, 0, sizeof(*c));
    c->runtime = RUNTIME_PYTHON3;
    for (size_t i = 0; i < ARRAY_SIZE(limit_fields); i++)
        *limit_slot(c, &limit_fields[i]) = limit_fields[i].def;
    for (size_t i = 0; i < ARRAY_SIZE(retry_fields); i++)
        *(uint32_t *)((char *)&c->retry + retry_fields[i].offset) = retry_fields[i].def;
}

void fn_config_release(struct fn_config *c)
{
    free(c->handler);
    free(c->description);
    free(c->lambda_runtime);
    for (size_t i = 0; i < c->nenv; i++) {
        free(c->env[i].name);
        free(c->env[i].value);
    }
    free(c->env);
    c->handler = NULL;
    c->description = NULL;
    c->lambda_runtime = NULL;
    c->env = NULL;
    c->nenv = 0;
}

void fn_config_copy(struct fn_config *dst, const struct fn_config *src)
{
    *dst = *src;
    dst->handler = src->handler ? xstrdup(src->handler) : NULL;
    dst->description = src->description ? xstrdup(src->description) : NULL;
    dst->lambda_runtime = src->lambda_runtime ? xstrdup(src->lambda_runtime) : NULL;
    dst->env = xcalloc(src->nenv ? src->nenv : 1, sizeof(struct fn_env)); /* never NULL */
    for (size_t i = 0; i < src->nenv; i++) {
        dst->env[i].name = xstrdup(src->env[i].name);
        dst->env[i].value = xstrdup(src->env[i].value);
    }
}

static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* "path/to/module.function": a relative path of plain parts, then an identifier. */
static int validate_handler(const struct fn_config *c, char *err, size_t errsize)
{
    const char *h = c->handler;
    if (c->runtime == RUNTIME_PROVIDED) {
        /* Only the bootstrap reads it (as _HANDLER), in whatever form it likes. */
        for (size_t i = 0; h && h[i]; i++) {
            if (i >= FN_HANDLER_MAX || !isprint((unsigned char)h[i])) {
                snprintf(err, errsize, "handler: at most %d printable characters",
                         FN_HANDLER_MAX);
                return -EINVAL;
            }
        }
        return 0;
    }
    if (h == NULL || *h == '\0') {
        snprintf(err, errsize, "handler: required");
        return -EINVAL;
    }
    size_t len = strlen(h);
    const char *dot = strrchr(h, '.');
    const char *why = NULL;
    if (len > FN_HANDLER_MAX)
        why = "too long";
    else if (dot == NULL || dot == h)
        why = "must be <file>.<function>";
    else if (!is_identifier(dot + 1, strlen(dot + 1)))
        why = "the function part must be an identifier";
    else if (h[0] == '/')
        why = "must be a relative path";
    for (size_t i = 0; why == NULL && i < len; i++)
        if (!isprint((unsigned char)h[i]) || h[i] == ' ' || h[i] == '\\')
            why = "must be printable ASCII without spaces";
    /* Every part of the module path (split on '/' and, for Python, '.') is non-empty
     * and never "..". */
    const char *p = h;
    while (why == NULL && p < dot) {
        const char *end = p;
        while (end < dot && *end != '/' && !(c->runtime == RUNTIME_PYTHON3 && *end == '.'))
            end++;
        if (end == p || (end - p == 2 && p[0] == '.' && p[1] == '.') ||
            (end - p == 1 && p[0] == '.'))
            why = "the file path has an empty, '.' or '..' part";
        p = end + 1;
    }
    if (why == NULL && strstr(h, "..") != NULL)
        why = "the file path has an empty, '.' or '..' part";
    if (why) {
        snprintf(err, errsize, "handler: %s for %s", why, runtime_name(c->runtime));
        return -EINVAL;
    }
    return 0;
}

static int validate_env(const struct fn_config *c, char *err, size_t errsize)
{
    size_t total = 0;
    for (size_t i = 0; i < c->nenv; i++) {
        const char *name = c->env[i].name;
        if (!is_identifier(name, strlen(name))) {
            snprintf(err, errsize, "env: %.64s is not a valid variable name", name);
            return -EINVAL;
        }
        bool reserved = strncmp(name, "AWS_LAMBDA_", 11) == 0 || strncmp(name, "FND_", 4) == 0;
        for (size_t k = 0; k < ARRAY_SIZE(reserved_env); k++)
            reserved = reserved || strcmp(name, reserved_env[k]) == 0;
        if (reserved) {
            snprintf(err, errsize, "env: %.64s is reserved", name);
            return -EINVAL;
        }
        total += strlen(name) + strlen(c->env[i].value);
    }
    if (total > FN_ENV_MAX_BYTES) {
        snprintf(err, errsize, "env: more than %d bytes of names and values", FN_ENV_MAX_BYTES);
        return -EINVAL;
    }
    return 0;
}

int fn_config_validate(const struct fn_config *c, char *err, size_t errsize)
{
    int rc = validate_handler(c, err, errsize);
    if (rc == 0 && c->min_warm > c->max_instances) {
        snprintf(err, errsize, "min_warm: must not exceed max_instances");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = validate_env(c, err, errsize);
    return rc;
}

static int env_cmp(const void *a, const void *b)
{
    return strcmp(((const struct fn_env *)a)->name, ((const struct fn_env *)b)->name);
}

static int parse_env(struct fn_config *out, const cJSON *env, char *err, size_t errsize)
{
    if (!cJSON_IsObject(env)) {
        snprintf(err, errsize, "env: must be an object of strings");
        return -EINVAL;
    }
    size_t n = (size_t)cJSON_GetArraySize(env);
    if (n > FN_ENV_MAX_BYTES) {
        snprintf(err, errsize, "env: too many variables");
        return -EINVAL;
    }
    for (size_t i = 0; i < out->nenv; i++) {
        free(out->env[i].name);
        free(out->env[i].value);
    }
    free(out->env);
    out->env = xcalloc(n ? n : 1, sizeof(struct fn_env)); /* never NULL once parsed */
    out->nenv = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, env)
    {
        if (!cJSON_IsString(item)) {
            snprintf(err, errsize, "env: %.64s must be a string", item->string);
            return -EINVAL;
        }
        out->env[out->nenv].name = xstrdup(item->string);
        out->env[out->nenv].value = xstrdup(item->valuestring);
        out->nenv++;
    }
    if (out->nenv > 1)
        qsort(out->env, out->nenv, sizeof(struct fn_env), env_cmp);
    for (size_t i = 1; i < out->nenv; i++) {
        if (strcmp(out->env[i - 1].name, out->env[i].name) == 0) {
            snprintf(err, errsize, "env: %.64s appears twice", out->env[i].name);
            return -EINVAL;
        }
    }
    return 0;
}

/* A string member into *slot (replacing what it held). The handler's own rules are
 * checked later by validate_handler; max only bounds what is copied. */
static int parse_string(char **slot, const cJSON *item, size_t max, char *err, size_t errsize)
{
    if (!cJSON_IsString(item) || strlen(item->valuestring) > max) {
        snprintf(err, errsize, "%s: must be a string of at most %zu bytes", item->string, max);
        return -EINVAL;
    }
    free(*slot);
    *slot = xstrdup(item->valuestring);
    return 0;
}

/* Sets the table's field named by item, if any: 1 when set, 0 when the name is not in
 * the table, -EINVAL when the value is out of bounds (prefix names the object). */
static int parse_field(const struct limit_field *fields, size_t n, void *base, const cJSON *item,
                       const char *prefix, char *err, size_t errsize)
{
    for (size_t i = 0; i < n; i++) {
        const struct limit_field *f = &fields[i];
        if (strcmp(item->string, f->name) != 0)
            continue;
        double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
        if (!(v >= f->lo && v <= f->hi) || floor(v) != v) {
            snprintf(err, errsize, "%s%s: must be an integer between %u and %u", prefix, f->name,
                     f->lo, f->hi);
            return -EINVAL;
        }
        *(uint32_t *)((char *)base + f->offset) = (uint32_t)v;
        return 1;
    }
    return 0;
}

static int parse_retry(struct fn_config *out, const cJSON *retry, char *err, size_t errsize)
{
    if (!cJSON_IsObject(retry)) {
        snprintf(err, errsize, "retry: must be an object");
        return -EINVAL;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, retry)
    {
        int rc = parse_field(retry_fields, ARRAY_SIZE(retry_fields), &out->retry, item, "retry.",
                             err, errsize);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            snprintf(err, errsize, "retry.%.64s: unknown field", item->string);
            return -EINVAL;
        }
    }
    if (out->retry.base_delay_ms > out->retry.max_delay_ms) {
        snprintf(err, errsize, "retry.base_delay_ms: must not exceed retry.max_delay_ms");
        return -EINVAL;
    }
    return 0;
}

static int parse_member(struct fn_config *out, const cJSON *item, char *err, size_t errsize)
{
    const char *key = item->string;
    if (strcmp(key, "name") == 0 || strcmp(key, "code") == 0)
        return 0;
    if (strcmp(key, "runtime") == 0) {
        if (!cJSON_IsString(item) || runtime_parse(item->valuestring, &out->runtime) < 0) {
            snprintf(err, errsize, "runtime: must be one of python3, nodejs, native, provided");
            return -EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "network") == 0) {
        for (int n = 0; cJSON_IsString(item) && n < NETWORK__COUNT; n++) {
            if (strcmp(item->valuestring, network_names[n]) == 0) {
                out->network = (enum fn_network)n;
                return 0;
            }
        }
        snprintf(err, errsize, "network: must be host or none");
        return -EINVAL;
    }
    if (strcmp(key, "handler") == 0)
        return parse_string(&out->handler, item, FN_HANDLER_MAX * 4, err, errsize);
    if (strcmp(key, "description") == 0)
        return parse_string(&out->description, item, FN_DESCRIPTION_MAX, err, errsize);
    if (strcmp(key, "lambda_runtime") == 0)
        return parse_string(&out->lambda_runtime, item, FN_LAMBDA_RUNTIME_MAX, err, errsize);
    if (strcmp(key, "env") == 0)
        return parse_env(out, item, err, errsize);
    if (strcmp(key, "retry") == 0)
        return parse_retry(out, item, err, errsize);
    int rc = parse_field(limit_fields, ARRAY_SIZE(limit_fields), out, item, "", err, errsize);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    snprintf(err, errsize, "%.64s: unknown field", key);
    return -EINVAL;
}

int fn_config_parse(struct fn_config *out, const cJSON *json, const struct fn_config *base,
                    char *err, size_t errsize)
{
    if (!cJSON_IsObject(json)) {
        snprintf(err, errsize, "configuration: must be a JSON object");
        return -EINVAL;
    }
    if (base)
        fn_config_copy(out, base);
    else
        fn_config_init_defaults(out);
    const cJSON *item;
    int rc = 0;
    cJSON_ArrayForEach(item, json)
    {
        rc = parse_member(out, item, err, errsize);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = fn_config_validate(out, err, errsize);
    if (rc < 0)
        fn_config_release(out);
    return rc;
}

void fn_config_to_json(const struct fn_config *c, cJSON *obj)
{
    cJSON_AddStringToObject(obj, "runtime", runtime_name(c->runtime));
    if (c->handler) /* absent for a custom runtime that takes none: the bootstrap decides */
        cJSON_AddStringToObject(obj, "handler", c->handler);
    cJSON_AddStringToObject(obj, "network", network_names[c->network]);
    if (c->description)
        cJSON_AddStringToObject(obj, "description", c->description);
    if (c->lambda_runtime)
        cJSON_AddStringToObject(obj, "lambda_runtime", c->lambda_runtime);
    for (size_t i = 0; i < ARRAY_SIZE(limit_fields); i++)
        cJSON_AddNumberToObject(obj, limit_fields[i].name,
                                *limit_slot((struct fn_config *)c, &limit_fields[i]));
    cJSON *env = cJSON_AddObjectToObject(obj, "env");
    for (size_t i = 0; i < c->nenv; i++)
        cJSON_AddStringToObject(env, c->env[i].name, c->env[i].value);
    cJSON *retry = cJSON_AddObjectToObject(obj, "retry");
    for (size_t i = 0; i < ARRAY_SIZE(retry_fields); i++)
        cJSON_AddNumberToObject(retry, retry_fields[i].name,
                                *(const uint32_t *)((const char *)&c->retry +
                                                    retry_fields[i].offset));
}
