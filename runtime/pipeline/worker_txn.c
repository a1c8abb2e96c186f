/* worker_txn.c - processing.guarantee=exactly_once: the worker's Kafka outputs, its
 * dead letters and the offsets of the input it consumed commit together, in one Kafka
 * transaction every commit.interval.ms (Kafka Streams' exactly_once_v2).
 *
 * A Kafka output is done for the offsets' sake once produced (sink_kafka.c): the commit
 * delivers the whole transaction or aborts it. Events complete in arrival order and
 * write nothing before they complete, so when every completed event is also finished
 * (no other sink still owes an acknowledgement), the offsets after the finished events
 * cover exactly the events whose outputs the transaction holds, and it commits at once.
 * Otherwise (a MySQL or Elasticsearch sink still writing) the source holds still until
 * that is so. The commit's calls wait for the coordinators on a thread of the producer
 * (rt_kafka_txn_commit_start) while the loop goes on: what it writes meanwhile is held
 * for the next transaction, so those events finish, and their offsets count, only
 * then. Revocations and the end of the run commit and wait (rt_kafka_txn_commit), after
 * the commit in progress. After a crash, read_committed consumers see each output
 * once. A transaction that fails is aborted and the worker stops (exit 1): a restart
 * reads again from the last committed offsets (a supervisor restarts it at once).
 *
 * Only sinks whose writes a replay cannot double join a transaction: Kafka sinks, MySQL
 * upserts and Elasticsearch sinks with an id.
 *
 * Keyed state, windows and timers (state.dir) are checkpointed with every commit, just
 * before it, keeping the checkpoint before: whether or not the commit then happens,
 * one of the two stands for the committed offsets, and a restart restores that one
 * (rt_worker_restore), so state counts each event once as the outputs do. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "worker_int.h"

#define WAIT_CHECK_MS 2

/* A sink that may be part of the transaction, or why not. */
static const char *unfit(const rt_config *c, const rt_sink *s)
{
    if (!strcmp(s->type, "kafka"))
        return NULL;
    if (!strcmp(s->type, "mysql"))
        return rt_sink_conf_int(c, s->name, "exactly.once")
                   ? "exactly.once stores offsets of its own; under processing.guarantee="
                     "exactly_once the transaction holds them (drop that key)"
                   : NULL;
    if (!strcmp(s->type, "elasticsearch"))
        return rt_sink_conf(c, s->name, "id") ? NULL
               : "an elasticsearch sink without `id` would index a replayed record twice "
                 "(set sink.<name>.id)";
    return "its writes are neither in the Kafka transaction nor idempotent (exactly_once "
           "takes kafka sinks, mysql upserts and elasticsearch sinks with an id)";
}

int rt_worker_txn_check(rt_worker *w, char *err, size_t errlen)
{
    char where[300], key[256];
    const rt_config *c = w->cfg;
    if (!rt_kafka_exactly_once(c))
        return 0;
    if (!rt_source_kind_has(c, RT_SOURCE_COMMITS)) {
        snprintf(err, errlen, "%s: processing.guarantee: exactly_once needs a Kafka source "
                 "(source.type=kafka)", rt_config_where(c, "processing.guarantee", where,
                                                        sizeof where));
        return -1;
    }
    if (!rt_config_int(c, "kafka.enable.idempotence")) {
        snprintf(err, errlen, "%s: kafka.enable.idempotence: exactly_once needs idempotent "
                 "producers (Kafka transactions are built on them)",
                 rt_config_where(c, "kafka.enable.idempotence", where, sizeof where));
        return -1;
    }
    for (size_t i = 0; i < w->sinks.n; i++) {
        const char *why = unfit(c, &w->sinks.v[i]);
        if (!why)
            continue;
        snprintf(key, sizeof key, "sink.%s.type", w->sinks.v[i].name);
        snprintf(err, errlen, "%s: %s: this %s sink cannot be used with "
                 "processing.guarantee=exactly_once: %s",
                 rt_config_where(c, key, where, sizeof where), key, w->sinks.v[i].type, why);
        return -1;
    }
    w->txn_on = 1;
    return 0;
}

/* ---- the commit ---- */

/* Every completed event finished: what is in flight is only the events still waiting
 * for lookups, each holding its own ticket, none of which has written anything. With
 * state checkpointed, none may be waiting either: its state changes are already made. */
static int settled(const rt_worker *w)
{
    return w->tracker.inflight <= w->queued && ((!w->state_dir && !w->changelog) || !w->head);
}

static void end_wait(rt_worker *w)
{
    if (!w->txn_draining)
        return;
    w->txn_draining = 0;
    evtimer_del(w->txn_wait_ev);
    rt_source_pause(&w->source, 0);
}

/* The offsets after the finished events of every partition this worker holds, the
 * group metadata (NULL when there are no offsets) and the checkpoint they stand for;
 * what is finished so far is the next commit's no more. */
