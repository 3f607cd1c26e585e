/*
 * Code bundles (include/fnd/bundle.h): zip archives unpacked with libarchive, and
 * folders packed into zips. Linked into the fnd-bundle helper (bundle_main.c), never
 * into the daemon, which reaches this code through unpacker.c.
 *
 * The unpacker trusts nothing in the archive. Each entry's path is normalised and
 * checked before anything is created; files are created with openat() relative to
 * descriptors of folders this unpacker made itself, with O_NOFOLLOW|O_EXCL, so an
 * entry can never write through a link that an earlier entry planted. Sizes are
 * counted twice: the size an entry declares, and the bytes actually written, so a zip
 * bomb whose headers lie stops at the limit. The zip is read with the seekable reader
 * because symlink and permission bits live in the central directory.
 *
 * Durability: once everything is written, syncfs() flushes the new tree before the
 * registry renames it into place.
 */
#include "fnd/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (64 * 1024)
#define ZIP_MTIME 315532800 /* 1980-01-01, the earliest time a zip can hold */

struct unpack {
    const struct bundle_limits *limits;
    uint64_t bytes;
    uint64_t files;
    char *err;
    size_t errsize;
};

static int fail(struct unpack *u, int rc, const char *entry, const char *why)
{
    snprintf(u->err, u->errsize, "%.200s: %s", entry ? entry : "bundle", why);
    return rc;
}

/* Normalises an entry path in place: drops "./" parts and a trailing '/', refuses
 * absolute paths, "..", empty parts and control characters. */
static const char *normalise(char *path, bool *ok)
{
    *ok = false;
    if (path[0] == '/')
        return "absolute path";
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
            return "control character or backslash in the name";
    char *out = path;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "path leaves the bundle";
        if (n == 0 && end && end[1] != '\0')
            return "empty path component";
        if (!(n == 1 && p[0] == '.') && n > 0) {
            if (out != path)
                *out++ = '/';
            memmove(out, p, n);
            out += n;
        }
        p = end ? end + 1 : p + n;
    }
    *out = '\0';
    if (path[0] == '\0')
        return "empty name";
    if (strlen(path) >= PATH_MAX)
        return "name too long";
    *ok = true;
    return NULL;
}

/* Whether a link at entry `path` pointing at `target` stays inside the bundle. The
 * target may climb with leading ".." parts, counted against the link's own folders
 * (real folders: open_parent never goes through a link), and then only descend: a
 * ".." after a name is refused, because that name may itself be a link (t -> s/..
 * with s -> .. leaves the bundle although its text looks inside). */
static bool link_stays_inside(const char *path, const char *target)
{
    if (target[0] == '/' || target[0] == '\0')
        return false;
    int depth = 0;
    for (const char *p = path; *p; p++) /* the link's folder depth */
        if (*p == '/')
            depth++;
    bool descended = false;
    const char *p = target;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (descended || --depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            descended = true;
        }
        p = end ? end + 1 : p + n;
    }
    return true;
}

/* Opens (creating as needed) the folder that holds path's last part, never following
 * links. Returns a descriptor and points *base at the last part, or a negative errno. */
static int open_parent(int root, char *path, const char **base)
{
    int fd = dup(root);
    if (fd < 0)
        return -errno;
    char *p = path;
    char *slash;
    while ((slash = strchr(p, '/')) != NULL) {
        *slash = '\0';
        if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            *slash = '/';
            close(fd);
            return -e;
        }
        int next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        *slash = '/';
        close(fd);
        if (next < 0)
            return e == ELOOP || e == ENOTDIR ? -ELOOP : -e;
        fd = next;
        p = slash + 1;
    }
    *base = p;
    return fd;
}

static int extract_file(struct unpack *u, struct archive *a, int dirfd, const char *base,
                        const char *name, mode_t mode)
{
    int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    (mode & 0111) ? 0755 : 0644);
    if (fd < 0)
        return fail(u, errno == EEXIST || errno == ELOOP ? -EINVAL : -errno, name,
                    errno == EEXIST ? "duplicate entry" : strerror(errno));
    /* Per call: deploys of different functions run side by side on the threadpool. */
    char *chunk = xmalloc(COPY_CHUNK);
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, chunk, COPY_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            rc = fail(u, -EINVAL, name, archive_error_string(a));
            break;
        }
        u->bytes += (uint64_t)n;
        if (u->bytes > u->limits->max_bytes) {
            rc = fail(u, -EFBIG, name, "the unpacked bundle is too large");
            break;
        }
        rc = write_all(fd, chunk, (size_t)n);
        if (rc < 0) {
            fail(u, rc, name, strerror(-rc));
            break;
        }
    }
    free(chunk);
    close(fd);
    return rc;
}

