/* sink_mysql.c - batched upserts into a MySQL table.
 *
 * Rows collect in a filling batch while at most one batch is in flight on the sink's
 * connection. A batch is one transaction: [read the stored offsets,] one array-bound
 * INSERT ... ON DUPLICATE KEY UPDATE for all rows, [store the offsets,] COMMIT. Tickets
 * are acknowledged only after the COMMIT, so Kafka offsets never pass an unwritten row.
 *
 * Failures: an error that is the row's fault (bad value, too long, constraint) rolls
 * the batch back and replays it row by row in one transaction, so only the bad rows go
 * to the dead-letter output. Any other error (connection lost, deadlock, missing table)
 * rolls back and retries the whole batch with backoff: nothing is lost or half-written.
 *
 * Exactly once: the batch's transaction also moves the group's offsets in the offsets
 * table, and starts by reading them (FOR UPDATE): rows of events at or past a stored
 * offset are already in the table and are skipped. A replay after a crash, or a retry
 * after a COMMIT whose answer was lost, therefore never applies a row twice. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errmsg.h>
#include <jansson.h>
#include <mysqld_error.h>

#include "log.h"
#include "metrics.h"
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

typedef struct msink {
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
} msink;

static void begin(msink *m);
static void kick_now(msink *m);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Errors that are the row's own fault: writing it again can never succeed. */
static int row_error(unsigned code)
{
    switch (code) {
    case ER_DATA_TOO_LONG: case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_WARN_DATA_OUT_OF_RANGE: case WARN_DATA_TRUNCATED: case ER_BAD_NULL_ERROR:
    case ER_DUP_ENTRY: case ER_NO_REFERENCED_ROW_2: case ER_ROW_IS_REFERENCED_2:
    case ER_TRUNCATED_WRONG_VALUE: case ER_NO_DEFAULT_FOR_FIELD:
    case ER_CONSTRAINT_FAILED: case ER_DATA_OUT_OF_RANGE: case ER_WRONG_VALUE_FOR_TYPE:
    case ER_INVALID_CHARACTER_STRING: case ER_DIVISION_BY_ZERO:
        return 1;
    default:
        return 0;
    }
}

/* ---- filling ---- */

static int batch_grow(batch *b, size_t ncols)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 256;
    mrow *rows = realloc(b->rows, cap * sizeof *rows);
    if (rows)
        b->rows = rows;
    size_t *voff = realloc(b->voff, cap * ncols * sizeof *voff);
    if (voff)
        b->voff = voff;
    unsigned long *vlen = realloc(b->vlen, cap * ncols * sizeof *vlen);
    if (vlen)
        b->vlen = vlen;
    if (!rows || !voff || !vlen)
        return -1;
    b->cap = cap;
    return 0;
}

/* The value at a dotted path of the record ("payload.deviceId"), or NULL. */
static json_t *field(json_t *root, const char *path)
{
    json_t *v = root;
    while (v && json_is_object(v)) {
        size_t n = strcspn(path, ".");
        v = json_object_getn(v, path, n);
        if (!path[n])
            return v;
        path += n + 1;
    }
    return NULL;
}

/* Append a JSON value as the text MySQL converts to the column's type. */
static int put_value(rt_buf *a, json_t *v)
{
    char num[40];
    int n;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return rt_buf_append(a, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return rt_buf_append(a, num, (size_t)n);
    case JSON_REAL:
        n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
        return rt_buf_append(a, num, (size_t)n);
    case JSON_TRUE:
        return rt_buf_append(a, "1", 1);
    case JSON_FALSE:
        return rt_buf_append(a, "0", 1);
    default: {  /* objects and arrays are stored as JSON text */
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        int rc = text ? rt_buf_append(a, text, strlen(text)) : -1;
        free(text);
        return rc;
    }
    }
}

/* A record that cannot become a row: to the dead-letter output at once. */
static void refuse(msink *m, const char *rec, size_t len, rt_ticket *ticket, const char *why)
{
    m->dead++;
    m->env->undeliverable(m->env->arg, m->s, rec, len, ticket, why);
    rt_sink_ack(m->s, ticket);
}

