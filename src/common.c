/*
 * Allocation wrappers, slice helpers, clocks and file-system helpers shared by every
 * module (see include/fnd/common.h for why allocation failure aborts).
 */
#include "fnd/common.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t size)
{
    fprintf(stderr, "fnd: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); /* only a bad format string gets here */
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

bool slice_eq(struct slice s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

bool slice_eq_nocase(struct slice s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || strncasecmp(s.ptr, cstr, n) == 0);
}

uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000u;
}

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t format_uint(char *out, uint64_t v, unsigned min_digits)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < min_digits && n < sizeof(digits))
        digits[n++] = '0';
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

size_t format_wall_ms(char out[WALL_TIME_LEN + 1], int64_t ms)
{
    /* gmtime_r and strftime once a second: log lines and function records come in
     * bursts within the same second. Per thread, as the logger runs on several. */
    static _Thread_local char second_text[20]; /* "YYYY-MM-DDTHH:MM:SS" */
    static _Thread_local int64_t second_at = INT64_MIN;
    int64_t secs = ms / 1000;
    if (secs != second_at) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(second_text, sizeof(second_text), "%Y-%m-%dT%H:%M:%S", &tm);
        second_at = secs;
    }
    memcpy(out, second_text, 19);
    out[19] = '.';
    format_uint(out + 20, (uint64_t)(ms % 1000), 3);
    out[23] = 'Z';
    out[24] = '\0';
    return WALL_TIME_LEN;
}

void text_put(struct text *t, const char *s, size_t len)
{
    len = FND_MIN(len, t->cap - 1 - t->len);
    memcpy(t->data + t->len, s, len);
    t->len += len;
    t->data[t->len] = '\0';
}

void text_put_str(struct text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

void text_put_uint(struct text *t, uint64_t v, unsigned min_digits)
{
    char digits[20];
    size_t n = format_uint(digits, v, min_digits);
    text_put(t, digits, n);
}

/* A pool refilled from getrandom(2) 4 KiB at a time, so that ids on the hot path cost
 * no system call. */
void random_bytes(void *dst, size_t n)
{
    unsigned char *out = dst;
    static unsigned char pool[4096];
    static size_t avail;
    while (n > 0) {
        if (avail == 0) {
            size_t got = 0;
            while (got < sizeof(pool)) {
                ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
                if (r < 0)
                    abort(); /* getrandom only fails on bad arguments here */
                got += (size_t)r;
            }
            avail = sizeof(pool);
        }
        size_t take = n < avail ? n : avail;
        memcpy(out, pool + sizeof(pool) - avail, take);
        avail -= take;
        out += take;
        n -= take;
    }
}

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
        return -errno;
    return 0;
}

char *exe_sibling_path(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return xstrdup(name);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    return xasprintf("%s/%s", self, name);
}
