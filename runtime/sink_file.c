/* sink_file.c - NDJSON to a file (appended) or to stdout.
 *
 * Each sink buffers whole records and hands the kernel one write per 256 KiB, so a
 * record costs a memcpy, and two sinks sharing stdout never split each other's lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "sink.h"

#define FILE_SINK_BUFFER (256 * 1024)

typedef struct file_sink {
    int fd;
    int owned;              /* close on close; stdout is not ours to close */
    rt_buf buf;
    rt_ticket **unacked;    /* tickets of the records in buf, acknowledged at flush */
    size_t nunacked, capunacked;
} file_sink;

static int file_flush(rt_sink *s)
{
    file_sink *fs = s->impl;
    size_t off = 0;
    while (off < fs->buf.len) {
        ssize_t w = write(fs->fd, fs->buf.data + off, fs->buf.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rt_error("sink %s: write failed: %s", s->name, strerror(errno));
            /* Keep what was not written so a later flush may retry it. */
            memmove(fs->buf.data, fs->buf.data + off, fs->buf.len - off);
            fs->buf.len -= off;
            return -1;
        }
        off += (size_t)w;
    }
    fs->buf.len = 0;
    /* In the kernel now: a crash of eddy can no longer lose these records. */
    for (size_t i = 0; i < fs->nunacked; i++)
        rt_sink_ack(s, fs->unacked[i]);
    fs->nunacked = 0;
    return 0;
}

static int file_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    file_sink *fs = s->impl;
    if (out->ticket && fs->nunacked == fs->capunacked) {
        size_t cap = fs->capunacked ? fs->capunacked * 2 : 256;
        rt_ticket **v = realloc(fs->unacked, cap * sizeof *v);
        if (!v) {
            rt_error("sink %s: out of memory", s->name);
            return -1;
        }
        fs->unacked = v;
        fs->capunacked = cap;
    }
    size_t mark = fs->buf.len;
    if (rt_buf_append(&fs->buf, rec, len) < 0 || rt_buf_putc(&fs->buf, '\n') < 0) {
        fs->buf.len = mark;
        rt_error("sink %s: out of memory", s->name);
        return -1;
    }
    if (out->ticket)
        fs->unacked[fs->nunacked++] = out->ticket;
    if (fs->buf.len >= FILE_SINK_BUFFER)
        return file_flush(s);
    return 0;
}

static void file_close(rt_sink *s)
{
    file_sink *fs = s->impl;
    if (!fs)
        return;
    file_flush(s);
    if (fs->owned && close(fs->fd) < 0)
        rt_error("sink %s: close failed: %s", s->name, strerror(errno));
    rt_buf_free(&fs->buf);
    free(fs->unacked);
    free(fs);
    s->impl = NULL;
}

static const rt_sink_ops file_ops = { file_write, file_flush, file_close, NULL, NULL };

int rt_sink_file_open(rt_sink *s, const char *path, char *err, size_t errlen)
{
    file_sink *fs = calloc(1, sizeof *fs);
    if (!fs || rt_buf_reserve(&fs->buf, FILE_SINK_BUFFER + 4096) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    fs->fd = STDOUT_FILENO;
    if (path) {
        fs->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fs->fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            goto fail;
        }
        fs->owned = 1;
    }
    s->ops = &file_ops;
    s->impl = fs;
    return 0;
fail:
    if (fs)
        rt_buf_free(&fs->buf);
    free(fs);
    return -1;
}
