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
#include "pool.h"
#include "router.h"
#include "rules.h"
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

/* The sandbox's limits (processor.* keys), as lua_sandbox names its own. */
typedef struct rt_sandbox_limits {
    int64_t timeout_ms;     /* running time of one call (process, on_window, ...) */
    size_t memory;          /* bytes of one processor's Lua state */
    uint32_t max_emits;     /* ctx.emit calls per call */
    uint32_t max_consecutive_errors;    /* then quarantined; 0 never */
    int jit;                /* processor.jit: compile every processor (else only those
                             * whose table says jit = true) */
    size_t max_output;      /* bytes of records one call emits; 0 any */
    size_t max_state;       /* bytes of one processor's keyed state; 0 any */
    size_t max_series;      /* series of its ctx.metric metrics */
} rt_sandbox_limits;

/* Which limit a call hit (the dead-letter reason), counted per processor. */
enum rt_limit { RT_LIMIT_NONE, RT_LIMIT_TIMEOUT, RT_LIMIT_MEMORY, RT_LIMIT_EMITS,
                RT_LIMIT_OUTPUT, RT_NLIMITS };
extern const char *const rt_limit_names[RT_NLIMITS];

/* What processors reach through ctx: sinks, lookups, rules files; and their limits. */
typedef struct rt_processor_env {
    rt_sinks *sinks;
    rt_lookups *lookups;
    const rt_rules *rules;
    int64_t allowed_lateness_ms;    /* window.allowed.lateness.ms */
    rt_sandbox_limits limits;
    int strict;             /* eddy check: what only may fail (an emit to a sink no sink
                             * declares) is an error, not a warning */
} rt_processor_env;

/* Where a processor's code runs, and so what its ctx allows there (RT_CTX_*). */
typedef enum rt_call_kind {
    RT_CALL_NONE,           /* between calls */
    RT_CALL_INIT,           /* loading: the table's windows(ctx) and init(ctx) */
    RT_CALL_PROCESS,
    RT_CALL_ADD,            /* a window's add */
    RT_CALL_MERGE,          /* a window's merge */
    RT_CALL_WINDOW,         /* on_window */
    RT_CALL_TIMER,          /* on_timer */
    RT_NCALL_KINDS
} rt_call_kind;

#define RT_CTX_EMIT  1u     /* ctx.emit */
#define RT_CTX_WAIT  2u     /* ctx.lookup may wait for a row that is not cached */
#define RT_CTX_STATE 4u     /* ctx.state */
#define RT_CTX_TIMER 8u     /* ctx.timer */

/* What each kind of call allows, and how errors name it ("on_window"). */
extern const unsigned rt_call_allows[RT_NCALL_KINDS];
extern const char *const rt_call_names[RT_NCALL_KINDS];

/* The call in progress: everything ctx works with, set as a whole when a call starts
 * or resumes and put back as a whole when it ends (a window's add may run inside the
 * completion of a process() call). The bindings read it; only processor.c sets it. */
typedef struct rt_ctx {
    rt_call_kind kind;
    unsigned allows;        /* rt_call_allows[kind] */
    rt_outbox *outbox;      /* where ctx.emit collects; NULL unless RT_CTX_EMIT */
    rt_lkwait *wait;        /* where process() waits for a lookup */
    lua_State *running;     /* process()'s coroutine: the only one that may wait */
    int waiting;            /* ctx.lookup is about to yield for `wait` */
    int32_t partition;      /* the input partition (ctx.state, ctx.timer) */
    rt_buf *undo;           /* the undo log of its ctx.state writes */
    uint32_t emits;         /* ctx.emit calls so far (processor.max.emits) */
    void *ev_handle;        /* process()'s ev object */
    int ev_ref;             /* its registry ref when kept for the windows' add, else 0 */
} rt_ctx;

/* Where the worker tells its supervisor which call runs (supervisor.h); NULL alone. */
struct rt_beat;

/* One process() call. It runs in a coroutine of its own so that it can wait for a
 * lookup; the event it was started with must stay put until the call ends. */
