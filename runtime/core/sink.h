/* sink.h - named outputs that processors emit to and dead letters go to. */
#ifndef RT_SINK_H
#define RT_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "track.h"

typedef struct rt_sink rt_sink;

/* A message header (Kafka), e.g. a dead letter's reason. */
typedef struct rt_header {
    const char *name;
    const char *value;
    size_t len;
} rt_header;

/* Everything about one output besides its bytes. */
typedef struct rt_out {
    rt_ticket *ticket;      /* held until the sink acknowledges the output; may be NULL */
    const char *key;        /* message key, NULL for none */
    size_t key_len;
    const rt_header *headers;
    size_t nheaders;
    const int32_t *partition;   /* Kafka: the partition to write to; NULL: by key */
} rt_out;

typedef struct rt_sink_ops {
    /* Queue one record (no newline). On 0 the sink owns one hold on out->ticket and
     * releases it with rt_sink_ack once the record is acknowledged. */
    int  (*write)(rt_sink *s, const char *rec, size_t len, const rt_out *out);
    int  (*flush)(rt_sink *s);
    void (*close)(rt_sink *s);
    /* Optional: write out everything within timeout_ms without the event loop; -1 if
     * something is left. */
    int  (*drain)(rt_sink *s, int timeout_ms);
    /* Optional: records accepted but not yet acknowledged. */
    size_t (*pending)(rt_sink *s);
    /* Optional (sinks that store consumed offsets with their rows, exactly once): lower
     * next[i] (-1: none yet) to the offset stored for (topics[i], partitions[i]), or
     * set it to RT_STORED_UNKNOWN where the sink has none or could not read them. May
     * block (partition assignment). -1: the offsets could not be read. */
    int  (*stored_offsets)(rt_sink *s, size_t n, const char *const *topics,
                           const int *partitions, long long *next);
} rt_sink_ops;

typedef struct rt_sinks rt_sinks;

/* A partition some exactly-once sink has no stored offset for: it resumes from the
 * group's offset (or auto.offset.reset), never from another sink's. */
#define RT_STORED_UNKNOWN (-2LL)

/* One kind of output (`sink.<name>.type=<kind>`), registered in sink.c's table. A new
 * kind is one file with one of these; no other sink and no worker code changes. */
typedef struct rt_sink_kind {
    const char *name;
    const rt_conf_key *keys;    /* the sink.*.<field> keys only it reads, with defaults
                                 * and help; NULL-terminated, or NULL */
    const char *required;   /* sink.<name>.<required> must be set, or NULL */
    unsigned flags;         /* RT_SINK_* below */
    /* Open the output: set s->ops and s->impl. -1 with err set. */
    int  (*open)(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen);
    /* Optional: check the settings without opening anything (`eddy check`). */
    int  (*check)(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen);
    /* Optional: the kind's metrics over its sinks in `ss` (Prometheus text). */
    int  (*metrics)(const rt_sinks *ss, rt_buf *out);
} rt_sink_kind;

/* sink.<name>.key names the table's key columns, not a field for the message key. */
#define RT_SINK_KEY_COLUMNS 1u
/* As dlq.sink with dlq.format=headers: the original bytes, the reason in headers. */
#define RT_SINK_RAW_DEAD_LETTERS 2u

struct rt_sink {
    char *name;
    const char *type;       /* its kind's name */
    const rt_sink_kind *kind;
    const char *key_field;  /* sink.<name>.key: record field used as message key */
    int raw_dead_letters;   /* as dlq.sink: original bytes as value, the rest as headers */
    size_t max_record;      /* largest record it can take (Kafka: message.max.bytes); 0 any */
    const rt_sink_ops *ops;
    void *impl;
    struct rt_kafka_producer *producer;     /* Kafka sinks: the producer it writes with */
    rt_tracker *tracker;
    unsigned long long records;     /* written so far (eddy_events_out_total) */
};

/* What sinks need from their worker. */
typedef struct rt_sink_env {
    rt_tracker *tracker;
    struct event_base *base;
    const char *kafka_bootstrap;    /* the embedded cluster's, or NULL */
    /* A record a sink gave up on (Kafka: delivery failed for good). The worker
     * dead-letters it, taking its own hold on `ticket` before the sink releases. */
    void (*undeliverable)(void *arg, rt_sink *s, const char *rec, size_t len,
                          rt_ticket *ticket, const char *error);
    /* A sink acknowledged a batch: a paused source may go on. May be NULL. */
    void (*progress)(void *arg);
    void *arg;
    int worker;                     /* its number under a supervisor, else 0 */
    int capture;                    /* eddy test: every sink is checked as by `eddy
                                     * check`, then keeps its records in memory */
} rt_sink_env;

