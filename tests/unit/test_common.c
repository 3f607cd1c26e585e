/* Unit tests for the small shared pieces: buf.c, common.c (remove_tree, number and time
 * text), log.c,
 * invocation ids. */
#include "fnd/buf.h"
#include "fnd/invocation.h"
#include "fnd/log.h"

#include "test.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(buf_appends_and_terminates)
{
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(buf_append_str(&b, "hello"), 0);
    ASSERT_EQ(buf_printf(&b, " %d", 42), 0);
    ASSERT_STR_EQ(b.data, "hello 42");
    ASSERT_EQ(b.len, 8);
    buf_release(&b);
}

TEST(numbers_and_times_without_printf)
{
    char out[WALL_TIME_LEN + 1];
    ASSERT_EQ(format_uint(out, 0, 1), 1);
    ASSERT_EQ(out[0], '0');
    ASSERT_EQ(format_uint(out, 7, 3), 3);
    ASSERT(memcmp(out, "007", 3) == 0);
    ASSERT_EQ(format_uint(out, UINT64_MAX, 2), 20);
    ASSERT(memcmp(out, "18446744073709551615", 20) == 0);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(buf_append_uint(&b, 404, 1), 0);
    ASSERT_EQ(buf_append_uint(&b, 5, 2), 0);
    ASSERT_STR_EQ(b.data, "40405");
    buf_release(&b);
    /* twice in the same second (the cached part), then in the next */
    ASSERT_EQ(format_wall_ms(out, INT64_C(1767323045007)), WALL_TIME_LEN);
    ASSERT_STR_EQ(out, "2026-01-02T03:04:05.007Z");
    format_wall_ms(out, INT64_C(1767323045999));
    ASSERT_STR_EQ(out, "2026-01-02T03:04:05.999Z");
    format_wall_ms(out, INT64_C(1767323046000));
    ASSERT_STR_EQ(out, "2026-01-02T03:04:06.000Z");
}

TEST(buf_limit_refuses_without_change)
{
    struct buf b;
    buf_init(&b, 8);
    ASSERT_EQ(buf_append(&b, "12345678", 8), 0);
    ASSERT_EQ(buf_append(&b, "9", 1), -E2BIG);
    ASSERT_EQ(b.len, 8);
    ASSERT_EQ(buf_printf(&b, "%s", "x"), -E2BIG);
    ASSERT_STR_EQ(b.data, "12345678");
    buf_release(&b);
}

TEST(buf_move_and_steal)
{
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    buf_append_str(&a, "payload");
    buf_move(&b, &a);
    ASSERT_EQ(a.len, 0);
    ASSERT(a.data == NULL);
    ASSERT_STR_EQ(b.data, "payload");
    size_t len;
    char *p = buf_steal(&b, &len);
    ASSERT_EQ(len, 7);
    ASSERT_STR_EQ(p, "payload");
    ASSERT(b.data == NULL);
    free(p);
    char *empty = buf_steal(&b, &len); /* never NULL */
    ASSERT(empty != NULL);
    ASSERT_EQ(len, 0);
    free(empty);
}

TEST(log_quote_plain_and_escaped)
{
    char out[64];
    ASSERT_STR_EQ(log_quote(out, sizeof(out), "plain", 5), "plain");
    ASSERT_STR_EQ(log_quote(out, sizeof(out), "two words", 9), "\"two words\"");
    ASSERT_STR_EQ(log_quote(out, sizeof(out), "a\"b\nc", 5), "\"a\\\"b\\nc\"");
    ASSERT_STR_EQ(log_quote(out, sizeof(out), "", 0), "\"\"");
    char tiny[8];
    log_quote(tiny, sizeof(tiny), "a long value with spaces", 24);
    ASSERT(strlen(tiny) < sizeof(tiny));
}

TEST(invocation_ids_are_uuid_v4_and_distinct)
{
    char a[INVOCATION_ID_LEN + 1], b[INVOCATION_ID_LEN + 1];
    invocation_new_id(a);
    invocation_new_id(b);
    ASSERT_EQ(strlen(a), 36);
    ASSERT(strcmp(a, b) != 0);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ASSERT_EQ(a[i], '-');
        else
            ASSERT(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
    }
    ASSERT_EQ(a[14], '4');
    ASSERT(strchr("89ab", a[19]) != NULL);
}

