/* source_kafka.c - Kafka consumer source (consumer group, at least once), registered as
 * rt_source_kind_kafka (core/source.h).
 *
 * enable.auto.offset.store is forced off: an offset is stored (and later committed by
 * librdkafka's auto commit, or at close) only when the tracker says the event and all
 * earlier ones of its partition are fully acknowledged (with checkpoints: once one
 * holds them, rt_track_hold_stores). Polling never stops, so the
 * group never evicts us; when too many events are unfinished, the partitions are
 * paused instead, and resumed when half of them are done.
 *
 * Rebalances do not stop the loop: a revocation waits for its partitions' events on the
 * loop (revoke_check, every poll), and the group's committed offsets that an
 * assignment may need are read on a thread (begin_assign); librdkafka waits for our
 * assign or unassign meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "source.h"

#define POLL_BATCH 1000         /* records per loop turn, so other events get a turn */
#define TICK_MS 100             /* backpressure check, and a poll in case a wake was missed */

typedef struct rt_source_kafka rt_source_kafka;
typedef struct assigning assigning;
typedef struct revoking revoking;

struct rt_source_kafka {
    rd_kafka_t *rk;
    struct event_base *base;
    rd_kafka_queue_t *queue;
    rt_kafka_waker waker;
    struct event *more;         /* re-run the poll when a batch did not empty the queue */
    struct event *tick;
    rt_tracker *tracker;
    rt_source_cb cb;
    char *topics;               /* source.topics, for log lines */
    int stopped, paused, cooperative;
    int held;                   /* paused by the worker (kafka_pause), not backpressure */
    int txn;                    /* processing.guarantee=exactly_once: offsets go into the
                                 * worker's transactions, never committed by the group */
    assigning *assigning;       /* an assignment waiting for committed offsets */
    revoking *revoking;         /* a revocation waiting for its events */
    uint64_t max_inflight, revoke_ms;
    int early_close_aborts; /* cooperative-sticky before librdkafka 2.3.0 (leave_group) */
    int revoked;                /* partitions left us: one may come back paused */
    /* metrics */
    uint64_t rebalances, pauses;
    rt_pairmap records;         /* (topic, partition) -> records consumed */
    struct {                    /* records of one partition in a row, not yet counted */
        char topic[256];        /* Kafka's names are at most 249 bytes */
        int32_t partition;
        uint64_t n;
    } run;
};

static void store_offset(void *arg, const char *topic, int32_t partition, int64_t next)
{
    rt_source_kafka *s = arg;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        rt_error("kafka source: out of memory storing an offset");
        return;
    }
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(s->rk, l);
    /* A partition revoked meanwhile refuses the store; its next owner reads again. */
    if (err)
        rt_debug("kafka source: cannot store offset %s/%d@%lld: %s", topic, (int)partition,
                 (long long)next, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

static void set_paused(rt_source_kafka *s, int pause)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(s->rk, &assigned) || !assigned)
        return;
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(s->rk, assigned)
                                    : rd_kafka_resume_partitions(s->rk, assigned);
    if (err)
        rt_warn("kafka source: cannot %s partitions: %s", pause ? "pause" : "resume",
                rd_kafka_err2str(err));
    else if (pause != s->paused && !s->held)
        rt_info("kafka source: %s %d partitions (%llu events unfinished)",
                pause ? "paused" : "resumed", assigned->cnt,
                (unsigned long long)s->tracker->inflight);
    s->paused = pause;
    s->pauses += (uint64_t)(pause && !s->held);    /* backpressure's, not a checkpoint's */
    rd_kafka_topic_partition_list_destroy(assigned);
}

static void backpressure(rt_source_kafka *s)
{
    if (s->held)
        return;     /* the worker holds the partitions still (a checkpoint) */
    if (!s->paused && s->tracker->inflight >= s->max_inflight)
        set_paused(s, 1);
    else if (s->paused && s->tracker->inflight <= s->max_inflight / 2)
        set_paused(s, 0);
}

/* An assignment waiting for the group's committed offsets, read on a thread of its own
 * (rd_kafka_committed waits for the coordinator); librdkafka waits for our assign. */