static int prepare(rt_worker *w, rt_txn_offset **offsets, size_t *count, void **gm)
{
    size_t n = 0, cap = 0;
    rt_txn_offset *o = NULL;
    *gm = NULL;
    for (rt_track_part *p = w->tracker.parts; p; p = p->link)
        cap += p->stored >= 0;
    if (cap && !(o = malloc(cap * sizeof *o))) {
        rt_error("transaction: out of memory");
        goto fail;
    }
    for (rt_track_part *p = w->tracker.parts; p; p = p->link)
        if (p->stored >= 0)
            o[n++] = (rt_txn_offset){ p->topic, (int)p->partition, p->stored };
    if (rt_worker_changelog_flush(w, NULL) < 0)
        goto fail;
    if (n && !(*gm = rt_source_group_metadata(&w->source))) {
        rt_error("transaction: no consumer group metadata");
        goto fail;
    }
    if (rt_worker_txn_checkpoint(w) < 0) {
        rt_error("transaction: the checkpoint of its state could not be written; stopping "
                 "without committing");
        goto fail;
    }
    *offsets = o;
    *count = n;
    w->txn_records = w->records;
    w->txn_out = w->out;
    w->txn_dead = w->dead;
    return 0;
fail:
    if (*gm)
        rd_kafka_consumer_group_metadata_destroy(*gm);
    *gm = NULL;
    free(o);
    return -1;
}

/* The outcome of a commit begun at t0 and whose calls took `blocked_ms` on the loop. */
static int finished(rt_worker *w, int got, const char *why, int64_t t0, int64_t blocked_ms)
{
    w->txn_blocked_ms += blocked_ms;
    if (got == 0) {
        w->txns++;
        w->txn_ms = rt_clock_ms() - t0;
        return 0;
    }
    if (got == RT_TXN_MIGRATED && w->ending) {
        /* Stopping anyway: nothing is lost, so this is not a failed run. But the events
         * of the aborted transaction count as finished, so no later commit of this run
         * may carry offsets past them. */
        w->txn_aborts++;
        w->txn_over = 1;
        rt_warn("transaction aborted on the way out (%s): the group rebalanced without this "
                "member, and the partitions' new owners read its last events again", why);
        return 0;
    }
    if (got == RT_TXN_ABORTED || got == RT_TXN_MIGRATED) {
        w->txn_aborts++;
        rt_error("transaction aborted (%s); stopping, so that the input is read again from "
                 "the last committed offsets", why);
    } else {
        rt_error("transaction failed (%s); stopping", why);
    }
    return -1;
}

/* Commit and wait for it (revocations, the end of the run). */
static int commit_now(rt_worker *w)
{
    char why[1024];
    size_t n;
    rt_txn_offset *o = NULL;
    void *gm;
    int64_t t0 = w->txn_draining ? w->txn_started : rt_clock_ms();
    rt_kafka_txn_commit_wait(&w->sinks);
    if (w->failed)
        return -1;      /* the commit that was running failed */
    if (w->txn_over)
        return 0;
    if (prepare(w, &o, &n, &gm) < 0)
        return -1;
    int64_t t1 = rt_clock_ms();
    int got = rt_kafka_txn_commit(&w->sinks, o, n, gm,
                                  (int)rt_config_int(w->cfg, "shutdown.timeout.ms"), why,
                                  sizeof why);
    if (gm)
        rd_kafka_consumer_group_metadata_destroy(gm);
    free(o);
    return finished(w, got, why, t0, rt_clock_ms() - t1);
}

/* A failed commit ends the run: the restart reads from the committed offsets, and
 * nothing this worker produced since then is ever seen. */
static int stop_run(rt_worker *w)
{
    if (!w->failed) {
        w->failed = 1;
        rt_source_stop(&w->source);
        rt_worker_finish_run(w);
    }
    return -1;
}

static int commit_or_stop(rt_worker *w)
{
    return commit_now(w) == 0 ? 0 : stop_run(w);
}

static void on_committed(void *arg, int got, const char *why)
{
    rt_worker *w = arg;
    w->txn_committing = 0;
    if (finished(w, got, why, w->txn_begun, 0) < 0)
        stop_run(w);
}

/* A periodic commit: its calls run on the producer's commit thread while the loop
 * goes on reading and processing; outputs written meanwhile belong to the next one. */
static void commit_async(rt_worker *w)
{
    char why[1024];
    size_t n;
    rt_txn_offset *o = NULL;
    void *gm;
    int64_t t0 = w->txn_draining ? w->txn_started : rt_clock_ms();
    if (w->txn_over)
        return;
    if (prepare(w, &o, &n, &gm) < 0) {
        stop_run(w);
        return;
    }
    w->txn_begun = t0;
    w->txn_committing = 1;
    if (rt_kafka_txn_commit_start(&w->sinks, o, n, gm,
                                  (int)rt_config_int(w->cfg, "shutdown.timeout.ms"),
                                  on_committed, w, why, sizeof why) < 0) {
        w->txn_committing = 0;
        rt_error("transaction: %s; stopping", why);
        stop_run(w);
    }
    free(o);
}

