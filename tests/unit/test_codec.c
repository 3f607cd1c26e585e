/* Unit tests for codec.c: base64 vectors (RFC 4648), line breaks, garbage, limits, SHA-256. */
#include "fnd/codec.h"

#include "test.h"

#include <errno.h>

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                    "Zm9vYmFy"};

TEST(base64_rfc4648_vectors)
{
    for (size_t i = 0; i < 7; i++) {
        struct buf b;
        buf_init(&b, 0);
        ASSERT_EQ(base64_decode(&b, coded[i], strlen(coded[i])), 0);
        ASSERT_EQ(b.len, strlen(plain[i]));
        ASSERT(b.len == 0 || memcmp(b.data, plain[i], b.len) == 0);
        buf_reset(&b);
        ASSERT_EQ(base64_encode(&b, plain[i], strlen(plain[i])), 0);
        ASSERT_STR_EQ(b.len ? b.data : "", coded[i]);
        buf_release(&b);
    }
}

TEST(base64_line_breaks_and_garbage)
{
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(base64_decode(&b, "Zm9v\nYmFy\n", 10), 0);
    ASSERT_STR_EQ(b.data, "foobar");
    buf_reset(&b);
    ASSERT_EQ(base64_decode(&b, "Zm9v!YmFy", 9), -EINVAL);
    buf_reset(&b);
    ASSERT_EQ(base64_decode(&b, "Zm9", 3), -EINVAL); /* truncated */
    buf_release(&b);
}

TEST(base64_limit_checked_first)
{
    struct buf b;
    buf_init(&b, 4);
    ASSERT_EQ(base64_decode(&b, "Zm9vYmFy", 8), -E2BIG);
    ASSERT_EQ(b.len, 0);
    buf_release(&b);
}

TEST(sha256_and_hex)
{
    unsigned char d[32];
    char hex[65];
    sha256("abc", 3, d);
    hex_encode(hex, d, 32);
    ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(hex_round_trip)
{
    unsigned char bytes[4] = {0x00, 0x7f, 0xab, 0xff}, back[4];
    char hex[9];
    hex_encode(hex, bytes, 4);
    ASSERT_STR_EQ(hex, "007fabff");
    ASSERT_EQ(hex_decode(back, 4, hex), 0);
    ASSERT(memcmp(back, bytes, 4) == 0);
    ASSERT_EQ(hex_decode(back, 4, "007FABFF"), 0);
    ASSERT_EQ(hex_decode(back, 4, "007fab"), -EINVAL);   /* too short */
    ASSERT_EQ(hex_decode(back, 4, "007fabff00"), -EINVAL); /* too long */
    ASSERT_EQ(hex_decode(back, 4, "007fabzz"), -EINVAL);
}

TEST_MAIN()
