/*
 * Trace context: W3C Trace Context (`traceparent`, `tracestate`) accepted on a request
 * or created when absent, one new span per invocation, and the same ids in AWS X-Ray
 * form for Lambda runtimes (_X_AMZN_TRACE_ID: Root=1-<8 hex>-<24 hex>;Parent=...;
 * Sampled=...), the mapping OpenTelemetry's X-Ray propagator uses. An incoming
 * X-Amzn-Trace-Id is accepted when there is no traceparent.
 */
#ifndef FND_TRACE_H
#define FND_TRACE_H

#include "fnd/common.h"

#include <stdint.h>

#define TRACE_STATE_MAX 512     /* longer tracestate values are dropped, as the spec allows */
#define TRACEPARENT_LEN 55      /* "00-" 32 "-" 16 "-" 2 */
#define TRACE_XRAY_MAX 96

struct http_request;

struct trace_context {
    char trace_id[33];  /* 32 lowercase hex digits */
    char parent_id[17]; /* the caller's span, 16 hex; empty when the trace began here */
    char span_id[17];   /* this invocation's span */
    uint8_t flags;      /* bit 0: sampled */
    char state[TRACE_STATE_MAX + 1]; /* tracestate, passed on unchanged; may be empty */
};

/* Parses a traceparent value into t's trace_id, parent_id (the header's span) and flags.
 * 0, or -EINVAL when it does not follow the W3C format (version ff, zero ids, upper case,
 * wrong lengths). */
int trace_parse(struct slice value, struct trace_context *t);
/* Parses an X-Amzn-Trace-Id value (Root=1-...;Parent=...;Sampled=...) likewise. */
int trace_parse_xray(struct slice value, struct trace_context *t);
/* Fills t for one invocation of req: the incoming trace (traceparent, else
 * X-Amzn-Trace-Id) or a new sampled one, and a fresh span_id. Also fills req's
 * trace_id (for the request log) and traceparent/tracestate, which the gateway adds to
 * the answer. */
void trace_from_request(struct trace_context *t, struct http_request *req);
/* Starts a new trace with a fresh span (no caller). */
void trace_new(struct trace_context *t);
/* "00-<trace>-<span>-<flags>", NUL-terminated: the traceparent to answer with and to
 * give the function (its parent is this invocation's span). */
void trace_format(const struct trace_context *t, char out[TRACEPARENT_LEN + 1]);
/* The X-Ray form: Root=1-<first 8>-<last 24>;Parent=<span>;Sampled=<0|1>. */
void trace_format_xray(const struct trace_context *t, char out[TRACE_XRAY_MAX]);

#endif
