/*
 * Unit tests for bundle.c: safe unpacking of hostile zips, limits, and packing folders
 * deterministically. The zips are built in the test with libarchive's writer, so
 * every hostile shape is exact.
 */
#include "fnd/bundle.h"

#include "test.h"
#include "testzip.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static char *tmpdir(void)
{
    char *t = strdup("/tmp/fnd-bundle-XXXXXX");
    ASSERT(mkdtemp(t) != NULL);
    return t;
}

static const struct bundle_limits roomy = {1 << 20, 100};

/* Unpacks entries into <tmp>/dest; asserts the outcome; checks nothing escaped. */
static int unpack(const struct entry *e, size_t n, const struct bundle_limits *limits,
                  char **root_out)
{
    struct buf zip;
    make_zip(&zip, e, n);
    char *root = tmpdir();
    char dest[256], err[256] = "";
    snprintf(dest, sizeof(dest), "%s/dest", root);
    int rc = bundle_unpack_zip(zip.data, zip.len, dest, limits, err, sizeof(err));
    buf_release(&zip);
    if (rc < 0) {
        struct stat st;
        ASSERT_EQ(stat(dest, &st), -1); /* a refused bundle leaves nothing */
        ASSERT(err[0] != '\0');
    }
    /* Nothing beside dest, whatever happened. */
    char probe[300];
    const char *escapes[] = {"evil", "x", "passwd"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(probe, sizeof(probe), "%s/%s", root, escapes[i]);
        ASSERT_EQ(access(probe, F_OK), -1);
    }
    *root_out = root;
    return rc;
}

static void cleanup(char *root)
{
    ASSERT_EQ(remove_tree(root), 0);
    free(root);
}

