/* bench_kafka.c - Kafka -> processors -> Kafka, against a mock cluster in this process
 * and, when BENCH_KAFKA_BROKER names one, a real broker at least once and exactly once:
 * throughput (first to last record, so the group join is not counted), then end-to-end
 * latency (produce to output receipt) at a fixed input rate, half and a quarter of that
 * throughput, and on the embedded cluster against load (sweep()).
 * eddy runs as a user runs it: `eddy run` with runtime.workers=2 (a supervisor and two
 * worker processes), its progress read from the supervisor's /metrics. The input is
 * keyed by the event's entity (device, product, user), as a producer of business
 * events keys it, so a key's state lives in one partition.
 * The latency reader reads read_committed (librdkafka's default): under exactly_once
 * an output counts once its transaction committed. */
#define _GNU_SOURCE     /* memmem */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench.h"
#include "buf.h"
#include "kafka.h"
#include "metrics.h"

extern char **environ;

/* The mock keeps about 5 MiB per partition (it drops the oldest batches past that):
 * 80,000 events of ~190 bytes fit in 4, for the throughput runs, which load their
 * input first. A latency run's readers stay near the newest records, so it takes up to
 * LATENCY_SECONDS of the input, up to all of it. */
#define MAX_EVENTS 80000
#define MAX_LATENCY_EVENTS 200000
#define PARTITIONS 4
#define WORKERS "2"
/* The latency settings of the README, for eddy and the bench's own clients. */
#define LINGER "1"
#define FETCH_WAIT "1"
#define LATENCY_SECONDS 3.0
#define PACE_STEP_S 0.0005      /* the paced producer's shortest sleep: half of LINGER */
/* A fresh eddy's first second: its lookup caches fill (up to 6,100 keys a worker, a
 * database round trip per batch of misses) while the events keep coming. A run's p99
 * is also given without it, as the steady state a long-running job is in. */
#define COLD_START_S 1.0
/* A latency run is a few seconds, and its p99 is the worst 1% of it: one hiccup of the
 * shared machine moves it several-fold (18 to 370 ms at half rate, the same binary,
 * the same hour). Each latency is measured this many times, in fresh topics, and the
 * medians of the runs' p50 and p99 are the result. */
#define LATENCY_RUNS 3
/* Issue 18's bar for the p99 at half rate, and the rates of the sweep against it. */
#define LATENCY_BAR_MS 10
#define SWEEP_FROM 30000
#define SWEEP_STEP 10000
#define SWEEP_STEPS 12
/* Events sent, and processed by eddy, before the latency clock starts: the first fetch
 * after an assignment (and under exactly_once the first transaction) is start-up, not
 * the steady state measured. */
#define WARMUP_EVENTS 500
#define RUN_LIMIT_SECONDS 120   /* a run that cannot finish fails instead of hanging */
/* eddy_record_e2e_latency_seconds, then its stages (fetch, process, deliver). */
#define E2E_HISTS 4
/* How often eddy's progress is read: often while throughput is timed, seldom while
 * latency is. A read costs the supervisor about 0.6 ms and each worker 0.4 ms of CPU
 * (timed over 500 reads); every 20 ms that was 7% of a core taken from the run it
 * measures, and a latency run only needs to see its warm-up done and its end. */
#define METRICS_EVERY_NS 5000000L
#define METRICS_EVERY_NS_LATENCY 100000000L

typedef struct lines {
    char **v;
    const char **key;   /* into v[i]: the entity the event is about, or NULL */
    size_t *key_len;
    size_t n;           /* read, up to MAX_LATENCY_EVENTS */
    size_t bulk;        /* of which the throughput runs take the first, MAX_EVENTS at most */
} lines;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The message key a producer of the event would give it: its device, product or user. */
static const char *entity_key(const char *line, size_t *len)
{
    static const char *const fields[] = { "\"deviceId\":\"", "\"productId\":\"",
                                          "\"userId\":\"" };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *k = strstr(line, fields[i]);
        if (k) {
            k += strlen(fields[i]);
            *len = strcspn(k, "\"");
            return k;
        }
    }
    *len = 0;
    return NULL;
}

static int read_lines(const char *path, lines *l)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = -1;
    if (!f)
        return -1;
    l->v = calloc(MAX_LATENCY_EVENTS, sizeof *l->v);
    l->key = calloc(MAX_LATENCY_EVENTS, sizeof *l->key);
    l->key_len = calloc(MAX_LATENCY_EVENTS, sizeof *l->key_len);
    if (!l->v || !l->key || !l->key_len)
        goto out;
    while (l->n < MAX_LATENCY_EVENTS && (n = getline(&line, &cap, f)) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (!(l->v[l->n] = strdup(line)))
            goto out;
        l->key[l->n] = entity_key(l->v[l->n], &l->key_len[l->n]);
        l->n++;
    }
    l->bulk = l->n < MAX_EVENTS ? l->n : MAX_EVENTS;
    rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
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

