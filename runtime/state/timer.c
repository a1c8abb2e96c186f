/* timer.c - timers as a keyed map plus one min-heap per time domain. Moving or
 * cancelling a timer leaves its heap entry behind; a popped entry counts only if the
 * map still holds that timer at that time. */
#include <stdlib.h>
#include <string.h>

#include "timer.h"

static int before(const rt_timer_due *a, const rt_timer_due *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static int push(rt_timers *ts, int d, rt_timer *t)
{
    if (ts->nheap[d] == ts->capheap[d]) {
        size_t cap = ts->capheap[d] ? ts->capheap[d] * 2 : 64;
        rt_timer_due *h = realloc(ts->heap[d], cap * sizeof *h);
        if (!h)
            return -1;
        ts->heap[d] = h;
        ts->capheap[d] = cap;
    }
    rt_timer_due *h = ts->heap[d], e = { t->at, t, ++ts->seq };
    size_t i = ts->nheap[d]++;
    while (i && before(&e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
    return 0;
}

static rt_timer_due pop(rt_timers *ts, int d)
{
    rt_timer_due *h = ts->heap[d], top = h[0], last = h[--ts->nheap[d]];
    size_t i = 0, n = ts->nheap[d];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&h[c + 1], &h[c]))
            c++;
        if (!before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

/* Heap entries point at timers; a replaced or cancelled timer is kept (marked by
 * at = INT64_MIN) until its entries are popped, so no entry ever dangles. */
static char *make_id(const char *key, size_t klen, const char *tag, size_t taglen)
{
    char *id = malloc(klen + taglen + 1);
    if (id) {
        memcpy(id, key, klen);
        id[klen] = '\0';
        memcpy(id + klen + 1, tag, taglen);
    }
    return id;
}

int rt_timers_set(rt_timers *ts, int32_t partition, const char *key, size_t klen,
                  const char *tag, size_t taglen, int64_t at, enum rt_time_domain domain)
{
    char *id = make_id(key, klen, tag, taglen);
    if (!id)
        return -1;
    size_t idlen = klen + 1 + taglen;
    rt_timer *t = malloc(sizeof *t);
    void **slot = t ? rt_keymap_put(&ts->map, partition, id, idlen) : NULL;
    if (!slot) {
        free(t);
        free(id);
        return -1;
    }
    *t = (rt_timer){ at, domain, partition, id, klen, idlen };
    if (push(ts, domain, t) < 0) {
        if (!*slot)
            rt_keymap_del(&ts->map, partition, id, idlen);
        free(t);
        free(id);
        return -1;
    }
    if (*slot)
        ((rt_timer *)*slot)->at = INT64_MIN;    /* replaced: its entry goes stale */
    *slot = t;
    rt_changes_note(ts->changes, RT_CHANGE_TIMER, 0, partition, id, idlen);
    return 0;
}

int rt_timers_cancel(rt_timers *ts, int32_t partition, const char *key, size_t klen,
                     const char *tag, size_t taglen)
{
    char *id = make_id(key, klen, tag, taglen);
    if (!id)
        return 0;
    rt_timer *t = rt_keymap_del(&ts->map, partition, id, klen + 1 + taglen);
    if (t)
        rt_changes_note(ts->changes, RT_CHANGE_TIMER, 0, partition, id, klen + 1 + taglen);
    free(id);
    if (!t)
        return 0;
    t->at = INT64_MIN;
    return 1;
}

rt_timer *rt_timers_pop_due(rt_timers *ts, enum rt_time_domain domain, int64_t now)
{
    while (ts->nheap[domain] && ts->heap[domain][0].at <= now) {
        rt_timer_due e = pop(ts, domain);
        if (e.t->at != e.at) {      /* replaced or cancelled */
            rt_timer_free(e.t);
            continue;
        }
        rt_keymap_del(&ts->map, e.t->partition, e.t->id, e.t->idlen);
        rt_changes_note(ts->changes, RT_CHANGE_TIMER, 0, e.t->partition, e.t->id, e.t->idlen);
        ts->fired++;
        return e.t;
    }
    return NULL;
}

int64_t rt_timers_next(rt_timers *ts, enum rt_time_domain domain)
{
    while (ts->nheap[domain] && ts->heap[domain][0].t->at != ts->heap[domain][0].at)
        rt_timer_free(pop(ts, domain).t);
    return ts->nheap[domain] ? ts->heap[domain][0].at : INT64_MAX;
}

void rt_timers_drop_partition(rt_timers *ts, int32_t partition)
{
    size_t i = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&ts->map, &i)))
        if (s->partition == partition) {
            rt_timer *t = rt_keymap_del(&ts->map, partition, s->key, s->len);
            t->at = INT64_MIN;      /* its heap entry goes stale and frees it */
        }
}

size_t rt_timers_count(const rt_timers *ts)
{
    return ts->map.n;
}

void rt_timer_free(rt_timer *t)
{
    if (t) {
        free(t->id);
        free(t);
    }
}

void rt_timers_free(rt_timers *ts)
{
    /* Every timer has exactly one live heap entry or is stale with one: free through
     * the heaps, which reach all of them. */
    for (int d = 0; d < 2; d++) {
        for (size_t i = 0; i < ts->nheap[d]; i++)
            rt_timer_free(ts->heap[d][i].t);
        free(ts->heap[d]);
    }
    rt_keymap_free(&ts->map);
    memset(ts, 0, sizeof *ts);
}
