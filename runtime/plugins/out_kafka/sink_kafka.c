/* sink_kafka.c - Kafka sinks: one producer per worker, shared by its Kafka sinks, and
 * idempotent unless kafka.enable.idempotence=false (at least once only). Delivery
 * reports are served on the worker's loop and acknowledge the record's ticket; a record
 * Kafka gives up on (after its own retries, within message.timeout.ms) goes back to the
 * worker to be dead-lettered.
 *
 * Under at least once the dead-letter sink (dlq.sink) has a producer of its
 * own. On the shared one, librdkafka 2.0.2 held the outputs' batches back now and then
 * (its thread going round a partition with a batch due and no request made): with the
 * embedded cluster at 5,000 events/s, p99 13-15 ms against 5.4-6.1 ms apart
 * (scripts/bench-log.md, "Where the latency goes (issue 18, taken apart)"). Exactly
 * once keeps them together: one transaction holds both.
 *
 * Under processing.guarantee=exactly_once the producer is transactional: the worker
 * commits its outputs, dead letters and consumed offsets together (rt_kafka_txn_*). A
 * delivery that fails then fails the transaction instead of being dead-lettered.
 *
 * A periodic commit does not wait on the loop (rt_kafka_txn_commit_start): its calls,
 * which wait for the coordinators, run on a thread of their own, and what the loop
 * writes meanwhile is held and produced into the next transaction once that has begun
 * (a transactional producer takes no records while it commits). Delivery reports may
 * then be served on that thread too: in a transaction they only record a failure, under
 * the producer's mutex. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "sink.h"

struct rt_kafka_producer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    rt_kafka_waker waker;
    rt_sinks *ss;
    unsigned long long failed;      /* deliveries that failed for good */
    size_t max_record;      /* message.max.bytes less room for key and headers */
    int transactional;      /* processing.guarantee=exactly_once */
    pthread_mutex_t mu;     /* failed and txn_error (delivery reports on the commit thread) */
    char txn_error[256];    /* a delivery failed in the open transaction: it must abort */
    /* the commit in progress (rt_kafka_txn_commit_start) */
    int committing;
    pthread_t thread;
    int wake[2];            /* the thread's "done" to the loop */
    struct event *done_ev;
    rd_kafka_topic_partition_list_t *offsets;
    void *group_metadata;
    int timeout_ms, got;
    char why[1024];
    rt_txn_done done;
    void *done_arg;
    struct held *held;      /* records written meanwhile, in order */
    size_t nheld, capheld;
    rt_sink **internal;     /* eddy's own sinks (rt_kafka_internal_sink), freed here */
    size_t ninternal;
    /* rt_kafka_track_acked: per partition of that sink's topic, the offset after its
     * last acknowledged record (delivery reports may come on the commit thread) */
    const rt_sink *acked_sink;
    int64_t *acked;
    int nacked;
};

/* A record written while a commit is in progress. */
typedef struct held {
    rt_sink *s;
    char *rec, *key;        /* rec NULL: a tombstone */
    size_t len, key_len;
    int32_t partition;
    rd_kafka_headers_t *hdrs;
    rt_ticket *ticket;
} held;

