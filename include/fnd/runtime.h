/*
 * Runtimes: how a worker for a function version is started — which program, with
 * which arguments and which environment. The environment is built from scratch (an
 * allowlist): the Lambda variables, PATH, LANG, TZ, HOME and the function's own env;
 * nothing of the daemon's environment reaches a function.
 */
#ifndef FND_RUNTIME_H
#define FND_RUNTIME_H

#include "fnd/registry.h"

struct runtime_paths {
    const char *runtime_dir;   /* holds python3/ and nodejs/ */
    const char *python;        /* interpreter for python3 */
    const char *node;          /* binary for nodejs */
    const char *native_runner; /* fnd-runtime-native */
    const char *region;        /* AWS_REGION */
    const char *provided;      /* fnd-runtime-provided, the Runtime API adapter */
};

/* A worker's command; every string is owned by the struct. */
struct runtime_command {
    char *path;
    char **argv; /* NULL-terminated */
    char **envp; /* NULL-terminated */
    char *cwd;
};

/* Builds the command for a worker of v; worker_tag makes the log stream name unique.
 * task_root is where the worker sees its code (NULL: the code folder itself).
 * ahead_of_need: no invocation waits for this worker (a spare, a min_warm start); the
 * python3 and nodejs runtimes then warm up their invocation path before READY, which
 * they skip when a request waits (RUNTIME_AHEAD_ENV, taken out before any function
 * code runs). */
#define RUNTIME_AHEAD_ENV "_FND_AHEAD_OF_NEED"
void runtime_command_build(struct runtime_command *cmd, const struct runtime_paths *paths,
                           const struct fn_version *v, uint64_t worker_tag,
                           const char *task_root, bool ahead_of_need);
void runtime_command_release(struct runtime_command *cmd);

/* The program outside /usr and the runtime folder that a worker of runtime r runs (the
 * native runner, the Runtime API adapter), which its private root must hold; or NULL. */
const char *runtime_program_outside(const struct runtime_paths *paths, enum runtime r);

/* The function's ARN as functions see it: arn:aws:lambda:<region>:000000000000:function:<name>. */
char *runtime_function_arn(const char *region, const char *name);

#endif