/* How far eddy got, published by run_eddy for the bench's threads. */
typedef struct progress {
    uint64_t done;          /* records finished */
    uint64_t out;           /* outputs produced */
} progress;

/* One `eddy run` until it read and finished `target` records. */
typedef struct run {
    uint64_t target;
    double first, last;
    uint64_t from;          /* records read when first seen reading */
    uint64_t out;           /* outputs the run produced */
    uint64_t txns;          /* exactly_once: transactions committed */
    double txn_wait_s;      /* and the time the loops waited in commit calls */
    uint64_t rebalances;    /* the workers' rebalance callbacks: one each when undisturbed */
    uint64_t restarts;      /* workers the supervisor restarted during the run */
    double e2e[E2E_HISTS][RT_HIST_BUCKETS + 1];    /* eddy_record_e2e_latency_seconds
                                         * and its stages, cumulative, without the warm-up
                                         * of a latency run */
    double e2e_warm[E2E_HISTS][RT_HIST_BUCKETS + 1];   /* the same, once warmed up */
    int warm;
    progress *progress;     /* NULL when nobody waits */
} run;

/* The figures of /metrics the bench reads, each summed over its series. */
typedef struct figures {
    double records, inflight, out, txns, txn_wait_s, rebalances, restarts;
    double e2e[E2E_HISTS][RT_HIST_BUCKETS + 1];    /* buckets by rt_hist_bounds_e2e,
                                                     * then +Inf */
} figures;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return rt_buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

/* Adds a line's value to the figure its name is, if any; dead letters are no output. */
static void figure_of(figures *f, const char *line)
{
    static const char *const bucket[E2E_HISTS] = {
        "eddy_record_e2e_latency_seconds_bucket{le=\"",
        "eddy_record_stage_latency_seconds_bucket{stage=\"fetch\",le=\"",
        "eddy_record_stage_latency_seconds_bucket{stage=\"process\",le=\"",
        "eddy_record_stage_latency_seconds_bucket{stage=\"deliver\",le=\"",
    };
    for (int h = 0; h < E2E_HISTS; h++) {
        size_t n = strlen(bucket[h]);
        if (strncmp(line, bucket[h], n) != 0)
            continue;
        const char *le = line + n, *v = strchr(le, ' ');
        double bound = strncmp(le, "+Inf", 4) ? strtod(le, NULL) : -1;
        int i = 0;
        while (i < RT_HIST_BUCKETS && bound != rt_hist_bounds_e2e[i])
            i++;
        if (v)
            f->e2e[h][i] += strtod(v + 1, NULL);
        return;
    }
    static const struct { const char *name; size_t off; } names[] = {
        { "eddy_records_read_total", offsetof(figures, records) },
        { "eddy_inflight_events", offsetof(figures, inflight) },
        { "eddy_events_out_total", offsetof(figures, out) },
        { "eddy_transactions_committed_total", offsetof(figures, txns) },
        { "eddy_transaction_commit_seconds_total", offsetof(figures, txn_wait_s) },
        { "eddy_kafka_rebalances_total", offsetof(figures, rebalances) },
        { "eddy_worker_restarts_total", offsetof(figures, restarts) },
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t n = strlen(names[i].name);
        if (strncmp(line, names[i].name, n) != 0 || (line[n] != ' ' && line[n] != '{'))
            continue;
        if (strstr(line, "sink=\"dlq\""))
            return;
        const char *v = strchr(line, ' ');
        if (v)
            *(double *)((char *)f + names[i].off) += strtod(v + 1, NULL);
        return;
    }
}

/* GET /metrics of the admin endpoint. 0, or -1 while it does not answer. */
static int read_figures(CURL *c, rt_buf *body, figures *f)
{
    long status = 0;
    body->len = 0;
    if (curl_easy_perform(c) != CURLE_OK ||
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200 ||
        rt_buf_putc(body, '\0') < 0)
        return -1;
    memset(f, 0, sizeof *f);
    for (char *line = body->data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        figure_of(f, line);
    }
    return 0;
}

/* A port nobody listens on now, for the admin endpoint. */
static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* `eddy run -c config --set ...` with runtime.workers=2 until it read `r->target`
 * records and finished them (their outputs acknowledged). 0, or -1. */