/* Key and headers of the largest kind eddy writes (a dead letter's) fit in this. */
#define KEY_AND_HEADERS_ROOM 4096

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct rt_kafka_producer *kp = opaque;
    rt_sink *s = rd_kafka_topic_opaque(m->rkt);
    rt_ticket *ticket = m->_private;
    if (m->err && kp->transactional) {
        pthread_mutex_lock(&kp->mu);
        kp->failed++;
        if (!kp->txn_error[0])
            snprintf(kp->txn_error, sizeof kp->txn_error, "sink %s: delivery to %s failed: %s",
                     s->name, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        pthread_mutex_unlock(&kp->mu);
    } else if (m->err) {
        kp->failed++;
        rt_error("sink %s: delivery to %s failed: %s", s->name, rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
        if (kp->ss->env.undeliverable)
            kp->ss->env.undeliverable(kp->ss->env.arg, s, m->payload, m->len, ticket,
                                      rd_kafka_err2str(m->err));
    } else if (s == kp->acked_sink && m->partition >= 0 && m->partition < kp->nacked &&
               m->offset >= 0) {
        int64_t next = m->offset + 1, *at = &kp->acked[m->partition];
        int64_t was = __atomic_load_n(at, __ATOMIC_RELAXED);
        while (was < next &&
               !__atomic_compare_exchange_n(at, &was, next, 0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
            ;
    }
    rt_sink_ack(s, ticket);
}

static void serve(void *arg)
{
    struct rt_kafka_producer *kp = arg;
    rd_kafka_poll(kp->rk, 0);
}

/* A transactional.id stable across restarts of this instance, so that a restarted
 * worker's producer fences and aborts what its crashed predecessor left open (read_committed
 * consumers wait for that), and unique per worker and instance. */
static int transactional_conf(rd_kafka_conf_t *conf, const rt_config *c, int worker, char *err,
                              size_t errlen)
{
    char id[512], host[256] = "eddy";
    const char *prefix = rt_config_get(c, "kafka.transactional.id");
    if (!prefix || !*prefix) {
        if (gethostname(host, sizeof host) < 0)
            snprintf(host, sizeof host, "eddy");
        host[sizeof host - 1] = '\0';
        const char *group = rt_config_get(c, "kafka.group.id");
        snprintf(id, sizeof id, "%s-%s-%d", group ? group : "eddy", host, worker);
    } else {
        snprintf(id, sizeof id, "%s-%d", prefix, worker);
    }
    /* A crashed predecessor with another id holds read_committed consumers back until
     * its transaction times out: keep that short unless the user chose. */
    if (!rt_config_entry(c, "kafka.transaction.timeout.ms") &&
        rt_kafka_conf_put(conf, "transaction.timeout.ms", "10000", err, errlen) < 0)
        return -1;
    return rt_kafka_conf_put(conf, "transactional.id", id, err, errlen);
}

/* A new producer for `ss`'s sinks; NULL with err set. */
static struct rt_kafka_producer *producer_new(rt_sinks *ss, const rt_config *c, char *err,
                                              size_t errlen)
{
    char why[512];
    struct rt_kafka_producer *kp = calloc(1, sizeof *kp);
    rd_kafka_conf_t *conf = kp ? rt_kafka_conf(c, ss->env.kafka_bootstrap, err, errlen) : NULL;
    if (!conf) {
        if (!kp)
            snprintf(err, errlen, "out of memory");
        free(kp);
        return NULL;
    }
    kp->ss = ss;
    kp->transactional = rt_kafka_exactly_once(c);
    kp->wake[0] = kp->wake[1] = -1;
    pthread_mutex_init(&kp->mu, NULL);
    /* Idempotence: the broker drops the duplicates that producer retries would make.
     * librdkafka's idempotent producer keeps one request in flight per partition and
     * spins its thread while a batch is due behind it (librdkafka pull request #4989):
     * 0.28-0.41 CPU-seconds a worker over a two-second run at 40,000 events/s with
     * linger.ms=1, 0.06-0.07 without. So under at least once a user may trade it away
     * (kafka.enable.idempotence=false); one request in flight then keeps each
     * partition's order through retries, as a Java producer does without idempotence. */
    int idempotent = kp->transactional || rt_config_int(c, "kafka.enable.idempotence");
    if (rt_kafka_conf_put(conf, "enable.idempotence", idempotent ? "true" : "false", err,
                          errlen) < 0 ||
        (!idempotent && !rt_config_entry(c, "kafka.max.in.flight.requests.per.connection") &&
         !rt_config_entry(c, "kafka.max.in.flight") &&
         rt_kafka_conf_put(conf, "max.in.flight.requests.per.connection", "1", err, errlen) < 0) ||
        (kp->transactional && transactional_conf(conf, c, ss->env.worker, err, errlen) < 0)) {
        rd_kafka_conf_destroy(conf);
        free(kp);
        return NULL;
    }
    char max[32];
    size_t maxlen = sizeof max;
    long long mmb = rd_kafka_conf_get(conf, "message.max.bytes", max, &maxlen) == RD_KAFKA_CONF_OK
                        ? atoll(max) : 1000000;
    kp->max_record = mmb > 2 * KEY_AND_HEADERS_ROOM ? (size_t)mmb - KEY_AND_HEADERS_ROOM
                                                    : (size_t)mmb / 2;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, kp);
    kp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!kp->rk) {
        snprintf(err, errlen, "kafka producer: %s", why);
        rd_kafka_conf_destroy(conf);
        free(kp);
        return NULL;
    }
    kp->queue = rd_kafka_queue_get_main(kp->rk);
    if (!kp->queue || rt_kafka_waker_start(&kp->waker, ss->env.base, kp->queue, serve, kp) < 0) {
        snprintf(err, errlen, "kafka producer: cannot serve delivery reports");
        rt_kafka_producer_free(kp);
        return NULL;
    }
    return kp;
}

/* The producer the Kafka sinks share, made on first use. */
static struct rt_kafka_producer *producer(rt_sinks *ss, const rt_config *c, char *err,
                                          size_t errlen)
{
    if (!ss->kafka)
        ss->kafka = producer_new(ss, c, err, errlen);
    return ss->kafka;
}

/* Sink `name`'s producer: the dead-letter sink's own under at least once, else the
 * shared one (see the top of this file). */
static struct rt_kafka_producer *producer_of(rt_sinks *ss, const rt_config *c,
                                             const char *name, char *err, size_t errlen)
{
    const char *dlq = rt_config_get(c, "dlq.sink");
    if (rt_kafka_exactly_once(c) || !dlq || strcmp(dlq, name) != 0)
        return producer(ss, c, err, errlen);
    if (!ss->kafka_dlq)
        ss->kafka_dlq = producer_new(ss, c, err, errlen);
    return ss->kafka_dlq;
}

/* Produce one record (`hdrs` taken) to `partition` (RD_KAFKA_PARTITION_UA: by key). */
static int produce(rt_sink *s, const char *rec, size_t len, const char *key, size_t key_len,
                   int32_t partition, rd_kafka_headers_t *hdrs, rt_ticket *ticket)
{
    rd_kafka_topic_t *rkt = s->impl;
    struct rt_kafka_producer *kp = s->producer;
    rd_kafka_resp_err_t err;
    int waited = 0;
    for (;;) {
        err = rd_kafka_producev(kp->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_VALUE((void *)rec, rec ? len : 0),
                                RD_KAFKA_V_KEY((void *)key, key ? key_len : 0),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(kp->transactional ? NULL : ticket),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* The local queue is full: serve delivery reports until there is room. */
        if (!waited++)
            rt_warn("sink %s: producer queue full, waiting for the brokers", s->name);
        rd_kafka_poll(kp->rk, 100);
    }
    if (err) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);     /* ours again when producev failed */
        rt_error("sink %s: cannot produce to %s: %s", s->name, rd_kafka_topic_name(rkt),
                 rd_kafka_err2str(err));
        return -1;
    }
    /* In a transaction the record is done once produced: the commit delivers all of the
     * transaction or aborts all of it, so its event's offset may join the next commit. */
    if (kp->transactional)
        rt_sink_ack(s, ticket);
    return 0;
}