typedef struct assigning {
    rt_source_kafka *s;
    rd_kafka_topic_partition_list_t *parts;     /* as assigned; offsets set on finishing */
    rd_kafka_topic_partition_list_t *committed; /* the group's offsets, by the thread */
    rd_kafka_resp_err_t err;
    const char **topics;        /* of parts, for the worker */
    int *partitions;
    long long *stored, *from;   /* per partition, from the worker (cb.assigned) */
    int late;                   /* cb.load reads first: cb.assigned only once it has */
    pthread_t thread;
    int threaded;
    int pipe[2];                /* the thread's "done" to the loop */
    struct event *done;
} assigning;

/* A revocation in progress: its partitions are paused and their records refused while
 * the events already read finish on the loop; librdkafka waits for our unassign. */
typedef struct revoking {
    rd_kafka_topic_partition_list_t *parts;
    int64_t until;              /* shutdown.timeout.ms after it began */
    int was_paused;             /* exactly_once pauses every partition meanwhile */
} revoking;

static void assign_free(assigning *a)
{
    if (!a)
        return;
    if (a->done)
        event_free(a->done);
    for (int i = 0; i < 2; i++)
        if (a->pipe[i] >= 0)
            close(a->pipe[i]);
    if (a->parts)
        rd_kafka_topic_partition_list_destroy(a->parts);
    if (a->committed)
        rd_kafka_topic_partition_list_destroy(a->committed);
    free(a->topics);
    free(a->partitions);
    free(a->stored);
    free(a->from);
    free(a);
}

/* Give librdkafka the partitions, with the pause state the source is in. */
static void take_partitions(rt_source_kafka *s, rd_kafka_topic_partition_list_t *parts)
{
    if (s->cooperative)
        rd_kafka_error_destroy(rd_kafka_incremental_assign(s->rk, parts));
    else
        rd_kafka_assign(s->rk, parts);
    /* A pause or resume moves librdkafka's op version of a partition even when it
     * changes nothing, and a fetch start that took its version before ours but was
     * queued after ours is dropped as outdated: that partition is never fetched, with
     * no error (librdkafka#5591, #2190). So resume only once partitions have left us:
     * one revoked while paused (every revocation pauses them) keeps its pause. */
    if (s->paused)
        rd_kafka_pause_partitions(s->rk, parts);
    else if (s->revoked)
        rd_kafka_resume_partitions(s->rk, parts);
}

/* Exactly once: the worker restores the checkpoint that the group's committed offsets
 * stand for, so it is told them first (NULL when they could not be read). */
static void tell_worker(rt_source_kafka *s, assigning *a)
{
    long long *committed = NULL;
    int n = a->parts->cnt;
    if (s->txn && !a->err && a->committed && (committed = malloc((n ? n : 1) * sizeof *committed)))
        for (int i = 0; i < n; i++)
            committed[i] = a->committed->elems[i].offset;
    if (s->txn && a->err)
        rt_error("kafka source: cannot read the group's committed offsets (%s)",
                 rd_kafka_err2str(a->err));
    s->cb.assigned(s->cb.arg, (size_t)n, a->topics, a->partitions, committed, a->stored,
                   a->from);
    free(committed);
}

/* A checkpoint's offset decides where a partition resumes, always: the restored state
 * stands for exactly the events before it. Otherwise sinks that store offsets with
 * their rows (exactly once) decide where a partition resumes when they are behind the
 * group's committed offset, or when the group has none: their table is the truth. When
 * they are ahead, the committed offset stands, so the other sinks (and dead letters)
 * still see every event; the exactly-once sink skips what it has. */
static void finish_assign(rt_source_kafka *s)
{
    assigning *a = s->assigning;
    rd_kafka_topic_partition_list_t *parts = a->parts;
    s->assigning = NULL;
    if (a->threaded)
        pthread_join(a->thread, NULL);
    if (s->txn)
        tell_worker(s, a);
    else if (a->late)
        s->cb.assigned(s->cb.arg, (size_t)parts->cnt, a->topics, a->partitions, NULL,
                       a->stored, a->from);
    if (!s->txn && a->err)
        rt_warn("kafka source: cannot read committed offsets (%s); the sinks' stored "
                "offsets decide", rd_kafka_err2str(a->err));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t have = a->err || !a->committed ? -1 : a->committed->elems[i].offset;
        if (a->from[i] >= 0) {
            p->offset = a->from[i];
            rt_info("kafka source: %s[%d] resumes at offset %lld of its checkpoint", p->topic,
                    (int)p->partition, a->from[i]);
            continue;
        }
        if (a->stored[i] < 0 || (have >= 0 && have <= a->stored[i]))
            continue;
        p->offset = a->stored[i];
        rt_info("kafka source: %s[%d] resumes at offset %lld stored by the exactly-once "
                "sinks (group offset %lld)", p->topic, (int)p->partition, a->stored[i],
                (long long)have);
    }
    take_partitions(s, parts);
    assign_free(a);
}