TEST(good_zip_unpacks)
{
    struct entry e[] = {
        {"app.py", AE_IFREG, 0644, "print(1)\n", NULL},
        {"lib/", AE_IFDIR, 0755, NULL, NULL},
        {"lib/util.py", AE_IFREG, 0644, "x = 2\n", NULL},
        {"bin/tool", AE_IFREG, 0755, "#!/bin/sh\n", NULL},
        {"./alias", AE_IFLNK, 0777, "lib/util.py", NULL},
    };
    char *root;
    ASSERT_EQ(unpack(e, 5, &roomy, &root), 0);
    char p[300];
    snprintf(p, sizeof(p), "%s/dest/lib/util.py", root);
    ASSERT_STR_EQ(read_text(p), "x = 2\n");
    snprintf(p, sizeof(p), "%s/dest/alias", root);
    ASSERT_STR_EQ(read_text(p), "x = 2\n");
    struct stat st;
    snprintf(p, sizeof(p), "%s/dest/bin/tool", root);
    ASSERT_EQ(stat(p, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0755);
    snprintf(p, sizeof(p), "%s/dest/app.py", root);
    ASSERT_EQ(stat(p, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0644);
    cleanup(root);
}

static void refused(struct entry *bad, int expected)
{
    struct entry e[] = {{"ok.py", AE_IFREG, 0644, "1", NULL}, *bad};
    char *root;
    ASSERT_EQ(unpack(e, 2, &roomy, &root), expected);
    cleanup(root);
}

TEST(path_escapes_refused)
{
    refused(&(struct entry){"../evil", AE_IFREG, 0644, "x", NULL}, -EINVAL);
    refused(&(struct entry){"/tmp/evil", AE_IFREG, 0644, "x", NULL}, -EINVAL);
    refused(&(struct entry){"a/../../x", AE_IFREG, 0644, "x", NULL}, -EINVAL);
    refused(&(struct entry){"a//b", AE_IFREG, 0644, "x", NULL}, -EINVAL);
}

TEST(links_leaving_the_bundle_refused)
{
    refused(&(struct entry){"passwd", AE_IFLNK, 0777, "/etc/passwd", NULL}, -EINVAL);
    refused(&(struct entry){"up", AE_IFLNK, 0777, "../../x", NULL}, -EINVAL);
    refused(&(struct entry){"a/b/up", AE_IFLNK, 0777, "../../../x", NULL}, -EINVAL);
    /* Zip has no hard links (libarchive writes the data again), so a hard link cannot
     * arrive through a zip at all; bundle.c refuses one anyway, should a reader ever
     * report it. */
}

TEST(links_climbing_through_other_links_refused)
{
    /* Found by the bundle fuzzer: "s" -> ".." is inside (it names the bundle root), and
     * "t" -> "s/.." reads as inside, but resolves to the root's parent. */
    struct entry e[] = {
        {"d/", AE_IFDIR, 0755, NULL, NULL},
        {"d/s", AE_IFLNK, 0777, "..", NULL},
        {"t", AE_IFLNK, 0777, "d/s/..", NULL},
    };
    char *root;
    ASSERT_EQ(unpack(e, 3, &roomy, &root), -EINVAL);
    cleanup(root);
    /* Climbing first and then descending is still fine. */
    struct entry f[] = {
        {"d/", AE_IFDIR, 0755, NULL, NULL},
        {"d/f", AE_IFREG, 0644, "x", NULL},
        {"d/g", AE_IFLNK, 0777, "../d/./f", NULL},
    };
    ASSERT_EQ(unpack(f, 3, &roomy, &root), 0);
    cleanup(root);
}

TEST(writing_through_an_earlier_link_refused)
{
    /* "a" points at the bundle root ("."), then "a/evil" would be written through it.
     * That must not happen: the entry is refused, and nothing is written anywhere. */
    struct entry e[] = {
        {"a", AE_IFLNK, 0777, ".", NULL},
        {"a/evil", AE_IFREG, 0644, "x", NULL},
    };
    char *root;
    ASSERT_EQ(unpack(e, 2, &roomy, &root), -EINVAL);
    cleanup(root);
    /* The same with a link to a folder that exists: still never followed. */
    struct entry f[] = {
        {"d/", AE_IFDIR, 0755, NULL, NULL},
        {"l", AE_IFLNK, 0777, "d", NULL},
        {"l/x", AE_IFREG, 0644, "x", NULL},
    };
    ASSERT_EQ(unpack(f, 3, &roomy, &root), -EINVAL);
    cleanup(root);
}

/* Rewrites the Unix mode kept in the central directory for entry name: how a hostile
 * zip carries a FIFO or a device, which libarchive's writer refuses to produce. */
static void patch_mode(struct buf *zip, const char *name, unsigned mode)
{
    unsigned char *p = (unsigned char *)zip->data;
    size_t n = strlen(name);
    for (size_t i = 0; i + 46 + n <= zip->len; i++) {
        if (p[i] == 0x50 && p[i + 1] == 0x4b && p[i + 2] == 0x01 && p[i + 3] == 0x02 &&
            (size_t)(p[i + 28] | p[i + 29] << 8) == n && memcmp(p + i + 46, name, n) == 0) {
            p[i + 5] = 3; /* made by Unix, so the external attributes hold a mode */
            p[i + 40] = (unsigned char)mode;
            p[i + 41] = (unsigned char)(mode >> 8);
            return;
        }
    }
    TEST_FAIL("no central directory entry for %s", name);
}

static int unpack_patched(unsigned mode)
{
    struct entry e[] = {{"ok.py", AE_IFREG, 0644, "1", NULL}, {"special", AE_IFREG, 0644, "", NULL}};
    struct buf zip;
    make_zip(&zip, e, 2);
    patch_mode(&zip, "special", mode);
    char *root = tmpdir();
    char dest[256], err[256];
    snprintf(dest, sizeof(dest), "%s/dest", root);
    int rc = bundle_unpack_zip(zip.data, zip.len, dest, &roomy, err, sizeof(err));
    if (rc < 0) {
        ASSERT_EQ(access(dest, F_OK), -1);
    } else {
        /* Accepted only if it lands as a plain file (libarchive maps some modes to
         * regular files itself); a special file must never be created. */
        char path[300];
        struct stat st;
        snprintf(path, sizeof(path), "%s/special", dest);
        ASSERT_EQ(lstat(path, &st), 0);
        ASSERT(S_ISREG(st.st_mode));
        rc = 1;
    }
    buf_release(&zip);
    cleanup(root);
    return rc;
}

TEST(special_files_and_setuid_refused)
{
    ASSERT_EQ(unpack_patched(0100644), 1); /* positive control: the patch itself is fine */
    ASSERT_EQ(unpack_patched(0020644), -EINVAL); /* character device: refused */
    ASSERT_EQ(unpack_patched(0060644), -EINVAL); /* block device: refused */
    /* FIFO and socket modes: refused, or turned into a plain file by the reader. */
    ASSERT(unpack_patched(0010644) != 0);
    ASSERT(unpack_patched(0140644) != 0);
    refused(&(struct entry){"suid", AE_IFREG, 04755, "x", NULL}, -EINVAL);
    refused(&(struct entry){"sgid", AE_IFREG, 02755, "x", NULL}, -EINVAL);
}

TEST(limits)
{
    struct entry many[5];
    for (int i = 0; i < 5; i++)
        many[i] = (struct entry){NULL, AE_IFREG, 0644, "x", NULL};
    many[0].path = "a", many[1].path = "b", many[2].path = "c", many[3].path = "d",
    many[4].path = "e";
    struct bundle_limits few = {1 << 20, 4};
    char *root;
    ASSERT_EQ(unpack(many, 5, &few, &root), -EFBIG);
    cleanup(root);
    static char big[5000];
    memset(big, 'b', sizeof(big) - 1);
    struct entry large[] = {{"big", AE_IFREG, 0644, big, NULL}};
    struct bundle_limits small = {4096, 100};
    ASSERT_EQ(unpack(large, 1, &small, &root), -EFBIG);
    cleanup(root);
}

TEST(not_a_zip)
{
    char *root = tmpdir();
    char dest[256], err[256];
    snprintf(dest, sizeof(dest), "%s/dest", root);
    ASSERT_EQ(bundle_unpack_zip("garbage bytes", 13, dest, &roomy, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(bundle_unpack_zip("", 0, dest, &roomy, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(access(dest, F_OK), -1);
    cleanup(root);
}

TEST(zip_dir_is_deterministic_and_round_trips)
{
    char *root = tmpdir();
    char p[300], q[300];
    make_src_folder(root, p, sizeof(p));
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    char err[256];
    ASSERT_EQ(bundle_zip_dir(p, &a, &roomy, err, sizeof(err)), 0);
    ASSERT_EQ(bundle_zip_dir(p, &b, &roomy, err, sizeof(err)), 0);
    ASSERT_EQ(a.len, b.len);
    ASSERT(memcmp(a.data, b.data, a.len) == 0);
    snprintf(q, sizeof(q), "%s/out", root);
    ASSERT_EQ(bundle_unpack_zip(a.data, a.len, q, &roomy, err, sizeof(err)), 0);
    snprintf(q, sizeof(q), "%s/out/link", root);
    ASSERT_STR_EQ(read_text(q), "hello");
    /* a link that leaves the folder is refused */
    snprintf(q, sizeof(q), "%s/src/escape", root);
    ASSERT_EQ(symlink("../../etc", q), 0);
    buf_reset(&a);
    ASSERT_EQ(bundle_zip_dir(p, &a, &roomy, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "escape");
    buf_release(&a);
    buf_release(&b);
    cleanup(root);
}

TEST_MAIN()