typedef struct rt_call {
    lua_State *co;
    int ref;                /* registry ref of co */
    void *ev_handle;        /* its ev object */
    int ev_ref;             /* the ev's registry ref, kept after a call that returned
                             * for the windows' add (rt_processor_lend_ev); else 0 */
    double elapsed;         /* seconds spent running, over every resume */
    int32_t partition;      /* the event's input partition */
    rt_origin origin;       /* where the event came from (the supervisor's view) */
    uint32_t emits;         /* ctx.emit calls so far (processor.max.emits) */
    rt_buf undo;            /* what its ctx.state writes replaced (rt_state_undo) */
} rt_call;

#define RT_PROCESSOR_POOL 64    /* finished coroutines kept for reuse */

typedef struct rt_processor {
    char *name, *path;
    lua_State *L;
    int process_ref, ctx_ref, trampoline_ref, event_mt_ref;  /* registry refs */
    int invoke_ref;         /* rt_processor_invoke's C entry (registry ref) */
    int yield_ref;          /* coroutine.yield as it was before the file ran */
    rt_ctx cx;              /* the call in progress */
    rt_lookups *lookups;
    rt_lookup *last_lookup; /* ctx.lookup's one-entry cache */
    const rt_rules *rules;
    char **rules_read;      /* names ctx.rules gave out: their change reloads us */
    size_t nrules_read;
    int pool[RT_PROCESSOR_POOL];
    int npool;
    rt_route_decl *routes;
    size_t nroutes;
    rt_sinks *sinks;        /* where ctx.emit looks sink names up */
    rt_sink *last_sink;     /* ctx.emit's one-entry cache */
    rt_buf scratch;         /* json.encode output */
    rt_buf scratch2;        /* a window's merge = "sum": the accumulators it merges */
    char reject[256];       /* detail given to ctx.reject */
    rt_buf invoke_undo;     /* the log of rt_processor_invoke's calls */
    rt_state *state;        /* keyed state, kept by the worker under the name */
    rt_timers *timers;      /* its timers, kept likewise */
    rt_window_def *window_defs; /* the `windows` table */
    size_t nwindows;
    rt_metric_def *metric_defs; /* the `metrics` table */
    size_t nmetric_defs;
    rt_series *series;      /* their values, kept by the worker under the name */
    int on_window_ref, on_timer_ref;    /* LUA_NOREF when absent; on_window's is the
                                         * wrapper that makes `win` (processor.c) */
    int add_ev_ref;         /* the ev lent to the windows' add (lb_window.c), else 0 */
    int64_t state_ttl_ms;   /* the table's state_ttl_ms: ctx.state.set's default TTL */
    char *key;              /* the table's `key`: the record path its state is keyed by
                             * (the worker repartitions by it), or NULL */
    /* sandbox */
    rt_sandbox_limits limits;
    const char *load_src;   /* the source while it loads (error lines), else NULL */
    size_t load_len;
    size_t mem_used;        /* bytes the Lua state holds */
    lua_Alloc under;        /* what serves the blocks the pool does not (sandbox.c) */
    void *under_ud;
    rt_pool blocks;         /* the state's small blocks (sandbox.c) */
    int64_t deadline_ms;    /* monotonic; the count hook stops the call past it; 0 none */
    int watched;            /* holds a reference to the timeout watchdog (sandbox.c) */
    enum rt_limit limit;    /* the limit the call in progress hit */
    char limit_detail[200]; /* what exactly, when the limit's own text does not say */
    uint32_t consecutive_errors;
    int quarantined;        /* too many errors in a row: refuses events until reloaded */
    int dry_run;            /* verifying a reload: every state write is undone */
    size_t verified;        /* recent events this version ran before it went live */
    struct rt_beat *beat;
    /* reload bookkeeping (reload.c) */
    size_t slot;            /* index in the worker's processors and keyed state */
    uint64_t hash;          /* of the source loaded */
    uint64_t refused_hash;  /* of the last source refused (not tried again unchanged) */
    int64_t loaded_at;      /* epoch ms */
    int removed;            /* its file is gone: routes handed back */
    /* usage counters */
    uint64_t processed, errors;
    uint64_t limit_hits[RT_NLIMITS];
    uint64_t reloads, reload_failures;
    uint64_t quarantines;   /* times it was quarantined (eddy run's exit code) */
    char *last_error;       /* why the last reload was refused; NULL */
    rt_histogram latency;
} rt_processor;

