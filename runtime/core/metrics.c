/* metrics.c - counters and histograms kept by the worker, rendered in the Prometheus
 * text exposition format (checked by `promtool check metrics` in the tests). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

const double rt_hist_bounds[RT_HIST_BUCKETS] = {
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1, 1.0,
};

const double rt_hist_bounds_e2e[RT_HIST_BUCKETS] = {
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
};

static void add_hashed(rt_pairmap *m, const char *a, const char *b, uint64_t h, uint64_t n)
{
    uint64_t *v = rt_pairmap_get_hashed(m, a, b, h);
    if (!v)
        v = rt_pairmap_put(m, m->n < RT_METRICS_MAX_SERIES ? a : "_other",
                           m->n < RT_METRICS_MAX_SERIES ? b : "_other");
    if (v)
        *v += n;
}

void rt_counter_add(rt_pairmap *m, const char *a, const char *b, uint64_t n)
{
    add_hashed(m, a, b, rt_pairmap_hash(a, b), n);
}

void rt_counter_inc(rt_pairmap *m, const char *a, const char *b)
{
    rt_counter_add(m, a, b, 1);
}

void rt_counter_inc_hashed(rt_pairmap *m, const char *a, const char *b, uint64_t h)
{
    add_hashed(m, a, b, h, 1);
}

void rt_histogram_observe(rt_histogram *h, double seconds)
{
    const double *bounds = h->bounds ? h->bounds : rt_hist_bounds;
    int i = 0;
    while (i < RT_HIST_BUCKETS && seconds > bounds[i])
        i++;
    if (i < RT_HIST_BUCKETS)
        h->counts[i]++;
    h->total++;
    h->sum += seconds;
}

static int printf_buf(rt_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int printf_buf(rt_buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    return rt_buf_append(out, line, (size_t)n);
}

int rt_prom_header(rt_buf *out, const char *name, const char *type, const char *help)
{
    return printf_buf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int rt_prom_sample(rt_buf *out, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        return printf_buf(out, "%s{%s} %.17g\n", name, labels, value);
    return printf_buf(out, "%s %.17g\n", name, value);
}

int rt_prom_label(rt_buf *out, const char *label, const char *value)
{
    if (out->len && out->data[out->len - 1] != '{' && rt_buf_putc(out, ',') < 0)
        return -1;
    if (printf_buf(out, "%s=\"", label) < 0)
        return -1;
    for (const char *p = value; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (esc ? rt_buf_append(out, esc, 2) : rt_buf_putc(out, *p))
            return -1;
    }
    return rt_buf_putc(out, '"');
}

int rt_prom_sample1(rt_buf *out, rt_buf *scratch, const char *name, const char *label,
                    const char *value, double v)
{
    scratch->len = 0;
    return rt_prom_label(scratch, label, value) < 0 || rt_buf_putc(scratch, '\0') < 0 ||
           rt_prom_sample(out, name, scratch->data, v) < 0 ? -1 : 0;
}

int rt_prom_pairs(rt_buf *out, const char *name, const char *la, const char *lb,
                  const rt_pairmap *m)
{
    size_t i = 0;
    const char *a, *b;
    uint64_t v;
    while (rt_pairmap_next(m, &i, &a, &b, &v)) {
        if (printf_buf(out, "%s{", name) < 0 || rt_prom_label(out, la, a) < 0 ||
            (lb && rt_prom_label(out, lb, b) < 0) ||
            printf_buf(out, "} %llu\n", (unsigned long long)v) < 0)
            return -1;
    }
    return 0;
}

int rt_prom_histogram(rt_buf *out, const char *name, const char *labels,
                      const rt_histogram *h)
{
    const char *sep = labels && *labels ? "," : "";
    const double *bounds = h->bounds ? h->bounds : rt_hist_bounds;
    labels = labels ? labels : "";
    uint64_t cum = 0;
    for (int i = 0; i < RT_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        if (printf_buf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                       bounds[i], (unsigned long long)cum) < 0)
            return -1;
    }
    if (printf_buf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)h->total) < 0)
        return -1;
    if (*labels)
        return printf_buf(out, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, h->sum,
                          name, labels, (unsigned long long)h->total);
    return printf_buf(out, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name,
                      (unsigned long long)h->total);
}

double *rt_series_at(rt_series *s, const char *key, size_t len, size_t max)
{
    double *v = rt_keymap_get(&s->map, 0, key, len);
    if (v || s->map.n >= max)
        return v;
    void **slot = rt_keymap_put(&s->map, 0, key, len);
    if (!slot || !(*slot = calloc(1, sizeof(double)))) {
        if (slot)
            rt_keymap_del(&s->map, 0, key, len);
        return NULL;
    }
    return *slot;
}

void rt_series_free(rt_series *s)
{
    size_t i = 0;
    for (rt_keymap_slot *sl; (sl = rt_keymap_next(&s->map, &i));)
        free(sl->value);
    rt_keymap_free(&s->map);
}

void rt_metric_defs_free(rt_metric_def *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].help);
        for (size_t j = 0; j < v[i].nlabels; j++)
            free(v[i].labels[j]);
        free(v[i].labels);
    }
    free(v);
}
