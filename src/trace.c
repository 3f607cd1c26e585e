/*
 * Trace context (include/fnd/trace.h). Parsing follows W3C Trace Context level 1:
 * version 00 is exactly 55 characters; a later version may be longer, but only when
 * what follows the flags starts with '-'; version ff, all-zero ids and upper-case hex
 * are invalid, and an invalid traceparent starts a new trace rather than failing the
 * request. Ids come from random_bytes (common.c).
 */
#include "fnd/trace.h"

#include "fnd/codec.h"
#include "fnd/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char b[16];
    do {
        random_bytes(b, bytes);
        hex_encode(out, b, bytes);
    } while (all_zero(out, bytes * 2)); /* zero ids are invalid */
}

int trace_parse(struct slice v, struct trace_context *t)
{
    if (v.len < TRACEPARENT_LEN)
        return -EINVAL;
    const char *p = v.ptr;
    if (!lower_hex(p, 2) || (p[0] == 'f' && p[1] == 'f') || p[2] != '-' || p[35] != '-' ||
        p[52] != '-')
        return -EINVAL;
    bool v00 = p[0] == '0' && p[1] == '0';
    if ((v00 && v.len != TRACEPARENT_LEN) || (!v00 && v.len > TRACEPARENT_LEN && p[55] != '-'))
        return -EINVAL;
    if (!lower_hex(p + 3, 32) || !lower_hex(p + 36, 16) || !lower_hex(p + 53, 2) ||
        all_zero(p + 3, 32) || all_zero(p + 36, 16))
        return -EINVAL;
    memcpy(t->trace_id, p + 3, 32);
    t->trace_id[32] = '\0';
    memcpy(t->parent_id, p + 36, 16);
    t->parent_id[16] = '\0';
    unsigned flags;
    sscanf(p + 53, "%2x", &flags); // NOLINT(cert-err34-c): two hex digits, checked above
    t->flags = (uint8_t)flags;
    return 0;
}

/* The value of key=... in an X-Ray header (fields separated by ';'). */
static struct slice xray_field(struct slice v, const char *key)
{
    size_t klen = strlen(key);
    const char *p = v.ptr, *end = v.ptr + v.len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=')
            return (struct slice){p + klen + 1, (size_t)(stop - p) - klen - 1};
        p = stop + 1;
    }
    return SLICE_NULL;
}

int trace_parse_xray(struct slice v, struct trace_context *t)
{
    struct slice root = xray_field(v, "Root"), parent = xray_field(v, "Parent");
    struct slice sampled = xray_field(v, "Sampled");
    if (root.len != 35 || memcmp(root.ptr, "1-", 2) != 0 || root.ptr[10] != '-' ||
        !lower_hex(root.ptr + 2, 8) || !lower_hex(root.ptr + 11, 24))
        return -EINVAL;
    memcpy(t->trace_id, root.ptr + 2, 8);
    memcpy(t->trace_id + 8, root.ptr + 11, 24);
    t->trace_id[32] = '\0';
    if (all_zero(t->trace_id, 32))
        return -EINVAL;
    t->parent_id[0] = '\0';
    if (parent.len == 16 && lower_hex(parent.ptr, 16) && !all_zero(parent.ptr, 16)) {
        memcpy(t->parent_id, parent.ptr, 16);
        t->parent_id[16] = '\0';
    }
    t->flags = !(sampled.len == 1 && sampled.ptr[0] == '0');
    return 0;
}

void trace_new(struct trace_context *t)
{
    memset(t, 0, sizeof(*t));
    random_hex(t->trace_id, 16);
    random_hex(t->span_id, 8);
    t->flags = 1;
}

void trace_from_request(struct trace_context *t, struct http_request *req)
{
    struct trace_context in;
    memset(&in, 0, sizeof(in));
    struct slice tp = http_request_header(req, "traceparent");
    struct slice xr = http_request_header(req, "X-Amzn-Trace-Id");
    bool found = tp.len ? trace_parse(tp, &in) == 0 : xr.len && trace_parse_xray(xr, &in) == 0;
    if (found) {
        *t = in;
        random_hex(t->span_id, 8);
        struct slice st = http_request_header(req, "tracestate");
        bool ok = st.len <= TRACE_STATE_MAX;
        for (size_t i = 0; ok && i < st.len; i++)
            ok = st.ptr[i] >= ' ' && st.ptr[i] < 0x7f;
        if (ok && tp.len && st.len) { /* st.ptr is NULL when the header is absent */
            memcpy(t->state, st.ptr, st.len);
            t->state[st.len] = '\0';
        }
    } else {
        trace_new(t);
    }
    memcpy(req->trace_id, t->trace_id, sizeof(req->trace_id));
    trace_format(t, req->traceparent);
    size_t st_len = strnlen(t->state, sizeof(req->tracestate) - 1);
    memcpy(req->tracestate, t->state, st_len);
    req->tracestate[st_len] = '\0';
}

/* Both forms are written for every invocation, so they are put together from their
 * fixed-length parts rather than with printf. */
void trace_format(const struct trace_context *t, char out[TRACEPARENT_LEN + 1])
{
    char *p = out;
    *p++ = '0';
    *p++ = '0';
    *p++ = '-';
    p = mempcpy(p, t->trace_id, 32);
    *p++ = '-';
    p = mempcpy(p, t->span_id, 16);
    *p++ = '-';
    hex_encode(p, &t->flags, 1); /* and the NUL */
}

void trace_format_xray(const struct trace_context *t, char out[TRACE_XRAY_MAX])
{
    static const char root[] = "Root=1-", parent[] = ";Parent=", sampled[] = ";Sampled=";
    char *p = out;
    p = mempcpy(p, root, sizeof(root) - 1);
    p = mempcpy(p, t->trace_id, 8);
    *p++ = '-';
    p = mempcpy(p, t->trace_id + 8, 24);
    p = mempcpy(p, parent, sizeof(parent) - 1);
    p = mempcpy(p, t->span_id, 16);
    p = mempcpy(p, sampled, sizeof(sampled) - 1);
    *p++ = (t->flags & 1) ? '1' : '0';
    *p = '\0';
}