static void held_free(held *h)
{
    free(h->rec);
    free(h->key);
    if (h->hdrs)
        rd_kafka_headers_destroy(h->hdrs);
}

static int32_t partition_of(const rt_out *out)
{
    return out->partition ? *out->partition : RD_KAFKA_PARTITION_UA;
}

/* Keep a record written during a commit (`hdrs` taken). */
static int hold(rt_sink *s, const char *rec, size_t len, const rt_out *out,
                rd_kafka_headers_t *hdrs)
{
    struct rt_kafka_producer *kp = s->producer;
    held h = { s, rec ? malloc(len ? len : 1) : NULL,
               out->key ? malloc(out->key_len ? out->key_len : 1) : NULL, len, out->key_len,
               partition_of(out), hdrs, out->ticket };
    if (kp->nheld == kp->capheld) {
        size_t cap = kp->capheld ? 2 * kp->capheld : 256;
        held *v = realloc(kp->held, cap * sizeof *v);
        if (v) {
            kp->held = v;
            kp->capheld = cap;
        }
    }
    if ((rec && !h.rec) || (out->key && !h.key) || kp->nheld == kp->capheld) {
        held_free(&h);
        rt_error("sink %s: out of memory holding a record during a commit", s->name);
        return -1;
    }
    if (h.rec)
        memcpy(h.rec, rec, len);
    if (h.key)
        memcpy(h.key, out->key, out->key_len);
    kp->held[kp->nheld++] = h;
    return 0;
}

