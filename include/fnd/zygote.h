/*
 * The Python fork server (zygote): one interpreter per daemon with fnd's Python
 * runtime already loaded, which forks a child for each new python3 worker instead of
 * the daemon exec'ing a fresh interpreter. The child walks the same sandbox checklist
 * (sandbox_fork) before it imports the function, so a worker started through the
 * zygote is contained exactly like one the daemon spawned itself; only the
 * interpreter's start-up is skipped.
 *
 * The zygote runs fnd's own code only and never a function's: it starts with the
 * daemon's privileges (it must create namespaces and switch uids for its children),
 * takes requests only from the daemon over a private socket, and dies with it.
 *
 * Between requests the zygote keeps a blank (zygote.c): a child that has entered the
 * namespaces and the root a worker needs and warmed itself up, and becomes the next
 * worker of the same shape, so that a cold start skips the fork and the page copies
 * that follow it.
 *
 * Requests are synchronous, as sandbox_spawn is: the caller blocks until the child has
 * finished the checklist (about as long as a direct spawn takes to reach exec). The
 * daemon makes them from libuv's threadpool; zygote_spawn takes them one at a time.
 */
#ifndef FND_ZYGOTE_H
#define FND_ZYGOTE_H

#include "fnd/sandbox.h"

#include <stdbool.h>
#include <stddef.h>

struct zygote;

/* Starts the zygote: python runs bootstrap (the Python runtime) in zygote mode with the
 * fork library at library. Blocks until it is ready (or 10 s). 0 with *out set, or a
 * negative errno (logged). */
int zygote_open(struct zygote **out, const char *python, const char *bootstrap,
                const char *library);

/* Starts a worker for spec through the zygote. 0 with *out filled as sandbox_spawn
 * fills it, and *blank true when the worker was the zygote's blank; with blank_only
 * (a program to exec, not python3: the native runner), only from a blank that execs
 * spec->path, and -ENOENT when none fits or the zygote is busy (it makes one for the
 * next such request, and the caller should spawn directly); a negative errno
 * from the child's failing step; or -ECHILD when the zygote itself is unusable (it is
 * then stopped, and the caller should spawn directly). */
int zygote_spawn(struct zygote *z, const struct sandbox_spec *spec, bool blank_only,
                 struct sandbox_process *out, bool *blank);

/* Stops the zygote and frees z. Workers it started are unaffected. */
void zygote_close(struct zygote *z);

/* The zygote's side, called once through ctypes by runtimes/python3/bootstrap.py with
 * the control socket: says it is ready, then forks a worker for each request of the
 * daemon and answers it. Returns 0 in each new worker, with its signal dispositions
 * back as the interpreter set them and *env its environment ("NAME=value\0" each,
 * *env_len bytes, malloc'd); 1 in a blank, which should warm up and then call
 * fnd_zygote_specialise; -1 in the zygote once the daemon is gone. */
int fnd_zygote_serve(int sock, char **env, size_t *env_len);

/* In a blank: waits until the zygote gives it a worker, then becomes that worker and
 * returns 0 with *env as fnd_zygote_serve sets it; -1 when the zygote let it go (the
 * blank should exit). A failing step is reported to the zygote and exits. */
int fnd_zygote_specialise(char **env, size_t *env_len);

/* One request, decoded and forked: the encoded spec and its descriptors (channel,
 * stdout, stderr, then cgroup.procs files). Returns 0 in the new worker, the worker's
 * pid in the zygote (with *pidfd set), or a negative errno (*pidfd: a failed child, or
 * -1). fnd_zygote_serve's step for each request, and what the unit test calls. */
int fnd_zygote_fork(const void *wire, size_t len, const int *fds, size_t nfds, int *pidfd);

#endif
