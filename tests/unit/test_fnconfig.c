/* Unit tests for fnconfig.c: defaults, bounds from the table, types, handler syntax,
 * env rules, inheritance and the JSON round trip. */
#include "fnd/fnconfig.h"

#include "test.h"

#include <errno.h>

/* Parses text on top of the defaults; returns the status and leaves err filled. */
static int parse_text(struct fn_config *c, const char *text, char *err, size_t errsize)
{
    cJSON *j = cJSON_Parse(text);
    ASSERT(j != NULL);
    int rc = fn_config_parse(c, j, NULL, err, errsize);
    cJSON_Delete(j);
    return rc;
}

static int try_field(const char *field, const char *value, char *err)
{
    char text[8192];
    snprintf(text, sizeof(text), "{\"runtime\":\"python3\",\"handler\":\"app.h\",\"%s\":%s}",
             field, value);
    struct fn_config c;
    int rc = parse_text(&c, text, err, 256);
    if (rc == 0)
        fn_config_release(&c);
    return rc;
}

TEST(defaults)
{
    struct fn_config c;
    fn_config_init_defaults(&c);
    ASSERT_EQ(c.runtime, RUNTIME_PYTHON3);
    ASSERT_EQ(c.memory_mb, 128);
    ASSERT_EQ(c.timeout_ms, 3000);
    ASSERT_EQ(c.max_instances, 10);
    ASSERT_EQ(c.min_warm, 0);
    ASSERT_EQ(c.max_queue, 1000);
    ASSERT(c.handler == NULL && c.nenv == 0);
}

TEST(retry_policy)
{
    struct fn_config c;
    fn_config_init_defaults(&c);
    /* Lambda's defaults: three attempts, a minute then two apart, six hours of age. */
    ASSERT_EQ(c.retry.max_attempts, 3);
    ASSERT_EQ(c.retry.base_delay_ms, 60000);
    ASSERT_EQ(c.retry.max_delay_ms, 120000);
    ASSERT_EQ(c.retry.max_event_age_s, 21600);
    char err[256];
    ASSERT_EQ(parse_text(&c, "{\"handler\":\"app.h\",\"retry\":{\"max_attempts\":5,"
                             "\"base_delay_ms\":10}}", err, sizeof(err)), 0);
    ASSERT_EQ(c.retry.max_attempts, 5);
    ASSERT_EQ(c.retry.base_delay_ms, 10);
    ASSERT_EQ(c.retry.max_delay_ms, 120000); /* absent members keep the default */
    cJSON *j = cJSON_CreateObject();
    fn_config_to_json(&c, j);
    struct fn_config back;
    ASSERT_EQ(fn_config_parse(&back, j, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(back.retry.max_attempts, 5);
    ASSERT_EQ(back.retry.base_delay_ms, 10);
    cJSON_Delete(j);
    fn_config_release(&back);
    fn_config_release(&c);
    ASSERT_EQ(try_field("retry", "{\"max_attempts\":0}", err), -EINVAL);
    ASSERT_STR_EQ(err, "retry.max_attempts: must be an integer between 1 and 100");
    ASSERT_EQ(try_field("retry", "{\"tries\":2}", err), -EINVAL);
    ASSERT_STR_EQ(err, "retry.tries: unknown field");
    ASSERT_EQ(try_field("retry", "{\"base_delay_ms\":500,\"max_delay_ms\":100}", err), -EINVAL);
    ASSERT_STR_EQ(err, "retry.base_delay_ms: must not exceed retry.max_delay_ms");
    ASSERT_EQ(try_field("retry", "3", err), -EINVAL);
    ASSERT_STR_EQ(err, "retry: must be an object");
}

TEST(every_limit_bounds_from_the_table)
{
    struct {
        const char *name;
        unsigned lo, hi;
    } fields[] = {
#define ROW(field, def, lo, hi, help) {#field, lo, hi},
        FN_LIMIT_FIELDS(ROW)
#undef ROW
    };
    char err[256], v[32];
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(fields[i].name, "min_warm") == 0)
            continue; /* bounded by max_instances too; tested below */
        snprintf(v, sizeof(v), "%u", fields[i].lo);
        ASSERT_EQ(try_field(fields[i].name, v, err), 0);
        snprintf(v, sizeof(v), "%u", fields[i].hi);
        ASSERT_EQ(try_field(fields[i].name, v, err), 0);
        snprintf(v, sizeof(v), "%u", fields[i].hi + 1);
        ASSERT_EQ(try_field(fields[i].name, v, err), -EINVAL);
        ASSERT(strncmp(err, fields[i].name, strlen(fields[i].name)) == 0);
        if (fields[i].lo > 0) {
            snprintf(v, sizeof(v), "%u", fields[i].lo - 1);
            ASSERT_EQ(try_field(fields[i].name, v, err), -EINVAL);
        }
    }
}

