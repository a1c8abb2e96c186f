/* worker_jobs.c - events from decode to outputs, finished in arrival order.
 *
 * The record path, top to bottom (one function per step):
 *
 *   source plugin (consume / deliver)  -- a ticket per record (rt_track_begin)
 *     -> on_record (worker.c)
 *     -> rt_worker_handle (here)        decode: rt_event_decode
 *                                       route:  rt_router_lookup
 *                                       (repartition: rt_worker_rekey, the event's
 *                                        output; read back from that topic, it goes on)
 *                                       call:   rt_processor_start (lua/processor.c)
 *          ... a lookup miss: the job waits; advance() resumes it (rt_processor_resume)
 *     -> complete (here, in arrival order)
 *          outputs: rt_sink_write, each holding the ticket; or rt_worker_dead_letter
 *          windows and event time: rt_worker_windows_add, rt_worker_event_time
 *          the processing hold: rt_track_processed
 *     -> a sink's acknowledgement: rt_sink_ack -> rt_track_release
 *     -> the tracker's store callback: the offset (Kafka) or line (relay) is done
 *
 * Most events run straight through. One whose processor waits for a lookup is queued
 * with its coroutine; the events after it still run (their misses join the same
 * batch) but queue behind it, so outputs, dead letters and offsets keep input order.
 * A lookup answer activates wake_ev, and advance() resumes the answered calls and
 * finishes the jobs at the head of the queue. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reload.h"
#include "worker_int.h"

/* A queued record's bytes are copied into its job; a spare job keeps its buffer up to
 * this size, so that a queue of ordinary records allocates nothing (most records queue
 * while a lookup ahead of them waits), and one huge record does not stay held. */
#define RAW_KEEP 4096
/* Spare jobs kept with their buffers (about 3.5 KB each with a usual record). A lookup
 * that waits queues the records behind it, often past a few hundred; with 256 kept,
 * 37% of the file bench's records got a job allocated afresh (calloc, then the tape's,
 * strings' and outbox's first growths, and as many frees): 2.6% of its instructions. */
#define SPARE_KEEP 1024

static void job_free(rt_job *j)
{
    rt_outbox_free(&j->out);
    rt_call_free(&j->call);
    rt_event_free(&j->ev);
    free(j->raw);
    free(j);
}

static rt_job *job_get(rt_worker *w)
{
    rt_job *j = w->spare;
    if (j) {
        w->spare = j->next;
        w->nspare--;
    } else if (!(j = calloc(1, sizeof *j))) {
        return NULL;
    }
    j->next = NULL;
    j->w = w;
    j->p = NULL;
    j->call.co = NULL;
    j->wait.row = NULL;
    j->wait.entry = NULL;
    rt_outbox_reset(&j->out);
    return j;
}

/* Done with a job: release what it holds and keep a few for reuse. */
static void job_put(rt_worker *w, rt_job *j)
{
    if (j->state == RT_JOB_WAITING && j->wait.state != RT_WAIT_PENDING && w->woken)
        w->woken--;     /* answered, never resumed: dropped with the queue */
    rt_lkwait_cancel(&j->wait);
    rt_row_release(j->wait.row);
    j->wait.row = NULL;
    if (j->p)
        rt_processor_abort(j->p, &j->call);
    rt_event_clear(&j->ev);
    if (j->rawcap > RAW_KEEP) {
        free(j->raw);
        j->raw = NULL;
        j->rawcap = 0;
    }
    if (w->nspare < SPARE_KEEP) {
        j->next = w->spare;
        w->spare = j;
        w->nspare++;
    } else {
        job_free(j);
    }
}

static void on_wake(void *arg, rt_lkwait *wait)
{
    rt_worker *w = arg;
    w->woken++;
    event_active(w->wake_ev, 0, 0);
}

