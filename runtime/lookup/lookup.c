/* lookup.c - fetching, caching and waiting for dimension rows.
 *
 * Misses queue their key once (later callers join the same entry) and the send queue
 * goes out in batches: with a table lookup, one prepared WHERE key IN (?,...) per
 * batch, sized up to the next power of two (the tail repeats the last key) so a
 * handful of statements cover every batch size. A failed statement puts its keys back
 * at the front of the queue and retries after a doubling backoff; waits older than
 * max.wait.ms are then settled by on.failure. A full cache loads the whole table into
 * a new key table and swaps it in only when the load succeeded. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "lookup_def.h"
#include "metrics.h"

static void flush(rt_lookup *lk);

/* Answer every wait of `e`: READY with `row`, or FAILED with `error`. */
static void wake_waiters(rt_lookup *lk, rt_entry *e, rt_row *row, const char *error)
{
    rt_lkwait *w = e->waiters;
    e->waiters = NULL;
    e->wtail = &e->waiters;
    while (w) {
        rt_lkwait *next = w->next;
        w->entry = NULL;
        if (error) {
            w->state = RT_WAIT_FAILED;
            snprintf(w->error, sizeof w->error, "%s", error);
        } else {
            w->state = RT_WAIT_READY;
            w->row = rt_row_ref(row);
        }
        lk->waiting--;
        w->wake(w->arg, w);
        w = next;
    }
}

/* Settle every wait of a pending entry and take it out of the key table. */
static void resolve(rt_lookup *lk, rt_entry *e, rt_row *row, const char *error)
{
    wake_waiters(lk, e, row, error);
    rt_cache_remove(&lk->keys, e);
}

static void evict_over_limit(rt_lookup *lk)
{
    while (lk->keys.cached > lk->max_rows) {
        rt_cache_remove(&lk->keys, rt_cache_oldest(&lk->keys));
        lk->evicted_size++;
    }
}

/* A fetched key: answer its waits, then cache it (partial) or drop it. */
static void settle(rt_lookup *lk, rt_entry *e, rt_row *row)
{
    if (lk->mode == RT_CACHE_PARTIAL && (row || lk->cache_missing)) {
        rt_cache_store(&lk->keys, e, row, rt_clock_s());
        wake_waiters(lk, e, row, NULL);
        evict_over_limit(lk);
        return;
    }
    resolve(lk, e, row, NULL);
    rt_row_release(row);
}

static void on_row(void *arg, const rt_cell *cells, const char *const *names, unsigned n)
{
    rt_lookup *lk = arg;
    unsigned skip = lk->query ? 0 : 1;     /* table lookups select the key first */
    if (n < skip)
        return;
    if (!lk->fields_seen && rt_lookup_set_fields(lk, names + skip, n - skip) < 0)
        return;
    lk->fields_seen = 1;
    if (lk->loading_full) {
        char num[32];
        const char *k;
        size_t klen;
        if (rt_cell_key(&cells[0], num, sizeof num, &k, &klen) < 0)
            return;
        rt_entry *e = rt_cache_find(&lk->next_full, k, klen);
        if (!e)
            e = rt_cache_add(&lk->next_full, k, klen);
        rt_row *row = e ? rt_row_new(cells + skip, n - skip) : NULL;
        if (!row) {
            lk->load_oom = 1;
            return;
        }
        rt_cache_store(&lk->next_full, e, row, 0);
        return;
    }
    rt_entry *e = NULL;
    if (lk->query) {            /* one key per execution: its first row answers it */
        e = lk->ninflight ? lk->inflight[0] : NULL;
    } else {                    /* the key comes first; find the pending entry by it */
        char num[32];
        const char *k;
        size_t klen;
        if (rt_cell_key(&cells[0], num, sizeof num, &k, &klen) == 0)
            e = rt_cache_find(&lk->keys, k, klen);
    }
    if (e && e->state == RT_ENTRY_PENDING && !e->row && !(e->row = rt_row_new(cells + skip, n - skip)))
        lk->load_oom = 1;
}

/* Past max.wait.ms, on.failure decides for the waits of a key that cannot be fetched. */
static void apply_failure_policy(rt_lookup *lk, rt_entry *e, const char *error)
{
    if (lk->on_failure == RT_ON_FAILURE_WAIT || rt_clock_s() - e->since < lk->max_wait_ms / 1e3)
        return;
    char why[256];
    snprintf(why, sizeof why, "lookup %s: no answer within %lld ms: %s", lk->name,
             lk->max_wait_ms, error);
    lk->given_up++;
    rt_entry_unlink(e);         /* from the send queue */
    resolve(lk, e, NULL, lk->on_failure == RT_ON_FAILURE_DLQ ? why : NULL);
}

static void schedule(rt_lookup *lk, struct event *ev, long long ms, const char *what)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    if (evtimer_add(ev, &tv) < 0)
        rt_error("lookup %s: cannot schedule the next %s", lk->name, what);
}

/* A statement failed: retry after a doubling backoff; waits older than max.wait.ms
 * are settled by on.failure meanwhile. */
