/* event.h - the BusinessEvent: decoding and validation of one raw record. */
#ifndef RT_EVENT_H
#define RT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "json_tape.h"

/* Where a record came from, for dead-letter records and logs. */
typedef struct rt_origin {
    const char *file;       /* file source: path, or "stdin"; NULL for Kafka */
    long long line;
    const char *topic;      /* Kafka source: topic, partition, offset */
    int32_t partition;
    int64_t offset;
} rt_origin;

/* "topic/partition@offset" or "file:line", for log lines. */
const char *rt_origin_text(const rt_origin *o, char *buf, size_t len);

typedef struct rt_event {
    rt_jtape tape;          /* the decoded record (node 0 the top object); its buffers are
                             * kept for the next record decoded into this event */
    int decoded;            /* the tape holds this record (its fields may be read) */
    uint32_t payload;       /* node of the payload object */
    const char *domain, *type, *event_id;   /* in the tape */
    const char *version, *source;   /* NULL when absent */
    long long timestamp;    /* epoch milliseconds */
    const char *raw;        /* the original bytes, not owned */
    size_t raw_len;
    rt_origin origin;
} rt_event;

/* Why a record is dead-lettered. Code compares these; the text (rt_reason_names, with
 * ":<field>" for the field reasons) is what users see in dead letters and metrics. */
typedef enum rt_reason {
    RT_REASON_NONE,
    RT_REASON_BAD_JSON,
    RT_REASON_TOO_DEEP,
    RT_REASON_TOO_LARGE,
    RT_REASON_MISSING_FIELD,
    RT_REASON_BAD_TYPE,
    RT_REASON_BAD_VALUE,
    RT_REASON_NO_ROUTE,
    RT_REASON_PROCESSOR_ERROR,
    RT_REASON_REJECTED,
    RT_REASON_TIMEOUT,
    RT_REASON_MEMORY,
    RT_REASON_TOO_MANY_EMITS,
    RT_REASON_OUTPUT_TOO_LARGE,
    RT_REASON_QUARANTINED,
    RT_REASON_LOOKUP_FAILED,
    RT_REASON_SINK_ERROR,
    RT_REASON_TRUNCATED,
    RT_REASON_LATE,
    RT_NREASONS
} rt_reason;
extern const char *const rt_reason_names[RT_NREASONS];

/* Why a record was refused: the reason, its text, and a human detail. */
typedef struct rt_reject {
    rt_reason code;
    char reason[64];        /* bad_json, too_large, missing_field:<f>, bad_type:<f>, ... */
    char detail[256];
} rt_reject;

/* What a record may be: event.max.bytes and event.timestamp.max. */
typedef struct rt_event_limits {
    size_t max_bytes;
    long long timestamp_max;    /* epoch ms */
} rt_event_limits;

/* The value at a record path ("payload.merchantId") of a decoded event as key text
 * (a number's digits, true/false), in the tape or in buf[len]; *klen its length. NULL
 * when absent, null, an object or an array. */
const char *rt_event_key(const rt_event *ev, const char *path, char *buf, size_t len,
                         size_t *klen);
/* Decode and validate `raw` (ev zeroed the first time, or cleared since). 0 and a
 * filled event, or -1 and `why` filled; the fields decoded before the failure stay
 * readable. Call rt_event_clear either way. */
int  rt_event_decode(rt_event *ev, const char *raw, size_t len, const rt_event_limits *lim,
                     rt_reject *why);
/* Forget the decoded record, keeping small buffers for the next one. */
void rt_event_clear(rt_event *ev);
/* Release the buffers too. */
void rt_event_free(rt_event *ev);
/* Fill a rejection. */
void rt_reject_set(rt_reject *why, rt_reason code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a reason about one field: its text is "<reason>:<field>". */
void rt_reject_field(rt_reject *why, rt_reason code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