static int run_eddy(const char *config, char **sets, int nsets, run *r)
{
    char admin[64], url[64];
    const char *eddy = getenv("BENCH_EDDY");
    const char *argv[48];
    int argc = 0, rc = -1, port = free_port();
    pid_t pid = -1;
    rt_buf body = { 0 };
    CURL *c = curl_easy_init();
    if (port < 0 || !c || nsets > 10)
        goto out;
    snprintf(admin, sizeof admin, "admin.listen=127.0.0.1:%d", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    argv[argc++] = eddy && *eddy ? eddy : "bin/eddy";
    argv[argc++] = "run";
    argv[argc++] = "-c";
    argv[argc++] = config;
    const char *fixed[] = { "runtime.workers=" WORKERS, admin, "log.level=warn" };
    const int nfixed = (int)(sizeof fixed / sizeof *fixed);
    for (int i = 0; i < nsets + nfixed; i++) {
        argv[argc++] = "--set";
        argv[argc++] = i < nsets ? sets[i] : fixed[i - nsets];
    }
    argv[argc] = NULL;
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L) != CURLE_OK ||
        posix_spawn(&pid, argv[0], NULL, NULL, (char **)argv, environ) != 0) {
        fprintf(stderr, "bench: cannot start %s\n", argv[0]);
        pid = -1;
        goto out;
    }
    double deadline = now() + RUN_LIMIT_SECONDS;
    /* The supervisor keeps a dead worker's counters in its sums (supervisor_metrics.c):
     * a sum that goes down is a bug, said as such. */
    double last_read = 0;
    figures f;
    for (;;) {
        struct timespec ts = { 0, r->progress ? METRICS_EVERY_NS_LATENCY : METRICS_EVERY_NS };
        nanosleep(&ts, NULL);
        if (now() > deadline) {
            fprintf(stderr, "bench: eddy did not finish %llu records in %d s; giving up\n",
                    (unsigned long long)r->target, RUN_LIMIT_SECONDS);
            goto out;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "bench: eddy exited before it finished its records\n");
            pid = -1;
            goto out;
        }
        if (read_figures(c, &body, &f) < 0 || f.records == 0)
            continue;   /* starting, or waiting for its partitions */
        if (f.records < last_read)
            fprintf(stderr, "bench: eddy_records_read_total went down, %.0f -> %.0f\n",
                    last_read, f.records);
        last_read = f.records;
        if (!r->first) {
            r->first = now();
            r->from = (uint64_t)f.records;
        }
        if (r->progress) {
            __atomic_store_n(&r->progress->out, (uint64_t)f.out, __ATOMIC_RELEASE);
            __atomic_store_n(&r->progress->done, (uint64_t)(f.records - f.inflight),
                             __ATOMIC_RELEASE);
            /* Only warm-up events are sent until they are done: what they took (the
             * group joining, first of all) is left out of eddy's figures. */
            if (!r->warm && f.records - f.inflight >= WARMUP_EVENTS) {
                memcpy(r->e2e_warm, f.e2e, sizeof r->e2e_warm);
                r->warm = 1;
            }
        }
        if (f.records >= (double)r->target && f.inflight == 0)
            break;
    }
    r->last = now();
    r->out = (uint64_t)f.out;
    r->txns = (uint64_t)f.txns;
    r->txn_wait_s = f.txn_wait_s;
    r->rebalances = (uint64_t)f.rebalances;
    r->restarts = (uint64_t)f.restarts;
    for (int h = 0; h < E2E_HISTS; h++)
        for (int i = 0; i <= RT_HIST_BUCKETS; i++)
            r->e2e[h][i] = f.e2e[h][i] - r->e2e_warm[h][i];
    rc = 0;
out:
    if (pid > 0) {
        int status;
        kill(pid, SIGTERM);
        if (waitpid(pid, &status, 0) == pid && (!WIFEXITED(status) || WEXITSTATUS(status))) {
            fprintf(stderr, "bench: eddy exited with status %d\n", status);
            rc = -1;
        }
    }
    curl_easy_cleanup(c);
    rt_buf_free(&body);
    return rc;
}

/* The q quantile of a cumulative histogram by rt_hist_bounds_e2e, linear within its
 * bucket as Prometheus' histogram_quantile; -1 when it is empty. */
static double e2e_quantile(const double *cum, double q)
{
    double total = cum[RT_HIST_BUCKETS], want = q * total;
    if (total <= 0)
        return -1;
    for (int i = 0; i < RT_HIST_BUCKETS; i++)
        if (cum[i] >= want) {
            double lo = i ? rt_hist_bounds_e2e[i - 1] : 0, below = i ? cum[i - 1] : 0;
            return lo + (rt_hist_bounds_e2e[i] - lo) * (want - below) / (cum[i] - below);
        }
    return rt_hist_bounds_e2e[RT_HIST_BUCKETS - 1];
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
    int no_eddy;            /* the floor: a bare relay in eddy's place (relay()) */
    int stop;               /* ends the relay, and the reader before its deadline */
} latency;

/* The warm-up is over when eddy finished its events and their outputs arrived (under
 * exactly_once: a transaction committed); with no eddy, when the reader has them. */
static int warmed_up(latency *l)
{
    if (l->no_eddy)
        return __atomic_load_n(&l->messages, __ATOMIC_ACQUIRE) >= WARMUP_EVENTS;
    uint64_t out = __atomic_load_n(&l->eddy.out, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&l->eddy.done, __ATOMIC_ACQUIRE) >= WARMUP_EVENTS && out > 0 &&
           __atomic_load_n(&l->messages, __ATOMIC_ACQUIRE) >= out;
}

