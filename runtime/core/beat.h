/* beat.h - what a worker shows its supervisor through shared memory: the Lua call it
 * is in (since when, which processor, which input record), its admin port, and the
 * records the supervisor marked as poison after killing a worker stuck on them. */
#ifndef RT_BEAT_H
#define RT_BEAT_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "event.h"

#define RT_MAX_WORKERS 64
#define RT_POISON_SLOTS 64
#define RT_BEAT_FILE (-2)   /* partition of a file source's record: offset is its line */

typedef struct rt_beat {
    int64_t since_ms;       /* monotonic start of the Lua call in progress; 0 idle */
    int64_t offset;         /* its input record: Kafka offset, or line (RT_BEAT_FILE) */
    int32_t partition;      /* -1: no input record (a window or timer call) */
    char topic[128];        /* topic, or the file source's label */
    char processor[64];
    int admin_port;         /* the worker's own admin endpoint, on 127.0.0.1 */
    int64_t input_next;     /* file source relayed by the supervisor: lines before this
                             * one are done (their outputs acknowledged) */
    pid_t pid;
} rt_beat;

/* A record whose call the supervisor killed: workers dead-letter it as `timeout`
 * instead of running it again. */
typedef struct rt_poison {
    char topic[128];
    int32_t partition;
    int64_t offset;
    char processor[64];
    int64_t timeout_ms;
} rt_poison;

typedef struct rt_shared {
    uint32_t npoison;       /* written: poison[(npoison - 1) % RT_POISON_SLOTS] last */
    rt_poison poison[RT_POISON_SLOTS];
    rt_beat beats[RT_MAX_WORKERS];
} rt_shared;

/* Copy s into a beat's field of size n unless it holds s already: the same topic and
 * processor come call after call, and strncpy pads the whole field each time. */
static inline void rt_beat_name(char *field, size_t n, const char *s)
{
    if (strncmp(field, s, n - 1) != 0)
        strncpy(field, s, n - 1);
}

/* A Lua call starts at now_ms (rt_clock_ms); origin NULL: a window or timer call, no
 * input record. */
static inline void rt_beat_enter(rt_beat *b, const char *processor, const rt_origin *o,
                                 int64_t now_ms)
{
    if (!b)
        return;
    b->partition = !o ? -1 : o->topic ? o->partition : o->file ? RT_BEAT_FILE : -1;
    if (b->partition != -1) {
        b->offset = o->topic ? o->offset : o->line;
        rt_beat_name(b->topic, sizeof b->topic, o->topic ? o->topic : o->file);
    }
    rt_beat_name(b->processor, sizeof b->processor, processor);
    __atomic_store_n(&b->since_ms, now_ms, __ATOMIC_RELEASE);
}

/* The call is over. */
static inline void rt_beat_leave(rt_beat *b)
{
    if (b)
        __atomic_store_n(&b->since_ms, 0, __ATOMIC_RELEASE);
}

/* "topic/partition@offset" or "file:line" of a beat's or poison's record. */
const char *rt_beat_record(const char *topic, int32_t partition, int64_t offset, char *buf,
                           size_t len);

/* The poison entry for this record, or NULL (the common case costs one load). */
const rt_poison *rt_poison_find(const rt_shared *s, const rt_origin *o);

#endif
