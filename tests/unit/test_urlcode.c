/* Unit tests for urlcode.c: percent-decoding, malformed escapes, limits, query walking. */
#include "fnd/urlcode.h"

#include "test.h"

#include <errno.h>

static int decode(const char *in, bool plus, char *out, size_t size)
{
    struct buf b;
    buf_init(&b, size - 1);
    int rc = url_decode(&b, slice_from_cstr(in), plus);
    if (rc == 0) {
        memcpy(out, b.data ? b.data : "", b.len);
        out[b.len] = '\0';
    }
    buf_release(&b);
    return rc;
}

TEST(decode_escapes_and_plus)
{
    char out[64];
    ASSERT_EQ(decode("a%20b%3Ac%3a", false, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "a b:c:");
    ASSERT_EQ(decode("a+b", false, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "a+b");
    ASSERT_EQ(decode("a+b", true, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "a b");
    ASSERT_EQ(decode("%C3%A9", false, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "\xc3\xa9");
    ASSERT_EQ(decode("", false, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "");
}

TEST(decode_refuses_malformed_escapes)
{
    char out[64];
    ASSERT_EQ(decode("%", false, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(decode("%4", false, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(decode("ab%4", false, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(decode("%zz", false, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(decode("%41", false, out, sizeof(out)), 0); /* an escape ending the input */
    ASSERT_STR_EQ(out, "A");
}

TEST(decode_bounded_by_the_buffer_limit)
{
    char out[4];
    ASSERT_EQ(decode("abc", false, out, sizeof(out)), 0);
    ASSERT_EQ(decode("abcd", false, out, sizeof(out)), -E2BIG);
    ASSERT_EQ(decode("%41%42%43", false, out, sizeof(out)), 0); /* decoded size counts */
    ASSERT_STR_EQ(out, "ABC");
}

TEST(query_walk_and_get)
{
    struct slice q = slice_from_cstr("a=1&&b&c=x%20y&a=2");
    struct slice n, v;
    ASSERT(url_query_next(&q, &n, &v));
    ASSERT(slice_eq(n, "a") && slice_eq(v, "1"));
    ASSERT(url_query_next(&q, &n, &v)); /* the empty pair is skipped */
    ASSERT(slice_eq(n, "b") && v.len == 0);
    ASSERT(url_query_next(&q, &n, &v));
    ASSERT(slice_eq(n, "c") && slice_eq(v, "x%20y"));
    ASSERT(url_query_next(&q, &n, &v));
    ASSERT(slice_eq(n, "a") && slice_eq(v, "2"));
    ASSERT(!url_query_next(&q, &n, &v));

    char out[8];
    struct slice query = slice_from_cstr("Qualifier=%24LATEST&Marker=x+y&Bad=%zz&Nul=a%00b");
    ASSERT_EQ(url_query_get(query, "Qualifier", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "$LATEST");
    ASSERT_EQ(url_query_get(query, "Marker", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "x y");
    ASSERT_EQ(url_query_get(query, "Missing", out, sizeof(out)), 0);
    ASSERT_EQ(url_query_get(query, "Bad", out, sizeof(out)), -EINVAL);
    ASSERT_EQ(url_query_get(query, "Nul", out, sizeof(out)), -EINVAL);
    ASSERT_EQ(url_query_get(slice_from_cstr("Long=123456789"), "Long", out, sizeof(out)), -EINVAL);
}

TEST_MAIN()