/* Outputs or dead letter, then the ticket's processing hold is released. */
static void complete(rt_worker *w, rt_job *j)
{
    if (w->failed)
        return;     /* the ticket stays held: its offset must never be stored */
    if (j->state == RT_JOB_DONE && j->p && j->p->nwindows)
        rt_worker_windows_add(w, j);
    if (j->state == RT_JOB_DONE && j->p)
        rt_reload_note(w, j->p, &j->ev);
    if (j->state == RT_JOB_DEAD) {
        rt_worker_dead_letter(w, &j->ev, &j->why, j->p ? j->p->name : NULL, j->ticket);
    } else {
        const char *base = j->out.bytes.data;
        for (size_t i = 0; i < j->out.n; i++) {
            const rt_emit *e = &j->out.v[i];
            rt_out out = { j->ticket, e->key_len ? base + e->key_off : NULL, e->key_len,
                           NULL, 0, NULL };
            if (rt_sink_write(e->sink, base + e->off, e->len, &out) < 0) {
                rt_worker_fail(w, &j->ev.origin);
                return;
            }
            w->out++;
        }
        rt_worker_event_time(w, j);
    }
    /* Its state changes (and those of the windows and timers it fired) hold its offset
     * back too; under exactly_once they wait for the commit (worker_txn.c). */
    if (!w->txn_on)
        rt_worker_changelog_flush(w, j->ticket);
    if (!w->failed)
        rt_track_processed(&w->tracker, j->ticket);
}

static void set_state(rt_job *j, int rc)
{
    j->state = rc == 0 ? RT_JOB_DONE : rc < 0 ? RT_JOB_DEAD : RT_JOB_WAITING;
}

/* Slow the source down while many jobs wait or outputs are unacknowledged (Kafka
 * pauses by its in-flight count, which covers both). */
void rt_worker_backpressure(rt_worker *w)
{
    if (rt_source_has(&w->source, RT_SOURCE_COMMITS))
        return;
    size_t load = w->queued + rt_sinks_pending(&w->sinks);
    if (load >= w->max_queued)
        rt_source_pause(&w->source, 1);
    else if (load <= w->max_queued / 2)
        rt_source_pause(&w->source, 0);
}

void rt_worker_finish_run(rt_worker *w)
{
    if (w->give_up_ev)
        event_del(w->give_up_ev);
    /* A file read to its end is a bounded input: its windows are complete. */
    if (!rt_source_has(&w->source, RT_SOURCE_COMMITS) && !w->signalled && !w->failed)
        rt_worker_end_of_input(w);
    rt_worker_flush(w);
    event_base_loopbreak(w->base);
}

/* Resume the jobs whose lookup answered, then finish the jobs at the head. The walk
 * stops at the last answered job: a queue holds thousands behind a slow lookup, and
 * walking them all at every answer cost 0.8% of the file pipeline's time, most of it
 * cache misses on jobs that still wait. */
static void advance(rt_worker *w)
{
    int wrote = 0;
    for (rt_job *j = w->head; j && w->woken; j = j->next) {
        if (j->state != RT_JOB_WAITING || j->wait.state == RT_WAIT_PENDING)
            continue;
        w->woken--;
        if (j->wait.state == RT_WAIT_FAILED) {
            rt_processor_abort(j->p, &j->call);
            rt_reject_set(&j->why, RT_REASON_LOOKUP_FAILED, "%s", j->wait.error);
            j->state = RT_JOB_DEAD;
            continue;
        }
        set_state(j, rt_processor_resume(j->p, &j->call, &j->out, &j->wait, &j->why));
        rt_row_release(j->wait.row);
        j->wait.row = NULL;
    }
    while (w->head && w->head->state != RT_JOB_WAITING) {
        rt_job *j = w->head;
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        complete(w, j);
        job_put(w, j);
        wrote = 1;
    }
    if (wrote && !w->failed)
        rt_worker_flush(w);
    rt_worker_backpressure(w);
    if (w->ending && !w->head) {
        rt_worker_finish_run(w);
    } else {
        rt_worker_checkpoint_maybe(w);
        rt_reload_maybe(w);
    }
}

void rt_worker_on_wake(evutil_socket_t fd, short what, void *arg)
{
    advance(arg);
}

/* A route straight to a sink: the event's bytes are its output. */
static int forward(rt_job *j, rt_sink *s)
{
    size_t off = j->out.bytes.len;
    if (rt_buf_append(&j->out.bytes, j->ev.raw, j->ev.raw_len) < 0 ||
        rt_outbox_add(&j->out, s, off, j->out.bytes.len) < 0) {
        rt_reject_set(&j->why, RT_REASON_PROCESSOR_ERROR, "out of memory forwarding to sink %s",
                      s->name);
        return -1;
    }
    return 0;
}

