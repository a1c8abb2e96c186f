/* log.c - leveled log lines to stderr, one write per line so lines never interleave.
 *
 * log.format=json writes one JSON object per line ({"time","level","worker","msg"}) for
 * collectors such as Loki or Elasticsearch; text is for people. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static enum rt_log_level min_level = RT_LOG_INFO;
static int json_format;
static const char *const level_names[] = { "debug", "info", "warn", "error" };
static int worker = -1;     /* supervised worker number, -1 outside one */
static char progress[256];  /* the status line shown under the log on a terminal */
static size_t progress_len;

void rt_log_set_prefix(int n)
{
    worker = n;
}

void rt_log_set_level(enum rt_log_level level)
{
    min_level = level;
}

int rt_log_set_format(const char *name)
{
    if (strcmp(name, "text") && strcmp(name, "json"))
        return -1;
    json_format = strcmp(name, "json") == 0;
    return 0;
}

int rt_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf5 || len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Append `msg` to `out` as the body of a JSON string. Messages quote input, which may
 * hold quotes, control bytes or invalid UTF-8: those are escaped or become U+FFFD. */
static size_t json_escape(char *out, size_t cap, const char *msg)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)msg;
    size_t n = strlen(msg);
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else if (c < 0x80) {
            out[o++] = (char)c;
        } else {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                memcpy(out + o, "\\ufffd", 6);
                o += 6;
            } else {
                memcpy(out + o, p + i, len);
                o += len;
                i += len - 1;
            }
        }
    }
    return o;
}

/* Copy `msg` for a text line: control bytes become \n, \r, \t or \xNN, so that input
 * quoted in a message (a domain, ctx.log text) cannot start a forged log line. */
static size_t text_escape(char *out, size_t cap, const char *msg)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 5 < cap; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != 0x7f)
            out[o++] = (char)c;
        else if (c == '\n' || c == '\r' || c == '\t')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    return o;
}

void rt_log(enum rt_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[2048], line[4096 + 128];
    int64_t now = rt_epoch_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';
    char when[64];     /* room for any int the format could print, so no -O2 build warns */
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now % 1000));
    size_t len;
    if (json_format) {
        char who[32] = "";
        if (worker >= 0)
            snprintf(who, sizeof who, "\"worker\":%d,", worker);
        len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",%s\"msg\":\"",
                               when, level_names[level], who);
        len += json_escape(line + len, sizeof line - len - 3, msg);
        memcpy(line + len, "\"}", 2);
        len += 2;
    } else {
        char who[32] = "";
        if (worker >= 0)
            snprintf(who, sizeof who, "worker %d: ", worker);
        len = (size_t)snprintf(line, sizeof line - 1, "%s %-5s %s", when, level_names[level],
                               who);
        len += text_escape(line + len, sizeof line - 1 - len, msg);
    }
    line[len++] = '\n';
    /* Nothing useful can be done if stderr is gone. */
    ssize_t w;
    if (progress_len)   /* the line goes where the status line was, which comes back under */
        w = write(STDERR_FILENO, "\r\033[K", 4);
    w = write(STDERR_FILENO, line, len);
    if (progress_len)
        w = write(STDERR_FILENO, progress, progress_len);
    (void)w;
}

void rt_log_progress(const char *text)
{
    size_t n = strlen(text);
    if (n > sizeof progress - 5)
        n = sizeof progress - 5;
    /* "\r\033[K" clears the old status line before the new one is drawn. */
    memcpy(progress, "\r\033[K", 4);
    memcpy(progress + 4, text, n);
    progress_len = n ? n + 4 : 0;
    ssize_t w = write(STDERR_FILENO, progress, n ? progress_len : 4);
    (void)w;
}