/* Paced producer: WARMUP_EVENTS at once, then, once warmed up, event WARMUP_EVENTS + i
 * leaves at start + i / rate, or up to PACE_STEP_S after it with the others due by
 * then. A sleep for every event took this thread 0.12 of a core at 60,000 events/s
 * (0.05 now), from the machine eddy is measured on; the producer's linger.ms batches
 * the events anyway. Each event's latency counts from when it really left. */
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
            double due = start + (double)(i - WARMUP_EVENTS) / l->rate, t = now();
            double wake = due > t + PACE_STEP_S ? due : t + PACE_STEP_S;
            if (t < due)
                while ((t = now()) < wake) {
                    struct timespec ts = { 0, (long)((wake - t) * 1e9) };
                    nanosleep(&ts, NULL);
                }
            l->sent[i] = now();
        }
        const char *v = l->in->v[i];
        while (rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                 RD_KAFKA_V_KEY(l->in->key[i], l->in->key_len[i]),
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

/* Reader of the output topic: the event_id "ev-<line>" says which input it was (with
 * no eddy, the relayed input's own eventId). */
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
    const char *id = l->no_eddy ? "\"eventId\":\"ev-" : "\"event_id\":\"ev-";
    size_t expect, idlen = strlen(id);
    while (((expect = __atomic_load_n(&l->expect, __ATOMIC_ACQUIRE)) == 0 ||
            l->messages < expect) && now() < deadline &&
           !__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        __atomic_add_fetch(&l->messages, !m->err, __ATOMIC_RELEASE);
        double t_recv = now();
        const char *p = m->err ? NULL : memmem(m->payload, m->len, id, idlen);
        if (p) {
            size_t i = strtoul(p + idlen, NULL, 10);
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
    int full_caches;            /* and a run with the lookups as full caches */
    /* librdkafka's mock cluster, which holds a group that is joined again for the
     * session timeout less 1 s, not until its members are back as a broker does (see
     * throughput()): kafka.session.timeout.ms is 6 s there (the broker's least), and a
     * run with a second join is run again. On a broker librdkafka's 45 s stays: under
     * this load a shorter one sees rebalances that no start-up makes. */
    int mock;
} target;

typedef struct settings {
    char boot[300], txn[64], guarantee[64], session[64];
} settings;

static void settings_of(settings *s, const target *t)
{
    snprintf(s->boot, sizeof s->boot, "kafka.bootstrap.servers=%s", t->boot);
    snprintf(s->txn, sizeof s->txn, "kafka.transactional.id=%sbench", t->prefix);
    snprintf(s->guarantee, sizeof s->guarantee, "processing.guarantee=%s", t->guarantee);
    snprintf(s->session, sizeof s->session, "kafka.session.timeout.ms=%s",
             t->mock ? "6000" : "45000");
}

/* A latency run's events and its arrays, at l->rate: the warm-up, then
 * LATENCY_SECONDS of events (as many as the input has). -1 when out of memory. */
static int latency_alloc(latency *l)
{
    l->count = WARMUP_EVENTS + (size_t)(l->rate * LATENCY_SECONDS);
    if (l->count > l->in->n)
        l->count = l->in->n;
    l->sent = calloc(l->count, sizeof *l->sent);
    l->seen = calloc(l->count, sizeof *l->seen);
    return l->sent && l->seen ? 0 : -1;
}

/* The pct-th percentile (50, 99) of k > 0 sorted latencies, as every figure here
 * takes it. */
static double percentile(const double *v, size_t k, unsigned pct)
{
    return v[k * pct / 100];
}

/* "  p50 .., p99 .., max .. ms (what)" of k sorted latencies. */
static void print_spread(const double *v, size_t k, const char *what)
{
    printf("  p50 %.2f ms, p99 %.2f ms, max %.2f ms (%s)\n", percentile(v, k, 50) * 1e3,
           percentile(v, k, 99) * 1e3, v[k - 1] * 1e3, what);
}

/* The latencies seen of the events sent `after` seconds or more into the run, sorted (k
 * of them); NULL when none or out of memory. */
static double *sorted_latencies(const latency *l, double after, size_t *k)
{
    double *v = l->received ? malloc(l->received * sizeof *v) : NULL;
    *k = 0;
    for (size_t i = WARMUP_EVENTS; i < l->count && v; i++)
        if (l->seen[i] > 0 && l->sent[i] - l->sent[WARMUP_EVENTS] >= after)
            v[(*k)++] = l->seen[i];
    if (v && !*k) {
        free(v);
        v = NULL;
    }
    if (v)
        qsort(v, *k, sizeof *v, cmp_double);
    return v;
}

/* In eddy's place for the floor: a consumer of the input topic (partitions assigned,
 * fetch.wait.max.ms as eddy's) and a producer (linger.ms as eddy's) that writes every
 * record as it is to the output topic. Two hops through the cluster as eddy's events
 * take, with no work between them. */
static void *relay(void *arg)
{
    latency *l = arg;
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, l->boot, "bench-floor-relay", 1);
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, l->boot, NULL, 1);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(PARTITIONS);
    if (!c || !p || !t)
        goto out;
    rd_kafka_poll_set_consumer(c);
    for (int i = 0; i < PARTITIONS; i++)
        rd_kafka_topic_partition_list_add(t, l->topic_in, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, t);
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        if (!m->err)
            while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(l->topic_out),
                                     RD_KAFKA_V_PARTITION(m->partition),
                                     RD_KAFKA_V_VALUE(m->payload, m->len),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) ==
                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 1);
        rd_kafka_message_destroy(m);
        rd_kafka_poll(p, 0);
    }
