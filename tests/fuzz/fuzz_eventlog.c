/*
 * Fuzz driver for event-log recovery: eventlog_open() on damaged segment files, the
 * record decoding (length, CRC32C, sequence numbers), torn-tail truncation, the
 * refusal of corruption before valid data and --repair, through the public API on a
 * scratch folder (tmpfs when there is one), the way the daemon opens its log.
 *
 * Input: byte 0 chooses the mode (bit 0: repair; bit 1: raw) and byte 1 a parameter.
 * - Built (bit 1 clear): byte 1 % 48 records are appended through eventlog_append
 *   (their lengths from the next bytes, times 8 so that 4 KiB segments rotate; their
 *   payloads a pattern of their sequence number), the log is closed, and the rest of
 *   the input is damage: triples (offset high, offset low, value) that XOR value into
 *   the segment files seen as one run of bytes in name order, or with value 0 cut the
 *   file there.
 * - Raw (bit 1 set): the rest of the input is the content of the segment files (one,
 *   or two split at byte 1 * 32), named 1 and, for the second, by its header.
 *
 * Properties: open returns 0, or -EBADMSG only without repair; replayed sequence
 * numbers increase (by one, but where a repair cut records out) and, in the built mode, is exactly the
 * record appended with that number (damage never makes up a record); an undamaged
 * log replays everything. After a successful open an append is durable and a second
 * open, without repair, succeeds and replays the same records and the new one: what
 * recovery leaves behind is a clean log.
 */
#include "fuzz.h"

#include "fnd/eventlog.h"
#include "fnd/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_SIZE 4096
#define MAX_RECORDS 48
#define MAX_SEGMENTS 64

struct rec {
    uint64_t seq;
    uint32_t type;
    uint32_t len;
    uint32_t sum;
};

struct replayed {
    struct rec recs[MAX_RECORDS + 2];
    size_t n;
    bool overflow;
};

static char scratch[PATH_MAX];
static char dir[PATH_MAX + 8];
static uv_loop_t loop;
static int pending;

static uint32_t checksum(const void *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 16777619u;
    return h;
}

static void pattern(unsigned char *out, size_t len, uint64_t seq)
{
    for (size_t k = 0; k < len; k++)
        out[k] = (unsigned char)(seq * 31 + k * 7);
}

static void on_replay(uint32_t type, uint64_t seq, struct slice payload, void *data)
{
    struct replayed *r = data;
    if (r->n > 0)
        FUZZ_CHECK(seq > r->recs[r->n - 1].seq); /* gaps only where repair cut records */
    if (r->n == MAX_RECORDS + 2) {
        r->overflow = true;
        return;
    }
    r->recs[r->n++] = (struct rec){seq, type, (uint32_t)payload.len,
                                   checksum(payload.ptr, payload.len)};
}

static void on_appended(int status, void *data)
{
    (void)data;
    FUZZ_CHECK(status == 0);
    pending--;
}

/* Removes every file of the log's folder (it has no subfolders). */
static void clear_dir(void)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void remove_scratch(void)
{
    clear_dir();
    rmdir(dir);
    rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : P_tmpdir;
    snprintf(scratch, sizeof(scratch), "%s/fnd-fuzz-eventlog-XXXXXX", base);
    FUZZ_CHECK(mkdtemp(scratch) != NULL);
    snprintf(dir, sizeof(dir), "%s/log", scratch);
    atexit(remove_scratch);
    log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT); /* repairs and truncations warn on each input */
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    return 0;
}

static int open_log(struct eventlog **log, bool repair, struct replayed *r)
{
    struct eventlog_options o = {dir, SEG_SIZE, "threadpool", repair, NULL};
    char err[512] = "";
    memset(r, 0, sizeof(*r));
    int rc = eventlog_open(log, &loop, &o, on_replay, r, err, sizeof(err));
    if (rc < 0)
        FUZZ_CHECK(err[0] != '\0');
    return rc;
}

static void close_log(struct eventlog *log)
{
    eventlog_close(log, NULL, NULL);
    FUZZ_CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
}

static int append(struct eventlog *log, uint64_t seq, uint32_t type, size_t len,
                  struct rec *out)
{
    static unsigned char payload[256 * 8];
    pattern(payload, len, seq);
    int rc = eventlog_append(log, type, payload, len, on_appended, NULL);
    if (rc == 0) {
        pending++;
        *out = (struct rec){seq, type, (uint32_t)len, checksum(payload, len)};
    }
    return rc;
}

static void run_appends(void)
{
    while (pending > 0)
        uv_run(&loop, UV_RUN_ONCE);
}

/* The log's segment files in name order (the order of their sequence numbers). */
static size_t list_segments(char names[][32], size_t max)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (len == 20 && strcmp(e->d_name + 16, ".seg") == 0)
            memcpy(names[n++], e->d_name, 21); /* 16 digits, ".seg", NUL */
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort: a handful of names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[32];
            memcpy(t, names[j], 32);
            memcpy(names[j], names[j - 1], 32);
            memcpy(names[j - 1], t, 32);
        }
    return n;
}

