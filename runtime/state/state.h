/* state.h - keyed state of one processor name: values (serialized by the bindings) per
 * (input partition, key), with an optional time to live, and usage counters. */
#ifndef RT_STATE_H
#define RT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "changes.h"
#include "keymap.h"

typedef struct rt_state_value {
    int64_t expires_ms;     /* processing time; 0 for never */
    size_t len;
    char data[];
} rt_state_value;

typedef struct rt_state {
    char *name;             /* the processor's name: state outlives a reload */
    rt_keymap map;
    rt_changes *changes;    /* state.changelog: every change is noted here; or NULL */
    /* usage counters */
    size_t bytes;           /* keys and values held */
    size_t undo_bytes;      /* replaced values kept by the undo logs of calls running */
    uint64_t expired;       /* values dropped by their TTL */
    uint64_t keys_split;    /* new keys another input partition already held */
    int ttl_set;            /* a value with a TTL was stored: rt_state_sweep has work */
    size_t sweep_at;        /* the slot rt_state_sweep looks at next */
} rt_state;

/* An empty store for processor `name`; -1 when out of memory. */
int  rt_state_init(rt_state *st, const char *name);
/* The live value of (partition, key) at processing time `now_ms`, or NULL; an
 * expired one is dropped here. */
const rt_state_value *rt_state_get(rt_state *st, int32_t partition, const char *key,
                                   size_t klen, int64_t now_ms);
/* Store a copy of the value, living until `expires_ms` (0: never). -1 when out of
 * memory (the old value is kept). With `undo`, the value replaced is kept there
 * instead of freed (see rt_state_undo). */
int  rt_state_set(rt_state *st, rt_buf *undo, int32_t partition, const char *key,
                  size_t klen, const char *val, size_t vlen, int64_t expires_ms);
/* Remove (partition, key); 1 when it was there, else 0. `undo` as for rt_state_set;
 * -1 only when the undo log cannot grow (nothing removed). */
int  rt_state_del(rt_state *st, rt_buf *undo, int32_t partition, const char *key,
                  size_t klen);
/* The end of a call that wrote through the undo log `undo`: `keep` forgets the values
 * it replaced, otherwise they are put back, newest write undone first, so a call that
 * failed leaves the state as it found it. The log is empty afterwards. */
void rt_state_undo(rt_state *st, rt_buf *undo, int keep);
/* Look at the next `slots` slots of the map (from where the last sweep stopped, round
 * and round) and drop the values expired at `now_ms`; how many. Bounded, so that the
 * loop can sweep between events; nothing to do until a value with a TTL is stored. */
size_t rt_state_sweep(rt_state *st, size_t slots, int64_t now_ms);
/* Forget every value of `partition` (before its checkpoint is restored). */
void rt_state_drop_partition(rt_state *st, int32_t partition);
/* Values held. */
size_t rt_state_count(const rt_state *st);
/* Release everything. */
void rt_state_free(rt_state *st);

/* A new (partition, key) of `map`: when another partition holds the key too, count it in
 * *split and, the first time, say so in the log (`what` and `name` say whose key). State
 * and windows are per input partition, so such a key's values and counts are split. */
void rt_state_split_check(const rt_keymap *map, uint64_t *split, const char *what,
                          const char *name, int32_t partition, const char *key, size_t klen);

#endif
