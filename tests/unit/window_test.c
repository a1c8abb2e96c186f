/* window_test.c - keyed windows and their heap of due panes (runtime/state/window.c):
 * random events over many keys, the watermark advanced in steps. Every pane fires
 * once, in the order of its end (then key), only once the watermark reaches its end,
 * and counts exactly the events of its key and range. Then a sliced sliding window:
 * the slices a window spans, in start order, hold exactly its events, and none is left
 * once every window fired. Last, sliced and per-window definitions of the same shape
 * side by side, over sizes the slide does and does not divide, with allowed lateness
 * and events behind the watermark: the same firings, late ones included. */
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

/* The side-by-side run: every firing of definition 0 (sliced, the count in its slices'
 * accumulators) and 1 (per window, built-in count) as "key start end count late". */
typedef struct twin {
    sliced s;               /* first: on_slice_add's bookkeeping */
    char (*lines)[2][64];
    size_t n[2], cap;
    int bad_sum;
} twin;

static int on_twin_fire(void *arg, const rt_window_def *d, const rt_wkey *k, const rt_pane *p)
{
    twin *t = arg;
    int which = d->sliced ? 0 : 1;
    uint64_t count = p->count;
    if (d->sliced) {
        uint64_t sum = 0;
        for (size_t i = 0; i < k->nslices; i++)
            if (k->slices[i].start >= p->start && k->slices[i].end <= p->end &&
                k->slices[i].acc) {
                uint64_t c;
                memcpy(&c, k->slices[i].acc, sizeof c);
                sum += c;
            }
        t->bad_sum += sum != count;
    }
    if (t->n[which] < t->cap)
        snprintf(t->lines[t->n[which]][which], 64, "%.*s %" PRId64 " %" PRId64 " %" PRIu64
                 " %d", (int)k->klen, k->key, p->start, p->end, count, p->fired > 1);
    t->n[which]++;
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_twins(int64_t size, int64_t slide, int64_t lateness)
{
    rt_window_def defs[2] = {
        { .name = "sliced", .kind = RT_WINDOW_SLIDING, .size = size, .slide = slide,
          .lateness = lateness, .key = "payload.k", .agg = RT_AGG_LUA, .add_ref = 1,
          .result_ref = -1, .merge_ref = 2, .sliced = 1 },
        { .name = "panes", .kind = RT_WINDOW_SLIDING, .size = size, .slide = slide,
          .lateness = lateness, .key = "payload.k", .agg = RT_AGG_COUNT, .add_ref = -1,
          .result_ref = -1, .merge_ref = -1 },
    };
    twin t = { .cap = 100000 };
    rt_window_calls calls = { .arg = &t, .add = on_slice_add, .fire = on_twin_fire };
    rt_event_limits lim = { 1 << 20, INT64_MAX };
    rt_event ev = { 0 };
    rt_windows ws;
    int failures = 0, late_events = 0;
    if (!(t.lines = calloc(t.cap, sizeof *t.lines)) || rt_windows_init(&ws, defs, 2) < 0) {
        free(t.lines);
        unit_check(0, "twins: out of memory");
        return;
    }
    srand((unsigned)(size * 31 + slide * 7 + lateness));
    for (int i = 0; i < EVENTS; i++) {
        char raw[256], err[256];
        rt_reject why;
        int late = 0;
        /* Up to 3.5 s out of order, behind a watermark 1 s behind the newest: some events
         * land in windows that fired already, some past their lateness. */
        int64_t ts = 100000 + i * 10 + 500 - rand() % 3500;
        int n = snprintf(raw, sizeof raw, "{\"domain\":\"d\",\"type\":\"t\",\"timestamp\":%"
                         PRId64 ",\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\"}}", ts, i,
                         rand() % 7);
        if (rt_event_decode(&ev, raw, (size_t)n, &lim, &why) < 0 ||
            rt_windows_add(&ws, &ev, 0, &calls, &late, err, sizeof err) < 0)
            failures++;
        late_events += late;
        rt_event_clear(&ev);
        if (i % 50 == 49)
            rt_windows_advance(&ws, 100000 + i * 10 - 1000, &calls);
    }
    rt_windows_advance(&ws, RT_WATERMARK_END, &calls);
    int same = t.n[0] == t.n[1] && t.n[0] <= t.cap, refired = 0;
    if (same) {
        char (*a)[64] = calloc(t.n[0] ? t.n[0] : 1, 64), (*b)[64] = calloc(t.n[0] ? t.n[0] : 1, 64);
        same = a && b;
        for (size_t i = 0; same && i < t.n[0]; i++) {
            memcpy(a[i], t.lines[i][0], 64);
            memcpy(b[i], t.lines[i][1], 64);
            refired += a[i][strlen(a[i]) - 1] == '1';
        }
        if (same) {
            qsort(a, t.n[0], 64, by_text);
            qsort(b, t.n[0], 64, by_text);
            for (size_t i = 0; same && i < t.n[0]; i++)
                same = strcmp(a[i], b[i]) == 0;
        }
        free(a);
        free(b);
    }
    unit_check(failures == 0 && same && t.bad_sum == 0 && (refired > 0 || !lateness) &&
               late_events > 0,
               "sliced windows, size %" PRId64 " slide %" PRId64 " lateness %" PRId64 ": the "
               "same %zu firings as per-window panes (%zu), %d of them late re-firings, %d "
               "events past every window (%d failed, %d sums wrong)", size, slide, lateness,
               t.n[0], t.n[1], refired, late_events, failures, t.bad_sum);
    unit_check(ws.panes == 0 && ws.slices == 0 && ws.ndue == 0, "sliced windows, size %"
               PRId64 " slide %" PRId64 ": nothing left at the end (%zu panes, %zu slices, "
               "%zu due times)", size, slide, ws.panes, ws.slices, ws.ndue);
    rt_windows_free(&ws);
    rt_event_free(&ev);
    free(t.lines);
}

/* Keys of one end fire by definition, then key bytes (a shorter key first): keys that
 * share their first 7 bytes or more, and keys that are prefixes of others, added in a
 * shuffled order, under two definitions. */
typedef struct ordered {
    char last[64];
    size_t last_len, last_def;
    int fired, unordered;
} ordered;

/* Whether k's key does not sort after the key fired last (bytes, a shorter key first):
 * out of order when both fired for one end (and definition). */
static int key_not_after(const char *last, size_t last_len, const rt_wkey *k)
{
    size_t n = k->klen < last_len ? k->klen : last_len;
    int c = memcmp(last, k->key, n);
    return c > 0 || (c == 0 && last_len >= k->klen);
}

static int on_fire_ordered(void *arg, const rt_window_def *d, const rt_wkey *k,
                           const rt_pane *p)
{
    ordered *o = arg;
    (void)d, (void)p;
    if (o->fired)
        o->unordered += k->def < o->last_def ||
                        (k->def == o->last_def && key_not_after(o->last, o->last_len, k));
    memcpy(o->last, k->key, k->klen);
    o->last_len = k->klen;
    o->last_def = k->def;
    o->fired++;
    return 0;
}

/* Keys added to both definitions in a shuffled order, as `key(i)` names them, fire by
 * definition and then key. */
static void check_key_order(const char *what, size_t nkeys, const char *(*key)(size_t i))
{
    rt_window_def defs[2];
    for (int i = 0; i < 2; i++)
        defs[i] = (rt_window_def){ .name = i ? "w2" : "w1", .kind = RT_WINDOW_TUMBLING,
                                   .size = SIZE, .key = "payload.k", .agg = RT_AGG_COUNT,
                                   .add_ref = -1, .result_ref = -1, .merge_ref = -1 };
    rt_windows ws;
    ordered o = { .fired = 0 };
    rt_window_calls calls = { .arg = &o, .fire = on_fire_ordered };
    rt_event_limits lim = { 1 << 20, INT64_MAX };
    rt_event ev = { 0 };
    int failures = 0;
    if (rt_windows_init(&ws, defs, 2) < 0) {
        unit_check(0, "%s: windows initialized", what);
        return;
    }
    for (size_t i = 0; i < nkeys; i++) {
        char raw[256], err[256];
        rt_reject why;
        int late = 0;
        int n = snprintf(raw, sizeof raw, "{\"domain\":\"d\",\"type\":\"t\",\"timestamp\":"
                         "%zu,\"eventId\":\"e%zu\",\"payload\":{\"k\":\"%s\"}}", i % SIZE, i,
                         key((i * 7) % nkeys));    /* 7 coprime with nkeys: a shuffle */
        if (rt_event_decode(&ev, raw, (size_t)n, &lim, &why) < 0 ||
            rt_windows_add(&ws, &ev, 0, &calls, &late, err, sizeof err) < 0 || late)
            failures++;
        rt_event_clear(&ev);
    }
    rt_windows_advance(&ws, SIZE, &calls);
    unit_check(failures == 0 && o.fired == (int)(2 * nkeys) && o.unordered == 0,
               "%s: panes of one end fire by definition, then key (%d fired of %zu, "
               "%d out of order, %d not added)", what, o.fired, 2 * nkeys, o.unordered,
               failures);
    rt_windows_free(&ws);
    rt_event_free(&ev);
}

static const char *const odd_keys[] = {
    "device-0000001", "device-0000002", "device-000000", "device-00000010", "device-",
    "device", "devic", "device-1", "device-\\u00ff", "a", "", "zzzzzzzzzzzzzzzz",
    "zzzzzzzzzzzzzzz", "device-0000001x", "device-0000001\\u0001", "b-0000001",
};

static const char *odd_key(size_t i)
{
    return odd_keys[i];
}

/* Numbered keys, some sharing their first 7 bytes ("sensor-1..."), of many lengths. */
static const char *numbered_key(size_t i)
{
    static char k[32];
    snprintf(k, sizeof k, i % 3 ? "d-%zu" : "sensor-%zu", i * 37 % 5003);
    return k;
}

static void test_key_order(void)
{
    /* Keys that share their first 7 bytes or more, and keys that are prefixes of others. */
    check_key_order("windows", sizeof odd_keys / sizeof *odd_keys, odd_key);
    /* 2,000 entries due at one time: sorted in runs and merged over several passes. */
    check_key_order("windows, 1,000 keys", 1000, numbered_key);
}

/* Ends interleaved: each event's window ends at one of 24 times, in turn, so the queue
 * keeps more than one bucket for a time (it remembers 8); they fire by end, then key,
 * each once. */
typedef struct by_end {
    int64_t last_end;
    char last[16];
    size_t last_len;
    int fired, unordered;
    unsigned char seen[200][24];
} by_end;

static int on_fire_by_end(void *arg, const rt_window_def *d, const rt_wkey *k,
                          const rt_pane *p)
{
    by_end *o = arg;
    (void)d;
    if (o->fired)
        o->unordered += p->end < o->last_end ||
                        (p->end == o->last_end && key_not_after(o->last, o->last_len, k));
    int key = 0, end = (int)(p->end / SIZE) - 1;
    for (size_t i = 1; i < k->klen; i++)     /* "k<n>", not NUL-terminated */
        key = key * 10 + (k->key[i] - '0');
    if (key >= 0 && key < 200 && end >= 0 && end < 24)
        o->seen[key][end]++;
    memcpy(o->last, k->key, k->klen);
    o->last_len = k->klen;
    o->last_end = p->end;
    o->fired++;
    return 0;
}

static void test_interleaved_ends(void)
{
    rt_window_def def = { .name = "w", .kind = RT_WINDOW_TUMBLING, .size = SIZE,
                          .key = "payload.k", .agg = RT_AGG_COUNT,
                          .add_ref = -1, .result_ref = -1, .merge_ref = -1 };
    rt_windows ws;
    static by_end o;
    rt_window_calls calls = { .arg = &o, .fire = on_fire_by_end };
    rt_event_limits lim = { 1 << 20, INT64_MAX };
    rt_event ev = { 0 };
    int failures = 0, wanted = 0, twice = 0;
    memset(&o, 0, sizeof o);
    if (rt_windows_init(&ws, &def, 1) < 0) {
        unit_check(0, "interleaved ends: windows initialized");
        return;
    }
    static unsigned char wants[200][24];
    memset(wants, 0, sizeof wants);
    for (int i = 0; i < 2400; i++) {
        char raw[256], err[256];
        rt_reject why;
        int late = 0, key = (i * 7) % 199, end = (i * 5) % 24;   /* coprime: shuffles */
        wants[key][end] = 1;
        int n = snprintf(raw, sizeof raw, "{\"domain\":\"d\",\"type\":\"t\",\"timestamp\":"
                         "%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\"}}",
                         end * (int)SIZE, i, key);
        if (rt_event_decode(&ev, raw, (size_t)n, &lim, &why) < 0 ||
            rt_windows_add(&ws, &ev, 0, &calls, &late, err, sizeof err) < 0 || late)
            failures++;
        rt_event_clear(&ev);
    }
    size_t buckets = ws.ndue;
    rt_windows_advance(&ws, 24 * SIZE, &calls);
    for (int k = 0; k < 200; k++)
        for (int e = 0; e < 24; e++) {
            wanted += wants[k][e];
            twice += o.seen[k][e] != wants[k][e];
        }
    unit_check(failures == 0 && buckets > 24 && o.fired == wanted && twice == 0 &&
               o.unordered == 0, "windows: ends queued interleaved (%zu buckets for 24 "
               "times) fire by end, then key, each once (%d fired of %d, %d wrong, %d out "
               "of order, %d not added)", buckets, o.fired, wanted, twice, o.unordered,
               failures);
    unit_check(ws.ndue == 0 && ws.panes == 0, "interleaved ends: nothing left (%zu due "
               "times, %zu panes)", ws.ndue, ws.panes);
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
    unit_check(s.bad_order == 0, "windows: they fired in end order (%d out of "
               "order)", s.bad_order);
    unit_check(s.bad_count == 0 && s.total == EVENTS, "windows: each counted exactly its "
               "events (%d wrong, %llu in all)", s.bad_count, (unsigned long long)s.total);
    unit_check(ws.ndue == 0 && ws.panes == 0, "windows: nothing is left once all fired "
               "(%zu due times, %zu panes)", ws.ndue, ws.panes);
    rt_windows_free(&ws);
    rt_event_free(&ev);
    test_sliced();
    test_key_order();
    test_interleaved_ends();
    test_twins(1000, 250, 300);
    test_twins(1000, 300, 450);     /* gcd 100: ten slices a window */
    test_twins(700, 200, 0);
    return unit_exit();
}
