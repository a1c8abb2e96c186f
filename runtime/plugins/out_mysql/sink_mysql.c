/* sink_mysql.c - the mysql sink: records become rows of a filling batch (values taken
 * from the record's fields as the config maps them), and at most one batch is in flight
 * on the sink's connection (sink_mysql_batch.c writes it). Tickets are acknowledged only
 * after the batch's COMMIT, so Kafka offsets never pass an unwritten row. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json_pick.h"
#include "log.h"
#include "sink_mysql_batch.h"

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

/* Append a JSON value as the text MySQL converts to the column's type: a number as
 * written, a string unescaped, objects and arrays as their JSON text. */
static int put_value(rt_buf *a, const rt_json_span *v)
{
    switch (v->kind) {
    case RT_JSON_STRING:
        return rt_json_unescape(a, v->at, v->len);
    case RT_JSON_TRUE:
        return rt_buf_append(a, "1", 1);
    case RT_JSON_FALSE:
        return rt_buf_append(a, "0", 1);
    default:
        return rt_buf_append(a, v->at, v->len);
    }
}

/* A record that cannot become a row: to the dead-letter output at once. */
static void refuse(rt_msink *m, const char *rec, size_t len, rt_ticket *ticket, const char *why)
{
    m->dead++;
    m->env->undeliverable(m->env->arg, m->s, rec, len, ticket, why);
    rt_sink_ack(m->s, ticket);
}

static int mysql_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    rt_msink *m = s->impl;
    batch *b = m->fill;
    const rt_mysql_sink_def *d = &m->def;
    char why[300];
    rt_json_span v[RT_JSON_PICK_MAX];
    if (rt_json_pick(rec, len, (const char *const *)d->paths, d->ncols, v) < 0) {
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
        if (v[c].kind == RT_JSON_ABSENT || v[c].kind == RT_JSON_NULL) {
            if (d->merge[c] == RT_MERGE_KEY || d->merge[c] == RT_MERGE_SEQUENCE) {
                snprintf(why, sizeof why, "%s column %s (field %s) is missing or null",
                         d->merge[c] == RT_MERGE_KEY ? "key" : "sequence", d->cols[c],
                         d->paths[c]);
                b->arena.len = mark;
                refuse(m, rec, len, out->ticket, why);
                return 0;
            }
            b->voff[at] = 0;
            b->vlen[at] = (unsigned long)-1;
            continue;
        }
        b->voff[at] = b->arena.len;
        if (put_value(&b->arena, &v[c]) < 0) {
            if (v[c].kind != RT_JSON_STRING)
                goto oom;
            snprintf(why, sizeof why, "column %s (field %s) holds a malformed string",
                     d->cols[c], d->paths[c]);
            b->arena.len = mark;
            refuse(m, rec, len, out->ticket, why);
            return 0;
        }
        b->vlen[at] = (unsigned long)(b->arena.len - b->voff[at]);
    }
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
    rt_error("mysql sink %s: out of memory", s->name);
    return -1;
}

/* Send the filling batch when it is full, old enough, or being drained. */
void rt_msink_kick(rt_msink *m)
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
    rt_msink_begin(m);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    rt_msink_kick(arg);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    rt_msink *m = arg;
    m->due = 1;
    rt_msink_kick(m);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    rt_msink *m = arg;
    m->phase = IDLE;
    rt_msink_begin(m);
}

/* ---- sink operations ---- */

static int mysql_flush(rt_sink *s)
{
    rt_msink_kick(s->impl);
    return 0;
}

