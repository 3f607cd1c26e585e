/*
 * Lambda's Invoke (include/fnd/lambda_api.h): POST /2015-03-31/functions/{name}/
 * invocations with X-Amz-Invocation-Type RequestResponse (200, the default), DryRun
 * (204: the function exists and the request is valid) or Event (202, once the event
 * is durable in the event log, which runs it with the function's retry policy).
 *
 * The payload is bounded before anything else (6 MiB sync, 256 KiB async: 413
 * RequestTooLargeException) and must be JSON, as on Lambda (native functions, which
 * take raw bytes, excepted). X-Amz-Client-Context (base64 JSON) and X-Amzn-Trace-Id
 * reach the function's context. The result maps back the way Lambda's does: a
 * function error, timeout, crash or init error is still 200, with
 * X-Amz-Function-Error: Unhandled and the error object {errorMessage, errorType,
 * stackTrace} as the body; throttling is 429 TooManyRequestsException.
 * X-Amz-Executed-Version names the version that ran. X-Amz-Log-Type: Tail returns
 * the last 4 KB of the invocation's log (START, output, END, REPORT) base64-encoded in
 * X-Amz-Log-Result.
 */
#include "fnd/lambda_api.h"

#include "fnd/async.h"
#include "fnd/codec.h"
#include "fnd/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_CONTEXT_MAX 3583 /* Lambda's limit on the base64 text */

enum call_type { CALL_SYNC, CALL_EVENT, CALL_DRY_RUN };

struct lambda_call {
    struct invocation inv;
    struct http_request *req;
    char version[24];
};

static void on_call_done(struct invocation *inv, const struct inv_result *res)
{
    struct lambda_call *c = container_of(inv, struct lambda_call, inv);
    struct http_request *req = c->req;
    switch (res->outcome) {
    case INV_THROTTLED:
        lambda_error(req, FND_E_TOO_MANY_REQUESTS, "Rate Exceeded.");
        break;
    case INV_CANCELLED:
        lambda_error(req, FND_E_UNAVAILABLE, "%.*s", (int)FND_MIN(res->body.len, 400),
                     res->body.ptr);
        break;
    default: {
        struct http_header headers[5] = {
            {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
            {SLICE_LIT("X-Amz-Executed-Version"), slice_from_cstr(c->version)},
            {SLICE_LIT("x-amzn-RequestId"), {inv->id, INVOCATION_ID_LEN}},
        };
        size_t n = 3;
        if (res->outcome != INV_SUCCESS)
            headers[n++] = (struct http_header){SLICE_LIT("X-Amz-Function-Error"),
                                                SLICE_LIT("Unhandled")};
        /* The last 4 KB of the invocation's log, START to REPORT (funclog.h). */
        struct buf tail;
        buf_init(&tail, 0);
        if (c->inv.wants_log) { /* X-Amz-Log-Type: Tail */
            base64_encode(&tail, res->log.ptr, res->log.len);
            headers[n++] = (struct http_header){SLICE_LIT("X-Amz-Log-Result"), buf_slice(&tail)};
        }
        http_respond(req, 200, headers, n, res->body.ptr, res->body.len);
        buf_release(&tail);
        break;
    }
    }
    invocation_release(inv);
    free(c);
}

static int parse_type(struct slice type, enum call_type *out)
{
    if (type.len == 0 || slice_eq(type, "RequestResponse"))
        *out = CALL_SYNC;
    else if (slice_eq(type, "Event"))
        *out = CALL_EVENT;
    else if (slice_eq(type, "DryRun"))
        *out = CALL_DRY_RUN;
    else
        return -EINVAL;
    return 0;
}

/* X-Amz-Client-Context: base64 of a JSON object, handed to the function as its text. */
static int take_client_context(struct http_request *req, struct invocation *inv)
{
    struct slice cc = http_request_header(req, "X-Amz-Client-Context");
    if (cc.len == 0)
        return 0;
    if (cc.len > CLIENT_CONTEXT_MAX)
        return -EINVAL;
    struct buf text;
    buf_init(&text, CLIENT_CONTEXT_MAX);
    int rc = base64_decode(&text, cc.ptr, cc.len);
    cJSON *probe = rc == 0 ? cJSON_ParseWithLength(text.data ? text.data : "", text.len) : NULL;
    if (cJSON_IsObject(probe))
        inv->client_context = buf_steal(&text, NULL);
    else
        rc = -EINVAL;
    cJSON_Delete(probe);
    buf_release(&text);
    return rc;
}

/* 202 once the event is durable in the event log; its id is the request id. */
static void on_event_accepted(int status, const char *id, void *data)
{
    struct http_request *req = data;
    if (status < 0) {
        lambda_error(req, FND_E_UNAVAILABLE, "the event log is read-only");
        return;
    }
    struct http_header h = {SLICE_LIT("x-amzn-RequestId"), slice_from_cstr(id)};
    http_respond(req, 202, &h, 1, NULL, 0);
}

/* Event: through the durable event log (async.h), with the function's retry policy
 * (PutFunctionEventInvokeConfig). An Idempotency-Key header works as on /v1. */
static void submit_event(struct http_request *req, struct daemon *d, const struct lambda_target *t,
                         const struct invocation *inv)
{
    if (t->version->published) {
        /* The event log runs the function's current version. */
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "fnd runs Event invocations on $LATEST only, not on version %s", t->qualifier);
        return;
    }
    int rc = async_submit(d->async, t->fn, &req->body, http_request_header(req, "Idempotency-Key"),
                          inv->trace_id, inv->client_context, on_event_accepted, req);
    if (rc == -EINVAL)
        lambda_error(req, FND_E_BAD_REQUEST, "Idempotency-Key must be 1 to %d characters",
                     ASYNC_KEY_MAX);
    else if (rc == -EEXIST)
        lambda_error(req, FND_E_UNPROCESSABLE,
                     "this Idempotency-Key was used with a different payload");
    else if (rc == -E2BIG)
        lambda_error(req, FND_E_PAYLOAD_TOO_LARGE, "the event is too large for the event log");
    else if (rc < 0)
        lambda_error(req, FND_E_UNAVAILABLE, "the event log refuses events now (%s)",
                     strerror(-rc));
}

