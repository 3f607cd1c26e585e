/*
 * The client commands (include/fnd/cli.h, docs/cli.md).
 *
 * Every command is a few requests to the native API through http_client.c. Options
 * may come in any order after the command; --json, --url and --token are accepted by
 * all. The token is found, in order: --token, $FND_AUTH_TOKEN, and for a daemon on
 * this machine (a loopback URL) the auth-token file in $FND_DATA or ./fnd-data. Errors
 * name the cause and what to do, on stderr; results go to stdout, so a script can
 * pipe them.
 */
#include "fnd/cli.h"

#include "fnd/codec.h"
#include "fnd/unpacker.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_TIMEOUT_MS 120000          /* a deploy of a large bundle, a slow function */
#define CLI_MAX_BUNDLE (256u << 20)
#define CLI_MAX_EVENT (64u << 20)

static const char *const commands[] = {"deploy", "invoke", "ls", "get", "logs", "status",
                                       "rm", "dev"};

bool cli_is_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(name, commands[i]) == 0)
            return true;
    return false;
}

static int usage_error(const struct cli *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "fnd %s: ", c->cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see fnd help)\n");
    return CLI_EXIT_USAGE;
}

/* --- the daemon and its token ------------------------------------------------------ */

static void read_token(struct cli *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, c->token, AUTH_TOKEN_MAX);
    close(fd);
    size_t len = n > 0 ? (size_t)n : 0;
    while (len && (c->token[len - 1] == '\n' || c->token[len - 1] == '\r'))
        len--;
    c->token[len] = '\0';
}

/* The token for c->url: given, from the environment, or from a local data folder. */
static void find_token(struct cli *c)
{
    if (c->token[0])
        return;
    const char *env = getenv("FND_AUTH_TOKEN");
    if (env && *env) {
        snprintf(c->token, sizeof(c->token), "%s", env);
        return;
    }
    char host[256];
    int port;
    if (http_client_parse_url(c->url, host, sizeof(host), &port) < 0 ||
        !auth_host_is_loopback(host))
        return;
    const char *data = getenv("FND_DATA");
    char path[4096];
    snprintf(path, sizeof(path), "%s/auth-token", data && *data ? data : "fnd-data");
    read_token(c, path);
}

/* Sends rq to c->url with the token added. 0 with *resp filled, or an exit code after
 * saying why no answer came. */
static int send_request(const struct cli *c, struct http_client_request *rq,
                        struct http_client_response *resp)
{
    struct http_header all[HTTP_CLIENT_MAX_HEADERS];
    size_t n = 0;
    /* Outlives the block below: all[] points into it until the request is sent. */
    char bearer[AUTH_TOKEN_MAX + 16]; // cppcheck-suppress variableScope
    if (c->token[0]) {
        snprintf(bearer, sizeof(bearer), "Bearer %s", c->token);
        all[n++] = (struct http_header){SLICE_LIT("Authorization"), slice_from_cstr(bearer)};
    }
    for (size_t i = 0; i < rq->nheaders && n < ARRAY_SIZE(all); i++)
        all[n++] = rq->headers[i];
    rq->headers = all;
    rq->nheaders = n;
    rq->url = c->url;
    char err[512];
    int rc = http_client_fetch(rq, resp, err, sizeof(err));
    rq->headers = NULL;
    rq->nheaders = 0;
    if (rc == 0)
        return 0;
    if (rc == -EINVAL) {
        fprintf(stderr, "fnd %s: %s (set FND_URL or --url)\n", c->cmd, err);
        return CLI_EXIT_USAGE;
    }
    fprintf(stderr, "fnd %s: cannot reach the daemon at %s: %s\n"
                    "  is `fnd serve` running there? (set FND_URL or --url to point elsewhere)\n",
            c->cmd, c->url, err);
    return CLI_EXIT_UNREACHABLE;
}

