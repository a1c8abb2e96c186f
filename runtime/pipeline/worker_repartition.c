/* worker_repartition.c - keyed processing whatever the input's partitioning, as Kafka
 * Streams' repartition step.
 *
 * State, windows and timers are kept per input partition. A processor that declares
 * its key (`key = "payload.merchantId"` in its table) needs every event of one key in
 * one partition. Unless the input says it is keyed that way (source.keyed.by), its
 * events take one hop first: read from the input, they are written as they are to
 * `<kafka.group.id>-<processor>-repartition`, keyed by the key's value, so that the
 * producer's partitioner puts one key in one partition. The worker reads that topic
 * too (same group, same partition count as the input) and runs the processor on what
 * comes back. The hop is an output of the input event: it holds the event's ticket
 * (at_least_once) or is in the transaction with its offset (exactly_once), so nothing
 * is lost or, under exactly_once, doubled.
 *
 * State is kept by partition number across topics, so a member must be given the same
 * numbers of the input and of the repartition topics: the range assignor does that
 * (the source's default here); another strategy set by the user is refused. */
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "worker_int.h"

struct rt_rekey {
    size_t slot;            /* the processor's */
    char *proc, *key, *topic;
    rt_sink *sink;          /* eddy's own Kafka sink for the topic */
    uint64_t written;
};

/* Whether processor p's events must be repartitioned: a Kafka source not keyed by
 * p's key. */
static int needs_rekey(const rt_worker *w, const rt_processor *p)
{
    const char *by = rt_config_get(w->cfg, "source.keyed.by");
    return p->key && rt_source_kind_has(w->cfg, RT_SOURCE_COMMITS) &&
           !(by && strcmp(by, p->key) == 0);
}