/* Applies one damage triple; whether it changed anything. */
static bool damage(uint32_t off, uint8_t value)
{
    static char names[MAX_SEGMENTS][32];
    size_t n = list_segments(names, MAX_SEGMENTS);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + 40];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        FUZZ_CHECK(stat(path, &st) == 0);
        if (off >= (uint64_t)st.st_size) {
            off -= (uint32_t)st.st_size;
            continue;
        }
        if (value == 0)
            return truncate(path, off) == 0;
        int fd = open(path, O_RDWR | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        unsigned char b;
        FUZZ_CHECK(pread(fd, &b, 1, off) == 1);
        b ^= value;
        FUZZ_CHECK(pwrite(fd, &b, 1, off) == 1);
        close(fd);
        return true;
    }
    return false;
}

static void write_file(uint64_t first_seq, const uint8_t *data, size_t len)
{
    char path[PATH_MAX + 40];
    snprintf(path, sizeof(path), "%s/%016" PRIx64 ".seg", dir, first_seq);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool repair = data[0] & 1, raw = data[0] & 2;
    clear_dir();
    mkdir(dir, 0700);
    static struct rec appended[MAX_RECORDS];
    size_t nappended = 0;
    bool damaged = false;
    const uint8_t *rest = data + 2;
    size_t restlen = size - 2;

    if (raw) {
        size_t split = FND_MIN((size_t)data[1] * 32, restlen);
        write_file(1, rest, split ? split : restlen);
        if (split && split < restlen) {
            /* The second file is named after the first sequence number its header
             * claims (bytes 16-23 of a segment header), so that it can be read. */
            uint64_t seq = restlen - split >= 24 ? le64(rest + split + 16) : 2;
            write_file(seq ? seq : 2, rest + split, restlen - split);
        }
        damaged = true;
    } else {
        struct eventlog *log;
        struct replayed r;
        FUZZ_CHECK(open_log(&log, false, &r) == 0 && r.n == 0);
        size_t want = data[1] % (MAX_RECORDS + 1);
        for (size_t i = 0; i < want; i++) {
            size_t len = i < restlen ? (size_t)rest[i] * 8 : i * 13 % 200;
            int rc = append(log, i + 1, (uint32_t)(i % 5 + 1), len, &appended[nappended]);
            FUZZ_CHECK(rc == 0 || rc == -E2BIG);
            if (rc == -E2BIG)
                break;
            nappended++;
        }
        run_appends();
        close_log(log);
        size_t used = FND_MIN(want, restlen);
        for (size_t i = used; i + 3 <= restlen; i += 3)
            damaged |= damage((uint32_t)rest[i] << 8 | rest[i + 1], rest[i + 2]);
    }

    struct eventlog *log;
    static struct replayed first, second;
    int rc = open_log(&log, repair, &first);
    FUZZ_CHECK(rc == 0 || (rc == -EBADMSG && !repair));
    if (!raw) {
        FUZZ_CHECK(!first.overflow && first.n <= nappended);
        if (!damaged && rc == 0)
            FUZZ_CHECK(first.n == nappended);
        for (size_t i = 0; i < first.n; i++) {
            const struct rec *got = &first.recs[i], *want = &appended[got->seq - 1];
            FUZZ_CHECK(got->seq >= 1 && got->seq <= nappended);
            FUZZ_CHECK(got->type == want->type && got->len == want->len &&
                       got->sum == want->sum);
        }
    }
    if (rc < 0)
        return 0;

    /* What recovery left is a clean log: it takes an append and opens unrepaired. */
    uint64_t next = first.n ? first.recs[first.n - 1].seq + 1 : 0;
    struct rec added = {0};
    bool did_append = eventlog_error(log) == 0 &&
                      append(log, next, 9, 5, &added) == 0;
    run_appends();
    close_log(log);
    FUZZ_CHECK(open_log(&log, false, &second) == 0);
    close_log(log);
    if (first.overflow)
        return 0;
    size_t expect = first.n + (did_append ? 1 : 0);
    FUZZ_CHECK(second.n == expect || (second.overflow && expect > MAX_RECORDS + 2));
    for (size_t i = 0; i < first.n && i < second.n; i++) /* fields: the struct has padding */
        FUZZ_CHECK(first.recs[i].seq == second.recs[i].seq &&
                   first.recs[i].type == second.recs[i].type &&
                   first.recs[i].len == second.recs[i].len &&
                   first.recs[i].sum == second.recs[i].sum);
    if (did_append && first.n > 0 && second.n == expect) {
        const struct rec *last = &second.recs[second.n - 1];
        FUZZ_CHECK(last->type == 9 && last->len == 5 && last->seq >= next);
        FUZZ_CHECK(last->sum == added.sum);
    }
    return 0;
}
