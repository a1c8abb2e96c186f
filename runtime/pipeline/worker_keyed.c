/* worker_keyed.c - what the worker keeps per processor beyond its Lua state: keyed
 * state and windows, and the watermark that fires the windows.
 *
 * Events enter windows when they finish, in arrival order (after process() returned),
 * and the watermark moves then too; so a window's result never misses an event that
 * came before the one whose time fired it. Outputs of on_window are held on the ticket
 * of that event, so its Kafka offset is not stored before they are acknowledged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "worker_int.h"

typedef struct calls_arg {
    rt_worker *w;
    rt_processor *p;
    int32_t partition;
    rt_reject why;          /* of a failed add or merge */
} calls_arg;

/* The outputs of an on_window or on_timer call, held on w->fire_ticket. */
static int write_fired(rt_worker *w, const char *what)
{
    const rt_outbox *out = &w->fire_out;
    const char *base = out->bytes.data;
    for (size_t i = 0; i < out->n; i++) {
        const rt_emit *e = &out->v[i];
        rt_out o = { w->fire_ticket, e->key_len ? base + e->key_off : NULL, e->key_len,
                     NULL, 0, NULL };
        if (rt_sink_write(e->sink, base + e->off, e->len, &o) < 0) {
            rt_origin origin = { .file = what };
            rt_worker_fail(w, &origin);
            return -1;
        }
        w->out++;
    }
    return 0;
}

/* A failed on_window/on_timer call: a dead letter whose record (`rec`, taken) names
 * what fired, since there is no one event to blame. */
static void dead_fired(rt_worker *w, rt_processor *p, const rt_reject *why, json_t *rec,
                       const char *what)
{
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    rt_event ev = { .raw = text ? text : "", .raw_len = text ? strlen(text) : 0,
                    .origin = { .file = what } };
    rt_worker_dead_letter(w, &ev, why, p->name, w->fire_ticket);
    free(text);
}

static int on_add(void *arg, const rt_window_def *d, const rt_event *ev, rt_pane *const *panes,
                  size_t n)
{
    calls_arg *a = arg;
    return lb_window_add(a->p, d, ev, panes, n, a->partition, &a->why);
}

static int on_merge(void *arg, const rt_window_def *d, rt_pane *into, const rt_pane *from)
{
    calls_arg *a = arg;
    return lb_window_merge(a->p, d, into, from, a->partition, &a->why);
}

/* What names a window or timer call to the supervisor: "window:<processor>.<window>"
 * or "timer:<processor>", and a hash of the firing (key and bounds, or key, tag and
 * time) as the record's position. A worker killed inside the call leaves it poisoned;
 * its successor, which rebuilds the same windows and timers, finds the same identity
 * and dead-letters the firing as timeout instead of running it (and being killed)
 * again. */
static rt_origin fire_call(char *label, size_t len, const rt_processor *p, const char *window,
                           const void *id, size_t idlen, int64_t a, int64_t b)
{
    uint64_t h = rt_fnv1a(RT_FNV1A_INIT, id, idlen);
    h = rt_fnv1a(rt_fnv1a(h, &a, sizeof a), &b, sizeof b);
    /* Pasted, not snprintf'd: this runs for every firing, and snprintf was a thousand
     * instructions of it. Cut at len - 1 as snprintf would cut it. */
    const char *part[] = { window ? "window:" : "timer:", p->name, window ? "." : "",
                           window ? window : "" };
    size_t at = 0;
    for (size_t i = 0; i < sizeof part / sizeof *part; i++) {
        size_t n = strlen(part[i]);
        n = n < len - 1 - at ? n : len - 1 - at;
        memcpy(label + at, part[i], n);
        at += n;
    }
    label[at] = '\0';
    return (rt_origin){ .file = label, .line = (long long)(h >> 1) };
}

/* Poisoned by the supervisor: the firing is dead-lettered `timeout`, not run. */
static int poisoned(rt_worker *w, const rt_origin *call, rt_reject *why)
{
    const rt_poison *x = w->shared ? rt_poison_find(w->shared, call) : NULL;
    if (x)
        rt_reject_set(why, RT_REASON_TIMEOUT,
                      "ran longer than processor.timeout.ms=%lld; its worker "
                      "was killed and this call is not run again", (long long)x->timeout_ms);
    return x != NULL;
}

