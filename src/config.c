/*
 * Daemon settings (include/fnd/config.h). The FND_SETTINGS table is expanded here
 * into a descriptor array; defaults, parsing, bounds checks, help and printing all
 * walk that array.
 */
#include "fnd/config.h"

#include "fnd/common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum setting_type { SETTING_STR, SETTING_UINT, SETTING_SIZE, SETTING_MS, SETTING_SECRET };

struct setting {
    enum setting_type type;
    const char *option;
    size_t offset;
    const char *def_str;
    uint64_t def_num;
    uint64_t lo, hi;
    const char *help;
};

/* The STR rows carry their default as a string and the others as a number; the
 * unused slot is filled with a dummy of the right type. */
#define FND_DEF_STR(def) (def), 0
#define FND_DEF_SECRET(def) (def), 0
#define FND_DEF_UINT(def) NULL, (uint64_t)(def)
#define FND_DEF_SIZE(def) NULL, (uint64_t)(def)
#define FND_DEF_MS(def) NULL, (uint64_t)(def)

static const struct setting settings[] = {
#define FND_SETTING_ROW(type, field, opt, def, lo, hi, help)                                   \
    {SETTING_##type, opt, offsetof(struct config, field), FND_DEF_##type(def), lo, hi, help},
    FND_SETTINGS(FND_SETTING_ROW)
#undef FND_SETTING_ROW
};

static bool is_str(const struct setting *s)
{
    return s->type == SETTING_STR || s->type == SETTING_SECRET;
}

static char **str_slot(struct config *c, const struct setting *s)
{
    return (char **)((char *)c + s->offset);
}

static uint64_t *num_slot(struct config *c, const struct setting *s)
{
    return (uint64_t *)((char *)c + s->offset);
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
        const struct setting *s = &settings[i];
        if (is_str(s))
            *str_slot(c, s) = xstrdup(s->def_str);
        else
            *num_slot(c, s) = s->def_num;
    }
    const char *env_data = getenv("FND_DATA");
    if (env_data && *env_data) {
        free(c->data_dir);
        c->data_dir = xstrdup(env_data);
    }
    const char *env_token = getenv("FND_AUTH_TOKEN");
    if (env_token && *env_token) {
        free(c->auth_token);
        c->auth_token = xstrdup(env_token);
    }
}

void config_release(struct config *c)
{
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
        if (is_str(&settings[i])) {
            free(*str_slot(c, &settings[i]));
            *str_slot(c, &settings[i]) = NULL;
        }
    }
}

/* Parses a decimal number with an optional K/M/G (binary) suffix for sizes. */
static int parse_number(const struct setting *s, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*text == '-' || *text == '\0')
        return -EINVAL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text)
        return -EINVAL;
    uint64_t mult = 1;
    if (s->type == SETTING_SIZE && *end) {
        switch (*end) {
        case 'k': case 'K': mult = KiB; break;
        case 'm': case 'M': mult = MiB; break;
        case 'g': case 'G': mult = GiB; break;
        default: return -EINVAL;
        }
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
    }
    if (*end != '\0' || v > UINT64_MAX / mult)
        return -EINVAL;
    *out = (uint64_t)v * mult;
    return 0;
}

static int set_value(struct config *c, const struct setting *s, const char *value, char *err,
                     size_t errsize)
{
    if (is_str(s)) {
        free(*str_slot(c, s));
        *str_slot(c, s) = xstrdup(value);
        return 0;
    }
    uint64_t v;
    if (parse_number(s, value, &v) < 0 || v < s->lo || v > s->hi) {
        snprintf(err, errsize, "--%s: must be a number between %" PRIu64 " and %" PRIu64,
                 s->option, s->lo, s->hi);
        return -EINVAL;
    }
    *num_slot(c, s) = v;
    return 0;
}

static const struct setting *find_setting(const char *name, size_t namelen)
{
    for (size_t k = 0; k < ARRAY_SIZE(settings); k++)
        if (strlen(settings[k].option) == namelen &&
            memcmp(settings[k].option, name, namelen) == 0)
            return &settings[k];
    return NULL;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int rc = -errno;
        snprintf(err, errsize, "--config %s: %s", path, strerror(-rc));
        return rc;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strlen(p);
        while (len && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' '))
            p[--len] = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (eq == NULL) {
            snprintf(err, errsize, "%s:%d: expected `name = value`", path, lineno);
            rc = -EINVAL;
            break;
        }
        char *name_end = eq;
        while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        char *value = eq + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        const struct setting *s = find_setting(p, (size_t)(name_end - p));
        if (s == NULL || strcmp(s->option, "config") == 0) {
            snprintf(err, errsize, "%s:%d: unknown setting '%.*s' (see fnd serve --help)", path,
                     lineno, (int)(name_end - p), p);
            rc = -EINVAL;
            break;
        }
        char why[200];
        rc = set_value(c, s, value, why, sizeof(why));
        if (rc < 0)
            snprintf(err, errsize, "%s:%d: %s", path, lineno, why);
    }
    fclose(f);
    return rc;
}

