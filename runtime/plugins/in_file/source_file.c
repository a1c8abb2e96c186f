/* source_file.c - NDJSON source.
 *
 * epoll cannot watch regular files, so a regular file is read in chunks by a timer
 * that re-arms itself with a zero timeout: the loop still serves the admin endpoint
 * and signals between chunks. Pipes and terminals use a plain read event. Blank lines are skipped;
 * a trailing \r is dropped (CRLF files). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beat.h"
#include "log.h"
#include "source_file.h"

#define READ_CHUNK (64 * 1024)

static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

static void finish(rt_source_file *s, int failed);

static void deliver(rt_source_file *s, const char *p, size_t n)
{
    s->line++;
    if (n && p[n - 1] == '\r')
        n--;
    if (blank(p, n))
        return;
    rt_origin origin = { .file = s->label, .line = s->line };
    rt_ticket *ticket = NULL;
    if (s->part && !(ticket = rt_track_begin(s->tracker, s->part, s->line, 0))) {
        rt_error("source %s: out of memory at line %lld; stopping", s->label, s->line);
        finish(s, 1);
        return;
    }
    s->cb.record(s->cb.arg, p, n, &origin, ticket);
}

static void finish(rt_source_file *s, int failed)
{
    s->done = 1;
    event_del(s->ev);
    rt_origin origin = { .file = s->label, .line = s->line + 1 };
    s->cb.end(s->cb.arg, failed, s->pending.len ? s->pending.data : NULL, s->pending.len,
              &origin);
    s->pending.len = 0;
}

/* Come back for the next chunk of a regular file through a zero timeout: event_active
 * would run in the same loop pass and starve timers, signals and the admin endpoint. */
static void next_chunk(rt_source_file *s)
{
    static const struct timeval zero = { 0, 0 };
    if (event_add(s->ev, &zero) < 0) {
        rt_error("source %s: cannot schedule the next read", s->label);
        finish(s, 1);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    rt_source_file *s = arg;
    if (s->done)
        return;
    if (rt_buf_reserve(&s->pending, READ_CHUNK) < 0) {
        rt_error("source %s: out of memory at line %lld", s->label, s->line + 1);
        finish(s, 1);
        return;
    }
    ssize_t n = read(s->fd, s->pending.data + s->pending.len, READ_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        if (s->regular)
            next_chunk(s);
        return;
    }
    if (n < 0) {
        rt_error("source %s: read failed after line %lld: %s", s->label, s->line,
                 strerror(errno));
        finish(s, 1);
        return;
    }
    if (n == 0) {
        /* A last line without a newline is still a whole record. */
        if (s->pending.len) {
            deliver(s, s->pending.data, s->pending.len);
            s->pending.len = 0;
        }
        s->cb.batch_end(s->cb.arg);
        finish(s, 0);
        return;
    }
    /* Only the new bytes can hold a newline; what came before had none. */
    size_t start = 0, scan = s->pending.len;
    s->pending.len += (size_t)n;
    char *data = s->pending.data;
    if (s->skipping) {
        char *nl = memchr(data + scan, '\n', s->pending.len - scan);
        if (!nl) {
            s->pending.len = 0;
            goto read_on;
        }
        s->skipping = 0;
        start = scan = (size_t)(nl - data) + 1;
    }
    for (;;) {
        char *nl = memchr(data + scan, '\n', s->pending.len - scan);
        if (!nl)
            break;
        deliver(s, data + start, (size_t)(nl - (data + start)));
        if (s->done)
            return;
        start = scan = (size_t)(nl - data) + 1;
    }
    memmove(data, data + start, s->pending.len - start);
    s->pending.len -= start;
    if (s->max_line && s->pending.len > s->max_line + 1) {
        deliver(s, data, s->max_line + 1);      /* refused as too_large */
        s->pending.len = 0;
        s->skipping = 1;
    }
read_on:
    s->cb.batch_end(s->cb.arg);
    if (s->regular && !s->done && !s->paused)
        next_chunk(s);
}

void rt_source_file_limit(rt_source_file *s, size_t max_line)
{
    s->max_line = max_line;
}

int rt_source_file_open(rt_source_file *s, struct event_base *base, const char *path,
                        const rt_source_cb *cb, char *err, size_t errlen)
{
    int fd = STDIN_FILENO;
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            memset(s, 0, sizeof *s);
            s->fd = -1;
            snprintf(err, errlen, "source.file.path: cannot open %s: %s", path,
                     strerror(errno));
            return -1;
        }
    }
    return rt_source_file_open_fd(s, base, fd, fd != STDIN_FILENO,
                                  fd != STDIN_FILENO ? path : "stdin", 0, cb, err, errlen);
}

