/* source_file.c - NDJSON source.
 *
 * epoll cannot watch regular files, so a regular file is read in chunks by a timer
 * that re-arms itself with a zero timeout: the loop still serves the admin endpoint
 * and signals between chunks. Pipes and terminals use a plain read event. Blank lines are skipped;
 * a trailing \r is dropped (CRLF files). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void deliver(rt_source_file *s, const char *p, size_t n)
{
    s->line++;
    if (n && p[n - 1] == '\r')
        n--;
    if (blank(p, n))
        return;
    rt_origin origin = { .file = s->label, .line = s->line };
    s->cb.record(s->cb.arg, p, n, &origin);
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