static int kafka_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    struct rt_kafka_producer *kp = s->producer;
    rd_kafka_headers_t *hdrs = NULL;
    if (out->nheaders) {
        hdrs = rd_kafka_headers_new(out->nheaders);
        for (size_t i = 0; hdrs && i < out->nheaders; i++)
            if (rd_kafka_header_add(hdrs, out->headers[i].name, -1, out->headers[i].value,
                                    (ssize_t)out->headers[i].len)) {
                rd_kafka_headers_destroy(hdrs);
                hdrs = NULL;
            }
        if (!hdrs) {
            rt_error("sink %s: cannot build message headers", s->name);
            return -1;
        }
    }
    if (kp->committing)
        return hold(s, rec, len, out, hdrs);
    return produce(s, rec, len, out->key, out->key_len, partition_of(out), hdrs, out->ticket);
}

static int kafka_flush(rt_sink *s)
{
    struct rt_kafka_producer *kp = s->producer;
    rd_kafka_poll(kp->rk, 0);
    return 0;
}

static void kafka_close(rt_sink *s)
{
    if (s->impl)
        rd_kafka_topic_destroy(s->impl);
    s->impl = NULL;
}

/* No drain of its own: rt_sinks_drain drains the producer they all share, once. */
static const rt_sink_ops kafka_ops = {
    .write = kafka_write, .flush = kafka_flush, .close = kafka_close,
};

