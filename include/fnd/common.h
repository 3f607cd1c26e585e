/*
 * Small definitions every module uses: byte slices, container_of, the aborting
 * allocation wrappers, a monotonic clock and a few file-system helpers.
 *
 * Out of memory is not an error path in fnd: every size driven by input is bounded
 * before it is allocated, so a failed allocation means the machine is gone and the
 * wrappers abort with a message (as redis's zmalloc does).
 */
#ifndef FND_COMMON_H
#define FND_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define FND_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FND_MAX(a, b) ((a) > (b) ? (a) : (b))

/* A borrowed run of bytes; never NUL-terminated by contract. The owner says how long
 * the bytes stay valid. */
struct slice {
    const char *ptr;
    size_t len;
};

#define SLICE_NULL ((struct slice){NULL, 0})
#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})

static inline struct slice slice_from_cstr(const char *s)
{
    return (struct slice){s, s ? strlen(s) : 0};
}

/* Exact, case-sensitive comparison with a C string. */
bool slice_eq(struct slice s, const char *cstr);
/* ASCII case-insensitive comparison with a C string (header names). */
bool slice_eq_nocase(struct slice s, const char *cstr);

/* Allocation wrappers: never return NULL; abort on exhaustion. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);
/* Writes all len bytes to fd, retrying short writes and EINTR. 0, or a negative errno
 * (-EIO when the descriptor stops taking bytes). */
int write_all(int fd, const void *data, size_t len);
/* Cryptographically random bytes (getrandom), served from a pool: call it from the
 * loop thread only. */
void random_bytes(void *out, size_t n);
/* Removes a tree without following links (rm -rf). 0 or a negative errno; a missing
 * path is 0. */
int remove_tree(const char *path);
/* The path of name in the folder of the running executable (/proc/self/exe), where
 * the helpers and runtimes built beside fnd live; name alone when that is unknown.
 * Freed by the caller. */
char *exe_sibling_path(const char *name);
/* printf into a fresh allocation. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds and microseconds from CLOCK_MONOTONIC, and wall-clock milliseconds
 * since the Unix epoch. */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
int64_t clock_wall_ms(void);

/* Text written for every invocation is built from these rather than printf, whose
 * parsing of the format was a visible part of the daemon's time per invocation. */

/* v in decimal, zero-padded to at least min_digits (at most 20), at out without a NUL;
 * the number of characters written (at most 20). */
size_t format_uint(char *out, uint64_t v, unsigned min_digits);
/* ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), NUL-terminated; returns
 * WALL_TIME_LEN. The text up to the second is cached per thread. */
#define WALL_TIME_LEN 24
size_t format_wall_ms(char out[WALL_TIME_LEN + 1], int64_t ms);

/* A line put together piece by piece in a fixed array of cap bytes: it always holds a
 * NUL-terminated string, and what would pass its end is cut. */
struct text {
    char *data;
    size_t len;
    size_t cap; /* counts the NUL: at most cap - 1 characters */
};

static inline struct text text_on(char *data, size_t cap)
{
    data[0] = '\0';
    return (struct text){data, 0, cap};
}
void text_put(struct text *t, const char *s, size_t len);
void text_put_str(struct text *t, const char *s);
#define text_put_lit(t, lit) text_put(t, lit, sizeof(lit) - 1)
void text_put_uint(struct text *t, uint64_t v, unsigned min_digits);

#endif
