/*
 * fnd-bundle: the helper process that does the daemon's archive work, so that the
 * daemon never maps libarchive nor parses an untrusted zip in its own address space.
 * The daemon (and the CLI) start it through unpacker.c, once per bundle:
 *
 *     fnd-bundle unpack DEST MAX_BYTES MAX_FILES    the zip on fd 0, unpacked into DEST
 *     fnd-bundle zip SRC MAX_BYTES MAX_FILES        the zip of folder SRC on fd 1
 *
 * It confines itself first (bundle_sandbox.c), then reads its input, then runs
 * bundle.c. An error is one line on fd 2, bundle.c's text ("../x: path leaves the
 * bundle"), and the exit status is the positive errno: EINVAL for a corrupt or
 * hostile bundle, EFBIG past a limit, another for an I/O failure; 0 is success.
 */
#include "fnd/bundle.h"
#include "fnd/bundle_sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer stops the process with ptrace at exit, which the filter refuses. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}
#endif

static int parse_u64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

/* Reads fd to its end into in: -EFBIG once it holds more than max bytes, else 0 or the
 * read's errno. */
static int read_all(int fd, struct buf *in, size_t max)
{
    buf_init(in, max + 1); /* a byte past the bound tells a zip at the bound from a larger one */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && buf_reserve(in, (size_t)st.st_size) < 0)
        return -EFBIG;
    for (;;) {
        if (in->len > max)
            return -EFBIG;
        size_t want = FND_MIN(READ_CHUNK, in->max - in->len);
        (void)buf_reserve(in, want); /* within the limit: cannot fail */
        ssize_t n = read(fd, in->data + in->len, want);
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        in->len += (size_t)n;
        in->data[in->len] = '\0';
    }
}

static int unpack(const char *dest, const struct bundle_limits *limits, char *err,
                  size_t errsize)
{
    struct buf in;
    int rc = read_all(0, &in, bundle_zip_max(limits));
    if (rc == -EFBIG)
        snprintf(err, errsize, "bundle: the zip is too large");
    else if (rc < 0)
        snprintf(err, errsize, "bundle: reading the zip: %s", strerror(-rc));
    else
        rc = bundle_unpack_zip(in.data, in.len, dest, limits, err, errsize);
    buf_release(&in);
    return rc;
}

static int zip(const char *src, const struct bundle_limits *limits, char *err, size_t errsize)
{
    struct buf out;
    buf_init(&out, bundle_zip_max(limits));
    int rc = bundle_zip_dir(src, &out, limits, err, errsize);
    if (rc == 0 && (rc = write_all(1, out.data, out.len)) < 0)
        snprintf(err, errsize, "bundle: writing the zip: %s", strerror(-rc));
    buf_release(&out);
    return rc;
}

int main(int argc, char **argv)
{
    char err[512] = "";
    struct bundle_limits limits;
    bool is_unpack = argc == 5 && strcmp(argv[1], "unpack") == 0;
    bool is_zip = argc == 5 && strcmp(argv[1], "zip") == 0;
    int rc;
    if ((!is_unpack && !is_zip) || parse_u64(argv[3], &limits.max_bytes) < 0 ||
        parse_u64(argv[4], &limits.max_files) < 0) {
        snprintf(err, sizeof(err), "usage: fnd-bundle unpack DEST MAX_BYTES MAX_FILES < zip, "
                                   "or fnd-bundle zip SRC MAX_BYTES MAX_FILES > zip");
        rc = -EINVAL;
    } else {
        rc = bundle_sandbox_enter(is_zip ? BUNDLE_TASK_ZIP : BUNDLE_TASK_UNPACK, &limits, err,
                                  sizeof(err));
        if (rc == 0)
            rc = is_zip ? zip(argv[2], &limits, err, sizeof(err))
                        : unpack(argv[2], &limits, err, sizeof(err));
    }
    if (rc < 0) {
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "bundle: %s", strerror(-rc));
        for (char *c = err; *c; c++) /* one line, whatever libarchive's text held */
            if (*c == '\n')
                *c = ' ';
        dprintf(2, "%s\n", err);
    }
    /* An errno is below 256, so it survives as an exit status. */
    return rc < 0 ? (-rc < 256 ? -rc : EIO) : 0;
}
