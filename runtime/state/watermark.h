/* watermark.h - event-time progress of one worker: per input partition the largest
 * event time seen minus the allowed out-of-orderness; the watermark is the minimum over
 * the partitions not idle, and never goes back. */
#ifndef RT_WATERMARK_H
#define RT_WATERMARK_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_wm_part {
    char *topic;            /* NULL for a file source */
    int32_t partition;
    int64_t max_ts;         /* largest event time seen */
    int seen;               /* has had an event */
    int64_t seen_ms;        /* processing time of its last event (or assignment) */
} rt_wm_part;

typedef struct rt_watermark {
    rt_wm_part *v;
    size_t n, cap;
    int64_t out_of_orderness_ms, idle_timeout_ms;   /* idle 0: never idle */
    int64_t current;        /* INT64_MIN until the first event */
} rt_watermark;

/* Empty, with the two settings. */
void    rt_watermark_init(rt_watermark *wm, int64_t out_of_orderness_ms, int64_t idle_timeout_ms);
/* A partition assigned to this worker: until its first event it holds the watermark
 * back (unless idle). -1 when out of memory. */
int     rt_watermark_assign(rt_watermark *wm, const char *topic, int32_t partition,
                            int64_t now_ms);
/* An event of (topic, partition) with event time `ts`, seen at `now_ms`; -1 when out
 * of memory. */
int     rt_watermark_observe(rt_watermark *wm, const char *topic, int32_t partition,
                             int64_t ts, int64_t now_ms);
/* The watermark at `now_ms` (idle partitions left out); never less than before. */
int64_t rt_watermark_compute(rt_watermark *wm, int64_t now_ms);
/* Release. */
void    rt_watermark_free(rt_watermark *wm);

#endif
