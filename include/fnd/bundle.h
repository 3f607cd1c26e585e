/*
 * Code bundles: zip archives unpacked with libarchive into a folder, safely. Every
 * entry is checked before anything is written: absolute paths, `..` components,
 * links whose target leaves the bundle, hard links, device files, FIFOs, sockets and
 * setuid/setgid bits are refused; the total unpacked size and the number of entries
 * are bounded. A refused or corrupt bundle leaves nothing behind.
 *
 * The functions below are linked into the fnd-bundle helper only (the static library
 * fndbundle, which its tests link too), never into the daemon: the daemon and the
 * CLI run them in that confined process through include/fnd/unpacker.h. The limits
 * and the zip size bound are shared by both sides.
 *
 * These functions block (disk I/O).
 */
#ifndef FND_BUNDLE_H
#define FND_BUNDLE_H

#include "fnd/buf.h"

#include <limits.h>

struct bundle_limits {
    uint64_t max_bytes; /* sum of unpacked file sizes */
    uint64_t max_files; /* entries, folders included */
};

/* The largest zip that bundle_zip_dir can make within limits, and so the largest one
 * read or written across the helper's boundary: the file bytes (deflate may grow
 * incompressible data a little), plus each entry's headers, its name twice. */
static inline uint64_t bundle_zip_max(const struct bundle_limits *limits)
{
    return limits->max_bytes + limits->max_bytes / 8 + 4096 +
           limits->max_files * (2 * (uint64_t)PATH_MAX + 256);
}

/* Unpacks the zip in (zip, len) into dest, which must not exist yet; it is created
 * (mode 0755, files keep their read/execute bits without setuid/setgid) and its
 * content fsync'ed. Returns 0; -EINVAL for a corrupt or hostile bundle and -EFBIG
 * past a limit, with err naming the entry and the reason ("../x: path leaves the
 * bundle"); another negative errno for I/O failures. On failure dest does not exist. */
int bundle_unpack_zip(const void *zip, size_t len, const char *dest,
                      const struct bundle_limits *limits, char *err, size_t errsize);

/* Packs the folder src into a zip appended to out (the same entry checks apply, so a
 * folder with a link that leaves it is refused with -EINVAL). Returns as above. */
int bundle_zip_dir(const char *src, struct buf *out, const struct bundle_limits *limits,
                   char *err, size_t errsize);

#endif