/* A fired window's outputs go out at once; a failing on_window is dead-lettered as a
 * record naming the window, since there is no one event to blame. */
static int on_fire(void *arg, const rt_window_def *d, const rt_wkey *k, const rt_pane *pane)
{
    calls_arg *a = arg;
    rt_worker *w = a->w;
    rt_outbox *out = &w->fire_out;
    rt_reject why;
    char label[128];
    rt_origin call = fire_call(label, sizeof label, a->p, d->name, k->key, k->klen,
                               pane->start, pane->end);
    rt_outbox_reset(out);
    if (poisoned(w, &call, &why) || lb_window_fire(a->p, d, k, pane, out, &call, &why) < 0) {
        dead_fired(w, a->p, &why, json_pack("{s:s, s:s%, s:I, s:I}", "window", d->name, "key",
                                            k->key, k->klen, "start", (json_int_t)pane->start,
                                            "end", (json_int_t)pane->end), "(window)");
        return -1;
    }
    return write_fired(w, "(window)");
}

static rt_window_calls calls_for(calls_arg *a)
{
    return (rt_window_calls){ a, on_add, on_merge, on_fire };
}

int rt_worker_keyed_add(rt_worker *w, rt_processor *p)
{
    rt_keyed **v = realloc(w->keyed, (w->nkeyed + 1) * sizeof *v);
    if (!v)
        return -1;
    w->keyed = v;
    rt_keyed *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    if (rt_state_init(&k->state, p->name) < 0 ||
        rt_windows_init(&k->windows, p->window_defs, p->nwindows) < 0) {
        rt_state_free(&k->state);
        free(k);
        return -1;
    }
    w->keyed[w->nkeyed++] = k;
    rt_worker_changelog_attach(w, k);
    p->state = &k->state;
    p->timers = &k->timers;
    p->series = &k->series;
    w->windowed |= p->nwindows > 0 || p->on_timer_ref != LUA_NOREF;
    return 0;
}

int rt_worker_keyed_init(rt_worker *w, char *err, size_t errlen)
{
    rt_watermark_init(&w->watermark, rt_config_int(w->cfg, "window.out.of.orderness.ms"),
                      rt_config_int(w->cfg, "window.idle.timeout.ms"));
    for (size_t i = 0; i < w->nprocs; i++)
        if (rt_worker_keyed_add(w, w->procs[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    return 0;
}

void rt_worker_windows_add(rt_worker *w, rt_job *j)
{
    rt_processor *p = j->p;
    calls_arg a = { .w = w, .p = p, .partition = j->ev.origin.partition };
    rt_window_calls calls = calls_for(&a);
    char err[256];
    int late;
    w->fire_ticket = j->ticket;
    rt_processor_lend_ev(p, &j->call);
    int rc = rt_windows_add(&w->keyed[p->slot]->windows, &j->ev, a.partition, &calls,
                            &late, err, sizeof err);
    rt_processor_return_ev(p, &j->call);
    if (rc == -2 || (rc < 0 && !a.why.reason[0])) {
        rt_reject_set(&j->why, rc == -2 ? RT_REASON_PROCESSOR_ERROR : RT_REASON_MEMORY,
                      "%s", err);
        j->state = RT_JOB_DEAD;
    } else if (rc < 0) {
        j->why = a.why;
        j->state = RT_JOB_DEAD;
    } else if (late) {
        /* The late side output: every window of this event was already past its
         * allowed lateness. Its other outputs still go out. */
        rt_reject why;
        rt_reject_set(&why, RT_REASON_LATE,
                      "event time %lld is behind the watermark %lld by more "
                      "than the allowed lateness", (long long)j->ev.timestamp,
                      (long long)w->keyed[p->slot]->windows.watermark);
        rt_worker_dead_letter(w, &j->ev, &why, p->name, j->ticket);
    }
}

/* on_timer for every timer of `domain` due at `now`. */
static void fire_timers(rt_worker *w, enum rt_time_domain domain, int64_t now)
{
    for (size_t i = 0; i < w->nkeyed && !w->failed; i++) {
        rt_processor *p = w->procs[i];
        rt_timer *t;
        while (!w->failed && (t = rt_timers_pop_due(&w->keyed[i]->timers, domain, now))) {
            rt_reject why;
            char label[128];
            rt_origin call = fire_call(label, sizeof label, p, NULL, t->id, t->idlen, t->at,
                                       t->domain);
            rt_outbox_reset(&w->fire_out);
            if (poisoned(w, &call, &why) || lb_timer_fire(p, t, &w->fire_out, &call, &why) < 0) {
                const char *tag = t->id + t->klen + 1;
                dead_fired(w, p, &why, json_pack("{s:s%, s:s%, s:I}", "timer", tag,
                                                 t->idlen - t->klen - 1, "key", t->id, t->klen,
                                                 "at", (json_int_t)t->at), "(timer)");
            } else {
                write_fired(w, "(timer)");
            }
            rt_timer_free(t);
        }
    }
}

/* Arm the processing-time timer event for the earliest processing-time timer. */
static void schedule_processing(rt_worker *w)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < w->nkeyed; i++) {
        int64_t t = rt_timers_next(&w->keyed[i]->timers, RT_PROCESSING_TIME);
        next = t < next ? t : next;
    }
    if (next == INT64_MAX || !w->ptimer_ev || (w->ptimer_armed && w->ptimer_at <= next))
        return;
    int64_t wait = next - rt_epoch_ms();
    wait = wait > 0 ? wait : 0;
    struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };
    if (evtimer_add(w->ptimer_ev, &tv) < 0) {
        rt_error("cannot arm the processing-time timer");
        return;
    }
    w->ptimer_armed = 1;
    w->ptimer_at = next;
}

