/*
 * The daemon's metrics, rendered by GET /metrics in the Prometheus text format.
 *
 * Every metric is one row of FND_METRICS: id, type, name (prefixed fnd_), help, and
 * up to two label names. A module records with one call, e.g.
 *     metrics_inc(METRIC_INVOCATIONS, fn->name, inv_outcome_word(outcome));
 * Label values must come from a bounded set: function names (forgotten when the
 * function is deleted) or fixed words, never ids; past METRICS_SERIES_MAX series new
 * ones are dropped. Single-threaded: call from the loop thread only.
 */
#ifndef FND_METRICS_H
#define FND_METRICS_H

#include "fnd/buf.h"

#define METRICS_SERIES_MAX 50000

/* id, type, name, help, first label, second label (NULL: none) */
#define FND_METRICS(X)                                                                         \
    X(INVOCATIONS, COUNTER, "fnd_invocations_total",                                           \
      "Invocations that ended, by function and outcome.", "function", "outcome")              \
    X(INVOCATION_DURATION, HISTOGRAM, "fnd_invocation_duration_seconds",                       \
      "Time from dispatch to a worker until the result, by function.", "function", NULL)      \
    X(INVOCATION_QUEUED, HISTOGRAM, "fnd_invocation_queue_seconds",                            \
      "Time invocations waited for a worker, by function.", "function", NULL)                 \
    X(COLD_STARTS, COUNTER, "fnd_cold_starts_total",                                           \
      "Invocations that waited for a new worker to start, by runtime.", "runtime", NULL)      \
    X(COLD_START_DURATION, HISTOGRAM, "fnd_cold_start_duration_seconds",                       \
      "For each cold start, its worker's time from spawn to handler loaded, by runtime.",     \
      "runtime",                                                                               \
      NULL)                                                                                    \
    X(THROTTLES, COUNTER, "fnd_throttles_total",                                               \
      "Invocations refused or expired at a function's concurrency and queue limits.",         \
      "function", NULL)                                                                        \
    X(QUEUE_DEPTH, GAUGE, "fnd_queue_depth", "Invocations waiting for a worker.", "function",  \
      NULL)                                                                                    \
    X(WORKERS, GAUGE, "fnd_workers", "Worker processes by function and state.", "function",   \
      "state")                                                                                 \
    X(RETRIES, COUNTER, "fnd_retries_total", "Retries of asynchronous invocations.",          \
      "function", NULL)                                                                        \
    X(DEAD_LETTERS, COUNTER, "fnd_dead_letters_total",                                         \
      "Asynchronous invocations given up on after their retries.", "function", NULL)          \
    X(EVENTLOG_APPENDS, COUNTER, "fnd_eventlog_appends_total",                                 \
      "Records appended to the event log.", NULL, NULL)                                       \
    X(EVENTLOG_BYTES, COUNTER, "fnd_eventlog_bytes_total", "Bytes appended to the event log.", \
      NULL, NULL)                                                                              \
    X(EVENTLOG_FSYNC_DURATION, HISTOGRAM, "fnd_eventlog_fsync_duration_seconds",               \
      "Time for a batch of event log records to be written and synced to disk.", NULL, NULL)                              \
    X(EVENTLOG_BACKEND, GAUGE, "fnd_eventlog_backend",                                         \
      "The event log's writer: 1 for the one in use.", "backend", NULL)                       \
    X(HTTP_REQUESTS, COUNTER, "fnd_http_requests_total",                                       \
      "HTTP requests answered, by route and status.", "route", "status")                      \
    X(HTTP_DURATION, HISTOGRAM, "fnd_http_request_duration_seconds",                           \
      "Time from a request's first byte until its answer was queued, by route.", "route",     \
      NULL)                                                                                    \
    X(HTTP_CONNECTIONS, GAUGE, "fnd_http_connections", "Open client connections.", NULL, NULL) \
    X(FUNCTIONS, GAUGE, "fnd_functions", "Deployed functions.", NULL, NULL)                    \
    X(PROCESS_RSS, GAUGE, "fnd_process_resident_memory_bytes",                                 \
      "Resident memory of the daemon process.", NULL, NULL)                                   \
    X(PROCESS_FDS, GAUGE, "fnd_process_open_fds", "Open file descriptors of the daemon.",     \
      NULL, NULL)                                                                              \
    X(PROCESS_START, GAUGE, "fnd_process_start_time_seconds",                                  \
      "When the daemon started, in seconds since the Unix epoch.", NULL, NULL)                \
    X(UPTIME, GAUGE, "fnd_uptime_seconds", "Seconds since the daemon started.", NULL, NULL)

enum metric_id {
#define METRIC_ENUM(id, type, name, help, l1, l2) METRIC_##id,
    FND_METRICS(METRIC_ENUM)
#undef METRIC_ENUM
        METRIC__COUNT
};

/* Counters: add 1, or v >= 0. l1/l2: the label values (NULL where the row has none). */
void metrics_inc(enum metric_id id, const char *l1, const char *l2);
void metrics_add(enum metric_id id, double v, const char *l1, const char *l2);
/* Gauges: set the value. */
void metrics_set(enum metric_id id, double v, const char *l1, const char *l2);
/* Histograms: record one observation (seconds for durations). */
void metrics_observe(enum metric_id id, double v, const char *l1, const char *l2);
/* Drops every series of id (gauges refilled at each scrape). */
void metrics_clear(enum metric_id id);
/* Drops every series whose "function" label is fn (the function was deleted). */
void metrics_forget_function(const char *fn);
/* Appends the Prometheus text exposition of every metric to out. */
void metrics_render(struct buf *out);
/* Frees every series (at exit, and between unit tests). */
void metrics_reset(void);

#endif
