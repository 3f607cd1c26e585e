/*
 * The daemon's settings, declared once in FND_SETTINGS: option name, type, default,
 * bounds and help. The struct, the defaults, `fnd serve --help`, command-line parsing
 * and `--print-config` are all generated from the table, so a setting cannot exist in
 * one of them and be missing from another.
 */
#ifndef FND_CONFIG_H
#define FND_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* type, field, option, default, min, max, help. Types: STR (char *), SECRET (char *,
 * never printed), UINT (count), SIZE (bytes; accepts K/M/G suffixes), MS (milliseconds). */
#define FND_SETTINGS(X)                                                                        \
    X(STR, listen, "listen", "127.0.0.1:8080", 0, 0,                                           \
      "address to serve on, HOST:PORT; port 0 picks a free port")                              \
    X(STR, data_dir, "data", "fnd-data", 0, 0,                                                 \
      "data folder for functions and logs (default: $FND_DATA, else ./fnd-data)")              \
    X(STR, seed_dir, "seed", "", 0, 0,                                                         \
      "at start-up, deploy each DIR/*/fnd.json whose function does not exist yet")             \
    X(STR, runtime_dir, "runtime-dir", FND_RUNTIME_DIR, 0, 0,                                  \
      "folder holding the python3/ and nodejs/ runtimes")                                      \
    X(STR, python, "python", "/usr/bin/python3", 0, 0, "Python interpreter for python3")      \
    X(STR, node, "node", "/usr/bin/node", 0, 0, "Node.js binary for nodejs")                   \
    X(STR, region, "region", "us-east-1", 0, 0, "region reported to functions (AWS_REGION)")   \
    X(STR, log_level, "log-level", "info", 0, 0, "debug, info, warn or error")                 \
    X(STR, sandbox, "sandbox", "on", 0, 0,                                                     \
      "on, or off to run workers without cgroups, namespaces and seccomp (benchmarks)")       \
    X(STR, log_format, "log-format", "logfmt", 0, 0, "logfmt or json")                         \
    X(SIZE, max_body, "max-body", 6 * MiB, 1 * KiB, 1 * GiB,                                   \
      "largest request body; larger requests get 413")                                         \
    X(SIZE, max_header_size, "max-header-size", 16 * KiB, 1 * KiB, 1 * MiB,                    \
      "largest total of request header names and values; larger get 431")                     \
    X(UINT, max_headers, "max-headers", 100, 1, 10000, "most request headers; more get 431")   \
    X(SIZE, max_url, "max-url", 8 * KiB, 64, 1 * MiB, "longest request target; longer get 414") \
    X(MS, idle_timeout, "idle-timeout", 60000, 10, 86400000,                                   \
      "close a keep-alive connection idle this long")                                          \
    X(MS, header_timeout, "header-timeout", 10000, 10, 3600000,                                \
      "close a connection whose request headers take longer than this")                        \
    X(MS, body_timeout, "body-timeout", 30000, 10, 3600000,                                    \
      "close a connection whose request body stalls this long")                                \
    X(UINT, max_connections, "max-connections", 10000, 1, 1000000,                             \
      "most open client connections")                                                          \
    X(SIZE, max_code_size, "max-code-size", 250 * MiB, 1 * KiB, 16 * GiB,                      \
      "largest unpacked code bundle; larger deploys get 413")                                  \
    X(UINT, max_code_files, "max-code-files", 20000, 1, 10000000,                              \
      "most files and folders in a code bundle")                                               \
    X(SIZE, max_response, "max-response", 6 * MiB, 1 * KiB, 1 * GiB,                           \
      "largest result a function may return; a worker sending more is killed")                 \
    X(MS, init_timeout, "init-timeout", 10000, 10, 600000,                                     \
      "longest a new worker may take to load its handler")                                     \
    X(UINT, max_workers, "max-workers", 256, 1, 100000, "most worker processes at once")        \
    X(UINT, spare_workers, "spare-workers", 1, 0, 16,                                          \
      "workers a function starts beyond its demand when it scales up, so the next step up "   \
      "finds one ready (0: none)")                                                            \
    X(SIZE, worker_tmp, "worker-tmp", 512 * MiB, 1 * MiB, 64 * GiB,                           \
      "size of each worker's private /tmp")                                                    \
    X(UINT, worker_pids, "worker-pids", 64, 4, 100000,                                         \
      "most processes and threads in one worker (its cgroup's pids.max)")                      \
    X(STR, zygote, "zygote", "on", 0, 0,                                                       \
      "on: start python3 workers by forking a pre-started interpreter; off: exec each one")   \
    X(STR, worker_scheduling, "worker-scheduling", "batch", 0, 0,                              \
      "batch: workers run as SCHED_BATCH, so a worker woken by its invocation does not "       \
      "preempt the daemon (throughput under load); normal: SCHED_OTHER")                       \
    X(UINT, busy_poll, "busy-poll", 100, 0, 100000,                                            \
      "microseconds the daemon polls without sleeping after it hands an invocation to a "     \
      "worker, to catch the reply and the next request without a wake-up (0: never)")         \
    X(UINT, worker_cpu, "worker-cpu", 3600, 1, 1000000,                                        \
      "CPU seconds one worker process may use in its life (RLIMIT_CPU), a backstop behind "    \
      "timeouts")                                                                              \
    X(SIZE, memory_budget, "memory-budget", 0, 0, 1024 * GiB,                                  \
      "most memory_mb summed over live workers; 0 means three quarters of the RAM")          \
    /* durable async invocations and the event log (docs/eventlog.md) */                      \
    X(STR, eventlog_backend, "eventlog-backend", "auto", 0, 0,                                 \
      "event log I/O: auto (io_uring, else the threadpool), uring or threadpool")             \
    X(SIZE, eventlog_segment_size, "eventlog-segment-size", 64 * MiB, 64 * KiB, 16 * GiB,      \
      "size of each preallocated event log segment")                                           \
    X(UINT, repair, "repair", 0, 0, 1,                                                         \
      "1: start even with a damaged event log, cutting it at the damage (a copy is kept)")    \
    X(MS, idempotency_window, "idempotency-window", 86400000, 1000, 2592000000,                \
      "how long idempotency keys and finished async invocations are kept")                    \
    X(SIZE, async_result_max, "async-result-max", 256 * KiB, 0, 1 * GiB,                       \
      "largest result kept for an async or idempotent invocation; longer ones are cut")        \
    /* Lambda compatibility */                                                                 \
    X(STR, function_url_prefix, "function-url-prefix", "/fn", 0, 0,                            \
      "function URLs: ANY PREFIX/{name}/{path...} invokes name with a function URL event")     \
    X(STR, lambda_auth, "lambda-auth", "loopback", 0, 0,                                       \
      "Lambda control plane without the bearer token: loopback peers, sigv4 (signed with the " \
      "token as secret key) or none")                                                         \
    /* operability: function logs, control-plane auth, shutdown, config file */              \
    X(SIZE, log_file_size, "log-file-size", 1 * MiB, 4 * KiB, 1 * GiB,                         \
      "rotate a function's output log when it reaches this size")                             \
    X(UINT, log_files, "log-files", 4, 1, 100,                                                 \
      "output log files kept per function, the current one included")                         \
    X(SECRET, auth_token, "auth-token", "", 0, 0,                                              \
      "bearer token for control requests (default: $FND_AUTH_TOKEN, else generated into "     \
      "<data>/auth-token)")                                                                   \
    X(STR, invoke_auth, "invoke-auth", "loopback", 0, 0,                                       \
      "who may invoke without the token: loopback (peers on 127.0.0.1/::1), all, or none")   \
    X(MS, shutdown_grace, "shutdown-grace", 10000, 0, 3600000,                                 \
      "on SIGTERM/SIGINT, how long running invocations may take to finish")                  \
    X(STR, config_file, "config", "", 0, 0,                                                    \
      "read settings from this file (`name = value` lines) before the command line")

