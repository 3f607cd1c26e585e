/*
 * Fuzz driver for bundle unpacking: bundle_unpack_zip() on arbitrary bytes, which is
 * libarchive's zip reader from memory plus fnd's entry checks (paths, links, modes,
 * sizes). Each input is unpacked into a fresh folder under a scratch folder on tmpfs
 * when there is one, then removed.
 *
 * Properties checked on success: nothing in the tree is a hard link, a device, FIFO
 * or socket, or setuid/setgid; every link resolves inside the bundle (resolving its
 * longest existing prefix, so a dangling link is judged by where it would point);
 * the file count and bytes are within the limits. On failure: the destination does
 * not exist, and the error names a reason.
 */
#include "fuzz.h"

#include "fnd/bundle.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[PATH_MAX];
static char dest[PATH_MAX + 32];
static char dest_real[PATH_MAX];
static const struct bundle_limits limits = {.max_bytes = 1 << 20, .max_files = 64};
static uint64_t files, bytes;

static void remove_scratch(void)
{
    remove_tree(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : P_tmpdir;
    snprintf(scratch, sizeof(scratch), "%s/fnd-fuzz-bundle-XXXXXX", base);
    FUZZ_CHECK(mkdtemp(scratch) != NULL);
    atexit(remove_scratch);
    return 0;
}

/* Whether the link at path resolves inside dest_real: resolves the target, or the
 * longest prefix of it that exists. */
static bool link_inside(const char *path)
{
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    FUZZ_CHECK(n >= 0);
    target[n] = '\0';
    if (target[0] == '/')
        return false;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    for (;;) {
        char joined[2 * PATH_MAX + 2], real[PATH_MAX];
        snprintf(joined, sizeof(joined), "%s/%s", dir, target);
        if (realpath(joined, real) != NULL) {
            size_t l = strlen(dest_real);
            return strncmp(real, dest_real, l) == 0 && (real[l] == '\0' || real[l] == '/');
        }
        if (errno == ELOOP)
            return true; /* a loop of links inside the bundle leads nowhere */
        char *slash = strrchr(target, '/');
        if (slash == NULL)
            return true; /* only the last component is missing: it stays in dir */
        *slash = '\0';
    }
}

static int check_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level == 0)
        return 0;
    files++;
    FUZZ_CHECK(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) || S_ISLNK(st->st_mode));
    FUZZ_CHECK((st->st_mode & (S_ISUID | S_ISGID)) == 0);
    if (S_ISREG(st->st_mode)) {
        FUZZ_CHECK(st->st_nlink == 1);
        bytes += (uint64_t)st->st_size;
    }
    if (S_ISLNK(st->st_mode) && !link_inside(path)) {
        fprintf(stderr, "%s: the link leaves the bundle\n", path);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long run;
    snprintf(dest, sizeof(dest), "%s/%lu", scratch, run++);
    char err[256] = "";
    int rc = bundle_unpack_zip(data, size, dest, &limits, err, sizeof(err));
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL || rc == -EFBIG);
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(access(dest, F_OK) < 0 && errno == ENOENT);
        return 0;
    }
    FUZZ_CHECK(realpath(dest, dest_real) != NULL);
    files = bytes = 0;
    FUZZ_CHECK(nftw(dest, check_entry, 16, FTW_PHYS) == 0);
    FUZZ_CHECK(files <= limits.max_files && bytes <= limits.max_bytes);
    FUZZ_CHECK(remove_tree(dest) == 0);
    return 0;
}
