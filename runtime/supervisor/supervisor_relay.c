/* supervisor_relay.c - a file or stdin source under the supervisor. The supervisor
 * reads the input and hands it to its one worker through a pipe, keeping every line the
 * worker has not finished (its outputs acknowledged: beat.input_next). When the worker
 * dies or is killed, the next one is sent those lines again, numbered as before, so
 * nothing read from a pipe is lost and a record marked as poison is recognised. */
#define _GNU_SOURCE     /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "supervisor_int.h"

#define READ_CHUNK (64 * 1024)
#define MAX_AHEAD (1024 * 1024)     /* bytes read but not yet in the pipe: stop reading */

struct rt_relay {
    int in_fd, in_owned, in_regular, eof;
    struct event *in_ev;    /* EV_READ on a pipe or terminal; a zero timer for a file */
    int reading;
    int out_fd;             /* the worker's pipe; -1 while there is none, or after EOF */
    struct event *out_ev;
    rt_buf held;            /* the input from the first line not done on */
    size_t sent;            /* bytes of held written to the current pipe */
    long long line0;        /* lines before held */
    int ended;              /* all of the input went into the current pipe, now closed */
    /* A line longer than event.max.bytes is done (dead-lettered too_large) before its
     * newline is read: its bytes are dropped as they are sent, not held (mid_line), and
     * a new worker is not sent its rest at all (stripping). */
    int mid_line, stripping;
};

static void pump(rt_relay *r);

static void input_arm(rt_relay *r, int on)
{
    static const struct timeval zero = { 0, 0 };
    if (r->eof || on == r->reading)
        return;
    r->reading = on;
    if (!on)
        event_del(r->in_ev);
    else if (event_add(r->in_ev, r->in_regular ? &zero : NULL) < 0)
        rt_error("supervisor: cannot watch the input");
}

static void on_input(evutil_socket_t fd, short what, void *arg)
{
    rt_relay *r = arg;
    ssize_t n;
    if (rt_buf_reserve(&r->held, READ_CHUNK) < 0) {
        rt_error("supervisor: out of memory reading the input; trying again");
    } else if ((n = read(r->in_fd, r->held.data + r->held.len, READ_CHUNK)) > 0) {
        r->held.len += (size_t)n;
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (n < 0)
            rt_error("supervisor: reading the input failed: %s; treating it as its end",
                     strerror(errno));
        input_arm(r, 0);
        r->eof = 1;
    }
    if (r->reading && r->in_regular) {     /* a file: come back for the next chunk */
        r->reading = 0;
        input_arm(r, 1);
    }
    pump(r);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    pump(arg);
}

/* Drop the rest of a done line up to its newline, for a new worker; 1 when through. */
static int strip_done_line(rt_relay *r)
{
    char *nl = memchr(r->held.data, '\n', r->held.len);
    size_t cut = nl ? (size_t)(nl - r->held.data) + 1 : r->held.len;
    memmove(r->held.data, r->held.data + cut, r->held.len - cut);
    r->held.len -= cut;
    if (!nl)
        return 0;
    r->line0++;
    r->mid_line = r->stripping = 0;
    return 1;
}

/* Write what the pipe takes; at the input's end close it, so the worker sees the end. */
static void pump(rt_relay *r)
{
    if (r->stripping && !strip_done_line(r) && !r->eof) {
        input_arm(r, 1);
        return;
    }
    while (r->out_fd >= 0 && r->sent < r->held.len) {
        ssize_t n = write(r->out_fd, r->held.data + r->sent, r->held.len - r->sent);
        if (n > 0) {
            r->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            /* EAGAIN: wait until it drains. EPIPE: the worker is gone; the lines wait for
             * the next one (its death is seen through SIGCHLD). */
            if (errno == EAGAIN && event_add(r->out_ev, NULL) < 0)
                rt_error("supervisor: cannot watch the worker's input pipe");
            break;
        }
    }
    if (r->out_fd >= 0 && r->eof && r->sent == r->held.len) {
        event_del(r->out_ev);
        close(r->out_fd);
        r->out_fd = -1;
        r->ended = 1;
    }
    input_arm(r, r->held.len - r->sent < MAX_AHEAD);
}

