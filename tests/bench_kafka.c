/* bench_kafka.c - Kafka -> processors -> Kafka, against a mock cluster in this process
 * and, when BENCH_KAFKA_BROKER names one, a real broker at least once and exactly once:
 * throughput (first to last record, so the group join is not counted), then end-to-end
 * latency (produce to output receipt) at a fixed input rate, half of that throughput.
 * The latency reader reads read_committed (librdkafka's default): under exactly_once
 * an output counts once its transaction committed. */
#define _GNU_SOURCE     /* memmem */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "kafka.h"
#include "log.h"
#include "worker.h"

/* The mock keeps about 5 MiB per partition: 80,000 events of ~190 bytes fit in 4. */
#define MAX_EVENTS 80000
#define PARTITIONS 4
/* The latency settings of the README, for eddy and the bench's own clients. */
#define LINGER "1"
#define FETCH_WAIT "1"
#define LATENCY_SECONDS 3.0
/* Events sent, and processed by eddy, before the latency clock starts: the first fetch
 * after an assignment (and under exactly_once the first transaction) is start-up, not
 * the steady state measured. */
#define WARMUP_EVENTS 500
#define RUN_LIMIT_SECONDS 120   /* a run that cannot finish fails instead of hanging */

typedef struct lines {
    char **v;
    size_t n;
} lines;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int read_lines(const char *path, lines *l)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (!f)
        return -1;
    l->v = calloc(MAX_EVENTS, sizeof *l->v);
    while (l->v && l->n < MAX_EVENTS && (n = getline(&line, &cap, f)) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (!(l->v[l->n++] = strdup(line)))
            break;
    }
    free(line);
    fclose(f);
    return l->v ? 0 : -1;
}

/* A client of the embedded cluster; `low_latency` applies the latency settings (tiny
 * batches would overflow the mock's few MiB per partition in the bulk load). */