static void *read_committed(void *arg)
{
    assigning *a = arg;
    rt_source_cb *cb = &a->s->cb;
    a->err = rd_kafka_committed(a->s->rk, a->committed, 10000);
    if (a->late || (cb->load && a->parts->cnt))
        cb->load(cb->arg, (size_t)a->parts->cnt, a->topics, a->partitions);
    if (a->threaded) {
        ssize_t n;
        do
            n = write(a->pipe[1], "x", 1);
        while (n < 0 && errno == EINTR);
    }
    return NULL;
}

static void on_committed(evutil_socket_t fd, short what, void *arg)
{
    rt_source_kafka *s = arg;
    if (s->assigning)
        finish_assign(s);
}

/* The worker says where each partition resumes; the group's committed offsets are
 * needed where an exactly-once sink stored one and no checkpoint decides, and always
 * under exactly_once, before the worker is told (tell_worker). */
static void begin_assign(rt_source_kafka *s, rd_kafka_topic_partition_list_t *parts)
{
    size_t n = (size_t)parts->cnt, cap = n ? n : 1;
    assigning *a = calloc(1, sizeof *a);
    if (a)
        a->pipe[0] = a->pipe[1] = -1;
    if (!a || !(a->topics = malloc(cap * sizeof *a->topics)) ||
        !(a->partitions = malloc(cap * sizeof *a->partitions)) ||
        !(a->parts = rd_kafka_topic_partition_list_copy(parts)) ||
        !(a->stored = malloc(cap * sizeof *a->stored)) ||
        !(a->from = malloc(cap * sizeof *a->from))) {
        rt_warn("kafka source: out of memory reading the sinks' stored offsets");
        assign_free(a);
        take_partitions(s, parts);
        return;
    }
    a->s = s;
    s->assigning = a;
    /* An empty (cooperative) assignment has nothing to restore; answered at once, as
     * librdkafka expects, or its fetching of the partitions kept may stall. */
    int need_committed = s->txn && n > 0;
    for (size_t i = 0; i < n; i++) {
        a->topics[i] = a->parts->elems[i].topic;
        a->partitions[i] = (int)a->parts->elems[i].partition;
        a->stored[i] = a->from[i] = -1;
    }
    /* State read from elsewhere (cb.load) is read on the thread, before the worker is
     * told; the group's offsets are read alongside. */
    int load = s->cb.load && n > 0;
    a->late = load && !s->txn;
    if (!s->txn && !a->late)
        s->cb.assigned(s->cb.arg, n, a->topics, a->partitions, NULL, a->stored, a->from);
    for (size_t i = 0; i < n; i++)
        need_committed |= a->from[i] < 0 && a->stored[i] >= 0;
    if (!need_committed && !load) {
        finish_assign(s);
        return;
    }
    if (!(a->committed = rd_kafka_topic_partition_list_copy(parts))) {
        a->err = RD_KAFKA_RESP_ERR__FAIL;
        finish_assign(s);
        return;
    }
    if (pipe2(a->pipe, O_CLOEXEC | O_NONBLOCK) == 0 &&
        (a->done = event_new(s->base, a->pipe[0], EV_READ, on_committed, s)) &&
        event_add(a->done, NULL) == 0 && pthread_create(&a->thread, NULL, read_committed, a) == 0) {
        a->threaded = 1;
        return;     /* on_committed finishes */
    }
    rt_warn("kafka source: no thread for reading committed offsets; reading them on the loop");
    read_committed(a);
    finish_assign(s);
}

