/* Unit tests for metrics.c: the text exposition of counters, gauges and histograms,
 * label escaping, label sets the row does not declare, and forgetting a function. */
#include "fnd/metrics.h"

#include "test.h"

static char *render(void)
{
    struct buf out;
    buf_init(&out, 0);
    metrics_render(&out);
    return out.data;
}

TEST(counters_and_gauges)
{
    metrics_inc(METRIC_INVOCATIONS, "f1", "success");
    metrics_inc(METRIC_INVOCATIONS, "f1", "success");
    metrics_add(METRIC_INVOCATIONS, 3, "f1", "error");
    metrics_add(METRIC_INVOCATIONS, -5, "f1", "error"); /* counters never go down */
    metrics_set(METRIC_QUEUE_DEPTH, 7, "f2", NULL);
    metrics_set(METRIC_QUEUE_DEPTH, 4, "f2", NULL);
    metrics_set(METRIC_UPTIME, 1.5, "ignored", "too");
    char *text = render();
    ASSERT_CONTAINS(text, "# HELP fnd_invocations_total Invocations that ended");
    ASSERT_CONTAINS(text, "# TYPE fnd_invocations_total counter\n");
    ASSERT_CONTAINS(text, "fnd_invocations_total{function=\"f1\",outcome=\"success\"} 2\n");
    ASSERT_CONTAINS(text, "fnd_invocations_total{function=\"f1\",outcome=\"error\"} 3\n");
    ASSERT_CONTAINS(text, "# TYPE fnd_queue_depth gauge\nfnd_queue_depth{function=\"f2\"} 4\n");
    ASSERT_CONTAINS(text, "\nfnd_uptime_seconds 1.5\n");
    ASSERT_CONTAINS(text, "\nfnd_eventlog_appends_total 0\n"); /* shown before it moves */
    free(text);
    metrics_reset();
}

TEST(histogram_buckets_are_cumulative)
{
    metrics_observe(METRIC_INVOCATION_DURATION, 0.0003, "f", NULL);
    metrics_observe(METRIC_INVOCATION_DURATION, 0.002, "f", NULL);
    metrics_observe(METRIC_INVOCATION_DURATION, 0.002, "f", NULL);
    metrics_observe(METRIC_INVOCATION_DURATION, 1000, "f", NULL);
    char *text = render();
    ASSERT_CONTAINS(text, "# TYPE fnd_invocation_duration_seconds histogram\n");
#define BUCKET(le, n) "fnd_invocation_duration_seconds_bucket{function=\"f\",le=\"" le "\"} " n "\n"
    ASSERT_CONTAINS(text, BUCKET("0.0005", "1"));
    ASSERT_CONTAINS(text, BUCKET("0.001", "1"));
    ASSERT_CONTAINS(text, BUCKET("0.0025", "3"));
    ASSERT_CONTAINS(text, BUCKET("300", "3"));
    ASSERT_CONTAINS(text, BUCKET("+Inf", "4"));
#undef BUCKET
    ASSERT_CONTAINS(text, "fnd_invocation_duration_seconds_sum{function=\"f\"} 1000.0043\n");
    ASSERT_CONTAINS(text, "fnd_invocation_duration_seconds_count{function=\"f\"} 4\n");
    free(text);
    metrics_reset();
}

TEST(label_escaping_and_forgetting)
{
    metrics_inc(METRIC_HTTP_REQUESTS, "a\"b\\c\nd", "200");
    metrics_inc(METRIC_THROTTLES, "gone", NULL);
    metrics_inc(METRIC_THROTTLES, "kept", NULL);
    metrics_set(METRIC_WORKERS, 2, "gone", "idle");
    metrics_forget_function("gone");
    char *text = render();
    ASSERT_CONTAINS(text, "fnd_http_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"200\"} 1\n");
    ASSERT(strstr(text, "\"gone\"") == NULL);
    ASSERT_CONTAINS(text, "fnd_throttles_total{function=\"kept\"} 1\n");
    free(text);
    metrics_clear(METRIC_THROTTLES);
    text = render();
    ASSERT(strstr(text, "fnd_throttles_total{") == NULL);
    free(text);
    metrics_reset();
}

TEST_MAIN()