static void wait_check(rt_worker *w)
{
    if (!settled(w)) {
        static const struct timeval again = { 0, WAIT_CHECK_MS * 1000 };
        if (rt_clock_ms() < w->txn_until && evtimer_add(w->txn_wait_ev, &again) == 0)
            return;
        rt_warn("transaction: events still in flight after shutdown.timeout.ms; committing "
                "later");
        end_wait(w);
        return;
    }
    commit_async(w);
    end_wait(w);
}

static void on_wait_check(evutil_socket_t fd, short what, void *arg)
{
    wait_check(arg);
}

static void on_txn_timer(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    /* Nothing read, written or dead-lettered since the last commit: nothing to commit. */
    if (w->txn_draining || w->txn_committing || w->txn_over || w->signalled || w->failed ||
        (w->records == w->txn_records && w->out == w->txn_out && w->dead == w->txn_dead &&
         !w->tracker.inflight))
        return;
    rt_worker_flush(w);
    if (settled(w)) {
        commit_async(w);
        return;
    }
    w->txn_draining = 1;
    w->txn_started = rt_clock_ms();
    w->txn_until = w->txn_started + rt_config_int(w->cfg, "shutdown.timeout.ms");
    rt_source_pause(&w->source, 1);
    wait_check(w);
}

int rt_worker_txn_commit(void *arg, int force)
{
    rt_worker *w = arg;
    if (w->txn_over)
        return 0;   /* aborted on the way out: nothing more commits */
    rt_worker_flush(w);
    if (!force && !settled(w))
        return 1;
    /* Outputs still owed by other sinks would leave their events out of the offsets
     * while the transaction holds their Kafka outputs. */
    if (!settled(w) &&
        (rt_sinks_drain(&w->sinks, (int)rt_config_int(w->cfg, "shutdown.timeout.ms")) < 0 ||
         !settled(w))) {
        rt_error("transaction: outputs not acknowledged in time; not committing");
        return stop_run(w);
    }
    return commit_or_stop(w);
}

int rt_worker_txn_start(rt_worker *w, char *err, size_t errlen)
{
    if (!w->txn_on)
        return 0;
    long long ms = rt_config_int(w->cfg, "commit.interval.ms");
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (rt_kafka_txn_open(&w->sinks, w->cfg, (int)rt_config_int(w->cfg, "shutdown.timeout.ms"),
                          err, errlen) < 0)
        return -1;
    w->txn_ev = event_new(w->base, -1, EV_PERSIST, on_txn_timer, w);
    w->txn_wait_ev = evtimer_new(w->base, on_wait_check, w);
    if (!w->txn_ev || !w->txn_wait_ev || evtimer_add(w->txn_ev, &tv) < 0) {
        snprintf(err, errlen, "cannot create the transaction timer");
        return -1;
    }
    rt_info("processing.guarantee=exactly_once: a Kafka transaction every %lld ms", ms);
    return 0;
}

int rt_worker_txn_metrics(rt_worker *w, rt_buf *out)
{
    if (!w->txn_on)
        return 0;
    return rt_prom_header(out, "eddy_transactions_committed_total", "counter",
                          "Kafka transactions committed (processing.guarantee=exactly_once).") ||
           rt_prom_sample(out, "eddy_transactions_committed_total", NULL, (double)w->txns) ||
           rt_prom_header(out, "eddy_transactions_aborted_total", "counter",
                          "Kafka transactions aborted; the log says why.") ||
           rt_prom_sample(out, "eddy_transactions_aborted_total", NULL,
                          (double)w->txn_aborts) ||
           rt_prom_header(out, "eddy_transaction_commit_seconds", "gauge",
                          "Time the last commit took, from holding the source to committed.") ||
           rt_prom_sample(out, "eddy_transaction_commit_seconds", NULL,
                          (double)w->txn_ms / 1000) ||
           rt_prom_header(out, "eddy_transaction_commit_seconds_total", "counter",
                          "Time the worker's loop waited in commit calls (revocations, the "
                          "end of the run; periodic commits run on a thread).") ||
           rt_prom_sample(out, "eddy_transaction_commit_seconds_total", NULL,
                          (double)w->txn_blocked_ms / 1000)
               ? -1 : 0;
}

void rt_worker_txn_free(rt_worker *w)
{
    if (w->txn_ev)
        event_free(w->txn_ev);
    if (w->txn_wait_ev)
        event_free(w->txn_wait_ev);
    w->txn_ev = w->txn_wait_ev = NULL;
}
