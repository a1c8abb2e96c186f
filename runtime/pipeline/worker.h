/* worker.h - a self-contained pipeline: one event loop, its own Lua states, sinks,
 * route table and counters. Workers share nothing, so several can run side by side. */
#ifndef RT_WORKER_H
#define RT_WORKER_H

#include <pthread.h>
#include <sys/types.h>

#include <event2/event.h>

#include "admin.h"
#include "config.h"
#include "dlq_log.h"
#include "kafka.h"
#include "lookup.h"
#include "metrics.h"
#include "beat.h"
#include "processor.h"
#include "router.h"
#include "sink.h"
#include "source.h"
#include "track.h"
#include "watermark.h"

struct rt_worker;

/* What rt_worker_init opens besides loading the processors. */
enum rt_worker_io {
    RT_WORKER_CHECK,        /* nothing: the config is checked (eddy check) */
    RT_WORKER_OPEN,         /* the event loop, sinks, lookups, embedded cluster (eddy run) */
    RT_WORKER_TEST,         /* the event loop only: sinks keep their records in memory,
                             * lookups answer from fixtures (eddy test, worker_test.c) */
};
typedef struct rt_reload rt_reload;

/* One event from decode to its outputs. Jobs finish in arrival order: one waiting for
 * a lookup holds back the outputs of the jobs behind it, which keeps per-partition
 * order while the later jobs run (and queue their own misses into the same batch). */
enum rt_job_state { RT_JOB_WAITING, RT_JOB_DONE, RT_JOB_DEAD };
typedef struct rt_job {
    struct rt_job *next;
    struct rt_worker *w;
    enum rt_job_state state;
    rt_event ev;
    char *raw;              /* own copy of the bytes, once the job is queued; the buffer
                             * stays with the job for the next record (worker_jobs.c) */
    size_t rawcap;
    rt_processor *p;        /* NULL when refused before a processor */
    rt_call call;
    rt_outbox out;
    rt_ticket *ticket;
    rt_lkwait wait;
    rt_reject why;          /* RT_JOB_DEAD */
} rt_job;

/* What the worker keeps for one processor name: keyed state and window contents. */
typedef struct rt_keyed {
    rt_state state;
    rt_windows windows;
    rt_timers timers;
    rt_series series;       /* ctx.metric values */
    rt_changes changes;     /* state.changelog: what changed since the last write */
} rt_keyed;

typedef struct rt_changelog rt_changelog;
typedef struct rt_rekey rt_rekey;

