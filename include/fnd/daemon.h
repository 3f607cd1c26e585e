/*
 * The daemon: one libuv loop that owns the gateway, the registry and the controller,
 * wired together here. `fnd serve` builds a config and calls daemon_run().
 */
#ifndef FND_DAEMON_H
#define FND_DAEMON_H

#include "fnd/async.h"
#include "fnd/auth.h"
#include "fnd/busy_poll.h"
#include "fnd/cgroup.h"
#include "fnd/config.h"
#include "fnd/controller.h"
#include "fnd/funclog.h"
#include "fnd/http.h"
#include "fnd/registry.h"
#include "fnd/runtime.h"
#include "fnd/seccomp_policy.h"
#include "fnd/unpacker.h"

#include <uv.h>

struct daemon {
    uv_loop_t *loop;
    const struct config *cfg;
    struct registry *registry;
    struct controller *controller;
    struct async *async;       /* durable async invocations and the event log */
    struct gateway *gateway;
    struct funclog *funclog;  /* function output logs (funclog.h) */
    struct auth auth;         /* the control-plane token (auth.h) */
    struct runtime_paths paths;
    struct unpacker unpacker; /* runs fnd-bundle for every deploy (unpacker.h) */
    struct http_limits http_limits;
    struct cgroup_root cgroups;
    struct seccomp_policy seccomp;
    bool network_isolation;  /* network:none functions can be given their own namespace */
    char *fsroot_base;       /* <data>/sandbox, or NULL when workers see the host's files */
    /* The sandbox's layers as reported at start-up and by GET /v1/info: name, state. */
    struct {
        const char *name;
        const char *state;
    } layers[10];
    size_t nlayers;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t grace_timer;  /* shutdown: polls for in-flight invocations to finish */
    uv_prepare_t flush_prepare; /* before the loop waits: starts flush_timer if lines wait */
    uv_timer_t flush_timer; /* writes log lines and function log records FUNCLOG_FLUSH_MS late */
    struct busy_poll busy_poll; /* the loop's window of polling after a hand-off */
    uint64_t grace_deadline_ms;
    bool cancelling;         /* the grace period ran out; the controller is closing */
    size_t pending_seeds;   /* seed deploys still running; serving starts at zero */
    int64_t started_ms;
    bool stopping;
    int exit_code;
};

/* Runs the daemon until SIGTERM or SIGINT. Returns the process exit code. */
int daemon_run(const struct config *cfg);

/* The API's request handler (api.c); data is the struct daemon. */
void api_handle(struct http_request *req, void *data);

/* Deploys every DIR/<sub>/fnd.json whose function does not exist yet (seed.c); each
 * finished deploy calls daemon_seed_done(). Returns the number of deploys started. */
size_t seed_start(struct daemon *d, const char *dir);
void daemon_seed_done(struct daemon *d);

#endif
