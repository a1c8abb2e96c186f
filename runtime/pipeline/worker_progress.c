/* worker_progress.c - `eddy run` on a terminal: a status line with events, events/s and
 * dead letters, and a summary at the end. Log lines keep scrolling above the status
 * line (rt_log_progress); nothing of it reaches a log file or a pipe. */
#include <stdio.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "worker_int.h"

#define PROGRESS_MS 500

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    int64_t t = rt_clock_ms(), dt = t - w->progress_at;
    double rate = dt > 0 ? (double)(w->records - w->progress_records) * 1e3 / (double)dt : 0;
    char line[200];
    snprintf(line, sizeof line, "events %llu  %.0f/s  outputs %llu  dead letters %llu",
             (unsigned long long)w->records, rate, (unsigned long long)w->out,
             (unsigned long long)w->dead);
    rt_log_progress(line);
    w->progress_at = t;
    w->progress_records = w->records;
}

int rt_worker_progress_start(rt_worker *w)
{
    /* Supervised workers share the supervisor's stderr: no status line there. */
    if (w->shared || !isatty(STDERR_FILENO))
        return 0;
    struct timeval tv = { 0, PROGRESS_MS * 1000 };
    w->progress_at = rt_clock_ms();
    w->progress_ev = event_new(w->base, -1, EV_PERSIST, on_progress, w);
    return w->progress_ev && event_add(w->progress_ev, &tv) == 0 ? 0 : -1;
}

void rt_worker_progress_end(rt_worker *w)
{
    if (w->progress_ev)
        rt_log_progress("");
    /* The same clock as w->started (rt_epoch_ms would truncate below it: "-0.0 s"), and
     * never below 0 should the wall clock step back. */
    double secs = rt_epoch_s() - w->started;
    if (secs < 0)
        secs = 0;
    char reasons[512] = "";
    size_t i = 0, o = 0;
    const char *reason, *unused;
    uint64_t n;
    while (o < sizeof reasons && rt_pairmap_next(&w->dead_by_reason, &i, &reason, &unused, &n))
        o += (size_t)snprintf(reasons + o, sizeof reasons - o, "%s%s %llu", o ? ", " : "",
                              reason, (unsigned long long)n);
    /* After a failure, outputs a sink still holds were never written: not counted. */
    uint64_t unwritten = 0;
    for (size_t k = 0; w->failed && k < w->sinks.n; k++)
        if (&w->sinks.v[k] != w->dlq)
            unwritten += rt_sink_pending(&w->sinks.v[k]);
    rt_info("done: %llu records, %llu outputs, %llu dead letters%s%s%s in %.1f s (%.0f/s)%s",
            (unsigned long long)w->records,
            (unsigned long long)(w->out > unwritten ? w->out - unwritten : 0),
            (unsigned long long)w->dead, w->dead ? " (" : "", reasons, w->dead ? ")" : "",
            secs, secs > 0 ? (double)w->records / secs : 0,
            w->failed ? "; stopped by a failure" : "");
}

void rt_worker_progress_free(rt_worker *w)
{
    if (w->progress_ev)
        event_free(w->progress_ev);
    w->progress_ev = NULL;
}
