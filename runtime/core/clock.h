/* clock.h - the two clocks the runtime reads, and the only place that reads them:
 * monotonic time for deadlines, backoff and durations; epoch time for processing time
 * (ctx.now, TTLs, timers, records, log lines). */
#ifndef RT_CLOCK_H
#define RT_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: never jumps, meaningless across processes. */
int64_t rt_clock_ms(void);
/* The same in seconds, to the nanosecond: durations (latency histograms). */
double  rt_clock_s(void);
/* Wall-clock time, milliseconds since the epoch. */
int64_t rt_epoch_ms(void);
/* The same in seconds, to the microsecond. */
double  rt_epoch_s(void);
/* Wall-clock milliseconds as of the kernel's last tick (up to 1000/CONFIG_HZ ms behind,
 * 4 ms here): a quarter of rt_epoch_ms's cost (5 ns against 22 ns: no timer read). For
 * what each record reads and a tick's error cannot matter to: keyed-state TTLs and the
 * watermark's processing time. */
int64_t rt_epoch_coarse_ms(void);
/* Sleep until rt_clock_ms() reaches `at`, but not past `until` (a drain waiting out a
 * retry backoff without the event loop). */
void    rt_clock_sleep_until(int64_t at, int64_t until);

#endif
