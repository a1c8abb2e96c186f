/* stopsig.c - see stopsig.h. */
#include <pthread.h>
#include <signal.h>

#include "stopsig.h"

static int mask(int how)
{
    sigset_t set;
    if (sigemptyset(&set) < 0 || sigaddset(&set, SIGTERM) < 0 || sigaddset(&set, SIGINT) < 0)
        return -1;
    return pthread_sigmask(how, &set, NULL) == 0 ? 0 : -1;
}

int rt_stop_signals_hold(void)
{
    return mask(SIG_BLOCK);
}

int rt_stop_signals_release(void)
{
    return mask(SIG_UNBLOCK);
}
