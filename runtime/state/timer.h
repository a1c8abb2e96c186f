/* timer.h - keyed timers of one processor, on event time (fired by the watermark) or
 * processing time; one timer per (partition, key, tag): setting it again moves it. */
#ifndef RT_TIMER_H
#define RT_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "changes.h"
#include "keymap.h"

enum rt_time_domain { RT_EVENT_TIME, RT_PROCESSING_TIME };

typedef struct rt_timer {
    int64_t at;
    enum rt_time_domain domain;
    int32_t partition;
    char *id;               /* key, '\0', tag */
    size_t klen, idlen;
} rt_timer;

typedef struct rt_timer_due {
    int64_t at;
    rt_timer *t;
    uint64_t seq;           /* order of setting, for ties */
} rt_timer_due;

typedef struct rt_timers {
    rt_keymap map;          /* (partition, key\0tag) -> rt_timer */
    rt_timer_due *heap[2];  /* per domain, stale entries skipped on pop */
    size_t nheap[2], capheap[2];
    uint64_t seq;
    rt_changes *changes;    /* state.changelog: every change is noted here; or NULL */
    /* usage counters */
    uint64_t fired;
} rt_timers;

/* Set (or move) the timer of (partition, key, tag); -1 when out of memory. */
int  rt_timers_set(rt_timers *ts, int32_t partition, const char *key, size_t klen,
                   const char *tag, size_t taglen, int64_t at, enum rt_time_domain domain);
/* Cancel it; 1 when there was one. */
int  rt_timers_cancel(rt_timers *ts, int32_t partition, const char *key, size_t klen,
                      const char *tag, size_t taglen);
/* The next timer of `domain` due at or before `now`, removed from the set (the caller
 * frees it with rt_timer_free), or NULL. */
rt_timer *rt_timers_pop_due(rt_timers *ts, enum rt_time_domain domain, int64_t now);
/* When the earliest timer of `domain` is due; INT64_MAX when none. */
int64_t rt_timers_next(rt_timers *ts, enum rt_time_domain domain);
/* Cancel every timer of `partition` (before its checkpoint is restored). */
void rt_timers_drop_partition(rt_timers *ts, int32_t partition);
/* Timers set. */
size_t rt_timers_count(const rt_timers *ts);
void rt_timer_free(rt_timer *t);
void rt_timers_free(rt_timers *ts);

#endif
