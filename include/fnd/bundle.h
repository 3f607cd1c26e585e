/*
 * Code bundles: zip archives unpacked with libarchive into a folder, safely. Every
 * entry is checked before anything is written: absolute paths, `..` components,
 * links whose target leaves the bundle, hard links, device files, FIFOs, sockets and
 * setuid/setgid bits are refused; the total unpacked size and the number of entries
 * are bounded. A refused or corrupt bundle leaves nothing behind.
 *
 * These functions block (disk I/O): call them from the threadpool, never the loop.
 */
#ifndef FND_BUNDLE_H
#define FND_BUNDLE_H

#include "fnd/buf.h"

struct bundle_limits {
    uint64_t max_bytes; /* sum of unpacked file sizes */
    uint64_t max_files; /* entries, folders included */
};

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
