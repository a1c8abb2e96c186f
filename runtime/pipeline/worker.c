/* worker.c - one pipeline: source -> decode -> route -> processor -> sinks, with every
 * refused record going to the dead-letter sink with its reason. This file sets it up,
 * runs it and takes the source's and sinks' callbacks; the record path itself is
 * mapped at the top of worker_jobs.c. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <sys/queue.h>

#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "dlq.h"
#include "dlq_log.h"
#include "log.h"
#include "reload.h"
#include "stopsig.h"
#include "worker_int.h"

int rt_lua_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && d->d_name[0] != '.' && strcmp(d->d_name + n - 4, ".lua") == 0 &&
           !(n > 9 && strcmp(d->d_name + n - 9, "_test.lua") == 0);  /* eddy test's */
}

rt_processor_env rt_worker_processor_env(rt_worker *w)
{
    const rt_config *c = w->cfg;
    return (rt_processor_env){
        &w->sinks, &w->lookups, &w->rules, rt_config_int(c, "window.allowed.lateness.ms"),
        { rt_config_int(c, "processor.timeout.ms"),
          (size_t)rt_config_int(c, "processor.memory.mb") << 20,
          (uint32_t)rt_config_int(c, "processor.max.emits"),
          (uint32_t)rt_config_int(c, "processor.max.consecutive.errors"),
          (int)rt_config_int(c, "processor.jit"),
          (size_t)rt_config_int(c, "processor.max.output.mb") << 20,
          (size_t)rt_config_int(c, "state.max.mb") << 20,
          (size_t)rt_config_int(c, "processor.max.metric.series") },
        w->io == RT_WORKER_CHECK };
}

static int load_processors(rt_worker *w, char *err, size_t errlen)
{
    char where[300];
    const char *dir = rt_config_get(w->cfg, "processors.dir");
    struct dirent **names = NULL;
    int n = scandir(dir, &names, rt_lua_file, alphasort), rc = -1;
    if (n < 0) {
        snprintf(err, errlen, "%s: processors.dir: cannot read %s: %s",
                 rt_config_where(w->cfg, "processors.dir", where, sizeof where), dir,
                 strerror(errno));
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: processors.dir: no *.lua processors in %s",
                 rt_config_where(w->cfg, "processors.dir", where, sizeof where), dir);
        goto out;
    }
    w->procs = calloc((size_t)n, sizeof *w->procs);
    if (!w->procs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rt_processor_env env = rt_worker_processor_env(w);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        rt_processor *p = calloc(1, sizeof *p);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        w->procs[w->nprocs++] = p;  /* counted even when it fails, so free releases it */
        if (rt_processor_load(p, path, &env, err, errlen) < 0)
            goto out;
        p->slot = w->nprocs - 1;
        for (size_t j = 0; j + 1 < w->nprocs; j++)
            if (strcmp(w->procs[j]->name, p->name) == 0) {
                snprintf(err, errlen, "%s and %s both name their processor '%s'",
                         w->procs[j]->path, p->path, p->name);
                goto out;
            }
    }
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* The embedded cluster gets the source topics and every Kafka sink's topic. */
static int start_embedded(rt_worker *w, char *err, size_t errlen)
{
    const rt_config *c = w->cfg;
    rt_buf topics = { 0 };
    const char *src = rt_config_get(c, "source.topics");
    int rc = -1;
    if (src && rt_buf_append(&topics, src, strlen(src)) < 0)
        goto oom;
    for (size_t i = 0; i < c->n; i++) {
        size_t n = strlen(c->v[i].key);
        if (strncmp(c->v[i].key, "sink.", 5) || n < 6 || strcmp(c->v[i].key + n - 6, ".topic"))
            continue;
        if (rt_buf_putc(&topics, ',') < 0 ||
            rt_buf_append(&topics, c->v[i].value, strlen(c->v[i].value)) < 0)
            goto oom;
    }
    if (rt_buf_putc(&topics, '\0') < 0)
        goto oom;
    rc = rt_kafka_embedded_start(&w->embedded, (int)rt_config_int(c, "kafka.embedded.brokers"),
                                 (int)rt_config_int(c, "kafka.embedded.partitions"),
                                 topics.data, err, errlen);
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    rt_buf_free(&topics);
    return rc;
}

