/* track.c - per-partition FIFO of in-flight events; see track.h for the rule. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "track.h"

const char *const rt_track_stage_names[RT_STAGES] = { "fetch", "process", "deliver" };

void rt_track_init(rt_tracker *t, rt_track_store_fn store, void *arg)
{
    memset(t, 0, sizeof *t);
    t->store = store;
    t->arg = arg;
    t->e2e.bounds = rt_hist_bounds_e2e;
    for (int i = 0; i < RT_STAGES; i++)
        t->stage[i].bounds = rt_hist_bounds_e2e;
}

rt_track_part *rt_track_part_get(rt_tracker *t, const char *topic, int32_t partition)
{
    for (rt_track_part *p = t->parts; p; p = p->link)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    rt_track_part *p = calloc(1, sizeof *p);
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->stored = -1;
    p->link = t->parts;
    t->parts = p;
    return p;
}

rt_ticket *rt_track_begin(rt_tracker *t, rt_track_part *p, int64_t offset, int64_t born_ms)
{
    rt_ticket *k = t->free;
    if (k)
        t->free = k->next;
    else if (!(k = malloc(sizeof *k)))
        return NULL;
    *k = (rt_ticket){ .part = p, .offset = offset, .born_ms = born_ms, .holds = 1 };
    if (born_ms > 0)
        k->read_s = rt_epoch_s();
    if (p->tail)
        p->tail->next = k;
    else
        p->head = k;
    p->tail = k;
    p->inflight++;
    t->inflight++;
    return k;
}

void rt_track_hold(rt_ticket *k)
{
    if (k)
        k->holds++;
}

/* A producer's clock ahead of ours is not a negative latency. */
static void observe(rt_histogram *h, double from, double to)
{
    rt_histogram_observe(h, to > from ? to - from : 0);
}

/* The last hold of `k` is released at `now` (epoch seconds; 0 without a born_ms). */
static void finish(rt_tracker *t, rt_ticket *k, double now)
{
    if (k->born_ms > 0) {
        double born = (double)k->born_ms / 1000;
        observe(&t->e2e, born, now);
        /* A ticket released before its processing ended (a failed run) has no stages. */
        if (k->processed_s > 0) {
            observe(&t->stage[RT_STAGE_FETCH], born, k->read_s);
            observe(&t->stage[RT_STAGE_PROCESS], k->read_s, k->processed_s);
            observe(&t->stage[RT_STAGE_DELIVER], k->processed_s, now);
        }
    }
    rt_track_part *p = k->part;
    int64_t next = -1;
    while (p->head && p->head->holds == 0) {
        rt_ticket *done = p->head;
        next = done->offset + 1;
        p->head = done->next;
        done->next = t->free;
        t->free = done;
        p->inflight--;
        t->inflight--;
    }
    if (!p->head)
        p->tail = NULL;
    if (next >= 0 && next > p->stored) {
        p->stored = next;
        if (t->store && !t->hold_stores)
            t->store(t->arg, p->topic, p->partition, next);
    }
}

void rt_track_release(rt_tracker *t, rt_ticket *k)
{
    if (!k || --k->holds > 0)
        return;
    finish(t, k, k->born_ms > 0 ? rt_epoch_s() : 0);
}

void rt_track_processed(rt_tracker *t, rt_ticket *k)
{
    if (!k)
        return;
    double now = k->born_ms > 0 ? rt_epoch_s() : 0;
    k->processed_s = now;
    if (--k->holds == 0)
        finish(t, k, now);
}

void rt_track_hold_stores(rt_tracker *t)
{
    t->hold_stores = 1;
}

int rt_track_marks(const rt_tracker *t, rt_track_mark **marks, size_t *n)
{
    size_t cap = 0, k = 0;
    rt_track_mark *m = NULL;
    for (const rt_track_part *p = t->parts; p; p = p->link)
        cap++;
    if (!(m = calloc(cap ? cap : 1, sizeof *m)))
        goto fail;
    for (const rt_track_part *p = t->parts; p; p = p->link) {
        if (p->stored < 0)
            continue;
        if (!(m[k].topic = strdup(p->topic)))
            goto fail;
        m[k].partition = p->partition;
        m[k++].next = p->stored;
    }
    *marks = m;
    *n = k;
    return 0;
fail:
    rt_track_marks_free(m, k);
    *marks = NULL;
    *n = 0;
    return -1;
}

void rt_track_store_marks(rt_tracker *t, rt_track_mark *marks, size_t n)
{
    for (size_t i = 0; i < n && t->store; i++)
        t->store(t->arg, marks[i].topic, marks[i].partition, marks[i].next);
    rt_track_marks_free(marks, n);
}

void rt_track_marks_free(rt_track_mark *marks, size_t n)
{
    for (size_t i = 0; marks && i < n; i++)
        free(marks[i].topic);
    free(marks);
}

int rt_track_part_restart(rt_tracker *t, const char *topic, int32_t partition)
{
    for (rt_track_part *p = t->parts; p; p = p->link) {
        if (p->partition != partition || strcmp(p->topic, topic) != 0)
            continue;
        if (p->inflight)
            return -1;
        p->stored = -1;
    }
    return 0;
}

int rt_track_part_drop(rt_tracker *t, rt_track_part *p)
{
    if (p->inflight)
        return -1;
    for (rt_track_part **pp = &t->parts; *pp; pp = &(*pp)->link)
        if (*pp == p) {
            *pp = p->link;
            break;
        }
    free(p->topic);
    free(p);
    return 0;
}

void rt_track_free(rt_tracker *t)
{
    while (t->parts) {
        rt_track_part *p = t->parts;
        t->parts = p->link;
        for (rt_ticket *k = p->head, *n; k; k = n) {
            n = k->next;
            free(k);
        }
        free(p->topic);
        free(p);
    }
    for (rt_ticket *k = t->free, *n; k; k = n) {
        n = k->next;
        free(k);
    }
    memset(t, 0, sizeof *t);
}
