/* clock.h - the two clocks the runtime reads: monotonic milliseconds for deadlines and
 * backoff, epoch milliseconds for processing time (ctx.now, TTLs, timers, records). */
#ifndef RT_CLOCK_H
#define RT_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: never jumps, meaningless across processes. */
int64_t rt_clock_ms(void);
/* Wall-clock time, milliseconds since the epoch. */
int64_t rt_epoch_ms(void);

#endif