void rt_worker_processing_timers(rt_worker *w)
{
    w->ptimer_armed = 0;
    fire_timers(w, RT_PROCESSING_TIME, rt_epoch_ms());
    if (!w->failed)
        rt_worker_flush(w);
    schedule_processing(w);
}

/* Move every processor's windows to the watermark. */
static void advance_to(rt_worker *w, int64_t wm, rt_ticket *ticket)
{
    w->fire_ticket = ticket;
    for (size_t i = 0; i < w->nkeyed && !w->failed; i++) {
        rt_processor *p = w->procs[i];
        if (!p->nwindows)
            continue;
        calls_arg a = { .w = w, .p = p };
        rt_window_calls calls = calls_for(&a);
        rt_windows_advance(&w->keyed[i]->windows, wm, &calls);
    }
    fire_timers(w, RT_EVENT_TIME, wm);
    schedule_processing(w);
    w->fire_ticket = NULL;
}

void rt_worker_event_time(rt_worker *w, rt_job *j)
{
    if (!w->windowed)
        return;
    int64_t now = rt_epoch_coarse_ms();     /* once a record: idleness needs no better */
    if (rt_watermark_observe(&w->watermark, j->ev.origin.topic, j->ev.origin.partition,
                             j->ev.timestamp, now) < 0) {
        rt_error("out of memory");
        rt_worker_fail(w, &j->ev.origin);
        return;
    }
    advance_to(w, rt_watermark_compute(&w->watermark, now), j->ticket);
}

void rt_worker_idle_check(rt_worker *w)
{
    if (w->windowed)
        advance_to(w, rt_watermark_compute(&w->watermark, rt_epoch_ms()), NULL);
    if (!w->failed)
        rt_worker_flush(w);
}

void rt_worker_end_of_input(rt_worker *w)
{
    if (w->windowed) {
        rt_info("input ended: the watermark moves to the end of time; every open window "
                "and event-time timer fires");
        advance_to(w, RT_WATERMARK_END, NULL);
    }
}

void rt_worker_watermark_to(rt_worker *w, int64_t wm)
{
    advance_to(w, wm, NULL);
}

void rt_worker_clock_to(rt_worker *w, int64_t now_ms)
{
    fire_timers(w, RT_PROCESSING_TIME, now_ms);
}

