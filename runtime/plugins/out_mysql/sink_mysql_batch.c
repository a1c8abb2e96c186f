/* sink_mysql_batch.c - one batch of the mysql sink is one transaction:
 *   [SELECT the stored offsets FOR UPDATE,] one array-bound INSERT ... ON DUPLICATE KEY
 *   UPDATE for all rows, [upsert the offsets,] COMMIT.
 * An error that is the row's fault (bad value, too long, constraint) rolls back and
 * replays the batch row by row in one transaction, so only the bad rows are
 * dead-lettered. Any other error (connection lost, deadlock, missing table) rolls back
 * and retries the whole batch with backoff: nothing is lost or half-written.
 * Exactly once: rows of events before a stored offset are in the table already and are
 * skipped, so a replay after a crash, or a retry after a COMMIT whose answer was lost,
 * never applies a row twice. */
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysqld_error.h>

#include "clock.h"
#include "log.h"
#include "sink_mysql_batch.h"

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

static void batch_reset(batch *b)
{
    b->n = 0;
    b->arena.len = 0;
}

static void schedule_retry(rt_msink *m)
{
    struct timeval tv = { m->backoff_ms / 1000, (m->backoff_ms % 1000) * 1000 };
    m->phase = RETRY_WAIT;
    m->retry_at = rt_clock_ms() + m->backoff_ms;
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
static void fail_batch(rt_msink *m, int rc, const char *error)
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

static void complete(rt_msink *m)
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
    rt_msink_kick(m);
}

static void on_committed(void *arg, int rc, const char *error)
{
    rt_msink *m = arg;
    if (rc < 0)
        fail_batch(m, rc, error);
    else
        complete(m);
}

static void commit(rt_msink *m)
{
    m->phase = COMMIT;
    if (rt_mysql_exec(m->db, "COMMIT", NULL, NULL, 0, NULL, on_committed, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
}

static void on_offsets_stored(void *arg, int rc, const char *error)
{
    rt_msink *m = arg;
    if (rc < 0)
        fail_batch(m, rc, error);
    else
        commit(m);
}

/* Room for `n` partitions in the offsets statement's arrays. */
static int offsets_room(rt_msink *m, size_t n)
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
static void store_offsets(rt_msink *m)
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

static void isolate_next(rt_msink *m);

static void on_isolated(void *arg, int rc, const char *error)
{
    rt_msink *m = arg;
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
static void isolate_next(rt_msink *m)
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
    rt_msink *m = arg;
    if (rc < 0) {
        fail_batch(m, rc, error);
        return;
    }
    m->iso = 0;
    isolate_next(m);
}

static void on_inserted(void *arg, int rc, const char *error)
{
    rt_msink *m = arg;
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
static void insert(rt_msink *m)
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

void rt_msink_stored_row(void *arg, const rt_cell *cells, const char *const *names,
                         unsigned n)
{
    rt_msink *m = arg;
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

void rt_msink_forget_stored(rt_msink *m)
{
    for (size_t i = 0; i < m->nknown; i++)
        free(m->known[i].topic);
    m->nknown = 0;
}

/* Rows of events before the stored offset of their partition are in the table already. */
static void on_offsets_read(void *arg, int rc, const char *error)
{
    rt_msink *m = arg;
    batch *b = m->fly;
    if (rc < 0) {
        rt_msink_forget_stored(m);
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
    rt_msink_forget_stored(m);
    if (skipped)
        rt_info("mysql sink %s: %zu replayed rows already written (exactly once): skipped",
                m->s->name, skipped);
    insert(m);
}

void rt_msink_begin(rt_msink *m)
{
    batch *b = m->fly;
    for (size_t i = 0; i < b->n; i++)
        b->rows[i].skip = b->rows[i].dead = 0;
    if (!m->def.exactly_once) {
        insert(m);
        return;
    }
    m->phase = READ_OFFSETS;
    if (rt_mysql_exec(m->db, m->def.offsets_select_sql, m->sel, m->sel_lens, 2, rt_msink_stored_row,
                      on_offsets_read, m) < 0)
        fail_batch(m, -CR_UNKNOWN_ERROR, "connection busy");
}

