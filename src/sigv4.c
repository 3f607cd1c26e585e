/*
 * SigV4 verification (include/fnd/sigv4.h), following AWS's "Create a signed AWS API
 * request": the canonical request (method, the path URI-encoded once more, the query
 * decoded, re-encoded and sorted, the signed headers lower-cased and trimmed, the
 * payload's SHA-256), the string to sign over its hash and the credential scope, and
 * the signing key derived from "AWS4" + secret through date, region, service and
 * "aws4_request". The signature is compared in constant time. Every piece is bounded
 * by the request's own limits (URL, headers, body), which the gateway enforced.
 */
#include "fnd/sigv4.h"

#include "fnd/codec.h"
#include "fnd/urlcode.h"

#include <ctype.h>
#include <errno.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIGNED_HEADERS 32
#define MAX_QUERY_PAIRS 64

struct auth_parts {
    char scope[128];   /* date/region/service/aws4_request */
    char date[9];      /* the scope's date */
    char signed_headers[1024];
    char signature[65];
};

static int fail(char *err, size_t errsize, const char *why)
{
    snprintf(err, errsize, "%s", why);
    return -EACCES;
}

/* Copies the value of "key=" in the comma-separated list into out. */
static bool auth_field(struct slice list, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen <= list.len; i++) {
        if ((i == 0 || list.ptr[i - 1] == ' ' || list.ptr[i - 1] == ',') &&
            memcmp(list.ptr + i, key, klen) == 0) {
            size_t start = i + klen, end = start;
            while (end < list.len && list.ptr[end] != ',' && list.ptr[end] != ' ')
                end++;
            if (end - start >= size)
                return false;
            memcpy(out, list.ptr + start, end - start);
            out[end - start] = '\0';
            return true;
        }
    }
    return false;
}

static int parse_authorization(struct slice h, struct auth_parts *a, char *err, size_t errsize)
{
    static const char algo[] = "AWS4-HMAC-SHA256 ";
    if (h.len < sizeof(algo) - 1 || memcmp(h.ptr, algo, sizeof(algo) - 1) != 0)
        return fail(err, errsize, "no AWS4-HMAC-SHA256 Authorization header");
    struct slice rest = {h.ptr + sizeof(algo) - 1, h.len - (sizeof(algo) - 1)};
    char credential[256];
    if (!auth_field(rest, "Credential=", credential, sizeof(credential)) ||
        !auth_field(rest, "SignedHeaders=", a->signed_headers, sizeof(a->signed_headers)) ||
        !auth_field(rest, "Signature=", a->signature, sizeof(a->signature)) ||
        strlen(a->signature) != 64)
        return fail(err, errsize, "a malformed Authorization header");
    const char *slash = strchr(credential, '/');
    if (slash == NULL || strlen(slash + 1) >= sizeof(a->scope) || strlen(slash + 1) < 9)
        return fail(err, errsize, "a malformed credential scope");
    snprintf(a->scope, sizeof(a->scope), "%s", slash + 1);
    memcpy(a->date, a->scope, 8);
    a->date[8] = '\0';
    size_t n = strlen(a->scope);
    if (a->scope[8] != '/' || n < 13 || strcmp(a->scope + n - 13, "/aws4_request") != 0)
        return fail(err, errsize, "a malformed credential scope");
    return 0;
}

/* AWS's URI encoding: unreserved characters stay, '/' too when keep_slash. */
static void aws_encode(struct buf *out, struct slice in, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            buf_append(out, &in.ptr[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, 3);
        }
    }
}

struct query_pair {
    char *name;  /* encoded, owned */
    char *value; /* encoded, owned */
};

static int pair_cmp(const void *a, const void *b)
{
    const struct query_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *reencode(struct slice raw)
{
    struct buf dec, enc;
    buf_init(&dec, 0);
    buf_init(&enc, 0);
    if (url_decode(&dec, raw, true) < 0) {
        buf_release(&dec);
        return NULL;
    }
    aws_encode(&enc, buf_slice(&dec), false);
    buf_release(&dec);
    char *text = buf_steal(&enc, NULL);
    return text ? text : xstrdup("");
}

static int canonical_query(struct buf *out, struct slice query)
{
    struct query_pair pairs[MAX_QUERY_PAIRS] = {0}; /* cppcheck cannot see n bounds the reads */
    size_t n = 0;
    int rc = 0;
    struct slice name, value;
    while (rc == 0 && url_query_next(&query, &name, &value)) {
        if (n == MAX_QUERY_PAIRS) {
            rc = -EINVAL;
            break;
        }
        pairs[n].name = reencode(name);
        pairs[n].value = reencode(value);
        n++;
        if (pairs[n - 1].name == NULL || pairs[n - 1].value == NULL)
            rc = -EINVAL;
    }
    if (rc == 0) {
        qsort(pairs, n, sizeof(pairs[0]), pair_cmp);
        for (size_t i = 0; i < n; i++)
            buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
    }
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    return rc;
}

/* "name:value\n" for one signed header: every value of it, trimmed, joined by ','. */
static int canonical_header(struct buf *out, const struct http_request *req, const char *name)
{
    bool found = false;
    buf_printf(out, "%s:", name);
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!slice_eq_nocase(req->headers[i].name, name))
            continue;
        struct slice v = req->headers[i].value;
        while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t'))
            v.ptr++, v.len--;
        while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
            v.len--;
        if (found)
            buf_append(out, ",", 1);
        for (size_t k = 0; k < v.len; k++) /* runs of spaces become one */
            if (!(v.ptr[k] == ' ' && k > 0 && v.ptr[k - 1] == ' '))
                buf_append(out, &v.ptr[k], 1);
        found = true;
    }
    buf_append(out, "\n", 1);
    return found ? 0 : -ENOENT;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    sha256(data, len, d);
    hex_encode(out, d, 32);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, klen, key);
    hmac_sha256_update(&ctx, strlen(msg), (const uint8_t *)msg);
    hmac_sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    explicit_bzero(&ctx, sizeof(ctx)); /* it holds the key's pads */
}