static rd_kafka_t *client(rd_kafka_type_t type, const char *boot, const char *group,
                          int low_latency)
{
    char why[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", boot, why, sizeof why);
    if (low_latency && type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set(c, "linger.ms", LINGER, why, sizeof why);
    /* At most 5 requests in flight, as a Java producer (and eddy's idempotent one): a
     * broker handles one request of a connection at a time, so with librdkafka's default
     * of 1,000,000 the tiny linger.ms=1 batches queue behind each other on a real broker
     * instead of growing, and the latency measured was this producer's own queue
     * (0.5 to 3 s at 4,000 events/s). */
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set(c, "max.in.flight.requests.per.connection", "5", why, sizeof why);
    if (low_latency && type == RD_KAFKA_CONSUMER)
        rd_kafka_conf_set(c, "fetch.wait.max.ms", FETCH_WAIT, why, sizeof why);
    if (group) {
        rd_kafka_conf_set(c, "group.id", group, why, sizeof why);
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", why, sizeof why);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, why, sizeof why);
    if (!rk)
        fprintf(stderr, "bench: %s\n", why);
    return rk;
}

/* How far eddy got, published by the loop for the bench's threads. */
typedef struct progress {
    uint64_t done;          /* records finished */
    uint64_t out;           /* outputs produced */
} progress;

/* A worker on `path` with overrides, until it read and finished `target` records. */
typedef struct run {
    rt_worker w;
    uint64_t target;
    double first, last, deadline;
    uint64_t out;           /* outputs the run produced */
    uint64_t txns;          /* exactly_once: transactions committed */
    int64_t txn_blocked_ms; /* and the time the loop spent in their commit calls */
    progress *progress;     /* once eddy has partitions; NULL when nobody waits */
} run;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    run *r = arg;
    if (r->progress && rt_source_partitions(&r->w.source) > 0) {
        __atomic_store_n(&r->progress->out, r->w.out, __ATOMIC_RELEASE);
        __atomic_store_n(&r->progress->done, r->w.records - r->w.tracker.inflight,
                         __ATOMIC_RELEASE);
    }
    if (!r->first && rt_source_partitions(&r->w.source) > 0)
        r->first = now();   /* fetching starts now; the group join is not counted */
    if (r->w.records >= r->target && r->w.tracker.inflight == 0) {
        r->last = now();
        event_base_loopbreak(r->w.base);
    } else if (now() > r->deadline) {
        fprintf(stderr, "bench: %llu of %llu records after %d s; giving up\n",
                (unsigned long long)r->w.records, (unsigned long long)r->target,
                RUN_LIMIT_SECONDS);
        event_base_loopbreak(r->w.base);
    }
}

static int run_worker(const char *path, char **sets, int nsets, run *r)
{
    char err[1024];
    rt_config cfg;
    int rc = -1;
    struct timeval ms = { 0, 1000 };
    if (rt_config_load(&cfg, path, sets, nsets, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return -1;
    }
    struct event *tick = NULL;
    if (rt_worker_init(&r->w, &cfg, RT_WORKER_OPEN, 0, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        goto out;
    }
    r->deadline = now() + RUN_LIMIT_SECONDS;
    tick = event_new(r->w.base, -1, EV_PERSIST, on_tick, r);
    if (!tick || event_add(tick, &ms) < 0)
        goto out;
    rc = rt_worker_run(&r->w);
    r->out = r->w.out;
    r->txns = r->w.txns;
    r->txn_blocked_ms = r->w.txn_blocked_ms;
out:
    if (tick)
        event_free(tick);
    rt_worker_free(&r->w);
    rt_config_free(&cfg);
    return rc;
}

typedef struct latency {
    const lines *in;
    const char *boot, *topic_in, *topic_out;
    size_t count;
    double rate, *sent, *seen;
    size_t received;        /* events with an output seen (their latency is known) */
    size_t messages;        /* every output, including a second one of an event */
    progress eddy;
    size_t expect;          /* outputs to wait for, once eddy finished; 0 before */
} latency;

/* The warm-up is over when eddy finished its events and their outputs arrived (under
 * exactly_once: a transaction committed). */
static int warmed_up(latency *l)
{
    uint64_t out = __atomic_load_n(&l->eddy.out, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&l->eddy.done, __ATOMIC_ACQUIRE) >= WARMUP_EVENTS && out > 0 &&
           __atomic_load_n(&l->messages, __ATOMIC_ACQUIRE) >= out;
}

/* Paced producer: WARMUP_EVENTS at once, then, once warmed up, event WARMUP_EVENTS + i
 * leaves at start + i / rate. */
static void *produce_paced(void *arg)
{
    latency *l = arg;
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, l->boot, NULL, 1);
    if (!rk)
        return NULL;
    /* A long-lived producer knows the topic's leaders already: fetch them before the
     * clock starts, or the first records wait for metadata (about a second). */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, l->topic_in, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    double start = 0, give_up = now() + RUN_LIMIT_SECONDS;
    for (size_t i = 0; i < l->count; i++) {
        while (i == WARMUP_EVENTS && !warmed_up(l) && now() < give_up) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
        if (i == WARMUP_EVENTS)
            start = now();
        if (i >= WARMUP_EVENTS) {
            double due = start + (double)(i - WARMUP_EVENTS) / l->rate, t;
            while ((t = now()) < due) {
                struct timespec ts = { 0, (long)((due - t) * 1e9) };
                nanosleep(&ts, NULL);
            }
            l->sent[i] = now();
        }
        const char *v = l->in->v[i];
        while (rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                 RD_KAFKA_V_PARTITION((int32_t)(i % PARTITIONS)),
                                 RD_KAFKA_V_VALUE((void *)v, strlen(v)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 1);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 10000);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return NULL;
}

/* Reader of the output topic: the event_id "ev-<line>" says which input it was. */
static void *read_outputs(void *arg)
{
    latency *l = arg;
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, l->boot, "bench-latency-reader", 1);
    if (!rk)
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    /* Assigned, not subscribed: no group join, so it reads from the first output on. */
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int i = 0; i < PARTITIONS; i++)
        rd_kafka_topic_partition_list_add(t, l->topic_out, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    double deadline = now() + LATENCY_SECONDS + 30;
    size_t expect;
    while (((expect = __atomic_load_n(&l->expect, __ATOMIC_ACQUIRE)) == 0 ||
            l->messages < expect) && now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        __atomic_add_fetch(&l->messages, !m->err, __ATOMIC_RELEASE);
        double t_recv = now();
        const char *p = m->err ? NULL : memmem(m->payload, m->len, "\"event_id\":\"ev-", 15);
        if (p) {
            size_t i = strtoul(p + 15, NULL, 10);
            if (i > WARMUP_EVENTS && i <= l->count && !l->seen[i - 1]) {
                l->seen[i - 1] = t_recv - l->sent[i - 1];
                l->received++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(rk);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One cluster, one guarantee. Topics are <prefix>bench-in, -out, lat2-in, -out, lat4-in,
 * -out (created by the caller). */
typedef struct target {
    const char *boot, *label, *prefix;
    const char *guarantee;      /* processing.guarantee */
} target;

typedef struct settings {
    char boot[300], txn[64], guarantee[64];
} settings;

static void settings_of(settings *s, const target *t)
{
    snprintf(s->boot, sizeof s->boot, "kafka.bootstrap.servers=%s", t->boot);
    snprintf(s->txn, sizeof s->txn, "kafka.transactional.id=%sbench", t->prefix);
    snprintf(s->guarantee, sizeof s->guarantee, "processing.guarantee=%s", t->guarantee);
}

/* Latency at `rate`, the throughput divided by `div`, with the latency settings of the
 * README: 0, or 1 on failure or when outputs are missing. */
static int measure_latency(const char *config, const lines *in, const target *t,
                           double rate, int div)
{
    settings st;
    char group[64], lat_in[64], lat_out[64];
    latency l = { .in = in, .boot = t->boot, .rate = rate / div, .topic_in = lat_in,
                  .topic_out = lat_out };
    int rc = 1;
    settings_of(&st, t);
    snprintf(group, sizeof group, "kafka.group.id=%sbench-latency%d", t->prefix, div);
    snprintf(lat_in, sizeof lat_in, "%slat%d-in", t->prefix, div);
    snprintf(lat_out, sizeof lat_out, "%slat%d-out", t->prefix, div);
    l.count = WARMUP_EVENTS + (size_t)(l.rate * LATENCY_SECONDS);
    if (l.count > in->n)
        l.count = in->n;
    l.sent = calloc(l.count, sizeof *l.sent);
    l.seen = calloc(l.count, sizeof *l.seen);
    char *sets[] = { st.boot, group, "kafka.linger.ms=" LINGER,
                     "kafka.fetch.wait.max.ms=" FETCH_WAIT, st.guarantee, st.txn };
    setenv("BENCH_IN", lat_in, 1);
    setenv("BENCH_OUT", lat_out, 1);
    run lr = { .target = l.count, .progress = &l.eddy };
    pthread_t prod, reader;
    if (!l.sent || !l.seen || pthread_create(&reader, NULL, read_outputs, &l))
        goto out;
    if (pthread_create(&prod, NULL, produce_paced, &l)) {
        l.count = 0;        /* lets the reader finish */
        pthread_join(reader, NULL);
        goto out;
    }
    int wrc = run_worker(config, sets, 6, &lr);
    __atomic_store_n(&l.expect, lr.out ? lr.out : 1, __ATOMIC_RELEASE);
    pthread_join(prod, NULL);
    pthread_join(reader, NULL);
    if (wrc < 0 || l.received == 0)
        goto out;
    double *v = malloc(l.received * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < l.count && v; i++)
        if (l.seen[i] > 0)
            v[k++] = l.seen[i];
    if (!v)
        goto out;
    qsort(v, k, sizeof *v, cmp_double);
    printf("latency at 1/%d, %.0f events/s, %zu events:\n", div, l.rate, k);
    printf("  p50 %.2f ms, p99 %.2f ms, max %.2f ms (produce to output receipt)\n",
           v[k / 2] * 1e3, v[k * 99 / 100] * 1e3, v[k - 1] * 1e3);
    free(v);
    /* Some events have two outputs, some outputs no event_id: count messages. */
    rc = l.messages >= lr.out ? 0 : 1;
    if (rc)
        printf("  (%zu of %llu outputs arrived)\n", l.messages, (unsigned long long)lr.out);
out:
    free(l.sent);
    free(l.seen);
    return rc;
}

/* Throughput, then latency at half and at a quarter of it. 0, or 1 on failure. */
static int measure(const char *config, const lines *in, double file_rate, const target *t)
{
    settings st;
    char group[64], topic_in[64], topic_out[64];
    settings_of(&st, t);
    snprintf(group, sizeof group, "kafka.group.id=%sbench-throughput", t->prefix);
    snprintf(topic_in, sizeof topic_in, "%sbench-in", t->prefix);
    snprintf(topic_out, sizeof topic_out, "%sbench-out", t->prefix);

    /* Throughput: everything produced first, then eddy drains the topic. */
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, t->boot, NULL, 0);
    if (!p)
        return 1;
    for (size_t i = 0; i < in->n; i++)
        /* Round robin: the sticky partitioner would overfill one partition of the mock. */
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic_in),
                                 RD_KAFKA_V_PARTITION((int32_t)(i % PARTITIONS)),
                                 RD_KAFKA_V_VALUE(in->v[i], strlen(in->v[i])),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);
    char *sets[] = { st.boot, group, st.guarantee, st.txn };
    run tr = { .target = in->n };
    setenv("BENCH_IN", topic_in, 1);
    setenv("BENCH_OUT", topic_out, 1);
    if (run_worker(config, sets, 4, &tr) < 0 || !tr.last)
        return 1;
    double rate = (double)in->n / (tr.last - tr.first);
    printf("\nKafka -> processors -> Kafka (%s, 4 partitions, %s):\n", t->label, t->guarantee);
    printf("throughput:              %.0f events/s (%.2f of the file pipeline)\n", rate,
           rate / file_rate);
    if (tr.txns)
        printf("transactions:            %llu, their commit calls %.0f ms in all (%.0f%% of the "
               "run, the loop waiting)\n", (unsigned long long)tr.txns,
               (double)tr.txn_blocked_ms, 100.0 * tr.txn_blocked_ms / 1e3 / (tr.last - tr.first));
    printf("(latency: linger.ms=%s, fetch.wait.max.ms=%s, after %d warm-up events)\n", LINGER,
           FETCH_WAIT, WARMUP_EVENTS);
    fflush(stdout);
    return measure_latency(config, in, t, rate, 2) | measure_latency(config, in, t, rate, 4);
}

int bench_kafka(const char *config, const char *events_path, double file_rate)
{
    char err[512];
    rt_kafka_embedded cluster = { 0 };
    lines in = { 0 };
    int rc = 1;
    if (read_lines(events_path, &in) < 0 || in.n == 0) {
        fprintf(stderr, "bench: cannot read %s\n", events_path);
        return 1;
    }
    if (rt_kafka_embedded_start(&cluster, 1, PARTITIONS, "bench-in,bench-out,lat2-in,lat2-out,lat4-in,lat4-out,bench-dlq",
                                err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        goto out;
    }
    target mock = { cluster.bootstraps, "embedded mock cluster", "", "at_least_once" };
    rc = measure(config, &in, file_rate, &mock);
    /* A real broker (scripts/bench.sh starts one; its topics made with prefixes alos-
     * and eos-): both guarantees, one after the other. */
    const char *broker = getenv("BENCH_KAFKA_BROKER");
    if (broker && *broker) {
        target alos = { broker, "Apache Kafka broker", "alos-", "at_least_once" };
        target eos = { broker, "Apache Kafka broker", "eos-", "exactly_once" };
        rc |= measure(config, &in, file_rate, &alos);
        rc |= measure(config, &in, file_rate, &eos);
    }
out:
    rt_kafka_embedded_stop(&cluster);
    for (size_t i = 0; i < in.n; i++)
        free(in.v[i]);
    free(in.v);
    return rc;
}
