/* bindings.h - the C side of the Lua API, one file per Lua module. */
#ifndef LB_BINDINGS_H
#define LB_BINDINGS_H

#include <stdint.h>

#include <jansson.h>
#include <lua.h>

#include "buf.h"
#include "event.h"
#include "processor.h"

/* lb_json.c: push the `json` module table (encode, decode, null, array_mt). */
int  lb_json_open(lua_State *L, rt_buf *scratch);
/* Append the JSON text of the value at `idx` to `out`; raises a Lua error when the
 * value cannot be encoded (function, cycle, NaN, invalid UTF-8, mixed table). */
void lb_json_encode(lua_State *L, int idx, rt_buf *out);
/* Push a JSON value as Lua: objects and arrays become tables, integers beyond 2^53
 * become int64 values, null becomes nil in objects and json.null in arrays.
 * -1 (nothing pushed) when nested too deep for the Lua stack. */
int  lb_json_push(lua_State *L, json_t *v);
/* The same for node i of a decoded record. */
int  lb_jtape_push(lua_State *L, const rt_jtape *t, uint32_t i);

/* lb_int64.c: register the int64 metatable (once per state). */
void lb_int64_open(lua_State *L);
/* Push an exact 64-bit integer. */
void lb_int64_push(lua_State *L, long long v);
/* 1 and the value when the value at idx is an int64, else 0. */
int  lb_int64_test(lua_State *L, int idx, long long *v);

/* lb_event.c: create the event metatable (once per state); returns its registry ref. */
int  lb_event_open(lua_State *L);
/* Push `ev` as a read-only event object (metatable `mt_ref`); fields are read on access. */
void *lb_event_push(lua_State *L, const rt_event *ev, int mt_ref);
/* Cut the object from its event once process() returned: later use raises an error. */
void lb_event_detach(void *handle);

/* lb_ctx.c: the context guard. Raises "<what> cannot be used in <call>" unless the
 * call in progress allows `need` (RT_CTX_*, processor.h); every ctx function that is
 * not allowed everywhere asks it first. */
void lb_ctx_allowed(lua_State *L, const rt_processor *p, unsigned need, const char *what);

/* lb_lookup.c: push the ctx.lookup function of processor `p`. */
void lb_lookup_push(lua_State *L, rt_processor *p);

/* lb_value.c: append the value at `idx` as bytes (nil, booleans, numbers, int64,
 * strings, tables of those); raises a Lua error naming `what` for anything else. */
void lb_value_dump(lua_State *L, int idx, rt_buf *out, const char *what);
/* Push the value the bytes hold; -1 (nothing pushed) when they are malformed. */
int  lb_value_load(lua_State *L, const char *bytes, size_t len);
/* Append to `out` the merge of n values' bytes, earliest first, as a window's
 * merge = "sum" does, two at a time from the left: numbers added (two int64 as int64),
 * tables merged key by key, nil the identity, any other value the later one's. -1 when
 * one is malformed, or out of memory. */
typedef struct lb_span {
    const char *p;
    size_t len;
} lb_span;
int  lb_value_merge_sum(const lb_span *v, size_t n, rt_buf *out);

/* lb_state.c: push the ctx.state table of processor `p` (get, set, del). */
void lb_state_push(lua_State *L, rt_processor *p);

/* lb_string.c: replace string.find, match, gmatch and gsub with versions that stop at
 * the call's deadline (processor.timeout.ms) however the pattern backtracks. */
void lb_string_open(lua_State *L);

/* lb_geo.c: push the ctx.geo table (haversine, in_polygon). */
int  lb_geo_open(lua_State *L);
/* Great-circle distance in metres on the mean Earth sphere. */
double lb_geo_haversine(double lat1, double lon1, double lat2, double lon2);

/* lb_window.c: read the processor table's `windows` (at index `spec`) into p's window
 * definitions, sorted by name; raises a Lua error on a bad declaration. */
void lb_window_read(lua_State *L, rt_processor *p, int spec, int64_t default_lateness);
/* A window's add(acc, ev, ctx) for each of the n panes an event joins, in one call
 * with one ev: the returned values become the panes' accumulators, all of them or
 * (on an error) none. */
int  lb_window_add(rt_processor *p, const rt_window_def *d, const rt_event *ev,
                   rt_pane *const *panes, size_t n, int32_t partition, rt_reject *why);
/* A session window's merge(a, b) into `into`. */
int  lb_window_merge(rt_processor *p, const rt_window_def *d, rt_pane *into,
                     const rt_pane *from, int32_t partition, rt_reject *why);
/* on_window(win, ctx) for a due pane; emits go to `out`. */
int  lb_window_fire(rt_processor *p, const rt_window_def *d, const rt_wkey *k,
                    const rt_pane *pane, rt_outbox *out, const rt_origin *call,
                    rt_reject *why);

/* lb_metric.c: read the processor table's `metrics` (at index `spec`) into p's metric
 * definitions; raises a Lua error on a bad declaration. */
void lb_metric_read(lua_State *L, rt_processor *p, int spec);
/* Push the ctx.metric table (inc, set) of processor `p`. */
void lb_metric_push(lua_State *L, rt_processor *p);

/* lb_timer.c: push the ctx.timer function of processor `p`. */
void lb_timer_push(lua_State *L, rt_processor *p);
/* on_timer(key, tag, ctx) for a due timer; emits go to `out`. */
int  lb_timer_fire(rt_processor *p, const rt_timer *t, rt_outbox *out, const rt_origin *call,
                   rt_reject *why);

/* lb_ctx.c: push the ctx table of processor `p` (emit, log, now, reject, check, lookup,
 * rules, json, state, timer, geo). */
void lb_ctx_push(lua_State *L, rt_processor *p);
/* The light userdata that ctx.reject raises; the pcall path turns it into `rejected`. */
extern const char lb_reject_marker;

#endif
