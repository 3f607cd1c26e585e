/*
 * Metrics registry and Prometheus rendering (include/fnd/metrics.h).
 *
 * A series is (metric, label values) with its value or, for histograms, cumulative
 * bucket counts, a sum and a count. Series live in one hash table for recording (one
 * lookup per call, no allocation once a series exists) and in a list per metric for
 * rendering in a stable order. Histograms share one set of buckets, from half a
 * millisecond to five minutes, which covers both a warm invocation and a slow deploy.
 */
#include "fnd/metrics.h"

#include "fnd/list.h"
#include "fnd/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define METRICS_HASH_BUCKETS 4096

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const struct {
    enum metric_type type;
    const char *name;
    const char *help;
    const char *labels[2];
} metric_defs[] = {
#define METRIC_ROW(id, type, name, help, l1, l2) {METRIC_##type, name, help, {l1, l2}},
    FND_METRICS(METRIC_ROW)
#undef METRIC_ROW
};

static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                       5,      10,    30,     60,    300};
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct series {
    struct series *hash_next;
    struct list_node link; /* the metric's series, in creation order */
    enum metric_id id;
    uint32_t hash;
    char *labels[2];       /* owned; NULL where the metric has no such label */
    double value;          /* counters and gauges; histograms: the sum */
    uint64_t count;        /* histograms */
    uint64_t buckets[NBUCKETS]; /* histograms: observations <= bound (not cumulative) */
};

static struct series *table[METRICS_HASH_BUCKETS];
static struct list_node by_metric[METRIC__COUNT];
static bool initialized;
static size_t nseries;
static bool warned_full;

static void init_once(void)
{
    if (initialized)
        return;
    for (size_t i = 0; i < METRIC__COUNT; i++)
        list_init(&by_metric[i]);
    initialized = true;
}

/* FNV-1a over the id and the label values. */
static uint32_t hash_of(enum metric_id id, const char *l1, const char *l2)
{
    uint32_t h = 2166136261u ^ (uint32_t)id;
    const char *parts[2] = {l1, l2};
    for (int p = 0; p < 2; p++) {
        for (const char *s = parts[p]; s && *s; s++)
            h = (h ^ (unsigned char)*s) * 16777619u;
        h = (h ^ 0xff) * 16777619u; /* separator: ("ab", "") differs from ("a", "b") */
    }
    return h;
}

static bool label_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The series of (id, l1, l2), created when missing; NULL past METRICS_SERIES_MAX. */
static struct series *get(enum metric_id id, const char *l1, const char *l2)
{
    init_once();
    /* A label the row does not declare is ignored, so a mistaken call cannot make an
     * unlabelled metric grow. */
    if (metric_defs[id].labels[0] == NULL)
        l1 = NULL;
    if (metric_defs[id].labels[1] == NULL)
        l2 = NULL;
    if (metric_defs[id].labels[0] && l1 == NULL)
        l1 = "";
    if (metric_defs[id].labels[1] && l2 == NULL)
        l2 = "";
    uint32_t h = hash_of(id, l1, l2);
    struct series **slot = &table[h % METRICS_HASH_BUCKETS];
    for (struct series *s = *slot; s; s = s->hash_next)
        if (s->hash == h && s->id == id && label_eq(s->labels[0], l1) &&
            label_eq(s->labels[1], l2))
            return s;
    if (nseries >= METRICS_SERIES_MAX) {
        if (!warned_full)
            log_warn("metrics full, dropping new series", "max=%d metric=%s",
                     METRICS_SERIES_MAX, metric_defs[id].name);
        warned_full = true;
        return NULL;
    }
    struct series *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->hash = h;
    s->labels[0] = l1 ? xstrdup(l1) : NULL;
    s->labels[1] = l2 ? xstrdup(l2) : NULL;
    s->hash_next = *slot;
    *slot = s;
    list_push_back(&by_metric[id], &s->link);
    nseries++;
    return s;
}

void metrics_add(enum metric_id id, double v, const char *l1, const char *l2)
{
    struct series *s = get(id, l1, l2);
    if (s && v > 0)
        s->value += v;
}

void metrics_inc(enum metric_id id, const char *l1, const char *l2)
{
    metrics_add(id, 1, l1, l2);
}

void metrics_set(enum metric_id id, double v, const char *l1, const char *l2)
{
    struct series *s = get(id, l1, l2);
    if (s)
        s->value = v;
}

