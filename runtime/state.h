/* state.h - keyed state of one processor name: values (serialized by the bindings) per
 * (input partition, key), with an optional time to live, and usage counters. */
#ifndef RT_STATE_H
#define RT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "keymap.h"

typedef struct rt_state_value {
    int64_t expires_ms;     /* processing time; 0 for never */
    size_t len;
    char data[];
} rt_state_value;

typedef struct rt_state {
    char *name;             /* the processor's name: state outlives a reload */
    rt_keymap map;
    /* usage counters */
    size_t bytes;           /* keys and values held */
    uint64_t expired;       /* values dropped by their TTL */
} rt_state;

/* An empty store for processor `name`; -1 when out of memory. */
int  rt_state_init(rt_state *st, const char *name);
/* The live value of (partition, key) at processing time `now_ms`, or NULL; an
 * expired one is dropped here. */
const rt_state_value *rt_state_get(rt_state *st, int32_t partition, const char *key,
                                   size_t klen, int64_t now_ms);
/* Store a copy of the value, living until `expires_ms` (0: never). -1 when out of
 * memory (the old value is kept). */
int  rt_state_set(rt_state *st, int32_t partition, const char *key, size_t klen,
                  const char *val, size_t vlen, int64_t expires_ms);
/* Remove (partition, key); 1 when it was there, else 0. */
int  rt_state_del(rt_state *st, int32_t partition, const char *key, size_t klen);
/* Drop every value expired at `now_ms`; how many. */
size_t rt_state_expire(rt_state *st, int64_t now_ms);
/* Forget every value of `partition` (before its checkpoint is restored). */
void rt_state_drop_partition(rt_state *st, int32_t partition);
/* Values held. */
size_t rt_state_count(const rt_state *st);
/* Release everything. */
void rt_state_free(rt_state *st);

#endif
