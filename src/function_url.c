/*
 * Function URLs (include/fnd/function_url.h).
 *
 * The request becomes Lambda's payload version 2.0 event: rawPath (what follows
 * <prefix>/{name}, "/" when nothing does) and rawQueryString as sent, headers with
 * lower-case names and repeated headers joined by commas, the Cookie header split into
 * "cookies", queryStringParameters decoded, requestContext.http (method, path,
 * protocol, sourceIp, userAgent), and the body: as text when its Content-Type is
 * textual and the bytes are UTF-8, else base64 with isBase64Encoded true.
 *
 * The result maps back as on Lambda: an object with "statusCode" is a structured
 * response (statusCode, headers, cookies as Set-Cookie, body, isBase64Encoded); any
 * other JSON is a 200 application/json body. A function error, crash or timeout is
 * 502, throttling 429. Header names and values from the function are checked (no
 * control characters, no framing headers the gateway owns), so a handler cannot split
 * or corrupt the response.
 */
#include "fnd/function_url.h"

#include "fnd/auth.h"
#include "fnd/codec.h"
#include "fnd/log.h"
#include "fnd/urlcode.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define URL_MAX_HEADERS 64
#define URL_EVENT_MAX (6 * 1024 * 1024 + 64 * 1024) /* the sync payload limit, plus slack */

struct url_call {
    struct invocation inv;
    struct http_request *req;
};

/* --- the event --------------------------------------------------------------------- */

static bool textual(struct slice type)
{
    static const char *const text[] = {"text/", "application/json", "application/xml",
                                       "application/javascript",
                                       "application/x-www-form-urlencoded"};
    for (size_t i = 0; i < ARRAY_SIZE(text); i++) {
        size_t n = strlen(text[i]);
        if (type.len >= n && strncasecmp(type.ptr, text[i], n) == 0)
            return true;
    }
    /* application/problem+json, image/svg+xml, ... */
    for (size_t i = 0; i + 5 <= type.len; i++)
        if (strncasecmp(type.ptr + i, "+json", 5) == 0 || strncasecmp(type.ptr + i, "+xml", 4) == 0)
            return true;
    return false;
}

/* Whether the bytes are well-formed UTF-8 (a JSON string must be) without NULs. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                                 : (c & 0xf8) == 0xf0 ? 3 : 4;
        if (c == 0 || n == 4 || (n == 1 && c < 0xc2) || (n > 0 && i + n >= len))
            return false;
        for (size_t k = 1; k <= n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        /* overlong forms, UTF-16 surrogates and code points past U+10FFFF */
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
            (c == 0xf0 && s[i + 1] < 0x90) || c > 0xf4 || (c == 0xf4 && s[i + 1] > 0x8f))
            return false;
        i += n + 1;
    }
    return true;
}

static char *lower_name(struct slice name)
{
    char *out = xstrndup(name.ptr, name.len);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* Adds value under key, joining with "," when key is already there. */
static void add_joined(cJSON *obj, const char *key, struct slice value)
{
    cJSON *have = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (have) {
        char *joined = xasprintf("%s,%.*s", have->valuestring, (int)value.len, value.ptr);
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(joined));
        free(joined);
    } else {
        char *v = xstrndup(value.ptr, value.len);
        cJSON_AddStringToObject(obj, key, v);
        free(v);
    }
}

static void add_cookies(cJSON *cookies, struct slice value)
{
    while (value.len > 0) {
        const char *semi = memchr(value.ptr, ';', value.len);
        size_t len = semi ? (size_t)(semi - value.ptr) : value.len;
        struct slice one = {value.ptr, len};
        while (one.len && one.ptr[0] == ' ') {
            one.ptr++;
            one.len--;
        }
        if (one.len) {
            char *c = xstrndup(one.ptr, one.len);
            cJSON_AddItemToArray(cookies, cJSON_CreateString(c));
            free(c);
        }
        value.ptr += semi ? len + 1 : len;
        value.len -= semi ? len + 1 : len;
    }
}

/* queryStringParameters: decoded names and values, repeated names joined by ",". */
static cJSON *query_json(struct slice query)
{
    cJSON *o = cJSON_CreateObject();
    struct slice n, v;
    while (url_query_next(&query, &n, &v)) {
        struct buf name, value;
        buf_init(&name, 0);
        buf_init(&value, 0);
        if (url_decode(&name, n, true) == 0 && url_decode(&value, v, true) == 0 &&
            utf8_valid((const unsigned char *)(name.data ? name.data : ""), name.len) &&
            utf8_valid((const unsigned char *)(value.data ? value.data : ""), value.len))
            add_joined(o, name.data ? name.data : "", buf_slice(&value));
        buf_release(&name);
        buf_release(&value);
    }
    return o;
}