/* A state value past its TTL is dropped when read; the sweep drops those nobody reads
 * again (a dedup key, a session that ended), which would otherwise stay for good. It
 * looks at SWEEP_SLOTS slots of each map every SWEEP_MS, a fraction of a millisecond
 * of the loop: a map of 100,000 keys (262,144 slots) is gone through every 3.2 s. */
#define SWEEP_MS 100
#define SWEEP_SLOTS 8192

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    int64_t now = rt_epoch_ms();
    for (size_t i = 0; i < w->nkeyed; i++)
        rt_state_sweep(&w->keyed[i]->state, SWEEP_SLOTS, now);
}

int rt_worker_sweep_start(rt_worker *w)
{
    struct timeval tv = { 0, SWEEP_MS * 1000 };
    w->sweep_ev = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    return w->sweep_ev && event_add(w->sweep_ev, &tv) == 0 ? 0 : -1;
}

int rt_worker_keyed_metrics(rt_worker *w, rt_buf *out)
{
    static const struct { const char *name, *type, *help; } m[] = {
        { "eddy_state_entries", "gauge", "Keyed state values held, by processor." },
        { "eddy_state_bytes", "gauge", "Bytes of keyed state keys and values, by processor." },
        { "eddy_window_panes", "gauge", "Open window instances (per key), by processor." },
        { "eddy_window_slices", "gauge",
          "Slices of sliced sliding windows (one accumulator per key and slice), by "
          "processor." },
        { "eddy_windows_fired_total", "counter", "Window firings, late re-firings included." },
        { "eddy_window_late_events_total", "counter",
          "Events past the allowed lateness of all their windows (late side output)." },
        { "eddy_timers", "gauge", "Timers set, by processor." },
        { "eddy_timers_fired_total", "counter", "on_timer calls, by processor." },
        { "eddy_state_expired_total", "counter",
          "Keyed state values dropped by their TTL (when read, or by the sweep)." },
        { "eddy_state_keys_split_total", "counter",
          "New state and window keys that another input partition already held: their "
          "values are split (the input is not keyed by them)." },
    };
    rt_buf lb = { 0 };
    int rc = -1;
    for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
        if (rt_prom_header(out, m[k].name, m[k].type, m[k].help))
            goto out;
        for (size_t i = 0; i < w->nkeyed; i++) {
            const rt_state *st = &w->keyed[i]->state;
            const rt_windows *ws = &w->keyed[i]->windows;
            const rt_timers *ts = &w->keyed[i]->timers;
            double v[] = { (double)rt_state_count(st), (double)st->bytes, (double)ws->panes,
                           (double)ws->slices, (double)ws->fired, (double)ws->late,
                           (double)rt_timers_count(ts), (double)ts->fired,
                           (double)st->expired, (double)(st->keys_split + ws->keys_split) };
            if (rt_prom_sample1(out, &lb, m[k].name, "processor", w->procs[i]->name, v[k]))
                goto out;
        }
    }
    double wm = w->watermark.current == INT64_MIN ? -1 : (double)w->watermark.current / 1000;
    if (rt_prom_header(out, "eddy_watermark_seconds", "gauge",
                       "Event-time watermark, epoch seconds (-1 before it is known).") ||
        rt_prom_sample(out, "eddy_watermark_seconds", NULL, wm))
        goto out;
    rc = 0;
out:
    rt_buf_free(&lb);
    return rc;
}

void rt_worker_keyed_free(rt_worker *w)
{
    for (size_t i = 0; i < w->nkeyed; i++) {
        rt_state_free(&w->keyed[i]->state);
        rt_timers_free(&w->keyed[i]->timers);
        rt_windows_free(&w->keyed[i]->windows);
        rt_changes_free(&w->keyed[i]->changes);
        rt_series_free(&w->keyed[i]->series);
        free(w->keyed[i]);
    }
    if (w->sweep_ev)
        event_free(w->sweep_ev);
    w->sweep_ev = NULL;
    free(w->keyed);
    w->keyed = NULL;
    w->nkeyed = 0;
    rt_watermark_free(&w->watermark);
    rt_outbox_free(&w->fire_out);
}
