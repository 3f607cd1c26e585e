/*
 * The daemon's and the CLI's way to code bundles: each unpack or zip runs in a fresh
 * fnd-bundle helper process (src/bundle_main.c), confined before it reads anything,
 * so the daemon never maps libarchive and a hostile zip that breaks libarchive breaks
 * only that process. The helper is found beside the running executable, as the
 * runtimes are; a missing one is an error when the unpacker is made, not at the
 * first deploy.
 *
 * The contract is bundle.h's (the checks, the error texts, the return values), plus
 * one outcome: a helper killed by a signal fails the call with an error naming the
 * signal (-EFBIG for its CPU or file-size limit, -EIO otherwise).
 *
 * The calls block until the helper exits: call them from the threadpool, never the
 * loop. They are safe from several threads at once (posix_spawn copies nothing of
 * the daemon's memory, and waits on its own child only).
 */
#ifndef FND_UNPACKER_H
#define FND_UNPACKER_H

#include "fnd/bundle.h"

struct unpacker {
    char *helper; /* the fnd-bundle executable; owned */
    struct bundle_limits limits;
};

/* Sets u up to run helper, or fnd-bundle beside the running executable when helper
 * is NULL, within limits. 0, or a negative errno (-ENOENT, -EACCES) with err naming
 * the path when it cannot be executed. */
int unpacker_init(struct unpacker *u, const char *helper, const struct bundle_limits *limits,
                  char *err, size_t errsize);
void unpacker_release(struct unpacker *u);

/* bundle_unpack_zip() in the helper: (zip, len) into dest, which must not exist (else
 * -EEXIST, and dest is left alone). On failure dest does not exist. */
int unpacker_unpack(const struct unpacker *u, const void *zip, size_t len, const char *dest,
                    char *err, size_t errsize);

/* bundle_zip_dir() in the helper: the zip of folder src appended to out. */
int unpacker_zip(const struct unpacker *u, const char *src, struct buf *out, char *err,
                 size_t errsize);

#endif
