/* mysql_conn.c - a non-blocking MariaDB connection on a libevent loop.
 *
 * Each step (connect, prepare, execute, store) is a libmariadb *_start call followed
 * by *_cont calls whenever the socket is ready; step() is the one place that drives
 * them. A deadline timer bounds every statement: when it fires, the connection is
 * cancelled and dropped, and the next statement reconnects. Results are read with
 * mysql_stmt_store_result, so fetching rows afterwards does no I/O. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>

#include "clock.h"
#include "log.h"
#include "mysql_conn.h"

#define MAX_STMTS 16        /* distinct statements kept prepared per connection */

enum step { IDLE, CONNECT, PREPARE, EXECUTE, STORE };

typedef struct prepared {
    char *sql;
    MYSQL_STMT *st;
} prepared;

struct rt_mysql {
    struct event_base *base;
    const rt_mysql_conf *conf;
    char *label;
    MYSQL *my;              /* NULL when not connected */
    int connected;
    struct event *io, *deadline;
    enum step step;
    prepared stmts[MAX_STMTS];
    unsigned nstmts;
    /* the statement in flight */
    const char *sql;
    const char *const *params;
    const size_t *lens;
    unsigned nparams;
    MYSQL_STMT *st;
    rt_mysql_row_fn row;
    rt_mysql_done_fn done;
    void *arg;
    rt_mysql_rows rowset;   /* array-bound execution ... */
    const rt_mysql_rows *rows;  /* ... when this points at rowset, else NULL */
    MYSQL *ret_my;
    int ret;
    int wait_status;        /* what the suspended step waits for (rt_mysql_wait) */
    long long deadline_at;  /* monotonic ms bound of the statement in flight */
    int transactional;
    /* column-wise copies of m->rows for binding, reused */
    const char **col_vals;
    unsigned long *col_lens;
    char *col_ind;
    size_t col_cap;
    /* result buffers, reused */
    MYSQL_BIND *binds;
    rt_cell *cells;
    unsigned long *lengths;
    my_bool *nulls;
    char **bufs;
    size_t *bufcap;
    const char **names;
    rt_cell *row_cells;
    unsigned ncols_cap;
    rt_mysql_stats stats;
};

static void step(rt_mysql *m, int status);
static void on_io(evutil_socket_t fd, short what, void *arg);

static void drop_connection(rt_mysql *m)
{
    if (!m->my)
        return;
    /* Cancel first: a statement may be suspended mid-read, and mysql_close must not
     * wait on a server that stopped answering. */
    mariadb_cancel(m->my);
    for (unsigned i = 0; i < m->nstmts; i++) {
        mysql_stmt_close(m->stmts[i].st);
        free(m->stmts[i].sql);
    }
    m->nstmts = 0;
    mysql_close(m->my);
    m->my = NULL;
    m->connected = 0;
    m->stats.connected = 0;
}

static void finish(rt_mysql *m, int rc, const char *error)
{
    rt_mysql_done_fn done = m->done;
    event_del(m->io);
    event_del(m->deadline);
    if (rc < 0)
        m->stats.failures++;
    m->step = IDLE;
    m->st = NULL;
    m->done = NULL;
    if (done)
        done(m->arg, rc, error);
}

/* A failure: client-side errors (2000-2999: connection lost, timeouts, protocol) mean
 * the connection is no good; server errors (bad SQL, missing table) leave it usable. */
static void fail(rt_mysql *m, unsigned code, const char *what, const char *msg)
{
    char error[512];
    snprintf(error, sizeof error, "%s: %s (%u)", what, msg, code);
    if (m->step == CONNECT)
        m->stats.connect_failures++;
    if (m->step == CONNECT || (code >= 2000 && code < 3000))
        drop_connection(m);
    finish(m, code ? -(int)code : -CR_UNKNOWN_ERROR, error);
}