static int mysql_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    msink *m = s->impl;
    batch *b = m->fill;
    const rt_mysql_sink_def *d = &m->def;
    char why[300];
    json_t *root = json_loadb(rec, len, 0, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        refuse(m, rec, len, out->ticket, "the record is not a JSON object");
        return 0;
    }
    size_t mark = b->arena.len;
    if (batch_grow(b, d->ncols) < 0 || rt_buf_append(&b->arena, rec, len) < 0)
        goto oom;
    mrow *r = &b->rows[b->n];
    *r = (mrow){ out->ticket, mark, len, 0, 0, 0 };
    for (size_t c = 0; c < d->ncols; c++) {
        size_t at = b->n * d->ncols + c;
        json_t *v = field(root, d->paths[c]);
        if (!v || json_is_null(v)) {
            if (d->merge[c] == RT_MERGE_KEY || d->merge[c] == RT_MERGE_SEQUENCE) {
                snprintf(why, sizeof why, "%s column %s (field %s) is missing or null",
                         d->merge[c] == RT_MERGE_KEY ? "key" : "sequence", d->cols[c],
                         d->paths[c]);
                b->arena.len = mark;
                json_decref(root);
                refuse(m, rec, len, out->ticket, why);
                return 0;
            }
            b->voff[at] = 0;
            b->vlen[at] = (unsigned long)-1;
            continue;
        }
        b->voff[at] = b->arena.len;
        if (put_value(&b->arena, v) < 0)
            goto oom;
        b->vlen[at] = (unsigned long)(b->arena.len - b->voff[at]);
    }
    json_decref(root);
    if (++b->n == 1 && evtimer_pending(m->linger, NULL) == 0) {
        struct timeval tv = { d->batch_ms / 1000, (d->batch_ms % 1000) * 1000 };
        if (evtimer_add(m->linger, &tv) < 0)
            m->due = 1;
    }
    /* Sent from the loop, not here: the rest of this event's rows join the batch first,
     * so a batch never ends in the middle of an event (exactly once relies on it). */
    if (b->n >= (size_t)d->batch_rows)
        event_active(m->kick, 0, 0);
    return 0;
oom:
    b->arena.len = mark;
    json_decref(root);
    rt_error("mysql sink %s: out of memory", s->name);
    return -1;
}

/* ---- one batch, one transaction ---- */

static void batch_reset(batch *b)
{
    b->n = 0;
    b->arena.len = 0;
}

static void schedule_retry(msink *m)
{
    struct timeval tv = { m->backoff_ms / 1000, (m->backoff_ms % 1000) * 1000 };
    m->phase = RETRY_WAIT;
    m->retry_at = now_ms() + m->backoff_ms;
    if (evtimer_add(m->retry, &tv) < 0)
        m->retry_at = 0;        /* the drain loop or next kick retries */
    m->backoff_ms *= 2;
    if (m->backoff_ms > m->def.retry_max_ms)
        m->backoff_ms = (int)m->def.retry_max_ms;
}

static void on_rolled_back_retry(void *arg, int rc, const char *error)
{
    schedule_retry(arg);
}

/* Not the rows' fault: undo and try the whole batch again later. */
static void fail_batch(msink *m, int rc, const char *error)
{
    m->retries++;
    rt_warn("mysql sink %s: batch of %zu rows not written (%s); retrying in %d ms",
            m->s->name, m->fly->n, error, m->backoff_ms);
    unsigned code = (unsigned)-rc;
    /* A lost connection, or a failed COMMIT, rolled back by itself. */
    if ((code >= 2000 && code < 3000) || m->phase == COMMIT) {
        schedule_retry(m);
        return;
    }
    m->phase = ROLLBACK;
    if (rt_mysql_exec(m->db, "ROLLBACK", NULL, NULL, 0, NULL, on_rolled_back_retry, m) < 0)
        schedule_retry(m);
}

static void complete(msink *m)
{
    batch *b = m->fly;
    size_t written = 0;
    for (size_t i = 0; i < b->n; i++) {
        mrow *r = &b->rows[i];
        if (r->dead) {
            m->dead++;
            m->env->undeliverable(m->env->arg, m->s, b->arena.data + r->rec, r->rec_len,
                                  r->ticket, b->arena.data + r->err);
        }
        written += !r->dead && !r->skip;
        m->skipped += r->skip;
    }
    for (size_t i = 0; i < b->n; i++)
        rt_sink_ack(m->s, b->rows[i].ticket);
    m->rows += written;
    m->batches++;
    m->backoff_ms = (int)m->def.retry_ms;
    batch_reset(b);
    m->phase = IDLE;
    if (m->env->progress)
        m->env->progress(m->env->arg);
    kick_now(m);
}

static void on_committed(void *arg, int rc, const char *error)
{
    msink *m = arg;
    if (rc < 0)
        fail_batch(m, rc, error);
    else
        complete(m);
}