int cli_request(const struct cli *c, const char *method, const char *path,
                const struct http_header *headers, size_t nheaders, const void *body,
                size_t len, struct http_client_response *resp, uint64_t timeout_ms)
{
    struct http_client_request rq = {
        .method = method, .path = path, .headers = headers, .nheaders = nheaders,
        .body = body, .body_len = len, .timeout_ms = timeout_ms,
    };
    return send_request(c, &rq, resp);
}

static int exit_for_status(int status)
{
    if (status >= 200 && status < 300)
        return CLI_EXIT_OK;
    if (status == 401 || status == 403)
        return CLI_EXIT_UNAUTHORIZED;
    if (status == 404)
        return CLI_EXIT_NOT_FOUND;
    if (status >= 500)
        return CLI_EXIT_SERVER;
    return CLI_EXIT_REJECTED;
}

int cli_report_error(const struct cli *c, const struct http_client_response *resp)
{
    cJSON *o = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(msg))
        fprintf(stderr, "fnd %s: %s (HTTP %d)\n", c->cmd, msg->valuestring, resp->status);
    else
        fprintf(stderr, "fnd %s: the daemon answered HTTP %d\n", c->cmd, resp->status);
    cJSON_Delete(o);
    if (resp->status == 401)
        fprintf(stderr, c->token[0]
                    ? "  the token was refused: use the daemon's (FND_AUTH_TOKEN, or FND_DATA "
                      "set to its data folder)\n"
                    : "  no token found: set FND_AUTH_TOKEN, or FND_DATA to the daemon's data "
                      "folder (it holds auth-token)\n");
    else if (resp->status == 413)
        fprintf(stderr, "  the request is larger than the daemon accepts: a bundle travels as "
                        "base64 (4/3 of the zip); start the daemon with a larger --max-body\n");
    else if (resp->status == 429)
        fprintf(stderr, "  the function is at its limits: retry later or raise max_instances\n");
    return exit_for_status(resp->status);
}

/* The JSON body of a 2xx answer, or NULL after printing what is wrong with it. */
static cJSON *json_body(const struct cli *c, const struct http_client_response *resp)
{
    cJSON *o = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    if (o == NULL)
        fprintf(stderr, "fnd %s: the daemon's answer is not JSON\n", c->cmd);
    return o;
}

static void print_json(const cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    cJSON_free(text);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

static double json_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void human_size(double bytes, char *out, size_t size)
{
    if (bytes >= 1 << 20)
        snprintf(out, size, "%.1f MB", bytes / (1 << 20));
    else if (bytes >= 1 << 10)
        snprintf(out, size, "%.1f KB", bytes / (1 << 10));
    else
        snprintf(out, size, "%.0f B", bytes);
}

/* --- deploy ------------------------------------------------------------------------ */

int cli_deploy_flag(struct cli_deploy *d, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--name", "--runtime", "--handler", "--env",
                                        "--memory", "--timeout", "--network"};
    const char *arg = argv[*i];
    size_t k;
    for (k = 0; k < ARRAY_SIZE(names); k++)
        if (strcmp(arg, names[k]) == 0)
            break;
    if (k == ARRAY_SIZE(names))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fnd: %s needs a value\n", arg);
        return -1;
    }
    const char *v = argv[++*i];
    switch (k) {
    case 0: d->name = v; break;
    case 1: d->runtime = v; break;
    case 2: d->handler = v; break;
    case 3:
        if (d->nenv == ARRAY_SIZE(d->env) || strchr(v, '=') == NULL) {
            fprintf(stderr, "fnd: --env takes KEY=VALUE (at most %zu)\n", ARRAY_SIZE(d->env));
            return -1;
        }
        d->env[d->nenv++] = v;
        break;
    case 4: d->memory = v; break;
    case 5: d->timeout = v; break;
    default: d->network = v; break;
    }
    return 1;
}

bool cli_deploy_complete(const struct cli *c, const struct cli_deploy *d)
{
    const char *missing = !d->source    ? "a folder or .zip to deploy"
                          : !d->name    ? "--name"
                          : !d->runtime ? "--runtime (python3, nodejs or native)"
                          : !d->handler ? "--handler (e.g. app.handler)"
                                        : NULL;
    if (missing)
        fprintf(stderr, "fnd %s: missing %s (see fnd help)\n", c->cmd, missing);
    return missing == NULL;
}