void metrics_observe(enum metric_id id, double v, const char *l1, const char *l2)
{
    struct series *s = get(id, l1, l2);
    if (s == NULL || isnan(v))
        return;
    s->value += v;
    s->count++;
    for (size_t b = 0; b < NBUCKETS; b++) {
        if (v <= bucket_bounds[b]) {
            s->buckets[b]++;
            break;
        }
    }
}

static void unlink_series(struct series *s)
{
    struct series **p = &table[s->hash % METRICS_HASH_BUCKETS];
    while (*p != s)
        p = &(*p)->hash_next;
    *p = s->hash_next;
    list_remove(&s->link);
    free(s->labels[0]);
    free(s->labels[1]);
    free(s);
    nseries--;
}

void metrics_clear(enum metric_id id)
{
    init_once();
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &by_metric[id])
    {
        unlink_series(container_of(n, struct series, link));
    }
}

void metrics_forget_function(const char *fn)
{
    init_once();
    for (size_t id = 0; id < METRIC__COUNT; id++) {
        if (metric_defs[id].labels[0] == NULL || strcmp(metric_defs[id].labels[0], "function") != 0)
            continue;
        struct list_node *n, *tmp;
        list_for_each_safe(n, tmp, &by_metric[id])
        {
            struct series *s = container_of(n, struct series, link);
            if (strcmp(s->labels[0], fn) == 0)
                unlink_series(s);
        }
    }
}

void metrics_reset(void)
{
    init_once();
    for (size_t id = 0; id < METRIC__COUNT; id++)
        metrics_clear((enum metric_id)id);
    warned_full = false;
}

/* --- rendering --------------------------------------------------------------------- */

/* A label value with \, " and newline escaped, as the text format wants. */
static void put_label_value(struct buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            buf_append_str(out, "\\n");
        else
            buf_append(out, v, 1);
    }
}

/* {a="x",b="y"} with an optional extra label (le), or nothing when there are none. */
static void put_labels(struct buf *out, enum metric_id id, const struct series *s,
                       const char *extra_name, const char *extra_value)
{
    bool any = false;
    for (int i = 0; i < 2; i++) {
        if (metric_defs[id].labels[i] == NULL)
            continue;
        buf_printf(out, "%s%s=\"", any ? "," : "{", metric_defs[id].labels[i]);
        put_label_value(out, s->labels[i]);
        buf_append_str(out, "\"");
        any = true;
    }
    if (extra_name) {
        buf_printf(out, "%s%s=\"%s\"", any ? "," : "{", extra_name, extra_value);
        any = true;
    }
    if (any)
        buf_append_str(out, "}");
}

static void put_number(struct buf *out, double v)
{
    if (isinf(v))
        buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        buf_printf(out, "%.0f", v);
    else
        buf_printf(out, "%.15g", v);
}

void metrics_render(struct buf *out)
{
    static const char *const type_words[] = {"counter", "gauge", "histogram"};
    init_once();
    for (size_t i = 0; i < METRIC__COUNT; i++) {
        enum metric_id id = (enum metric_id)i;
        const char *name = metric_defs[id].name;
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, metric_defs[id].help, name,
                   type_words[metric_defs[id].type]);
        /* An unlabelled counter or gauge is always shown, as 0 until it moves. */
        if (list_empty(&by_metric[id]) && metric_defs[id].labels[0] == NULL)
            get(id, NULL, NULL);
        struct list_node *n, *tmp;
        list_for_each_safe(n, tmp, &by_metric[id])
        {
            const struct series *s = container_of(n, struct series, link);
            if (metric_defs[id].type != METRIC_HISTOGRAM) {
                buf_append_str(out, name);
                put_labels(out, id, s, NULL, NULL);
                buf_append_str(out, " ");
                put_number(out, s->value);
                buf_append_str(out, "\n");
                continue;
            }
            uint64_t cumulative = 0;
            char le[32];
            for (size_t b = 0; b <= NBUCKETS; b++) {
                if (b < NBUCKETS) {
                    cumulative += s->buckets[b];
                    snprintf(le, sizeof(le), "%g", bucket_bounds[b]);
                } else {
                    cumulative = s->count;
                    snprintf(le, sizeof(le), "+Inf");
                }
                buf_printf(out, "%s_bucket", name);
                put_labels(out, id, s, "le", le);
                buf_printf(out, " %llu\n", (unsigned long long)cumulative);
            }
            buf_printf(out, "%s_sum", name);
            put_labels(out, id, s, NULL, NULL);
            buf_append_str(out, " ");
            put_number(out, s->value);
            buf_printf(out, "\n%s_count", name);
            put_labels(out, id, s, NULL, NULL);
            buf_printf(out, " %llu\n", (unsigned long long)s->count);
        }
    }
}
