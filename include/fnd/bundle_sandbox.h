/*
 * The confinement of the fnd-bundle helper (src/bundle_main.c), which parses untrusted
 * zips on the daemon's behalf: a checklist it walks before it reads any input, so a
 * bug in libarchive reached by a hostile bundle runs without the network, exec,
 * signals, other processes or new privileges, and within bounds of CPU, file size
 * and descriptors. Part of the static library fndbundle, never of the daemon.
 */
#ifndef FND_BUNDLE_SANDBOX_H
#define FND_BUNDLE_SANDBOX_H

#include "fnd/bundle.h"

/* What the confined process will do, which decides its largest file. */
enum bundle_task {
    BUNDLE_TASK_UNPACK, /* writes the files of a bundle: each at most limits->max_bytes */
    BUNDLE_TASK_ZIP,    /* writes one zip: at most bundle_zip_max(limits) */
};

/* Confines the calling process for good: closes every descriptor above 2, sets
 * umask 022, limits (no core dumps, 60 s of CPU, the task's largest file, 64
 * descriptors), no_new_privs, then the system-call filter, which allows only what
 * unpacking and zipping need; anything else fails with EPERM. 0, or a negative errno
 * with err naming the step that failed. */
int bundle_sandbox_enter(enum bundle_task task, const struct bundle_limits *limits, char *err,
                         size_t errsize);

#endif
