/* log.h - leveled log lines to stderr. */
#ifndef RT_LOG_H
#define RT_LOG_H

enum rt_log_level { RT_LOG_DEBUG, RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR };

/* Set the lowest level that is printed. */
void rt_log_set_level(enum rt_log_level level);
/* Start every line with "worker N: " (a worker under the supervisor). */
void rt_log_set_prefix(int worker);
/* "text" (people) or "json" (one object per line, for log collectors); -1 when unknown. */
int  rt_log_set_format(const char *name);
/* Parse "debug|info|warn|error"; -1 when unknown. */
int  rt_log_parse_level(const char *name);
/* Print one line: time, level, message. */
void rt_log(enum rt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Show `text` as a status line at the bottom of a terminal, under the log lines, which
 * redraw it; "" removes it. Only for a stderr that is a terminal. */
void rt_log_progress(const char *text);

#define rt_debug(...) rt_log(RT_LOG_DEBUG, __VA_ARGS__)
#define rt_info(...)  rt_log(RT_LOG_INFO, __VA_ARGS__)
#define rt_warn(...)  rt_log(RT_LOG_WARN, __VA_ARGS__)
#define rt_error(...) rt_log(RT_LOG_ERROR, __VA_ARGS__)

#endif