TEST(wrong_types_and_unknown_fields)
{
    char err[256];
    ASSERT_EQ(try_field("memory_mb", "1.5e2", err), 0); /* 150: an integer, however written */
    ASSERT_EQ(try_field("memory_mb", "128.5", err), -EINVAL);
    ASSERT_EQ(try_field("memory_mb", "-128", err), -EINVAL);
    ASSERT_EQ(try_field("memory_mb", "\"128\"", err), -EINVAL);
    ASSERT_EQ(try_field("env", "[1]", err), -EINVAL);
    ASSERT_EQ(try_field("env", "{\"A\": 1}", err), -EINVAL);
    ASSERT_EQ(try_field("colour", "1", err), -EINVAL);
    ASSERT_STR_EQ(err, "colour: unknown field");
    ASSERT_EQ(try_field("name", "\"skipped\"", err), 0);
    ASSERT_EQ(try_field("code", "{\"zip\": \"\"}", err), 0);
}

TEST(runtime_names)
{
    enum runtime r;
    ASSERT_EQ(runtime_parse("nodejs", &r), 0);
    ASSERT_EQ(r, RUNTIME_NODEJS);
    ASSERT_EQ(runtime_parse("python2", &r), -EINVAL);
    ASSERT_STR_EQ(runtime_name(RUNTIME_NATIVE), "native");
    char err[256];
    struct fn_config c;
    ASSERT_EQ(parse_text(&c, "{\"runtime\":\"cobol\",\"handler\":\"a.b\"}", err, sizeof(err)),
              -EINVAL);
    ASSERT_CONTAINS(err, "runtime:");
}

static int handler_ok(const char *runtime, const char *handler)
{
    char text[256], err[256];
    snprintf(text, sizeof(text), "{\"runtime\":\"%s\",\"handler\":\"%s\"}", runtime, handler);
    struct fn_config c;
    int rc = parse_text(&c, text, err, sizeof(err));
    if (rc == 0)
        fn_config_release(&c);
    else
        ASSERT(strncmp(err, "handler:", 8) == 0);
    return rc == 0;
}

