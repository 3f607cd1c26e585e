/* Unit tests for funclog.c: time stamps and `since` parsing, the START/END/REPORT frame,
 * the 4 KB tail, records read back by invocation and by function, and rotation. */
#include "fnd/funclog.h"

#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

TEST(parse_since)
{
    int64_t t;
    ASSERT_EQ(funclog_parse_since("2026-01-02T03:04:05Z", 0, &t), 0);
    ASSERT_EQ(t, INT64_C(1767323045000));
    ASSERT_EQ(funclog_parse_since("2026-01-02T03:04:05.25Z", 0, &t), 0);
    ASSERT_EQ(t, INT64_C(1767323045250));
    ASSERT_EQ(funclog_parse_since("2026-01-02T03:04:05+00:00", 0, &t), 0);
    ASSERT_EQ(funclog_parse_since("1767323045000", 0, &t), 0);
    ASSERT_EQ(t, INT64_C(1767323045000));
    ASSERT_EQ(funclog_parse_since("90s", 100000, &t), 0);
    ASSERT_EQ(t, 10000);
    ASSERT_EQ(funclog_parse_since("2h", 8000000, &t), 0);
    ASSERT_EQ(t, 8000000 - 7200000);
    ASSERT_EQ(funclog_parse_since("", 0, &t), -EINVAL);
    ASSERT_EQ(funclog_parse_since("5y", 0, &t), -EINVAL);
    ASSERT_EQ(funclog_parse_since("2026-01-02 03:04:05Z", 0, &t), -EINVAL);
    ASSERT_EQ(funclog_parse_since("2026-13-02T03:04:05Z", 0, &t), -EINVAL);
    ASSERT_EQ(funclog_parse_since("2026-01-02T03:04:05+02:00", 0, &t), -EINVAL);
}

TEST(record_time)
{
    ASSERT_EQ(funclog_record_time(SLICE_LIT("2026-01-02T03:04:05.007Z\tid\tstdout\tx\n")),
              INT64_C(1767323045007));
    ASSERT_EQ(funclog_record_time(SLICE_LIT("garbage\tid\n")), -1);
    ASSERT_EQ(funclog_record_time(SLICE_LIT("no tab")), -1);
}

static char *temp_dir(void)
{
    char tmpl[] = "/tmp/fnd-funclog-XXXXXX";
    char *d = mkdtemp(tmpl);
    ASSERT(d != NULL);
    return strdup(d);
}

TEST(frame_tail_and_read_back)
{
    char *dir = temp_dir();
    struct funclog *fl;
    ASSERT_EQ(funclog_open(&fl, dir, 1 << 20, 2), 0);
    struct funclog_capture c;
    funclog_capture_init(&c);
    const char *id = "11111111-2222-4333-8444-555555555555";
    funclog_start(fl, &c, "fn1", id);
    char line[100];
    memset(line, 'a', sizeof(line));
    for (int i = 0; i < 100; i++)
        funclog_line(fl, &c, "fn1", id, "stdout", line, sizeof(line));
    funclog_line(fl, &c, "fn1", id, "stderr", "last words", 10);
    struct funclog_report r = {.duration_us = 1057, .memory_mb = 128,
                               .max_memory_bytes = 3 << 20, .cold_start = true, .init_us = 2009};
    struct slice tail = funclog_end(fl, &c, "fn1", id, &r);
    ASSERT_LE(tail.len, (size_t)FUNCLOG_TAIL_MAX);
    ASSERT_GT(tail.len, (size_t)4000);
    char *text = strndup(tail.ptr, tail.len);
    ASSERT_CONTAINS(text, "last words\nEND RequestId: 11111111-2222-4333-8444-555555555555\n");
    ASSERT_CONTAINS(text, "\tDuration: 1.05 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
                          "Max Memory Used: 3 MB\tInit Duration: 2.00 ms\n");
    free(text);
    funclog_start(fl, &c, "fn1", id); /* warm: no Init Duration */
    r = (struct funclog_report){.duration_us = 999999, .memory_mb = 1024, .max_memory_bytes = 1};
    tail = funclog_end(fl, &c, "fn1", id, &r);
    text = strndup(tail.ptr, tail.len);
    ASSERT_STR_EQ(text, "START RequestId: 11111111-2222-4333-8444-555555555555 Version: $LATEST\n"
                        "END RequestId: 11111111-2222-4333-8444-555555555555\n"
                        "REPORT RequestId: 11111111-2222-4333-8444-555555555555\t"
                        "Duration: 999.99 ms\tBilled Duration: 1000 ms\tMemory Size: 1024 MB\t"
                        "Max Memory Used: 1 MB\n");
    free(text);

    /* output between invocations is attributed but not captured */
    funclog_line(fl, NULL, "fn1", id, "stdout", "late", 4);
    struct buf out;
    buf_init(&out, 0);
    ASSERT_EQ(funclog_read_invocation(fl, id, &out, 1 << 20), 0);
    ASSERT(strncmp(out.data, "START RequestId: 11111111-2222-4333-8444-555555555555 Version: "
                             "$LATEST\n", 70) == 0);
    ASSERT_CONTAINS(out.data, "\nlate\n");
    buf_reset(&out);
    ASSERT_EQ(funclog_read_invocation(fl, "11111111-2222-4333-8444-000000000000", &out, 100),
              -ENOENT);
    ASSERT_EQ(funclog_read_function(fl, "fn1", 0, &out, 300), 0);
    ASSERT_LE(out.len, (size_t)300);
    ASSERT_CONTAINS(out.data, "\tstdout\tlate\n");
    /* the records begin with their time begins with its time, which read back as now */
    int64_t at = funclog_record_time((struct slice){out.data, out.len});
    ASSERT_GT(at, clock_wall_ms() - 60000);
    ASSERT_LE(at, clock_wall_ms());
    ASSERT_EQ(funclog_read_function(fl, "nobody", 0, &out, 300), -ENOENT);
    buf_release(&out);
    funclog_capture_release(&c);
    funclog_remove(fl, "fn1");
    funclog_close(fl);
    char *logs = malloc(strlen(dir) + 8);
    sprintf(logs, "%s/logs", dir);
    ASSERT_EQ(rmdir(logs), 0); /* remove left nothing behind */
    rmdir(dir);
    free(logs);
    free(dir);
}