rt_relay *rt_relay_open(struct event_base *base, const char *path, char *err, size_t errlen)
{
    struct stat st;
    rt_relay *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "supervisor: out of memory");
        return NULL;
    }
    r->out_fd = -1;
    r->in_fd = STDIN_FILENO;
    if (strcmp(path, "-") != 0) {
        if ((r->in_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            snprintf(err, errlen, "source.file.path: cannot open %s: %s", path,
                     strerror(errno));
            goto fail;
        }
        r->in_owned = 1;
    }
    if (fstat(r->in_fd, &st) < 0) {
        snprintf(err, errlen, "source %s: %s", path, strerror(errno));
        goto fail;
    }
    r->in_regular = S_ISREG(st.st_mode);
    r->in_ev = r->in_regular ? event_new(base, -1, 0, on_input, r)
                             : event_new(base, r->in_fd, EV_READ | EV_PERSIST, on_input, r);
    if (!r->in_ev || !(r->out_ev = event_new(base, -1, 0, on_writable, r))) {
        snprintf(err, errlen, "supervisor: cannot watch the input");
        goto fail;
    }
    return r;
fail:
    rt_relay_free(r);
    return NULL;
}

int rt_relay_attach(rt_relay *r, int *child_fd, long long *line)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    int fl = fcntl(p[1], F_GETFL);
    event_free(r->out_ev);
    r->out_ev = NULL;
    if (fl < 0 || fcntl(p[1], F_SETFL, fl | O_NONBLOCK) < 0 ||
        !(r->out_ev = event_new(event_get_base(r->in_ev), p[1], EV_WRITE, on_writable, r))) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    r->out_fd = p[1];
    r->sent = 0;
    r->ended = 0;
    *child_fd = p[0];
    /* Inside a done long line: the new worker starts after it. */
    r->stripping = r->mid_line;
    *line = r->line0 + r->mid_line;
    return 0;
}

void rt_relay_started(rt_relay *r, int child_fd)
{
    close(child_fd);
    pump(r);
}

void rt_relay_detach(rt_relay *r)
{
    if (r->out_fd >= 0) {
        event_del(r->out_ev);
        close(r->out_fd);
        r->out_fd = -1;
    }
}

void rt_relay_done(rt_relay *r, int64_t next)
{
    size_t cut = 0;
    if (r->stripping)
        return;     /* the new worker has not been sent anything yet */
    /* Line line0 + 1 (held's first, of which the start is gone when mid_line) is
     * done: drop it through its newline. Done before its newline was sent means a long
     * line the worker cut short: what was sent of it goes now, the worker skips the
     * rest itself. */
    while (r->line0 < next - 1) {
        char *nl = memchr(r->held.data + cut, '\n', r->sent - cut);
        if (!nl) {
            cut = r->sent;
            r->mid_line = 1;
            break;
        }
        cut = (size_t)(nl - r->held.data) + 1;
        r->line0++;
        r->mid_line = 0;
    }
    if (!cut)
        return;
    memmove(r->held.data, r->held.data + cut, r->held.len - cut);
    r->held.len -= cut;
    r->sent -= cut;     /* what is left to send, and so reading, is unchanged */
}

int rt_relay_finished(const rt_relay *r)
{
    return r->ended;
}

void rt_relay_free(rt_relay *r)
{
    if (!r)
        return;
    if (r->in_ev)
        event_free(r->in_ev);
    if (r->out_ev)
        event_free(r->out_ev);
    if (r->out_fd >= 0)
        close(r->out_fd);
    if (r->in_owned)
        close(r->in_fd);
    rt_buf_free(&r->held);
    free(r);
}
