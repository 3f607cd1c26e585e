/*
 * Tests of the event log (src/eventlog.c): append, group commit and recovery, on both
 * I/O backends (every BOTH() test runs once on io_uring and once on the threadpool);
 * torn tails at every byte offset, flipped bits, repair, and the fault-injecting
 * backend. `test_eventlog bench-write DIR N SIZE` and `test_eventlog bench-recover DIR`
 * are the benchmark's helpers (tests/bench/async_accept.py).
 */
#include "test.h"

#include "fnd/eventlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#define SEG 16384

struct rec {
    uint32_t type;
    uint64_t seq;
    char *payload;
    size_t len;
};

struct ctx {
    struct rec recs[4096];
    size_t nrecs;
    int statuses[4096];
    size_t ndone;
    size_t nfailed;
    int last_status;
};

static const char *backend = "threadpool";
static char dir[PATH_MAX];
static uv_loop_t loop;

static void on_replay(uint32_t type, uint64_t seq, struct slice payload, void *data)
{
    struct ctx *c = data;
    if (c->nrecs < ARRAY_SIZE(c->recs))
        c->recs[c->nrecs++] = (struct rec){type, seq, xstrndup(payload.ptr, payload.len),
                                           payload.len};
}

static void on_appended(int status, void *data)
{
    struct ctx *c = data;
    if (c->ndone < ARRAY_SIZE(c->statuses))
        c->statuses[c->ndone] = status;
    c->ndone++;
    c->nfailed += status != 0;
    c->last_status = status;
}

static void ctx_reset(struct ctx *c)
{
    for (size_t i = 0; i < c->nrecs; i++)
        free(c->recs[i].payload);
    memset(c, 0, sizeof(*c));
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fnd-test-eventlog-XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
    ASSERT_EQ(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

static int open_log(struct eventlog **log, const char *sub, struct ctx *c, bool repair,
                    struct eventlog_faults *faults, const char *be)
{
    char path[PATH_MAX + 32], err[512] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    struct eventlog_options o = {path, SEG, be ? be : backend, repair, faults};
    int rc = eventlog_open(log, &loop, &o, on_replay, c, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "eventlog_open: %s\n", err);
    return rc;
}

static void close_log(struct eventlog *log)
{
    eventlog_close(log, NULL, NULL);
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
}

static void append_n(struct eventlog *log, struct ctx *c, int n, size_t size)
{
    char payload[4096];
    for (int i = 0; i < n; i++) {
        size_t len = size ? size : (size_t)(i * 37 % 600);
        for (size_t k = 0; k < len; k++)
            payload[k] = (char)('a' + (i + (int)k) % 26);
        ASSERT_EQ(eventlog_append(log, (uint32_t)(i % 5 + 1), payload, len, on_appended, c), 0);
    }
}

static void run_until_done(struct ctx *c, size_t n)
{
    while (c->ndone < n)
        uv_run(&loop, UV_RUN_ONCE);
}

static char *seg_file(const char *sub, int index)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    ASSERT(d != NULL);
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64)
        if (strlen(e->d_name) == 20 && strcmp(e->d_name + 16, ".seg") == 0)
            names[n++] = xstrdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) /* sort by name: hex of the first sequence number */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    ASSERT(n > 0);
    if (index < 0)
        index += n;
    char *out = xasprintf("%s/%s", path, names[index]);
    for (int i = 0; i < n; i++)
        free(names[i]);
    return out;
}

static int count_files(const char *sub, const char *suffix)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, suffix) != NULL;
    if (d)
        closedir(d);
    return n;
}

static void copy_file(const char *from, const char *to, off_t len)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(in >= 0 && out >= 0);
    char *b = xmalloc((size_t)len + 1);
    ASSERT_EQ(pread(in, b, (size_t)len, 0), len);
    ASSERT_EQ(write(out, b, (size_t)len), len);
    free(b);
    close(in);
    close(out);
}

