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

/* One worker process. */
typedef struct rt_sup rt_sup;
typedef struct rt_sup_child {
    rt_sup *sup;
    int index;
    pid_t pid;              /* 0 while down */
    int64_t started_ms, backoff_ms;
    struct event *restart_ev;
    uint64_t restarts, kills;
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
    int stopping, worst;
    int64_t kill_after_ms;
};


/* GET /metrics, GET /-/processors (asked of every worker), POST /-/reload, GET /healthz. */
extern const rt_admin_route rt_supervisor_routes[];

#endif
