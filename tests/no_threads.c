/* no_threads.c - an LD_PRELOAD shim for tests: pthread_create always fails (EAGAIN), as
 * when a container's pids limit is reached. t_limits.sh runs eddy under it to check
 * that processor.timeout.ms still stops a runaway call without the watchdog thread. */
#include <errno.h>
#include <pthread.h>

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                   void *arg)
{
    (void)thread;
    (void)attr;
    (void)start;
    (void)arg;
    return EAGAIN;
}
