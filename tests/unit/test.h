/*
 * A small unit-test harness in the manner of libuv's test/task.h: typed assertions
 * that print both sides, tests registered with TEST(name), and a runner that runs
 * each test in its own forked process under a timeout, so one crash or hang fails one
 * test. A test may SKIP with a reason; skips are reported, never counted as passes.
 *
 * Usage: one file per module, `#include "test.h"`, TEST(...) blocks, and TEST_MAIN()
 * at the end. Run the binary with a test name to run just that test in-process.
 */
#ifndef FND_TEST_H
#define FND_TEST_H

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_MAX 256
#define TEST_TIMEOUT_S 30
#define TEST_EXIT_SKIP 77

struct test_case {
    const char *name;
    void (*fn)(void);
};

static struct test_case test_cases[TEST_MAX];
static int test_count;

#define TEST(name)                                                                             \
    static void test_##name(void);                                                             \
    __attribute__((constructor)) static void test_register_##name(void)                        \
    {                                                                                          \
        if (test_count < TEST_MAX)                                                             \
            test_cases[test_count++] = (struct test_case){#name, test_##name};                 \
    }                                                                                          \
    static void test_##name(void)

#define TEST_FAIL(...)                                                                         \
    do {                                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
        fprintf(stderr, __VA_ARGS__);                                                          \
        fprintf(stderr, "\n");                                                                 \
        abort();                                                                               \
    } while (0)

#define SKIP(reason)                                                                           \
    do {                                                                                       \
        fprintf(stderr, "skip: %s\n", reason);                                                 \
        exit(TEST_EXIT_SKIP);                                                                  \
    } while (0)

#define ASSERT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond))                                                                           \
            TEST_FAIL("assertion failed: %s", #cond);                                          \
    } while (0)

#define ASSERT_INT_OP(a, op, b)                                                                \
    do {                                                                                       \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                          \
        if (!(a_ op b_))                                                                       \
            TEST_FAIL("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_);               \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)

#define ASSERT_STR_EQ(a, b)                                                                    \
    do {                                                                                       \
        const char *a_ = (a), *b_ = (b);                                                       \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                   \
            TEST_FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",                \
                      b_ ? b_ : "(null)");                                                     \
    } while (0)

/* a slice (ptr, len) equals a C string */
#define ASSERT_SLICE_EQ(s, cstr)                                                               \
    do {                                                                                       \
        struct slice s_ = (s);                                                                 \
        const char *c_ = (cstr);                                                               \
        if (s_.len != strlen(c_) || (s_.len && memcmp(s_.ptr, c_, s_.len) != 0))               \
            TEST_FAIL("%s == %s: \"%.*s\" vs \"%s\"", #s, #cstr, (int)s_.len,                  \
                      s_.ptr ? s_.ptr : "", c_);                                               \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                           \
    do {                                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                                \
        if (h_ == NULL || strstr(h_, n_) == NULL)                                              \
            TEST_FAIL("%s contains %s: \"%s\" lacks \"%s\"", #hay, #needle,                    \
                      h_ ? h_ : "(null)", n_);                                                 \
    } while (0)

static int test_run_one(const struct test_case *t)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        alarm(TEST_TIMEOUT_S);
        t->fn();
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok     %s\n", t->name);
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_EXIT_SKIP) {
        printf("skip   %s\n", t->name);
        return 2;
    }
    if (WIFSIGNALED(status))
        printf("FAIL   %s (signal %d%s)\n", t->name, WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? ", timed out" : "");
    else
        printf("FAIL   %s (exit %d)\n", t->name, WEXITSTATUS(status));
    return 1;
}

static int test_main(int argc, char **argv)
{
    int failed = 0, skipped = 0, passed = 0;
    for (int i = 0; i < test_count; i++) {
        if (argc > 1 && strcmp(argv[1], test_cases[i].name) != 0)
            continue;
        if (argc > 1) { /* a named test runs in-process, for the debugger */
            test_cases[i].fn();
            printf("ok     %s\n", test_cases[i].name);
            return 0;
        }
        int rc = test_run_one(&test_cases[i]);
        if (rc == 0)
            passed++;
        else if (rc == 2)
            skipped++;
        else
            failed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

#define TEST_MAIN()                                                                            \
    int main(int argc, char **argv)                                                            \
    {                                                                                          \
        return test_main(argc, argv);                                                          \
    }

#endif
