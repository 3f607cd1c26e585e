/*
 * Fuzz driver for the JSON body of a native-API deploy (PUT /v1/functions/{name}):
 * cJSON, fn_config_parse() and its validation, and the "code" member's reader
 * deploy_spec_parse_code() with its base64 decoding.
 *
 * Properties checked: a refusal always names its reason; an accepted configuration
 * validates, survives fn_config_to_json() and parsing back unchanged (what the
 * registry writes to function.json is what it reads at the next start), and applying
 * the same body over it as an update changes nothing; a decoded zip never passes its
 * limit and a folder is always absolute.
 */
#include "fuzz.h"

#include "fnd/registry.h"

#include <errno.h>
#include <string.h>

#define MAX_ZIP 4096

static bool same_config(const struct fn_config *a, const struct fn_config *b)
{
    if (a->runtime != b->runtime || a->network != b->network || a->nenv != b->nenv)
        return false;
    if ((a->handler == NULL) != (b->handler == NULL) ||
        (a->handler && strcmp(a->handler, b->handler) != 0))
        return false;
#define SAME_LIMIT(field, def, lo, hi, help)                                                   \
    if (a->field != b->field)                                                                  \
        return false;
    FN_LIMIT_FIELDS(SAME_LIMIT)
#undef SAME_LIMIT
    for (size_t i = 0; i < a->nenv; i++)
        if (strcmp(a->env[i].name, b->env[i].name) != 0 ||
            strcmp(a->env[i].value, b->env[i].value) != 0)
            return false;
    return true;
}

static void check_config(const cJSON *json)
{
    struct fn_config c;
    char err[256] = "";
    if (fn_config_parse(&c, json, NULL, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(fn_config_validate(&c, err, sizeof(err)) == 0);

    cJSON *saved = cJSON_CreateObject();
    fn_config_to_json(&c, saved);
    char *text = cJSON_PrintUnformatted(saved);
    cJSON_Delete(saved);
    cJSON *loaded = cJSON_Parse(text);
    cJSON_free(text);
    struct fn_config back;
    int rc = fn_config_parse(&back, loaded, NULL, err, sizeof(err));
    cJSON_Delete(loaded);
    if (rc < 0)
        fprintf(stderr, "the saved configuration does not load: %s\n", err);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(same_config(&c, &back));

    struct fn_config updated;
    FUZZ_CHECK(fn_config_parse(&updated, json, &back, err, sizeof(err)) == 0);
    FUZZ_CHECK(same_config(&c, &updated));

    struct fn_config copy;
    fn_config_copy(&copy, &updated);
    FUZZ_CHECK(same_config(&copy, &c));
    fn_config_release(&copy);
    fn_config_release(&updated);
    fn_config_release(&back);
    fn_config_release(&c);
}

static void check_code(const cJSON *code)
{
    struct deploy_spec spec;
    memset(&spec, 0, sizeof(spec));
    char err[256] = "";
    if (deploy_spec_parse_code(&spec, code, MAX_ZIP, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    if (spec.code == DEPLOY_CODE_ZIP) {
        FUZZ_CHECK(spec.zip.len <= MAX_ZIP);
        buf_release(&spec.zip);
    } else {
        FUZZ_CHECK(spec.code == DEPLOY_CODE_DIR && spec.dir && spec.dir[0] == '/');
        free(spec.dir);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *json = cJSON_ParseWithLength((const char *)data, size);
    if (json == NULL)
        return 0;
    check_config(json);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(json, "code");
    if (code)
        check_code(code);
    cJSON_Delete(json);
    return 0;
}