int cli_pack(const struct cli *c, const char *source, struct buf *zip)
{
    struct stat st;
    if (stat(source, &st) < 0) {
        fprintf(stderr, "fnd %s: %s: %s\n", c->cmd, source, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if (S_ISDIR(st.st_mode)) {
        char err[512] = "";
        struct bundle_limits limits = {CLI_MAX_BUNDLE, 100000};
        struct unpacker unpacker;
        int rc = unpacker_init(&unpacker, NULL, &limits, err, sizeof(err));
        if (rc == 0) {
            rc = unpacker_zip(&unpacker, source, zip, err, sizeof(err));
            unpacker_release(&unpacker);
        }
        if (rc < 0) {
            fprintf(stderr, "fnd %s: cannot pack %s: %s\n", c->cmd, source,
                    err[0] ? err : strerror(-rc));
            return CLI_EXIT_USAGE;
        }
        return 0;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CLI_MAX_BUNDLE) {
        fprintf(stderr, "fnd %s: %s: give a folder or a .zip file of at most 256 MB\n", c->cmd,
                source);
        return CLI_EXIT_USAGE;
    }
    FILE *f = fopen(source, "rb");
    if (f == NULL) {
        fprintf(stderr, "fnd %s: %s: %s\n", c->cmd, source, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    buf_reserve(zip, (size_t)st.st_size);
    zip->len = fread(zip->data, 1, (size_t)st.st_size, f);
    fclose(f);
    return 0;
}

static void on_upload_progress(size_t sent, size_t total, void *data)
{
    (void)data;
    char a[32], b[32];
    human_size((double)sent, a, sizeof(a));
    human_size((double)total, b, sizeof(b));
    fprintf(stderr, "\ruploading %s of %s (%3d%%)%s", a, b, (int)(sent * 100 / total),
            sent == total ? "\n" : "");
}

int cli_put_function(const struct cli *c, const struct cli_deploy *d, const char *name,
                     const struct buf *zip, const char *extra_json,
                     struct http_client_response *resp)
{
    cJSON *o = extra_json ? cJSON_Parse(extra_json) : cJSON_CreateObject();
    cJSON_AddStringToObject(o, "runtime", d->runtime);
    cJSON_AddStringToObject(o, "handler", d->handler);
    struct {
        const char *value, *key;
    } nums[] = {{d->memory, "memory_mb"}, {d->timeout, "timeout_ms"}};
    for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
        if (!nums[i].value)
            continue;
        char *end;
        double v = strtod(nums[i].value, &end);
        if (*end || end == nums[i].value) {
            cJSON_Delete(o);
            return usage_error(c, "--memory and --timeout take numbers, not '%s'", nums[i].value);
        }
        cJSON_AddNumberToObject(o, nums[i].key, v);
    }
    if (d->network)
        cJSON_AddStringToObject(o, "network", d->network);
    if (d->nenv) {
        cJSON *env = cJSON_AddObjectToObject(o, "env");
        for (size_t i = 0; i < d->nenv; i++) {
            const char *eq = strchr(d->env[i], '=');
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - d->env[i]), d->env[i]);
            cJSON_AddStringToObject(env, key, eq + 1);
        }
    }
    struct buf b64;
    buf_init(&b64, 0);
    base64_encode(&b64, zip->data ? zip->data : "", zip->len);
    cJSON *code = cJSON_AddObjectToObject(o, "code");
    cJSON_AddItemToObject(code, "zip", cJSON_CreateString(b64.data ? b64.data : ""));
    buf_release(&b64);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);

    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    static const struct http_header type = {SLICE_LIT("Content-Type"),
                                            SLICE_LIT("application/json")};
    size_t len = strlen(body);
    struct http_client_request rq = {
        .method = "PUT", .path = path, .headers = &type, .nheaders = 1, .body = body,
        .body_len = len, .timeout_ms = CLI_TIMEOUT_MS,
        .on_progress = c->progress && len > (1u << 20) ? on_upload_progress : NULL,
    };
    int rc = send_request(c, &rq, resp);
    cJSON_free(body);
    if (rc)
        return rc;
    if (resp->status / 100 != 2) {
        int exit_code = cli_report_error(c, resp);
        http_client_response_release(resp);
        return exit_code;
    }
    return 0;
}

