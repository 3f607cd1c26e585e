/*
 * The daemon's life: start-up in dependency order (data folder, registry, controller,
 * seed deploys, then the listener), one libuv loop, and shutdown in reverse on SIGTERM
 * or SIGINT (a second signal exits at once).
 *
 * Start-up refuses to run rather than run half-configured: an unusable data folder,
 * an unreadable registry or a busy port end the process with a message that names
 * the cause.
 */
#include "fnd/daemon.h"

#include "fnd/log.h"
#include "fnd/metrics.h"
#include "fnd/sandbox.h"
#include "fnd/zygote.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The namespaces every worker gets, as the start-up line and /v1/info name them. */
static const char *namespace_names(uint64_t ns)
{
    if (ns & CLONE_NEWUSER)
        return "user,pid,cgroup,ipc,uts";
    if (ns & CLONE_NEWPID)
        return ns & CLONE_NEWIPC ? "pid,cgroup,ipc,uts" : "pid,cgroup";
    return ns & CLONE_NEWIPC ? "ipc,uts" : "off";
}

/* Splits "host:port" or "[v6]:port". 0 or -EINVAL. */
static int parse_listen(const char *text, char *host, size_t hostsize, int *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        return -EINVAL;
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostsize)
        return -EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

/* A daemon started with a closed stdin/stdout/stderr would hand those numbers to its
 * sockets, and a stray write to "stderr" would land in a client connection. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int nfd = open("/dev/null", O_RDWR);
            if (nfd >= 0 && nfd != fd) {
                dup2(nfd, fd);
                close(nfd);
            }
        }
    }
}

static int make_dirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* --memory-budget, or three quarters of the machine's memory when unset. */
static uint64_t memory_budget_mb(const struct config *cfg)
{
    if (cfg->memory_budget)
        return cfg->memory_budget / MiB;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return 4096;
    return (uint64_t)pages * (uint64_t)page / MiB * 3 / 4;
}

/* --- registry hooks ---------------------------------------------------------------- */

static void on_publish(struct function *fn, struct fn_version *old, void *data)
{
    struct daemon *d = data;
    if (d->controller)
        controller_on_publish(d->controller, fn, old);
}

static void on_remove(struct function *fn, void *data)
{
    struct daemon *d = data;
    if (d->controller)
        controller_on_remove(d->controller, fn);
    funclog_remove(d->funclog, fn->name);
    metrics_forget_function(fn->name);
}

static void attach_function(struct function *fn, void *data)
{
    struct daemon *d = data;
    controller_on_publish(d->controller, fn, NULL);
}

/* --- serving ----------------------------------------------------------------------- */

static int start_serving(struct daemon *d)
{
    char host[256];
    int port;
    if (parse_listen(d->cfg->listen, host, sizeof(host), &port) < 0) {
        log_error("bad listen address", "listen=%s hint=\"use HOST:PORT\"", d->cfg->listen);
        return -EINVAL;
    }
    int rc = gateway_open(&d->gateway, d->loop, host, port, &d->http_limits, api_handle, d);
    if (rc < 0) {
        log_error("listen failed", "addr=%s err=\"%s\"", d->cfg->listen, uv_strerror(rc));
        return rc;
    }
    bool v6 = strchr(host, ':') != NULL;
    log_info("listening", "addr=%s%s%s:%d functions=%zu", v6 ? "[" : "", host, v6 ? "]" : "",
             gateway_port(d->gateway), registry_count(d->registry));
    return 0;
}