struct config {
#define FND_SETTING_STR(field) char *field;
#define FND_SETTING_SECRET(field) char *field;
#define FND_SETTING_UINT(field) uint64_t field;
#define FND_SETTING_SIZE(field) uint64_t field;
#define FND_SETTING_MS(field) uint64_t field;
#define FND_SETTING_MEMBER(type, field, opt, def, lo, hi, help) FND_SETTING_##type(field)
    FND_SETTINGS(FND_SETTING_MEMBER)
#undef FND_SETTING_MEMBER
};

/* Fills c with the defaults ($FND_DATA, when set, is the data folder's default). */
void config_init(struct config *c);
void config_release(struct config *c);
/* Parses `--name value` and `--name=value` options from argv[first..argc). Returns 0,
 * 1 when --help was given (help printed to out), or -EINVAL with the reason in err. */
int config_parse_args(struct config *c, int argc, char **argv, int first, char *err,
                      size_t errsize, FILE *out);
/* Reads `name = value` lines (option names without dashes; `#` starts a comment) into
 * c. 0, or a negative errno with the file, line and reason in err. */
int config_load_file(struct config *c, const char *path, char *err, size_t errsize);
/* Prints one line per option with its default and help. */
void config_print_help(FILE *out);
/* Prints the settings table of docs/operations.md (Markdown), from FND_SETTINGS. */
void config_print_markdown(FILE *out);
/* Prints the settings as the OPTIONS section of a man(7) page. */
void config_print_man(FILE *out);
/* Prints the effective settings as `name = value` lines (the config file's syntax);
 * secrets show only whether they are set. */
void config_print(const struct config *c, FILE *out);

#endif