static int add_rekey(rt_worker *w, const rt_processor *p, int parts, char *err, size_t errlen)
{
    const char *group = rt_config_get(w->cfg, "kafka.group.id");
    char why[600];
    rt_rekey *v = realloc(w->rekey, (w->nrekey + 1) * sizeof *v);
    if (!v)
        goto oom;
    w->rekey = v;
    rt_rekey *r = &v[w->nrekey];
    *r = (rt_rekey){ .slot = p->slot };
    size_t len = strlen(group ? group : "eddy") + strlen(p->name) + sizeof "--repartition";
    if (!(r->proc = strdup(p->name)) || !(r->key = strdup(p->key)) ||
        !(r->topic = malloc(len))) {
        free(r->proc);
        free(r->key);
        goto oom;
    }
    w->nrekey++;    /* freed with the worker from here on */
    snprintf(r->topic, len, "%s-%s-repartition", group ? group : "eddy", p->name);
    if (!(r->sink = rt_kafka_internal_sink(&w->sinks, w->cfg, r->topic, r->topic, why,
                                           sizeof why)) ||
        rt_kafka_internal_topic(&w->sinks, r->topic, parts, 0, 0, 10000, why, sizeof why) < 0) {
        snprintf(err, errlen, "processor %s (key=%s): repartition topic: %s", p->name, p->key,
                 why);
        return -1;
    }
    for (size_t i = 0; i < p->nwindows; i++)
        if (p->window_defs[i].key && strcmp(p->window_defs[i].key, p->key))
            rt_warn("processor %s: window %s is keyed by %s, the processor by %s: the "
                    "window's counts of one %s are split between partitions",
                    p->name, p->window_defs[i].name, p->window_defs[i].key, p->key,
                    p->window_defs[i].key);
    rt_info("processor %s: events are repartitioned by %s through %s (%d partitions)",
            p->name, p->key, r->topic, parts);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int rt_worker_repartition_init(rt_worker *w, char *err, size_t errlen)
{
    char where[300];
    const char *strategy = rt_config_get(w->cfg, "kafka.partition.assignment.strategy");
    for (size_t i = 0; strategy && strcmp(strategy, "range") && i < w->nprocs; i++) {
        const rt_processor *p = w->procs[i];
        if (!needs_rekey(w, p))
            continue;
        snprintf(err, errlen, "%s: kafka.partition.assignment.strategy: processor %s declares "
                 "key=%s, so its events are repartitioned, and a member must hold the same "
                 "partition numbers of the input and the repartition topic: use range (the "
                 "default then), or set source.keyed.by=%s if the input is keyed by it",
                 rt_config_where(w->cfg, "kafka.partition.assignment.strategy", where,
                                 sizeof where), p->name, p->key, p->key);
        return -1;
    }
    return 0;
}

int rt_worker_repartition_start(rt_worker *w, char *err, size_t errlen)
{
    char why[512];
    int parts = -1;
    for (size_t i = 0; i < w->nprocs; i++) {
        const rt_processor *p = w->procs[i];
        if (!needs_rekey(w, p))
            continue;
        if (parts < 0 && (parts = rt_worker_input_partitions(w, why, sizeof why)) < 0) {
            snprintf(err, errlen, "processor %s (key=%s): repartition topic: %s", p->name,
                     p->key, why);
            return -1;
        }
        if (add_rekey(w, p, parts, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int rt_worker_repartition_topics(rt_worker *w, rt_buf *out)
{
    for (size_t i = 0; i < w->nrekey; i++)
        if ((i && rt_buf_putc(out, ',') < 0) ||
            rt_buf_append(out, w->rekey[i].topic, strlen(w->rekey[i].topic)) < 0)
            return -1;
    return rt_buf_putc(out, '\0');
}

rt_rekey *rt_worker_rekey_for(rt_worker *w, size_t slot, const char *topic)
{
    for (size_t i = 0; i < w->nrekey; i++)
        if (w->rekey[i].slot == slot)
            return topic && strcmp(topic, w->rekey[i].topic) == 0 ? NULL : &w->rekey[i];
    return NULL;
}

int rt_worker_rekey(rt_rekey *r, rt_job *j)
{
    char buf[64];
    size_t klen = 0, off = j->out.bytes.len;
    const char *key = rt_event_key(&j->ev, r->key, buf, sizeof buf, &klen);
    if (!key) {
        rt_reject_set(&j->why, RT_REASON_MISSING_FIELD, "processor %s is keyed by %s and "
                      "the event has no string, number or boolean there to repartition it by",
                      r->proc, r->key);
        return -1;
    }
    if (rt_buf_append(&j->out.bytes, j->ev.raw, j->ev.raw_len) < 0 ||
        rt_buf_append(&j->out.bytes, key, klen) < 0 ||
        rt_outbox_add(&j->out, r->sink, off, off + j->ev.raw_len) < 0) {
        rt_reject_set(&j->why, RT_REASON_PROCESSOR_ERROR, "out of memory repartitioning "
                      "for processor %s", r->proc);
        return -1;
    }
    r->written++;
    return 0;
}

int rt_worker_repartition_check(rt_worker *w, const rt_processor *old, const rt_processor *cand,
                                char *err, size_t errlen)
{
    const char *was = old ? old->key : NULL;
    if (!rt_source_kind_has(w->cfg, RT_SOURCE_COMMITS) ||
        (was && cand->key && strcmp(was, cand->key) == 0) || (!was && !cand->key))
        return 0;
    if (old)
        snprintf(err, errlen, "its key changed from %s to %s: its events are repartitioned "
                 "by the key it had at start; restart eddy to change it",
                 was ? was : "(none)", cand->key ? cand->key : "(none)");
    else if (needs_rekey(w, cand))
        snprintf(err, errlen, "it declares key=%s and its repartition topic is set up at "
                 "start; restart eddy to add it", cand->key);
    else
        return 0;
    return -1;
}

int rt_worker_repartition_metrics(rt_worker *w, rt_buf *out)
{
    rt_buf lb = { 0 };
    int rc = -1;
    if (!w->nrekey)
        return 0;
    if (rt_prom_header(out, "eddy_repartition_records_total", "counter",
                       "Events written to the processor's repartition topic, keyed by its "
                       "key (they are processed when read back).") < 0)
        goto out;
    for (size_t i = 0; i < w->nrekey; i++)
        if (rt_prom_sample1(out, &lb, "eddy_repartition_records_total", "processor",
                            w->rekey[i].proc, (double)w->rekey[i].written))
            goto out;
    rc = 0;
out:
    rt_buf_free(&lb);
    return rc;
}

void rt_worker_repartition_free(rt_worker *w)
{
    for (size_t i = 0; i < w->nrekey; i++) {
        free(w->rekey[i].proc);
        free(w->rekey[i].key);
        free(w->rekey[i].topic);
    }
    free(w->rekey);
    w->rekey = NULL;
    w->nrekey = 0;
}