static int cmd_deploy(struct cli *c, int argc, char **argv)
{
    struct cli_deploy d = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_deploy_flag(&d, argc, argv, &i);
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r == 0 && argv[i][0] != '-' && !d.source)
            d.source = argv[i];
        else if (r == 0)
            return usage_error(c, "unexpected argument '%s'", argv[i]);
    }
    if (!cli_deploy_complete(c, &d))
        return CLI_EXIT_USAGE;
    struct buf zip;
    buf_init(&zip, 0);
    int rc = cli_pack(c, d.source, &zip);
    struct http_client_response resp;
    if (rc == 0)
        rc = cli_put_function(c, &d, d.name, &zip, NULL, &resp);
    buf_release(&zip);
    if (rc)
        return rc;
    cJSON *o = json_body(c, &resp);
    if (o && c->json) {
        print_json(o);
    } else if (o) {
        char size[32];
        human_size(json_num(o, "code_size"), size, sizeof(size));
        printf("%s %s version %.0f (%s, %s, sha256 %.12s)\n",
               resp.status == 201 ? "created" : "updated", json_str(o, "name"),
               json_num(o, "version"), json_str(o, "runtime"), size, json_str(o, "code_sha256"));
    }
    cJSON_Delete(o);
    http_client_response_release(&resp);
    return o ? CLI_EXIT_OK : CLI_EXIT_SERVER;
}

/* --- invoke ------------------------------------------------------------------------ */

