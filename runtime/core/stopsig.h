/* stopsig.h - SIGTERM and SIGINT held from the start of `eddy run` until its loop
 * handles them: a stop asked while processors load is then a clean stop (exit 0), not
 * a death by the default action (exit 143; seen under AddressSanitizer, whose slower
 * start-up widens that window). */
#ifndef RT_STOPSIG_H
#define RT_STOPSIG_H

/* Block both in the calling thread (and the threads it starts from now on). -1 on
 * failure (nothing changed). */
int rt_stop_signals_hold(void);
/* Unblock them: one that came meanwhile is delivered now, to the handler installed. */
int rt_stop_signals_release(void);

#endif