static void note_failure(rt_lookup *lk, const char *error)
{
    lk->load_failures++;
    if (!lk->failing)
        rt_warn("lookup %s: %s; retrying with backoff, events wait", lk->name, error);
    lk->failing = 1;
    if (lk->backoff_ms == 0)
        lk->backoff_ms = lk->backoff_first_ms;
    else if ((lk->backoff_ms *= 2) > lk->backoff_max_ms)
        lk->backoff_ms = lk->backoff_max_ms;
    schedule(lk, lk->retry_ev, lk->backoff_ms, "retry");
    for (rt_entry *e = lk->sendq.next, *next; e != &lk->sendq; e = next) {
        next = e->next;
        apply_failure_policy(lk, e, error);
    }
}

static void note_success(rt_lookup *lk)
{
    if (lk->failing)
        rt_info("lookup %s: database answers again", lk->name);
    lk->failing = 0;
    lk->backoff_ms = 0;
}

static void on_fetched(void *arg, int rc, const char *error)
{
    rt_lookup *lk = arg;
    rt_histogram_observe(&lk->load_latency, rt_clock_s() - lk->started);
    if (rc == 0 && lk->load_oom) {
        rc = -1;
        error = "out of memory while reading rows";
    }
    lk->load_oom = 0;
    if (rc == 0) {
        lk->loads++;
        note_success(lk);
        for (size_t i = 0; i < lk->ninflight; i++) {
            rt_entry *e = lk->inflight[i];
            rt_row *row = e->row;
            e->row = NULL;
            settle(lk, e, row);
        }
    } else {
        /* Back to the front of the queue, in their order, then the policy. */
        for (size_t i = lk->ninflight; i-- > 0;) {
            rt_entry *e = lk->inflight[i];
            rt_row_release(e->row);
            e->row = NULL;
            rt_entry_link_after(&lk->sendq, e);
        }
        note_failure(lk, error);
    }
    lk->ninflight = 0;
    if (rc == 0)
        flush(lk);
}

/* Send the next batch when the connection is free. */
static void flush(rt_lookup *lk)
{
    if (lk->mode == RT_CACHE_FULL || rt_mysql_busy(lk->db) || lk->sendq.next == &lk->sendq ||
        evtimer_pending(lk->retry_ev, NULL))
        return;
    size_t n = 0;
    while (n < lk->batch_size && lk->sendq.next != &lk->sendq) {
        rt_entry *e = lk->sendq.next;
        rt_entry_unlink(e);
        lk->inflight[n] = e;
        lk->params[n] = e->key;
        lk->lens[n] = e->klen;
        n++;
        if (lk->query)
            break;      /* one key per execution of the user's query */
    }
    lk->ninflight = n;
    const char *sql = lk->query;
    unsigned nparams = (unsigned)n;
    if (!sql) {
        unsigned k = 0;
        while ((1u << k) < n)
            k++;
        for (size_t i = n; i < (1u << k); i++) {   /* pad with the last key */
            lk->params[i] = lk->params[n - 1];
            lk->lens[i] = lk->lens[n - 1];
        }
        sql = lk->in_sql[k];
        nparams = 1u << k;
    }
    lk->started = rt_clock_s();
    lk->fields_seen = 0;
    if (rt_mysql_exec(lk->db, sql, lk->params, lk->lens, nparams, on_row, on_fetched, lk) < 0)
        on_fetched(lk, -1, "connection busy");
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    flush(arg);
}

static void start_full_load(rt_lookup *lk);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    rt_lookup *lk = arg;
    if (lk->mode == RT_CACHE_FULL)
        start_full_load(lk);
    else
        flush(lk);
}

static void on_loaded(void *arg, int rc, const char *error)
{
    rt_lookup *lk = arg;
    lk->loading_full = 0;
    rt_histogram_observe(&lk->load_latency, rt_clock_s() - lk->started);
    if (rc == 0 && lk->load_oom) {
        rc = -1;
        error = "out of memory while loading";
    }
    if (rc < 0) {
        rt_cache_free(&lk->next_full);
        /* A loaded table keeps serving; only the first load is retried soon. */
        if (lk->full_loaded) {
            lk->load_failures++;
            rt_warn("lookup %s: reload failed (%s); keeping the copy loaded before", lk->name,
                    error);
            schedule(lk, lk->reload_ev, lk->reload_ms, "reload");
        } else {
            note_failure(lk, error);
        }
        return;
    }
    note_success(lk);
    lk->loads++;
    rt_cache_free(&lk->full);
    lk->full = lk->next_full;
    memset(&lk->next_full, 0, sizeof lk->next_full);
    lk->full_loaded = 1;
    lk->last_reload = rt_epoch_s();
    rt_info("lookup %s: loaded %zu rows", lk->name, lk->full.cached);
    /* Keys asked for before the first load are answered from the new table. */
    while (lk->sendq.next != &lk->sendq) {
        rt_entry *e = lk->sendq.next, *f = rt_cache_find(&lk->full, e->key, e->klen);
        rt_entry_unlink(e);
        resolve(lk, e, f ? f->row : NULL, NULL);
    }
    schedule(lk, lk->reload_ev, lk->reload_ms, "reload");
}

