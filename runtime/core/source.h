/* source.h - where a worker's events come from (`source.type=<kind>`): one registration
 * per kind (plugins/in_<kind>/), found by name in source.c's table. The worker sees
 * only this interface; adding a kind touches no worker code. */
#ifndef RT_SOURCE_H
#define RT_SOURCE_H

#include <stddef.h>

#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "event.h"
#include "track.h"

typedef struct rt_source rt_source;

/* What a source tells its worker; a kind calls only what applies to it. */
typedef struct rt_source_cb {
    /* One record (a line without its newline, a message's value). `ticket`, when not
     * NULL, is held once and released when the record is done. */
    void (*record)(void *arg, const char *raw, size_t len, const rt_origin *origin,
                   rt_ticket *ticket);
    /* A read's or a poll's worth of records was handed over: a time to flush outputs. */
    void (*batch_end)(void *arg);
    /* A bounded input ended, or failed (failed=1), or was stopped with a partial line
     * left (`rest`/`rest_len`, NULL when none). */
    void (*end)(void *arg, int failed, const char *rest, size_t rest_len,
                const rt_origin *origin);
    /* Wait up to timeout_ms for every in-flight output, without the loop (partitions
     * given up while stopping). */
    int  (*drain)(void *arg, int timeout_ms);
    /* Partitions were assigned. Set next[i] where (topics[i], partitions[i]) should
     * resume by offsets the sinks stored themselves (exactly-once MySQL sinks), used
     * when ahead of the group's offset; set from[i] where it must resume exactly (a
     * checkpoint's offset, even behind the group's). Leave -1 elsewhere. Under
     * exactly_once `committed` holds the group's committed offsets (< 0: none), or is
     * NULL when they could not be read; otherwise it is NULL. */
    void (*assigned)(void *arg, size_t n, const char *const *topics, const int *partitions,
                     const long long *committed, long long *next, long long *from);
    /* processing.guarantee=exactly_once: commit the transaction (outputs and offsets)
     * before partitions are given up. 1: not now, events are in flight (ask again);
     * with `force` (stopping, after a drain) it commits what is done. 0 committed, -1
     * failed (the worker stops). */
    int  (*commit_txn)(void *arg, int force);
    /* Optional: runs on a thread of the source's while an assignment waits, before
     * `assigned` (which then finds what it read): read what the partitions' state needs
     * (the changelog). -1 when it could not; `assigned` says so. */
    int  (*load)(void *arg, size_t n, const char *const *topics, const int *partitions);
    /* Optional: partitions are given up, every event of theirs done, and their offsets
     * are about to be committed (at least once): store what they should be (a
     * checkpoint of the partitions). */
    void (*giving_up)(void *arg, size_t n, const char *const *topics, const int *partitions);
    void *arg;
} rt_source_cb;

/* What a source gets from its worker. */
typedef struct rt_source_env {
    struct event_base *base;
    const rt_config *cfg;
    rt_tracker *tracker;        /* the worker's; a kind may set its store callback */
    const char *kafka_bootstrap;    /* the embedded cluster's, or NULL */
    int input_fd;               /* > 0: the input relayed by a supervisor (a pipe) */
    long long input_line;       /* lines of it done before the first one sent */
    size_t max_record;          /* event.max.bytes */
    /* Kafka: eddy's repartition topics (comma list), read beside source.topics and
     * assigned with the same partition numbers (the range assignor), or NULL. */
    const char *repartition_topics;
    rt_source_cb cb;
} rt_source_env;

/* The source commits consumed offsets to a consumer group: it never ends by itself,
 * events not finished are read again after a restart, and keyed state is
 * checkpointed by its partitions. */
#define RT_SOURCE_COMMITS 1u

typedef struct rt_source_kind {
    const char *name;
    unsigned flags;             /* RT_SOURCE_* */
    const rt_conf_key *keys;    /* the source.* keys only it reads, with defaults and
                                 * help; NULL-terminated, or NULL */
    /* Start reading on env->base: set s->impl. -1 with err set. */
    int  (*open)(rt_source *s, const rt_source_env *env, char *err, size_t errlen);
    /* Stop handing over records (SIGTERM, a failed output). */
    void (*stop)(rt_source *s);
    /* Optional: slow down (the worker's own backpressure) or go on. */
    void (*pause)(rt_source *s, int pause);
    /* Optional: commit what is done now, asynchronously; called from the admin thread. */
    void (*commit_now)(rt_source *s);
    /* Optional: the consumer group's metadata for a Kafka transaction (an
     * rd_kafka_consumer_group_metadata_t the caller destroys), or NULL. */
    void *(*group_metadata)(rt_source *s);
    /* Optional: Prometheus text of its metrics. -1 when out of memory. */
    int  (*metrics)(rt_source *s, rt_buf *out);
    /* Where the input stands, for log lines ("in.ndjson:42", "topics events"). */
    void (*where)(rt_source *s, char *buf, size_t len);
    /* Commit what is done and release everything. -1 when the last commit failed. */
    int  (*close)(rt_source *s);
} rt_source_kind;

struct rt_source {
    const rt_source_kind *kind;     /* NULL until opened */
    void *impl;
};

/* The registry (source.c), NULL-terminated. */
extern const rt_source_kind *const rt_source_kinds[];
/* The kind `source.type` names, or NULL (config_keys.c lists the names). */
const rt_source_kind *rt_source_kind_of(const rt_config *c);
/* Whether the configured kind has RT_SOURCE_* `flag` (before any source is open:
 * config checks, the supervisor). */
int  rt_source_kind_has(const rt_config *c, unsigned flag);
/* Open the configured kind. -1 with err set. */
int  rt_source_open(rt_source *s, const rt_source_env *env, char *err, size_t errlen);
/* Whether the open source's kind has RT_SOURCE_* `flag` (0 before it is open). */
int  rt_source_has(const rt_source *s, unsigned flag);
void rt_source_stop(rt_source *s);
void rt_source_pause(rt_source *s, int pause);
void rt_source_commit_now(rt_source *s);
void *rt_source_group_metadata(rt_source *s);
int  rt_source_metrics(rt_source *s, rt_buf *out);
/* "?" before it is open. */
void rt_source_where(rt_source *s, char *buf, size_t len);
/* Close (safe on one never opened, and twice). -1 when the last commit failed. */
int  rt_source_close(rt_source *s);

/* The kinds (one folder each). */
extern const rt_source_kind rt_source_kind_file, rt_source_kind_kafka;

#endif