int config_parse_args(struct config *c, int argc, char **argv, int first, char *err,
                      size_t errsize, FILE *out)
{
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            config_print_help(out);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errsize, "unexpected argument '%s'", arg);
            return -EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = find_setting(name, namelen);
        if (s == NULL) {
            snprintf(err, errsize, "unknown option '--%.*s' (see --help)", (int)namelen, name);
            return -EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errsize, "--%s needs a value", s->option);
                return -EINVAL;
            }
            value = argv[++i];
        }
        int rc = set_value(c, s, value, err, errsize);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void format_default(const struct setting *s, char *out, size_t size)
{
    if (is_str(s))
        snprintf(out, size, "%s", *s->def_str ? s->def_str : "(none)");
    else if (s->type == SETTING_SIZE && s->def_num % MiB == 0)
        snprintf(out, size, "%" PRIu64 "M", s->def_num / MiB);
    else if (s->type == SETTING_SIZE && s->def_num % KiB == 0)
        snprintf(out, size, "%" PRIu64 "K", s->def_num / KiB);
    else
        snprintf(out, size, "%" PRIu64 "%s", s->def_num, s->type == SETTING_MS ? " ms" : "");
}

void config_print_help(FILE *out)
{
    static const char *const metavar[] = {"TEXT", "N", "BYTES", "MS", "TEXT"};
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
        const struct setting *s = &settings[i];
        char left[64], def[64];
        snprintf(left, sizeof(left), "--%s %s", s->option, metavar[s->type]);
        format_default(s, def, sizeof(def));
        fprintf(out, "  %-28s %s [%s]\n", left, s->help, def);
    }
}

void config_print_markdown(FILE *out)
{
    static const char *const kinds[] = {"text", "count", "bytes", "ms", "secret"};
    fprintf(out, "| setting | type | default | range | meaning |\n"
                 "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
        const struct setting *s = &settings[i];
        char def[64], range[64] = "";
        format_default(s, def, sizeof(def));
        if (is_str(s) && strcmp(s->def_str, FND_RUNTIME_DIR) == 0)
            snprintf(def, sizeof(def), "runtimes/ of the build"); /* not this machine's path */
        if (!is_str(s))
            snprintf(range, sizeof(range), "%" PRIu64 "..%" PRIu64, s->lo, s->hi);
        fprintf(out, "| `%s` | %s | %s | %s | ", s->option, kinds[s->type], def, range);
        for (const char *h = s->help; *h; h++) { /* a table cell cannot hold a bare pipe */
            if (*h == '<' || *h == '>') /* nor something that reads as an HTML tag */
                fputs(*h == '<' ? "&lt;" : "&gt;", out);
            else if (*h == '|')
                fputs("\\|", out);
            else
                fputc(*h, out);
        }
        fputs(" |\n", out);
    }
}

/* s as man(7) text: dashes and backslashes escaped. */
static void put_roff(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '-' || *s == '\\')
            fputc('\\', out);
        fputc(*s == '\\' ? 'e' : *s, out);
    }
}

void config_print_man(FILE *out)
{
    static const char *const metavar[] = {"TEXT", "N", "BYTES", "MS", "TEXT"};
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
        const struct setting *s = &settings[i];
        char def[64];
        format_default(s, def, sizeof(def));
        if (is_str(s) && strcmp(s->def_str, FND_RUNTIME_DIR) == 0)
            snprintf(def, sizeof(def), "runtimes/ of the build");
        fputs(".TP\n.BI \\-\\-", out);
        put_roff(out, s->option);
        fprintf(out, " \" %s\"\n", metavar[s->type]);
        put_roff(out, s->help);
        fputs(" [", out);
        put_roff(out, def);
        fputs("]\n", out);
    }
}

void config_print(const struct config *c, FILE *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
        const struct setting *s = &settings[i];
        if (s->type == SETTING_SECRET) /* secrets are never printed, only their presence */
            fprintf(out, "%s = %s\n", s->option,
                    **str_slot((struct config *)c, s) ? "(set)" : "(unset)");
        else if (s->type == SETTING_STR)
            fprintf(out, "%s = %s\n", s->option, *str_slot((struct config *)c, s));
        else
            fprintf(out, "%s = %" PRIu64 "\n", s->option, *num_slot((struct config *)c, s));
    }
}
