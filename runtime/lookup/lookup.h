/* lookup.h - lookup joins: named dimension tables read from MySQL through a cache.
 *
 * A key found in the cache is answered at once. A miss does not block: the caller
 * passes a wait record, the key joins the next batch (one WHERE key IN (...) query on
 * a non-blocking connection), and the wait is woken when its answer is known. */
#ifndef RT_LOOKUP_H
#define RT_LOOKUP_H

#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "lookup_cache.h"
#include "mysql_conn.h"

typedef struct rt_lookup rt_lookup;

enum rt_wait_state { RT_WAIT_PENDING, RT_WAIT_READY, RT_WAIT_FAILED };

/* One call waiting for a key. Owned by the caller; it must stay put until woken or
 * cancelled. `wake` is called (from the event loop) once its state leaves PENDING. */
typedef struct rt_lkwait {
    struct rt_lkwait *next;
    rt_lookup *lk;
    rt_entry *entry;        /* the key it waits for */
    enum rt_wait_state state;
    rt_row *row;            /* READY: the answer (NULL: no row); the waiter releases it */
    char error[200];        /* FAILED: why */
    void (*wake)(void *arg, struct rt_lkwait *w);
    void *arg;
} rt_lkwait;

typedef struct rt_lookups {
    rt_lookup **v;
    size_t n;
    rt_mysql_conf conf;
    int have_conf;
} rt_lookups;

/* Read every lookup.<name>.* definition and check it. With `base`, also open the
 * connections and start loading the full caches. -1 with err "FILE:LINE: key: what". */
int  rt_lookups_setup(rt_lookups *ls, const rt_config *c, struct event_base *base,
                      char *err, size_t errlen);
/* The lookup called `name`, or NULL. */
rt_lookup *rt_lookups_find(const rt_lookups *ls, const char *name);
/* The names of its row fields (result columns), `*n` of them. */
const char *const *rt_lookup_fields(const rt_lookup *lk, unsigned *n);
const char *rt_lookup_name(const rt_lookup *lk);
/* Answer `key`: 1 and *row (borrowed until the next rt_lookup_* call; NULL for no row)
 * when known now; 0 when `w` was queued and will be woken (with w NULL: the key is
 * fetched, nobody waits); -1 when out of memory. */
int  rt_lookup_get(rt_lookup *lk, const char *key, size_t len, rt_row **row, rt_lkwait *w);
/* The key text of a Lua number: integers without a fraction, others with %.17g. */
const char *rt_lookup_number_key(double v, char *buf, size_t len, size_t *n);
/* Forget a queued wait (its event is being dropped); it will not be woken. */
void rt_lkwait_cancel(rt_lkwait *w);
/* eddy test: from now on `lk` answers only from the rows the test gives, as a loaded
 * full cache (a key not given has no row); it never reaches MySQL. `fields` names the
 * row fields. -1 when out of memory. */
int  rt_lookup_fixture(rt_lookup *lk, const char *const *fields, unsigned n);
/* The fixture's row for `key`: one cell per field. -1 when out of memory. */
int  rt_lookup_fixture_row(rt_lookup *lk, const char *key, size_t len, const rt_cell *cells);
/* Lookup metrics in the Prometheus text format. */
int  rt_lookups_metrics(const rt_lookups *ls, rt_buf *out);
/* Close connections, free caches. */
void rt_lookups_free(rt_lookups *ls);

#endif