/* Write out everything without the event loop (shutdown, partition revocation). */
static int mysql_drain(rt_sink *s, int timeout_ms)
{
    rt_msink *m = s->impl;
    long long until = rt_clock_ms() + timeout_ms;
    int rc = -1;
    m->draining = 1;
    for (;;) {
        rt_msink_kick(m);
        if (m->phase == IDLE && m->fill->n == 0) {
            rc = 0;
            break;
        }
        long long left = until - rt_clock_ms();
        if (left <= 0)
            break;
        if (m->phase == RETRY_WAIT) {
            rt_clock_sleep_until(m->retry_at, until);
            if (rt_clock_ms() >= m->retry_at) {
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
    rt_msink *m = s->impl;
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
    rt_msink *m = s->impl;
    if (!m)
        return;
    rt_mysql_free(m->db);
    rt_mysql_free(m->probe);
    for (int i = 0; i < 2; i++)
        batch_free(&m->b[i]);
    rt_msink_forget_stored(m);
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

static int mysql_stored_offsets(rt_sink *s, size_t n, const char *const *topics,
                                const int *partitions, long long *next);

static const rt_sink_ops mysql_ops = {
    .write = mysql_write, .flush = mysql_flush, .close = mysql_close, .drain = mysql_drain,
    .pending = mysql_pending, .stored_offsets = mysql_stored_offsets,
};

/* Without an event loop (eddy check) only the settings are read and checked;
 * connections are made on first use. */
static int mysql_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err,
                      size_t errlen)
{
    rt_msink *m = calloc(1, sizeof *m);
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
    rt_msink *m = arg;
    m->probe_rc = rc;
    if (rc < 0)
        rt_warn("mysql sink %s: cannot read the stored offsets: %s", m->s->name, error);
}

/* Exactly-once sinks: one blocking query (up to mysql.timeout.ms) for all partitions. */
static int mysql_stored_offsets(rt_sink *s, size_t n, const char *const *topics,
                                const int *partitions, long long *next)
{
    rt_msink *m = s->impl;
    int rc = -1;
    if (!m->def.exactly_once)
        return 0;
    if (!m->probe && !(m->probe = rt_mysql_new(m->env->base, &m->def.db, s->name)))
        return -1;
    m->probe_rc = -1;
    if (rt_mysql_exec(m->probe, m->def.offsets_select_sql, m->sel, m->sel_lens, 2,
                      rt_msink_stored_row, on_probe_done, m) < 0 ||
        rt_mysql_wait(m->probe, m->def.db.timeout_ms + 1000) < 0 || m->probe_rc < 0)
        goto out;
    rc = 0;
    /* A partition this sink has no offset for (it never wrote a row of it) cannot
     * resume from the other sinks' offsets: its rows before theirs would be lost. */
    for (size_t i = 0; i < n; i++) {
        long long have = RT_STORED_UNKNOWN;
        for (size_t j = 0; j < m->nknown; j++)
            if (m->known[j].partition == partitions[i] &&
                strcmp(m->known[j].topic, topics[i]) == 0)
                have = m->known[j].next;
        if (have == RT_STORED_UNKNOWN || next[i] == RT_STORED_UNKNOWN)
            next[i] = RT_STORED_UNKNOWN;
        else if (next[i] < 0 || have < next[i])
            next[i] = have;
    }
out:
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            next[i] = RT_STORED_UNKNOWN;
    rt_msink_forget_stored(m);
    return rc;
}

/* ---- metrics ---- */

static const rt_sink_metric metrics[] = {
    { "eddy_mysql_sink_rows_total", "counter", "Rows committed by MySQL sinks." },
    { "eddy_mysql_sink_batches_total", "counter", "Batches (transactions) committed." },
    { "eddy_mysql_sink_retries_total", "counter",
      "Batches rolled back and retried (server gone, deadlock, lock wait, ...)." },
    { "eddy_mysql_sink_dead_rows_total", "counter",
      "Rows dead-lettered: refused by the server for their content, or without a key." },
    { "eddy_mysql_sink_skipped_rows_total", "counter",
      "Replayed rows skipped because the stored offsets show them written (exactly once)." },
    { "eddy_mysql_sink_pending_rows", "gauge",
      "Rows accepted and not yet committed (waiting or in flight)." },
    { "eddy_mysql_sink_connected", "gauge",
      "1 while the sink's connection is open (it opens with the first batch, again after a loss)." },
    { "eddy_mysql_sink_connects_total", "counter",
      "Connections opened: 1, and one more for each reconnect after a lost connection." },
    { "eddy_mysql_sink_connect_failures_total", "counter",
      "Connection attempts that failed (server down, refused, wrong password)." },
};

static void mysql_values(rt_sink *s, double *v)
{
    const rt_msink *m = s->impl;
    v[0] = (double)m->rows;
    v[1] = (double)m->batches;
    v[2] = (double)m->retries;
    v[3] = (double)m->dead;
    v[4] = (double)m->skipped;
    v[5] = (double)mysql_pending(s);
    rt_mysql_stats st = { 0 };
    if (m->db)
        rt_mysql_get_stats(m->db, &st);
    v[6] = st.connected;
    v[7] = (double)st.connects;
    v[8] = (double)st.connect_failures;
}

static int mysql_metrics(const rt_sinks *ss, rt_buf *out)
{
    return rt_sink_kind_metrics(ss, &mysql_ops, metrics, sizeof metrics / sizeof *metrics,
                                mysql_values, out);
}

/* The keys this kind reads (`eddy config` lists them; the config checks them); table,
 * columns and batch.rows, which the ClickHouse sink reads too, are in config_keys.c. */
static const rt_conf_key mysql_keys[] = {
    { "sink.*.field.*", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "MySQL sink: sink.<name>.field.<column>=record field (a.b descends); default the column name" },
    { "sink.*.sum", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "MySQL sink: columns that add up on an existing row (counters); others are replaced" },
    { "sink.*.sequence.column", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "MySQL sink: column (e.g. event time) that orders updates; an older row never overwrites" },
    { "sink.*.sequence.group", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "MySQL sink: columns guarded by sequence.column; default every non-key, non-sum column" },
    { "sink.*.exactly.once", RT_CONF_BOOL, "false", 0, NULL, 0, 0,
      "MySQL sink with a Kafka source: commit the consumed offsets with the rows, skip replays" },
    { "sink.*.offsets.table", RT_CONF_STRING, "eddy_offsets", 0, NULL, 0, 0,
      "MySQL sink, exactly.once: table of stored offsets (conf/sql/wide-tables.sql creates it)" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_sink_kind rt_sink_kind_mysql = {
    .name = "mysql", .keys = mysql_keys, .flags = RT_SINK_KEY_COLUMNS, .open = mysql_open,
    .check = mysql_open, .metrics = mysql_metrics,
};
