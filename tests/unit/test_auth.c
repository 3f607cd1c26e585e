/* Unit tests for auth.c: constant-time token equality, loopback addresses, the token
 * file (created 0600, reused, refused when others can read it), setting validation. */
#include "fnd/auth.h"

#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

TEST(token_equal)
{
    ASSERT(auth_token_equal("abc", 3, "abc", 3));
    ASSERT(!auth_token_equal("abc", 3, "abd", 3));
    ASSERT(!auth_token_equal("abc", 3, "abcd", 4));
    ASSERT(!auth_token_equal("", 0, "a", 1));
}

TEST(loopback_hosts)
{
    ASSERT(auth_host_is_loopback("127.0.0.1"));
    ASSERT(auth_host_is_loopback("127.8.9.10"));
    ASSERT(auth_host_is_loopback("::1"));
    ASSERT(auth_host_is_loopback("::ffff:127.0.0.1"));
    ASSERT(auth_host_is_loopback("localhost"));
    ASSERT(!auth_host_is_loopback("0.0.0.0"));
    ASSERT(!auth_host_is_loopback("::"));
    ASSERT(!auth_host_is_loopback("10.0.0.1"));
    ASSERT(!auth_host_is_loopback("example.com"));
}

TEST(token_file)
{
    char tmpl[] = "/tmp/fnd-auth-XXXXXX";
    char *dir = mkdtemp(tmpl);
    ASSERT(dir != NULL);
    char err[256] = "";
    struct auth a, b;
    ASSERT_EQ(auth_setup(&a, "", dir, "loopback", err, sizeof(err)), 0);
    ASSERT_EQ(strlen(a.token), (size_t)64);
    ASSERT(!a.given);
    ASSERT_EQ(a.invoke, AUTH_INVOKE_LOOPBACK);
    char path[512];
    snprintf(path, sizeof(path), "%s/auth-token", dir);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(auth_setup(&b, NULL, dir, "none", err, sizeof(err)), 0);
    ASSERT_STR_EQ(b.token, a.token); /* reused, not regenerated */
    ASSERT_EQ(b.invoke, AUTH_INVOKE_NONE);
    chmod(path, 0640);
    ASSERT_EQ(auth_setup(&b, NULL, dir, "all", err, sizeof(err)), -EPERM);
    ASSERT_CONTAINS(err, "chmod 600");
    unlink(path);
    ASSERT_EQ(auth_setup(&b, "short", dir, "all", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(auth_setup(&b, "has a space in it, so no", dir, "all", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(auth_setup(&b, "0123456789abcdef", dir, "sometimes", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(auth_setup(&b, "0123456789abcdef", dir, "all", err, sizeof(err)), 0);
    ASSERT(b.given);
    ASSERT(stat(path, &st) < 0); /* a given token writes no file */
    rmdir(dir);
}

TEST_MAIN()
