/* supervisor_int.h - the master's state, shared by supervisor.c (processes, signals,
 * watchdog) and supervisor_admin.c (its admin endpoint). */
#ifndef RT_SUPERVISOR_INT_H
#define RT_SUPERVISOR_INT_H

#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "admin.h"
#include "beat.h"
#include "config.h"
#include "supervisor.h"

/* supervisor_relay.c: a file or stdin source relayed to the one worker. */
typedef struct rt_relay rt_relay;
/* Open the input (`path`, "-" for stdin) and watch it on `base`. NULL with err set. */
rt_relay *rt_relay_open(struct event_base *base, const char *path, char *err, size_t errlen);
/* Before a worker starts: a new pipe; *child_fd is its read end, *line the number of
 * lines before the first it will get. -1 when no pipe can be had. */
int  rt_relay_attach(rt_relay *r, int *child_fd, long long *line);
/* After the fork, in the supervisor: close the child's end and start sending. */
void rt_relay_started(rt_relay *r, int child_fd);
/* The worker is gone: its pipe is closed; what it had not done waits for the next. */
void rt_relay_detach(rt_relay *r);
/* The worker has done every line before `next`: forget them. */
void rt_relay_done(rt_relay *r, int64_t next);
/* The whole input went to the current worker and its pipe was closed. */
int  rt_relay_finished(const rt_relay *r);
/* Close and free (in a forked worker too: it must not hold the pipe's write end). */
void rt_relay_free(rt_relay *r);

/* One worker process. */
typedef struct rt_sup rt_sup;
typedef struct rt_sup_child {
    rt_sup *sup;
    int index;
    pid_t pid;              /* 0 while down */
    int64_t started_ms, backoff_ms;
    struct event *restart_ev;
    uint64_t restarts, kills;
    rt_buf last_metrics;    /* this pid's latest /metrics answer, retired when it dies */
} rt_sup_child;

/* The master. */
struct rt_sup {
    const rt_config *cfg;
    struct event_base *base;
    rt_shared *shared;
    int n;
    rt_sup_child kids[RT_MAX_WORKERS];
    struct event *sig[4], *watch_ev;
    rt_admin *admin;
    rt_relay *relay;        /* source.type=file; else NULL */
    rt_buf retired;         /* counters of dead workers (rt_metrics_retire) */
    int stopping, worst;
    int64_t kill_after_ms;
};


/* GET /metrics, GET /-/processors (asked of every worker), POST /-/reload, GET /healthz. */
extern const rt_admin_route rt_supervisor_routes[];

#endif
