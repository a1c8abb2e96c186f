/* mysql_conn.h - one MariaDB/MySQL connection driven by the worker's event loop.
 *
 * Statements run through libmariadb's non-blocking API, so a query in flight never
 * stalls the loop. One statement runs at a time per connection; statements are
 * prepared once per connection and values are only ever bound, never spliced. */
#ifndef RT_MYSQL_H
#define RT_MYSQL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"

/* Where and how to connect: from mysql.url or mysql.host/port/user/password/database. */
typedef struct rt_mysql_conf {
    char *host, *user, *password, *database;
    unsigned port;
    int tls;                /* 0 disabled, 1 required, 2 required + verify the server */
    const char *tls_ca, *tls_cert, *tls_key;
    int timeout_ms;         /* bound on connecting and on each statement */
} rt_mysql_conf;

/* One value of a result row. Text points into the connection's buffers: copy it. */
enum rt_cell_type { RT_CELL_NULL, RT_CELL_INT, RT_CELL_DOUBLE, RT_CELL_TEXT };
typedef struct rt_cell {
    enum rt_cell_type type;
    long long i;
    double d;
    const char *s;
    size_t len;
} rt_cell;

/* One result row: `n` cells and the column names of the result. */
typedef void (*rt_mysql_row_fn)(void *arg, const rt_cell *cells, const char *const *names,
                                unsigned n);
/* rc 0: the statement ran; negative: it failed with MySQL error -rc (2000-2999: the
 * connection was lost and dropped), `error` says why (no secrets in it). */
typedef void (*rt_mysql_done_fn)(void *arg, int rc, const char *error);

typedef struct rt_mysql rt_mysql;

/* Read the mysql.* keys. -1 with err "FILE:LINE: key: what" on a bad value. */
int  rt_mysql_conf_load(rt_mysql_conf *mc, const rt_config *c, char *err, size_t errlen);
void rt_mysql_conf_free(rt_mysql_conf *mc);

/* A connection (not opened until the first statement). `label` names it in logs. */
rt_mysql *rt_mysql_new(struct event_base *base, const rt_mysql_conf *mc, const char *label);
/* Run `sql` with `n` text parameters; `row` is called per result row, then `done`.
 * Connects first when needed. `params` and `lens` (and the values) must stay valid
 * until `done`. -1 when a statement is already running. */
int  rt_mysql_exec(rt_mysql *m, const char *sql, const char *const *params,
                   const size_t *lens, unsigned n, rt_mysql_row_fn row,
                   rt_mysql_done_fn done, void *arg);
/* Rows of parameters for one array-bound execution (MariaDB bulk): row-major,
 * vals[r * ncols + c]; a NULL value is SQL NULL. */
typedef struct rt_mysql_rows {
    unsigned ncols, nrows;
    const char *const *vals;
    const unsigned long *lens;
} rt_mysql_rows;
/* Run an INSERT/UPDATE once for every row in one round trip. `rows` is copied; the
 * arrays it points to must stay valid until `done`. -1 when busy. */
int  rt_mysql_exec_rows(rt_mysql *m, const char *sql, const rt_mysql_rows *rows,
                        rt_mysql_done_fn done, void *arg);
/* Connections opened from now on run with autocommit off (statements form a transaction
 * until COMMIT) and strict SQL mode (a bad value is an error, never truncated). */
void rt_mysql_set_transactional(rt_mysql *m);
/* Drive the running statement (and any it chains) without the event loop, up to
 * timeout_ms: for drains where the loop cannot run. 0 once idle, -1 on timeout. */
int  rt_mysql_wait(rt_mysql *m, int timeout_ms);
/* 1 while a statement runs. */
int  rt_mysql_busy(const rt_mysql *m);
/* Close (aborting a running statement without calling its `done`) and free. */
void rt_mysql_free(rt_mysql *m);

/* Usage counters for /metrics. */
typedef struct rt_mysql_stats {
    uint64_t statements, failures, connects, connect_failures;
    int connected;
} rt_mysql_stats;
void rt_mysql_get_stats(const rt_mysql *m, rt_mysql_stats *st);

#endif
