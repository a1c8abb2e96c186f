/* metrics.h - counters, histograms and the Prometheus text format. */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "keymap.h"
#include "pairmap.h"

/* Labels come from event data (domain, type); past this many series per counter the
 * rest are counted under "_other" so a bad producer cannot blow up /metrics. */
#define RT_METRICS_MAX_SERIES 1000

/* Upper bounds (seconds) of the histogram buckets: a processing call's (the default),
 * and a record's time from its Kafka timestamp to done (rt_hist_bounds_e2e). */
#define RT_HIST_BUCKETS 12
extern const double rt_hist_bounds[RT_HIST_BUCKETS];
extern const double rt_hist_bounds_e2e[RT_HIST_BUCKETS];

typedef struct rt_histogram {
    uint64_t counts[RT_HIST_BUCKETS];   /* per bucket, not cumulative */
    uint64_t total;
    double sum;
    const double *bounds;               /* NULL: rt_hist_bounds */
} rt_histogram;

/* Count one for (a, b), or for ("_other", "_other") past RT_METRICS_MAX_SERIES. */
void rt_counter_inc(rt_pairmap *m, const char *a, const char *b);
/* rt_counter_inc given the pair's hash (rt_pairmap_hash). */
void rt_counter_inc_hashed(rt_pairmap *m, const char *a, const char *b, uint64_t h);
/* Count n at once. */
void rt_counter_add(rt_pairmap *m, const char *a, const char *b, uint64_t n);
/* Record one observation in seconds. */
void rt_histogram_observe(rt_histogram *h, double seconds);

/* Exposition: a HELP and TYPE header. */
int rt_prom_header(rt_buf *out, const char *name, const char *type, const char *help);
/* One sample; `labels` is NULL or `name="value"` pairs already escaped. */
int rt_prom_sample(rt_buf *out, const char *name, const char *labels, double value);
/* Every (a, b) of a pair counter as name{la="a",lb="b"}; lb NULL for one label. */
int rt_prom_pairs(rt_buf *out, const char *name, const char *la, const char *lb,
                  const rt_pairmap *m);
/* A histogram's _bucket, _sum and _count samples. */
int rt_prom_histogram(rt_buf *out, const char *name, const char *labels,
                      const rt_histogram *h);
/* A metric a processor declares in its `metrics` table (ctx.metric). */
typedef struct rt_metric_def {
    char *name;             /* exported as eddy_<processor>_<name> */
    int gauge;              /* else a counter */
    char *help;
    char **labels;          /* the labels every sample gives, in this order */
    size_t nlabels;
} rt_metric_def;

/* The values of a processor's series, kept by its worker under its name so that they
 * outlive a reload: "<metric>\0<labels as exposed>" -> value. */
typedef struct rt_series {
    rt_keymap map;
} rt_series;

/* The value of series `key` (created at 0 when new, unless `max` series are held
 * already); NULL then, or when out of memory. */
double *rt_series_at(rt_series *s, const char *key, size_t len, size_t max);
void    rt_series_free(rt_series *s);
void    rt_metric_defs_free(rt_metric_def *v, size_t n);

/* Write `label="value"` with the value escaped as the text format asks, preceded by
 * a comma unless `out` is empty or ends with '{' (the first label of a sample). */
int rt_prom_label(rt_buf *out, const char *label, const char *value);
/* One sample with one label, name{label="value"} v; `scratch` holds the label text
 * (reused across calls, freed by the caller). */
int rt_prom_sample1(rt_buf *out, rt_buf *scratch, const char *name, const char *label,
                    const char *value, double v);

#endif
