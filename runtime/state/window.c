/* window.c - keyed event-time windows. Each key of each definition holds its open
 * panes (window instances); a queue by time orders the panes by the watermark they
 * wait for: their end (fire) and then their end plus the allowed lateness (clean up).
 * A pane that changes its due time (a session that grew) leaves a stale entry behind,
 * recognised when run by its start and time, so nothing is searched per event.
 *
 * A sliced definition keeps no panes, as Flink's slicing window operator: a key holds
 * its slices, and one due entry for the next time they need (a window's end, or the
 * end of a slice's last window plus the lateness, when the slice goes); a window's
 * count and accumulator are read off its slices when it fires.
 *
 * Semantics follow Flink: a window [start, end) fires when the watermark reaches its
 * end (Flink: watermark >= end - 1 with its watermark one below ours); an event for a
 * fired window within the lateness is added and fires the window again; one past the
 * lateness of every window it belongs to is late (side output). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "state.h"
#include "window.h"

int rt_windows_init(rt_windows *ws, rt_window_def *defs, size_t ndefs)
{
    memset(ws, 0, sizeof *ws);
    ws->defs = defs;
    ws->ndefs = ndefs;
    ws->watermark = RT_WATERMARK_MIN;
    ws->keys = calloc(ndefs ? ndefs : 1, sizeof *ws->keys);
    return ws->keys ? 0 : -1;
}

/* ---- what is due, by time ---- */

/* The entries due at one time. Queued in any order, sorted (before()) when the time
 * comes: one sort of a slide's 100,000 keys instead of a heap pop each, whose levels
 * missed the cache. A time can have more than one bucket (one fell out of `recent`);
 * they are put together before the sort. */
struct rt_wbucket {
    int64_t time;
    rt_wdue *v;             /* &one, or malloc'd past one entry */
    size_t n, cap;
    rt_wdue one;            /* a session's time mostly has one entry: no second malloc */
};

static int before(const rt_wdue *a, const rt_wdue *b)
{
    if (a->time != b->time)
        return a->time < b->time;
    if (a->order != b->order)
        return a->order < b->order;
    if (a->k->def != b->k->def)
        return a->k->def < b->k->def;
    size_t n = a->k->klen < b->k->klen ? a->k->klen : b->k->klen;
    int c = memcmp(a->k->key, b->k->key, n);
    if (c || a->k->klen != b->k->klen)
        return c ? c < 0 : a->k->klen < b->k->klen;
    if (a->k->partition != b->k->partition)
        return a->k->partition < b->k->partition;
    return a->start < b->start;
}

static int due_cmp(const void *a, const void *b)
{
    return before(a, b) ? -1 : before(b, a);
}

#define SORT_RUN 16

/* Sort v[0, n) by before() with tmp as room for n more: a merge sort (runs of SORT_RUN
 * by insertion first) whose comparison is inlined. glibc's qsort calls due_cmp through
 * a pointer, and due_cmp calls before() twice for most pairs: this took 2.9% off the
 * geofence job's instructions. */
