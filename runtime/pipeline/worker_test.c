/* worker_test.c - a worker driven one event at a time by `eddy test` (runtime/testkit).
 *
 * It is the worker `eddy run` uses, built with RT_WORKER_TEST: the same decode, route,
 * processor calls, windows, timers, state and dead letters, but no source; its sinks
 * keep their records in memory and its lookups answer from fixtures, so nothing waits
 * and every call below returns with its event finished. */
#include <string.h>

#include "worker_int.h"

int rt_worker_test_send(rt_worker *w, const char *raw, size_t len, int32_t partition)
{
    static const char file[] = "(test)";
    rt_origin origin = { .file = file, .line = (long long)w->records + 1,
                         .partition = partition };
    rt_worker_handle(w, raw, len, &origin, NULL);
    if (w->head)        /* only a lookup can hold a job, and fixtures answer at once */
        return -1;
    return w->failed ? -1 : rt_worker_flush(w);
}

int rt_worker_test_advance(rt_worker *w, int64_t watermark, int64_t now_ms)
{
    if (watermark != INT64_MIN && w->windowed)
        rt_worker_watermark_to(w, watermark);
    if (now_ms != INT64_MIN)
        rt_worker_clock_to(w, now_ms);
    return w->failed ? -1 : rt_worker_flush(w);
}

rt_processor *rt_worker_find_processor(rt_worker *w, const char *name)
{
    for (size_t i = 0; i < w->nprocs; i++)
        if (!strcmp(w->procs[i]->name, name))
            return w->procs[i];
    return NULL;
}

const rt_sinks *rt_worker_test_sinks(rt_worker *w)
{
    return &w->sinks;
}

rt_lookups *rt_worker_test_lookups(rt_worker *w)
{
    return &w->lookups;
}
