/* worker_metrics.c - the worker's counters as Prometheus text (GET /metrics). */
#include <string.h>

#include "worker.h"

static int processor_labels(rt_buf *labels, const rt_processor *p)
{
    labels->len = 0;
    return rt_prom_label(labels, "processor", p->name);
}

int rt_worker_metrics(rt_worker *w, rt_buf *out)
{
    rt_buf labels = { 0 };
    int rc = -1;
    if (rt_prom_header(out, "eddy_build_info", "gauge", "Version of the running eddy.") ||
        rt_prom_sample(out, "eddy_build_info", "version=\"" EDDY_VERSION "\"", 1) ||
        rt_prom_header(out, "eddy_start_time_seconds", "gauge",
                       "Start time of the worker, seconds since the epoch.") ||
        rt_prom_sample(out, "eddy_start_time_seconds", NULL, w->started) ||
        rt_prom_header(out, "eddy_records_read_total", "counter",
                       "Records read from the source, valid or not.") ||
        rt_prom_sample(out, "eddy_records_read_total", NULL, (double)w->records) ||
        rt_prom_header(out, "eddy_events_in_total", "counter",
                       "Valid events by domain and type (past 1000 series: _other).") ||
        rt_prom_pairs(out, "eddy_events_in_total", "domain", "type", &w->in_by_type) ||
        rt_prom_header(out, "eddy_dead_letters_total", "counter",
                       "Records sent to the dead-letter sink, by reason.") ||
        rt_prom_pairs(out, "eddy_dead_letters_total", "reason", NULL, &w->dead_by_reason) ||
        rt_prom_header(out, "eddy_events_out_total", "counter", "Records written, by sink."))
        goto out;
    for (size_t i = 0; i < w->sinks.n; i++) {
        labels.len = 0;
        if (rt_prom_label(&labels, "sink", w->sinks.v[i].name) ||
            rt_buf_putc(&labels, '\0') ||
            rt_prom_sample(out, "eddy_events_out_total", labels.data,
                           (double)w->sinks.v[i].records))
            goto out;
    }
    if (rt_prom_header(out, "eddy_processor_events_total", "counter",
                       "Events handed to each processor.") < 0)
        goto out;
    for (size_t i = 0; i < w->nprocs; i++)
        if (processor_labels(&labels, &w->procs[i]) || rt_buf_putc(&labels, '\0') ||
            rt_prom_sample(out, "eddy_processor_events_total", labels.data,
                           (double)w->procs[i].processed))
            goto out;
    if (rt_prom_header(out, "eddy_processor_errors_total", "counter",
                       "Events whose processor call failed (dead-lettered).") < 0)
        goto out;
    for (size_t i = 0; i < w->nprocs; i++)
        if (processor_labels(&labels, &w->procs[i]) || rt_buf_putc(&labels, '\0') ||
            rt_prom_sample(out, "eddy_processor_errors_total", labels.data,
                           (double)w->procs[i].errors))
            goto out;
    if (rt_prom_header(out, "eddy_processing_duration_seconds", "histogram",
                       "Time of one process() call, by processor.") < 0)
        goto out;
    for (size_t i = 0; i < w->nprocs; i++)
        if (processor_labels(&labels, &w->procs[i]) || rt_buf_putc(&labels, '\0') ||
            rt_prom_histogram(out, "eddy_processing_duration_seconds", labels.data,
                              &w->procs[i].latency))
            goto out;
    rc = 0;
out:
    rt_buf_free(&labels);
    return rc;
}