typedef struct rt_worker {
    const rt_config *cfg;
    enum rt_worker_io io;   /* what rt_worker_init opened */
    struct event_base *base;
    struct event *sigterm, *sigint;
    rt_sinks sinks;
    rt_sink *dlq;
    rt_processor **procs;   /* by slot; a slot outlives reloads and removals */
    size_t nprocs;
    rt_rules rules;         /* rules.dir, parsed */
    rt_reload *reload;      /* reload triggers and the pending swap (reload.c) */
    rt_shared *shared;      /* under a supervisor: heartbeats and poison; else NULL */
    rt_beat *beat;          /* the Lua call in progress: shared->beats[index], or own_beat */
    rt_beat own_beat;       /* alone: read by the admin thread (GET /healthz) */
    int input_fd;           /* > 0: a file source relayed by the supervisor (a pipe) */
    long long input_line;   /* lines of it already done before the first one sent */
    int index;              /* worker number under a supervisor */
    rt_route_owner *owners; /* the router's view of procs, same order, then forwards */
    rt_route_owner *fwd_owners; /* the forwards' entries */
    rt_sink **forward;      /* route.<d>.<t>=sink:<name>: events written as they are */
    size_t nforward;
    rt_router router;
    rt_lookups lookups;
    rt_job *head, *tail;    /* jobs not finished, in arrival order */
    size_t queued, max_queued;
    rt_job *spare;          /* finished jobs kept for reuse */
    size_t nspare;
    struct event *wake_ev;  /* a lookup answered: resume and finish jobs */
    size_t woken;           /* queued jobs whose lookup answered, not yet resumed */
    struct event *give_up_ev;   /* stopping: stop waiting for lookups */
    pthread_mutex_t source_mu;  /* source against the admin thread's tick */
    int64_t committed_since;    /* the stuck call whose offsets the tick committed */
    struct event *fail_ev;  /* an output failed: end the run (a Kafka source never ends) */
    int ending;             /* input over or stopping: leave once the queue is empty */
    rt_tracker tracker;     /* which input offsets (lines) are done: at least once */
    rt_source source;       /* source.type's kind (source.h) */
    rt_admin *admin;
    rt_keyed **keyed;       /* per processor slot, same order */
    size_t nkeyed;
    int windowed;           /* some processor uses event time (windows, on_timer) */
    struct event *ptimer_ev;    /* the earliest processing-time timer */
    int ptimer_armed;
    int64_t ptimer_at;
    rt_watermark watermark;
    rt_outbox fire_out;     /* on_window's emits */
    rt_ticket *fire_ticket; /* the ticket window outputs are held on, or NULL */
    struct event *idle_ev;  /* re-computes the watermark while partitions are idle */
    struct event *sweep_ev; /* drops state values past their TTL that nobody reads */
    int signalled;          /* stopped by SIGTERM/SIGINT, not by the input's end */
    const char *state_dir;  /* checkpoints are taken (Kafka source, state.dir set) */
    struct event *ckpt_ev;  /* every checkpoint.interval.ms: one is due */
    struct event *ckpt_drain_ev;    /* looks again whether the outputs are all in */
    int ckpt_due, ckpt_draining;
    int64_t ckpt_started, ckpt_until;   /* the one draining: began, gives up */
    uint64_t ckpts, ckpt_failures, ckpt_restored;
    int64_t ckpt_ms;        /* duration of the last one */
    size_t ckpt_bytes;      /* its size */
    int64_t ckpt_pause_ms;  /* how long it stopped the loop */
    pid_t ckpt_child;       /* writing the periodic one from a snapshot (fork), or 0 */
    int ckpt_report_fd;     /* the child's report */
    struct event *ckpt_child_ev;
    rt_track_mark *ckpt_marks;  /* the input offsets the child's checkpoint stands for */
    size_t ckpt_nmarks;
    rt_changelog *changelog;    /* state.changelog=true (worker_changelog.c), or NULL */
    rt_rekey *rekey;        /* processors whose events are repartitioned by their key
                             * (worker_repartition.c) */
    size_t nrekey;
    /* processing.guarantee=exactly_once (worker_txn.c) */
    int txn_on;
    struct event *txn_ev;       /* every commit.interval.ms: a commit is due */
    struct event *txn_wait_ev;  /* looks again whether the quiet point is reached */
    int txn_draining;           /* the source holds still until nothing is in flight */
    int txn_committing;         /* a periodic commit runs on the producer's thread */
    int txn_over;               /* a commit on the way out was aborted: no more commits */
    int64_t txn_begun;          /* when that commit was due */
    int64_t txn_started, txn_until;
    uint64_t txn_records, txn_out, txn_dead;    /* at the last commit: nothing new, no
                                                 * commit */
    uint64_t txns, txn_aborts;
    int64_t txn_ms;             /* duration of the last commit (quiet point included) */
    int64_t txn_blocked_ms;     /* summed time of the commit calls, which wait for the
                                 * broker on the loop (librdkafka's are synchronous) */
    rt_kafka_embedded embedded;     /* kafka.embedded=true */
    rt_event_limits limits;
    size_t dlq_max_raw;     /* dlq.max.raw.bytes */
    int failed;             /* a runtime failure stopped the pipeline */
    double started;         /* epoch seconds */
    /* counters (see rt_worker_metrics) */
    uint64_t records, out, dead;
    rt_pairmap in_by_type;  /* (domain, type) */
    rt_pairmap dead_by_reason;  /* (reason, "") */
    rt_dlq_log dlq_log;     /* dead letters in the log, bursts summarised */
    struct event *progress_ev;  /* the status line on a terminal (worker_progress.c) */
    int64_t progress_at;    /* rt_clock_ms of the last redraw */
    uint64_t progress_records;
} rt_worker;


/* Load processors, build the route table and check the sinks; open what `io` says.
 * `index`: the worker's number under a supervisor, else 0. -1 with err set: a config
 * or processor error (exit code 2). */
int  rt_worker_init(rt_worker *w, const rt_config *cfg, enum rt_worker_io io, int index,
                    char *err, size_t errlen);
/* Start the source, admin endpoint and signal handlers and run until the input ends
 * or SIGTERM/SIGINT. 0 when done, -1 on a runtime failure (exit code 1). */
int  rt_worker_run(rt_worker *w);
/* eddy test (worker_test.c), on a worker built with RT_WORKER_TEST: one record through
 * decode, route, processor, windows and sinks as if read from input partition
 * `partition`; 0, or -1 when an output failed. */
int  rt_worker_test_send(rt_worker *w, const char *raw, size_t len, int32_t partition);
/* Fire what is due at event-time `watermark` and at processing time `now_ms`
 * (INT64_MIN: leave that one). 0, or -1 when an output failed. */
int  rt_worker_test_advance(rt_worker *w, int64_t watermark, int64_t now_ms);
/* The processor called `name` (its state: ->state), or NULL. */
rt_processor *rt_worker_find_processor(rt_worker *w, const char *name);
/* The sinks (rt_sink_captured) and the lookups (rt_lookup_fixture). */
const rt_sinks *rt_worker_test_sinks(rt_worker *w);
rt_lookups *rt_worker_test_lookups(rt_worker *w);
/* worker_inspect.c: processor `processor`'s keyed state and open windows as one JSON
 * object (keys of every partition; only `key` unless NULL), at most `limit` entries
 * ("truncated": true past them). 200, 404 when there is no such processor, -1 when out
 * of memory. */
int  rt_worker_inspect(rt_worker *w, const char *processor, const char *key, size_t limit,
                       rt_buf *out);
/* eddy state: restore every partition checkpoint in `dir` (as a start does). -1 with
 * the reason logged. */
int  rt_worker_restore_dir(rt_worker *w, const char *dir);
/* Print the route table (`eddy check`). */
void rt_worker_print_routes(const rt_worker *w, FILE *out);
/* Release everything. */
void rt_worker_free(rt_worker *w);

#endif