out:
    if (t)
        rd_kafka_topic_partition_list_destroy(t);
    if (c) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    if (p)
        rd_kafka_destroy(p);
    return NULL;
}

/* An input rate the latency is measured at. */
typedef struct load {
    double rate;            /* events/s */
    const char *tag;        /* names its topics: <prefix>lat<tag>-<run>-in */
    const char *label;      /* what the figures printed are of */
    int detail;             /* each run's figures, and the floor's (at least once) */
} load;

/* The same paced producer and reader at ld's rate with a bare relay in eddy's place:
 * what the cluster and the clients alone take on this machine at that rate. Its p99 in
 * seconds, or -1 when nothing came back. */
static double measure_floor(const lines *in, const target *t, const load *ld, int n)
{
    char topic_in[64], topic_out[64];
    double p99 = -1;
    latency l = { .in = in, .boot = t->boot, .rate = ld->rate, .topic_in = topic_in,
                  .topic_out = topic_out, .no_eddy = 1 };
    snprintf(topic_in, sizeof topic_in, "%slat%s-%d-floor-in", t->prefix, ld->tag, n);
    snprintf(topic_out, sizeof topic_out, "%slat%s-%d-floor-out", t->prefix, ld->tag, n);
    pthread_t prod, reader, mid;
    if (latency_alloc(&l) < 0 || pthread_create(&mid, NULL, relay, &l))
        goto out;
    l.expect = l.count;
    if (pthread_create(&reader, NULL, read_outputs, &l)) {
        __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
        pthread_join(mid, NULL);
        goto out;
    }
    if (pthread_create(&prod, NULL, produce_paced, &l))
        __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
    else
        pthread_join(prod, NULL);
    pthread_join(reader, NULL);
    __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
    pthread_join(mid, NULL);
    size_t k;
    double *v = sorted_latencies(&l, 0, &k);
    char what[96];
    snprintf(what, sizeof what, "the floor: a bare librdkafka relay in eddy's place, %zu events", k);
    if (v) {
        print_spread(v, k, what);
        p99 = percentile(v, k, 99);
    } else {
        printf("  (the floor: no event came back through the relay)\n");
    }
    free(v);
out:
    free(l.sent);
    free(l.seen);
    return p99;
}

/* What one latency run gave, in seconds (-1: not measured). */
typedef struct spread {
    double p50, p99, floor_p99;
    double steady_p99;      /* of the events sent after the run's first COLD_START_S */
    int joined_twice;       /* on the mock: its figures count the group's wait */
} spread;

/* Run n of the latency at ld's rate with the latency settings of the README: 0, or 1
 * on failure or when outputs are missing. */
