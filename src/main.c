/*
 * fnd: one binary, several commands. `fnd serve` runs the daemon; the rest of the
 * commands are clients of its HTTP API.
 */
#include "fnd/cli.h"
#include "fnd/config.h"
#include "fnd/daemon.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    cli_print_help(out);
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    config_init(&cfg);
    char err[512];
    /* --print-config is an action, not a setting; --config is read before the rest of
     * the command line, so that options given there win over the file. */
    bool print = false;
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--print-config") == 0) {
            print = true;
            for (int k = i; k + 1 < argc; k++)
                argv[k] = argv[k + 1];
            argc--;
            i--;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            rc = config_load_file(&cfg, argv[i + 1], err, sizeof(err));
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            rc = config_load_file(&cfg, argv[i] + 9, err, sizeof(err));
        }
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = config_parse_args(&cfg, argc, argv, 2, err, sizeof(err), stdout);
    if (rc == 1) {
        config_release(&cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "fnd serve: %s\n", err);
        config_release(&cfg);
        return 2;
    }
    if (print) {
        config_print(&cfg, stdout);
        config_release(&cfg);
        return 0;
    }
    rc = daemon_run(&cfg);
    config_release(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "--man") == 0) {
        cli_print_man(stdout);
        return 0;
    }
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
        if (argc > 2 && strcmp(argv[2], "--help-markdown") == 0) {
            config_print_markdown(stdout); /* the table in docs/operations.md */
            return 0;
        }
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf("usage: fnd serve [options]\n\nRuns the daemon.\n\noptions:\n");
            config_print_help(stdout);
            return 0;
        }
        return cmd_serve(argc, argv);
    }
    if (cli_is_command(argv[1]))
        return cli_main(argc - 1, argv + 1);
    fprintf(stderr, "fnd: unknown command '%s' (see fnd help)\n", argv[1]);
    return 2;
}