/* Arm the socket (and libmariadb's own timeout) for the status a step returned. */
static void wait_for(rt_mysql *m, int status)
{
    short what = 0;
    struct timeval tv, *tvp = NULL;
    if (status & MYSQL_WAIT_READ)
        what |= EV_READ;
    if (status & MYSQL_WAIT_WRITE)
        what |= EV_WRITE;
    m->wait_status = status;
    if (status & MYSQL_WAIT_TIMEOUT) {
        unsigned ms = mysql_get_timeout_value_ms(m->my);
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        tvp = &tv;
    }
    event_del(m->io);
    if (event_assign(m->io, m->base, mysql_get_socket(m->my), what, on_io, m) < 0 ||
        event_add(m->io, tvp) < 0)
        fail(m, CR_UNKNOWN_ERROR, m->label, "cannot watch the connection socket");
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    int status = 0;
    if (what & EV_READ)
        status |= MYSQL_WAIT_READ;
    if (what & EV_WRITE)
        status |= MYSQL_WAIT_WRITE;
    if (what & EV_TIMEOUT)
        status |= MYSQL_WAIT_TIMEOUT;
    step(arg, status);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    rt_mysql *m = arg;
    char msg[64];
    snprintf(msg, sizeof msg, "no answer within %d ms", m->conf->timeout_ms);
    fail(m, CR_SERVER_LOST, m->step == CONNECT ? "connect" : "statement", msg);
}

static int open_handle(rt_mysql *m)
{
    const rt_mysql_conf *c = m->conf;
    /* libmariadb counts in seconds; our deadline timer keeps the millisecond bound. */
    unsigned secs = (unsigned)(c->timeout_ms + 999) / 1000;
    my_bool on = 1;
    m->my = mysql_init(NULL);
    if (!m->my)
        return -1;
    if (mysql_options(m->my, MYSQL_OPT_NONBLOCK, 0) ||
        mysql_options(m->my, MYSQL_OPT_CONNECT_TIMEOUT, &secs) ||
        mysql_options(m->my, MYSQL_OPT_READ_TIMEOUT, &secs) ||
        mysql_options(m->my, MYSQL_OPT_WRITE_TIMEOUT, &secs) ||
        mysql_options(m->my, MYSQL_SET_CHARSET_NAME, "utf8mb4"))
        return -1;
    /* Re-run on every reconnect, so a new session is never left in autocommit. READ
     * COMMITTED takes no gap locks, so sinks writing side by side do not deadlock on
     * each other's offsets rows. */
    if (m->transactional &&
        (mysql_options(m->my, MYSQL_INIT_COMMAND,
                       "SET autocommit=0, sql_mode=CONCAT_WS(',', NULLIF(@@sql_mode, ''), "
                       "'STRICT_ALL_TABLES')") ||
         mysql_options(m->my, MYSQL_INIT_COMMAND,
                       "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")))
        return -1;
    if (c->tls) {
        if (mysql_options(m->my, MYSQL_OPT_SSL_ENFORCE, &on) ||
            (c->tls == 2 && mysql_options(m->my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on)) ||
            mysql_ssl_set(m->my, c->tls_key, c->tls_cert, c->tls_ca, NULL, NULL))
            return -1;
    }
    return 0;
}

/* The statement for m->sql, prepared on this connection; NULL when it must be. */
static MYSQL_STMT *find_prepared(rt_mysql *m)
{
    for (unsigned i = 0; i < m->nstmts; i++)
        if (strcmp(m->stmts[i].sql, m->sql) == 0)
            return m->stmts[i].st;
    return NULL;
}

static int ensure_cols(rt_mysql *m, unsigned n)
{
    if (n <= m->ncols_cap)
        return 0;
    MYSQL_BIND *b = realloc(m->binds, n * sizeof *b);
    if (b)
        m->binds = b;
    rt_cell *c = realloc(m->cells, n * sizeof *c);
    if (c)
        m->cells = c;
    unsigned long *l = realloc(m->lengths, n * sizeof *l);
    if (l)
        m->lengths = l;
    my_bool *nu = realloc(m->nulls, n * sizeof *nu);
    if (nu)
        m->nulls = nu;
    char **bufs = realloc(m->bufs, n * sizeof *bufs);
    if (bufs)
        m->bufs = bufs;
    size_t *cap = realloc(m->bufcap, n * sizeof *cap);
    if (cap)
        m->bufcap = cap;
    const char **names = realloc(m->names, n * sizeof *names);
    if (names)
        m->names = names;
    rt_cell *rc = realloc(m->row_cells, n * sizeof *rc);
    if (rc)
        m->row_cells = rc;
    if (!b || !c || !l || !nu || !bufs || !cap || !names || !rc)
        return -1;
    for (unsigned i = m->ncols_cap; i < n; i++) {
        m->bufs[i] = NULL;
        m->bufcap[i] = 0;
    }
    m->ncols_cap = n;
    return 0;
}

/* After store_result: bind each column by its type and hand every row over.
 * Integers and floats arrive as numbers, DECIMAL as a number parsed from its text,
 * everything else (strings, dates, blobs) as text. */