static int extract_entry(struct unpack *u, struct archive *a, struct archive_entry *e, int root)
{
    const char *raw = archive_entry_pathname(e);
    if (raw == NULL)
        return fail(u, -EINVAL, NULL, "entry without a name");
    char path[PATH_MAX + 1];
    snprintf(path, sizeof(path), "%s", raw);
    bool ok;
    const char *why = normalise(path, &ok);
    if (!ok)
        return fail(u, -EINVAL, raw, why);
    if (++u->files > u->limits->max_files)
        return fail(u, -EFBIG, raw, "too many files in the bundle");

    mode_t mode = archive_entry_mode(e);
    unsigned type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != NULL)
        return fail(u, -EINVAL, raw, "hard links are not allowed");
    if (mode & (S_ISUID | S_ISGID))
        return fail(u, -EINVAL, raw, "setuid or setgid bit");
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return fail(u, -EINVAL, raw, "only files, folders and links are allowed");
    if (type == AE_IFREG && archive_entry_size_is_set(e)) {
        int64_t declared = archive_entry_size(e);
        if (declared < 0 || u->bytes + (uint64_t)declared > u->limits->max_bytes)
            return fail(u, -EFBIG, raw, "the unpacked bundle is too large");
    }
    const char *target = type == AE_IFLNK ? archive_entry_symlink(e) : NULL;
    if (type == AE_IFLNK && (target == NULL || !link_stays_inside(path, target)))
        return fail(u, -EINVAL, raw, "link points outside the bundle");

    const char *base = path;
    int dirfd = open_parent(root, path, &base);
    if (dirfd < 0)
        return fail(u, dirfd == -ELOOP ? -EINVAL : dirfd, raw,
                    dirfd == -ELOOP ? "path goes through a link" : strerror(-dirfd));
    int rc = 0;
    if (type == AE_IFDIR) {
        struct stat st;
        if (mkdirat(dirfd, base, 0755) < 0 &&
            !(errno == EEXIST && fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
              S_ISDIR(st.st_mode)))
            rc = fail(u, errno == EEXIST ? -EINVAL : -errno, raw, "cannot create folder");
    } else if (type == AE_IFLNK) {
        if (symlinkat(target, dirfd, base) < 0)
            rc = fail(u, errno == EEXIST ? -EINVAL : -errno, raw, strerror(errno));
    } else {
        rc = extract_file(u, a, dirfd, base, raw, mode);
    }
    close(dirfd);
    return rc;
}

int bundle_unpack_zip(const void *zip, size_t len, const char *dest,
                      const struct bundle_limits *limits, char *err, size_t errsize)
{
    struct unpack u = {limits, 0, 0, err, errsize};
    if (mkdir(dest, 0755) < 0)
        return fail(&u, -errno, dest, strerror(errno));
    int root = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct archive *a = archive_read_new();
    archive_read_support_format_zip_seekable(a);
    int rc = 0;
    if (root < 0) {
        rc = fail(&u, -errno, dest, strerror(errno));
    } else if (len == 0 || archive_read_open_memory(a, zip, len) != ARCHIVE_OK) {
        rc = fail(&u, -EINVAL, NULL, "not a zip archive");
    } else {
        struct archive_entry *e;
        int r;
        while (rc == 0 && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
            if (r < ARCHIVE_WARN) {
                rc = fail(&u, -EINVAL, NULL, archive_error_string(a));
                break;
            }
            rc = extract_entry(&u, a, e, root);
        }
        if (rc == 0 && syncfs(root) < 0)
            rc = fail(&u, -errno, dest, strerror(errno));
    }
    archive_read_free(a);
    if (root >= 0)
        close(root);
    if (rc < 0)
        remove_tree(dest);
    return rc;
}

/* --- packing a folder -------------------------------------------------------------- */

struct pack {
    struct archive *a;
    struct unpack u; /* the same limits and error reporting */
    struct buf *out;
};

static la_ssize_t on_zip_write(struct archive *a, void *data, const void *bytes, size_t n)
{
    struct pack *pk = data;
    if (buf_append(pk->out, bytes, n) < 0) {
        archive_set_error(a, E2BIG, "the zip is too large");
        return -1;
    }
    return (la_ssize_t)n;
}