struct rt_sinks {
    rt_sink *v;
    size_t n;
    rt_sink_env env;
    struct rt_kafka_producer *kafka;    /* shared by the Kafka sinks, NULL if none */
    struct rt_kafka_producer *kafka_dlq;    /* the dead-letter sink's own, under at least
                                             * once (sink_kafka.c); NULL if none */
};

/* Check every sink.<name>.* key; with `env` also open the outputs (NULL: only check,
 * for `eddy check`). -1 with err set. */
int  rt_sinks_setup(rt_sinks *ss, const rt_config *c, const rt_sink_env *env, char *err,
                    size_t errlen);
/* sink.<name>.<field> of the config, or NULL when unset. */
const char *rt_sink_conf(const rt_config *c, const char *name, const char *field);
/* The same as an int (keys with a default in config_keys.c). */
long long   rt_sink_conf_int(const rt_config *c, const char *name, const char *field);
/* "FILE:LINE: sink.<name>.<field>: what" into err, at the key's line, or at the sink's
 * type line when the key is missing. Returns -1. */
int rt_sink_conf_error(const rt_config *c, const char *name, const char *field, char *err,
                       size_t errlen, const char *what);
/* The sink called `name`, or NULL. */
rt_sink *rt_sinks_find(const rt_sinks *ss, const char *name);
/* Write one record; -1 when the output failed at once (disk full, pipe closed). */
int  rt_sink_write(rt_sink *s, const char *rec, size_t len, const rt_out *out);
/* A sink's acknowledgement of one record written for `ticket`. */
void rt_sink_ack(rt_sink *s, rt_ticket *ticket);
/* Flush every sink; -1 if any failed (all are tried). */
int  rt_sinks_flush(rt_sinks *ss);
/* Flush and wait up to `timeout_ms` for every acknowledgement (shutdown, revoke).
 * -1 if something is still unacknowledged. */
int  rt_sinks_drain(rt_sinks *ss, int timeout_ms);
/* Records one sink has accepted but not yet had acknowledged. */
size_t rt_sink_pending(const rt_sink *s);
/* Records accepted by sinks and not yet acknowledged (file-source backpressure). */
size_t rt_sinks_pending(const rt_sinks *ss);
/* eddy test (rt_sink_env.capture): the records `s` took since the last clear, each
 * followed by a newline (records hold none: JSON, or an input line). */
const rt_buf *rt_sink_captured(const rt_sink *s);
void rt_sink_captured_clear(rt_sink *s);
/* Close and free every sink. */
void rt_sinks_close(rt_sinks *ss);

/* One series of a kind's metrics. */
typedef struct rt_sink_metric {
    const char *name, *type, *help;
} rt_sink_metric;
/* A kind's series over its sinks in ss (those whose ops are `ops`), labelled by sink:
 * `values` fills v[0..n) for one sink. Nothing when the kind has no sink. -1 when out
 * of memory. */
int  rt_sink_kind_metrics(const rt_sinks *ss, const rt_sink_ops *ops, const rt_sink_metric *m,
                          size_t n, void (*values)(rt_sink *s, double *v), rt_buf *out);
/* Every sink's metrics, kind by kind. -1 when out of memory. */
int  rt_sinks_metrics(const rt_sinks *ss, rt_buf *out);
/* Lower next[i] to what each sink that stores offsets with its rows has stored; -1 when
 * one of them could not be read (it says which). */
int  rt_sinks_stored_offsets(rt_sinks *ss, size_t n, const char *const *topics,
                             const int *partitions, long long *next);

/* The registry (sink.c), NULL-terminated. */
extern const rt_sink_kind *const rt_sink_kinds[];
/* The kinds (one file each). */
extern const rt_sink_kind rt_sink_kind_stdout, rt_sink_kind_file, rt_sink_kind_kafka,
    rt_sink_kind_mysql, rt_sink_kind_elasticsearch, rt_sink_kind_clickhouse;

/* processing.guarantee=exactly_once (sink_kafka.c): the worker's shared producer is
 * transactional; every output and dead letter between two commits is in one
 * transaction with the consumed offsets. */