/* Records of this partition are being given up. */
static int is_revoking(const rt_source_kafka *s, const char *topic, int32_t partition)
{
    for (int i = 0; s->revoking && i < s->revoking->parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &s->revoking->parts->elems[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return 1;
    }
    return 0;
}

static void tell_giving_up(rt_source_kafka *s, const rd_kafka_topic_partition_list_t *parts)
{
    size_t n = (size_t)parts->cnt;
    const char **topics = malloc((n ? n : 1) * sizeof *topics);
    int *partitions = malloc((n ? n : 1) * sizeof *partitions);
    if (!topics || !partitions) {
        rt_warn("kafka source: out of memory telling the worker of revoked partitions");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        topics[i] = parts->elems[i].topic;
        partitions[i] = (int)parts->elems[i].partition;
    }
    s->cb.giving_up(s->cb.arg, n, topics, partitions);
out:
    free(topics);
    free(partitions);
}

/* Commit and give the partitions up. The commit is queued before the unassign, so the
 * group has these offsets before another member is given the partitions. */
static void give_up(rt_source_kafka *s, rd_kafka_topic_partition_list_t *parts, int async,
                    int txn_committed)
{
    if (!s->txn && s->cb.giving_up)
        tell_giving_up(s, parts);
    rd_kafka_resp_err_t cerr = s->txn ? 0 : rd_kafka_commit(s->rk, NULL, async);
    if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        rt_warn("kafka source: commit on revoke failed: %s", rd_kafka_err2str(cerr));
    /* The transaction holds the offsets: it commits before the partitions go. */
    if (s->txn && !txn_committed && s->cb.commit_txn(s->cb.arg, 1) < 0)
        rt_error("kafka source: the transaction did not commit before the revocation; the "
                 "next owner reads from the last committed offsets");
    for (int i = 0; i < parts->cnt; i++) {
        rt_track_part *p = rt_track_part_get(s->tracker, parts->elems[i].topic,
                                             parts->elems[i].partition);
        if (p)
            rt_track_part_drop(s->tracker, p);
    }
    if (s->cooperative)
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(s->rk, parts));
    else
        rd_kafka_assign(s->rk, NULL);
}

/* Finish the revocation in progress once its events are done, or when it is late. */
static void revoke_check(rt_source_kafka *s, int now)
{
    revoking *r = s->revoking;
    if (!r)
        return;
    size_t left = 0;
    for (int i = 0; i < r->parts->cnt; i++) {
        rt_track_part *p = rt_track_part_get(s->tracker, r->parts->elems[i].topic,
                                             r->parts->elems[i].partition);
        left += p ? p->inflight : 0;
    }
    /* A transaction spans every partition: the worker commits once it can. */
    int committed = 0;
    if (s->txn) {
        int got = s->cb.commit_txn(s->cb.arg, 0);
        left = got == 1;
        committed = got == 0;
    }
    if (left && !now && rt_clock_ms() < r->until)
        return;
    if (left)
        rt_warn("kafka source: %zu events of the revoked partitions still in flight after "
                "%llu ms; the next owner will read them again", left,
                (unsigned long long)s->revoke_ms);
    else
        rt_info("kafka source: %d revoked partitions finished; giving them up", r->parts->cnt);
    s->revoking = NULL;
    give_up(s, r->parts, 1, committed);
    if (s->txn && !s->stopped)     /* the revocation paused them all (begin_revoke) */
        set_paused(s, r->was_paused || s->held);
    rd_kafka_topic_partition_list_destroy(r->parts);
    free(r);
}

/* Revoked: every output of these partitions must be acknowledged and its offset
 * committed before another member starts reading them. The loop goes on meanwhile
 * (the other partitions, timers, lookups, the admin endpoint); only while stopping is
 * it done here and now. */
static void begin_revoke(rt_source_kafka *s, rd_kafka_topic_partition_list_t *parts)
{
    rt_info("kafka source: %d partitions revoked; finishing their events", parts->cnt);
    s->revoked = 1;
    revoking *r = s->stopped ? NULL : calloc(1, sizeof *r);
    if (r && (r->parts = rd_kafka_topic_partition_list_copy(parts))) {
        r->until = rt_clock_ms() + (int64_t)s->revoke_ms;
        s->revoking = r;
        rd_kafka_pause_partitions(s->rk, parts);
        r->was_paused = s->paused;
        if (s->txn)     /* the commit needs a quiet point across all partitions */
            set_paused(s, 1);
        revoke_check(s, 0);
        return;
    }
    free(r);
    if (s->cb.drain(s->cb.arg, (int)s->revoke_ms) < 0)
        rt_warn("kafka source: outputs still in flight after %llu ms; the next owner will "
                "read them again", (unsigned long long)s->revoke_ms);
    give_up(s, parts, 0, 0);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rt_source_kafka *s = opaque;
    s->cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    s->rebalances++;
    /* librdkafka asks again only after our answer; a lost session can still come
     * between, so whatever is unfinished is finished first. */
    if (s->assigning)
        finish_assign(s);
    revoke_check(s, 1);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rt_info("kafka source: %d partitions assigned", parts->cnt);
        if (s->cb.assigned)
            begin_assign(s, parts);
        else
            take_partitions(s, parts);
        return;
    }
    begin_revoke(s, parts);
}