TEST(handler_syntax)
{
    ASSERT(handler_ok("python3", "app.handler"));
    ASSERT(handler_ok("python3", "pkg/mod.handler"));
    ASSERT(handler_ok("python3", "pkg.mod.handler"));
    ASSERT(handler_ok("nodejs", "src/index.handler"));
    ASSERT(handler_ok("native", "hello.handler"));
    const char *bad[] = {"../x.h", "/abs.h", "a..b", "noperiod", ".h", "x.1abc", "x y.h",
                         "a//b.h", "./a.h", "x."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT(!handler_ok("python3", bad[i]) && !handler_ok("nodejs", bad[i]));
    char err[256];
    struct fn_config c;
    ASSERT_EQ(parse_text(&c, "{\"runtime\":\"python3\"}", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "handler: required");
}

TEST(min_warm_within_max_instances)
{
    char err[256];
    struct fn_config c;
    ASSERT_EQ(parse_text(&c, "{\"handler\":\"a.b\",\"min_warm\":3,\"max_instances\":2}", err,
                         sizeof(err)),
              -EINVAL);
    ASSERT_STR_EQ(err, "min_warm: must not exceed max_instances");
    ASSERT_EQ(parse_text(&c, "{\"handler\":\"a.b\",\"min_warm\":2,\"max_instances\":2}", err,
                         sizeof(err)),
              0);
    fn_config_release(&c);
}

TEST(env_rules)
{
    char err[256];
    ASSERT_EQ(try_field("env", "{\"GOOD_1\": \"x\", \"A\": \"\"}", err), 0);
    ASSERT_EQ(try_field("env", "{\"1BAD\": \"x\"}", err), -EINVAL);
    ASSERT_EQ(try_field("env", "{\"BAD-NAME\": \"x\"}", err), -EINVAL);
    const char *reserved[] = {"AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "FND_X", "AWS_REGION",
                              "LAMBDA_TASK_ROOT"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char v[128];
        snprintf(v, sizeof(v), "{\"%s\": \"x\"}", reserved[i]);
        ASSERT_EQ(try_field("env", v, err), -EINVAL);
        ASSERT_CONTAINS(err, "reserved");
    }
    char big[5000 + 32];
    snprintf(big, sizeof(big), "{\"BIG\": \"%4100d\"}", 1);
    ASSERT_EQ(try_field("env", big, err), -EINVAL);
}

TEST(base_inheritance_and_round_trip)
{
    char err[256];
    struct fn_config base, c, back;
    ASSERT_EQ(parse_text(&base,
                         "{\"runtime\":\"nodejs\",\"handler\":\"i.h\",\"memory_mb\":512,"
                         "\"env\":{\"Z\":\"1\",\"A\":\"2\"}}",
                         err, sizeof(err)),
              0);
    ASSERT_STR_EQ(base.env[0].name, "A"); /* sorted */
    cJSON *patch = cJSON_Parse("{\"timeout_ms\": 9000}");
    ASSERT_EQ(fn_config_parse(&c, patch, &base, err, sizeof(err)), 0);
    cJSON_Delete(patch);
    ASSERT_EQ(c.runtime, RUNTIME_NODEJS);
    ASSERT_EQ(c.memory_mb, 512);
    ASSERT_EQ(c.timeout_ms, 9000);
    ASSERT_EQ(c.nenv, 2);
    cJSON *j = cJSON_CreateObject();
    fn_config_to_json(&c, j);
    ASSERT_EQ(fn_config_parse(&back, j, NULL, err, sizeof(err)), 0);
    cJSON_Delete(j);
    ASSERT_EQ(back.memory_mb, 512);
    ASSERT_EQ(back.timeout_ms, 9000);
    ASSERT_STR_EQ(back.handler, "i.h");
    ASSERT_STR_EQ(back.env[1].value, "1");
    fn_config_release(&back);
    fn_config_release(&c);
    fn_config_release(&base);
}

TEST(function_names)
{
    ASSERT(fn_name_valid(slice_from_cstr("a")));
    ASSERT(fn_name_valid(slice_from_cstr("hello-world_2")));
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    ASSERT(!fn_name_valid(slice_from_cstr(long_name)));
    long_name[64] = '\0';
    ASSERT(fn_name_valid(slice_from_cstr(long_name)));
    ASSERT(!fn_name_valid(slice_from_cstr("")));
    ASSERT(!fn_name_valid(slice_from_cstr("a.b")));
    ASSERT(!fn_name_valid(slice_from_cstr("a/b")));
    ASSERT(!fn_name_valid(slice_from_cstr("a b")));
}

TEST(provided_runtime_description_and_lambda_runtime)
{
    struct fn_config c;
    char err[256];
    /* A custom runtime needs no handler, and any printable one is its own business. */
    ASSERT_EQ(parse_text(&c, "{\"runtime\":\"provided\"}", err, sizeof(err)), 0);
    ASSERT_EQ(c.runtime, RUNTIME_PROVIDED);
    fn_config_release(&c);
    ASSERT_EQ(parse_text(&c, "{\"runtime\":\"provided\",\"handler\":\"my handler!\"}", err,
                         sizeof(err)), 0);
    fn_config_release(&c);
    ASSERT_EQ(parse_text(&c, "{\"runtime\":\"provided\",\"handler\":\"a\\u0001b\"}", err,
                         sizeof(err)), -EINVAL);
    ASSERT(strncmp(err, "handler:", 8) == 0);

    ASSERT_EQ(parse_text(&c, "{\"runtime\":\"python3\",\"handler\":\"a.b\",\"description\":"
                             "\"hi\",\"lambda_runtime\":\"python3.12\"}", err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.description, "hi");
    ASSERT_STR_EQ(c.lambda_runtime, "python3.12");
    struct fn_config copy;
    fn_config_copy(&copy, &c);
    cJSON *o = cJSON_CreateObject();
    fn_config_to_json(&copy, o);
    ASSERT_STR_EQ(cJSON_GetObjectItem(o, "description")->valuestring, "hi");
    ASSERT_STR_EQ(cJSON_GetObjectItem(o, "lambda_runtime")->valuestring, "python3.12");
    cJSON_Delete(o);
    fn_config_release(&copy);
    fn_config_release(&c);

    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(try_field("description", "1", err), -EINVAL);
    char value[420];
    snprintf(value, sizeof(value), "\"%s\"", big);
    ASSERT_EQ(try_field("description", value, err), -EINVAL); /* past FN_DESCRIPTION_MAX */
    ASSERT(strncmp(err, "description:", 12) == 0);
}

TEST_MAIN()
