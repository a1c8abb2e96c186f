/* bench.c - throughput of the full pipeline against decode-only, in one run.
 *
 *   eddy-bench CONFIG ROUNDS [KAFKA_CONFIG]
 *
 * Both modes read the config's source.file.path through the same file source.
 * decode-only stops after rt_event_decode; full runs a worker (decode, route, Lua,
 * sinks). Rounds alternate the modes so machine noise hits both alike; the median
 * of each is reported with their ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "config.h"
#include "log.h"
#include "source_file.h"
#include "worker.h"

#define MAX_ROUNDS 15

typedef struct decode_run {
    rt_event_limits limits;
    unsigned long long ok, bad;
    struct event_base *base;
    rt_event ev;            /* reused, as the worker reuses its jobs' events */
} decode_run;

static void decode_record(void *arg, const char *raw, size_t len, const rt_origin *origin,
                          rt_ticket *ticket)
{
    decode_run *r = arg;
    rt_reject why;
    r->ev.origin = *origin;
    if (rt_event_decode(&r->ev, raw, len, &r->limits, &why) == 0)
        r->ok++;
    else
        r->bad++;
    rt_event_clear(&r->ev);
}

static void decode_batch_end(void *arg) { (void)arg; }

static void decode_end(void *arg, int failed, const char *rest, size_t n, const rt_origin *o)
{
    event_base_loopbreak(((decode_run *)arg)->base);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Events per second of decode-only; -1 on failure. */
static double run_decode(const rt_config *cfg, unsigned long long *events)
{
    char err[512];
    rt_source_file src;
    decode_run r = { .limits = { (size_t)rt_config_int(cfg, "event.max.bytes"),
                                 rt_config_int(cfg, "event.timestamp.max") },
                     .base = event_base_new() };
    rt_source_cb cb = { .record = decode_record, .batch_end = decode_batch_end,
                        .end = decode_end, .arg = &r };
    if (!r.base)
        return -1;
    double t0 = now();
    if (rt_source_file_open(&src, r.base, rt_config_get(cfg, "source.file.path"), &cb, err,
                            sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        event_base_free(r.base);
        return -1;
    }
    int rc = event_base_dispatch(r.base);
    double t = now() - t0;
    rt_source_file_close(&src);
    event_base_free(r.base);
    rt_event_free(&r.ev);
    *events = r.ok + r.bad;
    return rc < 0 ? -1 : (double)*events / t;
}

/* Events per second of the whole pipeline; -1 on failure. */
static double run_full(const rt_config *cfg, unsigned long long *events)
{
    char err[512];
    rt_worker w;
    double rate = -1;
    if (rt_worker_init(&w, cfg, RT_WORKER_OPEN, 0, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        goto out;
    }
    double t0 = now();
    if (rt_worker_run(&w) == 0) {
        rate = (double)w.records / (now() - t0);
        *events = w.records;
    }
out:
    rt_worker_free(&w);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    char err[1024];
    rt_config cfg;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (argc < 2 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: eddy-bench CONFIG [ROUNDS 1..%d] [KAFKA_CONFIG]\n", MAX_ROUNDS);
        return 2;
    }
    if (rt_config_load(&cfg, argv[1], NULL, 0, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    rt_log_set_level(RT_LOG_WARN);
    double dec[MAX_ROUNDS], full[MAX_ROUNDS];
    unsigned long long n_dec = 0, n_full = 0;
    int rc = 1;
    for (int i = 0; i < rounds; i++) {
        dec[i] = run_decode(&cfg, &n_dec);
        full[i] = run_full(&cfg, &n_full);
        if (dec[i] < 0 || full[i] < 0)
            goto out;
        printf("round %d: decode-only %.0f events/s, full pipeline %.0f events/s\n", i + 1,
               dec[i], full[i]);
    }
    qsort(dec, (size_t)rounds, sizeof *dec, cmp_double);
    qsort(full, (size_t)rounds, sizeof *full, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\nevents per run:          %llu\n", n_full);
    printf("decode-only (median):    %.0f events/s (%.2f us/event)\n", dec[rounds / 2],
           1e6 / dec[rounds / 2]);
    printf("full pipeline (median):  %.0f events/s (%.2f us/event)\n", full[rounds / 2],
           1e6 / full[rounds / 2]);
    /* Decoding is no longer most of an event's cost, so the absolute rate is the bar. */
    printf("ratio full/decode-only:  %.2f\n", full[rounds / 2] / dec[rounds / 2]);
    printf("full pipeline target:    200000 events/s (issue 18): %s\n",
           full[rounds / 2] >= 200000 ? "met" : "not met");
    printf("max RSS:                 %ld KiB\n", ru.ru_maxrss);
    rc = n_dec == n_full ? 0 : 1;
    if (rc == 0 && argc > 3)
        rc = bench_kafka(argv[3], rt_config_get(&cfg, "source.file.path"), full[rounds / 2]);
out:
    rt_config_free(&cfg);
    return rc;
}
