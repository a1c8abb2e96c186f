/* window_test.c - keyed windows and their heap of due panes (runtime/state/window.c):
 * random events over many keys, the watermark advanced in steps. Every pane fires
 * once, in the order of its end (then key), only once the watermark reaches its end,
 * and counts exactly the events of its key and range. Then a sliced sliding window:
 * the slices a window spans, in start order, hold exactly its events, and none is left
 * once every window fired. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "window.h"
#include "unit.h"

#define EVENTS 3000
#define KEYS 50
#define SIZE 1000
#define SPAN 20000      /* event times in [0, SPAN) */

static uint64_t want[KEYS][SPAN / SIZE];     /* events per key and window */
static int fires[KEYS][SPAN / SIZE];

typedef struct seen {
    int64_t watermark, last_end;
    int bad_order, early, bad_count;
    uint64_t total;
} seen;

static int on_fire(void *arg, const rt_window_def *d, const rt_wkey *k, const rt_pane *p)
{
    seen *s = arg;
    char text[16];
    snprintf(text, sizeof text, "%.*s", (int)k->klen, k->key);    /* "k<n>", not NUL-ended */
    int key = atoi(text + 1);
    int w = (int)(p->start / SIZE);
    s->bad_order += p->end < s->last_end;
    s->last_end = p->end;
    s->early += p->end > s->watermark;
    s->bad_count += p->count != want[key][w];
    s->total += p->count;
    fires[key][w]++;
    return 0;
}

/* Sliced: the "Lua" accumulator of a slice is its count of events, as 8 bytes. */
typedef struct sliced {
    int64_t watermark;
    int adds, bad_add, bad_sum, unordered, fired;
} sliced;

static int on_slice_add(void *arg, const rt_window_def *d, const rt_event *ev,
                        rt_pane *const *panes, size_t n)
{
    sliced *s = arg;
    (void)d;
    s->adds++;
    s->bad_add += n != 1 || !panes[0]->slice || ev->timestamp < panes[0]->start ||
                  ev->timestamp >= panes[0]->end;
    uint64_t c = 0;
    if (panes[0]->acc)
        memcpy(&c, panes[0]->acc, sizeof c);
    c++;
    char *acc = malloc(sizeof c);
    if (!acc)
        return -1;
    memcpy(acc, &c, sizeof c);
    free(panes[0]->acc);
    panes[0]->acc = acc;
    panes[0]->acc_len = sizeof c;
    return 0;
}

static int on_slice_fire(void *arg, const rt_window_def *d, const rt_wkey *k,
                         const rt_pane *p)
{
    sliced *s = arg;
    uint64_t sum = 0;
    (void)d;
    for (size_t i = 0; i < k->nslices; i++) {
        const rt_pane *sl = &k->slices[i];
        s->unordered += i && sl->start <= k->slices[i - 1].start;
        if (sl->start >= p->start && sl->end <= p->end && sl->acc) {
            uint64_t c;
            memcpy(&c, sl->acc, sizeof c);
            sum += c;
        }
    }
    s->bad_sum += sum != p->count;
    s->fired++;
    return 0;
}

static void test_sliced(void)
{
    rt_window_def def = { .name = "s", .kind = RT_WINDOW_SLIDING, .size = 1000,
                          .slide = 250, .key = "payload.k", .agg = RT_AGG_LUA,
                          .add_ref = 1, .result_ref = -1, .merge_ref = 2, .sliced = 1 };
    rt_windows ws;
    sliced s = { 0 };
    rt_window_calls calls = { .arg = &s, .add = on_slice_add, .fire = on_slice_fire };
    rt_event_limits lim = { 1 << 20, INT64_MAX };
    rt_event ev = { 0 };
    int failures = 0;
    if (rt_windows_init(&ws, &def, 1) < 0)
        return;
    srand(5);
    for (int i = 0; i < EVENTS; i++) {
        char raw[256], err[256];
        rt_reject why;
        int late = 0;
        /* Up to 2 s out of order, behind a watermark 2 s behind the newest. */
        int64_t ts = i * 10 + rand() % 2000;
        int n = snprintf(raw, sizeof raw, "{\"domain\":\"d\",\"type\":\"t\",\"timestamp\":%"
                         PRId64 ",\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\"}}", ts, i,
                         rand() % KEYS);
        if (rt_event_decode(&ev, raw, (size_t)n, &lim, &why) < 0 ||
            rt_windows_add(&ws, &ev, 0, &calls, &late, err, sizeof err) < 0 || late)
            failures++;
        rt_event_clear(&ev);
        if (i % 100 == 99)
            rt_windows_advance(&ws, i * 10 - 2000, &calls);
    }
    rt_windows_advance(&ws, RT_WATERMARK_END, &calls);
    unit_check(failures == 0 && s.adds == EVENTS && s.bad_add == 0, "sliced windows: add "
               "ran once an event, on the slice of its time (%d adds for %d events, %d "
               "failed, %d on another slice)", s.adds, EVENTS, failures, s.bad_add);
    unit_check(s.fired > EVENTS && s.bad_sum == 0 && s.unordered == 0, "sliced windows: "
               "the slices of each of %d firings, in start order, hold its events (%d "
               "sums wrong, %d out of order)", s.fired, s.bad_sum, s.unordered);
    unit_check(ws.panes == 0 && ws.slices == 0, "sliced windows: no window and no slice "
               "is left once all fired (%zu, %zu)", ws.panes, ws.slices);
    rt_windows_free(&ws);
    rt_event_free(&ev);
}