static int deliver_rows(rt_mysql *m, const char **why)
{
    MYSQL_RES *meta = mysql_stmt_result_metadata(m->st);
    int rc = -1;
    if (!meta)
        return 0;   /* no result set */
    unsigned n = mysql_num_fields(meta);
    MYSQL_FIELD *f = mysql_fetch_fields(meta);
    *why = "out of memory";
    if (ensure_cols(m, n) < 0)
        goto out;
    memset(m->binds, 0, n * sizeof *m->binds);
    for (unsigned i = 0; i < n; i++) {
        MYSQL_BIND *b = &m->binds[i];
        b->length = &m->lengths[i];
        b->is_null = &m->nulls[i];
        switch (f[i].type) {
        case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG:
        case MYSQL_TYPE_INT24: case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_YEAR:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &m->cells[i].i;
            m->cells[i].type = RT_CELL_INT;
            break;
        case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE:
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &m->cells[i].d;
            m->cells[i].type = RT_CELL_DOUBLE;
            break;
        default: {
            size_t need = f[i].max_length + 1;
            if (need > m->bufcap[i]) {
                char *nb = realloc(m->bufs[i], need);
                if (!nb)
                    goto out;
                m->bufs[i] = nb;
                m->bufcap[i] = need;
            }
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = m->bufs[i];
            b->buffer_length = m->bufcap[i];
            m->cells[i].type = RT_CELL_TEXT;
            break;
        }
        }
    }
    for (unsigned i = 0; i < n; i++)
        m->names[i] = f[i].name;
    *why = mysql_stmt_error(m->st);
    if (mysql_stmt_bind_result(m->st, m->binds))
        goto out;
    for (;;) {
        int fr = mysql_stmt_fetch(m->st);
        if (fr == MYSQL_NO_DATA)
            break;
        if (fr == 1)
            goto out;
        rt_cell *row = m->row_cells;
        for (unsigned i = 0; i < n; i++) {
            row[i] = m->cells[i];
            if (m->nulls[i]) {
                row[i].type = RT_CELL_NULL;
            } else if (row[i].type == RT_CELL_TEXT) {
                row[i].s = m->bufs[i];
                row[i].len = m->lengths[i];
                if (f[i].type == MYSQL_TYPE_NEWDECIMAL || f[i].type == MYSQL_TYPE_DECIMAL) {
                    m->bufs[i][m->lengths[i]] = '\0';
                    row[i].type = RT_CELL_DOUBLE;
                    row[i].d = strtod(m->bufs[i], NULL);
                }
            }
        }
        if (m->row)
            m->row(m->arg, row, m->names, n);
    }
    rc = 0;
out:
    mysql_free_result(meta);
    mysql_stmt_free_result(m->st);
    return rc;
}

/* Bind the statement's parameters: m->params as one row, or m->rows column-wise
 * with the array size set (one round trip for all rows). 0, or -1 after fail(). */
static int bind_params(rt_mysql *m)
{
    unsigned n = m->rows ? m->rows->ncols : m->nparams;
    unsigned rows = m->rows ? m->rows->nrows : 0;
    MYSQL_BIND pb[n ? n : 1];
    memset(pb, 0, sizeof pb);
    if (mysql_stmt_param_count(m->st) != n) {
        fail(m, CR_PARAMS_NOT_BOUND, "execute", "wrong number of parameters");
        return -1;
    }
    if (m->rows) {
        size_t cells = (size_t)n * rows;
        if (cells > m->col_cap) {
            const char **v = realloc(m->col_vals, cells * sizeof *v);
            if (v)
                m->col_vals = v;
            unsigned long *l = realloc(m->col_lens, cells * sizeof *l);
            if (l)
                m->col_lens = l;
            char *ind = realloc(m->col_ind, cells);
            if (ind)
                m->col_ind = ind;
            if (!v || !l || !ind) {
                fail(m, CR_OUT_OF_MEMORY, "execute", "out of memory");
                return -1;
            }
            m->col_cap = cells;
        }
        for (unsigned c = 0; c < n; c++)
            for (unsigned r = 0; r < rows; r++) {
                size_t from = (size_t)r * n + c, to = (size_t)c * rows + r;
                m->col_vals[to] = m->rows->vals[from];
                m->col_lens[to] = m->rows->lens[from];
                m->col_ind[to] = m->rows->vals[from] ? STMT_INDICATOR_NONE
                                                     : STMT_INDICATOR_NULL;
            }
    }
    for (unsigned i = 0; i < n; i++) {
        pb[i].buffer_type = MYSQL_TYPE_STRING;
        if (m->rows) {
            pb[i].buffer = (void *)&m->col_vals[(size_t)i * rows];
            pb[i].length = &m->col_lens[(size_t)i * rows];
            pb[i].u.indicator = &m->col_ind[(size_t)i * rows];
        } else {
            pb[i].buffer = (void *)m->params[i];
            pb[i].buffer_length = m->lens[i];
        }
    }
    if (mysql_stmt_attr_set(m->st, STMT_ATTR_ARRAY_SIZE, &rows) ||
        (n && mysql_stmt_bind_param(m->st, pb))) {
        fail(m, mysql_stmt_errno(m->st), "execute", mysql_stmt_error(m->st));
        return -1;
    }
    return 0;
}