static cJSON *build_event(struct http_request *req, const char *name, struct slice raw_path,
                          const char *request_id)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "version", "2.0");
    cJSON_AddStringToObject(ev, "routeKey", "$default");
    char *path = xstrndup(raw_path.ptr, raw_path.len);
    char *query = xstrndup(req->query.ptr, req->query.len);
    cJSON_AddStringToObject(ev, "rawPath", path);
    cJSON_AddStringToObject(ev, "rawQueryString", query);
    free(query);

    cJSON *headers = cJSON_CreateObject();
    cJSON *cookies = cJSON_CreateArray();
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!utf8_valid((const unsigned char *)h->value.ptr, h->value.len))
            continue;
        if (slice_eq_nocase(h->name, "cookie")) {
            add_cookies(cookies, h->value);
            continue;
        }
        char *key = lower_name(h->name);
        add_joined(headers, key, h->value);
        free(key);
    }
    if (cJSON_GetArraySize(cookies) > 0)
        cJSON_AddItemToObject(ev, "cookies", cookies);
    else
        cJSON_Delete(cookies);
    cJSON_AddItemToObject(ev, "headers", headers);
    if (req->query.len > 0)
        cJSON_AddItemToObject(ev, "queryStringParameters", query_json(req->query));

    cJSON *ctx = cJSON_AddObjectToObject(ev, "requestContext");
    cJSON_AddStringToObject(ctx, "accountId", "anonymous");
    cJSON_AddStringToObject(ctx, "apiId", name);
    struct slice host = http_request_header(req, "Host");
    char *domain = xstrndup(host.ptr, host.len);
    cJSON_AddStringToObject(ctx, "domainName", domain);
    char *dot = strchr(domain, '.');
    if (dot)
        *dot = '\0';
    cJSON_AddStringToObject(ctx, "domainPrefix", domain);
    free(domain);
    cJSON *http = cJSON_AddObjectToObject(ctx, "http");
    cJSON_AddStringToObject(http, "method", req->method_name);
    cJSON_AddStringToObject(http, "path", path);
    cJSON_AddStringToObject(http, "protocol", "HTTP/1.1");
    char ip[64] = "";
    struct sockaddr_storage peer;
    if (http_request_peer(req, &peer) == 0)
        uv_ip_name((const struct sockaddr *)&peer, ip, sizeof(ip));
    cJSON_AddStringToObject(http, "sourceIp", ip);
    struct slice ua = http_request_header(req, "User-Agent");
    char *agent = xstrndup(ua.ptr, ua.len);
    cJSON_AddStringToObject(http, "userAgent", agent);
    free(agent);
    free(path);
    cJSON_AddStringToObject(ctx, "requestId", request_id);
    cJSON_AddStringToObject(ctx, "routeKey", "$default");
    cJSON_AddStringToObject(ctx, "stage", "$default");
    int64_t now = clock_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[40];
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    cJSON_AddStringToObject(ctx, "time", when);
    cJSON_AddNumberToObject(ctx, "timeEpoch", (double)now);

    const struct buf *body = &req->body;
    bool text = textual(http_request_header(req, "Content-Type")) &&
                utf8_valid((const unsigned char *)(body->data ? body->data : ""), body->len);
    if (body->len > 0) {
        if (text) {
            cJSON_AddStringToObject(ev, "body", body->data);
        } else {
            struct buf b64;
            buf_init(&b64, 0);
            base64_encode(&b64, body->data, body->len);
            cJSON_AddStringToObject(ev, "body", b64.data);
            buf_release(&b64);
        }
    }
    cJSON_AddBoolToObject(ev, "isBase64Encoded", body->len > 0 && !text);
    return ev;
}

/* --- the response ------------------------------------------------------------------ */

static bool header_ok(const char *name, const char *value)
{
    static const char *const owned[] = {"content-length", "connection", "transfer-encoding",
                                        "date", "server", "keep-alive", "upgrade"};
    if (*name == '\0')
        return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return false;
    for (size_t i = 0; i < ARRAY_SIZE(owned); i++)
        if (strcasecmp(name, owned[i]) == 0)
            return false;
    return true;
}

static void respond_message(struct http_request *req, int status, const char *message)
{
    static const struct http_header json = {SLICE_LIT("Content-Type"),
                                            SLICE_LIT("application/json")};
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"Message\":\"%s\"}", message);
    http_respond(req, status, &json, 1, body, (size_t)n);
}