static void start_full_load(rt_lookup *lk)
{
    if (rt_mysql_busy(lk->db))
        return;
    if (rt_cache_init(&lk->next_full) < 0) {
        on_loaded(lk, -1, "out of memory");
        return;
    }
    lk->loading_full = 1;
    lk->load_oom = 0;
    lk->fields_seen = 0;
    lk->started = rt_clock_s();
    if (rt_mysql_exec(lk->db, lk->load_sql, NULL, NULL, 0, on_row, on_loaded, lk) < 0)
        on_loaded(lk, -1, "connection busy");
}

static void on_reload(evutil_socket_t fd, short what, void *arg)
{
    start_full_load(arg);
}

int rt_lookup_start(rt_lookup *lk, struct event_base *base, const rt_mysql_conf *mc)
{
    lk->db = rt_mysql_new(base, mc, lk->name);
    lk->flush_ev = event_new(base, -1, 0, on_flush, lk);
    lk->retry_ev = evtimer_new(base, on_retry, lk);
    lk->reload_ev = evtimer_new(base, on_reload, lk);
    if (!lk->db || !lk->flush_ev || !lk->retry_ev || !lk->reload_ev)
        return -1;
    if (lk->mode == RT_CACHE_FULL)
        start_full_load(lk);
    return 0;
}

int rt_lookup_get(rt_lookup *lk, const char *key, size_t len, rt_row **row, rt_lkwait *w)
{
    rt_entry *e;
    if (lk->mode == RT_CACHE_FULL && lk->full_loaded) {
        e = rt_cache_find(&lk->full, key, len);
        lk->hits++;
        *row = e ? e->row : NULL;
        return 1;
    }
    e = rt_cache_find(&lk->keys, key, len);
    if (e && e->state == RT_ENTRY_CACHED) {
        double now = lk->expire_write_ms || lk->expire_access_ms ? rt_clock_s() : 0;
        if ((lk->expire_write_ms && (now - e->written) * 1e3 >= lk->expire_write_ms) ||
            (lk->expire_access_ms && (now - e->accessed) * 1e3 >= lk->expire_access_ms)) {
            rt_cache_remove(&lk->keys, e);
            lk->evicted_expired++;
            e = NULL;
        } else {
            rt_cache_touch(&lk->keys, e, now);
            lk->hits++;
            *row = e->row;
            return 1;
        }
    }
    lk->misses++;
    if (!e) {
        if (!w && lk->mode == RT_CACHE_FULL)
            return 0;
        if (!(e = rt_cache_add(&lk->keys, key, len)))
            return -1;
        e->since = rt_clock_s();
        rt_entry_link_after(lk->sendq.prev, e);     /* at the end of the send queue */
        if (lk->mode != RT_CACHE_FULL)
            event_active(lk->flush_ev, 0, 0);
    }
    if (!w)
        return 0;       /* the key is being fetched; this caller cannot wait for it */
    w->next = NULL;
    w->lk = lk;
    w->entry = e;
    w->state = RT_WAIT_PENDING;
    /* A process() that looks up twice reuses its wait: the first answer, already
     * copied into Lua, is let go here. */
    rt_row_release(w->row);
    w->row = NULL;
    *e->wtail = w;
    e->wtail = &w->next;
    lk->waiting++;
    return 0;
}

int rt_lookup_fixture(rt_lookup *lk, const char *const *fields, unsigned n)
{
    rt_cache_free(&lk->full);
    if (rt_cache_init(&lk->full) < 0 || rt_lookup_set_fields(lk, fields, n) < 0)
        return -1;
    lk->mode = RT_CACHE_FULL;
    lk->full_loaded = lk->fields_seen = 1;
    return 0;
}

int rt_lookup_fixture_row(rt_lookup *lk, const char *key, size_t len, const rt_cell *cells)
{
    rt_row *row = rt_row_new(cells, lk->nfields);
    rt_entry *e = row ? rt_cache_find(&lk->full, key, len) : NULL;
    if (row && !e)
        e = rt_cache_add(&lk->full, key, len);
    if (!e) {
        rt_row_release(row);
        return -1;
    }
    rt_cache_store(&lk->full, e, row, 0);
    return 0;
}

void rt_lkwait_cancel(rt_lkwait *w)
{
    rt_entry *e = w->entry;
    if (!e)
        return;
    rt_lkwait **p = &e->waiters;
    while (*p && *p != w)
        p = &(*p)->next;
    if (*p) {
        *p = w->next;
        if (e->wtail == &w->next)
            e->wtail = p;
        w->lk->waiting--;
    }
    w->entry = NULL;
}

void rt_lookup_free(rt_lookup *lk)
{
    rt_mysql_free(lk->db);
    if (lk->flush_ev)
        event_free(lk->flush_ev);
    if (lk->retry_ev)
        event_free(lk->retry_ev);
    if (lk->reload_ev)
        event_free(lk->reload_ev);
    rt_cache_free(&lk->keys);
    rt_cache_free(&lk->full);
    rt_cache_free(&lk->next_full);
    rt_lookup_def_free(lk);
}
