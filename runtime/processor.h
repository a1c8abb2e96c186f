/* processor.h - one Lua processor: its sandboxed state, its routes, and the one
 * protected-call path every call into Lua takes. */
#ifndef RT_PROCESSOR_H
#define RT_PROCESSOR_H

#include <stdint.h>
#include <lua.h>

#include "buf.h"
#include "event.h"
#include "lookup.h"
#include "metrics.h"
#include "router.h"
#include "sink.h"
#include "state.h"
#include "timer.h"
#include "window.h"

/* Records emitted while processing one event. They reach their sinks only if
 * process() returns normally, so a failed event has no partial outputs. */
typedef struct rt_emit {
    rt_sink *sink;
    size_t off, len;        /* the record, in rt_outbox.bytes */
    size_t key_off, key_len;    /* its message key; key_len 0 for none */
} rt_emit;

typedef struct rt_outbox {
    rt_buf bytes;
    rt_emit *v;
    size_t n, cap;
} rt_outbox;

/* What processors reach through ctx: sinks, lookups, rules files. */
typedef struct rt_processor_env {
    rt_sinks *sinks;
    rt_lookups *lookups;
    const char *rules_dir;
    int64_t allowed_lateness_ms;    /* window.allowed.lateness.ms */
} rt_processor_env;

/* One process() call. It runs in a coroutine of its own so that it can wait for a
 * lookup; the event it was started with must stay put until the call ends. */
typedef struct rt_call {
    lua_State *co;
    int ref;                /* registry ref of co */
    void *ev_handle;        /* its ev object */
    double elapsed;         /* seconds spent running, over every resume */
    int32_t partition;      /* the event's input partition */
} rt_call;

#define RT_PROCESSOR_POOL 64    /* finished coroutines kept for reuse */

typedef struct rt_processor {
    char *name, *path;
    lua_State *L;
    int process_ref, ctx_ref, trampoline_ref, event_mt_ref;  /* registry refs */
    int yield_ref;          /* coroutine.yield as it was before the file ran */
    void *ev_handle;        /* the ev object of the call in progress */
    lua_State *running;     /* the coroutine of the call in progress */
    rt_lkwait *wait;        /* where the call in progress waits for a lookup */
    int waiting;            /* ctx.lookup is about to yield for p->wait */
    rt_lookups *lookups;
    rt_lookup *last_lookup; /* ctx.lookup's one-entry cache */
    const char *rules_dir;
    int pool[RT_PROCESSOR_POOL];
    int npool;
    rt_route_decl *routes;
    size_t nroutes;
    rt_sinks *sinks;        /* where ctx.emit looks sink names up */
    rt_sink *last_sink;     /* ctx.emit's one-entry cache */
    rt_outbox *outbox;      /* non-NULL only while process() runs */
    rt_buf scratch;         /* json.encode output */
    char reject[256];       /* detail given to ctx.reject */
    int32_t partition;      /* input partition of the call in progress (ctx.state) */
    rt_state *state;        /* keyed state, kept by the worker under the name */
    rt_timers *timers;      /* its timers, kept likewise */
    rt_window_def *window_defs; /* the `windows` table */
    size_t nwindows;
    int on_window_ref, on_timer_ref;    /* LUA_NOREF when absent */
    int64_t state_ttl_ms;   /* the table's state_ttl_ms: ctx.state.set's default TTL */
    /* usage counters */
    uint64_t processed, errors;
    rt_histogram latency;
} rt_processor;

/* Compile `path` in a fresh sandboxed state, read its table, run init(ctx).
 * -1 with err "FILE:LINE: message" (or "FILE: message") on any failure. */
int  rt_processor_load(rt_processor *p, const char *path, const rt_processor_env *env,
                       char *err, size_t errlen);
/* Start process(ev, ctx), collecting emits in `out`. 0 when it returned; -1 with `why`
 * set (processor_error, rejected, memory) when the event must be dead-lettered; 1 when
 * it waits for a lookup: `wait` is queued, and rt_processor_resume continues the call
 * once it is woken. */
int  rt_processor_start(rt_processor *p, rt_call *c, const rt_event *ev, rt_outbox *out,
                        rt_lkwait *wait, rt_reject *why);
/* Continue a call whose wait is READY; results as for rt_processor_start. */
int  rt_processor_resume(rt_processor *p, rt_call *c, rt_outbox *out, rt_lkwait *wait,
                         rt_reject *why);
/* Run body(L, arg) protected in the processor's state, outside process(): a window's
 * add/merge, on_window, on_timer. ctx.emit collects into `out`, ctx.state uses
 * `partition`. 0, or -1 with `why` set. */
int  rt_processor_invoke(rt_processor *p, int (*body)(lua_State *L, void *arg), void *arg,
                         rt_outbox *out, int32_t partition, rt_reject *why);
/* Drop a waiting call (its event is dead-lettered or abandoned). */
void rt_processor_abort(rt_processor *p, rt_call *c);
/* Close the state and free the processor. */
void rt_processor_free(rt_processor *p);

/* Record the bytes from `off` to `key_off` of o->bytes as one record for `sink`, and
 * from `key_off` to the end as its key (ctx.emit encodes straight into o->bytes).
 * -1 when out of memory. */
int  rt_outbox_add(rt_outbox *o, rt_sink *sink, size_t off, size_t key_off);
/* Forget the records, keep the memory. */
void rt_outbox_reset(rt_outbox *o);
/* Free the memory. */
void rt_outbox_free(rt_outbox *o);

#endif