/* The event: --data JSON, @file, or - for stdin. */
static int read_event(const struct cli *c, const char *data, struct buf *out)
{
    if (data == NULL)
        return 0;
    if (strcmp(data, "-") != 0 && data[0] != '@')
        return buf_append_str(out, data) < 0 ? usage_error(c, "%s", "--data is too large") : 0;
    FILE *f = strcmp(data, "-") == 0 ? stdin : fopen(data + 1, "rb");
    if (f == NULL) {
        fprintf(stderr, "fnd %s: %s: %s\n", c->cmd, data + 1, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(out, chunk, n) < 0)
            rc = usage_error(c, "%s", "the event is larger than 64 MB");
    if (f != stdin)
        fclose(f);
    return rc;
}

static int cmd_invoke(struct cli *c, int argc, char **argv)
{
    const char *name = NULL, *data = NULL, *key = NULL;
    bool async = false, tail = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--idempotency-key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--async") == 0)
            async = true;
        else if (strcmp(argv[i], "--tail") == 0)
            tail = true;
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else
            return usage_error(c, "unexpected argument '%s'", argv[i]);
    }
    if (!name)
        return usage_error(c, "%s", "which function? fnd invoke NAME [--data JSON|@file|-]");
    struct buf event;
    buf_init(&event, CLI_MAX_EVENT);
    int rc = read_event(c, data, &event);
    if (rc) {
        buf_release(&event);
        return rc;
    }
    struct http_header h[4];
    size_t n = 0;
    if (tail)
        h[n++] = (struct http_header){SLICE_LIT("Fn-Log-Type"), SLICE_LIT("Tail")};
    if (async)
        h[n++] = (struct http_header){SLICE_LIT("Prefer"), SLICE_LIT("respond-async")};
    if (key)
        h[n++] = (struct http_header){SLICE_LIT("Idempotency-Key"), slice_from_cstr(key)};
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s/invoke", name);
    struct http_client_response resp;
    rc = cli_request(c, "POST", path, h, n, event.data, event.len, &resp, CLI_TIMEOUT_MS);
    buf_release(&event);
    if (rc)
        return rc;
    const char *fn_error = http_client_header(&resp, "fn-error");
    const char *rid = http_client_header(&resp, "x-request-id");
    /* Without Fn-Error a non-2xx answer is the daemon's refusal, not the function's. */
    if (resp.status / 100 != 2 && !fn_error) {
        rc = cli_report_error(c, &resp);
        http_client_response_release(&resp);
        return rc;
    }
    struct buf log;
    buf_init(&log, 0);
    const char *tail_b64 = http_client_header(&resp, "fn-log-result");
    if (tail_b64)
        base64_decode(&log, tail_b64, strlen(tail_b64));
    if (async && resp.status != 202)
        fprintf(stderr, "fnd invoke: the daemon ran it synchronously (HTTP %d): it does not "
                        "queue invocations\n", resp.status);
    if (async && resp.status == 202) {
        const char *loc = http_client_header(&resp, "location");
        /* The id is in the body ({"invocation_id"}); X-Request-Id when a daemon sends it. */
        cJSON *accepted = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "",
                                                resp.body.len);
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(accepted, "invocation_id");
        char idbuf[80] = "";
        if (cJSON_IsString(idj))
            snprintf(idbuf, sizeof(idbuf), "%s", idj->valuestring);
        cJSON_Delete(accepted);
        if (idbuf[0])
            rid = idbuf;
        if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "status", resp.status);
            cJSON_AddStringToObject(o, "request_id", rid ? rid : "");
            cJSON_AddStringToObject(o, "location", loc ? loc : "");
            print_json(o);
            cJSON_Delete(o);
        } else {
            printf("accepted %s\n", rid ? rid : "(no id)");
            if (loc)
                fprintf(stderr, "follow it with: fnd status %s\n", rid ? rid : loc);
        }
    } else if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "status", resp.status);
        cJSON_AddStringToObject(o, "request_id", rid ? rid : "");
        cJSON_AddBoolToObject(o, "function_error", fn_error != NULL);
        cJSON *payload = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "",
                                               resp.body.len);
        cJSON_AddItemToObject(o, "payload", payload ? payload
                                                    : cJSON_CreateString(resp.body.data
                                                                             ? resp.body.data
                                                                             : ""));
        if (tail_b64)
            cJSON_AddStringToObject(o, "log", log.data ? log.data : "");
        const char *tp = http_client_header(&resp, "traceparent");
        if (tp)
            cJSON_AddStringToObject(o, "traceparent", tp);
        print_json(o);
        cJSON_Delete(o);
    } else {
        if (tail_b64)
            fprintf(stderr, "%s", log.data ? log.data : "");
        fwrite(resp.body.data ? resp.body.data : "", 1, resp.body.len, stdout);
        if (resp.body.len && resp.body.data && resp.body.data[resp.body.len - 1] != '\n' &&
            isatty(1))
            putchar('\n');
    }
    buf_release(&log);
    rc = fn_error ? CLI_EXIT_FUNCTION_ERROR : CLI_EXIT_OK;
    http_client_response_release(&resp);
    return rc;
}

/* --- ls, get, rm, status ----------------------------------------------------------- */

/* GETs path and returns its JSON (NULL with *rc set to the exit code otherwise). */
static cJSON *get_json(const struct cli *c, const char *path, int *rc)
{
    struct http_client_response resp;
    *rc = cli_request(c, "GET", path, NULL, 0, NULL, 0, &resp, CLI_TIMEOUT_MS);
    if (*rc)
        return NULL;
    cJSON *o = NULL;
    if (resp.status / 100 != 2)
        *rc = cli_report_error(c, &resp);
    else if ((o = json_body(c, &resp)) == NULL)
        *rc = CLI_EXIT_SERVER;
    http_client_response_release(&resp);
    return o;
}

static int one_name(const struct cli *c, int argc, char **argv, const char **name,
                    const char *what)
{
    *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' || *name)
            return usage_error(c, "unexpected argument '%s'", argv[i]);
        *name = argv[i];
    }
    if (!*name)
        return usage_error(c, "%s", what);
    return 0;
}