/* Answers with the structured response o ({"statusCode", ...}). */
static void respond_structured(struct http_request *req, const cJSON *o)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "statusCode");
    const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(o, "headers");
    const cJSON *cookies = cJSON_GetObjectItemCaseSensitive(o, "cookies");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
    bool b64 = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "isBase64Encoded"));
    int status = (int)code->valuedouble;
    if (status < 100 || status > 599 || (body && !cJSON_IsString(body))) {
        respond_message(req, 502, "Internal Server Error");
        return;
    }
    struct http_header headers[URL_MAX_HEADERS];
    char numbers[URL_MAX_HEADERS][32];
    size_t n = 0;
    const cJSON *h;
    cJSON_ArrayForEach(h, hdrs)
    {
        const char *value = cJSON_IsString(h) ? h->valuestring : NULL;
        if (cJSON_IsNumber(h) || cJSON_IsBool(h)) {
            snprintf(numbers[n], sizeof(numbers[n]), "%s",
                     cJSON_IsBool(h) ? (cJSON_IsTrue(h) ? "true" : "false") : "");
            if (cJSON_IsNumber(h))
                snprintf(numbers[n], sizeof(numbers[n]), "%g", h->valuedouble);
            value = numbers[n];
        }
        if (n == URL_MAX_HEADERS || value == NULL || !header_ok(h->string, value)) {
            log_warn("function url header dropped", "name=%.64s", h->string ? h->string : "");
            continue;
        }
        headers[n++] = (struct http_header){slice_from_cstr(h->string), slice_from_cstr(value)};
    }
    cJSON_ArrayForEach(h, cookies)
    {
        if (n < URL_MAX_HEADERS && cJSON_IsString(h) && header_ok("Set-Cookie", h->valuestring))
            headers[n++] = (struct http_header){SLICE_LIT("Set-Cookie"),
                                                slice_from_cstr(h->valuestring)};
    }
    struct buf out;
    buf_init(&out, 0);
    const char *text = body && cJSON_IsString(body) ? body->valuestring : "";
    if (b64 && base64_decode(&out, text, strlen(text)) < 0) {
        buf_release(&out);
        respond_message(req, 502, "Internal Server Error");
        return;
    }
    if (!b64)
        buf_append_str(&out, text);
    http_respond_buf(req, status, headers, n, &out);
    buf_release(&out);
}

static void on_url_call_done(struct invocation *inv, const struct inv_result *res)
{
    struct url_call *c = container_of(inv, struct url_call, inv);
    struct http_request *req = c->req;
    if (res->outcome == INV_SUCCESS) {
        cJSON *o = cJSON_ParseWithLength(res->body.ptr, res->body.len);
        if (cJSON_IsObject(o) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "statusCode"))) {
            respond_structured(req, o);
        } else {
            static const struct http_header json = {SLICE_LIT("Content-Type"),
                                                    SLICE_LIT("application/json")};
            http_respond(req, 200, &json, 1, res->body.ptr, res->body.len);
        }
        cJSON_Delete(o);
    } else if (res->outcome == INV_THROTTLED) {
        respond_message(req, 429, "Rate Exceeded.");
    } else if (res->outcome == INV_CANCELLED) {
        respond_message(req, 503, "Service Unavailable");
    } else {
        respond_message(req, 502, "Internal Server Error");
    }
    invocation_release(inv);
    free(c);
}

/* --- dispatch ---------------------------------------------------------------------- */

bool function_url_handle(struct http_request *req, struct daemon *d)
{
    const char *prefix = d->cfg->function_url_prefix;
    size_t plen = strlen(prefix);
    struct slice path = req->path;
    if (plen == 0 || path.len <= plen + 1 || memcmp(path.ptr, prefix, plen) != 0 ||
        path.ptr[plen] != '/')
        return false;
    struct slice rest = {path.ptr + plen + 1, path.len - plen - 1};
    const char *slash = memchr(rest.ptr, '/', rest.len);
    struct slice name = {rest.ptr, slash ? (size_t)(slash - rest.ptr) : rest.len};
    struct slice raw_path = slash ? (struct slice){slash, rest.len - name.len} : SLICE_LIT("/");
    req->route = "<function-url-prefix>/{name}/{path...}";
    if (!auth_allows(&d->auth, req, AUTH_INVOKE)) { /* an invocation: --invoke-auth */
        auth_respond_unauthorized(req);
        return true;
    }
    if (!fn_name_valid(name)) {
        http_respond_error(req, FND_E_NOT_FOUND, "no function URL here");
        return true;
    }
    struct function *fn = registry_lookup(d->registry, name);
    if (fn == NULL) {
        http_respond_error(req, FND_E_NOT_FOUND, "function %.*s does not exist", (int)name.len,
                           name.ptr);
        return true;
    }
    struct url_call *c = xcalloc(1, sizeof(*c));
    invocation_init(&c->inv, URL_EVENT_MAX);
    cJSON *ev = build_event(req, fn->name, raw_path, c->inv.id);
    char *text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    int rc = buf_append_str(&c->inv.payload, text);
    cJSON_free(text);
    if (rc < 0) {
        invocation_release(&c->inv);
        free(c);
        http_respond_error(req, FND_E_PAYLOAD_TOO_LARGE, "the request makes too large an event");
        return true;
    }
    c->inv.on_done = on_url_call_done;
    c->req = req;
    rc = controller_submit(d->controller, fn, &c->inv);
    if (rc < 0) {
        invocation_release(&c->inv);
        free(c);
        if (rc == -EAGAIN)
            respond_message(req, 429, "Rate Exceeded.");
        else
            respond_message(req, 503, "Service Unavailable");
    }
    return true;
}
