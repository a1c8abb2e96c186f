/* clock.c - one place that reads the clocks, so every deadline uses the same one. */
#include <sys/time.h>
#include <time.h>

#include "clock.h"

int64_t rt_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double rt_clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double rt_epoch_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

int64_t rt_epoch_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t rt_epoch_coarse_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) < 0)
        return rt_epoch_ms();       /* a kernel without it */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rt_clock_sleep_until(int64_t at, int64_t until)
{
    int64_t wait = (at < until ? at : until) - rt_clock_ms();
    if (wait > 0) {
        struct timespec ts = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
}
