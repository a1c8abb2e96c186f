/* source_kafka.h - BusinessEvents from Kafka topics (consumer group), at least once. */
#ifndef RT_SOURCE_KAFKA_H
#define RT_SOURCE_KAFKA_H

#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "event.h"
#include "track.h"

typedef struct rt_source_kafka rt_source_kafka;

typedef struct rt_kafka_source_cb {
    /* One record; `ticket` is held once and must be released when the record is done. */
    void (*record)(void *arg, const char *raw, size_t len, const rt_origin *origin,
                   rt_ticket *ticket);
    /* A poll's worth of records was handed over. */
    void (*batch_end)(void *arg);
    /* Wait up to timeout_ms for every in-flight output (before partitions are given up). */
    int  (*drain)(void *arg, int timeout_ms);
    /* Partitions were assigned. Set next[i] where (topics[i], partitions[i]) should
     * resume by offsets the sinks stored themselves (exactly-once MySQL sinks), used
     * when ahead of the group's offset; set from[i] where it must resume exactly (a
     * checkpoint's offset, even behind the group's). Leave -1 elsewhere. May be NULL. */
    void (*assigned)(void *arg, size_t n, const char *const *topics, const int *partitions,
                     long long *next, long long *from);
    void *arg;
} rt_kafka_source_cb;

/* Join the consumer group and subscribe to source.topics. NULL with err set. */
rt_source_kafka *rt_source_kafka_open(struct event_base *base, const rt_config *c,
                                      const char *bootstrap, rt_tracker *tracker,
                                      const rt_kafka_source_cb *cb, char *err, size_t errlen);
/* Stop handing over records (SIGTERM); what was not handed over is read again later. */
void rt_source_kafka_stop(rt_source_kafka *s);
/* Commit the stored offsets now, asynchronously; safe from another thread (the worker's
 * admin thread, while its loop is stuck in a Lua call). */
void rt_source_kafka_commit_now(rt_source_kafka *s);
/* Commit the stored offsets, leave the group, free. -1 when the commit failed. */
int  rt_source_kafka_close(rt_source_kafka *s);
/* Partitions currently assigned to this member. */
int  rt_source_kafka_assigned(rt_source_kafka *s);
/* Consumer metrics: lag and records per partition, rebalances, paused partitions. */
int  rt_source_kafka_metrics(rt_source_kafka *s, rt_buf *out);

#endif