/* Count the run of records kept in s->run. A fetch hands over a partition's records in
 * a row, so the partition's label is formatted and looked up once a run, not once a
 * record (that was about 800 instructions a record). */
static void count_run(rt_source_kafka *s)
{
    if (!s->run.n)
        return;
    char part[16];
    snprintf(part, sizeof part, "%d", (int)s->run.partition);
    rt_counter_add(&s->records, s->run.topic, part, s->run.n);
    s->run.n = 0;
}

static void count(rt_source_kafka *s, const char *topic, int32_t partition)
{
    if (s->run.n && (s->run.partition != partition || strcmp(s->run.topic, topic) != 0))
        count_run(s);
    if (!s->run.n) {
        snprintf(s->run.topic, sizeof s->run.topic, "%s", topic);
        s->run.partition = partition;
    }
    s->run.n++;
}

static void consume(rt_source_kafka *s, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            rt_warn("kafka source: %s", rd_kafka_message_errstr(m));
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (s->revoking && is_revoking(s, topic, m->partition))
        return;     /* fetched before the pause; its next owner reads it */
    rt_track_part *p = rt_track_part_get(s->tracker, topic, m->partition);
    int64_t born = rd_kafka_message_timestamp(m, NULL);
    rt_ticket *ticket = p ? rt_track_begin(s->tracker, p, m->offset, born > 0 ? born : 0) : NULL;
    if (!ticket) {
        /* Not taking it: its offset is never stored, so it is read again after a restart. */
        rt_error("kafka source: out of memory at %s/%d@%lld; stopping", topic,
                 (int)m->partition, (long long)m->offset);
        s->stopped = 1;
        return;
    }
    count(s, topic, m->partition);
    rt_origin origin = { .topic = topic, .partition = m->partition, .offset = m->offset };
    s->cb.record(s->cb.arg, m->payload ? m->payload : "", m->len, &origin, ticket);
}

static void poll_batch(rt_source_kafka *s)
{
    int n = 0;
    rd_kafka_message_t *m;
    while (!s->stopped && n < POLL_BATCH && (m = rd_kafka_consumer_poll(s->rk, 0))) {
        consume(s, m);
        rd_kafka_message_destroy(m);
        n++;
    }
    count_run(s);
    if (n)
        s->cb.batch_end(s->cb.arg);
    backpressure(s);
    revoke_check(s, 0);
    /* The wake byte comes only when the queue goes from empty to non-empty, so come
     * back for the rest; through a zero timeout, not event_active, which libevent would
     * run in the same pass and starve timers and the admin endpoint. */
    if (n == POLL_BATCH && !s->stopped) {
        static const struct timeval zero = { 0, 0 };
        event_add(s->more, &zero);
    }
}

static void on_wake(void *arg)
{
    poll_batch(arg);
}

static void on_more(evutil_socket_t fd, short what, void *arg)
{
    poll_batch(arg);
}

/* The librdkafka release that fixed librdkafka#4312 (see leave_group). */
#define COOPERATIVE_FIXED_VERSION 0x020300ff

/* The user's kafka.partition.assignment.strategy, else incremental rebalancing:
 * surviving members keep their partitions (and their unfinished events) when another
 * member joins or leaves. With repartition topics, range: it gives a member the same
 * partition numbers of every topic, and state is kept by partition number (the worker
 * refuses another strategy set by the user). */
static const char *assignment_strategy(const rt_config *c, const char *repartition_topics)
{
    const char *set = rt_config_get(c, "kafka.partition.assignment.strategy");
    return set ? set : repartition_topics ? "range" : "cooperative-sticky";
}

static int kafka_close(rt_source *src);

