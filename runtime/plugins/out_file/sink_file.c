/* sink_file.c - NDJSON to a file (appended) or to stdout.
 *
 * Each sink buffers whole records and hands the kernel one write per 256 KiB, so a
 * record costs a memcpy, and two sinks sharing stdout never split each other's lines.
 * A record is acknowledged once the kernel has it. When a write fails (disk full), the
 * file keeps only whole lines and the sink writes nothing more: the records not written
 * stay pending, and the run's summary counts only what was written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "sink.h"

#define FILE_SINK_BUFFER (256 * 1024)

typedef struct file_sink {
    int fd;
    int owned;              /* close on close; stdout is not ours to close */
    int regular;            /* a regular file: a torn last line can be cut off */
    int failed;             /* a write failed: nothing more is written */
    rt_buf buf;
    rt_ticket **unacked;    /* per record in buf (NULL: none), acknowledged once written */
    size_t nunacked, capunacked;
} file_sink;

/* A write failed after `written` bytes of buf: cut a torn last line off the file, let
 * the whole records written go (acknowledged), keep the rest, and write no more. */
static void file_failed(rt_sink *s, size_t written, int err)
{
    file_sink *fs = s->impl;
    size_t whole = written, records = 0;
    while (whole > 0 && fs->buf.data[whole - 1] != '\n')
        whole--;
    if (written > whole) {
        off_t end = fs->regular ? lseek(fs->fd, 0, SEEK_END) : -1;
        if (end < 0 || ftruncate(fs->fd, end - (off_t)(written - whole)) < 0)
            rt_error("sink %s: a partial last line is left in the output", s->name);
    }
    for (size_t i = 0; i < whole; i++)
        records += fs->buf.data[i] == '\n';
    for (size_t i = 0; i < records; i++)
        if (fs->unacked[i])
            rt_sink_ack(s, fs->unacked[i]);
    memmove(fs->unacked, fs->unacked + records, (fs->nunacked - records) * sizeof *fs->unacked);
    fs->nunacked -= records;
    memmove(fs->buf.data, fs->buf.data + whole, fs->buf.len - whole);
    fs->buf.len -= whole;
    fs->failed = 1;
    rt_error("sink %s: write failed: %s; the output ends with its last whole record, "
             "%zu records were not written", s->name, strerror(err), fs->nunacked);
}

static int file_flush(rt_sink *s)
{
    file_sink *fs = s->impl;
    size_t off = 0;
    if (fs->failed)
        return fs->nunacked ? -1 : 0;
    while (off < fs->buf.len) {
        ssize_t w = write(fs->fd, fs->buf.data + off, fs->buf.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            file_failed(s, off, errno);
            return -1;
        }
        off += (size_t)w;
    }
    fs->buf.len = 0;
    /* In the kernel now: a crash of eddy can no longer lose these records. */
    for (size_t i = 0; i < fs->nunacked; i++)
        if (fs->unacked[i])
            rt_sink_ack(s, fs->unacked[i]);
    fs->nunacked = 0;
    return 0;
}

static int file_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    file_sink *fs = s->impl;
    if (fs->failed)
        return -1;
    if (fs->nunacked == fs->capunacked) {
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
    fs->unacked[fs->nunacked++] = out->ticket;
    if (fs->buf.len >= FILE_SINK_BUFFER)
        return file_flush(s);
    return 0;
}

/* Records accepted but not yet written. */
static size_t file_pending(rt_sink *s)
{
    return ((file_sink *)s->impl)->nunacked;
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

static const rt_sink_ops file_ops = {
    .write = file_write, .flush = file_flush, .close = file_close, .pending = file_pending,
};

/* sink.<name>.path, or standard output for a stdout sink. */
static int file_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen)
{
    const char *path = s->kind == &rt_sink_kind_file ? rt_sink_conf(c, s->name, "path") : NULL;
    file_sink *fs = calloc(1, sizeof *fs);
    if (!fs || rt_buf_reserve(&fs->buf, FILE_SINK_BUFFER + 4096) < 0) {
        snprintf(err, errlen, "sink %s: out of memory", s->name);
        goto fail;
    }
    fs->fd = STDOUT_FILENO;
    if (path) {
        fs->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fs->fd < 0) {
            snprintf(err, errlen, "sink %s: cannot open %s: %s", s->name, path,
                     strerror(errno));
            goto fail;
        }
        fs->owned = 1;
    }
    struct stat st;
    fs->regular = fstat(fs->fd, &st) == 0 && S_ISREG(st.st_mode);
    s->ops = &file_ops;
    s->impl = fs;
    return 0;
fail:
    if (fs)
        rt_buf_free(&fs->buf);
    free(fs);
    return -1;
}

/* The keys this kind reads (`eddy config` lists them; the config checks them). */
static const rt_conf_key file_keys[] = {
    { "sink.*.path", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "output file of a file sink (appended to, created if missing)" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_sink_kind rt_sink_kind_file = {
    .name = "file", .keys = file_keys, .required = "path", .open = file_open,
};
const rt_sink_kind rt_sink_kind_stdout = { .name = "stdout", .open = file_open };
