/* lookup_def.h - the inside of a lookup, shared by lookup.c (fetching and caching)
 * and lookup_conf.c (definitions from config, SQL, metrics). Not for other layers. */
#ifndef RT_LOOKUP_DEF_H
#define RT_LOOKUP_DEF_H

#include "lookup.h"
#include "metrics.h"

enum rt_cache_mode { RT_CACHE_PARTIAL, RT_CACHE_FULL, RT_CACHE_NONE };
enum rt_on_failure { RT_ON_FAILURE_WAIT, RT_ON_FAILURE_NULL, RT_ON_FAILURE_DLQ };

#define RT_LOOKUP_MAX_BATCH 4096
#define RT_LOOKUP_IN_SIZES 13       /* IN lists of 1, 2, 4, ... 4096 keys */

struct rt_lookup {
    /* definition */
    char *name, *table, *key, *columns, *query;
    enum rt_cache_mode mode;
    size_t max_rows, batch_size;
    long long expire_write_ms, expire_access_ms, reload_ms, max_wait_ms;
    int cache_missing;
    enum rt_on_failure on_failure;
    int backoff_first_ms, backoff_max_ms;
    char *in_sql[RT_LOOKUP_IN_SIZES];   /* table lookups, by log2 of the IN list size */
    char *load_sql;                     /* full cache */
    char **fields;                      /* row field names, from the result */
    unsigned nfields;
    /* running */
    rt_mysql *db;
    struct event *flush_ev, *retry_ev, *reload_ev;
    rt_cache keys;          /* partial/none: cached and pending keys; full: pending */
    rt_cache full, next_full;           /* full: the table in use, the one loading */
    rt_entry sendq;         /* sentinel of the pending keys not yet sent */
    rt_entry *inflight[RT_LOOKUP_MAX_BATCH];
    const char *params[RT_LOOKUP_MAX_BATCH];
    size_t lens[RT_LOOKUP_MAX_BATCH];
    size_t ninflight;
    int loading_full, full_loaded, load_oom, fields_seen, failing;
    int backoff_ms;
    double started;         /* monotonic start of the statement in flight */
    double last_reload;     /* epoch seconds of the last full load */
    /* usage counters */
    uint64_t hits, misses, loads, load_failures, evicted_size, evicted_expired, given_up;
    uint64_t waiting;
    rt_histogram load_latency;
};

/* Open the connection and start the first full load. -1 when out of memory. */
int  rt_lookup_start(rt_lookup *lk, struct event_base *base, const rt_mysql_conf *mc);
/* Remember the names of the row fields of a result. -1 when out of memory. */
int  rt_lookup_set_fields(rt_lookup *lk, const char *const *names, unsigned n);
/* The cache key text of a result cell: text as is, numbers printed. -1 for NULL. */
int  rt_cell_key(const rt_cell *c, char *num, size_t numlen, const char **k, size_t *len);
/* Free the definition part. */
void rt_lookup_def_free(rt_lookup *lk);
/* Close and free everything. */
void rt_lookup_free(rt_lookup *lk);

#endif
