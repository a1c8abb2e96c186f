/* dlq_log.h - dead letters in the log: the first of a burst at once, the rest summarised. */
#ifndef RT_DLQ_LOG_H
#define RT_DLQ_LOG_H

#include <stdint.h>

#include <event2/event.h>

#define RT_DLQ_LOG_REASONS 8    /* reasons counted by name in one summary; the rest "other" */

typedef struct rt_dlq_log {
    struct event *ev;       /* the end of the current interval; pending inside one, when
                             * dead letters are counted, not logged */
    int interval_ms;
    uint64_t n;             /* counted in this interval */
    struct { char reason[64]; uint64_t n; } by[RT_DLQ_LOG_REASONS];
    int nby;
    char first[768];        /* the first counted one: reason, origin, detail */
} rt_dlq_log;

/* Set up on `base`; -1 when out of memory. */
int  rt_dlq_log_init(rt_dlq_log *l, struct event_base *base, int interval_ms);
/* One dead letter. Logged at once when none was in the last interval; else counted. */
void rt_dlq_log_note(rt_dlq_log *l, const char *reason, const char *where,
                     const char *detail);
/* Log what is counted and not logged yet (the end of a run). */
void rt_dlq_log_flush(rt_dlq_log *l);
/* Release the timer. */
void rt_dlq_log_free(rt_dlq_log *l);

#endif