static void flip_bit(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    ASSERT_EQ(pread(fd, &c, 1, off), 1);
    c ^= 0x10;
    ASSERT_EQ(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* Runs body once per backend; the io_uring run is skipped where the kernel refuses. */
#define BOTH(name)                                                                             \
    static void body_##name(void);                                                             \
    TEST(name##_uring)                                                                         \
    {                                                                                          \
        backend = "uring";                                                                     \
        setup();                                                                               \
        struct eventlog *probe;                                                                \
        struct ctx pc = {0};                                                                   \
        if (open_log(&probe, "probe", &pc, false, NULL, NULL) < 0)                             \
            SKIP("io_uring unavailable");                                                      \
        close_log(probe);                                                                      \
        body_##name();                                                                         \
        teardown();                                                                            \
    }                                                                                          \
    TEST(name##_threadpool)                                                                    \
    {                                                                                          \
        backend = "threadpool";                                                                \
        setup();                                                                               \
        body_##name();                                                                         \
        teardown();                                                                            \
    }                                                                                          \
    static void body_##name(void)

BOTH(append_recover)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    ASSERT_STR_EQ(eventlog_backend(log), backend);
    ASSERT_EQ(c.nrecs, 0);
    append_n(log, &c, 300, 0); /* ~90 KB over 16 KiB segments: several rotations */
    ASSERT_EQ(c.ndone, 0);     /* callbacks never run inside append */
    run_until_done(&c, 300);
    ASSERT_EQ(c.nfailed, 0);
    uint64_t records, flushes, segments;
    eventlog_counters(log, &records, &flushes, &segments);
    ASSERT_EQ(records, 300);
    ASSERT_GT(segments, 3);
    ASSERT_LT(flushes, 300); /* group commit: appends made together share flushes */
    close_log(log);

    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), 0);
    ASSERT_EQ(r.nrecs, 300);
    for (int i = 0; i < 300; i++) {
        ASSERT_EQ(r.recs[i].seq, i + 1);
        ASSERT_EQ(r.recs[i].type, i % 5 + 1);
        ASSERT_EQ(r.recs[i].len, i * 37 % 600);
        for (size_t k = 0; k < r.recs[i].len; k++)
            ASSERT_EQ(r.recs[i].payload[k], 'a' + (i + (int)k) % 26);
    }
    /* Appending continues after the recovered records. */
    struct ctx a = {0};
    ASSERT_EQ(eventlog_append(log, 9, "x", 1, on_appended, &a), 0);
    run_until_done(&a, 1);
    close_log(log);
    ctx_reset(&r);
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), 0);
    ASSERT_EQ(r.nrecs, 301);
    ASSERT_EQ(r.recs[300].seq, 301);
    ASSERT_EQ(r.recs[300].type, 9);
    close_log(log);
    ctx_reset(&r);
    ctx_reset(&c);
}

BOTH(callbacks_in_order_and_barrier)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    struct ctx b = {0};
    ASSERT_EQ(eventlog_barrier(log, on_appended, &b), 0); /* nothing pending: still async */
    ASSERT_EQ(b.ndone, 0);
    run_until_done(&b, 1);
    append_n(log, &c, 50, 10);
    ASSERT_EQ(eventlog_barrier(log, on_appended, &b), 0);
    run_until_done(&b, 2);
    ASSERT_EQ(c.ndone, 50); /* the barrier fired after everything before it */
    ASSERT_EQ(eventlog_append(log, 1, NULL, eventlog_record_max(log) + 1, NULL, NULL), -E2BIG);
    close_log(log);
    ctx_reset(&c);
}

BOTH(torn_tail_every_offset)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    append_n(log, &c, 3, 100);
    run_until_done(&c, 3);
    close_log(log);
    char *seg = seg_file("l", -1);
    /* Segment header 32 bytes, records of 24 + 100: the last one spans [280, 404). */
    off_t start = 32 + 2 * 124, end = 32 + 3 * 124;
    for (off_t cut = start; cut <= end; cut++) {
        char sub[32], path[PATH_MAX + 64];
        snprintf(sub, sizeof(sub), "t%ld", (long)cut);
        snprintf(path, sizeof(path), "%s/%s", dir, sub);
        ASSERT_EQ(mkdir(path, 0700), 0);
        const char *name = strrchr(seg, '/');
        snprintf(path, sizeof(path), "%s/%s%s", dir, sub, name);
        copy_file(seg, path, cut);
        static struct ctx r;
        ctx_reset(&r);
        ASSERT_EQ(open_log(&log, sub, &r, false, NULL, NULL), 0);
        ASSERT_EQ(r.nrecs, cut == end ? 3 : 2);
        /* The log continues right after the last whole record. */
        struct ctx a = {0};
        ASSERT_EQ(eventlog_append(log, 7, "after", 5, on_appended, &a), 0);
        run_until_done(&a, 1);
        ASSERT_EQ(a.nfailed, 0);
        close_log(log);
        ctx_reset(&r);
        ASSERT_EQ(open_log(&log, sub, &r, false, NULL, NULL), 0);
        ASSERT_EQ(r.nrecs, cut == end ? 4 : 3);
        ASSERT_EQ(r.recs[r.nrecs - 1].type, 7);
        ASSERT_EQ(r.recs[r.nrecs - 1].seq, r.nrecs);
        close_log(log);
        ctx_reset(&r);
        struct stat st;
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_size, SEG); /* the preallocation is back */
    }
    free(seg);
    ctx_reset(&c);
}