/* Drive the statement in flight as far as it goes without blocking. `status` is 0
 * when a step is to be started, else the readiness that woke us. */
static void step(rt_mysql *m, int status)
{
    for (;;) {
        int s = 0;
        switch (m->step) {
        case IDLE:
            return;
        case CONNECT:
            if (!status) {
                if (open_handle(m) < 0) {
                    fail(m, CR_OUT_OF_MEMORY, "connect", "cannot set up the client handle");
                    return;
                }
                const rt_mysql_conf *c = m->conf;
                s = mysql_real_connect_start(&m->ret_my, m->my, c->host, c->user,
                                             c->password, c->database, c->port, NULL, 0);
            } else {
                s = mysql_real_connect_cont(&m->ret_my, m->my, status);
            }
            if (s)
                break;
            if (!m->ret_my) {
                fail(m, mysql_errno(m->my) ? mysql_errno(m->my) : CR_CONNECTION_ERROR,
                     "connect", mysql_error(m->my));
                return;
            }
            m->connected = m->stats.connected = 1;
            m->stats.connects++;
            rt_info("mysql %s: connected to %s:%u", m->label, m->conf->host, m->conf->port);
            m->step = PREPARE;
            status = 0;
            continue;
        case PREPARE:
            if (!status) {
                if ((m->st = find_prepared(m))) {
                    m->step = EXECUTE;
                    continue;
                }
                if (m->nstmts == MAX_STMTS) {     /* forget the oldest */
                    mysql_stmt_close(m->stmts[0].st);
                    free(m->stmts[0].sql);
                    memmove(m->stmts, m->stmts + 1, --m->nstmts * sizeof *m->stmts);
                }
                char *copy = strdup(m->sql);
                MYSQL_STMT *st = copy ? mysql_stmt_init(m->my) : NULL;
                my_bool on = 1;
                if (!st || mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on)) {
                    free(copy);
                    if (st)
                        mysql_stmt_close(st);
                    fail(m, CR_OUT_OF_MEMORY, "prepare", "out of memory");
                    return;
                }
                m->stmts[m->nstmts++] = (prepared){ copy, st };
                m->st = st;
                s = mysql_stmt_prepare_start(&m->ret, st, m->sql, strlen(m->sql));
            } else {
                s = mysql_stmt_prepare_cont(&m->ret, m->st, status);
            }
            if (s)
                break;
            if (m->ret) {
                unsigned code = mysql_stmt_errno(m->st);
                char msg[300];
                snprintf(msg, sizeof msg, "%s", mysql_stmt_error(m->st));
                mysql_stmt_close(m->st);        /* it is the last entry */
                free(m->stmts[--m->nstmts].sql);
                m->st = NULL;
                fail(m, code, "prepare", msg);
                return;
            }
            m->step = EXECUTE;
            status = 0;
            continue;
        case EXECUTE:
            if (!status) {
                if (bind_params(m) < 0)
                    return;
                s = mysql_stmt_execute_start(&m->ret, m->st);
            } else {
                s = mysql_stmt_execute_cont(&m->ret, m->st, status);
            }
            if (s)
                break;
            if (m->ret) {
                fail(m, mysql_stmt_errno(m->st), "execute", mysql_stmt_error(m->st));
                return;
            }
            m->step = STORE;
            status = 0;
            continue;
        case STORE: {
            if (!status)
                s = mysql_stmt_store_result_start(&m->ret, m->st);
            else
                s = mysql_stmt_store_result_cont(&m->ret, m->st, status);
            if (s)
                break;
            const char *why = NULL;
            if (m->ret || deliver_rows(m, &why) < 0) {
                fail(m, mysql_stmt_errno(m->st), "fetch", why ? why : mysql_stmt_error(m->st));
                return;
            }
            m->stats.statements++;
            finish(m, 0, NULL);
            return;
        }
        }
        wait_for(m, s);
        return;
    }
}

