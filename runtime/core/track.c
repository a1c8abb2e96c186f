/* track.c - per-partition FIFO of in-flight events; see track.h for the rule. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "track.h"

void rt_track_init(rt_tracker *t, rt_track_store_fn store, void *arg)
{
    memset(t, 0, sizeof *t);
    t->store = store;
    t->arg = arg;
    t->e2e.bounds = rt_hist_bounds_e2e;
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

void rt_track_release(rt_tracker *t, rt_ticket *k)
{
    if (!k || --k->holds > 0)
        return;
    if (k->born_ms > 0) {
        /* A producer's clock ahead of ours is not a negative latency. */
        int64_t ms = rt_epoch_ms() - k->born_ms;
        rt_histogram_observe(&t->e2e, ms > 0 ? (double)ms / 1000 : 0);
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
        if (t->store)
            t->store(t->arg, p->topic, p->partition, next);
    }
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