BOTH(zero_tail_is_fine)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    append_n(log, &c, 5, 50);
    run_until_done(&c, 5);
    close_log(log);
    char *seg = seg_file("l", -1);
    struct stat st;
    ASSERT_EQ(stat(seg, &st), 0);
    ASSERT_EQ(st.st_size, SEG); /* preallocated; all but 402 bytes are zeros */
    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), 0);
    ASSERT_EQ(r.nrecs, 5);
    close_log(log);
    ASSERT_EQ(count_files("l", "damaged"), 0);
    free(seg);
    ctx_reset(&r);
    ctx_reset(&c);
}

static void flipped_bit_case(off_t off)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    append_n(log, &c, 5, 100);
    run_until_done(&c, 5);
    close_log(log);
    char *seg = seg_file("l", -1);
    flip_bit(seg, off);
    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), -EBADMSG);
    ctx_reset(&r);
    /* --repair keeps a copy and cuts the segment at the damage. */
    ASSERT_EQ(open_log(&log, "l", &r, true, NULL, NULL), 0);
    ASSERT_EQ(r.nrecs, 2);
    ASSERT_EQ(count_files("l", ".damaged-"), 1);
    struct ctx a = {0};
    ASSERT_EQ(eventlog_append(log, 8, "new", 3, on_appended, &a), 0);
    run_until_done(&a, 1);
    close_log(log);
    ctx_reset(&r);
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), 0);
    ASSERT_EQ(r.nrecs, 3);
    ASSERT_EQ(r.recs[2].type, 8);
    close_log(log);
    free(seg);
    ctx_reset(&r);
    ctx_reset(&c);
}

/* Record 3 of 5 starts at 32 + 2 * 124 = 280. */
BOTH(flipped_bit_in_payload_refuses)
{
    flipped_bit_case(280 + 24 + 50);
}

BOTH(flipped_bit_in_length_refuses)
{
    flipped_bit_case(280 + 5);
}

BOTH(damaged_middle_segment_header_refuses)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    append_n(log, &c, 200, 300);
    run_until_done(&c, 200);
    close_log(log);
    char *seg = seg_file("l", 1);
    flip_bit(seg, 20);
    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), -EBADMSG);
    free(seg);
    ctx_reset(&r);
    ctx_reset(&c);
}

BOTH(unfinished_last_segment_removed)
{
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, NULL, NULL), 0);
    append_n(log, &c, 4, 10);
    run_until_done(&c, 4);
    close_log(log);
    /* A segment whose creation was interrupted before its header was written. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/l/%016x.seg", dir, 5);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(ftruncate(fd, SEG), 0);
    close(fd);
    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, NULL), 0);
    ASSERT_EQ(r.nrecs, 4);
    close_log(log);
    ctx_reset(&r);
    ctx_reset(&c);
}

static int rotations;
static struct eventlog *ckpt_log;

/* The owner's live state is "the last record of type 1": it rewrites it. */
static bool on_rotate(void *data)
{
    rotations++;
    ASSERT_EQ(eventlog_append(ckpt_log, 1, "live", 4, NULL, NULL), 0);
    return true;
}

BOTH(checkpoint_deletes_old_segments)
{
    static struct ctx c;
    ASSERT_EQ(open_log(&ckpt_log, "l", &c, false, NULL, NULL), 0);
    eventlog_set_rotate(ckpt_log, on_rotate, NULL);
    for (int round = 0; round < 20; round++) {
        append_n(ckpt_log, &c, 50, 200);
        run_until_done(&c, (size_t)(round + 1) * 50);
    }
    ASSERT_GT(rotations, 5);
    ASSERT_LE(count_files("l", ".seg"), 2);
    close_log(ckpt_log);
    static struct ctx r;
    ASSERT_EQ(open_log(&ckpt_log, "l", &r, false, NULL, NULL), 0);
    ASSERT_GT(r.nrecs, 0);
    ASSERT_SLICE_EQ(((struct slice){r.recs[0].payload, r.recs[0].len}), "live");
    close_log(ckpt_log);
    ctx_reset(&r);
    ctx_reset(&c);
}

/* --- the fault-injecting backend ----------------------------------------------------- */

TEST(faulty_short_writes_still_durable)
{
    setup();
    struct eventlog_faults f = {.short_write_max = 7};
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, &f, "faulty"), 0);
    append_n(log, &c, 40, 0);
    run_until_done(&c, 40);
    ASSERT_EQ(c.nfailed, 0);
    close_log(log);
    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, "threadpool"), 0);
    ASSERT_EQ(r.nrecs, 40);
    ASSERT_EQ(r.recs[39].len, 39 * 37 % 600);
    close_log(log);
    ctx_reset(&r);
    ctx_reset(&c);
    teardown();
}