static void commit(msink *m)
{
    m->phase = COMMIT;
    if (rt_mysql_exec(m->db, "COMMIT", NULL, NULL, 0, NULL, on_committed, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
}

static void on_offsets_stored(void *arg, int rc, const char *error)
{
    msink *m = arg;
    if (rc < 0)
        fail_batch(m, rc, error);
    else
        commit(m);
}

/* Room for `n` partitions in the offsets statement's arrays. */
static int offsets_room(msink *m, size_t n)
{
    if (n <= m->ocap)
        return 0;
    size_t cap = n * 2;
    const char **v = realloc(m->ovals, cap * 5 * sizeof *v);
    if (v)
        m->ovals = v;
    unsigned long *l = realloc(m->olens, cap * 5 * sizeof *l);
    if (l)
        m->olens = l;
    rt_track_part **parts = realloc(m->oparts, cap * sizeof *parts);
    if (parts)
        m->oparts = parts;
    long long *next = realloc(m->onext, cap * sizeof *next);
    if (next)
        m->onext = next;
    size_t (*at)[2] = realloc(m->oat, cap * sizeof *at);
    if (at)
        m->oat = at;
    if (!v || !l || !parts || !next || !at)
        return -1;
    m->ocap = cap;
    return 0;
}

/* Exactly once: the next offset of every partition the batch covers, skipped and
 * dead-lettered rows included (they are done). */
static void store_offsets(msink *m)
{
    batch *b = m->fly;
    size_t nparts = 0;
    if (!m->def.exactly_once) {
        commit(m);
        return;
    }
    m->phase = STORE_OFFSETS;
    m->obuf.len = 0;
    for (size_t i = 0; i < b->n; i++) {
        rt_ticket *k = b->rows[i].ticket;
        size_t j = 0;
        while (j < nparts && m->oparts[j] != k->part)
            j++;
        if (j == nparts) {
            if (offsets_room(m, nparts + 1) < 0)
                goto oom;
            m->oparts[nparts] = k->part;
            m->onext[nparts++] = k->offset + 1;
        } else if (k->offset + 1 > m->onext[j]) {
            m->onext[j] = k->offset + 1;
        }
    }
    /* Texts first, pointers after: the buffer may move while it grows. */
    for (size_t j = 0; j < nparts; j++) {
        char text[48];
        int n = snprintf(text, sizeof text, "%d", (int)m->oparts[j]->partition);
        m->oat[j][0] = m->obuf.len;
        if (rt_buf_append(&m->obuf, text, (size_t)n + 1) < 0)
            goto oom;
        n = snprintf(text, sizeof text, "%lld", m->onext[j]);
        m->oat[j][1] = m->obuf.len;
        if (rt_buf_append(&m->obuf, text, (size_t)n + 1) < 0)
            goto oom;
    }
    for (size_t j = 0; j < nparts; j++) {
        const char **v = &m->ovals[j * 5];
        unsigned long *l = &m->olens[j * 5];
        v[0] = m->def.group;
        v[1] = m->s->name;
        v[2] = m->oparts[j]->topic;
        v[3] = m->obuf.data + m->oat[j][0];
        v[4] = m->obuf.data + m->oat[j][1];
        for (int c = 0; c < 5; c++)
            l[c] = (unsigned long)strlen(v[c]);
    }
    if (nparts == 0) {
        commit(m);
        return;
    }
    rt_mysql_rows rows = { 5, (unsigned)nparts, m->ovals, m->olens };
    if (rt_mysql_exec_rows(m->db, m->def.offsets_upsert_sql, &rows, on_offsets_stored, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
    return;
oom:
    fail_batch(m, -CR_OUT_OF_MEMORY, "out of memory");
}

static void isolate_next(msink *m);

static void on_isolated(void *arg, int rc, const char *error)
{
    msink *m = arg;
    batch *b = m->fly;
    if (rc < 0 && !row_error((unsigned)-rc)) {
        fail_batch(m, rc, error);
        return;
    }
    if (rc < 0) {
        mrow *r = &b->rows[m->live[m->iso]];
        r->dead = 1;
        r->err = b->arena.len;
        if (rt_buf_append(&b->arena, error, strlen(error) + 1) < 0) {
            r->dead = 0;
            fail_batch(m, -CR_OUT_OF_MEMORY, "out of memory");
            return;
        }
    }
    m->iso++;
    isolate_next(m);
}

/* After a row's error: each row alone, in one transaction, to find the bad ones. */
static void isolate_next(msink *m)
{
    unsigned ncols = (unsigned)m->def.ncols;
    if (m->iso == m->nlive) {
        store_offsets(m);
        return;
    }
    m->phase = ISOLATE;
    rt_mysql_rows one = { ncols, 1, m->vals + m->iso * ncols, m->lens + m->iso * ncols };
    if (rt_mysql_exec_rows(m->db, m->def.insert_sql, &one, on_isolated, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
}

static void on_rolled_back_isolate(void *arg, int rc, const char *error)
{
    msink *m = arg;
    if (rc < 0) {
        fail_batch(m, rc, error);
        return;
    }
    m->iso = 0;
    isolate_next(m);
}

static void on_inserted(void *arg, int rc, const char *error)
{
    msink *m = arg;
    if (rc == 0) {
        store_offsets(m);
    } else if (row_error((unsigned)-rc)) {
        rt_info("mysql sink %s: %s; writing the batch row by row to find the bad rows",
                m->s->name, error);
        m->phase = ROLLBACK;
        if (rt_mysql_exec(m->db, "ROLLBACK", NULL, NULL, 0, NULL, on_rolled_back_isolate,
                          m) < 0)
            fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
    } else {
        fail_batch(m, rc, error);
    }
}

/* Bind the rows not skipped; their values point into the flying batch's arena, which
 * does not change until the batch completes. */
static void insert(msink *m)
{
    batch *b = m->fly;
    size_t ncols = m->def.ncols;
    if (b->n * ncols > m->vcap) {
        size_t cap = b->n * ncols;
        const char **v = realloc(m->vals, cap * sizeof *v);
        if (v)
            m->vals = v;
        unsigned long *l = realloc(m->lens, cap * sizeof *l);
        if (l)
            m->lens = l;
        size_t *live = realloc(m->live, b->n * sizeof *live);
        if (live)
            m->live = live;
        if (!v || !l || !live) {
            fail_batch(m, -CR_OUT_OF_MEMORY, "out of memory");
            return;
        }
        m->vcap = cap;
    }
    m->nlive = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->rows[i].skip)
            continue;
        for (size_t c = 0; c < ncols; c++) {
            size_t from = i * ncols + c, to = m->nlive * ncols + c;
            int null = b->vlen[from] == (unsigned long)-1;
            m->vals[to] = null ? NULL : b->arena.data + b->voff[from];
            m->lens[to] = null ? 0 : b->vlen[from];
        }
        m->live[m->nlive++] = i;
    }
    if (m->nlive == 0) {
        store_offsets(m);
        return;
    }
    m->phase = INSERT;
    rt_mysql_rows rows = { (unsigned)ncols, (unsigned)m->nlive, m->vals, m->lens };
    if (rt_mysql_exec_rows(m->db, m->def.insert_sql, &rows, on_inserted, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
}

static void on_stored_row(void *arg, const rt_cell *cells, const char *const *names,
                          unsigned n)
{
    msink *m = arg;
    if (n < 3 || cells[0].type != RT_CELL_TEXT || cells[1].type != RT_CELL_INT ||
        cells[2].type != RT_CELL_INT)
        return;
    if (m->nknown == m->known_cap) {
        size_t cap = m->known_cap ? m->known_cap * 2 : 16;
        stored *k = realloc(m->known, cap * sizeof *k);
        if (!k)
            return;     /* unknown offsets only mean rows are written again: upserts */
        m->known = k;
        m->known_cap = cap;
    }
    char *topic = strndup(cells[0].s, cells[0].len);
    if (!topic)
        return;
    m->known[m->nknown++] = (stored){ topic, cells[1].i, cells[2].i };
}

static void forget_known(msink *m)
{
    for (size_t i = 0; i < m->nknown; i++)
        free(m->known[i].topic);
    m->nknown = 0;
}

/* Rows of events before the stored offset of their partition are in the table already. */
static void on_offsets_read(void *arg, int rc, const char *error)
{
    msink *m = arg;
    batch *b = m->fly;
    if (rc < 0) {
        forget_known(m);
        fail_batch(m, rc, error);
        return;
    }
    size_t skipped = 0;
    for (size_t i = 0; i < b->n; i++) {
        rt_ticket *k = b->rows[i].ticket;
        for (size_t j = 0; j < m->nknown; j++)
            if (m->known[j].partition == k->part->partition &&
                strcmp(m->known[j].topic, k->part->topic) == 0) {
                b->rows[i].skip = k->offset < m->known[j].next;
                skipped += b->rows[i].skip;
                break;
            }
    }
    forget_known(m);
    if (skipped)
        rt_info("mysql sink %s: %zu replayed rows already written (exactly once): skipped",
                m->s->name, skipped);
    insert(m);
}

static void begin(msink *m)
{
    batch *b = m->fly;
    for (size_t i = 0; i < b->n; i++)
        b->rows[i].skip = b->rows[i].dead = 0;
    if (!m->def.exactly_once) {
        insert(m);
        return;
    }
    m->phase = READ_OFFSETS;
    if (rt_mysql_exec(m->db, m->def.offsets_select_sql, m->sel, m->sel_lens, 2, on_stored_row,
                      on_offsets_read, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
}

/* Send the filling batch when it is full, old enough, or being drained. */
static void kick_now(msink *m)
{
    if (m->phase != IDLE || m->fill->n == 0)
        return;
    if (m->fill->n < (size_t)m->def.batch_rows && !m->due && !m->draining)
        return;
    batch *t = m->fly;
    m->fly = m->fill;
    m->fill = t;
    m->due = 0;
    evtimer_del(m->linger);
    begin(m);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    kick_now(arg);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    msink *m = arg;
    m->due = 1;
    kick_now(m);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    msink *m = arg;
    m->phase = IDLE;
    begin(m);
}

/* ---- sink operations ---- */

static int mysql_flush(rt_sink *s)
{
    kick_now(s->impl);
    return 0;
}

/* Write out everything without the event loop (shutdown, partition revocation). */
static int mysql_drain(rt_sink *s, int timeout_ms)
{
    msink *m = s->impl;
    long long until = now_ms() + timeout_ms;
    int rc = -1;
    m->draining = 1;
    for (;;) {
        kick_now(m);
        if (m->phase == IDLE && m->fill->n == 0) {
            rc = 0;
            break;
        }
        long long left = until - now_ms();
        if (left <= 0)
            break;
        if (m->phase == RETRY_WAIT) {
            long long wait = m->retry_at - now_ms();
            if (wait > left)
                wait = left;
            if (wait > 0) {
                struct timespec ts = { wait / 1000, (wait % 1000) * 1000000 };
                nanosleep(&ts, NULL);
            }
            if (now_ms() >= m->retry_at) {
                evtimer_del(m->retry);
                on_retry(-1, EV_TIMEOUT, m);
            }
            continue;
        }
        if (!rt_mysql_busy(m->db) || rt_mysql_wait(m->db, (int)left) < 0)
            break;
    }
    m->draining = 0;
    if (rc < 0)
        rt_error("mysql sink %s: %zu rows not written within %d ms", s->name,
                 m->fill->n + m->fly->n, timeout_ms);
    return rc;
}

static size_t mysql_pending(rt_sink *s)
{
    msink *m = s->impl;
    return m->fill->n + m->fly->n;
}

static void batch_free(batch *b)
{
    free(b->rows);
    free(b->voff);
    free(b->vlen);
    rt_buf_free(&b->arena);
}

static void mysql_close(rt_sink *s)
{
    msink *m = s->impl;
    if (!m)
        return;
    rt_mysql_free(m->db);
    rt_mysql_free(m->probe);
    for (int i = 0; i < 2; i++)
        batch_free(&m->b[i]);
    forget_known(m);
    free(m->known);
    free(m->live);
    free(m->vals);
    free(m->lens);
    free(m->ovals);
    free(m->olens);
    free(m->oparts);
    free(m->onext);
    free(m->oat);
    rt_buf_free(&m->obuf);
    if (m->linger)
        event_free(m->linger);
    if (m->kick)
        event_free(m->kick);
    if (m->retry)
        event_free(m->retry);
    rt_mysql_sink_def_free(&m->def);
    free(m);
    s->impl = NULL;
}

static const rt_sink_ops mysql_ops = { mysql_write, mysql_flush, mysql_close, mysql_drain,
                                       mysql_pending };

int rt_sink_mysql_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err,
                       size_t errlen)
{
    msink *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rt_mysql_sink_def_load(&m->def, c, s->name, err, errlen) < 0) {
        rt_mysql_sink_def_free(&m->def);
        free(m);
        return -1;
    }
    s->impl = m;
    s->ops = &mysql_ops;
    m->s = s;
    m->env = &ss->env;
    m->fill = &m->b[0];
    m->fly = &m->b[1];
    m->backoff_ms = (int)m->def.retry_ms;
    if (m->def.exactly_once) {
        m->sel[0] = m->def.group;
        m->sel[1] = s->name;
        m->sel_lens[0] = strlen(m->sel[0]);
        m->sel_lens[1] = strlen(m->sel[1]);
    }
    if (!ss->env.base)
        return 0;   /* checking the config only */
    struct event_base *base = ss->env.base;
    m->db = rt_mysql_new(base, &m->def.db, s->name);
    m->linger = evtimer_new(base, on_linger, m);
    m->kick = event_new(base, -1, 0, on_kick, m);
    m->retry = evtimer_new(base, on_retry, m);
    if (!m->db || !m->linger || !m->kick || !m->retry) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rt_mysql_set_transactional(m->db);
    return 0;
}

static void on_probe_done(void *arg, int rc, const char *error)
{
    msink *m = arg;
    m->probe_rc = rc;
    if (rc < 0)
        rt_warn("mysql sink %s: cannot read the stored offsets: %s", m->s->name, error);
}

int rt_sink_mysql_stored_offset(rt_sink *s, const char *topic, int partition,
                                long long *next)
{
    msink *m = s->impl;
    int rc = -1;
    if (!m->def.exactly_once)
        return 0;
    if (!m->probe && !(m->probe = rt_mysql_new(m->env->base, &m->def.db, s->name)))
        return -1;
    m->probe_rc = -1;
    if (rt_mysql_exec(m->probe, m->def.offsets_select_sql, m->sel, m->sel_lens, 2, on_stored_row,
                      on_probe_done, m) < 0 ||
        rt_mysql_wait(m->probe, m->def.db.timeout_ms + 1000) < 0 || m->probe_rc < 0)
        goto out;
    rc = 0;
    for (size_t j = 0; j < m->nknown; j++)
        if (m->known[j].partition == partition && strcmp(m->known[j].topic, topic) == 0 &&
            (*next < 0 || m->known[j].next < *next))
            *next = m->known[j].next;
out:
    forget_known(m);
    return rc;
}

/* ---- metrics ---- */

static const struct {
    const char *name, *type, *help;
    size_t off;
} counters[] = {
#define C(field) offsetof(msink, field)
    { "eddy_mysql_sink_rows_total", "counter", "Rows committed by MySQL sinks.", C(rows) },
    { "eddy_mysql_sink_batches_total", "counter", "Batches (transactions) committed.",
      C(batches) },
    { "eddy_mysql_sink_retries_total", "counter",
      "Batches rolled back and retried (server gone, deadlock, lock wait, ...).", C(retries) },
    { "eddy_mysql_sink_dead_rows_total", "counter",
      "Rows dead-lettered: refused by the server for their content, or without a key.",
      C(dead) },
    { "eddy_mysql_sink_skipped_rows_total", "counter",
      "Replayed rows skipped because the stored offsets show them written (exactly once).",
      C(skipped) },
#undef C
};

int rt_sink_mysql_metrics(const rt_sinks *ss, rt_buf *out)
{
    char labels[256];
    size_t n = 0;
    for (size_t i = 0; i < ss->n; i++)
        n += ss->v[i].ops == &mysql_ops;
    if (!n)
        return 0;
    for (size_t c = 0; c < sizeof counters / sizeof *counters; c++) {
        if (rt_prom_header(out, counters[c].name, counters[c].type, counters[c].help))
            return -1;
        for (size_t i = 0; i < ss->n; i++) {
            if (ss->v[i].ops != &mysql_ops)
                continue;
            const msink *m = ss->v[i].impl;
            snprintf(labels, sizeof labels, "sink=\"%s\"", ss->v[i].name);
            if (rt_prom_sample(out, counters[c].name, labels,
                               (double)*(const uint64_t *)((const char *)m + counters[c].off)))
                return -1;
        }
    }
    if (rt_prom_header(out, "eddy_mysql_sink_pending_rows", "gauge",
                       "Rows accepted and not yet committed (waiting or in flight)."))
        return -1;
    for (size_t i = 0; i < ss->n; i++) {
        if (ss->v[i].ops != &mysql_ops)
            continue;
        snprintf(labels, sizeof labels, "sink=\"%s\"", ss->v[i].name);
        if (rt_prom_sample(out, "eddy_mysql_sink_pending_rows", labels,
                           (double)mysql_pending(&ss->v[i])))
            return -1;
    }
    return 0;
}