static void fail_run(rt_worker *w);

/* A record a sink gave up on: dead-letter it, unless the dead-letter sink is the one
 * failing; then stop, and keep the ticket held so its offset is never stored. */
static void on_undeliverable(void *arg, rt_sink *s, const char *rec, size_t len,
                             rt_ticket *ticket, const char *error)
{
    rt_worker *w = arg;
    rt_event ev = { .raw = rec, .raw_len = len, .origin = { .file = "(sink output)" } };
    if (ticket && ticket->part->partition == RT_BEAT_FILE)
        ev.origin = (rt_origin){ .file = ticket->part->topic, .line = ticket->offset };
    else if (ticket)
        ev.origin = (rt_origin){ .topic = ticket->part->topic,
                                 .partition = ticket->part->partition,
                                 .offset = ticket->offset };
    if (s == w->dlq) {
        rt_error("dead-letter sink %s refused a record (%s): stopping; its input offset "
                 "and later ones are not committed", s->name, error);
        rt_track_hold(ticket);
        fail_run(w);
        return;
    }
    rt_reject why;
    rt_reject_set(&why, RT_REASON_SINK_ERROR, "sink %s: %s", s->name, error);
    rt_worker_dead_letter(w, &ev, &why, NULL, ticket);
}

static void on_sink_progress(void *arg)
{
    rt_worker_backpressure(arg);
}

/* Routes to `sink:<name>` forward events untouched: each such sink is one more route
 * owner after the processors. */
static int add_forwards(rt_worker *w, char *err, size_t errlen)
{
    const rt_config *c = w->cfg;
    for (size_t i = 0; i < c->n; i++) {
        const char *v = c->v[i].value;
        if (strncmp(c->v[i].key, "route.", 6) || strncmp(v, "sink:", 5))
            continue;
        size_t k = 0;
        while (k < w->nforward && strcmp(w->fwd_owners[k].name, v))
            k++;
        if (k < w->nforward)
            continue;
        rt_sink *s = rt_sinks_find(&w->sinks, v + 5);
        if (!s) {
            snprintf(err, errlen, "%s:%d: %s: no sink named '%s'", c->v[i].file, c->v[i].line,
                     c->v[i].key, v + 5);
            return -1;
        }
        rt_sink **f = realloc(w->forward, (w->nforward + 1) * sizeof *f);
        rt_route_owner *o = f ? realloc(w->fwd_owners, (w->nforward + 1) * sizeof *o) : NULL;
        if (f)
            w->forward = f;
        if (!o) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->fwd_owners = o;
        w->forward[w->nforward] = s;
        w->fwd_owners[w->nforward++] = (rt_route_owner){ v, "(config)", NULL, 0, 0 };
    }
    return 0;
}

