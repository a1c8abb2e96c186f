/* watermark.c - per-partition watermarks as Flink's bounded out-of-orderness with
 * idleness: a partition that has sent nothing for idle_timeout_ms no longer holds the
 * others back, and counts again with its next event. An assigned partition with no
 * event yet holds the watermark at its minimum, as in Flink's Kafka source. */
#include <stdlib.h>
#include <string.h>

#include "watermark.h"

void rt_watermark_init(rt_watermark *wm, int64_t out_of_orderness_ms, int64_t idle_timeout_ms)
{
    memset(wm, 0, sizeof *wm);
    wm->out_of_orderness_ms = out_of_orderness_ms;
    wm->idle_timeout_ms = idle_timeout_ms;
    wm->current = INT64_MIN;
}

static int same_topic(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The entry of (topic, partition), added unseen when new; NULL when out of memory. */
static rt_wm_part *part_get(rt_watermark *wm, const char *topic, int32_t partition,
                            int64_t now_ms)
{
    rt_wm_part *p = NULL;
    for (size_t i = 0; i < wm->n && !p; i++)
        if (wm->v[i].partition == partition && same_topic(wm->v[i].topic, topic))
            p = &wm->v[i];
    if (!p) {
        if (wm->n == wm->cap) {
            size_t cap = wm->cap ? wm->cap * 2 : 8;
            rt_wm_part *v = realloc(wm->v, cap * sizeof *v);
            if (!v)
                return NULL;
            wm->v = v;
            wm->cap = cap;
        }
        char *t = topic ? strdup(topic) : NULL;
        if (topic && !t)
            return NULL;
        p = &wm->v[wm->n++];
        *p = (rt_wm_part){ t, partition, 0, 0, now_ms };
    }
    return p;
}

int rt_watermark_assign(rt_watermark *wm, const char *topic, int32_t partition, int64_t now_ms)
{
    return part_get(wm, topic, partition, now_ms) ? 0 : -1;
}

int rt_watermark_observe(rt_watermark *wm, const char *topic, int32_t partition, int64_t ts,
                         int64_t now_ms)
{
    rt_wm_part *p = part_get(wm, topic, partition, now_ms);
    if (!p)
        return -1;
    if (!p->seen || ts > p->max_ts)
        p->max_ts = ts;
    p->seen = 1;
    p->seen_ms = now_ms;
    return 0;
}

int64_t rt_watermark_compute(rt_watermark *wm, int64_t now_ms)
{
    int64_t low = INT64_MAX;
    int any = 0;
    for (size_t i = 0; i < wm->n; i++) {
        const rt_wm_part *p = &wm->v[i];
        if (wm->idle_timeout_ms > 0 && now_ms - p->seen_ms >= wm->idle_timeout_ms)
            continue;
        any = 1;
        int64_t v = p->seen ? p->max_ts - wm->out_of_orderness_ms : INT64_MIN;
        if (v < low)
            low = v;
    }
    if (any && low > wm->current)
        wm->current = low;
    return wm->current;
}

void rt_watermark_free(rt_watermark *wm)
{
    for (size_t i = 0; i < wm->n; i++)
        free(wm->v[i].topic);
    free(wm->v);
    memset(wm, 0, sizeof *wm);
}
