/*
 * `fnd help` and the fnd(1) manual page (include/fnd/cli.h), both printed from the same
 * tables: FND_COMMANDS, CLI_EXITS and the daemon's FND_SETTINGS (config.c), so the
 * manual cannot drift from the binary. docs/fnd.1 is `fnd help --man`, checked by a test.
 */
#include "fnd/cli.h"

#include "fnd/config.h"

#define CLIENT_OPTIONS                                                                         \
    "--json (machine-readable output), --url URL (default $FND_URL or "                       \
    "http://127.0.0.1:8080), --token T (default $FND_AUTH_TOKEN, or the auth-token file in "  \
    "$FND_DATA or ./fnd-data for a local daemon), --progress (upload progress; on by default " \
    "on a terminal)"

void cli_print_help(FILE *out)
{
    fprintf(out, "fnd %s: a function-as-a-service daemon and a local AWS Lambda emulator\n\n"
                 "usage: fnd <command> [options]\n\ncommands:\n",
            FND_VERSION);
#define COMMAND_HELP(synopsis, help) fprintf(out, "  %s\n      %s\n", synopsis, help);
    FND_COMMANDS(COMMAND_HELP)
#undef COMMAND_HELP
    fprintf(out, "\nclient options: %s\n\nexit codes:\n", CLIENT_OPTIONS);
#define CLI_EXIT_HELP(name, code, help) fprintf(out, "  %d  %s\n", code, help);
    CLI_EXITS(CLI_EXIT_HELP)
#undef CLI_EXIT_HELP
}

/* Text for a man(7) line: backslashes and dashes escaped, a leading dot or quote
 * protected. */
static void roff(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

void cli_print_man(FILE *out)
{
    fprintf(out, ".TH FND 1 \"\" \"fnd %s\" \"User Commands\"\n.SH NAME\n"
                 "fnd \\- a function\\-as\\-a\\-service daemon and its client\n"
                 ".SH SYNOPSIS\n.B fnd\n.I command\n[\\fIoptions\\fR]\n.SH DESCRIPTION\n"
                 "One binary: \\fBfnd serve\\fR runs the daemon; the other commands are "
                 "clients of its HTTP API.\n.SH COMMANDS\n",
            FND_VERSION);
#define COMMAND_MAN(synopsis, help)                                                            \
    fputs(".TP\n.B fnd ", out);                                                                \
    roff(out, synopsis);                                                                       \
    fputc('\n', out);                                                                          \
    roff(out, help);                                                                           \
    fputc('\n', out);
    FND_COMMANDS(COMMAND_MAN)
#undef COMMAND_MAN
    fputs(".SH CLIENT OPTIONS\n", out);
    roff(out, CLIENT_OPTIONS);
    fputs("\n.SH SERVE OPTIONS\n", out);
    config_print_man(out);
    fputs(".SH EXIT STATUS\n", out);
#define CLI_EXIT_MAN(name, code, help) fprintf(out, ".TP\n.B %d\n", code), roff(out, help),   \
                                       fputc('\n', out);
    CLI_EXITS(CLI_EXIT_MAN)
#undef CLI_EXIT_MAN
    fputs(".SH ENVIRONMENT\n.TP\n.B FND_URL\nthe daemon the client commands talk to\n"
          ".TP\n.B FND_AUTH_TOKEN\nthe control\\-plane token (daemon and client)\n"
          ".TP\n.B FND_DATA\nthe data folder (daemon), where the client looks for "
          "auth\\-token\n.SH FILES\n.TP\n.I fnd\\-data/auth\\-token\n"
          "the generated token, mode 0600\n.TP\n.I fnd\\-data/logs/NAME/output.log\n"
          "function output, rotated\n.SH SEE ALSO\ndocs/cli.md, docs/operations.md, "
          "docs/api.md\n",
          out);
}
