/* worker.h - a self-contained pipeline: one event loop, its own Lua states, sinks,
 * route table and counters. Workers share nothing, so several can run side by side. */
#ifndef RT_WORKER_H
#define RT_WORKER_H

#include <dirent.h>
#include <pthread.h>

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
    char *raw;              /* own copy of the bytes, once the job is queued */
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
} rt_keyed;

typedef struct rt_worker {
    const rt_config *cfg;
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
    int signalled;          /* stopped by SIGTERM/SIGINT, not by the input's end */
    const char *state_dir;  /* checkpoints are taken (Kafka source, state.dir set) */
    struct event *ckpt_ev;  /* every checkpoint.interval.ms: one is due */
    int ckpt_due;
    uint64_t ckpts, ckpt_failures, ckpt_restored;
    int64_t ckpt_ms;        /* duration of the last one */
    size_t ckpt_bytes;      /* its size */
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

/* Load processors, build the route table and check the sinks; with `open_io` also open
 * the sinks. -1 with err set: a config or processor error (exit code 2). */
int  rt_worker_init(rt_worker *w, const rt_config *cfg, int open_io, char *err,
                    size_t errlen);
/* Start the source, admin endpoint and signal handlers and run until the input ends
 * or SIGTERM/SIGINT. 0 when done, -1 on a runtime failure (exit code 1). */
int  rt_worker_run(rt_worker *w);
/* Put one raw record through decode, route, processor and sinks. `ticket` (NULL for
 * sources without offsets) comes held once and is released when the record is done,
 * which may be later, after a lookup answered. */
void rt_worker_handle(rt_worker *w, const char *raw, size_t len, const rt_origin *origin,
                      rt_ticket *ticket);
/* worker_jobs.c: the wake_ev callback (a lookup answered): resume and finish jobs. */
void rt_worker_on_wake(evutil_socket_t fd, short what, void *arg);
/* Free every job, finished or not. */
void rt_worker_jobs_free(rt_worker *w);
/* Internal to the worker files: flush and leave the loop; dead-letter one event;
 * stop on a failed output, naming where. */
void rt_worker_finish_run(rt_worker *w);
void rt_worker_dead_letter(rt_worker *w, const rt_event *ev, const rt_reject *why,
                           const char *processor, rt_ticket *ticket);
void rt_worker_fail(rt_worker *w, const rt_origin *origin);
/* Pause or resume a file source by the unfinished jobs and unacknowledged outputs. */
void rt_worker_backpressure(rt_worker *w);
/* Flush every sink; -1 (and w->failed) when one failed. */
int  rt_worker_flush(rt_worker *w);
/* Append the worker's metrics in the Prometheus text format. */
int  rt_worker_metrics(rt_worker *w, rt_buf *out);
/* The env a processor of this worker is loaded with. */
rt_processor_env rt_worker_processor_env(rt_worker *w);
/* Build the route table from the processors' routes, the forwards and route.* keys
 * into `r`. -1 with err set (a conflict). */
int  rt_worker_build_routes(rt_worker *w, rt_router *r, rt_route_owner **owners, char *err,
                            size_t errlen);
/* scandir filter: *.lua, not hidden. */
int  rt_lua_file(const struct dirent *d);
/* Print the route table (`eddy check`). */
void rt_worker_print_routes(const rt_worker *w, FILE *out);
/* worker_keyed.c: state and windows for every processor; -1 with err when out of memory. */
int  rt_worker_keyed_init(rt_worker *w, char *err, size_t errlen);
/* State and windows for one more processor (slot w->nkeyed); -1 when out of memory. */
int  rt_worker_keyed_add(rt_worker *w, rt_processor *p);
/* A finished event joins its processor's windows (may turn the job dead, or send the
 * event to the late output). */
void rt_worker_windows_add(rt_worker *w, rt_job *j);
/* A finished event's time moves the watermark; due windows fire. */
void rt_worker_event_time(rt_worker *w, rt_job *j);
/* The processing-time timer event: fire what is due, arm for the next. */
void rt_worker_processing_timers(rt_worker *w);
/* The idle timer: partitions silent for window.idle.timeout.ms stop holding back. */
void rt_worker_idle_check(rt_worker *w);
/* A bounded input ended: the watermark goes to the end of time, every window fires. */
void rt_worker_end_of_input(rt_worker *w);
/* State and window metrics in the Prometheus text format. */
int  rt_worker_keyed_metrics(rt_worker *w, rt_buf *out);
/* Release state and windows. */
void rt_worker_keyed_free(rt_worker *w);
/* worker_checkpoint.c: with state.dir and a Kafka source, take a checkpoint every
 * checkpoint.interval.ms. -1 with err set. */
int  rt_worker_checkpoint_start(rt_worker *w, char *err, size_t errlen);
/* Take the checkpoint that is due, if no event is half-processed now. */
void rt_worker_checkpoint_maybe(rt_worker *w);
/* Drain the sinks and write every partition's checkpoint now; -1 when not taken. */
int  rt_worker_checkpoint(rt_worker *w);
/* Newly assigned partitions: restore their checkpoints and set from[i] to the offsets
 * they stand for. -1 when one is damaged (logged): the worker must stop. */
int  rt_worker_restore(rt_worker *w, size_t n, const char *const *topics,
                       const int *partitions, long long *from);
int  rt_worker_checkpoint_metrics(rt_worker *w, rt_buf *out);
/* worker_progress.c: on a terminal, a status line (events, events/s, dead letters)
 * redrawn twice a second. -1 when the timer cannot be set up. */
int  rt_worker_progress_start(rt_worker *w);
/* Remove the status line and log the summary of the run. */
void rt_worker_progress_end(rt_worker *w);
void rt_worker_progress_free(rt_worker *w);
/* Release everything. */
void rt_worker_free(rt_worker *w);

#endif