TEST(slice_comparisons)
{
    struct slice s = {"Content-Length", 14};
    ASSERT(slice_eq(s, "Content-Length"));
    ASSERT(!slice_eq(s, "content-length"));
    ASSERT(slice_eq_nocase(s, "content-length"));
    ASSERT(!slice_eq_nocase(s, "content-lengt"));
}

/* Batched info lines reach stderr only at log_flush; a warning flushes them first, so
 * the order of lines is kept. */
TEST(log_batching_defers_info_until_flush)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    log_setup(LOG_INFO, LOG_FORMAT_LOGFMT);
    log_set_batching(true);
    log_info("first", "n=%d", 1);
    log_info("second", "n=%d", 2);
    char out[4096];
    ASSERT(read(fds[0], out, sizeof(out)) < 0); /* nothing written yet */
    log_warn("third", "n=%d", 3);
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    ASSERT(n > 0);
    out[n] = '\0';
    char *a = strstr(out, "msg=first"), *b = strstr(out, "msg=second"), *c = strstr(out, "msg=third");
    ASSERT(a && b && c && a < b && b < c);
    log_info("fourth", "%s", "");
    ASSERT(read(fds[0], out, sizeof(out)) < 0);
    log_set_batching(false); /* flushes */
    n = read(fds[0], out, sizeof(out) - 1);
    ASSERT(n > 0);
    out[n] = '\0';
    ASSERT(strstr(out, "msg=fourth") != NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[0]);
    close(fds[1]);
}

/* One line each way: logfmt, and JSON from the same pairs. */
TEST(log_lines_in_both_formats)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    char out[4096], q[64];
    log_setup(LOG_INFO, LOG_FORMAT_LOGFMT);
    log_info("two words", "n=%d path=%s", 7, log_quote(q, sizeof(q), "a \"b\"", 5));
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    ASSERT(n > (ssize_t)WALL_TIME_LEN + 3);
    out[n] = '\0';
    ASSERT(strncmp(out, "ts=", 3) == 0 && out[3 + 10] == 'T' && out[3 + WALL_TIME_LEN - 1] == 'Z');
    ASSERT_STR_EQ(out + 3 + WALL_TIME_LEN,
                  " level=info msg=\"two words\" n=7 path=\"a \\\"b\\\"\"\n");
    log_setup(LOG_INFO, LOG_FORMAT_JSON);
    log_write_kv(LOG_WARN, "request", "status=200 path=\"a \\\"b\\\"\"");
    n = read(fds[0], out, sizeof(out) - 1);
    ASSERT(n > 0);
    out[n] = '\0';
    ASSERT(strncmp(out, "{\"ts\":\"", 7) == 0);
    ASSERT_STR_EQ(out + 7 + WALL_TIME_LEN,
                  "\",\"level\":\"warn\",\"msg\":\"request\",\"status\":\"200\","
                  "\"path\":\"a \\\"b\\\"\"}\n");
    log_setup(LOG_INFO, LOG_FORMAT_LOGFMT);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[0]);
    close(fds[1]);
}

TEST(remove_tree_does_not_follow_links)
{
    char outside[] = "/tmp/fnd-common-XXXXXX", root[] = "/tmp/fnd-common-XXXXXX";
    ASSERT(mkdtemp(outside) != NULL && mkdtemp(root) != NULL);
    char keep[64], link[64];
    snprintf(keep, sizeof(keep), "%s/keep", outside);
    int fd = open(keep, O_WRONLY | O_CREAT | O_EXCL, 0644);
    ASSERT(fd >= 0);
    close(fd);
    snprintf(link, sizeof(link), "%s/link", root);
    ASSERT_EQ(symlink(outside, link), 0);
    ASSERT_EQ(remove_tree(root), 0);
    ASSERT_EQ(access(root, F_OK), -1);
    ASSERT_EQ(access(keep, F_OK), 0);
    ASSERT_EQ(remove_tree(root), 0); /* missing: fine */
    ASSERT_EQ(remove_tree(outside), 0);
}

TEST_MAIN()