static int latency_run(const char *config, const lines *in, const target *t, const load *ld,
                       int n, spread *out)
{
    settings st;
    char group[64], lat_in[64], lat_out[64];
    latency l = { .in = in, .boot = t->boot, .rate = ld->rate, .topic_in = lat_in,
                  .topic_out = lat_out };
    int rc = 1;
    *out = (spread){ -1, -1, -1, -1, 0 };
    settings_of(&st, t);
    snprintf(group, sizeof group, "kafka.group.id=%sbench-latency%s-%d", t->prefix, ld->tag, n);
    snprintf(lat_in, sizeof lat_in, "%slat%s-%d-in", t->prefix, ld->tag, n);
    snprintf(lat_out, sizeof lat_out, "%slat%s-%d-out", t->prefix, ld->tag, n);
    char *sets[] = { st.boot, group, "kafka.linger.ms=" LINGER,
                     "kafka.fetch.wait.max.ms=" FETCH_WAIT, st.guarantee, st.txn, st.session };
    setenv("BENCH_IN", lat_in, 1);
    setenv("BENCH_OUT", lat_out, 1);
    run lr = { .progress = &l.eddy };
    pthread_t prod, reader;
    if (latency_alloc(&l) < 0 || pthread_create(&reader, NULL, read_outputs, &l))
        goto out;
    lr.target = l.count;
    if (pthread_create(&prod, NULL, produce_paced, &l)) {
        __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);     /* ends the reader */
        pthread_join(reader, NULL);
        goto out;
    }
    int wrc = run_eddy(config, sets, (int)(sizeof sets / sizeof *sets), &lr);
    __atomic_store_n(&l.expect, lr.out ? lr.out : 1, __ATOMIC_RELEASE);
    pthread_join(prod, NULL);
    pthread_join(reader, NULL);
    size_t k;
    double *v = wrc < 0 ? NULL : sorted_latencies(&l, 0, &k);
    if (!v)
        goto out;
    size_t ks;
    double *vs = sorted_latencies(&l, COLD_START_S, &ks);
    if (vs)
        out->steady_p99 = percentile(vs, ks, 99);
    free(vs);
    out->p50 = percentile(v, k, 50);
    out->p99 = percentile(v, k, 99);
    out->joined_twice = t->mock && lr.rebalances > (uint64_t)atoi(WORKERS);
    /* Some events have two outputs, some outputs no event_id: count messages. */
    rc = l.messages >= lr.out ? 0 : 1;
    if (!ld->detail) {
        if (rc)
            printf("  (%s, run %d: %zu of %llu outputs arrived)\n", ld->label, n, l.messages,
                   (unsigned long long)lr.out);
        free(v);
        goto out;
    }
    printf("latency at %s, %.0f events/s, run %d of %d, %zu events:\n", ld->label, l.rate, n,
           LATENCY_RUNS, k);
    print_spread(v, k, "produce to output receipt");
    if (out->steady_p99 >= 0)
        printf("  p99 %.2f ms of the events sent after the run's first %.0f s\n",
               out->steady_p99 * 1e3, COLD_START_S);
    /* eddy's own view: from the record's timestamp (taken by the producer at produce)
     * to its output's acknowledgement; the rest is the reader's fetch. Bucketed (the
     * quantiles are interpolated within a bucket), after the warm-up. */
    if (lr.e2e[0][RT_HIST_BUCKETS] > 0)
        printf("  p50 %.2f ms, p99 %.2f ms (eddy_record_e2e_latency_seconds: record timestamp "
               "to output acknowledged)\n", e2e_quantile(lr.e2e[0], 0.5) * 1e3,
               e2e_quantile(lr.e2e[0], 0.99) * 1e3);
    /* Which stage the tail is in (their quantiles do not add up; their sums do). */
    if (lr.e2e[1][RT_HIST_BUCKETS] > 0)
        printf("  p99 by stage: fetch %.2f ms, process %.2f ms, deliver %.2f ms "
               "(eddy_record_stage_latency_seconds)\n", e2e_quantile(lr.e2e[1], 0.99) * 1e3,
               e2e_quantile(lr.e2e[2], 0.99) * 1e3, e2e_quantile(lr.e2e[3], 0.99) * 1e3);
    if (out->joined_twice)    /* see throughput() */
        printf("  (%llu rebalances, not %s: a group joined twice, its wait in these figures)\n",
               (unsigned long long)lr.rebalances, WORKERS);
    if (lr.restarts)
        printf("  (%llu worker restarts during the run, their wait in these figures)\n",
               (unsigned long long)lr.restarts);
    free(v);
    if (rc)
        printf("  (%zu of %llu outputs arrived)\n", l.messages, (unsigned long long)lr.out);
    if (strcmp(t->guarantee, "at_least_once") == 0)
        out->floor_p99 = measure_floor(in, t, ld, n);
out:
    free(l.sent);
    free(l.seen);
    return rc;
}

/* The median of the figures that were measured (>= 0) among v[0..n), sorting v;
 * -1 when none was. */
static double median(double *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0)
            v[k++] = v[i];
    if (!k)
        return -1;
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    return v[k / 2];
}

/* LATENCY_RUNS runs of the latency at ld's rate, and their medians (the p99's in
 * *p99, seconds; -1 when none was measured): 0, or 1 when a run failed or missed
 * outputs. */
static int measure_latency(const char *config, const lines *in, const target *t,
                           const load *ld, double *p99)
{
    double p50s[LATENCY_RUNS], p99s[LATENCY_RUNS], floors[LATENCY_RUNS];
    double steady[LATENCY_RUNS];
    char runs[LATENCY_RUNS * 48] = "";     /* each run's p99, for the lines without detail */
    int rc = 0;
    for (int n = 0; n < LATENCY_RUNS; n++) {
        spread r;
        rc |= latency_run(config, in, t, ld, n + 1, &r);
        p50s[n] = r.p50;
        p99s[n] = r.p99;
        floors[n] = r.floor_p99;
        steady[n] = r.steady_p99;
        size_t len = strlen(runs);
        if (r.p99 < 0)
            snprintf(runs + len, sizeof runs - len, "%sfailed", n ? ", " : "");
        else
            snprintf(runs + len, sizeof runs - len, "%s%.2f%s", n ? ", " : "", r.p99 * 1e3,
                     r.joined_twice ? " (a group joined twice)" : "");
    }
    double p50 = median(p50s, LATENCY_RUNS);
    double floor_p99 = median(floors, LATENCY_RUNS);
    double steady_p99 = median(steady, LATENCY_RUNS);
    *p99 = median(p99s, LATENCY_RUNS);
    if (*p99 < 0)
        return 1;
    if (ld->detail)
        printf("latency at %s (%.0f events/s), median of %d runs:", ld->label, ld->rate,
               LATENCY_RUNS);
    else
        printf("  %6.0f events/s:", ld->rate);
    printf(" p50 %.2f ms, p99 %.2f ms", p50 * 1e3, *p99 * 1e3);
    if (steady_p99 >= 0)
        printf(" (after the first %.0f s: %.2f ms)", COLD_START_S, steady_p99 * 1e3);
    if (floor_p99 >= 0)
        printf("; the floor's p99 %.2f ms", floor_p99 * 1e3);
    if (!ld->detail)    /* a median hides a run that went wrong */
        printf("; runs' p99 %s ms", runs);
    printf("\n");
    fflush(stdout);
    return rc;
}

