/* dlq_log.c - dead letters in the log without one line per bad event.
 *
 * A stream of bad input would otherwise bury every other line (and cost a write per
 * event). The first dead letter after a quiet interval is logged in full, so one bad
 * event is seen at once; the ones after it are counted by reason and logged as one
 * summary line per log.dead.letters.interval.ms, with the first of them as an example.
 * Every record is still in the dead-letter sink: the log only points at it. */
#include <stdio.h>
#include <string.h>

#include "dlq_log.h"
#include "log.h"

static void summarise(rt_dlq_log *l)
{
    char counts[768];
    size_t o = 0;
    counts[0] = '\0';
    for (int i = 0; i < l->nby && o < sizeof counts; i++)
        o += (size_t)snprintf(counts + o, sizeof counts - o, "%s%s %llu", i ? ", " : "",
                              l->by[i].reason, (unsigned long long)l->by[i].n);
    rt_warn("dead letters: %llu more (%s); the first of them: %s", (unsigned long long)l->n,
            counts, l->first);
    l->n = 0;
    l->nby = 0;
}

/* Start an interval. If the timer cannot be set, every dead letter is logged in full. */
static void arm(rt_dlq_log *l)
{
    struct timeval tv = { l->interval_ms / 1000, (l->interval_ms % 1000) * 1000 };
    if (l->ev)
        (void)event_add(l->ev, &tv);
}

/* The interval is over: summarise it and start another, or go quiet when it was. */
static void on_interval(evutil_socket_t fd, short what, void *arg)
{
    rt_dlq_log *l = arg;
    if (l->n) {
        summarise(l);
        arm(l);
    }
}

int rt_dlq_log_init(rt_dlq_log *l, struct event_base *base, int interval_ms)
{
    memset(l, 0, sizeof *l);
    l->interval_ms = interval_ms;
    l->ev = evtimer_new(base, on_interval, l);
    return l->ev ? 0 : -1;
}

void rt_dlq_log_note(rt_dlq_log *l, const char *reason, const char *where,
                     const char *detail)
{
    /* Inside an interval exactly while its timer is pending. */
    if (!l->ev || !evtimer_pending(l->ev, NULL)) {
        rt_warn("dead letter (%s) %s: %s; more within %d ms are summarised", reason, where,
                detail, l->interval_ms);
        arm(l);
        return;
    }
    if (l->n++ == 0)
        snprintf(l->first, sizeof l->first, "%s %s: %s", reason, where, detail);
    int i = 0;
    while (i < l->nby && strcmp(l->by[i].reason, reason) != 0)
        i++;
    if (i == l->nby && l->nby < RT_DLQ_LOG_REASONS) {
        snprintf(l->by[i].reason, sizeof l->by[i].reason, "%s", reason);
        l->by[i].n = 0;
        l->nby++;
    } else if (i == l->nby) {
        /* Past the named ones the last slot counts every other reason. */
        i = l->nby - 1;
        snprintf(l->by[i].reason, sizeof l->by[i].reason, "other");
    }
    l->by[i].n++;
}

void rt_dlq_log_flush(rt_dlq_log *l)
{
    if (l->n)
        summarise(l);
}

void rt_dlq_log_free(rt_dlq_log *l)
{
    if (l->ev)
        event_free(l->ev);
    l->ev = NULL;
}
