/* reload_verify.c - a new version of a processor runs, before it goes live, over the
 * last events the running version processed without error (reload.verify.events).
 *
 * A version that compiles and whose init passes may still fail on every event; live,
 * it would dead-letter them until quarantined. So each slot keeps a ring of the raw
 * bytes of its latest successes (copied when the event completes), and a reload runs
 * the candidate's process() on them: outputs discarded, state writes undone, timers
 * and metrics set on scratch ones. A call that fails (error, limit) where the running version
 * succeeded refuses the reload, naming the event and the error; a ctx.reject is a
 * decision, not a failure (a new rule may reject what the old one let through). An
 * event whose lookup is not cached is skipped: nothing may wait here. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reload_int.h"

typedef struct rt_recent_event {
    char *raw;
    size_t len, cap;
    int32_t partition;
} rt_recent_event;

/* The ring of one slot. */
struct rt_recent {
    rt_recent_event *v;     /* reload.verify.events of them, allocated on first use */
    size_t next, n;
};

void rt_reload_note(rt_worker *w, const rt_processor *p, const rt_event *ev)
{
    rt_reload *r = w->reload;
    if (!r || !r->keep)
        return;
    if (p->slot >= r->nrecent) {
        rt_recent *v = realloc(r->recent, (p->slot + 1) * sizeof *v);
        if (!v)
            return;     /* verification is a safety net: without memory, fewer events */
        memset(v + r->nrecent, 0, (p->slot + 1 - r->nrecent) * sizeof *v);
        r->recent = v;
        r->nrecent = p->slot + 1;
    }
    rt_recent *ring = &r->recent[p->slot];
    if (!ring->v && !(ring->v = calloc(r->keep, sizeof *ring->v)))
        return;
    rt_recent_event *e = &ring->v[ring->next];
    if (ev->raw_len > e->cap) {
        char *raw = realloc(e->raw, ev->raw_len);
        if (!raw)
            return;
        e->raw = raw;
        e->cap = ev->raw_len;
    }
    memcpy(e->raw, ev->raw, ev->raw_len);
    e->len = ev->raw_len;
    e->partition = ev->origin.partition;
    ring->next = (ring->next + 1) % r->keep;
    if (ring->n < r->keep)
        ring->n++;
}

/* One recent event through the candidate. 0 ran or skipped, -1 failed (why set). */
static int try_one(rt_worker *w, rt_processor *cand, const rt_recent_event *e,
                   rt_outbox *out, rt_reject *why)
{
    rt_event ev = { 0 };
    rt_call call = { 0 };
    rt_lkwait wait = { 0 };
    int rc = 0;
    ev.origin = (rt_origin){ .file = "(reload verification)", .partition = e->partition };
    if (rt_event_decode(&ev, e->raw, e->len, &w->limits, why) < 0)
        goto out;       /* it decoded once; limits changed since, not the processor */
    rt_outbox_reset(out);
    rc = rt_processor_start(cand, &call, &ev, out, &wait, why);
    if (rc > 0) {       /* a lookup not cached: skipped (the call is aborted below) */
        rt_lkwait_cancel(&wait);
        rc = 0;
    } else if (rc < 0 && why->code == RT_REASON_REJECTED) {
        rc = 0;
    }
out:
    /* Ends a call left waiting; one that returned keeps its ev for a window's add,
     * which verification does not make: this detaches it before the event goes. */
    rt_processor_abort(cand, &call);
    rt_row_release(wait.row);
    rt_call_free(&call);
    rt_event_free(&ev);
    return rc;
}

int rt_reload_verify(rt_worker *w, const rt_processor *old, rt_processor *cand, char *err,
                     size_t errlen)
{
    rt_reload *r = w->reload;
    size_t slot = old->slot;
    const rt_recent *ring = r && slot < r->nrecent ? &r->recent[slot] : NULL;
    size_t n = ring ? ring->n : 0, failed = 0;
    rt_timers scratch = { 0 };
    rt_series scratch_series = { 0 };
    rt_outbox out = { 0 };
    rt_reject why, first = { 0 };
    if (n == 0)
        return 0;
    /* The running version's state, every write undone; timers nobody fires. */
    rt_state *state = cand->state;
    rt_timers *timers = cand->timers;
    rt_series *series = cand->series;
    cand->state = old->state;
    cand->timers = &scratch;
    cand->series = &scratch_series;
    cand->dry_run = 1;
    for (size_t i = 0; i < n; i++) {
        /* oldest first, as they came */
        const rt_recent_event *e = &ring->v[(ring->next + r->keep - n + i) % r->keep];
        if (try_one(w, cand, e, &out, &why) < 0 && failed++ == 0)
            first = why;
    }
    cand->dry_run = 0;
    cand->state = state;
    cand->timers = timers;
    cand->series = series;
    cand->consecutive_errors = 0;
    rt_timers_free(&scratch);
    rt_series_free(&scratch_series);
    rt_outbox_free(&out);
    if (failed) {
        snprintf(err, errlen, "the new version fails on %zu of the last %zu events the running "
                 "version processed without error (first: %s: %s); the running version stays",
                 failed, n, first.reason, first.detail);
        return -1;
    }
    rt_info("processor %s: the new version ran the last %zu events without error (outputs "
            "discarded, state untouched)", cand->name, n);
    cand->verified = n;
    return 0;
}

void rt_reload_recent_free(rt_reload *r)
{
    for (size_t i = 0; i < r->nrecent; i++) {
        for (size_t k = 0; r->recent[i].v && k < r->keep; k++)
            free(r->recent[i].v[k].raw);
        free(r->recent[i].v);
    }
    free(r->recent);
    r->recent = NULL;
    r->nrecent = 0;
}
