/*
 * Unit tests for unpacker.c, the process boundary, with the real fnd-bundle: a hostile
 * zip is refused with bundle.c's own message, a limit is -EFBIG and a corrupt zip
 * -EINVAL, and a folder zips and unpacks round trip. A helper killed by a signal (a
 * stand-in script, killed half-way through writing) is an error naming the signal
 * and leaves no destination; a missing helper is an error naming its path.
 */
#include "fnd/unpacker.h"

#include "test.h"
#include "testzip.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static const struct bundle_limits roomy = {1 << 20, 100};

struct fixture {
    char root[32];
    char dest[64];
    struct unpacker u;
};

static void setup(struct fixture *f, const char *helper, const struct bundle_limits *limits)
{
    snprintf(f->root, sizeof(f->root), "/tmp/fnd-unpacker-XXXXXX");
    ASSERT(mkdtemp(f->root) != NULL);
    snprintf(f->dest, sizeof(f->dest), "%s/dest", f->root);
    char err[256] = "";
    if (unpacker_init(&f->u, helper, limits, err, sizeof(err)) < 0)
        TEST_FAIL("unpacker_init: %s", err);
}

static void teardown(struct fixture *f)
{
    unpacker_release(&f->u);
    ASSERT_EQ(remove_tree(f->root), 0);
}

/* Unpacks entries into f->dest; on failure checks that nothing is left. */
static int unpack(struct fixture *f, const struct entry *e, size_t n, char *err, size_t errsize)
{
    struct buf zip;
    make_zip(&zip, e, n);
    int rc = unpacker_unpack(&f->u, zip.data, zip.len, f->dest, err, errsize);
    buf_release(&zip);
    if (rc < 0)
        ASSERT_EQ(access(f->dest, F_OK), -1);
    return rc;
}

TEST(hostile_zip_is_refused_with_the_entry_and_reason)
{
    struct fixture f;
    setup(&f, FND_BUNDLE_HELPER, &roomy);
    const struct entry e[] = {{"app.py", AE_IFREG, 0, "x = 1\n", NULL},
                              {"../x", AE_IFREG, 0, "escaped", NULL}};
    char err[256] = "", probe[64];
    ASSERT_EQ(unpack(&f, e, 2, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "../x: path leaves the bundle");
    snprintf(probe, sizeof(probe), "%s/x", f.root);
    ASSERT_EQ(access(probe, F_OK), -1);
    teardown(&f);
}

TEST(limits_are_efbig)
{
    struct fixture f;
    static char big[6000];
    memset(big, 'a', sizeof(big) - 1);
    const struct bundle_limits small = {4096, 100};
    setup(&f, FND_BUNDLE_HELPER, &small);
    const struct entry e[] = {{"blob", AE_IFREG, 0, big, NULL}};
    char err[256] = "";
    ASSERT_EQ(unpack(&f, e, 1, err, sizeof(err)), -EFBIG);
    ASSERT_STR_EQ(err, "blob: the unpacked bundle is too large");
    teardown(&f);

    const struct bundle_limits few = {1 << 20, 1};
    setup(&f, FND_BUNDLE_HELPER, &few);
    const struct entry two[] = {{"a", AE_IFREG, 0, "a", NULL}, {"b", AE_IFREG, 0, "b", NULL}};
    ASSERT_EQ(unpack(&f, two, 2, err, sizeof(err)), -EFBIG);
    ASSERT_STR_EQ(err, "b: too many files in the bundle");
    teardown(&f);
}

TEST(corrupt_zip_is_einval)
{
    struct fixture f;
    setup(&f, FND_BUNDLE_HELPER, &roomy);
    char err[256] = "";
    ASSERT_EQ(unpacker_unpack(&f.u, "garbage bytes", 13, f.dest, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "bundle: not a zip archive");
    ASSERT_EQ(unpacker_unpack(&f.u, "", 0, f.dest, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(access(f.dest, F_OK), -1);
    teardown(&f);
}

TEST(folder_zips_and_unpacks_round_trip)
{
    struct fixture f;
    setup(&f, FND_BUNDLE_HELPER, &roomy);
    char src[64], path[96], err[256] = "";
    make_src_folder(f.root, src, sizeof(src));
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    ASSERT_EQ(unpacker_zip(&f.u, src, &a, err, sizeof(err)), 0);
    ASSERT_EQ(unpacker_zip(&f.u, src, &b, err, sizeof(err)), 0);
    ASSERT(a.len > 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    ASSERT_EQ(unpacker_unpack(&f.u, a.data, a.len, f.dest, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/link", f.dest);
    ASSERT_STR_EQ(read_text(path), "hello");
    /* a folder that does not exist is refused as zip_dir refuses it */
    snprintf(path, sizeof(path), "%s/none", f.root);
    ASSERT_EQ(unpacker_zip(&f.u, path, &a, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "none: No such file or directory");
    buf_release(&a);
    buf_release(&b);
    teardown(&f);
}

/* A stand-in helper that starts the unpack, then dies of sig. */
static void write_dying_helper(const char *path, const char *sig)
{
    FILE *s = fopen(path, "w");
    ASSERT(s != NULL);
    fprintf(s, "#!/bin/sh\nulimit -c 0\nmkdir \"$2\" && echo half > \"$2/written\"\n"
               "kill -%s $$\nexit 0\n", sig);
    fclose(s);
    ASSERT_EQ(chmod(path, 0755), 0);
}

TEST(killed_helper_is_an_error_naming_the_signal_and_leaves_nothing)
{
    static const struct {
        const char *sig;
        int rc;
        const char *named;
    } cases[] = {{"KILL", -EIO, "killed by SIGKILL"},
                 {"SEGV", -EIO, "killed by SIGSEGV"},
                 {"XCPU", -EFBIG, "killed by SIGXCPU (CPU time limit exceeded)"}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char helper[] = "/tmp/fnd-dying-helper-XXXXXX";
        int fd = mkstemp(helper);
        ASSERT(fd >= 0);
        close(fd);
        write_dying_helper(helper, cases[i].sig);
        struct fixture f;
        setup(&f, helper, &roomy);
        const struct entry e[] = {{"app.py", AE_IFREG, 0, "x = 1\n", NULL}};
        char err[256] = "";
        ASSERT_EQ(unpack(&f, e, 1, err, sizeof(err)), cases[i].rc);
        ASSERT_CONTAINS(err, cases[i].named);
        teardown(&f);
        unlink(helper);
    }
}

TEST(missing_helper_is_an_error_naming_its_path)
{
    struct unpacker u;
    char err[256] = "";
    ASSERT_EQ(unpacker_init(&u, "/nonexistent/fnd-bundle", &roomy, err, sizeof(err)), -ENOENT);
    ASSERT_STR_EQ(err, "/nonexistent/fnd-bundle: No such file or directory");
    unpacker_release(&u); /* harmless after a failed init */
}

TEST(existing_destination_is_refused_and_kept)
{
    struct fixture f;
    setup(&f, FND_BUNDLE_HELPER, &roomy);
    ASSERT_EQ(mkdir(f.dest, 0755), 0);
    const struct entry e[] = {{"app.py", AE_IFREG, 0, "x = 1\n", NULL}};
    struct buf zip;
    make_zip(&zip, e, 1);
    char err[256] = "";
    ASSERT_EQ(unpacker_unpack(&f.u, zip.data, zip.len, f.dest, err, sizeof(err)), -EEXIST);
    ASSERT_CONTAINS(err, "File exists");
    ASSERT_EQ(access(f.dest, F_OK), 0);
    buf_release(&zip);
    teardown(&f);
}

TEST_MAIN()
