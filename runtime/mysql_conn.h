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
/* rc 0: the statement ran; -1: it failed, `error` says why (no secrets in it). */
typedef void (*rt_mysql_done_fn)(void *arg, int rc, const char *error);

typedef struct rt_mysql rt_mysql;

/* Read the mysql.* keys. -1 with err "FILE:LINE: key: what" on a bad value. */
int  rt_mysql_conf_load(rt_mysql_conf *mc, const rt_config *c, char *err, size_t errlen);
void rt_mysql_conf_free(rt_mysql_conf *mc);

/* A connection (not opened until the first statement). `label` names it in logs. */
rt_mysql *rt_mysql_new(struct event_base *base, const rt_mysql_conf *mc, const char *label);
/* Run `sql` with `n` text parameters; `row` is called per result row, then `done`.
 * Connects first when needed. -1 when a statement is already running. */
int  rt_mysql_exec(rt_mysql *m, const char *sql, const char *const *params,
                   const size_t *lens, unsigned n, rt_mysql_row_fn row,
                   rt_mysql_done_fn done, void *arg);
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