/* sink.<name>.topic on its producer (producer_of). */
static int kafka_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen)
{
    const char *topic = rt_sink_conf(c, s->name, "topic");
    char why[600];
    int rc = -1;
    struct rt_kafka_producer *kp = producer_of(ss, c, s->name, why, sizeof why);
    if (!kp)
        goto out;
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    if (!tconf) {
        snprintf(why, sizeof why, "out of memory");
        goto out;
    }
    rd_kafka_topic_conf_set_opaque(tconf, s);
    s->impl = rd_kafka_topic_new(kp->rk, topic, tconf);
    if (!s->impl) {
        snprintf(why, sizeof why, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    s->producer = kp;
    s->max_record = kp->max_record;
    s->ops = &kafka_ops;
    rc = 0;
out:
    if (rc < 0)
        snprintf(err, errlen, "sink %s: %s", s->name, why);
    return rc;
}

/* ---- eddy's own topics (changelog, repartition) ---- */

rt_sink *rt_kafka_internal_sink(rt_sinks *ss, const rt_config *c, const char *name,
                                const char *topic, char *err, size_t errlen)
{
    char why[600];
    struct rt_kafka_producer *kp = producer(ss, c, why, sizeof why);
    rd_kafka_topic_conf_t *tconf = NULL;
    rt_sink *s = NULL;
    if (!kp)
        goto fail;
    /* Each its own allocation, never moved: Kafka keeps it as its topic's opaque. */
    rt_sink **v = realloc(kp->internal, (kp->ninternal + 1) * sizeof *v);
    if (!v || !(s = calloc(1, sizeof *s)) || !(tconf = rd_kafka_topic_conf_new()) ||
        !(s->name = strdup(name))) {
        if (v)
            kp->internal = v;
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    kp->internal = v;
    rd_kafka_topic_conf_set_opaque(tconf, s);
    if (!(s->impl = rd_kafka_topic_new(kp->rk, topic, tconf))) {
        tconf = NULL;   /* taken even on failure */
        snprintf(why, sizeof why, "topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    s->type = "kafka";
    s->kind = &rt_sink_kind_kafka;
    s->tracker = ss->env.tracker;
    s->producer = kp;
    s->max_record = kp->max_record;
    s->ops = &kafka_ops;
    kp->internal[kp->ninternal++] = s;
    return s;
fail:
    if (tconf)
        rd_kafka_topic_conf_destroy(tconf);
    if (s)
        free(s->name);
    free(s);
    snprintf(err, errlen, "%s: %s", name, why);
    return NULL;
}

int rt_kafka_track_acked(rt_sink *s, int partitions)
{
    struct rt_kafka_producer *kp = s->producer;
    if (kp->acked_sink || partitions <= 0 || !(kp->acked = calloc((size_t)partitions,
                                                                  sizeof *kp->acked)))
        return -1;
    for (int i = 0; i < partitions; i++)
        kp->acked[i] = -1;
    kp->nacked = partitions;
    kp->acked_sink = s;
    return 0;
}

int64_t rt_kafka_acked_next(const rt_sink *s, int32_t partition)
{
    const struct rt_kafka_producer *kp = s->producer;
    if (s != kp->acked_sink || partition < 0 || partition >= kp->nacked)
        return -1;
    return __atomic_load_n(&kp->acked[partition], __ATOMIC_RELAXED);
}

int rt_kafka_topic_partitions(rt_sinks *ss, const char *topic, int timeout_ms, char *err,
                              size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (!ss->kafka) {
        snprintf(err, errlen, "topic %s: no producer to ask with", topic);
        return -1;
    }
    /* Every topic, not this one: asking for one may make a broker create it (with
     * auto.create.topics.enable), which must not happen to a changelog. */
    rd_kafka_resp_err_t e = rd_kafka_metadata(ss->kafka->rk, 1, NULL, &md, timeout_ms);
    if (e) {
        snprintf(err, errlen, "topic %s: metadata: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic)) {
            if (md->topics[i].err)
                snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(md->topics[i].err));
            else
                n = md->topics[i].partition_cnt;
        }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* One admin request's result event from `q`, or NULL after timeout_ms. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
    int64_t until = rt_clock_ms() + timeout_ms;
    for (;;) {
        int64_t left = until - rt_clock_ms();
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left > 0 ? (int)left : 0);
        if (ev || left <= 0)
            return ev;
    }
}

/* cleanup.policy of `topic`: "compact" into policy; -1 with err set. A topic created
 * just now may be unknown to the broker that answers for a moment: asked again. */
static int topic_policy(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic,
                        int timeout_ms, char *policy, size_t len, char *err, size_t errlen)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_event_t *ev = NULL;
    int64_t until = rt_clock_ms() + timeout_ms;
    int rc = -1;
    if (!res) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const rd_kafka_ConfigResource_t **rs = NULL;
    for (;;) {
        rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
        if (!(ev = admin_wait(q, (int)(until - rt_clock_ms())))) {
            snprintf(err, errlen, "topic %s: no answer describing it", topic);
            goto out;
        }
        const rd_kafka_DescribeConfigs_result_t *r = rd_kafka_event_DescribeConfigs_result(ev);
        size_t n = 0;
        rs = r ? rd_kafka_DescribeConfigs_result_resources(r, &n) : NULL;
        if (!rd_kafka_event_error(ev) && n == 1 && !rd_kafka_ConfigResource_error(rs[0]))
            break;
        if (!rd_kafka_event_error(ev) && n == 1 &&
            rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
            rt_clock_ms() + 100 < until) {
            rd_kafka_event_destroy(ev);
            ev = NULL;
            usleep(100 * 1000);     /* start-up, before the loop runs */
            continue;
        }
        snprintf(err, errlen, "topic %s: describing it: %s", topic,
                 rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                 : n == 1 ? rd_kafka_ConfigResource_error_string(rs[0]) : "no answer");
        goto out;
    }
    size_t nc = 0;
    const rd_kafka_ConfigEntry_t **cs = rd_kafka_ConfigResource_configs(rs[0], &nc);
    snprintf(policy, len, "delete");
    for (size_t i = 0; i < nc; i++)
        if (!strcmp(rd_kafka_ConfigEntry_name(cs[i]), "cleanup.policy") &&
            rd_kafka_ConfigEntry_value(cs[i]))
            snprintf(policy, len, "%s", rd_kafka_ConfigEntry_value(cs[i]));
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

int rt_kafka_internal_topic(rt_sinks *ss, const char *topic, int partitions, int compact,
                            int any_policy, int timeout_ms, char *err, size_t errlen)
{
    char why[512], policy[128];
    rd_kafka_t *rk = ss->kafka ? ss->kafka->rk : NULL;
    rd_kafka_queue_t *q = rk ? rd_kafka_queue_new(rk) : NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_event_t *ev = NULL;
    int rc = -1;
    if (!q) {
        snprintf(err, errlen, "topic %s: no producer to create it with", topic);
        return -1;
    }
    int have = rt_kafka_topic_partitions(ss, topic, timeout_ms, why, sizeof why);
    if (have < 0) {
        if (!(nt = rd_kafka_NewTopic_new(topic, partitions, -1, why, sizeof why)) ||
            (compact && rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact"))) {
            snprintf(err, errlen, "topic %s: %s", topic, nt ? "cannot set its config" : why);
            goto out;
        }
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        if (!(ev = admin_wait(q, timeout_ms))) {
            snprintf(err, errlen, "topic %s: no answer creating it", topic);
            goto out;
        }
        const rd_kafka_CreateTopics_result_t *r = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = r ? rd_kafka_CreateTopics_result_topics(r, &n)
                                               : NULL;
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev) ? rd_kafka_event_error(ev)
                                : n == 1 ? rd_kafka_topic_result_error(tr[0])
                                         : RD_KAFKA_RESP_ERR__FAIL;
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(err, errlen, "topic %s: cannot create it: %s", topic,
                     n == 1 && rd_kafka_topic_result_error_string(tr[0])
                         ? rd_kafka_topic_result_error_string(tr[0]) : rd_kafka_err2str(e));
            goto out;
        }
        if (!e)
            rt_info("topic %s created: %d partitions%s", topic, partitions,
                    compact ? ", cleanup.policy=compact" : "");
        have = partitions;  /* or made by another worker the same way */
    }
    if (have != partitions) {
        snprintf(err, errlen, "topic %s has %d partitions; it must have %d, as the input "
                 "(delete it, or create it with %d)", topic, have, partitions, partitions);
        goto out;
    }
    if (compact && !any_policy &&
        topic_policy(rk, q, topic, timeout_ms, policy, sizeof policy, err, errlen) < 0)
        goto out;
    if (compact && !any_policy && !strstr(policy, "compact")) {
        snprintf(err, errlen, "topic %s has cleanup.policy=%s; a changelog must be "
                 "compacted (kafka-configs --alter --add-config cleanup.policy=compact)",
                 topic, policy);
        goto out;
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    return rc;
}


/* ---- transactions (processing.guarantee=exactly_once) ---- */

static void txn_why(rd_kafka_error_t *e, const char *what, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s: %s", what, rd_kafka_error_string(e));
}

int rt_kafka_txn_open(rt_sinks *ss, const rt_config *c, int timeout_ms, char *err,
                      size_t errlen)
{
    struct rt_kafka_producer *kp = producer(ss, c, err, errlen);
    rd_kafka_error_t *e = NULL;
    if (!kp)
        return -1;
    if ((e = rd_kafka_init_transactions(kp->rk, timeout_ms)) ||
        (e = rd_kafka_begin_transaction(kp->rk))) {
        txn_why(e, "kafka producer: cannot start transactions", err, errlen);
        rd_kafka_error_destroy(e);
        return -1;
    }
    return 0;
}

/* Roll the open transaction back and begin the next; RT_TXN_ABORTED, or RT_TXN_FATAL
 * when even that failed. */
static int abort_txn(struct rt_kafka_producer *kp, int timeout_ms, char *why, size_t whylen)
{
    rd_kafka_error_t *e = rd_kafka_abort_transaction(kp->rk, timeout_ms);
    if (!e)
        e = rd_kafka_begin_transaction(kp->rk);
    pthread_mutex_lock(&kp->mu);
    kp->txn_error[0] = '\0';
    pthread_mutex_unlock(&kp->mu);
    if (!e)
        return RT_TXN_ABORTED;
    size_t n = strlen(why);
    snprintf(why + n, whylen - n, "; the abort failed too: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return RT_TXN_FATAL;
}

/* The offsets were refused because this member's generation of the group is over. */
static int migrated(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
           err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

/* Offsets into the transaction, commit, begin the next: the calls that wait for the
 * coordinators, on the loop or on the commit thread. */
static int commit_list(struct rt_kafka_producer *kp, const rd_kafka_topic_partition_list_t *l,
                       const void *group_metadata, int timeout_ms, char *why, size_t whylen)
{
    rd_kafka_error_t *e = NULL;
    int rc = RT_TXN_FATAL;
    pthread_mutex_lock(&kp->mu);
    snprintf(why, whylen, "%s", kp->txn_error);
    pthread_mutex_unlock(&kp->mu);
    if (why[0])
        return abort_txn(kp, timeout_ms, why, whylen);
    if ((l->cnt && (e = rd_kafka_send_offsets_to_transaction(kp->rk, l, group_metadata,
                                                              timeout_ms))) ||
        (!e && (e = rd_kafka_commit_transaction(kp->rk, timeout_ms)))) {
        txn_why(e, l->cnt ? "commit" : "commit (no offsets)", why, whylen);
        if (rd_kafka_error_txn_requires_abort(e)) {
            rc = abort_txn(kp, timeout_ms, why, whylen);
            if (rc == RT_TXN_ABORTED && migrated(rd_kafka_error_code(e)))
                rc = RT_TXN_MIGRATED;
        }
        goto out;
    }
    if ((e = rd_kafka_begin_transaction(kp->rk))) {
        txn_why(e, "begin", why, whylen);
        goto out;
    }
    rc = 0;
out:
    if (e)
        rd_kafka_error_destroy(e);
    return rc;
}

static rd_kafka_topic_partition_list_t *offset_list(const rt_txn_offset *o, size_t n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
    for (size_t i = 0; l && i < n; i++)
        rd_kafka_topic_partition_list_add(l, o[i].topic, o[i].partition)->offset = o[i].next;
    return l;
}

int rt_kafka_txn_commit(rt_sinks *ss, const rt_txn_offset *o, size_t n, void *group_metadata,
                        int timeout_ms, char *why, size_t whylen)
{
    struct rt_kafka_producer *kp = ss->kafka;
    rt_kafka_txn_commit_wait(ss);
    rd_kafka_topic_partition_list_t *l = offset_list(o, n);
    if (!l) {
        snprintf(why, whylen, "out of memory");
        return RT_TXN_FATAL;
    }
    int rc = commit_list(kp, l, group_metadata, timeout_ms, why, whylen);
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static void *commit_thread(void *arg)
{
    struct rt_kafka_producer *kp = arg;
    kp->got = commit_list(kp, kp->offsets, kp->group_metadata, kp->timeout_ms, kp->why,
                          sizeof kp->why);
    ssize_t w;
    do
        w = write(kp->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    return NULL;
}

/* Wait for the commit thread, then free what the commit was given: the offsets, and the
 * group metadata (NULL when no partition had a finished event yet: a commit of outputs
 * only). */
static void commit_join(struct rt_kafka_producer *kp)
{
    pthread_join(kp->thread, NULL);
    kp->committing = 0;
    rd_kafka_topic_partition_list_destroy(kp->offsets);
    if (kp->group_metadata)
        rd_kafka_consumer_group_metadata_destroy(kp->group_metadata);
    kp->offsets = NULL;
    kp->group_metadata = NULL;
}

/* The commit thread is done (on the loop): produce what was held into the transaction
 * begun, or drop it when the commit failed (its events are not finished, so a restart
 * reads them again), then tell the worker. */
static void commit_finish(struct rt_kafka_producer *kp)
{
    char drain[16];
    commit_join(kp);
    while (read(kp->wake[0], drain, sizeof drain) > 0)
        ;
    int got = kp->got;
    for (size_t i = 0; i < kp->nheld; i++) {
        held *h = &kp->held[i];
        if (got == 0 && produce(h->s, h->rec, h->len, h->key, h->key_len, h->partition, h->hdrs,
                                h->ticket) < 0) {
            snprintf(kp->why, sizeof kp->why, "a record held during the commit could not "
                     "be produced into the next transaction");
            got = RT_TXN_FATAL;
        } else if (got == 0) {
            h->hdrs = NULL;     /* produce took them */
        }
        held_free(h);
    }
    kp->nheld = 0;
    kp->done(kp->done_arg, got, kp->why);
}

static void on_commit_done(evutil_socket_t fd, short what, void *arg)
{
    struct rt_kafka_producer *kp = arg;
    if (kp->committing)
        commit_finish(kp);
}

int rt_kafka_txn_commit_start(rt_sinks *ss, const rt_txn_offset *o, size_t n,
                              void *group_metadata, int timeout_ms, rt_txn_done done,
                              void *arg, char *why, size_t whylen)
{
    struct rt_kafka_producer *kp = ss->kafka;
    if (kp->wake[0] < 0) {
        if (pipe(kp->wake) < 0 || fcntl(kp->wake[0], F_SETFL, O_NONBLOCK) < 0 ||
            !(kp->done_ev = event_new(ss->env.base, kp->wake[0], EV_READ | EV_PERSIST,
                                      on_commit_done, kp)) ||
            event_add(kp->done_ev, NULL) < 0) {
            snprintf(why, whylen, "cannot set up the commit thread's wake-up: %s",
                     strerror(errno));
            goto fail;
        }
    }
    if (!(kp->offsets = offset_list(o, n))) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    kp->group_metadata = group_metadata;
    kp->timeout_ms = timeout_ms;
    kp->done = done;
    kp->done_arg = arg;
    kp->why[0] = '\0';
    kp->committing = 1;
    if (pthread_create(&kp->thread, NULL, commit_thread, kp) != 0) {
        kp->committing = 0;
        rd_kafka_topic_partition_list_destroy(kp->offsets);
        kp->offsets = NULL;
        kp->group_metadata = NULL;
        snprintf(why, whylen, "cannot start the commit thread");
        goto fail;
    }
    return 0;
fail:
    if (group_metadata && !kp->group_metadata)
        rd_kafka_consumer_group_metadata_destroy(group_metadata);
    return -1;
}

void rt_kafka_txn_commit_wait(rt_sinks *ss)
{
    if (ss->kafka && ss->kafka->committing)
        commit_finish(ss->kafka);
}

int rt_kafka_producer_drain(struct rt_kafka_producer *kp, int timeout_ms)
{
    rt_kafka_txn_commit_wait(kp->ss);
    rd_kafka_resp_err_t err = rd_kafka_flush(kp->rk, timeout_ms);
    if (err) {
        rt_error("kafka producer: %d records still unacknowledged after %d ms",
                 rd_kafka_outq_len(kp->rk), timeout_ms);
        return -1;
    }
    return 0;
}

void rt_kafka_producer_free(struct rt_kafka_producer *kp)
{
    if (kp->committing)
        commit_join(kp);
    for (size_t i = 0; i < kp->ninternal; i++)
        kafka_close(kp->internal[i]);
    for (size_t i = 0; i < kp->nheld; i++)
        held_free(&kp->held[i]);
    free(kp->held);
    if (kp->done_ev)
        event_free(kp->done_ev);
    for (int i = 0; i < 2; i++)
        if (kp->wake[i] >= 0)
            close(kp->wake[i]);
    pthread_mutex_destroy(&kp->mu);
    rt_kafka_waker_stop(&kp->waker);
    if (kp->queue)
        rd_kafka_queue_destroy(kp->queue);
    if (kp->rk)
        rd_kafka_destroy(kp->rk);
    /* After the destroy: its last delivery reports still acknowledge through these. */
    for (size_t i = 0; i < kp->ninternal; i++) {
        free(kp->internal[i]->name);
        free(kp->internal[i]);
    }
    free(kp->internal);
    free(kp->acked);
    free(kp);
}

/* Once for all Kafka sinks: the shared producer and the dead letters' own, summed. */
static int kafka_metrics(const rt_sinks *ss, rt_buf *out)
{
    const struct rt_kafka_producer *v[] = { ss->kafka, ss->kafka_dlq };
    double failed = 0, queued = 0;
    int any = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (v[i]) {
            any = 1;
            failed += (double)__atomic_load_n(&v[i]->failed, __ATOMIC_RELAXED);
            queued += rd_kafka_outq_len(v[i]->rk);
        }
    if (!any)
        return 0;
    return rt_prom_header(out, "eddy_kafka_produce_failures_total", "counter",
                          "Records Kafka gave up delivering (dead-lettered).") ||
           rt_prom_sample(out, "eddy_kafka_produce_failures_total", NULL, failed) ||
           rt_prom_header(out, "eddy_kafka_producer_queue", "gauge",
                          "Records queued in the producers, not yet acknowledged.") ||
           rt_prom_sample(out, "eddy_kafka_producer_queue", NULL, queued)
               ? -1 : 0;
}

/* The keys this kind reads (`eddy config` lists them; the config checks them). */
static const rt_conf_key kafka_keys[] = {
    { "sink.*.topic", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "topic of a Kafka sink" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_sink_kind rt_sink_kind_kafka = {
    .name = "kafka", .keys = kafka_keys, .required = "topic",
    .flags = RT_SINK_RAW_DEAD_LETTERS, .open = kafka_open, .metrics = kafka_metrics,
};