TEST(faulty_fsync_eio_latches_read_only)
{
    setup();
    struct eventlog_faults f = {.fail_sync_after = 2, .sync_error = EIO};
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, &f, "faulty"), 0);
    for (int i = 0; i < 4; i++) { /* one flush each */
        ASSERT_EQ(eventlog_append(log, 1, "r", 1, on_appended, &c), 0);
        run_until_done(&c, (size_t)i + 1);
        ASSERT_EQ(c.statuses[i], i < 2 ? 0 : -EIO);
        if (i == 2)
            break;
    }
    ASSERT_EQ(eventlog_error(log), -EIO);
    ASSERT_EQ(eventlog_append(log, 1, "r", 1, on_appended, &c), -EIO);
    ASSERT_EQ(eventlog_barrier(log, on_appended, &c), -EIO);
    /* It stays read-only: EIO is not probed. */
    f.sync_error = 0;
    uint64_t until = clock_mono_ms() + 1300;
    while (clock_mono_ms() < until) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    ASSERT_EQ(eventlog_error(log), -EIO);
    close_log(log);
    ctx_reset(&c);
    teardown();
}

TEST(faulty_enospc_recovers_when_space_returns)
{
    setup();
    struct eventlog_faults f = {0};
    static struct ctx c;
    struct eventlog *log;
    ASSERT_EQ(open_log(&log, "l", &c, false, &f, "faulty"), 0);
    append_n(log, &c, 3, 10);
    run_until_done(&c, 3);
    f.write_error = ENOSPC;
    append_n(log, &c, 2, 10);
    run_until_done(&c, 5);
    ASSERT_EQ(c.statuses[3], -ENOSPC);
    ASSERT_EQ(c.statuses[4], -ENOSPC);
    ASSERT_EQ(eventlog_error(log), -ENOSPC);
    ASSERT_EQ(eventlog_append(log, 1, "r", 1, NULL, NULL), -ENOSPC);
    f.write_error = 0; /* space is back: the probe notices within a second or two */
    uint64_t deadline = clock_mono_ms() + 10000;
    while (eventlog_error(log) != 0 && clock_mono_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(eventlog_error(log), 0);
    append_n(log, &c, 2, 20);
    run_until_done(&c, 7);
    ASSERT_EQ(c.statuses[5], 0);
    close_log(log);
    /* The failed records never come back; the ones before and after do. */
    static struct ctx r;
    ASSERT_EQ(open_log(&log, "l", &r, false, NULL, "threadpool"), 0);
    ASSERT_EQ(r.nrecs, 5);
    ASSERT_EQ(r.recs[3].len, 20);
    ASSERT_EQ(r.recs[3].seq, 4);
    close_log(log);
    ctx_reset(&r);
    ctx_reset(&c);
    teardown();
}

/* --- benchmark helpers --------------------------------------------------------------- */

static size_t bench_count;

static void on_bench_replay(uint32_t type, uint64_t seq, struct slice payload, void *data)
{
    bench_count++;
}

static void on_bench_appended(int status, void *data)
{
    if (status != 0)
        TEST_FAIL("append failed: %d", status);
    bench_count++;
}

static int bench(int argc, char **argv)
{
    uv_loop_init(&loop);
    struct eventlog *log;
    char err[512] = "";
    struct eventlog_options o = {argv[2], 64 * 1024 * 1024, "auto", false, NULL};
    uint64_t t0 = clock_mono_us();
    if (eventlog_open(&log, &loop, &o, on_bench_replay, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "eventlog_open: %s\n", err);
        return 1;
    }
    uint64_t t1 = clock_mono_us();
    if (strcmp(argv[1], "bench-recover") == 0) {
        printf("{\"records\": %zu, \"recovery_s\": %.3f}\n", bench_count,
               (double)(t1 - t0) / 1e6);
    } else {
        size_t n = (size_t)strtoull(argv[3], NULL, 10), size = (size_t)strtoull(argv[4], NULL, 10);
        char *payload = xcalloc(1, size + 1);
        memset(payload, 'p', size);
        bench_count = 0;
        for (size_t i = 0; i < n; i++) {
            if (eventlog_append(log, 1, payload, size, on_bench_appended, NULL) < 0)
                return 1;
            if (i % 10000 == 9999) /* bounded memory: let batches drain */
                while (bench_count + 20000 < i)
                    uv_run(&loop, UV_RUN_ONCE);
        }
        while (bench_count < n)
            uv_run(&loop, UV_RUN_ONCE);
        free(payload);
        printf("{\"written\": %zu, \"write_s\": %.3f}\n", n, (double)(clock_mono_us() - t1) / 1e6);
    }
    eventlog_close(log, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) != 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strncmp(argv[1], "bench-", 6) == 0)
        return bench(argc, argv);
    return test_main(argc, argv);
}
