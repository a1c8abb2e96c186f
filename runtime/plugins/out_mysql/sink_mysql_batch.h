/* sink_mysql_batch.h - internal to the mysql sink: its state, and the transaction
 * that writes one batch (sink_mysql_batch.c). */
#ifndef RT_SINK_MYSQL_BATCH_H
#define RT_SINK_MYSQL_BATCH_H

#include <event2/event.h>

#include "sink_mysql.h"

enum phase { IDLE, READ_OFFSETS, INSERT, ROLLBACK, ISOLATE, STORE_OFFSETS, COMMIT, RETRY_WAIT };

typedef struct mrow {
    rt_ticket *ticket;
    size_t rec, rec_len;        /* the record as emitted, in the batch's arena */
    size_t err;                 /* dead rows: their error, in the batch's arena */
    unsigned char skip, dead;
} mrow;

typedef struct batch {
    mrow *rows;
    size_t n, cap;
    size_t *voff;               /* value of (row, column) at arena + voff; n * ncols */
    unsigned long *vlen;        /* (unsigned long)-1: SQL NULL */
    rt_buf arena;
} batch;

typedef struct stored {
    char *topic;
    long long partition, next;
} stored;

typedef struct rt_msink {
    rt_sink *s;
    rt_sink_env *env;
    rt_mysql_sink_def def;
    rt_mysql *db, *probe;       /* batches; reading offsets at partition assignment */
    batch b[2], *fill, *fly;
    enum phase phase;
    /* the flying batch's rows to insert, as bound parameters */
    size_t *live, nlive, iso;
    const char **vals;
    unsigned long *lens;
    size_t vcap;
    stored *known;
    size_t nknown, known_cap;
    rt_buf obuf;                /* offsets statement: texts, then per partition */
    const char **ovals;         /* ... 5 parameters */
    unsigned long *olens;
    rt_track_part **oparts;     /* ... its partition */
    long long *onext;           /* ... its next offset */
    size_t (*oat)[2];           /* ... where its numbers are in obuf */
    size_t ocap;
    struct event *linger, *kick, *retry;
    int due, draining, backoff_ms, probe_rc;
    const char *sel[2];         /* offsets query parameters: group, sink */
    size_t sel_lens[2];
    long long retry_at;
    uint64_t rows, batches, retries, dead, skipped;
} rt_msink;

/* Start writing the flying batch (again, after a retry). */
void rt_msink_begin(rt_msink *m);
/* Send the filling batch when it is full, old enough, or being drained. */
void rt_msink_kick(rt_msink *m);
/* One row of the offsets table (topic, partition, next offset) into m->known. */
void rt_msink_stored_row(void *arg, const rt_cell *cells, const char *const *names,
                         unsigned n);
/* Forget what rt_msink_stored_row collected. */
void rt_msink_forget_stored(rt_msink *m);

#endif
