/* worker_metrics.c - the worker's counters as Prometheus text (GET /metrics). */
#include <string.h>

#include "reload_int.h"
#include "worker_int.h"

/* Put `label="value"` into `labels` as a C string, for one sample or histogram. */
static int one_label(rt_buf *labels, const char *label, const char *value)
{
    labels->len = 0;
    return rt_prom_label(labels, label, value) || rt_buf_putc(labels, '\0') ? -1 : 0;
}

static int labelled(rt_buf *out, rt_buf *labels, const char *metric, const char *label,
                    const char *value, double v)
{
    return one_label(labels, label, value) || rt_prom_sample(out, metric, labels->data, v)
               ? -1 : 0;
}

static double reloads(const rt_processor *p) { return (double)p->reloads; }
static double reload_failures(const rt_processor *p) { return (double)p->reload_failures; }
static double quarantined(const rt_processor *p) { return p->quarantined; }
static double memory(const rt_processor *p) { return (double)p->mem_used; }

/* One family per row, one sample per processor. */
static const struct {
    const char *name, *type, *help;
    double (*value)(const rt_processor *p);
} per_processor[] = {
    { "eddy_processor_reloads_total", "counter", "Reloads that replaced the processor.",
      reloads },
    { "eddy_processor_reload_failures_total", "counter",
      "Reloads refused (compile, init, name, windows or route conflict); the old version stayed.",
      reload_failures },
    { "eddy_processor_quarantined", "gauge",
      "1 while the processor is quarantined after processor.max.consecutive.errors.", quarantined },
    { "eddy_processor_memory_bytes", "gauge", "Memory held by the processor's Lua state.",
      memory },
};

/* What processors declare (ctx.metric): eddy_<processor>_<name>{processor="...", ...}. */
static int custom_metrics(rt_worker *w, rt_buf *out, rt_buf *labels)
{
    rt_buf family = { 0 };
    int rc = -1;
    for (size_t i = 0; i < w->nprocs; i++) {
        const rt_processor *p = w->procs[i];
        for (size_t m = 0; m < p->nmetric_defs; m++) {
            const rt_metric_def *d = &p->metric_defs[m];
            size_t nlen = strlen(d->name), k = 0;
            family.len = 0;
            if (rt_buf_append(&family, "eddy_", 5) || rt_buf_append(&family, p->name,
                                                                   strlen(p->name)) ||
                rt_buf_putc(&family, '_') || rt_buf_append(&family, d->name, nlen + 1) ||
                rt_prom_header(out, family.data, d->gauge ? "gauge" : "counter", d->help))
                goto out;
            for (rt_keymap_slot *s; p->series && (s = rt_keymap_next(&p->series->map, &k));) {
                if (s->len <= nlen || memcmp(s->key, d->name, nlen + 1))
                    continue;
                labels->len = 0;
                if (rt_prom_label(labels, "processor", p->name) ||
                    (s->len > nlen + 1 && (rt_buf_putc(labels, ',') ||
                                           rt_buf_append(labels, s->key + nlen + 1,
                                                         s->len - nlen - 1))) ||
                    rt_buf_putc(labels, '\0') ||
                    rt_prom_sample(out, family.data, labels->data, *(double *)s->value))
                    goto out;
            }
        }
    }
    rc = 0;
out:
    rt_buf_free(&family);
    return rc;
}