static int pack_entry(struct pack *pk, const char *rel, const struct stat *st, const char *link,
                      int fd)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, rel);
    archive_entry_set_mtime(e, ZIP_MTIME, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int rc = 0;
    if (S_ISDIR(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
    } else if (S_ISLNK(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_perm(e, 0777);
        archive_entry_set_symlink(e, link);
    } else {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, (st->st_mode & 0111) ? 0755 : 0644);
        archive_entry_set_size(e, st->st_size);
    }
    if (archive_write_header(pk->a, e) != ARCHIVE_OK)
        rc = fail(&pk->u, -EFBIG, rel, archive_error_string(pk->a));
    char *chunk = fd >= 0 ? xmalloc(COPY_CHUNK) : NULL;
    ssize_t n;
    while (rc == 0 && fd >= 0 && (n = read(fd, chunk, COPY_CHUNK)) != 0) {
        if (n < 0) {
            rc = fail(&pk->u, -errno, rel, strerror(errno));
        } else if (archive_write_data(pk->a, chunk, (size_t)n) != n) {
            rc = fail(&pk->u, -EFBIG, rel, archive_error_string(pk->a));
        }
    }
    free(chunk);
    archive_entry_free(e);
    return rc;
}

/* Adds the folder folder_fd (at rel, "" for the root) and everything below it, in name order. */
static int pack_dir(struct pack *pk, int folder_fd, const char *rel)
{
    DIR *d = fdopendir(folder_fd);
    if (d == NULL) {
        close(folder_fd);
        return fail(&pk->u, -errno, rel, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof(char *));
        }
        names[n++] = xstrdup(de->d_name);
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: folders are small, order must be stable */
        for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char *t = names[k];
            names[k] = names[k - 1];
            names[k - 1] = t;
        }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char child[PATH_MAX];
        if ((size_t)snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", names[i]) >=
            sizeof(child)) {
            rc = fail(&pk->u, -EINVAL, names[i], "name too long");
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = fail(&pk->u, -errno, child, strerror(errno));
            break;
        }
        if (++pk->u.files > pk->u.limits->max_files) {
            rc = fail(&pk->u, -EFBIG, child, "too many files in the bundle");
            break;
        }
        if (S_ISREG(st.st_mode)) {
            pk->u.bytes += (uint64_t)st.st_size;
            if (pk->u.bytes > pk->u.limits->max_bytes) {
                rc = fail(&pk->u, -EFBIG, child, "the unpacked bundle is too large");
                break;
            }
            if (st.st_mode & (S_ISUID | S_ISGID)) {
                rc = fail(&pk->u, -EINVAL, child, "setuid or setgid bit");
                break;
            }
            int fd = openat(dirfd(d), names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rc = fail(&pk->u, -errno, child, strerror(errno));
                break;
            }
            rc = pack_entry(pk, child, &st, NULL, fd);
            close(fd);
        } else if (S_ISDIR(st.st_mode)) {
            rc = pack_entry(pk, child, &st, NULL, -1);
            int sub = rc == 0 ? openat(dirfd(d), names[i],
                                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                              : -1;
            if (rc == 0 && sub < 0)
                rc = fail(&pk->u, -errno, child, strerror(errno));
            if (rc == 0)
                rc = pack_dir(pk, sub, child);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t tl = readlinkat(dirfd(d), names[i], target, sizeof(target) - 1);
            if (tl < 0) {
                rc = fail(&pk->u, -errno, child, strerror(errno));
                break;
            }
            target[tl] = '\0';
            if (!link_stays_inside(child, target))
                rc = fail(&pk->u, -EINVAL, child, "link points outside the bundle");
            else
                rc = pack_entry(pk, child, &st, target, -1);
        } else {
            rc = fail(&pk->u, -EINVAL, child, "only files, folders and links are allowed");
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int bundle_zip_dir(const char *src, struct buf *out, const struct bundle_limits *limits,
                   char *err, size_t errsize)
{
    struct pack pk = {archive_write_new(), {limits, 0, 0, err, errsize}, out};
    archive_write_set_format_zip(pk.a);
    archive_write_set_bytes_in_last_block(pk.a, 1);
    int rc = 0;
    if (archive_write_open(pk.a, &pk, NULL, on_zip_write, NULL) != ARCHIVE_OK) {
        rc = fail(&pk.u, -EIO, src, archive_error_string(pk.a));
    } else {
        int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            rc = fail(&pk.u, errno == ENOENT || errno == ENOTDIR ? -EINVAL : -errno, src,
                      strerror(errno));
        else
            rc = pack_dir(&pk, fd, "");
        if (archive_write_close(pk.a) != ARCHIVE_OK && rc == 0)
            rc = fail(&pk.u, -EFBIG, src, archive_error_string(pk.a));
    }
    archive_write_free(pk.a);
    return rc;
}