/* The supervisor killed a worker stuck on this record (compiled code the count hook
 * cannot stop): dead-letter it instead of running it again. */
static int poisoned(rt_worker *w, rt_job *j, rt_processor *proc)
{
    const rt_poison *p = rt_poison_find(w->shared, &j->ev.origin);
    if (!p)
        return 0;
    rt_reject_set(&j->why, RT_REASON_TIMEOUT,
                  "processor %s ran past processor.timeout.ms=%lld on "
                  "this event in compiled or C code; the supervisor killed the worker and did not "
                  "run it again", p->processor, (long long)p->timeout_ms);
    j->p = proc;
    j->call.co = NULL;
    proc->processed++;
    proc->errors++;
    proc->limit_hits[RT_LIMIT_TIMEOUT]++;
    return 1;
}

void rt_worker_handle(rt_worker *w, const char *raw, size_t len, const rt_origin *origin,
                      rt_ticket *ticket)
{
    if (w->failed)
        return;     /* the ticket stays held: its offset must never be stored */
    w->records++;
    rt_job *j = job_get(w);
    rt_rekey *rekey;
    if (!j) {
        rt_error("out of memory");
        rt_worker_fail(w, origin);
        return;
    }
    j->ticket = ticket;
    j->ev.origin = *origin;
    if (rt_event_decode(&j->ev, raw, len, &w->limits, &j->why) < 0) {
        j->state = RT_JOB_DEAD;
    } else {
        uint64_t pair;      /* (domain, type) hashed once, for the route and its count */
        int owner = rt_router_lookup(&w->router, j->ev.domain, j->ev.type, &pair);
        rt_counter_inc_hashed(&w->in_by_type, j->ev.domain, j->ev.type, pair);
        if (owner < 0) {
            rt_reject_set(&j->why, RT_REASON_NO_ROUTE, "no processor for domain=%s type=%s",
                          j->ev.domain, j->ev.type);
            j->state = RT_JOB_DEAD;
        } else if ((size_t)owner >= w->nprocs) {
            set_state(j, forward(j, w->forward[owner - w->nprocs]));
        } else if (w->procs[owner]->removed) {
            rt_reject_set(&j->why, RT_REASON_NO_ROUTE,
                          "processor %s (route for domain=%s type=%s) "
                          "was removed", w->procs[owner]->name, j->ev.domain, j->ev.type);
            j->state = RT_JOB_DEAD;
        } else if (w->shared && poisoned(w, j, w->procs[owner])) {
            j->state = RT_JOB_DEAD;
        } else if (w->nrekey && (rekey = rt_worker_rekey_for(w, (size_t)owner, origin->topic))) {
            set_state(j, rt_worker_rekey(rekey, j));   /* processed when read back */
        } else {
            j->p = w->procs[owner];
            j->wait.wake = on_wake;
            j->wait.arg = w;
            set_state(j, rt_processor_start(j->p, &j->call, &j->ev, &j->out, &j->wait,
                                            &j->why));
        }
    }
    if (!w->head && j->state != RT_JOB_WAITING) {
        complete(w, j);         /* the common case: nothing ahead of it */
        job_put(w, j);
        return;
    }
    /* It stays beyond this call: keep its bytes (the source reuses its buffer). */
    if (len > j->rawcap) {
        size_t cap = len < 512 ? 512 : len;
        free(j->raw);
        j->rawcap = 0;
        if (!(j->raw = malloc(cap))) {
            rt_error("out of memory");
            job_put(w, j);
            rt_worker_fail(w, origin);
            return;
        }
        j->rawcap = cap;
    }
    memcpy(j->raw, raw, len);
    j->ev.raw = j->raw;
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->queued++;
    rt_worker_backpressure(w);
}

void rt_worker_jobs_free(rt_worker *w)
{
    while (w->head) {
        rt_job *j = w->head;
        w->head = j->next;
        job_put(w, j);
    }
    while (w->spare) {
        rt_job *j = w->spare;
        w->spare = j->next;
        job_free(j);
    }
}
