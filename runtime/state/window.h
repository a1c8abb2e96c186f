/* window.h - keyed event-time windows of one processor (tumbling, sliding, session),
 * fired by the watermark, with allowed lateness, as Flink's window operator. */
#ifndef RT_WINDOW_H
#define RT_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "changes.h"
#include "keymap.h"

enum rt_window_kind { RT_WINDOW_TUMBLING, RT_WINDOW_SLIDING, RT_WINDOW_SESSION };
enum rt_window_agg { RT_AGG_COUNT, RT_AGG_SUM, RT_AGG_MIN, RT_AGG_MAX, RT_AGG_AVG, RT_AGG_LUA };

/* One entry of a processor's `windows` table. */
typedef struct rt_window_def {
    char *name;
    int name_ref;           /* the name as a Lua string, a registry ref in the state */
    enum rt_window_kind kind;
    int64_t size, slide, gap, lateness;     /* milliseconds */
    char *key;              /* record path of the key ("payload.deviceId"); NULL: one key */
    enum rt_window_agg agg;
    char *field;            /* path of the aggregated number (sum, min, max, avg) */
    int add_ref, result_ref, merge_ref;     /* RT_AGG_LUA: registry refs in the state */
    int merge_sum;          /* merge = "sum": merged by eddy (lb_value_merge_sum), no ref */
    /* Sliding, with add and merge: the Lua accumulator is kept once per slice of
     * gcd(size, slide), and a window merges the slices it spans when it fires (Flink's
     * slicing), so add runs once an event instead of once per window it joins. */
    int sliced;
} rt_window_def;

/* One window of one key: [start, end); or, for a sliced definition, one slice of
 * them, [start, start + gcd(size, slide)), which holds the count and the Lua
 * accumulator and never fires itself. A checkpoint keeps both in one list: a slice is
 * told by its length, and its `due` there is its key's fired_to. */
typedef struct rt_pane {
    int64_t start, end;
    int64_t due;            /* when the watermark reaches it: fire, or clean up if fired */
    int fired;              /* times fired so far */
    int slice;              /* 1: a slice (never due, never fired) */
    uint64_t count, n;      /* events; events with a number in `field` */
    double sum, min, max;
    char *acc;              /* RT_AGG_LUA: the accumulator, serialized */
    size_t acc_len;
} rt_pane;

/* The open windows of one key of one definition. */
typedef struct rt_wkey {
    const char *key;        /* the key map's copy: it goes when the key leaves the map */
    size_t klen;
    int32_t partition;
    size_t def;
    rt_pane *panes;
    size_t n, cap;
    /* A sliced definition's windows have no panes (but those restored from a
     * checkpoint of a version without merge): they are read off the slices. */
    rt_pane *slices;        /* in start order */
    size_t nslices, capslices;
    int64_t fired_to;       /* sliced: every window that ends here or before has fired */
    int64_t slices_due;     /* sliced: the time of the slices' live due entry, if any */
    size_t queued;          /* due entries that point here: freed only at 0 and n 0 */
} rt_wkey;

typedef struct rt_wdue {
    int64_t time;
    /* The key's definition and first 7 bytes, in an order that agrees with the full
     * comparison: most entries of one time (every key of an aligned slide) are told
     * apart here, without reading their keys out of memory. */
    uint64_t order;
    rt_wkey *k;
    int64_t start;
} rt_wdue;

/* The due entries of one time, in the order they were queued (window.c). */
typedef struct rt_wbucket rt_wbucket;
#define RT_WBUCKET_RECENT 8

/* What firing and the Lua aggregation need from the processor (processor.c). */
typedef struct rt_window_calls {
    void *arg;
    /* acc = add(acc, ev) for each of the n panes an event joins, in one call: every
     * pane's accumulator bytes are replaced (malloc'd), or none when it fails. */
    int (*add)(void *arg, const rt_window_def *d, const rt_event *ev, rt_pane *const *panes,
               size_t n);
    /* acc = merge(a, b) into `into` (sessions). */
    int (*merge)(void *arg, const rt_window_def *d, rt_pane *into, const rt_pane *from);
    /* on_window(win, ctx) for a pane that is due. */
    int (*fire)(void *arg, const rt_window_def *d, const rt_wkey *k, const rt_pane *p);
} rt_window_calls;

typedef struct rt_windows {
    rt_window_def *defs;    /* owned by the processor */
    size_t ndefs;
    rt_keymap *keys;        /* per definition: (partition, key) -> rt_wkey */
    /* What is due, by time: a min-heap of buckets, one (mostly) per time, each sorted
     * when its time comes. Every key of an aligned slide is due at one time; a heap of
     * their entries cost a cache miss per level to pop. */
    rt_wbucket **due;
    size_t ndue, capdue;
    rt_wbucket *recent[RT_WBUCKET_RECENT];  /* the buckets last queued to, by time hash */
    rt_pane **joins;        /* scratch: the panes one event joins */
    size_t capjoins;
    int64_t watermark;      /* the last one applied */
    rt_changes *changes;    /* state.changelog: every key changed is noted here; or NULL */
    /* usage counters */
    size_t panes;           /* windows; slices not counted */
    size_t slices;
    uint64_t fired, late, refired;
    uint64_t keys_split;    /* new keys another input partition already held */
} rt_windows;

#define RT_WATERMARK_MIN INT64_MIN
#define RT_WATERMARK_END INT64_MAX     /* a bounded input ended: everything fires */

/* Empty windows for `defs`; -1 when out of memory. */
int  rt_windows_init(rt_windows *ws, rt_window_def *defs, size_t ndefs);
/* Add a processed event to every window definition. *late is set when every window
 * it belongs to is past its allowed lateness (the event goes to the `late` output);
 * a window it joins after firing fires again. -1 on an error with `err` set (a Lua
 * error of add/merge/on_window, out of memory). */
int  rt_windows_add(rt_windows *ws, const rt_event *ev, int32_t partition,
                    const rt_window_calls *calls, int *late, char *err, size_t errlen);
/* Apply a new watermark: fire what is due, in end order, and drop what is past its
 * lateness. A failing on_window is reported by calls->fire; the rest still fire. */
void rt_windows_advance(rt_windows *ws, int64_t watermark, const rt_window_calls *calls);
/* Forget every window of `partition` (before its checkpoint is restored). */
void rt_windows_drop_partition(rt_windows *ws, int32_t partition);
/* Forget the panes of one key of definition `def` (a newer copy of them follows). */
void rt_windows_forget(rt_windows *ws, size_t def, int32_t partition, const char *key,
                       size_t klen);
/* Put back a pane of definition `def` read from a checkpoint: a copy of `p` whose
 * accumulator is taken over. -1 when out of memory (the accumulator is freed). */
int  rt_windows_restore(rt_windows *ws, size_t def, int32_t partition, const char *key,
                        size_t klen, const rt_pane *p);
/* Release the panes (not the definitions). */
void rt_windows_free(rt_windows *ws);
/* Release definitions read from a processor's table. */
void rt_window_defs_free(rt_window_def *defs, size_t n);

#endif