static int kafka_open(rt_source *src, const rt_source_env *env, char *err, size_t errlen)
{
    struct event_base *base = env->base;
    const rt_config *c = env->cfg;
    const char *bootstrap = env->kafka_bootstrap;
    rt_tracker *tracker = env->tracker;
    char why[512];
    const char *topics = rt_config_get(c, "source.topics");
    if (!topics || !*topics) {
        snprintf(err, errlen, "%s: source.topics: required for source.type=kafka", c->path);
        return -1;
    }
    const char *more = env->repartition_topics;
    rt_source_kafka *s = calloc(1, sizeof *s);
    if (s && (s->topics = malloc(strlen(topics) + (more ? strlen(more) + 1 : 0) + 1)))
        sprintf(s->topics, "%s%s%s", topics, more ? "," : "", more ? more : "");
    if (!s || !s->topics) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    topics = s->topics;
    const char *strategy = assignment_strategy(c, more);
    src->impl = s;
    s->base = base;
    s->tracker = tracker;
    s->cb = env->cb;
    s->max_inflight = (uint64_t)rt_config_int(c, "source.max.inflight");
    s->revoke_ms = (uint64_t)rt_config_int(c, "shutdown.timeout.ms");
    s->txn = rt_kafka_exactly_once(c) && env->cb.commit_txn;
    s->early_close_aborts = rd_kafka_version() < COOPERATIVE_FIXED_VERSION &&
                            strcmp(strategy, "cooperative-sticky") == 0;
    rt_track_init(tracker, store_offset, s);
    rd_kafka_conf_t *conf = rt_kafka_conf(c, bootstrap, err, errlen);
    if (!conf)
        goto fail;
    /* librdkafka's prefetch limits (queued.max.messages.kbytes, queued.min.messages) stay
     * as they are: librdkafka 2.0 stops fetching for a whole second once its queue is
     * full, so a queue that holds less than a second of input leaves the loop idle. */
    if ((!rt_config_entry(c, "kafka.partition.assignment.strategy") &&
         rt_kafka_conf_put(conf, "partition.assignment.strategy", strategy, err, errlen) < 0) ||
        rt_kafka_conf_put(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
        (s->txn && (rt_kafka_conf_put(conf, "enable.auto.commit", "false", err, errlen) < 0 ||
                    rt_kafka_conf_put(conf, "isolation.level", "read_committed", err,
                                      errlen) < 0))) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, s);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!s->rk) {
        snprintf(err, errlen, "kafka source: %s", why);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(s->rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(4);
    char *list = strdup(topics);
    if (!subs || !list) {
        snprintf(err, errlen, "out of memory");
        free(list);
        if (subs)
            rd_kafka_topic_partition_list_destroy(subs);
        goto fail;
    }
    for (char *save, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        rd_kafka_topic_partition_list_add(subs, t, RD_KAFKA_PARTITION_UA);
    free(list);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(s->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (serr) {
        snprintf(err, errlen, "kafka source: subscribe to %s: %s", topics, rd_kafka_err2str(serr));
        goto fail;
    }
    struct timeval tick = { 0, TICK_MS * 1000 };
    s->queue = rd_kafka_queue_get_consumer(s->rk);
    s->more = event_new(base, -1, 0, on_more, s);
    s->tick = event_new(base, -1, EV_PERSIST, on_more, s);
    if (!s->queue || !s->more || !s->tick || event_add(s->tick, &tick) < 0 ||
        rt_kafka_waker_start(&s->waker, base, s->queue, on_wake, s) < 0) {
        snprintf(err, errlen, "kafka source: cannot register with the event loop");
        goto fail;
    }
    rt_info("kafka source: subscribed to %s (partition.assignment.strategy=%s, librdkafka %s)",
            topics, strategy, rd_kafka_version_str());
    return 0;
fail:
    return -1;      /* rt_source_open closes it */
}

/* A consumer handle left to the end of the process: reachable, so that a leak checker
 * does not report it, and never destroyed. */
static rd_kafka_t *abandoned;

/* rd_kafka_consumer_close() can block for good while the coordinator is stuck in a
 * rebalance, so close asynchronously and give up after shutdown.timeout.ms: the
 * offsets are committed already, the group notices our absence by its session timeout.
 * Returns -1 when it gave up; the handle is then still closing and must not be
 * destroyed (rd_kafka_destroy would wait for that close). */
static int assigned_count(rt_source_kafka *s);

static int leave_group(rt_source_kafka *s)
{
    /* Before librdkafka 2.3.0 the cooperative-sticky assignor aborts the process when a
     * consumer that joined but was never assigned is closed or destroyed
     * (librdkafka#4312: a SIGTERM soon after start). With nothing assigned there is
     * nothing to commit, so the handle is left as it is: the group notices by the
     * session timeout, as it would after the abort, but eddy exits cleanly. */
    if (s->rebalances == 0 && s->early_close_aborts) {
        rt_info("kafka source: stopping before the first assignment; the group will notice "
                "by the session timeout");
        abandoned = s->rk;
        return -1;
    }
    /* librdkafka 2.0 can also hang (#4527) when a cooperative consumer is closed in the
     * middle of a rebalance. Unsubscribe first and let the revocation run (on_rebalance
     * drains and commits), then close. Records polled meanwhile are not handed over:
     * the next owner reads them. */
    rd_kafka_resp_err_t uerr = rd_kafka_unsubscribe(s->rk);
    if (uerr)
        rt_warn("kafka source: unsubscribe: %s", rd_kafka_err2str(uerr));
    for (uint64_t waited = 0; !uerr && assigned_count(s) > 0; waited += 100) {
        if (waited >= s->revoke_ms)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->rk);
    rd_kafka_error_t *e = q ? rd_kafka_consumer_close_queue(s->rk, q) : NULL;
    if (!q || e) {
        rt_warn("kafka source: cannot leave the group cleanly: %s",
                e ? rd_kafka_error_string(e) : "out of memory");
        goto out;
    }
    /* The revoke arrives on q; serving it runs on_rebalance (drain and commit). Records
     * of an assignment that a cooperative rebalance was still completing arrive there
     * too: they are consumed and dropped (the next owner reads them), since serving q
     * for callbacks only aborts on them (librdkafka asserts an op nobody handled). */
    int64_t until = rt_clock_ms() + (int64_t)s->revoke_ms;
    while (!rd_kafka_consumer_closed(s->rk)) {
        if (rt_clock_ms() >= until) {
            rt_warn("kafka source: leaving the group took over %llu ms; giving up (the "
                    "group will notice by the session timeout)", (unsigned long long)s->revoke_ms);
            return -1;     /* q stays: the close in progress still uses it */
        }
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
out:
    if (e)
        rd_kafka_error_destroy(e);
    if (q)
        rd_kafka_queue_destroy(q);
    return 0;
}

static void kafka_commit_now(rt_source *src)
{
    rt_source_kafka *s = src->impl;
    if (s->txn)
        return;     /* the worker's transactions commit the offsets */
    rd_kafka_resp_err_t err = rd_kafka_commit(s->rk, NULL, 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        rt_warn("kafka source: commit: %s", rd_kafka_err2str(err));
}

static void kafka_stop(rt_source *src)
{
    rt_source_kafka *s = src->impl;
    s->stopped = 1;
}

static int kafka_close(rt_source *src)
{
    rt_source_kafka *s = src->impl;
    int rc = 0;
    s->stopped = 1;
    if (s->assigning)
        finish_assign(s);
    revoke_check(s, 1);
    rt_kafka_waker_stop(&s->waker);
    if (s->tick)
        event_free(s->tick);
    if (s->more)
        event_free(s->more);
    if (s->queue)
        rd_kafka_queue_destroy(s->queue);
    if (s->rk) {
        rd_kafka_resp_err_t err = s->txn ? 0 : rd_kafka_commit(s->rk, NULL, 0);
        /* Another member of the group is joining or leaving (the workers of an instance
         * stop together): the revocation that leave_group waits for commits instead. */
        if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS) {
            rt_info("kafka source: the group is rebalancing; the offsets are committed when "
                    "the partitions are given up");
            err = 0;
        }
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            rt_error("kafka source: final commit failed: %s", rd_kafka_err2str(err));
            rc = -1;
        }
        /* Given up: eddy is exiting, so the handle is left to the end of the process. */
        if (leave_group(s) == 0)
            rd_kafka_destroy_flags(s->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    s->tracker->store = NULL;
    rt_pairmap_free(&s->records);
    free(s->topics);
    free(s);
    return rc;
}

static int kafka_metrics(rt_source *src, rt_buf *out)
{
    rt_source_kafka *s = src->impl;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    rt_buf labels = { 0 };
    int rc = -1;
    if (rd_kafka_assignment(s->rk, &assigned) || !assigned)
        return -1;
    if (rd_kafka_position(s->rk, assigned))
        goto out;
    if (rt_prom_header(out, "eddy_kafka_records_in_total", "counter",
                       "Records consumed, by topic and partition.") ||
        rt_prom_pairs(out, "eddy_kafka_records_in_total", "topic", "partition", &s->records) ||
        rt_prom_header(out, "eddy_kafka_consumer_lag", "gauge",
                       "High watermark minus the consumer position, by assigned partition."))
        goto out;
    for (int i = 0; i < assigned->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &assigned->elems[i];
        int64_t low, high;
        char part[16];
        if (rd_kafka_get_watermark_offsets(s->rk, p->topic, p->partition, &low, &high) ||
            high < 0)
            continue;   /* no fetch answered yet: lag unknown */
        int64_t pos = p->offset >= 0 ? p->offset : low;
        snprintf(part, sizeof part, "%d", (int)p->partition);
        labels.len = 0;
        if (rt_prom_label(&labels, "topic", p->topic) ||
            rt_prom_label(&labels, "partition", part) || rt_buf_putc(&labels, '\0') ||
            rt_prom_sample(out, "eddy_kafka_consumer_lag", labels.data,
                           (double)(high > pos ? high - pos : 0)))
            goto out;
    }
    if (rt_prom_header(out, "eddy_kafka_rebalances_total", "counter",
                       "Partition assignments and revocations.") ||
        rt_prom_sample(out, "eddy_kafka_rebalances_total", NULL, (double)s->rebalances) ||
        rt_prom_header(out, "eddy_kafka_pauses_total", "counter",
                       "Times the partitions were paused because too many events were unfinished.") ||
        rt_prom_sample(out, "eddy_kafka_pauses_total", NULL, (double)s->pauses) ||
        rt_prom_header(out, "eddy_kafka_paused_partitions", "gauge",
                       "Assigned partitions paused by backpressure.") ||
        rt_prom_sample(out, "eddy_kafka_paused_partitions", NULL,
                       s->paused ? (double)assigned->cnt : 0) ||
        rt_prom_header(out, "eddy_inflight_events", "gauge",
                       "Events read whose outputs are not all acknowledged yet.") ||
        rt_prom_sample(out, "eddy_inflight_events", NULL, (double)s->tracker->inflight))
        goto out;
    rc = 0;
out:
    rt_buf_free(&labels);
    rd_kafka_topic_partition_list_destroy(assigned);
    return rc;
}

static int assigned_count(rt_source_kafka *s)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(s->rk, &assigned) || !assigned)
        return 0;
    int n = assigned->cnt;
    rd_kafka_topic_partition_list_destroy(assigned);
    return n;
}

/* The worker's hold (a checkpoint draining its outputs): records already fetched may
 * still come and are handled as usual; backpressure decides again once released. */
static void kafka_pause(rt_source *src, int pause)
{
    rt_source_kafka *s = src->impl;
    s->held = 1;
    /* An exactly-once revocation keeps every partition still until it has committed. */
    set_paused(s, pause || (s->txn && s->revoking));
    s->held = pause;
    if (!pause)
        backpressure(s);
}

static void *kafka_group_metadata(rt_source *src)
{
    rt_source_kafka *s = src->impl;
    return rd_kafka_consumer_group_metadata(s->rk);
}

static void kafka_where(rt_source *src, char *buf, size_t len)
{
    const rt_source_kafka *s = src->impl;
    snprintf(buf, len, "%s", s->topics);
}

/* The keys this kind reads (`eddy config` lists them; the config checks them). */
static const rt_conf_key kafka_keys[] = {
    { "source.topics", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Kafka topics to consume (comma list) for source.type=kafka" },
    { "source.keyed.by", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "the record path the input's message keys are (\"payload.merchantId\"): processors "
      "declaring that key read the input directly, without the repartition topic" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_source_kind rt_source_kind_kafka = {
    .name = "kafka", .keys = kafka_keys, .flags = RT_SOURCE_COMMITS, .open = kafka_open,
    .stop = kafka_stop, .pause = kafka_pause, .commit_now = kafka_commit_now,
    .group_metadata = kafka_group_metadata,
    .metrics = kafka_metrics, .where = kafka_where, .close = kafka_close,
};