/* Latency against load, on the embedded cluster: fixed rates SWEEP_STEP apart from
 * SWEEP_FROM, up to the throughput, until the median p99 of two rates in a row passes
 * LATENCY_BAR_MS (one can be a hiccup of the machine, as in the half rate's runs). The
 * half rate moves with the throughput run it is half of (the same binary gave 134,000
 * to 193,000 events/s within an hour), and with it the load the p99 is taken at; a
 * fixed rate is the same load in every run. */
static int sweep(const char *config, const lines *in, const target *t, double throughput)
{
    double kept = -1, p99 = -1;
    int rc = 0, over = 0, gone = 0;     /* gone: a rate was over the bar */
    printf("latency against load (fixed rates, medians of %d runs each, up to two in a row "
           "over %d ms):\n", LATENCY_RUNS, LATENCY_BAR_MS);
    for (int k = 1; k <= SWEEP_STEPS && over < 2; k++) {
        char tag[16];
        snprintf(tag, sizeof tag, "s%d", k);
        load ld = { SWEEP_FROM + (k - 1) * SWEEP_STEP, tag, "a fixed rate", 0 };
        if (ld.rate > throughput)
            break;
        rc |= measure_latency(config, in, t, &ld, &p99);
        if (p99 < 0 || p99 * 1e3 > LATENCY_BAR_MS) {
            over++;
            gone = 1;
        } else {
            over = 0;
            if (!gone)
                kept = ld.rate;
        }
    }
    if (kept > 0)
        printf("p99 <= %d ms at every rate up to %.0f events/s (%.2f of the throughput)\n",
               LATENCY_BAR_MS, kept, kept / throughput);
    else
        printf("p99 over %d ms from the first rate, %d events/s\n", LATENCY_BAR_MS, SWEEP_FROM);
    return rc;
}

/* The bench config's lookups (conf/bench-kafka.conf) as full caches: its dimension
 * tables are small, which is what cache=full is for (Flink's lookup.cache=FULL). */
#define FULL_CACHES "lookup.user_dim.cache=full", "lookup.product_dim.cache=full", \
                    "lookup.device_meta.cache=full"

/* Events/s of one run over the input, first record read to last finished; -1.
 * librdkafka's mock cluster (2.0.2, and its code to this day) answers a group's
 * SyncGroup once the leader's assignment is in: a follower whose SyncGroup comes after
 * the leader's is refused and joins again, and the mock then holds the group for the
 * session timeout less 1 s, where a broker ends the join once its members are back.
 * Such a run measures that wait, not eddy. It shows as rebalances beyond the workers'
 * first ones, and is run again in a new group (`group`, in `sets`). */
#define ATTEMPTS 3
static double throughput(const char *config, char **sets, int nsets, const lines *in, run *r,
                         const target *t, char *group, size_t group_size)
{
    size_t base = strlen(group);
    for (int attempt = 1;; attempt++) {
        *r = (run){ .target = r->target, .progress = r->progress };
        if (run_eddy(config, sets, nsets, r) < 0)
            return -1;
        int joined_twice = t->mock && r->rebalances > (uint64_t)atoi(WORKERS);
        if (!joined_twice && !r->restarts)
            break;
        if (joined_twice)
            printf("(%s: %llu rebalances, not %s: a group joined twice%s)\n",
                   strchr(group, '=') + 1, (unsigned long long)r->rebalances, WORKERS,
                   attempt < ATTEMPTS ? "; run again" : "; the figure below counts the wait");
        else    /* exactly once: a commit that a rebalance overtook (README, Guarantees) */
            printf("(%s: %llu worker restarts%s)\n", strchr(group, '=') + 1,
                   (unsigned long long)r->restarts,
                   attempt < ATTEMPTS ? "; run again" : "; the figure below counts them");
        if (attempt == ATTEMPTS)
            break;
        snprintf(group + base, group_size - base, "-again%d", attempt);
    }
    if (r->from > in->bulk / 2) {
        fprintf(stderr, "bench: eddy read %llu of %zu records before the first look\n",
                (unsigned long long)r->from, in->bulk);
        return -1;
    }
    return (double)(in->bulk - r->from) / (r->last - r->first);
}

