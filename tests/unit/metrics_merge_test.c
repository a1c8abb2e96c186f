/* metrics_merge_test.c - the supervisor's /metrics merge (runtime/supervisor/
 * supervisor_metrics.c): workers' texts summed sample by sample, and a dead worker's
 * counters and histograms kept ("retired") so that no sum goes down at a restart. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "supervisor.h"
#include "unit.h"

#define W0 "# HELP eddy_records_read_total Records read.\n" \
           "# TYPE eddy_records_read_total counter\n" \
           "eddy_records_read_total 10\n" \
           "# TYPE eddy_lag gauge\n" \
           "eddy_lag{partition=\"0\"} 7\n" \
           "# TYPE eddy_start_time_seconds gauge\n" \
           "eddy_start_time_seconds 100\n" \
           "# TYPE eddy_d histogram\n" \
           "eddy_d_bucket{le=\"0.1\"} 3\n" \
           "eddy_d_bucket{le=\"+Inf\"} 4\n" \
           "eddy_d_sum 0.5\n" \
           "eddy_d_count 4\n"
#define W1 "# TYPE eddy_records_read_total counter\n" \
           "eddy_records_read_total 5\n" \
           "# TYPE eddy_lag gauge\n" \
           "eddy_lag{partition=\"0\"} 1\n" \
           "# TYPE eddy_start_time_seconds gauge\n" \
           "eddy_start_time_seconds 90\n"

static rt_buf text(const char *s)
{
    return (rt_buf){ (char *)s, strlen(s), 0 };
}

/* The value of `sample` (name{labels}) in `out`, or -1 when it is not there. */
static double value(const rt_buf *out, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *p = out->data, *end = out->data + out->len; p && p < end;) {
        if ((size_t)(end - p) > n && !memcmp(p, sample, n) && p[n] == ' ') {
            double v;
            return sscanf(p + n + 1, "%lf", &v) == 1 ? v : -1;
        }
        p = memchr(p, '\n', (size_t)(end - p));
        p = p ? p + 1 : NULL;
    }
    return -1;
}

static const struct {
    const char *sample;
    double merged, retired, after_restart;
} cases[] = {
    /* merged: W0 + W1. retired: W0 and W1 died in turn (only cumulative families).
     * after_restart: the merge of a fresh W1 (its counters from 0) with what W0 and the
     * first W1 left: never less than `merged` for a counter. */
    { "eddy_records_read_total", 15, 15, 20 },
    { "eddy_lag{partition=\"0\"}", 8, -1, 1 },
    { "eddy_start_time_seconds", 90, -1, 90 },
    { "eddy_d_bucket{le=\"0.1\"}", 3, 3, 3 },
    { "eddy_d_bucket{le=\"+Inf\"}", 4, 4, 4 },
    { "eddy_d_sum", 0.5, 0.5, 0.5 },
    { "eddy_d_count", 4, 4, 4 },
};

int main(void)
{
    rt_buf merged = { 0 }, retired = { 0 }, after = { 0 };
    rt_buf both[2] = { text(W0), text(W1) };
    unit_check(rt_metrics_merge(both, 2, &merged) == 0, "merge: two workers' texts");
    rt_buf w0 = text(W0), w1 = text(W1), empty = { 0 };
    unit_check(rt_metrics_retire(&retired, &w0) == 0 && rt_metrics_retire(&retired, &w1) == 0,
               "retire: two dead workers in turn");
    unit_check(rt_metrics_retire(&retired, &empty) == 0,
               "retire: a worker never asked for its metrics adds nothing");
    rt_buf again[2] = { text(W1), retired };
    unit_check(rt_metrics_merge(again, 2, &after) == 0, "merge: a restarted worker and the retired");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double m = value(&merged, cases[i].sample), r = value(&retired, cases[i].sample),
               a = value(&after, cases[i].sample);
        unit_check(m == cases[i].merged, "merge: %s is %g (got %g)", cases[i].sample,
                   cases[i].merged, m);
        unit_check(r == cases[i].retired, "retire: %s is %s%g (got %g)", cases[i].sample,
                   cases[i].retired < 0 ? "left out, " : "", cases[i].retired, r);
        unit_check(a == cases[i].after_restart, "after a restart: %s is %g (got %g)",
                   cases[i].sample, cases[i].after_restart, a);
    }
    unit_check(retired.len && !memmem(retired.data, retired.len, "eddy_lag", 8),
               "retire: a gauge's HELP and TYPE are left out with its samples");
    const char *help = "# HELP eddy_records_read_total Records read.\n";
    unit_check(memmem(retired.data, retired.len, help, strlen(help)) != NULL,
               "retire: a counter keeps its HELP");
    rt_buf_free(&merged);
    rt_buf_free(&retired);
    rt_buf_free(&after);
    return unit_exit();
}
