/* sink.h - named outputs that processors emit to and dead letters go to. */
#ifndef RT_SINK_H
#define RT_SINK_H

#include <stddef.h>

#include "config.h"

typedef struct rt_sink rt_sink;

typedef struct rt_sink_ops {
    int  (*write)(rt_sink *s, const char *rec, size_t len);   /* one record, no newline */
    int  (*flush)(rt_sink *s);
    void (*close)(rt_sink *s);
} rt_sink_ops;

struct rt_sink {
    char *name;
    const char *type;
    const rt_sink_ops *ops;
    void *impl;
    unsigned long long records;     /* written so far (eddy_events_out_total) */
};

typedef struct rt_sinks {
    rt_sink *v;
    size_t n;
} rt_sinks;

/* Check every sink.<name>.* key; with `open` also open the outputs. -1 with err set. */
int  rt_sinks_setup(rt_sinks *ss, const rt_config *c, int open, char *err, size_t errlen);
/* The sink called `name`, or NULL. */
rt_sink *rt_sinks_find(const rt_sinks *ss, const char *name);
/* Write one record; -1 when the output failed (disk full, pipe closed). */
int  rt_sink_write(rt_sink *s, const char *rec, size_t len);
/* Flush every sink; -1 if any failed (all are tried). */
int  rt_sinks_flush(rt_sinks *ss);
/* Close and free every sink. */
void rt_sinks_close(rt_sinks *ss);

/* File and stdout sinks (sink_file.c). */
int  rt_sink_file_open(rt_sink *s, const char *path, char *err, size_t errlen);

#endif