TEST(rotation_keeps_the_newest)
{
    char *dir = temp_dir();
    struct funclog *fl;
    ASSERT_EQ(funclog_open(&fl, dir, 4096, 2), 0);
    char line[200];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(line, sizeof(line), "line %d", i);
        funclog_line(fl, NULL, "f", "11111111-2222-4333-8444-555555555555", "stdout", line,
                     (size_t)n);
    }
    funclog_flush(fl); /* the sizes on disk below include the newest records */
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/logs/f/output.log.2", dir);
    ASSERT(stat(path, &st) < 0);
    size_t total = 0;
    for (int g = 0; g < 2; g++) {
        snprintf(path, sizeof(path), g ? "%s/logs/f/output.log.%d" : "%s/logs/f/output.log", dir,
                 g);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_LE((size_t)st.st_size, (size_t)4096);
        total += (size_t)st.st_size;
    }
    struct buf out;
    buf_init(&out, 0);
    ASSERT_EQ(funclog_read_function(fl, "f", 0, &out, 1 << 20), 0);
    ASSERT_EQ(out.len, total);
    ASSERT_CONTAINS(out.data, "\tline 499\n");
    ASSERT(strstr(out.data, "\tline 0\n") == NULL);
    buf_release(&out);
    funclog_remove(fl, "f");
    funclog_close(fl);
    snprintf(path, sizeof(path), "%s/logs", dir);
    rmdir(path);
    rmdir(dir);
    free(dir);
}

/* Records wait in memory until funclog_flush, and a read flushes them first. */
TEST(records_are_written_at_flush)
{
    char *dir = temp_dir();
    struct funclog *fl;
    ASSERT_EQ(funclog_open(&fl, dir, 1 << 20, 2), 0);
    const char *id = "11111111-2222-4333-8444-555555555555";
    funclog_line(fl, NULL, "g", id, "stdout", "one", 3);
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/logs/g/output.log", dir);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_size, 0);
    funclog_flush(fl);
    ASSERT_EQ(stat(path, &st), 0);
    off_t first = st.st_size;
    ASSERT(first > 0);
    funclog_line(fl, NULL, "g", id, "stdout", "two", 3);
    struct buf out;
    buf_init(&out, 0);
    ASSERT_EQ(funclog_read_invocation(fl, id, &out, 1 << 20), 0);
    ASSERT_STR_EQ(out.data, "one\ntwo\n");
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT(st.st_size > first);
    buf_release(&out);
    funclog_remove(fl, "g");
    funclog_close(fl);
    char logs[600];
    snprintf(logs, sizeof(logs), "%s/logs", dir);
    rmdir(logs);
    rmdir(dir);
    free(dir);
}

TEST_MAIN()