static int start(rt_mysql *m, const char *sql, rt_mysql_done_fn done, void *arg)
{
    m->sql = sql;
    m->done = done;
    m->arg = arg;
    m->step = m->connected ? PREPARE : CONNECT;
    m->deadline_at = rt_clock_ms() + m->conf->timeout_ms;
    struct timeval tv = { m->conf->timeout_ms / 1000, (m->conf->timeout_ms % 1000) * 1000 };
    if (event_add(m->deadline, &tv) < 0) {
        m->step = IDLE;
        return -1;
    }
    step(m, 0);
    return 0;
}

int rt_mysql_exec(rt_mysql *m, const char *sql, const char *const *params,
                  const size_t *lens, unsigned n, rt_mysql_row_fn row,
                  rt_mysql_done_fn done, void *arg)
{
    if (m->step != IDLE)
        return -1;
    m->params = params;
    m->lens = lens;
    m->nparams = n;
    m->rows = NULL;
    m->row = row;
    return start(m, sql, done, arg);
}

int rt_mysql_exec_rows(rt_mysql *m, const char *sql, const rt_mysql_rows *rows,
                       rt_mysql_done_fn done, void *arg)
{
    if (m->step != IDLE)
        return -1;
    m->rowset = *rows;      /* the caller's struct may be gone once a reconnect ends */
    m->rows = &m->rowset;
    m->row = NULL;
    return start(m, sql, done, arg);
}

void rt_mysql_set_transactional(rt_mysql *m)
{
    m->transactional = 1;
}

int rt_mysql_wait(rt_mysql *m, int timeout_ms)
{
    long long until = rt_clock_ms() + timeout_ms;
    while (m->step != IDLE) {
        long long now = rt_clock_ms(), wait = until - now;
        if (wait <= 0)
            return -1;
        if (now >= m->deadline_at) {
            on_deadline(-1, EV_TIMEOUT, m);
            continue;
        }
        if (m->deadline_at - now < wait)
            wait = m->deadline_at - now;
        int ws = m->wait_status;
        if ((ws & MYSQL_WAIT_TIMEOUT) && mysql_get_timeout_value_ms(m->my) < wait)
            wait = mysql_get_timeout_value_ms(m->my);
        struct pollfd pfd = { mysql_get_socket(m->my), 0, 0 };
        if (ws & MYSQL_WAIT_READ)
            pfd.events |= POLLIN;
        if (ws & MYSQL_WAIT_WRITE)
            pfd.events |= POLLOUT;
        int r = poll(&pfd, 1, (int)wait);
        if (r < 0 && errno != EINTR) {
            fail(m, CR_UNKNOWN_ERROR, m->label, "cannot poll the connection socket");
            continue;
        }
        int status = 0;
        if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) && (ws & MYSQL_WAIT_READ))
            status |= MYSQL_WAIT_READ;
        if (r > 0 && (pfd.revents & (POLLOUT | POLLHUP | POLLERR)) && (ws & MYSQL_WAIT_WRITE))
            status |= MYSQL_WAIT_WRITE;
        if (r == 0 && (ws & MYSQL_WAIT_TIMEOUT))
            status |= MYSQL_WAIT_TIMEOUT;
        if (status)
            step(m, status);
    }
    return 0;
}

int rt_mysql_busy(const rt_mysql *m)
{
    return m->step != IDLE;
}

rt_mysql *rt_mysql_new(struct event_base *base, const rt_mysql_conf *mc, const char *label)
{
    rt_mysql *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base = base;
    m->conf = mc;
    m->label = strdup(label);
    m->io = event_new(base, -1, 0, on_io, m);
    m->deadline = evtimer_new(base, on_deadline, m);
    if (!m->label || !m->io || !m->deadline) {
        rt_mysql_free(m);
        return NULL;
    }
    return m;
}

void rt_mysql_free(rt_mysql *m)
{
    if (!m)
        return;
    drop_connection(m);
    if (m->io)
        event_free(m->io);
    if (m->deadline)
        event_free(m->deadline);
    for (unsigned i = 0; i < m->ncols_cap; i++)
        free(m->bufs[i]);
    free(m->bufs);
    free(m->bufcap);
    free(m->names);
    free(m->row_cells);
    free(m->binds);
    free(m->cells);
    free(m->lengths);
    free(m->nulls);
    free(m->col_vals);
    free(m->col_lens);
    free(m->col_ind);
    free(m->label);
    free(m);
}

void rt_mysql_get_stats(const rt_mysql *m, rt_mysql_stats *st)
{
    *st = m->stats;
}
