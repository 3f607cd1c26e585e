/*
 * The operability endpoints of the native API: function output logs (funclog.h) and,
 * with metrics.h, GET /metrics. Route handlers for api.c's table; data is the struct
 * daemon.
 */
#ifndef FND_OPS_API_H
#define FND_OPS_API_H

#include "fnd/router.h"

struct http_request;

#define OPS_LOGS_MAX (1024 * 1024) /* bytes of log records one answer carries at most */

/* GET /v1/invocations/{id}/logs: the invocation's log text, START to REPORT. */
void ops_on_invocation_logs(struct http_request *req, const struct route_match *m, void *data);
/* GET /v1/functions/{name}/logs?since=...&follow=1: the function's records; with
 * follow, a chunked stream that goes on with new records until the client leaves. */
void ops_on_function_logs(struct http_request *req, const struct route_match *m, void *data);

/* GET /metrics: the Prometheus text exposition (metrics.h), gauges refreshed from the
 * controller, the gateway and /proc/self first. */
void ops_on_metrics(struct http_request *req, const struct route_match *m, void *data);

#endif