void daemon_seed_done(struct daemon *d)
{
    if (d->pending_seeds > 0 && --d->pending_seeds == 0 && !d->stopping) {
        if (start_serving(d) < 0) {
            d->exit_code = 1;
            raise(SIGTERM);
        }
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    log_flush();
    funclog_flush(d->funclog);
}

/* Before the loop waits for events: what the log and the function log hold goes out
 * FUNCLOG_FLUSH_MS after the first of it was buffered, so that one write serves many
 * requests even when each loop iteration sees only one. */
static void on_loop_idle(uv_prepare_t *p)
{
    struct daemon *d = p->data;
    if (!uv_is_active((uv_handle_t *)&d->flush_timer) &&
        (log_pending() || funclog_pending(d->funclog)))
        uv_timer_start(&d->flush_timer, on_flush_timer, FUNCLOG_FLUSH_MS, 0);
}

/* --- shutdown ---------------------------------------------------------------------- */

static void on_signal_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_controller_closed(void *data)
{
    struct daemon *d = data;
    d->controller = NULL;
    uv_close((uv_handle_t *)&d->sigterm, on_signal_closed);
    uv_close((uv_handle_t *)&d->sigint, on_signal_closed);
    uv_close((uv_handle_t *)&d->grace_timer, on_signal_closed);
    uv_close((uv_handle_t *)&d->flush_prepare, on_signal_closed);
    uv_close((uv_handle_t *)&d->flush_timer, on_signal_closed);
    busy_poll_close(&d->busy_poll);
    cgroup_close(&d->cgroups);
    log_info("stopped", "%s", "");
}

static void close_async(struct daemon *d)
{
    if (d->async)
        async_close(d->async, NULL, NULL); /* flushes the event log */
    d->async = NULL;
}

static void on_gateway_closed(void *data)
{
    struct daemon *d = data;
    d->gateway = NULL;
    close_async(d);
    if (d->controller)
        controller_close(d->controller, on_controller_closed, d);
    else
        on_controller_closed(d); /* already closed: the grace period ran out */
}

/* The grace period ran out: the cancelled invocations have been answered (503). */
static void on_cancelled(void *data)
{
    struct daemon *d = data;
    d->controller = NULL;
    d->grace_deadline_ms = uv_now(d->loop) + 1000; /* time to write those answers */
}

/* The last step of a shutdown: close every connection, then the controller. */
static void close_all(struct daemon *d)
{
    uv_timer_stop(&d->grace_timer);
    if (d->gateway)
        gateway_close(d->gateway, on_gateway_closed, d);
    else
        on_gateway_closed(d);
}

/* While the grace period runs: done once no invocation is queued or running. */
static void on_grace_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    if (d->controller == NULL) {
        /* Cancelled: each connection closes once its answer is written. */
        if (d->gateway == NULL || gateway_connections(d->gateway) == 0 ||
            uv_now(d->loop) >= d->grace_deadline_ms)
            close_all(d);
        return;
    }
    if (d->cancelling)
        return;
    size_t pending = controller_pending(d->controller);
    if (pending == 0) {
        close_all(d);
    } else if (uv_now(d->loop) >= d->grace_deadline_ms) {
        log_warn("grace period over, cancelling", "pending=%zu", pending);
        d->cancelling = true;
        close_async(d); /* what it has not finished stays in the event log for the restart */
        controller_close(d->controller, on_cancelled, d);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (d->stopping) {
        log_warn("second signal, exiting now", "signal=%d", signum);
        _exit(1);
    }
    d->stopping = true;
    size_t pending = d->controller ? controller_pending(d->controller) : 0;
    log_info("stopping", "signal=%s pending=%zu grace_ms=%llu",
             signum == SIGTERM ? "SIGTERM" : "SIGINT", pending,
             (unsigned long long)d->cfg->shutdown_grace);
    /* Graceful: stop accepting, let what runs finish (up to the grace period), then
     * close connections and stop workers. */
    if (d->gateway)
        gateway_stop_accepting(d->gateway);
    if (pending == 0 || d->cfg->shutdown_grace == 0) {
        close_all(d);
        return;
    }
    d->grace_deadline_ms = uv_now(d->loop) + d->cfg->shutdown_grace;
    uv_timer_start(&d->grace_timer, on_grace_tick, 20, 20);
}

/* --- run --------------------------------------------------------------------------- */

/* Whether value is a or b; logs the refusal otherwise. */
static bool setting_is_one_of(const char *option, const char *value, const char *a,
                              const char *b)
{
    if (strcmp(value, a) == 0 || strcmp(value, b) == 0)
        return true;
    log_error("bad setting", "%s=%s hint=\"use %s or %s\"", option, value, a, b);
    return false;
}

int daemon_run(const struct config *cfg)
{
    struct daemon d;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.started_ms = clock_wall_ms();

    ensure_std_fds();
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return, not death */

    enum log_level level;
    enum log_format format;
    if (log_level_parse(cfg->log_level, &level) < 0 ||
        log_format_parse(cfg->log_format, &format) < 0) {
        fprintf(stderr, "fnd: --log-level takes debug|info|warn|error, --log-format "
                        "logfmt|json\n");
        return 2;
    }
    log_setup(level, format);

    int rc = make_dirs(cfg->data_dir);
    char data_dir[PATH_MAX];
    if (rc < 0 || realpath(cfg->data_dir, data_dir) == NULL || access(data_dir, W_OK) != 0) {
        log_error("data folder unusable", "path=%s err=\"%s\"", cfg->data_dir,
                  strerror(rc < 0 ? -rc : errno));
        return 1;
    }

    /* The control plane's token; a listener others can reach needs one given on
     * purpose, not one generated into a file nobody has read. */
    char host[256], why[512] = "";
    int port;
    if (parse_listen(cfg->listen, host, sizeof(host), &port) < 0) {
        log_error("bad listen address", "listen=%s hint=\"use HOST:PORT\"", cfg->listen);
        return 2;
    }
    /* The two-way settings, before anything is allocated or started. */
    if (!setting_is_one_of("sandbox", cfg->sandbox, "on", "off") ||
        !setting_is_one_of("zygote", cfg->zygote, "on", "off") ||
        !setting_is_one_of("worker-scheduling", cfg->worker_scheduling, "batch", "normal"))
        return 2;
    if (auth_setup(&d.auth, cfg->auth_token, data_dir, cfg->invoke_auth, why, sizeof(why)) < 0) {
        log_error("auth setup failed", "err=\"%s\"", why);
        return 2;
    }
    if (strcmp(cfg->lambda_auth, "loopback") != 0 && strcmp(cfg->lambda_auth, "sigv4") != 0 &&
        strcmp(cfg->lambda_auth, "none") != 0) {
        log_error("bad setting", "lambda-auth=%s hint=\"use loopback, sigv4 or none\"",
                  cfg->lambda_auth);
        return 2;
    }
    if (!auth_host_is_loopback(host) && !d.auth.given) {
        log_error("refusing to listen on a non-loopback address without a token",
                  "listen=%s hint=\"give --auth-token or set FND_AUTH_TOKEN\"", cfg->listen);
        return 2;
    }
    /* Bundles are unpacked and zipped by the fnd-bundle helper beside this binary: a
     * daemon without it could not deploy anything, so it does not start. */
    struct bundle_limits limits = {cfg->max_code_size, cfg->max_code_files};
    char err[512] = "";
    if (unpacker_init(&d.unpacker, NULL, &limits, err, sizeof(err)) < 0) {
        log_error("bundle helper unusable", "err=\"%s\" hint=\"fnd-bundle is built next to "
                  "fnd; install them together\"", err);
        return 1;
    }
    if (funclog_open(&d.funclog, data_dir, cfg->log_file_size, (unsigned)cfg->log_files) < 0) {
        unpacker_release(&d.unpacker);
        return 1;
    }
    d.loop = uv_default_loop();
    char *native = exe_sibling_path("fnd-runtime-native");
    char *provided = exe_sibling_path("fnd-runtime-provided");
    d.paths = (struct runtime_paths){cfg->runtime_dir, cfg->python, cfg->node, native,
                                     cfg->region, provided};
    d.http_limits = (struct http_limits){
        .max_url = cfg->max_url,
        .max_header_bytes = cfg->max_header_size,
        .max_headers = cfg->max_headers,
        .max_body = cfg->max_body,
        .idle_timeout_ms = cfg->idle_timeout,
        .header_timeout_ms = cfg->header_timeout,
        .body_timeout_ms = cfg->body_timeout,
        .max_connections = cfg->max_connections,
    };

    struct registry_hooks hooks = {on_publish, on_remove, &d};
    rc = registry_open(&d.registry, d.loop, data_dir, &d.unpacker, &hooks, err, sizeof(err));
    if (rc < 0) {
        log_error("registry_open failed", "path=%s err=\"%s\" detail=\"%s\"", data_dir,
                  strerror(-rc), err);
        free(native);
        free(provided);
        funclog_close(d.funclog);
        unpacker_release(&d.unpacker);
        return 1;
    }

    /* The sandbox: say once, at start-up, which layers are active and why any is not. */
    bool sandbox = strcmp(cfg->sandbox, "on") == 0;
    bool drop_privileges = false;
    uint64_t namespaces = 0;
    memset(&d.cgroups, 0, sizeof(d.cgroups));
    d.cgroups.home_fds[0] = d.cgroups.home_fds[1] = -1;
    memset(&d.seccomp, 0, sizeof(d.seccomp));
    if (sandbox) {
        struct fn_config defaults; /* most functions keep the default memory limit */
        fn_config_init_defaults(&defaults);
        cgroup_setup(&d.cgroups, d.loop, (unsigned)cfg->worker_pids,
                     (uint64_t)defaults.memory_mb << 20);
        if (!d.cgroups.enabled)
            log_warn("sandbox layer unavailable", "layer=cgroups reason=\"%s\" effect=\"no "
                     "memory or pids limit per worker\"", d.cgroups.reason);
        seccomp_policy_build(&d.seccomp);
        if (!d.seccomp.enabled)
            log_warn("sandbox layer unavailable", "layer=seccomp reason=\"%s\" effect=\"every "
                     "system call is open to functions\"", d.seccomp.reason);
        uint64_t probed = sandbox_probe_namespaces();
        namespaces = probed & (uint64_t)(CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID |
                                         CLONE_NEWCGROUP | CLONE_NEWUSER);
        d.network_isolation = (probed & CLONE_NEWNET) != 0;
        if (probed & CLONE_NEWNS) {
            /* An empty folder of ours for each worker's private root to be mounted on. */
            d.fsroot_base = xasprintf("%s/sandbox", data_dir);
            if (mkdir(d.fsroot_base, 0700) < 0 && errno != EEXIST) {
                log_warn("sandbox layer unavailable", "layer=filesystem err=\"%s\"",
                         strerror(errno));
                free(d.fsroot_base);
                d.fsroot_base = NULL;
            }
        }
        /* A worker's own uid needs its own root: on the host's filesystem it could not
         * reach its code inside the daemon's 0700 data folder. */
        drop_privileges = geteuid() == 0 && d.fsroot_base != NULL;
        if (namespaces & CLONE_NEWUSER)
            log_warn("sandbox layer degraded", "layer=privileges reason=\"the daemon is not "
                     "root\" effect=\"workers run without capabilities in user namespaces of "
                     "their own, all mapped to the daemon's uid\"");
        else if (!drop_privileges)
            log_warn("sandbox layer unavailable", "layer=privileges reason=\"%s\" effect=\""
                     "workers run as the daemon's user\"",
                     geteuid() != 0 ? "the daemon is not root" : "no private root for workers");
    } else {
        log_warn("sandbox disabled", "reason=\"--sandbox off\" effect=\"functions run with the "
                 "daemon's privileges and no limits\"");
    }
    /* One table for the start-up line and for GET /v1/info. */
    const char *layer_states[][2] = {
        {"hygiene", "on"},
        {"session", "on"},
        {"cgroups", d.cgroups.enabled ? "v1" : "off"},
        {"rlimits", "on"},
        {"no_new_privs", "on"},
        {"seccomp", d.seccomp.enabled ? "on" : "off"},
        {"namespaces", namespace_names(namespaces)},
        {"network_none", d.network_isolation ? "on" : "off"},
        {"filesystem", d.fsroot_base ? "private-root" : "host"},
        {"uid", drop_privileges ? "per-worker" : namespaces & CLONE_NEWUSER ? "userns" : "daemon"},
    };
    char summary[512];
    size_t used = 0;
    /* NOLINTNEXTLINE(misc-redundant-expression): equal today, guarded should one grow */
    for (size_t i = 0; i < ARRAY_SIZE(layer_states) && i < ARRAY_SIZE(d.layers); i++) {
        d.layers[i].name = layer_states[i][0];
        d.layers[i].state = layer_states[i][1];
        d.nlayers++;
        used += (size_t)snprintf(summary + used, sizeof(summary) - used, "%s%s=%s",
                                 i ? " " : "", layer_states[i][0], layer_states[i][1]);
    }
    log_info("sandbox", "%s", summary);

    /* python3 workers start as forks of a pre-started interpreter (zygote.c). */
    struct zygote *zygote = NULL;
    if (strcmp(cfg->zygote, "on") == 0) {
        char *bootstrap = xasprintf("%s/python3/bootstrap.py", cfg->runtime_dir);
        char *library = exe_sibling_path("libfnd-zygote.so");
        if (zygote_open(&zygote, cfg->python, bootstrap, library) == 0)
            log_info("zygote started", "runtime=python3");
        else
            log_warn("zygote unavailable", "effect=\"python3 workers start a fresh "
                     "interpreter each\"");
        free(bootstrap);
        free(library);
    }

    struct controller_options copts = {
        .worker = {.paths = &d.paths, .init_timeout_ms = cfg->init_timeout,
                   .max_response = cfg->max_response, .region = cfg->region,
                   .cgroups = &d.cgroups, .seccomp = &d.seccomp, .namespaces = namespaces,
                   .fsroot_base = d.fsroot_base, .tmp_bytes = cfg->worker_tmp,
                   .drop_privileges = drop_privileges,
                   .sched_batch = strcmp(cfg->worker_scheduling, "batch") == 0,
                   .cpu_seconds = cfg->worker_cpu,
                   .zygote = zygote, .funclog = d.funclog},
        .max_workers = cfg->max_workers,
        .memory_budget_mb = memory_budget_mb(cfg),
        .spare_workers = cfg->spare_workers,
        .busy_poll = &d.busy_poll,
    };
    busy_poll_init(&d.busy_poll, d.loop, cfg->busy_poll);
    d.controller = controller_new(d.loop, &copts);
    registry_foreach(d.registry, attach_function, &d);

    /* The event log is recovered before anything is served. */
    char *eventlog_dir = xasprintf("%s/eventlog", data_dir);
    struct async_options aopts = {
        .registry = d.registry, .controller = d.controller,
        .log = {.dir = eventlog_dir, .segment_size = cfg->eventlog_segment_size,
                .backend = cfg->eventlog_backend, .repair = cfg->repair != 0},
        .idempotency_window_ms = cfg->idempotency_window, .result_max = cfg->async_result_max,
    };
    rc = async_open(&d.async, d.loop, &aopts, err, sizeof(err));
    free(eventlog_dir);
    if (rc < 0) {
        log_error("event log recovery failed", "err=\"%s\" detail=\"%s\"", strerror(-rc), err);
        d.exit_code = 1;
        controller_close(d.controller, NULL, NULL);
        busy_poll_close(&d.busy_poll);
        goto run; /* nothing else started: the loop only finishes the controller */
    }

    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_timer_init(d.loop, &d.grace_timer);
    d.sigterm.data = d.sigint.data = d.grace_timer.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_prepare_init(d.loop, &d.flush_prepare);
    d.flush_prepare.data = &d;
    uv_timer_init(d.loop, &d.flush_timer);
    d.flush_timer.data = &d;
    uv_prepare_start(&d.flush_prepare, on_loop_idle);
    uv_unref((uv_handle_t *)&d.flush_prepare);
    log_set_batching(true);

    log_info("starting", "version=%s data=%s pid=%d", FND_VERSION, data_dir, (int)getpid());
    if (cfg->seed_dir[0])
        d.pending_seeds = seed_start(&d, cfg->seed_dir);
    if (d.pending_seeds == 0 && start_serving(&d) < 0) {
        d.exit_code = 1;
        on_signal(&d.sigterm, SIGTERM);
    }

run:
    uv_run(d.loop, UV_RUN_DEFAULT);
    log_set_batching(false);

    zygote_close(zygote);
    registry_close(d.registry);
    unpacker_release(&d.unpacker);
    funclog_close(d.funclog);
    metrics_reset();
    if (sandbox)
        cgroup_teardown(&d.cgroups);
    seccomp_policy_release(&d.seccomp);
    free(d.fsroot_base);
    free(native);
    free(provided);
    rc = uv_loop_close(d.loop);
    if (rc != 0)
        log_warn("uv_loop_close failed", "err=\"%s\"", uv_strerror(rc));
    return d.exit_code;
}