/* Compile `path` in a fresh sandboxed state, read its table, run init(ctx).
 * -1 with err "FILE:LINE: message" (or "FILE: message") on any failure. */
int  rt_processor_load(rt_processor *p, const char *path, const rt_processor_env *env,
                       char *err, size_t errlen);
/* The same from source bytes already read (reload hashes them first). */
/* During a load: raise a Lua error for a key of table `t` that is not in `known`
 * (NULL-terminated), naming the file, the line where the key is written and the
 * nearest known key ("unknown key 'route' in the processor table; did you mean
 * 'routes'?"). `what` names the table. */
void rt_processor_check_keys(lua_State *L, rt_processor *p, int t,
                             const char *const *known, const char *what);
/* During a load: "FILE:LINE" of the first "<key> =" in the source after the first
 * "<within> =" (within NULL: anywhere), or "FILE" when there is none, into buf. */
const char *rt_processor_where(const rt_processor *p, const char *key, const char *within,
                               char *buf, size_t len);
int  rt_processor_load_source(rt_processor *p, const char *path, const char *src,
                              size_t len, const rt_processor_env *env, char *err,
                              size_t errlen);
/* Move what outlives a version (counters, slot, state, reload history) from `old` to
 * its replacement `p`; a reload clears the quarantine. */
void rt_processor_carry_over(rt_processor *p, const rt_processor *old);
/* Mark the call in progress as past `limit` and raise the Lua error that unwinds it. */
int  rt_processor_limit_error(lua_State *L, rt_processor *p, enum rt_limit limit);
/* The same with the dead letter's detail given. */
int  rt_processor_limit_errorf(lua_State *L, rt_processor *p, enum rt_limit limit,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Start process(ev, ctx), collecting emits in `out`. 0 when it returned; -1 with `why`
 * set (processor_error, rejected, timeout, memory, too_many_emits, quarantined) when the event must be dead-lettered; 1 when
 * it waits for a lookup: `wait` is queued, and rt_processor_resume continues the call
 * once it is woken. */
int  rt_processor_start(rt_processor *p, rt_call *c, const rt_event *ev, rt_outbox *out,
                        rt_lkwait *wait, rt_reject *why);
/* Continue a call whose wait is READY; results as for rt_processor_start. */
int  rt_processor_resume(rt_processor *p, rt_call *c, rt_outbox *out, rt_lkwait *wait,
                         rt_reject *why);
/* Run body(L, arg) protected in the processor's state, outside process(), as a call
 * of `kind` (add, merge, on_window, on_timer). ctx.emit collects into `out`, ctx.state
 * uses `partition`; `call` names the call for the supervisor (a firing's identity,
 * NULL for add/merge). Its state writes are kept only if it succeeds. 0, or -1 with
 * `why` set. */
int  rt_processor_invoke(rt_processor *p, rt_call_kind kind,
                         int (*body)(lua_State *L, void *arg), void *arg, rt_outbox *out,
                         int32_t partition, const rt_origin *call, rt_reject *why);
/* Drop a waiting call (its event is dead-lettered or abandoned); its state writes are
 * undone. */
void rt_processor_abort(rt_processor *p, rt_call *c);
/* Lend the ev object of c's returned process() call, with its payload converted
 * already, to the windows' add of the same event (lb_window_add); take it back and
 * detach it. A call that is aborted instead gives it back there. */
void rt_processor_lend_ev(rt_processor *p, rt_call *c);
void rt_processor_return_ev(rt_processor *p, rt_call *c);
/* Free what a finished call keeps for reuse. */
void rt_call_free(rt_call *c);
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