static int cmd_ls(struct cli *c, int argc, char **argv)
{
    if (argc > 1)
        return usage_error(c, "unexpected argument '%s'", argv[1]);
    int rc;
    cJSON *o = get_json(c, "/v1/functions", &rc);
    if (!o)
        return rc;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "functions");
    if (c->json) {
        print_json(list);
    } else {
        printf("%-24s %-8s %-24s %7s %7s %9s  %s\n", "NAME", "RUNTIME", "HANDLER", "VERSION",
               "MEMORY", "TIMEOUT", "MODIFIED");
        const cJSON *f;
        cJSON_ArrayForEach(f, list)
        {
            printf("%-24s %-8s %-24s %7.0f %4.0f MB %6.0f ms  %s\n", json_str(f, "name"),
                   json_str(f, "runtime"), json_str(f, "handler"), json_num(f, "version"),
                   json_num(f, "memory_mb"), json_num(f, "timeout_ms"), json_str(f, "modified"));
        }
    }
    cJSON_Delete(o);
    return CLI_EXIT_OK;
}

/* key: value lines for an object, nested objects indented. */
static void print_fields(const cJSON *o, int indent)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, o)
    {
        if (cJSON_IsObject(v)) {
            printf("%*s%s:\n", indent, "", v->string);
            print_fields(v, indent + 2);
        } else if (cJSON_IsString(v)) {
            printf("%*s%-14s %s\n", indent, "", v->string, v->valuestring);
        } else {
            char *text = cJSON_PrintUnformatted(v);
            printf("%*s%-14s %s\n", indent, "", v->string, text);
            cJSON_free(text);
        }
    }
}

/* GET of one object named on the command line, shown as fields or JSON. */
static int show_one(struct cli *c, int argc, char **argv, const char *path_fmt, const char *what)
{
    const char *name;
    int rc = one_name(c, argc, argv, &name, what);
    if (rc)
        return rc;
    char path[160];
    snprintf(path, sizeof(path), path_fmt, name);
    cJSON *o = get_json(c, path, &rc);
    if (!o)
        return rc;
    if (c->json)
        print_json(o);
    else
        print_fields(o, 0);
    cJSON_Delete(o);
    return CLI_EXIT_OK;
}

static int cmd_get(struct cli *c, int argc, char **argv)
{
    return show_one(c, argc, argv, "/v1/functions/%.64s", "which function? fnd get NAME");
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
    return show_one(c, argc, argv, "/v1/invocations/%.64s", "which invocation? fnd status ID");
}

static int cmd_rm(struct cli *c, int argc, char **argv)
{
    const char *name;
    int rc = one_name(c, argc, argv, &name, "which function? fnd rm NAME");
    if (rc)
        return rc;
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    struct http_client_response resp;
    rc = cli_request(c, "DELETE", path, NULL, 0, NULL, 0, &resp, CLI_TIMEOUT_MS);
    if (rc)
        return rc;
    if (resp.status / 100 != 2) {
        rc = cli_report_error(c, &resp);
    } else if (c->json) {
        printf("{\"deleted\":\"%s\"}\n", name);
    } else {
        printf("deleted %s\n", name);
    }
    http_client_response_release(&resp);
    return rc;
}

/* --- logs -------------------------------------------------------------------------- */

struct log_printer {
    const struct cli *c;
    struct buf partial; /* a record split across reads */
};

/* One record `time \t id \t stream \t text`: as a JSON line, or for people. */
static void print_record(const struct cli *c, const char *rec, size_t len)
{
    const char *f[4];
    size_t flen[4];
    const char *p = rec, *end = rec + len;
    for (int i = 0; i < 4; i++) {
        const char *tab = i < 3 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
        f[i] = p;
        flen[i] = tab ? (size_t)(tab - p) : (size_t)(end - p);
        p = tab ? tab + 1 : end;
    }
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        static const char *const keys[] = {"time", "request_id", "stream", "text"};
        for (int i = 0; i < 4; i++) {
            char *v = xstrndup(f[i], flen[i]);
            cJSON_AddStringToObject(o, keys[i], v);
            free(v);
        }
        print_json(o);
        cJSON_Delete(o);
        return;
    }
    /* time, the first 8 digits of the request id, a mark for stderr, the text */
    printf("%.*s %.8s %s%.*s\n", (int)flen[0], f[0], f[1],
           flen[2] == 6 && memcmp(f[2], "stderr", 6) == 0 ? "! " : "", (int)flen[3], f[3]);
}