void lambda_invoke(struct http_request *req, struct daemon *d, const struct lambda_target *t)
{
    enum call_type type;
    if (parse_type(http_request_header(req, "X-Amz-Invocation-Type"), &type) < 0) {
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "1 validation error detected: Value at 'invocationType' failed to satisfy "
                     "constraint: Member must satisfy enum value set: [Event, RequestResponse, "
                     "DryRun]");
        return;
    }
    size_t limit = type == CALL_EVENT ? LAMBDA_ASYNC_PAYLOAD_MAX : LAMBDA_SYNC_PAYLOAD_MAX;
    if (req->body.len > limit) {
        lambda_error(req, FND_E_PAYLOAD_TOO_LARGE,
                     "%zu byte payload is too large for the %s invocation type (limit %zu bytes)",
                     req->body.len, type == CALL_EVENT ? "Event" : "RequestResponse", limit);
        return;
    }
    if (req->body.len == 0) {
        buf_append_str(&req->body, "{}");
    } else if (t->version->config.runtime != RUNTIME_NATIVE) {
        cJSON *probe = cJSON_ParseWithLength(req->body.data, req->body.len);
        bool ok = probe != NULL;
        cJSON_Delete(probe);
        if (!ok) {
            lambda_error(req, FND_E_BAD_REQUEST, "Could not parse request body into json: the "
                                                 "payload must be valid JSON");
            return;
        }
    }
    struct lambda_call *c = xcalloc(1, sizeof(*c));
    invocation_init(&c->inv, 0);
    if (take_client_context(req, &c->inv) < 0) {
        invocation_release(&c->inv);
        free(c);
        lambda_error(req, FND_E_INVALID_PARAMETER,
                     "X-Amz-Client-Context must be base64 of a JSON object, at most %d bytes",
                     CLIENT_CONTEXT_MAX);
        return;
    }
    struct slice trace = http_request_header(req, "X-Amzn-Trace-Id");
    if (trace.len > 0 && trace.len < 256)
        c->inv.trace_id = xstrndup(trace.ptr, trace.len);
    lambda_version_name(t->version, c->version);
    c->inv.wants_log = slice_eq_nocase(http_request_header(req, "X-Amz-Log-Type"), "Tail");
    memcpy(req->request_id, c->inv.id, sizeof(req->request_id)); /* for the access log */

    if (type == CALL_DRY_RUN) {
        invocation_release(&c->inv);
        free(c);
        http_respond(req, 204, NULL, 0, NULL, 0);
        return;
    }
    if (type == CALL_EVENT) {
        submit_event(req, d, t, &c->inv);
        invocation_release(&c->inv);
        free(c);
        return;
    }
    buf_move(&c->inv.payload, &req->body);
    c->inv.on_done = on_call_done;
    c->req = req;
    int rc = controller_submit_version(d->controller, t->fn, t->version, &c->inv);
    if (rc < 0) {
        invocation_release(&c->inv);
        free(c);
        if (rc == -EAGAIN)
            lambda_error(req, FND_E_TOO_MANY_REQUESTS, "Rate Exceeded.");
        else
            lambda_error(req, FND_E_UNAVAILABLE, "the daemon is stopping");
    }
}
