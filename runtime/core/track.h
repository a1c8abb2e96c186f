/* track.h - at-least-once bookkeeping: which input offsets may be stored.
 *
 * Every event read from a partition gets a ticket. The ticket is held once while the
 * event is processed and once more by every output written for it; sinks release
 * their hold when the output is acknowledged. A partition's offset advances only over
 * a prefix of tickets that are all released, so an offset is stored only after every
 * output of that event and of all earlier events of its partition is acknowledged. */
#ifndef RT_TRACK_H
#define RT_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

typedef struct rt_track_part rt_track_part;

typedef struct rt_ticket {
    rt_track_part *part;
    int64_t offset;
    int64_t born_ms;        /* the record's Kafka timestamp (epoch ms), 0 if none */
    /* With a born_ms, for the stages of its latency (epoch seconds): when the source
     * took it, and when its processing hold was released (0 until then). */
    double read_s, processed_s;
    uint32_t holds;
    struct rt_ticket *next;
} rt_ticket;

/* The stages of a record's time from its Kafka timestamp to done, which add up to
 * record-e2e-latency: before eddy took it from its consumer (the producer's batching,
 * the broker, the fetch, the consumer's queue); its processing (decode, the Lua call,
 * waits for lookups and for the events before it); its outputs' delivery (until the
 * last is acknowledged, or produced under exactly_once). */
enum rt_track_stage { RT_STAGE_FETCH, RT_STAGE_PROCESS, RT_STAGE_DELIVER, RT_STAGES };
extern const char *const rt_track_stage_names[RT_STAGES];

/* Called when a partition's committable position moves: `next` is the offset of the
 * first event not yet done (Kafka's convention: last done offset + 1). */
typedef void (*rt_track_store_fn)(void *arg, const char *topic, int32_t partition,
                                  int64_t next);

struct rt_track_part {
    char *topic;
    int32_t partition;
    rt_ticket *head, *tail; /* in-flight tickets in offset order */
    size_t inflight;
    int64_t stored;         /* last `next` reported, -1 before the first */
    rt_track_part *link;
};

typedef struct rt_tracker {
    rt_track_part *parts;
    rt_ticket *free;        /* released tickets, reused */
    rt_track_store_fn store;
    void *arg;
    int hold_stores;        /* positions are stored only as marks (rt_track_store_marks) */
    uint64_t inflight;      /* over all partitions */
    rt_histogram e2e;       /* born_ms to the last hold released (Kafka Streams'
                             * record-e2e-latency), for tickets that have a born_ms */
    rt_histogram stage[RT_STAGES];  /* e2e taken apart, for the same tickets */
} rt_tracker;

/* Start empty; `store` is told each new committable position. */
void rt_track_init(rt_tracker *t, rt_track_store_fn store, void *arg);
/* The partition's bookkeeping, created on first use; NULL when out of memory. */
rt_track_part *rt_track_part_get(rt_tracker *t, const char *topic, int32_t partition);
/* A ticket for the next event of `p` (offsets must increase), held once; `born_ms` the
 * record's timestamp (epoch ms) or 0. NULL: OOM. */
rt_ticket *rt_track_begin(rt_tracker *t, rt_track_part *p, int64_t offset, int64_t born_ms);
/* One more hold (an output written for the event). NULL tickets are ignored. */
void rt_track_hold(rt_ticket *k);
/* Release one hold; a fully released prefix of the partition advances its offset. */
void rt_track_release(rt_tracker *t, rt_ticket *k);
/* Release the processing hold (the one rt_track_begin took), noting when. */
void rt_track_processed(rt_tracker *t, rt_ticket *k);
/* A partition's committable position at one moment (a checkpoint's offsets). */
typedef struct rt_track_mark {
    char *topic;
    int32_t partition;
    int64_t next;
} rt_track_mark;

/* Store no position as it moves: only marks are stored, once the caller has made what
 * they stand for durable (checkpoints, as Flink commits offsets on a checkpoint). */
void rt_track_hold_stores(rt_tracker *t);
/* Every partition's position now, for those that have one. -1 when out of memory. */
int  rt_track_marks(const rt_tracker *t, rt_track_mark **marks, size_t *n);
/* Store the marks (through `store`, when there still is one), then free them. */
void rt_track_store_marks(rt_tracker *t, rt_track_mark *marks, size_t n);
void rt_track_marks_free(rt_track_mark *marks, size_t n);
/* The partition is assigned again and resumes from a checkpoint, maybe behind where it
 * was: its position starts over (none until an event is done), as a new partition's.
 * -1 when events of its last assignment are still in flight (nothing changed). */
int  rt_track_part_restart(rt_tracker *t, const char *topic, int32_t partition);
/* Forget a partition (revoked) once it has nothing in flight; -1 if it has. */
int  rt_track_part_drop(rt_tracker *t, rt_track_part *p);
/* Free everything. */
void rt_track_free(rt_tracker *t);

#endif