static int64_t parse_amz_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    /* Fixed widths of at most 4 digits cannot overflow; the count checks the rest. */
    // NOLINTNEXTLINE(cert-err34-c)
    if (strlen(s) != 16 || sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

int sigv4_verify(const struct http_request *req, const char *secret, int64_t now_s, char *err,
                 size_t errsize)
{
    struct auth_parts a;
    int rc = parse_authorization(http_request_header(req, "Authorization"), &a, err, errsize);
    if (rc < 0)
        return rc;
    struct slice date = http_request_header(req, "X-Amz-Date");
    char amz_date[17];
    if (date.len != 16)
        return fail(err, errsize, "no X-Amz-Date header");
    memcpy(amz_date, date.ptr, 16);
    amz_date[16] = '\0';
    int64_t when = parse_amz_date(amz_date);
    if (when < 0 || strncmp(amz_date, a.date, 8) != 0)
        return fail(err, errsize, "X-Amz-Date does not match the credential scope");
    if (when > now_s + SIGV4_MAX_SKEW_S || when < now_s - SIGV4_MAX_SKEW_S)
        return fail(err, errsize, "the signature is too old or from the future");

    struct buf cr;
    buf_init(&cr, 0);
    buf_printf(&cr, "%s\n", req->method_name);
    aws_encode(&cr, req->path, true);
    buf_append(&cr, "\n", 1);
    rc = canonical_query(&cr, req->query);
    buf_append(&cr, "\n", 1);
    /* SignedHeaders: lower-case names separated by ';', host among them */
    char names[sizeof(a.signed_headers)];
    snprintf(names, sizeof(names), "%s", a.signed_headers);
    size_t count = 0;
    bool has_host = false;
    for (char *save = NULL, *h = strtok_r(names, ";", &save); rc == 0 && h;
         h = strtok_r(NULL, ";", &save)) {
        if (++count > MAX_SIGNED_HEADERS)
            rc = -EINVAL;
        else
            rc = canonical_header(&cr, req, h);
        has_host = has_host || strcmp(h, "host") == 0;
    }
    if (rc == 0 && !has_host)
        rc = -EINVAL;
    char payload[65];
    struct slice declared = http_request_header(req, "X-Amz-Content-Sha256");
    if (slice_eq(declared, "UNSIGNED-PAYLOAD"))
        snprintf(payload, sizeof(payload), "UNSIGNED-PAYLOAD");
    else
        sha256_hex(req->body.data ? req->body.data : "", req->body.len, payload);
    buf_printf(&cr, "\n%s\n%s", a.signed_headers, payload);
    if (rc < 0) {
        buf_release(&cr);
        return fail(err, errsize, "the signed headers or the query cannot be read");
    }

    char cr_hash[65];
    sha256_hex(cr.data, cr.len, cr_hash);
    buf_release(&cr);
    struct buf sts;
    buf_init(&sts, 0);
    buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, a.scope, cr_hash);

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    char *k0 = xasprintf("AWS4%s", secret);
    unsigned char key[32], next[32];
    char part[64];
    hmac(k0, strlen(k0), a.date, key);
    explicit_bzero(k0, strlen(k0));
    free(k0);
    const char *p = a.scope + 9; /* region/service/aws4_request */
    for (int i = 0; i < 3; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        snprintf(part, sizeof(part), "%.*s", (int)len, p);
        hmac(key, sizeof(key), part, next);
        memcpy(key, next, sizeof(key));
        p = slash ? slash + 1 : p + len;
    }
    unsigned char sig[32];
    hmac(key, sizeof(key), sts.data, sig);
    buf_release(&sts);
    explicit_bzero(key, sizeof(key));
    char sig_hex[65];
    hex_encode(sig_hex, sig, 32);
    if (!memeql_sec(sig_hex, a.signature, 64))
        return fail(err, errsize, "the signature does not match (is the secret access key the "
                                  "daemon's token?)");
    return 0;
}
