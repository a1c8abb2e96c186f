/* kafka.h - what the Kafka source and sink share: client config from kafka.* keys,
 * the embedded mock cluster, and waking the event loop from librdkafka queues. */
#ifndef RT_KAFKA_H
#define RT_KAFKA_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "config.h"

/* librdkafka config from every kafka.* key (eddy's own kafka.embedded.* left out);
 * `bootstrap`, when not NULL, replaces kafka.bootstrap.servers. A key librdkafka
 * refuses gives "FILE:LINE: key: its message". NULL with err set. */
rd_kafka_conf_t *rt_kafka_conf(const rt_config *c, const char *bootstrap, char *err,
                               size_t errlen);

/* Set a property eddy needs on `conf`; -1 with err set when librdkafka refuses it.
 * `conf` stays the caller's. */
int  rt_kafka_conf_put(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                       size_t errlen);

/* processing.guarantee=exactly_once in `c`. */
int  rt_kafka_exactly_once(const rt_config *c);

/* librdkafka's Kafka-protocol mock cluster, reachable over TCP (kafka.embedded=true). */
typedef struct rt_kafka_embedded {
    rd_kafka_t *owner;      /* the cluster lives as long as this handle */
    const char *bootstraps;
} rt_kafka_embedded;

/* Start `brokers` mock brokers and create `topics` (comma list) with `partitions`. */
int  rt_kafka_embedded_start(rt_kafka_embedded *e, int brokers, int partitions,
                             const char *topics, char *err, size_t errlen);
void rt_kafka_embedded_stop(rt_kafka_embedded *e);

/* Calls `cb(arg)` on the loop whenever `queue` becomes non-empty. */
typedef struct rt_kafka_waker {
    rd_kafka_queue_t *queue;    /* not owned; must outlive the waker */
    int fds[2];
    struct event *ev;
    void (*cb)(void *arg);
    void *arg;
} rt_kafka_waker;

int  rt_kafka_waker_start(rt_kafka_waker *w, struct event_base *base, rd_kafka_queue_t *queue,
                          void (*cb)(void *arg), void *arg);
/* Detach from the queue first, then close: librdkafka must not write to a reused fd. */
void rt_kafka_waker_stop(rt_kafka_waker *w);

#endif