int main(void)
{
    rt_window_def def = { .name = "w", .kind = RT_WINDOW_TUMBLING, .size = SIZE,
                          .key = "payload.k", .agg = RT_AGG_COUNT,
                          .add_ref = -1, .result_ref = -1, .merge_ref = -1 };
    rt_windows ws;
    seen s = { .watermark = INT64_MIN };
    rt_window_calls calls = { .arg = &s, .fire = on_fire };
    rt_event_limits lim = { 1 << 20, INT64_MAX };
    int failures = 0;
    if (rt_windows_init(&ws, &def, 1) < 0)
        return 1;
    srand(3);
    /* Events arrive out of order but never behind the watermark (no lateness here). */
    rt_event ev = { 0 };
    for (int i = 0; i < EVENTS; i++) {
        char raw[256];
        int key = rand() % KEYS;
        int64_t ts = SPAN / 2 + rand() % (SPAN / 2);
        if (i < EVENTS / 2)
            ts = rand() % (SPAN / 2);
        int n = snprintf(raw, sizeof raw, "{\"domain\":\"d\",\"type\":\"t\",\"timestamp\":%"
                         PRId64 ",\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\"}}", ts, i, key);
        rt_reject why;
        int late = 0;
        char err[256];
        if (rt_event_decode(&ev, raw, (size_t)n, &lim, &why) < 0 ||
            rt_windows_add(&ws, &ev, 0, &calls, &late, err, sizeof err) < 0 || late)
            failures++;
        else
            want[key][ts / SIZE]++;
        rt_event_clear(&ev);
        /* Halfway, the first half of the time range is complete. */
        if (i == EVENTS / 2 - 1) {
            s.watermark = SPAN / 2;
            rt_windows_advance(&ws, s.watermark, &calls);
        }
    }
    unit_check(failures == 0, "windows: %d events added to %d keys (%d failed)", EVENTS,
               KEYS, failures);
    for (int64_t wmk = SPAN / 2 + 333; wmk < SPAN + SIZE; wmk += 333) {
        s.watermark = wmk;
        rt_windows_advance(&ws, wmk, &calls);
    }
    int missing = 0, twice = 0;
    for (int k = 0; k < KEYS; k++)
        for (int w = 0; w < SPAN / SIZE; w++) {
            missing += want[k][w] && !fires[k][w];
            twice += fires[k][w] > 1;
        }
    unit_check(missing == 0 && twice == 0, "windows: every pane with events fired once "
               "(%d never, %d more than once)", missing, twice);
    unit_check(s.early == 0, "windows: none fired before the watermark reached its end "
               "(%d did)", s.early);
    unit_check(s.bad_order == 0, "windows: the heap fired them in end order (%d out of "
               "order)", s.bad_order);
    unit_check(s.bad_count == 0 && s.total == EVENTS, "windows: each counted exactly its "
               "events (%d wrong, %llu in all)", s.bad_count, (unsigned long long)s.total);
    unit_check(ws.nheap == 0 && ws.panes == 0, "windows: nothing is left once all fired "
               "(%zu heap entries, %zu panes)", ws.nheap, ws.panes);
    rt_windows_free(&ws);
    rt_event_free(&ev);
    test_sliced();
    return unit_exit();
}
