/* Unit tests for config.c: defaults, option syntax, bounds, size suffixes, help. */
#include "fnd/config.h"

#include "test.h"

#include <errno.h>

static int parse(struct config *c, int argc, char **argv, char *err, size_t errsize)
{
    FILE *null = fopen("/dev/null", "w");
    int rc = config_parse_args(c, argc, argv, 0, err, errsize, null);
    fclose(null);
    return rc;
}

TEST(defaults)
{
    unsetenv("FND_DATA");
    struct config c;
    config_init(&c);
    ASSERT_STR_EQ(c.listen, "127.0.0.1:8080");
    ASSERT_STR_EQ(c.data_dir, "fnd-data");
    ASSERT_EQ(c.max_body, 6 * MiB);
    ASSERT_EQ(c.max_header_size, 16 * KiB);
    config_release(&c);
}

TEST(data_dir_from_environment)
{
    setenv("FND_DATA", "/srv/fnd", 1);
    struct config c;
    config_init(&c);
    ASSERT_STR_EQ(c.data_dir, "/srv/fnd");
    config_release(&c);
}

TEST(both_option_syntaxes)
{
    struct config c;
    config_init(&c);
    char err[128];
    char *argv[] = {"--listen", "0.0.0.0:9000", "--max-body=1024", "--idle-timeout", "250"};
    ASSERT_EQ(parse(&c, 5, argv, err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.listen, "0.0.0.0:9000");
    ASSERT_EQ(c.max_body, 1024);
    ASSERT_EQ(c.idle_timeout, 250);
    config_release(&c);
}

TEST(size_suffixes)
{
    struct config c;
    config_init(&c);
    char err[128];
    char *a[] = {"--max-body", "2M"};
    ASSERT_EQ(parse(&c, 2, a, err, sizeof(err)), 0);
    ASSERT_EQ(c.max_body, 2 * MiB);
    char *b[] = {"--max-body=64KiB"};
    ASSERT_EQ(parse(&c, 1, b, err, sizeof(err)), 0);
    ASSERT_EQ(c.max_body, 64 * KiB);
    char *bad[] = {"--max-body=12X"};
    ASSERT_EQ(parse(&c, 1, bad, err, sizeof(err)), -EINVAL);
    config_release(&c);
}

TEST(bounds_are_enforced_and_named)
{
    struct config c;
    config_init(&c);
    char err[128];
    char *low[] = {"--max-body", "10"};
    ASSERT_EQ(parse(&c, 2, low, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "--max-body");
    char *neg[] = {"--max-workers=-1"};
    ASSERT_EQ(parse(&c, 1, neg, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(c.max_body, 6 * MiB); /* unchanged by the failures */
    config_release(&c);
}

TEST(unknown_option_and_missing_value)
{
    struct config c;
    config_init(&c);
    char err[128];
    char *unknown[] = {"--no-such-thing", "1"};
    ASSERT_EQ(parse(&c, 2, unknown, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "no-such-thing");
    char *missing[] = {"--listen"};
    ASSERT_EQ(parse(&c, 1, missing, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "needs a value");
    char *positional[] = {"stray"};
    ASSERT_EQ(parse(&c, 1, positional, err, sizeof(err)), -EINVAL);
    config_release(&c);
}

TEST(help_lists_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print_help(out);
    fclose(out);
    static const char *const options[] = {"--listen", "--data", "--seed", "--max-body",
                                          "--max-header-size", "--max-url", "--idle-timeout",
                                          "--header-timeout", "--max-workers"};
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        ASSERT_CONTAINS(text, options[i]);
    free(text);
}

TEST_MAIN()