int rt_source_file_open_fd(rt_source_file *s, struct event_base *base, int fd, int owned,
                           const char *label, long long line, const rt_source_cb *cb,
                           char *err, size_t errlen)
{
    struct stat st;
    const char *path = label;
    memset(s, 0, sizeof *s);
    s->cb = *cb;
    s->fd = fd;
    s->owned = owned;
    s->line = line;
    s->label = strdup(label);
    if (!s->label || fstat(s->fd, &st) < 0) {
        snprintf(err, errlen, "source %s: %s", path, s->label ? strerror(errno) : "no memory");
        goto fail;
    }
    s->regular = S_ISREG(st.st_mode);
    if (s->regular) {
        static const struct timeval zero = { 0, 0 };
        s->ev = event_new(base, -1, 0, on_read, s);
        if (s->ev && event_add(s->ev, &zero) < 0) {
            event_free(s->ev);
            s->ev = NULL;
        }
    } else {
        s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, on_read, s);
        if (s->ev && event_add(s->ev, NULL) < 0) {
            event_free(s->ev);
            s->ev = NULL;
        }
    }
    if (!s->ev) {
        snprintf(err, errlen, "source %s: cannot register with the event loop", path);
        goto fail;
    }
    return 0;
fail:
    rt_source_file_close(s);
    return -1;
}

/* Give every line a ticket of `tracker` (its partition: the label), so that the
 * tracker's store callback hears which lines are done: a supervisor's relay keeps the
 * lines not done for the next worker. -1 when out of memory. */
static int track_lines(rt_source_file *s, rt_tracker *tracker)
{
    s->tracker = tracker;
    s->part = rt_track_part_get(tracker, s->label, RT_BEAT_FILE);
    return s->part ? 0 : -1;
}

void rt_source_file_pause(rt_source_file *s, int pause)
{
    if (!s->ev || s->done || pause == s->paused)
        return;
    s->paused = pause;
    if (pause) {
        event_del(s->ev);
    } else if (s->regular) {
        next_chunk(s);
    } else if (event_add(s->ev, NULL) < 0) {
        rt_error("source %s: cannot resume reading", s->label);
        finish(s, 1);
    }
}

void rt_source_file_stop(rt_source_file *s)
{
    if (s->ev && !s->done)
        finish(s, 0);
}

void rt_source_file_close(rt_source_file *s)
{
    if (s->ev)
        event_free(s->ev);
    if (s->owned && s->fd >= 0)
        close(s->fd);
    rt_buf_free(&s->pending);
    free(s->label);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* ---- the registration: source.type=file ---- */

static int file_open(rt_source *src, const rt_source_env *env, char *err, size_t errlen)
{
    const char *path = rt_config_get(env->cfg, "source.file.path");
    rt_source_file *s = calloc(1, sizeof *s);
    int rc;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->fd = -1;
    src->impl = s;
    if (env->input_fd <= 0) {
        rc = rt_source_file_open(s, env->base, path, &env->cb, err, errlen);
    } else {
        rc = rt_source_file_open_fd(s, env->base, env->input_fd, 1,
                                    strcmp(path, "-") ? path : "stdin", env->input_line,
                                    &env->cb, err, errlen);
        if (rc == 0 && track_lines(s, env->tracker) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0)
        rt_source_file_limit(s, env->max_record);
    return rc;
}

static void file_stop(rt_source *src)
{
    rt_source_file_stop(src->impl);
}

static void file_pause(rt_source *src, int pause)
{
    rt_source_file_pause(src->impl, pause);
}

static void file_where(rt_source *src, char *buf, size_t len)
{
    const rt_source_file *s = src->impl;
    snprintf(buf, len, "%s:%lld", s->label ? s->label : "?", s->line);
}

static int file_close(rt_source *src)
{
    rt_source_file_close(src->impl);
    free(src->impl);
    return 0;
}

/* The keys this kind reads (`eddy config` lists them; the config checks them). */
static const rt_conf_key file_keys[] = {
    { "source.file.path", RT_CONF_STRING, "-", 0, NULL, 0, 0,
      "NDJSON input file for source.type=file; - reads stdin" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_source_kind rt_source_kind_file = {
    .name = "file", .keys = file_keys, .open = file_open, .stop = file_stop,
    .pause = file_pause, .where = file_where, .close = file_close,
};
