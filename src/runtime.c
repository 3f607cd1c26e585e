/*
 * Worker command lines and environments (include/fnd/runtime.h). One table maps each
 * runtime to its program; the environment follows what Lambda sets for its managed
 * runtimes, so handlers written for Lambda find what they expect.
 */
#include "fnd/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ENV_MAX 64

struct env_builder {
    char **vars;
    size_t n;
    size_t cap; /* slots, the terminating NULL excluded */
};

static void env_add(struct env_builder *e, const char *name, const char *value)
{
    if (e->n < e->cap) /* always true: cap counts every variable added below */
        e->vars[e->n++] = xasprintf("%s=%s", name, value);
}

char *runtime_function_arn(const char *region, const char *name)
{
    return xasprintf("arn:aws:lambda:%s:000000000000:function:%s", region, name);
}

void runtime_command_build(struct runtime_command *cmd, const struct runtime_paths *paths,
                           const struct fn_version *v, uint64_t worker_tag,
                           const char *task_root, bool ahead_of_need)
{
    if (task_root == NULL)
        task_root = v->code_dir;
    const struct fn_config *c = &v->config;
    char **argv = xcalloc(4, sizeof(char *));
    switch (c->runtime) {
    case RUNTIME_PYTHON3:
        cmd->path = xstrdup(paths->python);
        argv[0] = xstrdup(paths->python);
        argv[1] = xstrdup("-s"); /* no user site-packages */
        argv[2] = xasprintf("%s/python3/bootstrap.py", paths->runtime_dir);
        break;
    case RUNTIME_NODEJS:
        cmd->path = xstrdup(paths->node);
        argv[0] = xstrdup(paths->node);
        argv[1] = xasprintf("%s/nodejs/bootstrap.js", paths->runtime_dir);
        break;
    case RUNTIME_PROVIDED:
        /* The adapter serves the Runtime API and starts the bundle's bootstrap. */
        cmd->path = xstrdup(paths->provided);
        argv[0] = xstrdup(paths->provided);
        break;
    case RUNTIME_NATIVE:
    default:
        cmd->path = xstrdup(paths->native_runner);
        argv[0] = xstrdup(paths->native_runner);
        break;
    }
    cmd->argv = argv;
    cmd->cwd = xstrdup(task_root);

    struct env_builder e = {xcalloc(ENV_MAX + c->nenv + 1, sizeof(char *)), 0, ENV_MAX + c->nenv};
    char num[32], stream[96], group[FN_NAME_MAX + 16], rtdir[4096], version[24];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (v->published)
        snprintf(version, sizeof(version), "%llu", (unsigned long long)v->published);
    else
        snprintf(version, sizeof(version), "$LATEST");
    snprintf(stream, sizeof(stream), "%04d/%02d/%02d/[%s]%016llx", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, version, (unsigned long long)worker_tag);
    snprintf(group, sizeof(group), "/aws/lambda/%s", v->name);
    snprintf(num, sizeof(num), "%u", c->memory_mb);
    snprintf(rtdir, sizeof(rtdir), "%s/%s", paths->runtime_dir,
             c->runtime == RUNTIME_NATIVE ? "native" : runtime_name(c->runtime));

    /* The function's own variables come first so that the reserved ones below (which
     * fnconfig refuses as names anyway) always win. */
    for (size_t i = 0; i < c->nenv; i++)
        env_add(&e, c->env[i].name, c->env[i].value);
    env_add(&e, "PATH", "/usr/local/bin:/usr/bin:/bin");
    env_add(&e, "LANG", "C.UTF-8");
    env_add(&e, "TZ", ":UTC");
    env_add(&e, "HOME", "/tmp");
    env_add(&e, "_HANDLER", c->handler ? c->handler : "");
    env_add(&e, "LAMBDA_TASK_ROOT", task_root);
    env_add(&e, "LAMBDA_RUNTIME_DIR", rtdir);
    env_add(&e, "AWS_LAMBDA_FUNCTION_NAME", v->name);
    env_add(&e, "AWS_LAMBDA_FUNCTION_VERSION", version);
    env_add(&e, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", num);
    env_add(&e, "AWS_LAMBDA_LOG_GROUP_NAME", group);
    env_add(&e, "AWS_LAMBDA_LOG_STREAM_NAME", stream);
    env_add(&e, "AWS_REGION", paths->region);
    env_add(&e, "AWS_DEFAULT_REGION", paths->region);
    env_add(&e, "AWS_EXECUTION_ENV", c->runtime == RUNTIME_PYTHON3  ? "AWS_Lambda_python3"
                                     : c->runtime == RUNTIME_NODEJS ? "AWS_Lambda_nodejs"
                                                                    : "AWS_Lambda_provided");
    if (c->runtime == RUNTIME_PYTHON3) {
        env_add(&e, "PYTHONUNBUFFERED", "1");
        env_add(&e, "PYTHONDONTWRITEBYTECODE", "1");
    }
    if (ahead_of_need && (c->runtime == RUNTIME_PYTHON3 || c->runtime == RUNTIME_NODEJS))
        env_add(&e, RUNTIME_AHEAD_ENV, "1");
    e.vars[e.n] = NULL;
    cmd->envp = e.vars;
}

const char *runtime_program_outside(const struct runtime_paths *paths, enum runtime r)
{
    return r == RUNTIME_NATIVE ? paths->native_runner : r == RUNTIME_PROVIDED ? paths->provided
                                                                             : NULL;
}

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

void runtime_command_release(struct runtime_command *cmd)
{
    free(cmd->path);
    free(cmd->cwd);
    free_strv(cmd->argv);
    free_strv(cmd->envp);
    memset(cmd, 0, sizeof(*cmd));
}