int rt_worker_init(rt_worker *w, const rt_config *cfg, enum rt_worker_io io, int index,
                   char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->source_mu, NULL);
    w->cfg = cfg;
    w->io = io;
    w->index = index;
    w->limits.max_bytes = (size_t)rt_config_int(cfg, "event.max.bytes");
    w->limits.timestamp_max = rt_config_int(cfg, "event.timestamp.max");
    w->dlq_max_raw = (size_t)rt_config_int(cfg, "dlq.max.raw.bytes");
    rt_sink_env env = { &w->tracker, NULL, NULL, on_undeliverable, on_sink_progress, w,
                        index, 0 };
    /* librdkafka judges the kafka.* keys; ask it now, so that `eddy check` does too. */
    rd_kafka_conf_t *probe = rt_kafka_conf(cfg, NULL, err, errlen);
    if (!probe)
        return -1;
    rd_kafka_conf_destroy(probe);
    if (io != RT_WORKER_CHECK) {
        if (!(w->base = event_base_new())) {
            snprintf(err, errlen, "cannot create the event loop");
            return -1;
        }
        if (io == RT_WORKER_OPEN && rt_config_int(cfg, "kafka.embedded") &&
            start_embedded(w, err, errlen) < 0)
            return -1;
        env.base = w->base;
        env.kafka_bootstrap = w->embedded.bootstraps;
        env.capture = io == RT_WORKER_TEST;
    }
    if (rt_sinks_setup(&w->sinks, cfg, io != RT_WORKER_CHECK ? &env : NULL, err, errlen) < 0)
        return -1;
    w->dlq = rt_sinks_find(&w->sinks, rt_config_get(cfg, "dlq.sink"));
    w->max_queued = (size_t)rt_config_int(cfg, "source.max.inflight");
    if (rt_lookups_setup(&w->lookups, cfg, io == RT_WORKER_OPEN ? w->base : NULL, err,
                         errlen) < 0)
        return -1;
    if (rt_rules_load(&w->rules, rt_config_get(cfg, "rules.dir"), err, errlen) < 0)
        return -1;
    if (load_processors(w, err, errlen) < 0)
        return -1;
    if (add_forwards(w, err, errlen) < 0 || rt_worker_keyed_init(w, err, errlen) < 0 ||
        rt_worker_txn_check(w, err, errlen) < 0 ||
        rt_worker_repartition_init(w, err, errlen) < 0)
        return -1;
    return rt_worker_build_routes(w, &w->router, &w->owners, err, errlen);
}

int rt_worker_build_routes(rt_worker *w, rt_router *r, rt_route_owner **owners, char *err,
                           size_t errlen)
{
    /* Owners are the processor slots, then the forwards. A removed processor keeps its
     * slot with no routes, so that a route.* key naming it still resolves (its events
     * are then dead-lettered no_route). */
    rt_route_owner *o = calloc(w->nprocs + w->nforward + 1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < w->nprocs; i++) {
        const rt_processor *p = w->procs[i];
        o[i] = (rt_route_owner){ p->name, p->path, p->removed ? NULL : p->routes,
                                 p->removed ? 0 : p->nroutes, !p->removed };
    }
    if (w->nforward)
        memcpy(o + w->nprocs, w->fwd_owners, w->nforward * sizeof *o);
    if (rt_router_build(r, o, w->nprocs + w->nforward, w->cfg, err, errlen) < 0) {
        free(o);        /* the router freed its own part */
        return -1;
    }
    *owners = o;
    return 0;
}

/* Stop reading and end the run with a failure: exit non-zero, so that an orchestrator
 * restarts eddy rather than leaving a process that reads nothing. The end runs from the
 * loop, not from inside the write that failed. */
static void fail_run(rt_worker *w)
{
    w->failed = 1;
    rt_source_stop(&w->source);
    if (rt_source_has(&w->source, RT_SOURCE_COMMITS) && w->fail_ev)
        event_active(w->fail_ev, 0, 0);
}

static void on_failed(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    w->ending = 1;
    rt_worker_finish_run(w);
}

void rt_worker_fail(rt_worker *w, const rt_origin *origin)
{
    char where[512];
    if (!w->failed)
        rt_error("stopping: output failed while handling %s; input from there on was not "
                 "processed", rt_origin_text(origin, where, sizeof where));
    fail_run(w);
}

void rt_worker_dead_letter(rt_worker *w, const rt_event *ev, const rt_reject *why,
                           const char *processor, rt_ticket *ticket)
{
    char where[512];
    w->dead++;
    rt_counter_inc(&w->dead_by_reason, why->reason, "");
    rt_dlq_log_note(&w->dlq_log, why->reason, rt_origin_text(&ev->origin, where, sizeof where),
                    why->detail);
    if (rt_dlq_write(w->dlq, ev, why, processor, ticket, w->dlq_max_raw) < 0)
        rt_worker_fail(w, &ev->origin);
}

