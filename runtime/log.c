/* log.c - leveled log lines to stderr, one write per line so lines never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum rt_log_level min_level = RT_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };
static char prefix[32];     /* "worker 1: " in a supervised worker */

void rt_log_set_prefix(int worker)
{
    snprintf(prefix, sizeof prefix, "worker %d: ", worker);
}

void rt_log_set_level(enum rt_log_level level)
{
    min_level = level;
}

int rt_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void rt_log(enum rt_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level],
                     prefix);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* Nothing useful can be done if stderr is gone. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