/* The sandbox and reload families: per processor, limits hit, refused files, rules. */
static int processor_metrics(rt_worker *w, rt_buf *out, rt_buf *labels)
{
    for (size_t f = 0; f < sizeof per_processor / sizeof *per_processor; f++) {
        if (rt_prom_header(out, per_processor[f].name, per_processor[f].type,
                           per_processor[f].help))
            return -1;
        for (size_t i = 0; i < w->nprocs; i++)
            if (labelled(out, labels, per_processor[f].name, "processor", w->procs[i]->name,
                         per_processor[f].value(w->procs[i])))
                return -1;
        /* A file that never loaded is counted under its file name. */
        for (size_t i = 0; f == 1 && w->reload && i < w->reload->nrefused; i++) {
            const char *path = w->reload->refused[i].path, *base = strrchr(path, '/');
            if (labelled(out, labels, per_processor[f].name, "processor", base ? base + 1 : path,
                         (double)w->reload->refused[i].failures))
                return -1;
        }
    }
    if (rt_prom_header(out, "eddy_processor_limit_hits_total", "counter",
                       "Calls stopped by a sandbox limit (timeout, memory, too_many_emits, output_too_large)."))
        return -1;
    for (size_t i = 0; i < w->nprocs; i++)
        for (int l = RT_LIMIT_NONE + 1; l < RT_NLIMITS; l++) {
            labels->len = 0;
            if (rt_prom_label(labels, "processor", w->procs[i]->name) ||
                rt_prom_label(labels, "limit", rt_limit_names[l]) ||
                rt_buf_putc(labels, '\0') ||
                rt_prom_sample(out, "eddy_processor_limit_hits_total", labels->data,
                               (double)w->procs[i]->limit_hits[l]))
                return -1;
        }
    if (rt_prom_header(out, "eddy_rules_reloads_total", "counter",
                       "Changes of a rules file taken in."))
        return -1;
    for (size_t i = 0; i < w->rules.n; i++)
        if (labelled(out, labels, "eddy_rules_reloads_total", "rules", w->rules.v[i].name,
                     (double)w->rules.v[i].reloads))
            return -1;
    if (rt_prom_header(out, "eddy_rules_reload_failures_total", "counter",
                       "Changes of a rules file refused (it did not parse); the old rules stayed."))
        return -1;
    for (size_t i = 0; i < w->rules.n; i++)
        if (labelled(out, labels, "eddy_rules_reload_failures_total", "rules",
                     w->rules.v[i].name, (double)w->rules.v[i].failures))
            return -1;
    return 0;
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
    for (size_t i = 0; i < w->sinks.n; i++)
        if (labelled(out, &labels, "eddy_events_out_total", "sink", w->sinks.v[i].name,
                     (double)w->sinks.v[i].records))
            goto out;
    if (rt_prom_header(out, "eddy_processor_events_total", "counter",
                       "Events handed to each processor."))
        goto out;
    for (size_t i = 0; i < w->nprocs; i++)
        if (labelled(out, &labels, "eddy_processor_events_total", "processor",
                     w->procs[i]->name, (double)w->procs[i]->processed))
            goto out;
    if (rt_prom_header(out, "eddy_processor_errors_total", "counter",
                       "Events whose processor call failed (dead-lettered)."))
        goto out;
    for (size_t i = 0; i < w->nprocs; i++)
        if (labelled(out, &labels, "eddy_processor_errors_total", "processor",
                     w->procs[i]->name, (double)w->procs[i]->errors))
            goto out;
    if (rt_prom_header(out, "eddy_processing_duration_seconds", "histogram",
                       "Time of one process() call, by processor."))
        goto out;
    for (size_t i = 0; i < w->nprocs; i++)
        if (one_label(&labels, "processor", w->procs[i]->name) ||
            rt_prom_histogram(out, "eddy_processing_duration_seconds", labels.data,
                              &w->procs[i]->latency))
            goto out;
    /* Kafka Streams' record-e2e-latency: a file source's lines carry no timestamp. */
    if (rt_source_has(&w->source, RT_SOURCE_COMMITS)) {
        if (rt_prom_header(out, "eddy_record_e2e_latency_seconds", "histogram",
                           "From an input record's Kafka timestamp until it is done (every "
                           "output acknowledged, or produced under exactly_once).") ||
            rt_prom_histogram(out, "eddy_record_e2e_latency_seconds", NULL, &w->tracker.e2e) ||
            rt_prom_header(out, "eddy_record_stage_latency_seconds", "histogram",
                           "eddy_record_e2e_latency_seconds by stage: fetch (until eddy took "
                           "the record), process (until its outputs went to the sinks), "
                           "deliver (until the last was acknowledged)."))
            goto out;
        for (int i = 0; i < RT_STAGES; i++)
            if (one_label(&labels, "stage", rt_track_stage_names[i]) ||
                rt_prom_histogram(out, "eddy_record_stage_latency_seconds", labels.data,
                                  &w->tracker.stage[i]))
                goto out;
    }
    if (processor_metrics(w, out, &labels) < 0 || custom_metrics(w, out, &labels) < 0)
        goto out;
    if (rt_prom_header(out, "eddy_events_waiting", "gauge",
                       "Events not finished because they, or events before them, wait for a lookup.") ||
        rt_prom_sample(out, "eddy_events_waiting", NULL, (double)w->queued) ||
        rt_lookups_metrics(&w->lookups, out) < 0)
        goto out;
    if (rt_source_metrics(&w->source, out) < 0)
        goto out;
    if (rt_sinks_metrics(&w->sinks, out) < 0 || rt_worker_keyed_metrics(w, out) < 0 ||
        rt_worker_checkpoint_metrics(w, out) < 0 ||
        rt_worker_changelog_metrics(w, out) < 0 ||
        rt_worker_repartition_metrics(w, out) < 0 || rt_worker_txn_metrics(w, out) < 0)
        goto out;
    rc = 0;
out:
    rt_buf_free(&labels);
    return rc;
}