int rt_worker_flush(rt_worker *w)
{
    /* Changes made outside an event: processing-time timers, the idle watermark (under
     * exactly_once every change waits for the commit). */
    if (!w->txn_on && rt_worker_changelog_flush(w, NULL) < 0)
        return -1;
    if (rt_sinks_flush(&w->sinks) < 0) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

static void on_record(void *arg, const char *raw, size_t len, const rt_origin *origin,
                      rt_ticket *ticket)
{
    rt_worker_handle(arg, raw, len, origin, ticket);
}

/* A line relayed by the supervisor is done (its outputs acknowledged, and those of
 * every line before): the supervisor may forget it. */
static void input_done(void *arg, const char *topic, int32_t partition, int64_t next)
{
    rt_worker *w = arg;
    __atomic_store_n(&w->beat->input_next, next, __ATOMIC_RELEASE);
}

static void on_batch_end(void *arg)
{
    rt_worker *w = arg;
    if (!w->failed && rt_worker_flush(w) < 0) {
        char where[512];
        rt_source_where(&w->source, where, sizeof where);
        rt_error("stopping: a sink failed with input read up to %s; outputs of the "
                 "records before may be missing (the sink says how many), later records "
                 "were not processed", where);
        rt_source_stop(&w->source);
    }
    rt_worker_checkpoint_maybe(w);
    rt_reload_maybe(w);
}

static void on_end(void *arg, int failed, const char *rest, size_t rest_len,
                   const rt_origin *origin)
{
    rt_worker *w = arg;
    if (failed)
        w->failed = 1;
    if (rest && !w->failed) {
        /* Stopped in the middle of a line: keep the bytes we have, say why. */
        rt_event ev = { .origin = *origin, .raw = rest, .raw_len = rest_len };
        rt_reject why;
        rt_reject_set(&why, RT_REASON_TRUNCATED, "input stopped before the end of this line");
        rt_worker_dead_letter(w, &ev, &why, NULL, NULL);
    }
    /* Events still waiting for lookups finish first. */
    w->ending = 1;
    if (!w->head || w->failed)
        rt_worker_finish_run(w);
}

/* Stopping, and lookups still have not answered within shutdown.timeout.ms. */
static void on_give_up(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    rt_error("%zu events still wait for lookups after shutdown.timeout.ms; %s", w->queued,
             rt_source_has(&w->source, RT_SOURCE_COMMITS)
                 ? "their offsets are not committed, they are read again on restart"
                 : "they were not processed");
    if (!rt_source_has(&w->source, RT_SOURCE_COMMITS))
        w->failed = 1;
    rt_worker_finish_run(w);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    rt_worker *w = arg;
    rt_info("%s: stopping after the records in hand", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    w->signalled = 1;
    if (w->head) {
        struct timeval tv;
        long long ms = rt_config_int(w->cfg, "shutdown.timeout.ms");
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        if (evtimer_add(w->give_up_ev, &tv) < 0)
            event_active(w->give_up_ev, 0, 0);
    }
    rt_source_stop(&w->source);
    /* A Kafka source never ends by itself: leave here, or once the waiting jobs are
     * done (the file source ends through on_end). */
    if (rt_source_has(&w->source, RT_SOURCE_COMMITS)) {
        w->ending = 1;
        if (!w->head)
            rt_worker_finish_run(w);
    }
}

static int on_kafka_drain(void *arg, int timeout_ms)
{
    rt_worker *w = arg;
    return rt_sinks_drain(&w->sinks, timeout_ms);
}

/* New partitions: each holds the watermark back until its first event, and resumes
 * from its checkpoint, or from the offsets the exactly-once MySQL sinks stored. */
static void on_kafka_assigned(void *arg, size_t n, const char *const *topics,
                              const int *partitions, const long long *committed,
                              long long *next, long long *from)
{
    rt_worker *w = arg;
    for (size_t i = 0; w->windowed && i < n; i++)
        if (rt_watermark_assign(&w->watermark, topics[i], partitions[i], rt_epoch_ms()) < 0)
            rt_warn("out of memory: partition %s/%d does not hold the watermark back",
                    topics[i], partitions[i]);
    if (rt_worker_restore(w, n, topics, partitions, committed, from) < 0) {
        w->failed = 1;
        rt_source_stop(&w->source);
        rt_worker_finish_run(w);
        return;
    }
    /* A partition kept from a revocation that timed out would otherwise go on from the
     * position it had, ahead of its restored state, into the next checkpoint. */
    for (size_t i = 0; i < n; i++)
        if (from[i] >= 0 && rt_track_part_restart(&w->tracker, topics[i], partitions[i]) < 0)
            rt_warn("%s/%d: events of its last assignment are still in flight; its next "
                    "checkpoint may stand for offsets its state has not reached", topics[i],
                    partitions[i]);
    if (w->windowed)
        rt_worker_idle_check(w);    /* restored windows see the restored watermark */
    rt_sinks_stored_offsets(&w->sinks, n, topics, partitions, next);
}

static int open_source(rt_worker *w, char *err, size_t errlen)
{
    rt_buf more = { 0 };
    if (rt_worker_repartition_topics(w, &more) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rt_source_env env = {
        .base = w->base, .cfg = w->cfg, .tracker = &w->tracker,
        .kafka_bootstrap = w->embedded.bootstraps, .input_fd = w->input_fd,
        .input_line = w->input_line, .max_record = w->limits.max_bytes,
        .repartition_topics = w->nrekey ? more.data : NULL,
        .cb = { .record = on_record, .batch_end = on_batch_end, .end = on_end,
                .drain = on_kafka_drain, .assigned = on_kafka_assigned,
                .load = w->changelog ? rt_worker_changelog_load : NULL,
                .giving_up = rt_worker_checkpoint_revoked,
                .commit_txn = w->txn_on ? rt_worker_txn_commit : NULL, .arg = w },
    };
    rt_track_init(&w->tracker, input_done, w);      /* a Kafka source sets its own */
    /* The admin thread's tick may look at the source (on_admin_tick). */
    pthread_mutex_lock(&w->source_mu);
    int rc = rt_source_open(&w->source, &env, err, errlen);
    pthread_mutex_unlock(&w->source_mu);
    rt_buf_free(&more);
    return rc;
}

static void on_processing_timer(evutil_socket_t fd, short what, void *arg)
{
    rt_worker_processing_timers(arg);
}

static void on_idle_check(evutil_socket_t fd, short what, void *arg)
{
    rt_worker_idle_check(arg);
}

/* With windows and window.idle.timeout.ms, look at idle partitions twice a timeout. */
static int start_idle_check(rt_worker *w)
{
    long long idle = rt_config_int(w->cfg, "window.idle.timeout.ms");
    if (w->windowed && !(w->ptimer_ev = evtimer_new(w->base, on_processing_timer, w)))
        return -1;
    if (!w->windowed || idle <= 0)
        return 0;
    long long every = idle / 2 > 10 ? idle / 2 : 10;
    struct timeval tv = { every / 1000, (every % 1000) * 1000 };
    w->idle_ev = event_new(w->base, -1, EV_PERSIST, on_idle_check, w);
    return w->idle_ev && evtimer_add(w->idle_ev, &tv) == 0 ? 0 : -1;
}

static int get_metrics(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out, const char **type)
{
    *type = "text/plain; version=0.0.4";
    return rt_worker_metrics(arg, out) < 0 ? -1 : 200;
}

static int get_processors(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                          const char **type)
{
    *type = "application/json";
    return rt_reload_describe(arg, out) < 0 ? -1 : 200;
}

/* POST /-/reload: done at once when no event is in flight (the answer says what
 * changed), else when they are done (202; GET /-/processors tells the outcome). */
static int post_reload(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out, const char **type)
{
    rt_worker *w = arg;
    *type = "application/json";
    if (w->head || w->failed) {
        rt_reload_request(w, "POST /-/reload");
        static const char pending[] = "{\"pending\": true}\n";
        return rt_buf_append(out, pending, sizeof pending - 1) < 0 ? -1 : 202;
    }
    rt_info("reload requested (POST /-/reload)");
    return rt_reload_now(w, out) < 0 ? -1 : 200;
}

/* GET /-/state/<processor>[?key=K][&limit=N]: its keyed state and open windows. */
static int get_state(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                     const char **type)
{
    struct evhttp_uri *u = evhttp_uri_parse(uri);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    char *name = NULL;
    int rc = -1;
    *type = "text/plain";
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    if (!path || strncmp(path, "/-/state/", 9) ||
        (query && evhttp_parse_query_str(query, &q) < 0)) {
        static const char bad[] = "usage: GET /-/state/<processor>?key=<key>&limit=<n>\n";
        rc = rt_buf_append(out, bad, sizeof bad - 1) < 0 ? -1 : 400;
        goto out;
    }
    if (!(name = evhttp_uridecode(path + 9, 0, NULL)))
        goto out;
    const char *key = evhttp_find_header(&q, "key"), *limit = evhttp_find_header(&q, "limit");
    rc = rt_worker_inspect(arg, name, key, limit ? strtoul(limit, NULL, 10) : 100, out);
    if (rc == 404) {
        static const char none[] = "no processor by that name\n";
        rc = rt_buf_append(out, none, sizeof none - 1) < 0 ? -1 : 404;
    } else if (rc == 200) {
        *type = "application/json";
    }
out:
    evhttp_clear_headers(&q);
    if (u)
        evhttp_uri_free(u);
    free(name);
    return rc;
}

/* GET /-/state: the partitions this worker holds, their keys, bytes and changelog. */
static int get_partitions(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                          const char **type)
{
    *type = "application/json";
    return rt_worker_partitions(arg, out);
}

static int get_config(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out, const char **type)
{
    rt_worker *w = arg;
    return rt_admin_json_body(out, type, rt_config_json(w->cfg));
}

/* On the admin thread: unhealthy when the pipeline has stopped on a failure or a Lua
 * call runs past processor.timeout.ms (the body names the processor and record). */
static int get_health(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out, const char **type)
{
    rt_worker *w = arg;
    char line[512], rec[200];
    int n;
    if (__atomic_load_n(&w->failed, __ATOMIC_ACQUIRE)) {
        n = snprintf(line, sizeof line, "failed: the pipeline stopped on an output failure "
                     "(see the log)\n");
        return rt_buf_append(out, line, (size_t)n) < 0 ? -1 : 503;
    }
    rt_beat b;
    int64_t since = __atomic_load_n(&w->beat->since_ms, __ATOMIC_ACQUIRE);
    memcpy(&b, w->beat, sizeof b);
    int64_t ran = rt_clock_ms() - since;
    long long limit = rt_config_int(w->cfg, "processor.timeout.ms");
    if (since && limit && ran > limit &&
        __atomic_load_n(&w->beat->since_ms, __ATOMIC_ACQUIRE) == since) {
        b.topic[sizeof b.topic - 1] = b.processor[sizeof b.processor - 1] = '\0';
        n = snprintf(line, sizeof line, "stuck: processor %s has run %lld ms on %s "
                     "(processor.timeout.ms=%lld)\n", b.processor, (long long)ran,
                     b.partition == -1 ? "a window or timer call"
                     : rt_beat_record(b.topic, b.partition, b.offset, rec, sizeof rec),
                     limit);
        return rt_buf_append(out, line, (size_t)n) < 0 ? -1 : 503;
    }
    return rt_buf_append(out, "ok\n", 3) < 0 ? -1 : 200;
}

/* On the admin thread: when the loop is stuck in one Lua call past its limit, commit the
 * offsets stored so far, once per call. A compiled loop is then killed by the
 * supervisor, and its successor re-reads from the stuck record instead of from the
 * last periodic commit (up to kafka.auto.commit.interval.ms of events twice). */
static void on_admin_tick(void *arg)
{
    rt_worker *w = arg;
    int64_t since = __atomic_load_n(&w->beat->since_ms, __ATOMIC_ACQUIRE);
    long long limit = rt_config_int(w->cfg, "processor.timeout.ms");
    if (!since || !limit || rt_clock_ms() - since <= limit || since == w->committed_since)
        return;
    pthread_mutex_lock(&w->source_mu);
    rt_source_commit_now(&w->source);
    w->committed_since = since;
    pthread_mutex_unlock(&w->source_mu);
}

static const rt_admin_route worker_routes[] = {
    { "GET", "/healthz", get_health, RT_ADMIN_ANY_THREAD },
    { "GET", "/metrics", get_metrics, 0 },
    { "GET", "/-/config", get_config, RT_ADMIN_ANY_THREAD },
    { "GET", "/-/processors", get_processors, 0 },
    { "GET", "/-/state/", get_state, RT_ADMIN_PREFIX | RT_ADMIN_PRIVATE },
    { "GET", "/-/state", get_partitions, 0 },
    { "POST", "/-/reload", post_reload, 0 },
    { NULL, NULL, NULL, 0 },
};

int rt_worker_run(rt_worker *w)
{
    char err[512];
    int rc = -1;
    w->started = rt_epoch_s();
    w->sigterm = evsignal_new(w->base, SIGTERM, on_signal, w);
    w->sigint = evsignal_new(w->base, SIGINT, on_signal, w);
    w->wake_ev = event_new(w->base, -1, 0, rt_worker_on_wake, w);
    w->give_up_ev = evtimer_new(w->base, on_give_up, w);
    w->fail_ev = event_new(w->base, -1, 0, on_failed, w);
    if (!w->wake_ev || !w->give_up_ev || !w->fail_ev || start_idle_check(w) < 0 ||
        rt_worker_sweep_start(w) < 0 ||
        rt_worker_progress_start(w) < 0 ||
        rt_dlq_log_init(&w->dlq_log, w->base,
                        (int)rt_config_int(w->cfg, "log.dead.letters.interval.ms")) < 0) {
        rt_error("cannot create events");
        return -1;
    }
    if (!w->sigterm || !w->sigint || evsignal_add(w->sigterm, NULL) < 0 ||
        evsignal_add(w->sigint, NULL) < 0 || rt_stop_signals_release() < 0) {
        rt_error("cannot install signal handlers");
        return -1;
    }
    /* Under a supervisor the worker's endpoint is internal: the supervisor asks it. */
    const char *listen = w->shared ? "127.0.0.1:0" : rt_config_get(w->cfg, "admin.listen");
    w->beat = w->shared ? &w->shared->beats[w->index] : &w->own_beat;
    for (size_t k = 0; k < w->nprocs; k++)
        w->procs[k]->beat = w->beat;
    rt_admin_opts ao = { listen, rt_config_get(w->cfg, "admin.token"), w->shared != NULL,
                         rt_source_kind_has(w->cfg, RT_SOURCE_COMMITS) ? on_admin_tick : NULL,
                         100 };
    if (*listen && !(w->admin = rt_admin_start_thread(w->base, &ao, worker_routes, w, err,
                                                      sizeof err))) {
        rt_error("%s", err);
        return -1;
    }
    if (w->shared)
        w->shared->beats[w->index].admin_port = rt_admin_port(w->admin);
    if (rt_reload_start(w, err, sizeof err) < 0) {
        rt_error("%s", err);
        return -1;
    }
    if (rt_worker_repartition_start(w, err, sizeof err) < 0 ||
        rt_worker_changelog_start(w, err, sizeof err) < 0 ||
        rt_worker_txn_start(w, err, sizeof err) < 0 || open_source(w, err, sizeof err) < 0 ||
        rt_worker_checkpoint_start(w, err, sizeof err) < 0) {
        rt_error("%s", err);
        return -1;
    }
    char reading[512];
    rt_source_where(&w->source, reading, sizeof reading);
    rt_info("running: %zu processors, %zu routes, %zu sinks, reading %s", w->nprocs,
            w->router.n, w->sinks.n, reading);
    if (event_base_dispatch(w->base) < 0) {
        rt_error("event loop failed");
        return -1;
    }
    /* Outputs still on their way (Kafka) must arrive before we call the run done, and
     * before the Kafka source commits what they acknowledged. */
    if (rt_sinks_drain(&w->sinks, (int)rt_config_int(w->cfg, "shutdown.timeout.ms")) < 0)
        w->failed = 1;
    /* A last checkpoint, so that a restart after SIGTERM replays nothing (exactly_once:
     * with the last transaction). */
    if (w->state_dir && !w->txn_on && !w->failed && !w->head && rt_worker_checkpoint(w) == 0)
        rt_info("checkpoint taken on the way out");
    /* The last transaction: what is done commits before the group is left. */
    if (w->txn_on && !w->failed && rt_worker_txn_commit(w, 1) < 0)
        w->failed = 1;
    /* exactly_once with a changelog: the state.dir files (its cache) are written only
     * now, after that commit, so they hold committed state. */
    if (w->state_dir && w->txn_on && w->changelog && !w->txn_over && !w->failed &&
        !w->head && rt_worker_checkpoint(w) == 0)
        rt_info("checkpoint taken on the way out");
    pthread_mutex_lock(&w->source_mu);
    if (rt_source_has(&w->source, RT_SOURCE_COMMITS) && rt_source_close(&w->source) < 0)
        w->failed = 1;
    pthread_mutex_unlock(&w->source_mu);
    rc = w->failed ? -1 : 0;
    /* Its events were dead-lettered, not processed: a run that "succeeded" that way
     * must not look like one that did (a batch job, a CI run of eddy). */
    for (size_t i = 0; i < w->nprocs; i++)
        if (w->procs[i]->quarantines && rt_config_int(w->cfg, "processor.quarantine.fails.run")) {
            rt_error("processor %s was quarantined during the run (its events went to the "
                     "dead letters as `quarantined`); exit code 1 "
                     "(processor.quarantine.fails.run=false: 0)", w->procs[i]->name);
            rc = -1;
        }
    rt_dlq_log_flush(&w->dlq_log);
    rt_worker_progress_end(w);
    return rc;
}

void rt_worker_print_routes(const rt_worker *w, FILE *out)
{
    rt_router_print(&w->router, w->owners, out);
}

void rt_worker_free(rt_worker *w)
{
    rt_admin_stop(w->admin);     /* first: its thread may look at the source */
    rt_source_close(&w->source);
    rt_reload_free(w);
    if (w->sigterm)
        event_free(w->sigterm);
    if (w->sigint)
        event_free(w->sigint);
    /* Jobs first: an unfinished one still holds a coroutine of its processor and a
     * wait in a lookup. */
    rt_worker_jobs_free(w);
    rt_worker_keyed_free(w);
    if (w->idle_ev)
        event_free(w->idle_ev);
    rt_dlq_log_free(&w->dlq_log);
    rt_worker_progress_free(w);
    if (w->ptimer_ev)
        event_free(w->ptimer_ev);
    rt_worker_checkpoint_stop(w);
    rt_worker_txn_free(w);
    rt_worker_changelog_free(w);
    rt_worker_repartition_free(w);
    for (size_t i = 0; i < w->nprocs; i++) {
        rt_processor_free(w->procs[i]);
        free(w->procs[i]);
    }
    free(w->procs);
    free(w->owners);
    free(w->fwd_owners);
    rt_rules_free(&w->rules);
    free(w->forward);
    rt_router_free(&w->router);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->fail_ev)
        event_free(w->fail_ev);
    if (w->give_up_ev)
        event_free(w->give_up_ev);
    rt_lookups_free(&w->lookups);
    rt_sinks_close(&w->sinks);
    rt_kafka_embedded_stop(&w->embedded);
    rt_pairmap_free(&w->in_by_type);
    rt_pairmap_free(&w->dead_by_reason);
    rt_track_free(&w->tracker);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->source_mu);
    memset(w, 0, sizeof *w);
}