typedef struct rt_txn_offset {
    const char *topic;
    int partition;
    long long next;         /* the next offset to consume */
} rt_txn_offset;
#define RT_TXN_ABORTED (-1)     /* rolled back: the input must be read again from the
                                 * last committed offsets */
#define RT_TXN_FATAL (-2)       /* the producer is fenced or broken: stop the worker */
#define RT_TXN_MIGRATED (-3)    /* rolled back because the group moved on without this
                                 * member (a rebalance it missed): the partitions' new
                                 * owners read those events again (Kafka Streams'
                                 * TaskMigrated) */
/* Make sure the producer exists (one is made when no Kafka sink did), register its
 * transactional.id with the coordinator and begin the first transaction. Blocks up to
 * timeout_ms (start-up, before the loop runs). -1 with err set. */
int  rt_kafka_txn_open(rt_sinks *ss, const rt_config *c, int timeout_ms, char *err,
                       size_t errlen);
/* Send the offsets (with the consumer's group metadata, rd_kafka_consumer_group_metadata)
 * into the transaction, commit it and begin the next. Called at a quiet point: nothing
 * in flight. 0, RT_TXN_ABORTED, RT_TXN_MIGRATED or RT_TXN_FATAL with `why` set. */
int  rt_kafka_txn_commit(rt_sinks *ss, const rt_txn_offset *o, size_t n, void *group_metadata,
                         int timeout_ms, char *why, size_t whylen);
/* The same without waiting on the loop: the calls run on a thread while the loop goes
 * on, and what the sinks write meanwhile is held, then produced into the next
 * transaction. `done` is called on the loop with the outcome (0 or an RT_TXN_* code, and
 * why). 0 once started; -1 with `why` set when it could not start. The group metadata
 * is the callee's either way. One at a time; rt_kafka_txn_commit first waits for it. */
typedef void (*rt_txn_done)(void *arg, int got, const char *why);
int  rt_kafka_txn_commit_start(rt_sinks *ss, const rt_txn_offset *o, size_t n,
                               void *group_metadata, int timeout_ms, rt_txn_done done,
                               void *arg, char *why, size_t whylen);
/* Wait for the commit started so, if one is; its `done` runs before this returns. */
void rt_kafka_txn_commit_wait(rt_sinks *ss);

/* The changelog and repartition topics (sink_kafka.c): a Kafka sink of eddy's own on
 * the worker's shared producer (in its transactions under exactly_once), writing to
 * `topic`, not listed among the configured sinks. Records go to the partition
 * out->partition names (NULL: by the key, with the producer's partitioner); a NULL
 * record is a tombstone. NULL with err set. */
rt_sink *rt_kafka_internal_sink(rt_sinks *ss, const rt_config *c, const char *name,
                                const char *topic, char *err, size_t errlen);
/* Create `topic` with `partitions` through the shared producer's connection, or check
 * the one there has as many. `compact`: created with cleanup.policy=compact (a
 * changelog), and an existing one must be compacted unless `any_policy` (librdkafka's
 * mock cluster neither compacts nor describes configs); else the broker's default
 * policy (a repartition topic). Waits up to timeout_ms (start-up, before the loop). -1
 * with err set. */
int rt_kafka_internal_topic(rt_sinks *ss, const char *topic, int partitions, int compact,
                            int any_policy, int timeout_ms, char *err, size_t errlen);
/* Keep, for internal sink `s` (one per producer) whose topic has `partitions`, the
 * offset after the last record acknowledged in each partition; -1 when out of memory
 * or already kept. */
int rt_kafka_track_acked(rt_sink *s, int partitions);
/* That offset for `partition`: -1 before any acknowledgement (or not kept). */
int64_t rt_kafka_acked_next(const rt_sink *s, int32_t partition);
/* The number of partitions of `topic`, as the brokers say; -1 with err set. */
int rt_kafka_topic_partitions(rt_sinks *ss, const char *topic, int timeout_ms, char *err,
                              size_t errlen);

/* The Kafka sinks' shared producer (sink_kafka.c): wait up to timeout_ms for its
 * deliveries (-1 if some are left); free it. */
int  rt_kafka_producer_drain(struct rt_kafka_producer *kp, int timeout_ms);
void rt_kafka_producer_free(struct rt_kafka_producer *kp);

#endif
