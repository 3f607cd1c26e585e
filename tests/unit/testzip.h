/*
 * Zips and folders for the bundle tests. Zips are written with libarchive's writer so
 * that every hostile shape (a "../x" entry, a FIFO, a hard link, a setuid bit) is
 * exact. Include after test.h.
 */
#ifndef FND_TESTZIP_H
#define FND_TESTZIP_H

#include "fnd/buf.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

struct entry {
    const char *path;
    unsigned type;       /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, AE_IFCHR */
    unsigned perm;
    const char *content; /* regular files; the link target for links */
    const char *hardlink;
};

static la_ssize_t testzip_on_write(struct archive *a, void *data, const void *bytes, size_t n)
{
    (void)a;
    buf_append(data, bytes, n);
    return (la_ssize_t)n;
}

static void make_zip(struct buf *out, const struct entry *e, size_t n)
{
    buf_init(out, 0);
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    ASSERT_EQ(archive_write_open(a, out, NULL, testzip_on_write, NULL), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_filetype(ae, e[i].type);
        archive_entry_set_perm(ae, e[i].perm ? e[i].perm : 0644);
        size_t len = e[i].type == AE_IFREG && e[i].content ? strlen(e[i].content) : 0;
        archive_entry_set_size(ae, (la_int64_t)len);
        if (e[i].type == AE_IFLNK)
            archive_entry_set_symlink(ae, e[i].content);
        if (e[i].hardlink)
            archive_entry_set_hardlink(ae, e[i].hardlink);
        archive_write_header(a, ae);
        if (len)
            archive_write_data(a, e[i].content, len);
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
}

/* The text of a small file (a static buffer, valid until the next call). */
static char *read_text(const char *path)
{
    static char text[4096];
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

/* Makes the folder <root>/src, named in src, holding sub/file.txt ("hello") and a link
 * to it, link -> sub/file.txt. */
static void make_src_folder(const char *root, char *src, size_t size)
{
    char path[PATH_MAX];
    snprintf(src, size, "%s/src", root);
    ASSERT_EQ(mkdir(src, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub", src);
    ASSERT_EQ(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub/file.txt", src);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    ASSERT(fd >= 0);
    ASSERT_EQ(write_all(fd, "hello", 5), 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/link", src);
    ASSERT_EQ(symlink("sub/file.txt", path), 0);
}

#endif