/* Throughput, then latency at half and at a quarter of it, and on the embedded cluster
 * against load. 0, or 1 on failure. */
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
    for (size_t i = 0; i < in->bulk; i++)
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic_in),
                                 RD_KAFKA_V_KEY(in->key[i], in->key_len[i]),
                                 RD_KAFKA_V_VALUE(in->v[i], strlen(in->v[i])),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);
    /* The first five for every run, the full caches only for the second one. */
    char *sets[] = { st.boot, group, st.guarantee, st.txn, st.session, FULL_CACHES };
    const int nsets = 5, nsets_full = (int)(sizeof sets / sizeof *sets);
    run tr = { .target = in->bulk };
    setenv("BENCH_IN", topic_in, 1);
    setenv("BENCH_OUT", topic_out, 1);
    double rate = throughput(config, sets, nsets, in, &tr, t, group, sizeof group);
    if (rate < 0)
        return 1;
    printf("\nKafka -> processors -> Kafka (%s, 4 partitions, %s, runtime.workers=%s):\n",
           t->label, t->guarantee, WORKERS);
    printf("throughput:              %.0f events/s (%.2f of the file pipeline)\n", rate,
           rate / file_rate);
    if (t->full_caches) {
        /* The same input again, in another group (sets[1] is `group`), the dimension
         * tables held whole. */
        run fr = { .target = in->bulk };
        snprintf(group, sizeof group, "kafka.group.id=%sbench-throughput-full", t->prefix);
        double full = throughput(config, sets, nsets_full, in, &fr, t, group, sizeof group);
        if (full < 0)
            return 1;
        printf("  dimension tables in full caches (lookup.*.cache=full): %.0f events/s\n", full);
    }
    if (tr.txns)
        printf("transactions:            %llu, their commit calls %.0f ms in all (%.0f%% of the "
               "workers' time, their loops waiting)\n", (unsigned long long)tr.txns,
               tr.txn_wait_s * 1e3, 100.0 * tr.txn_wait_s / (atoi(WORKERS) * (tr.last - tr.first)));
    printf("(latency: linger.ms=%s, fetch.wait.max.ms=%s, after %d warm-up events)\n", LINGER,
           FETCH_WAIT, WARMUP_EVENTS);
    fflush(stdout);
    const load half = { rate / 2, "2", "1/2", 1 }, quarter = { rate / 4, "4", "1/4", 1 };
    double p99;
    int rc = measure_latency(config, in, t, &half, &p99) |
             measure_latency(config, in, t, &quarter, &p99);
    if (t->mock)
        rc |= sweep(config, in, t, rate);
    return rc;
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
    /* The throughput topics, then each latency run's (the names latency_run and
     * measure_floor make; scripts/bench.sh makes the same on the broker). */
    char topics[4096] = "bench-in,bench-out,bench-dlq";
    for (int div = 2; div <= 4; div += 2)
        for (int n = 1; n <= LATENCY_RUNS; n++) {
            size_t len = strlen(topics);
            snprintf(topics + len, sizeof topics - len,
                     ",lat%d-%d-in,lat%d-%d-out,lat%d-%d-floor-in,lat%d-%d-floor-out",
                     div, n, div, n, div, n, div, n);
        }
    for (int k = 1; k <= SWEEP_STEPS; k++)     /* sweep()'s */
        for (int n = 1; n <= LATENCY_RUNS; n++) {
            size_t len = strlen(topics);
            snprintf(topics + len, sizeof topics - len, ",lats%d-%d-in,lats%d-%d-out", k, n, k, n);
        }
    if (rt_kafka_embedded_start(&cluster, 1, PARTITIONS, topics, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        goto out;
    }
    target mock = { cluster.bootstraps, "embedded mock cluster", "", "at_least_once", 1, 1 };
    rc = measure(config, &in, file_rate, &mock);
    /* A real broker (scripts/bench.sh starts one; its topics made with prefixes alos-
     * and eos-): both guarantees, one after the other. */
    const char *broker = getenv("BENCH_KAFKA_BROKER");
    if (broker && *broker) {
        target alos = { broker, "Apache Kafka broker", "alos-", "at_least_once", 0, 0 };
        target eos = { broker, "Apache Kafka broker", "eos-", "exactly_once", 0, 0 };
        rc |= measure(config, &in, file_rate, &alos);
        rc |= measure(config, &in, file_rate, &eos);
    }
out:
    rt_kafka_embedded_stop(&cluster);
    for (size_t i = 0; i < in.n; i++)
        free(in.v[i]);
    free(in.v);
    free(in.key);
    free(in.key_len);
    return rc;
}
