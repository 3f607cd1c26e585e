/*
 * The client commands of the `fnd` binary (docs/cli.md): deploy, invoke, ls, get,
 * logs, status, rm, and dev (cli_dev.c). Each talks to the daemon at $FND_URL
 * (default http://127.0.0.1:8080) with the token found for it automatically, prints
 * tables by default or JSON with --json, and exits with a code from CLI_EXITS.
 */
#ifndef FND_CLI_H
#define FND_CLI_H

#include "fnd/auth.h"
#include "fnd/buf.h"
#include "fnd/http_client.h"

#include <stdbool.h>
#include <stdio.h>

/* The commands of the fnd binary: synopsis, what it does. `fnd help` and the manual
 * page (fnd help --man) are printed from this table. */
#define FND_COMMANDS(X)                                                                        \
    X("serve [options]", "run the daemon; `fnd serve --help` lists its settings and "        \
                         "`--print-config` shows the effective ones")                         \
    X("deploy DIR|ZIP --name N --runtime R --handler H [--env K=V ...] [--memory MB] "        \
      "[--timeout MS] [--network none|host]",                                                 \
      "create or replace a function from a folder (zipped by fnd) or a .zip")                 \
    X("invoke NAME [--data JSON|@file|-] [--async] [--idempotency-key K] [--tail]",            \
      "run a function and print its result; --tail prints its log to stderr")                 \
    X("ls", "list the functions")                                                              \
    X("get NAME", "a function's configuration and live state")                                 \
    X("logs NAME [-f] [--since AGE|TIME]", "a function's output; -f follows new records")     \
    X("status ID", "the state of an asynchronous invocation")                                  \
    X("rm NAME", "delete a function")                                                          \
    X("dev DIR --name N --runtime R --handler H [deploy options]",                             \
      "deploy, then redeploy on every change; code that does not load is refused")            \
    X("version", "print the version")                                                          \
    X("help [--man]", "print this help, or the fnd(1) manual page")

/* name, exit code, meaning (docs/cli.md lists them from here) */
#define CLI_EXITS(X)                                                                           \
    X(OK, 0, "success")                                                                        \
    X(FUNCTION_ERROR, 1, "the function ran and failed (error, timeout, crash, init error)")   \
    X(USAGE, 2, "the command line is wrong")                                                   \
    X(NOT_FOUND, 3, "no such function or invocation")                                          \
    X(UNAUTHORIZED, 4, "the daemon refused the token")                                         \
    X(UNREACHABLE, 5, "the daemon could not be reached")                                       \
    X(REJECTED, 6, "the daemon refused the request (invalid, conflict, too large, throttled)") \
    X(SERVER, 7, "the daemon failed (a 5xx answer)")

enum cli_exit {
#define CLI_EXIT_ENUM(name, code, help) CLI_EXIT_##name = code,
    CLI_EXITS(CLI_EXIT_ENUM)
#undef CLI_EXIT_ENUM
};

struct cli {
    const char *cmd;      /* "deploy", ... for messages */
    char url[512];
    char token[AUTH_TOKEN_MAX + 1]; /* empty: none found */
    bool json;
    bool progress;        /* show upload progress (default: when stderr is a terminal) */
};

/* What deploy and dev send. */
struct cli_deploy {
    const char *source;   /* folder or .zip */
    const char *name;
    const char *runtime;
    const char *handler;
    const char *env[64];  /* "K=V" */
    size_t nenv;
    const char *memory;   /* MB, as given */
    const char *timeout;  /* ms */
    const char *network;
};

/* Whether argv[0] names a client command. */
bool cli_is_command(const char *name);
/* Runs `fnd <command> ...` (argv[0] is the command). Returns the exit code. */
int cli_main(int argc, char **argv);

/* Sends one request with the token and prints what went wrong when it fails to get
 * an answer. 0 with *resp filled, or an exit code (CLI_EXIT_UNREACHABLE). */
int cli_request(const struct cli *c, const char *method, const char *path,
                const struct http_header *headers, size_t nheaders, const void *body,
                size_t len, struct http_client_response *resp, uint64_t timeout_ms);
/* Prints the daemon's error answer with a hint on what to do; returns its exit code. */
int cli_report_error(const struct cli *c, const struct http_client_response *resp);
/* Packs d->source (a folder is zipped, a .zip read) into zip. 0, or an exit code after
 * printing why. */
int cli_pack(const struct cli *c, const char *source, struct buf *zip);
/* Builds the deploy body for d with the bundle zip and extra JSON members (may be NULL:
 * e.g. {"min_warm": 1}), PUTs it as function name. 0 with *resp (2xx), or an exit code
 * after printing the error. */
int cli_put_function(const struct cli *c, const struct cli_deploy *d, const char *name,
                     const struct buf *zip, const char *extra_json,
                     struct http_client_response *resp);
/* Parses one deploy flag at argv[*i] into d (advancing *i past its value). 1 when it
 * was one, 0 when not, -1 (message printed) when its value is missing. */
int cli_deploy_flag(struct cli_deploy *d, int argc, char **argv, int *i);
/* Checks that name, runtime and handler were given; prints what is missing. */
bool cli_deploy_complete(const struct cli *c, const struct cli_deploy *d);

/* Prints `fnd help`, or the fnd(1) manual page in man(7) format (cli_help.c). */
void cli_print_help(FILE *out);
void cli_print_man(FILE *out);

/* `fnd dev` (cli_dev.c). */
int cli_dev(struct cli *c, int argc, char **argv);

#endif
