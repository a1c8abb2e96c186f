/* source_file.h - NDJSON records from a file or stdin, read on the worker's loop. */
#ifndef RT_SOURCE_FILE_H
#define RT_SOURCE_FILE_H

#include <event2/event.h>

#include "buf.h"
#include "event.h"
#include "source.h"

typedef struct rt_source_file {
    struct event *ev;
    int fd, owned, regular, done, paused;
    char *label;            /* path, or "stdin" */
    long long line;         /* lines consumed so far */
    rt_buf pending;         /* bytes of lines not yet complete */
    size_t max_line;        /* rt_source_file_limit; 0 none */
    int skipping;           /* dropping the rest of a line longer than max_line */
    rt_tracker *tracker;    /* a relayed input: a ticket per line (source.type=file) */
    rt_track_part *part;
    rt_source_cb cb;        /* record, batch_end and end */
} rt_source_file;

/* Open `path` ("-" for stdin) and start reading on `base`. -1 with err set. */
int  rt_source_file_open(rt_source_file *s, struct event_base *base, const char *path,
                         const rt_source_cb *cb, char *err, size_t errlen);
/* The same on an open descriptor (`owned`: closed with the source), named `label`, its
 * first line numbered line + 1: a supervisor's relay of the input (supervisor.c). */
int  rt_source_file_open_fd(rt_source_file *s, struct event_base *base, int fd, int owned,
                            const char *label, long long line, const rt_source_cb *cb,
                            char *err, size_t errlen);
/* Hold at most max_line + 1 bytes of one line (event.max.bytes): a longer line is
 * delivered as those bytes, which its reader refuses as too large, and the rest of it
 * up to the next newline is read and dropped, so one line without end cannot fill the
 * memory. */
void rt_source_file_limit(rt_source_file *s, size_t max_line);
/* Stop reading for a while (pause=1: too many events unfinished), or go on (0). */
void rt_source_file_pause(rt_source_file *s, int pause);
/* Stop reading (SIGTERM): the records already read are delivered, the rest stays. */
void rt_source_file_stop(rt_source_file *s);
/* Release the source. */
void rt_source_file_close(rt_source_file *s);

#endif