static void due_sort(rt_wdue *v, rt_wdue *tmp, size_t n)
{
    for (size_t lo = 0; lo < n; lo += SORT_RUN) {
        size_t hi = n - lo > SORT_RUN ? lo + SORT_RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            rt_wdue x = v[i];
            size_t j = i;
            for (; j > lo && before(&x, &v[j - 1]); j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
    }
    rt_wdue *src = v, *dst = tmp;
    for (size_t w = SORT_RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = n - lo > w ? lo + w : n, hi = n - mid > w ? mid + w : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)   /* the left one on a tie: stable */
                dst[o++] = before(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        rt_wdue *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
}

/* `start` names the pane the entry is for; SLICES_DUE: the key's slices. */
#define SLICES_DUE INT64_MIN
#define NOT_DUE INT64_MIN       /* rt_wkey.slices_due: no entry queued */

/* The definition in the top byte, then the key's first 7 bytes, zero padded: equal
 * values leave the order to the full comparison in before(). Definitions past 254
 * all get 255 and no key bytes, so their order is the full comparison's. */
static uint64_t order_of(const rt_wkey *k)
{
    if (k->def >= 255)
        return (uint64_t)255 << 56;
    uint64_t o = (uint64_t)k->def << 56;
    for (size_t i = 0; i < 7 && i < k->klen; i++)
        o |= (uint64_t)(unsigned char)k->key[i] << (48 - 8 * i);
    return o;
}

/* Times are multiples of a slide: Fibonacci hashing spreads them over the slots. */
static size_t recent_slot(int64_t time)
{
    return (size_t)((((uint64_t)time * 0x9E3779B97F4A7C15ull) >> 32) % RT_WBUCKET_RECENT);
}

/* The heap of buckets, by time. */
static void buckets_up(rt_windows *ws, size_t i)
{
    rt_wbucket *b = ws->due[i];
    while (i && b->time < ws->due[(i - 1) / 2]->time) {
        ws->due[i] = ws->due[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    ws->due[i] = b;
}

static rt_wbucket *buckets_pop(rt_windows *ws)
{
    rt_wbucket *top = ws->due[0], *last = ws->due[--ws->ndue];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= ws->ndue)
            break;
        if (c + 1 < ws->ndue && ws->due[c + 1]->time < ws->due[c]->time)
            c++;
        if (last->time <= ws->due[c]->time)
            break;
        ws->due[i] = ws->due[c];
        i = c;
    }
    if (ws->ndue)
        ws->due[i] = last;
    size_t r = recent_slot(top->time);
    if (ws->recent[r] == top)
        ws->recent[r] = NULL;
    return top;
}

static void bucket_free(rt_wbucket *b)
{
    if (b && b->v != &b->one)
        free(b->v);
    free(b);
}

/* Room for `need` entries in b; -1 when out of memory (b unchanged). */
static int bucket_reserve(rt_wbucket *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap * 2 > need ? b->cap * 2 : need;
    rt_wdue *v = realloc(b->v == &b->one ? NULL : b->v, cap * sizeof *v);
    if (!v)
        return -1;
    if (b->v == &b->one)
        v[0] = b->one;
    b->v = v;
    b->cap = cap;
    return 0;
}

/* The bucket of `time` entries go to: the recent one, or a new one. */
static rt_wbucket *bucket_for(rt_windows *ws, int64_t time)
{
    size_t r = recent_slot(time);
    if (ws->recent[r] && ws->recent[r]->time == time)
        return ws->recent[r];
    if (ws->ndue == ws->capdue) {
        size_t cap = ws->capdue ? ws->capdue * 2 : 16;
        rt_wbucket **v = realloc(ws->due, cap * sizeof *v);
        if (!v)
            return NULL;
        ws->due = v;
        ws->capdue = cap;
    }
    rt_wbucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->time = time;
    b->v = &b->one;
    b->cap = 1;
    ws->due[ws->ndue++] = b;
    buckets_up(ws, ws->ndue - 1);
    ws->recent[r] = b;
    return b;
}

static int due_push_at(rt_windows *ws, rt_wkey *k, int64_t time, int64_t start)
{
    rt_wbucket *b = bucket_for(ws, time);
    if (!b)
        return -1;
    if (bucket_reserve(b, b->n + 1) < 0)
        return -1;
    b->v[b->n++] = (rt_wdue){ time, order_of(k), k, start };
    k->queued++;
    return 0;
}

static int due_push(rt_windows *ws, rt_wkey *k, const rt_pane *p)
{
    return due_push_at(ws, k, p->due, p->start);
}

/* Take the earliest time's entries out of the queue, in order. Out of memory, another
 * bucket of the same time is left for the next take: its entries still fire, after
 * this one's. */
static rt_wbucket *due_take(rt_windows *ws)
{
    rt_wbucket *b = buckets_pop(ws);
    while (ws->ndue && ws->due[0]->time == b->time) {
        rt_wbucket *o = ws->due[0];
        if (bucket_reserve(b, b->n + o->n) < 0)
            break;
        buckets_pop(ws);
        memcpy(b->v + b->n, o->v, o->n * sizeof *o->v);
        b->n += o->n;
        bucket_free(o);
    }
    /* The merge's room is the bucket's own; without it, qsort (which finds its own). */
    if (b->n <= SORT_RUN)
        due_sort(b->v, NULL, b->n);
    else if (bucket_reserve(b, 2 * b->n) == 0)
        due_sort(b->v, b->v + b->n, b->n);
    else
        qsort(b->v, b->n, sizeof *b->v, due_cmp);
    return b;
}

/* ---- panes ---- */

/* The window (slice 0) or the slice (1) of key k that starts at `start`. */
static rt_pane *pane_find(const rt_wkey *k, int64_t start, int slice)
{
    rt_pane *v = slice ? k->slices : k->panes;
    size_t n = slice ? k->nslices : k->n;
    for (size_t i = n; i--;)    /* the newest are last */
        if (v[i].start == start)
            return &v[i];
    return NULL;
}

/* Windows are appended; slices are kept in start order, so that a window merges its
 * slices in time order in one pass (they mostly come in order: the walk from the end
 * is short). */
static rt_pane *pane_new(rt_windows *ws, rt_wkey *k, int64_t start, int64_t end, int slice)
{
    rt_pane **v = slice ? &k->slices : &k->panes;
    size_t *n = slice ? &k->nslices : &k->n, *cap = slice ? &k->capslices : &k->cap;
    if (*n == *cap) {
        /* A key of a sliding definition soon holds the size / slide windows its first
         * event joins, and mostly no more: start there, not at a power of two (6
         * windows of a 30 s window sliding by 5 s would take room for 8). */
        const rt_window_def *d = &ws->defs[k->def];
        int64_t step = d->kind == RT_WINDOW_SLIDING ? d->slide : d->size;
        size_t first = !slice && d->kind != RT_WINDOW_SESSION && step > 0
                           ? (size_t)((d->size + step - 1) / step) : 4;
        size_t c = *cap ? *cap * 2 : first;
        rt_pane *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return NULL;
        *v = nv;
        *cap = c;
    }
    size_t at = *n;
    while (slice && at && (*v)[at - 1].start > start)
        at--;
    memmove(&(*v)[at + 1], &(*v)[at], (*n - at) * sizeof **v);
    (*n)++;
    rt_pane *p = &(*v)[at];
    memset(p, 0, sizeof *p);
    p->start = start;
    p->end = end;
    p->due = end;
    p->slice = slice;
    if (slice)
        ws->slices++;
    else
        ws->panes++;
    return p;
}

/* A window's place is taken by the last one; the slices after a slice move down. */
static void pane_drop(rt_windows *ws, rt_wkey *k, rt_pane *p)
{
    free(p->acc);
    if (p->slice) {
        ws->slices--;
        k->nslices--;
        memmove(p, p + 1, (size_t)(&k->slices[k->nslices] - p) * sizeof *p);
    } else {
        ws->panes--;
        *p = k->panes[--k->n];
    }
}

/* Everything of key k goes; a due entry left behind is stale. */
static void panes_drop_all(rt_windows *ws, rt_wkey *k)
{
    while (k->n)
        pane_drop(ws, k, &k->panes[0]);
    while (k->nslices)
        pane_drop(ws, k, &k->slices[k->nslices - 1]);
    k->fired_to = INT64_MIN;
    k->slices_due = NOT_DUE;
}

static void note(rt_windows *ws, const rt_wkey *k)
{
    rt_changes_note(ws->changes, RT_CHANGE_WINDOW, (uint32_t)k->def, k->partition, k->key,
                    k->klen);
}

/* A key with no panes and no due entry left is forgotten. */
static void key_maybe_free(rt_windows *ws, rt_wkey *k)
{
    if (k->n || k->nslices || k->queued)
        return;
    rt_keymap_del(&ws->keys[k->def], k->partition, k->key, k->klen);    /* frees k->key */
    free(k->panes);
    free(k->slices);
    free(k);
}

static rt_wkey *key_get(rt_windows *ws, size_t def, int32_t partition, const char *key,
                        size_t klen)
{
    const char *own;
    void **slot = rt_keymap_put_own(&ws->keys[def], partition, key, klen, &own);
    if (!slot)
        return NULL;
    if (*slot)
        return *slot;
    rt_wkey *k = calloc(1, sizeof *k);
    if (!k) {
        rt_keymap_del(&ws->keys[def], partition, key, klen);
        return NULL;
    }
    k->key = own;
    k->klen = klen;
    k->partition = partition;
    k->def = def;
    k->fired_to = INT64_MIN;
    k->slices_due = NOT_DUE;
    *slot = k;
    rt_state_split_check(&ws->keys[def], &ws->keys_split, "window", ws->defs[def].name,
                         partition, key, klen);
    return k;
}

/* Count the event, and aggregate the number at the window's field (none: just count). */
static void accumulate(rt_pane *p, const rt_event *ev, const char *field)
{
    const rt_jtape *t = &ev->tape;
    long at = field && ev->decoded ? rt_jtape_at(t, 0, field) : -1;
    p->count++;
    if (at < 0 || (t->v[at].type != RT_JINT && t->v[at].type != RT_JREAL))
        return;
    double v = t->v[at].type == RT_JINT ? (double)t->v[at].num.i : t->v[at].num.d;
    p->min = p->n && p->min < v ? p->min : v;
    p->max = p->n && p->max > v ? p->max : v;
    p->sum += v;
    p->n++;
}

static int fire(rt_windows *ws, const rt_window_def *d, rt_wkey *k, rt_pane *p,
                const rt_window_calls *calls)
{
    if (p->fired)
        ws->refired++;
    ws->fired++;
    p->fired++;
    return calls->fire(calls->arg, d, k, p);
}

/* The event joins panes[0..n) of key k: the Lua aggregation first, for all of them in
 * one call (all or none), or for its one slice of a sliced definition; then the
 * counts; a pane the watermark already passed fires again (allowed lateness). -1 only
 * when the aggregation failed, before any change: a failing on_window is the
 * callback's to report, as in rt_windows_advance. */
static int add_to(rt_windows *ws, const rt_window_def *d, rt_wkey *k, rt_pane *const *panes,
                  size_t n, rt_pane *slice, const rt_event *ev, const rt_window_calls *calls)
{
    if (d->agg == RT_AGG_LUA && calls->add(calls->arg, d, ev, slice ? &slice : panes,
                                           slice ? 1 : n) < 0)
        return -1;
    if (slice)
        accumulate(slice, ev, NULL);
    for (size_t i = 0; i < n; i++)
        accumulate(panes[i], ev, d->field);
    for (size_t i = 0; i < n; i++)
        if (ws->watermark >= panes[i]->end)
            fire(ws, d, k, panes[i], calls);
    return 0;
}

/* Sessions: [ts, ts + gap) absorbs every open session it touches. */
static int add_session(rt_windows *ws, const rt_window_def *d, rt_wkey *k, int64_t ts,
                       const rt_event *ev, const rt_window_calls *calls, int *joined)
{
    int64_t start = ts, end = ts + d->gap;
    int64_t was_start = 0, was_due = 0;
    rt_pane *into = NULL;
    for (size_t i = 0; i < k->n;) {
        rt_pane *p = &k->panes[i];
        if (p->start > end || p->end < start) {
            i++;
            continue;
        }
        if (!into) {
            into = p;
            was_start = p->start;
            was_due = p->due;
            i++;
            continue;
        }
        into->count += p->count;
        into->sum += p->sum;
        into->min = into->n && (!p->n || into->min < p->min) ? into->min : p->min;
        into->max = into->n && (!p->n || into->max > p->max) ? into->max : p->max;
        into->n += p->n;
        into->start = into->start < p->start ? into->start : p->start;
        into->end = into->end > p->end ? into->end : p->end;
        into->fired = into->fired > p->fired ? into->fired : p->fired;
        if (d->agg == RT_AGG_LUA && calls->merge(calls->arg, d, into, p) < 0)
            return -1;
        /* `into` was found first, so it sits before slot i and does not move; the last
         * pane moves into slot i, which is looked at next. */
        pane_drop(ws, k, p);
    }
    if (!into) {
        if (ws->watermark >= end + d->lateness)
            return 0;
        if (!(into = pane_new(ws, k, start, end, 0)))
            return -1;
        was_due = INT64_MIN;    /* no due entry yet */
    } else {
        into->start = into->start < start ? into->start : start;
        into->end = into->end > end ? into->end : end;
    }
    *joined = 1;
    into->due = ws->watermark >= into->end ? into->end + d->lateness : into->end;
    if (add_to(ws, d, k, &into, 1, NULL, ev, calls) < 0)
        return -1;
    /* The session's due entry still holds unless it moved (its start or due time
     * changed): then the old entry goes stale and a new one is queued. */
    if (into->start == was_start && into->due == was_due)
        return 0;
    return due_push(ws, k, into);
}

static int64_t align(int64_t t, int64_t step)
{
    int64_t r = t % step;
    return t - (r < 0 ? r + step : r);
}

/* The length of a sliding definition's slices: gcd(size, slide), so that every window
 * is a whole number of them (Flink's slice size) even where the slide does not divide
 * the size; 0 for a definition that cannot be sliced. Taken from the sizes, not from
 * whether the definition is sliced, so that a checkpoint's slices are told apart from
 * windows after merge was taken out. */
static int64_t slice_len(const rt_window_def *d)
{
    if (d->kind != RT_WINDOW_SLIDING || d->slide >= d->size)
        return 0;
    int64_t a = d->size, b = d->slide;
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* ---- the windows of sliced definitions, read off their slices ---- */

/* The end of the last window that holds slice s (the one that starts at the last slide
 * before it): the slice is kept until then plus the lateness. */
static int64_t slice_last_end(const rt_window_def *d, const rt_pane *s)
{
    return align(s->start, d->slide) + d->size;
}

/* Events of key k in [start, end). */
static uint64_t slices_count(const rt_wkey *k, int64_t start, int64_t end)
{
    uint64_t n = 0;
    for (size_t i = 0; i < k->nslices && k->slices[i].start < end; i++)
        if (k->slices[i].start >= start)
            n += k->slices[i].count;
    return n;
}

/* The next time after `after` that key k's slices wait for: the end of the first window
 * that holds one of them, or when one of them goes. NOT_DUE when there are none. */
static int64_t slices_next(const rt_window_def *d, const rt_wkey *k, int64_t after)
{
    int64_t next = NOT_DUE;
    for (size_t i = 0; i < k->nslices; i++) {
        const rt_pane *s = &k->slices[i];
        int64_t last = slice_last_end(d, s), base = s->start > after ? s->start : after;
        int64_t end = align(base - d->size, d->slide) + d->size;    /* ends: slides + size */
        if (end <= base)
            end += d->slide;
        int64_t t = end <= last ? end : last + d->lateness;
        if (next == NOT_DUE || t < next)
            next = t;
    }
    return next;
}

/* Queue key k's slices for their next time after `after`, unless an entry at or before
 * it is queued already (it queues the next one when popped). */
static int slices_schedule(rt_windows *ws, rt_wkey *k, int64_t after)
{
    int64_t t = slices_next(&ws->defs[k->def], k, after);
    if (t == NOT_DUE || (k->slices_due != NOT_DUE && k->slices_due <= t))
        return 0;
    if (due_push_at(ws, k, t, SLICES_DUE) < 0)
        return -1;
    k->slices_due = t;
    return 0;
}

/* Fire the window of key k that starts at `start`, built from its slices, which hold
 * `count` events of it; `late`: it fired before. */
static void slices_fire(rt_windows *ws, const rt_window_def *d, rt_wkey *k, int64_t start,
                        uint64_t count, int late, const rt_window_calls *calls)
{
    int64_t end = start + d->size;
    rt_pane w = { .start = start, .end = end, .due = end, .fired = late, .count = count };
    fire(ws, d, k, &w, calls);
}

/* Key k's slices are due at t: fire the window that ends at t (if t is a window's end,
 * and the window holds events and has no pane of its own), drop the slices whose last
 * window is past its lateness, and queue the next time. */
static void slices_due(rt_windows *ws, rt_wkey *k, int64_t t, const rt_window_calls *calls)
{
    const rt_window_def *d = &ws->defs[k->def];
    int64_t start = t - d->size;
    k->slices_due = NOT_DUE;
    if (t > k->fired_to) {
        uint64_t n = align(start, d->slide) == start && !pane_find(k, start, 0)
                         ? slices_count(k, start, t) : 0;
        if (n)
            slices_fire(ws, d, k, start, n, 0, calls);
        k->fired_to = t;
    }
    for (size_t i = 0; i < k->nslices;)
        if (slice_last_end(d, &k->slices[i]) + d->lateness <= t)
            pane_drop(ws, k, &k->slices[i]);    /* the next one moves into slot i */
        else
            i++;
    /* Out of memory: the key's next event queues them again. */
    (void)slices_schedule(ws, k, t);
    note(ws, k);
}

/* Whether the window [start, start + size) still takes events: not past its lateness. */
static int window_open(const rt_windows *ws, const rt_window_def *d, int64_t start)
{
    return ws->watermark < start + d->size + d->lateness;
}

/* Tumbling and sliding: the event joins every window [start, start + size) that holds
 * its time and is not past its lateness. The panes it opens are dropped again when the
 * aggregation fails, so a dead-lettered event leaves no trace. -1 when the aggregation
 * failed, -2 when out of memory. */
static int add_sliding(rt_windows *ws, const rt_window_def *d, rt_wkey *k, const rt_event *ev,
                       const rt_window_calls *calls, int *joined)
{
    int64_t ts = ev->timestamp;
    int64_t slide = d->kind == RT_WINDOW_SLIDING ? d->slide : d->size;
    int64_t first = align(ts, slide);
    int64_t cut = d->sliced ? slice_len(d) : 0, at = cut ? align(ts, cut) : 0;
    size_t had = k->n, n = 0;
    int rc = -2, new_slice = 0;
    for (int64_t start = first; start > ts - d->size; start -= slide) {
        int64_t end = start + d->size;
        if (!window_open(ws, d, start))
            continue;       /* past its lateness: this window is gone */
        n++;
        if (cut || pane_find(k, start, 0))
            continue;       /* a sliced window gets no pane */
        rt_pane *p = pane_new(ws, k, start, end, 0);
        if (!p)
            goto undo;
        if (ws->watermark >= end)
            p->due = end + d->lateness;
        if (due_push(ws, k, p) < 0) {
            pane_drop(ws, k, p);
            goto undo;
        }
    }
    if (!n)
        return 0;
    if (cut && !pane_find(k, at, 1)) {
        if (!pane_new(ws, k, at, at + cut, 1))
            goto undo;
        new_slice = 1;
    }
    if (cut) {
        /* Every window ending at the watermark or before has fired by now. */
        if (k->fired_to < ws->watermark)
            k->fired_to = ws->watermark;
        if (slices_schedule(ws, k, k->fired_to) < 0)
            goto undo;
    }
    if (n > ws->capjoins) {
        rt_pane **v = realloc(ws->joins, n * sizeof *v);
        if (!v)
            goto undo;
        ws->joins = v;
        ws->capjoins = n;
    }
    /* Found after every pane_new, which may move k->panes. A sliced definition's
     * only panes are windows restored from before it was sliced. */
    size_t i = 0;
    for (int64_t start = first; start > ts - d->size; start -= slide)
        if (window_open(ws, d, start) && (ws->joins[i] = pane_find(k, start, 0)))
            i++;
    *joined = 1;
    rt_pane *sl = cut ? pane_find(k, at, 1) : NULL;
    if (add_to(ws, d, k, ws->joins, i, sl, ev, calls) == 0) {
        /* The sliced windows the watermark passed fire again (or, new, for the first
         * time), as panes do in add_to. */
        for (int64_t start = first; sl && start > ts - d->size; start -= slide)
            if (window_open(ws, d, start) && ws->watermark >= start + d->size &&
                !pane_find(k, start, 0)) {
                uint64_t events = slices_count(k, start, start + d->size);
                slices_fire(ws, d, k, start, events, events > 1, calls);
            }
        return 0;
    }
    rc = -1;
undo:
    /* The windows opened here are the last ones, and still empty; so is the slice, if
     * it is new (in its place by start). */
    while (k->n > had)
        pane_drop(ws, k, &k->panes[k->n - 1]);
    if (new_slice)
        pane_drop(ws, k, pane_find(k, at, 1));
    return rc;
}

int rt_windows_add(rt_windows *ws, const rt_event *ev, int32_t partition,
                   const rt_window_calls *calls, int *late, char *err, size_t errlen)
{
    int joined_any = 0, rc;
    *late = 0;
    for (size_t di = 0; di < ws->ndefs; di++) {
        const rt_window_def *d = &ws->defs[di];
        char buf[64];
        size_t klen = 0;
        const char *key = "";
        if (d->key && !(key = rt_event_key(ev, d->key, buf, sizeof buf, &klen))) {
            snprintf(err, errlen, "window %s: the event has no key at %s", d->name, d->key);
            return -2;
        }
        rt_wkey *k = key_get(ws, di, partition, key, klen);
        if (!k)
            goto oom;
        int64_t ts = ev->timestamp;
        int joined = 0;
        if (d->kind == RT_WINDOW_SESSION) {
            if (add_session(ws, d, k, ts, ev, calls, &joined) < 0) {
                note(ws, k);    /* a failed merge may have dropped sessions already */
                goto fail;
            }
        } else if ((rc = add_sliding(ws, d, k, ev, calls, &joined)) < 0) {
            key_maybe_free(ws, k);
            if (rc == -2)
                goto oom;
            goto fail;
        }
        if (joined)
            note(ws, k);
        key_maybe_free(ws, k);
        joined_any |= joined;
    }
    if (ws->ndefs && !joined_any) {
        *late = 1;
        ws->late++;
    }
    return 0;
oom:
    snprintf(err, errlen, "windows: out of memory");
    return -1;
fail:
    snprintf(err, errlen, "windows: a window call failed");
    return -1;
}

/* One due entry: fire its pane (or its key's slices) and drop what is past its
 * lateness. A stale entry (its pane moved or went) does nothing. */
static void due_run(rt_windows *ws, const rt_wdue *e, int64_t watermark,
                    const rt_window_calls *calls)
{
    rt_wkey *k = e->k;
    k->queued--;
    if (e->start == SLICES_DUE) {
        if (e->time == k->slices_due)
            slices_due(ws, k, e->time, calls);
        key_maybe_free(ws, k);
        return;
    }
    rt_pane *p = pane_find(k, e->start, 0);
    if (p && p->due == e->time) {
        const rt_window_def *d = &ws->defs[k->def];
        if (!p->fired || p->due < p->end + d->lateness)
            fire(ws, d, k, p, calls);   /* a failure is the callback's to report */
        if (d->lateness > 0 && p->due < p->end + d->lateness) {
            p->due = p->end + d->lateness;
            if (p->due > watermark && due_push(ws, k, p) == 0)
                p = NULL;
        }
        if (p)
            pane_drop(ws, k, p);
        note(ws, k);
    }
    key_maybe_free(ws, k);
}

void rt_windows_advance(rt_windows *ws, int64_t watermark, const rt_window_calls *calls)
{
    if (watermark <= ws->watermark)
        return;
    ws->watermark = watermark;
    /* What an entry queues is due later than it (a window's next end, its lateness):
     * never into the bucket being run. */
    while (ws->ndue && ws->due[0]->time <= watermark) {
        rt_wbucket *b = due_take(ws);
        for (size_t i = 0; i < b->n; i++)
            due_run(ws, &b->v[i], watermark, calls);
        bucket_free(b);
    }
}

void rt_windows_drop_partition(rt_windows *ws, int32_t partition)
{
    for (size_t d = 0; d < ws->ndefs; d++) {
        size_t i = 0;
        rt_keymap_slot *s;
        while ((s = rt_keymap_next(&ws->keys[d], &i))) {
            rt_wkey *k = s->value;
            if (k->partition != partition)
                continue;
            panes_drop_all(ws, k);
            key_maybe_free(ws, k);  /* or later, when its due entries are run */
        }
    }
}

void rt_windows_forget(rt_windows *ws, size_t def, int32_t partition, const char *key,
                       size_t klen)
{
    rt_wkey *k = rt_keymap_get(&ws->keys[def], partition, key, klen);
    if (!k)
        return;
    panes_drop_all(ws, k);
    key_maybe_free(ws, k);
}

int rt_windows_restore(rt_windows *ws, size_t def, int32_t partition, const char *key,
                       size_t klen, const rt_pane *p)
{
    const rt_window_def *d = &ws->defs[def];
    /* A slice is a pane of the slices' length (shorter than a window). One under a
     * definition that is no longer sliced (merge was taken out) cannot be combined
     * any more: its windows restart without it. */
    int slice = slice_len(d) && p->end - p->start == slice_len(d);
    if (slice && !d->sliced) {
        free(p->acc);
        return 0;
    }
    rt_wkey *k = key_get(ws, def, partition, key, klen);
    rt_pane *np = k ? pane_new(ws, k, p->start, p->end, slice) : NULL;
    if (!np) {
        free(p->acc);
        if (k)
            key_maybe_free(ws, k);
        return -1;
    }
    *np = *p;
    np->slice = slice;
    if (slice && p->due > k->fired_to)
        k->fired_to = p->due;
    if (slice ? slices_schedule(ws, k, k->fired_to) < 0 : due_push(ws, k, np) < 0) {
        pane_drop(ws, k, np);
        key_maybe_free(ws, k);
        return -1;
    }
    return 0;
}

void rt_windows_free(rt_windows *ws)
{
    for (size_t d = 0; d < ws->ndefs && ws->keys; d++) {
        size_t i = 0;
        rt_keymap_slot *s;
        while ((s = rt_keymap_next(&ws->keys[d], &i))) {
            rt_wkey *k = s->value;
            for (size_t j = 0; j < k->n; j++)
                free(k->panes[j].acc);
            for (size_t j = 0; j < k->nslices; j++)
                free(k->slices[j].acc);
            free(k->panes);
            free(k->slices);
            free(k);
        }
        rt_keymap_free(&ws->keys[d]);
    }
    free(ws->keys);
    for (size_t i = 0; i < ws->ndue; i++)
        bucket_free(ws->due[i]);
    free(ws->due);
    free(ws->joins);
    memset(ws, 0, sizeof *ws);
}

void rt_window_defs_free(rt_window_def *defs, size_t n)
{
    for (size_t i = 0; defs && i < n; i++) {
        free(defs[i].name);
        free(defs[i].key);
        free(defs[i].field);
    }
    free(defs);
}