static void on_log_piece(const char *piece, size_t len, void *data)
{
    struct log_printer *lp = data;
    buf_append(&lp->partial, piece, len);
    size_t start = 0;
    for (size_t i = 0; i < lp->partial.len; i++) {
        if (lp->partial.data[i] == '\n') {
            print_record(lp->c, lp->partial.data + start, i - start);
            start = i + 1;
        }
    }
    memmove(lp->partial.data, lp->partial.data + start, lp->partial.len - start);
    lp->partial.len -= start;
    fflush(stdout);
}

static int cmd_logs(struct cli *c, int argc, char **argv)
{
    const char *name = NULL, *since = NULL;
    bool follow = false;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0))
            follow = true;
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since = argv[++i];
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else
            return usage_error(c, "unexpected argument '%s'", argv[i]);
    }
    if (!name)
        return usage_error(c, "%s", "which function? fnd logs NAME [-f] [--since 5m]");
    char path[256];
    snprintf(path, sizeof(path), "/v1/functions/%s/logs?%s%.64s%s", name, since ? "since=" : "",
             since ? since : "", follow ? "&follow=1" : "");
    struct log_printer lp = {c, {0}};
    buf_init(&lp.partial, 1 << 20);
    struct http_client_response resp;
    struct http_client_request rq = {
        .method = "GET", .path = path, .timeout_ms = follow ? 0 : CLI_TIMEOUT_MS,
        .on_body = on_log_piece, .data = &lp,
    };
    int rc = send_request(c, &rq, &resp);
    if (rc) {
        buf_release(&lp.partial);
        return rc;
    }
    if (resp.status / 100 != 2)
        rc = cli_report_error(c, &resp);
    buf_release(&lp.partial);
    http_client_response_release(&resp);
    return rc;
}

/* --- dispatch ---------------------------------------------------------------------- */

int cli_main(int argc, char **argv)
{
    /* A daemon that refuses an upload early (413) closes while we still send: that is
     * an error return to read the answer after, not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    struct cli c = {.cmd = argv[0], .progress = isatty(2)};
    const char *url = getenv("FND_URL");
    snprintf(c.url, sizeof(c.url), "%s", url && *url ? url : "http://127.0.0.1:8080");
    /* Global options, wherever they are; the rest is the command's. */
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "--progress") == 0) {
            c.progress = true;
        } else if ((strcmp(argv[i], "--url") == 0 || strcmp(argv[i], "--token") == 0) &&
                   i + 1 < argc) {
            if (argv[i][2] == 'u')
                snprintf(c.url, sizeof(c.url), "%s", argv[++i]);
            else
                snprintf(c.token, sizeof(c.token), "%s", argv[++i]);
        } else {
            rest[n++] = argv[i];
        }
    }
    size_t ulen = strlen(c.url);
    while (ulen > 7 && c.url[ulen - 1] == '/')
        c.url[--ulen] = '\0';
    find_token(&c);
    static const struct {
        const char *name;
        int (*run)(struct cli *, int, char **);
    } table[] = {{"deploy", cmd_deploy}, {"invoke", cmd_invoke}, {"ls", cmd_ls},
                 {"get", cmd_get},       {"logs", cmd_logs},     {"status", cmd_status},
                 {"rm", cmd_rm},         {"dev", cli_dev}};
    int rc = CLI_EXIT_USAGE;
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        if (strcmp(argv[0], table[i].name) == 0)
            rc = table[i].run(&c, n, rest);
    free(rest);
    fflush(stdout);
    return rc;
}
