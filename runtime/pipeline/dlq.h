/* dlq.h - dead-letter records: the original bytes, why they were refused, and where from. */
#ifndef RT_DLQ_H
#define RT_DLQ_H

#include "event.h"
#include "sink.h"

/* Write one dead-letter record for `ev` (its raw bytes and origin) to `s`, held on
 * `ticket` until acknowledged. `processor` names the processor involved, or NULL.
 * A sink with raw_dead_letters gets the original bytes as the value and the rest as
 * headers; others get one JSON envelope. Past max_raw bytes (0: no limit) raw is cut
 * and marked with its full size. -1 when the sink failed. */
int rt_dlq_write(rt_sink *s, const rt_event *ev, const rt_reject *why, const char *processor,
                 rt_ticket *ticket, size_t max_raw);

#endif
