/*
 * fnd: one binary, several commands. `fnd serve` runs the daemon; the rest of the
 * commands are clients of its HTTP API.
 */
#include "fnd/config.h"
#include "fnd/daemon.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "fnd %s: a function-as-a-service daemon and a local AWS Lambda emulator\n\n"
                 "usage: fnd <command> [options]\n\n"
                 "commands:\n"
                 "  serve      run the daemon (fnd serve --help lists its options)\n"
                 "  version    print the version\n"
                 "  help       print this help\n",
            FND_VERSION);
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    config_init(&cfg);
    char err[256];
    int rc = config_parse_args(&cfg, argc, argv, 2, err, sizeof(err), stdout);
    if (rc == 1) {
        config_release(&cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "fnd serve: %s\n", err);
        config_release(&cfg);
        return 2;
    }
    rc = daemon_run(&cfg);
    config_release(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("fnd %s\n", FND_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf("usage: fnd serve [options]\n\nRuns the daemon.\n\noptions:\n");
            config_print_help(stdout);
            return 0;
        }
        return cmd_serve(argc, argv);
    }
    fprintf(stderr, "fnd: unknown command '%s' (see fnd help)\n", argv[1]);
    return 2;
}
