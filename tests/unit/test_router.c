/* Unit tests for router.c: literals, captures, rest captures, 404 vs 405 + Allow. */
#include "fnd/router.h"

#include "test.h"

#include <errno.h>

static void h(struct http_request *req, const struct route_match *m, void *data)
{
    (void)req, (void)m, (void)data;
}

static const struct route table[] = {
    {"GET", "/healthz", h},
    {"GET", "/v1/functions/{name}", h},
    {"PUT", "/v1/functions/{name}", h},
    {"DELETE", "/v1/functions/{name}", h},
    {"POST", "/v1/functions/{name}/invoke", h},
    {"*", "/fn/{name}/{path...}", h},
    {"GET", "/v1/functions/{name}", h}, /* a duplicate: Allow must not repeat GET */
};

static int match(const char *method, const char *path, const struct route **r,
                 struct route_match *m, char *allow)
{
    return router_match(table, sizeof(table) / sizeof(table[0]), method, slice_from_cstr(path),
                        r, m, allow, 64);
}

TEST(literal_and_capture)
{
    const struct route *r;
    struct route_match m;
    char allow[64];
    ASSERT_EQ(match("GET", "/healthz", &r, &m, allow), 0);
    ASSERT(r == &table[0]);
    ASSERT_EQ(m.nparams, 0);
    ASSERT_EQ(match("POST", "/v1/functions/echo/invoke", &r, &m, allow), 0);
    ASSERT(r == &table[4]);
    ASSERT_EQ(m.nparams, 1);
    ASSERT_SLICE_EQ(m.params[0], "echo");
}

TEST(rest_capture_takes_slashes_and_may_be_empty)
{
    const struct route *r;
    struct route_match m;
    char allow[64];
    ASSERT_EQ(match("PATCH", "/fn/api/users/7/orders", &r, &m, allow), 0);
    ASSERT_EQ(m.nparams, 2);
    ASSERT_SLICE_EQ(m.params[0], "api");
    ASSERT_SLICE_EQ(m.params[1], "users/7/orders");
    ASSERT_EQ(match("GET", "/fn/api/", &r, &m, allow), 0);
    ASSERT_SLICE_EQ(m.params[1], "");
}

TEST(not_found_vs_method_not_allowed)
{
    const struct route *r;
    struct route_match m;
    char allow[64];
    ASSERT_EQ(match("GET", "/nope", &r, &m, allow), -ENOENT);
    ASSERT_EQ(match("POST", "/v1/functions/echo", &r, &m, allow), -EPERM);
    ASSERT_STR_EQ(allow, "GET, PUT, DELETE");
    ASSERT_EQ(match("GET", "/v1/functions/echo/invoke", &r, &m, allow), -EPERM);
    ASSERT_STR_EQ(allow, "POST");
}

TEST(exact_matching)
{
    const struct route *r;
    struct route_match m;
    char allow[64];
    ASSERT_EQ(match("GET", "/healthz/", &r, &m, allow), -ENOENT);
    ASSERT_EQ(match("GET", "/v1/functions/", &r, &m, allow), -ENOENT); /* empty capture */
    ASSERT_EQ(match("GET", "/v1/functions//invoke", &r, &m, allow), -ENOENT);
    ASSERT_EQ(match("GET", "/v1/functions/a/b", &r, &m, allow), -ENOENT);
    ASSERT_EQ(match("GET", "", &r, &m, allow), -ENOENT);
}

TEST_MAIN()
