/* lookup_metrics.c - per-lookup counters as Prometheus text, from one table. */
#include <stddef.h>
#include <stdio.h>

#include "lookup_def.h"

static double get_u64(const rt_lookup *lk, size_t off)
{
    return (double)*(const uint64_t *)((const char *)lk + off);
}

static const struct {
    const char *name, *type, *help, *labels;
    size_t off;
} counters[] = {
#define C(field) offsetof(rt_lookup, field)
    { "eddy_lookup_hits_total", "counter", "Lookups answered from the cache.", NULL, C(hits) },
    { "eddy_lookup_misses_total", "counter", "Lookups that had to wait for the database.", NULL,
      C(misses) },
    { "eddy_lookup_loads_total", "counter",
      "Statements that answered: batches of keys, or full-table loads.", NULL, C(loads) },
    { "eddy_lookup_load_failures_total", "counter",
      "Statements that failed (then retried with backoff).", NULL, C(load_failures) },
    { "eddy_lookup_evictions_total", "counter", "Cached rows dropped, by cause.",
      "cause=\"size\"", C(evicted_size) },
    { "eddy_lookup_evictions_total", NULL, NULL, "cause=\"expired\"", C(evicted_expired) },
    { "eddy_lookup_given_up_total", "counter",
      "Keys whose waits on.failure settled after max.wait.ms.", NULL, C(given_up) },
    { "eddy_lookup_waiting", "gauge", "Lookup calls waiting for the database.", NULL,
      C(waiting) },
#undef C
};

/* Each lookup's own database connection (core/mysql_conn.c counts). */
static double connected(const rt_mysql_stats *st) { return st->connected; }
static double connects(const rt_mysql_stats *st) { return (double)st->connects; }
static double connect_failures(const rt_mysql_stats *st) { return (double)st->connect_failures; }

static const struct {
    const char *name, *type, *help;
    double (*value)(const rt_mysql_stats *st);
} connection[] = {
    { "eddy_lookup_db_connected", "gauge",
      "1 while the lookup's database connection is open (it opens with the first miss or "
      "load, again after a loss).", connected },
    { "eddy_lookup_db_connects_total", "counter",
      "Connections opened: 1, and one more for each reconnect after a lost connection.",
      connects },
    { "eddy_lookup_db_connect_failures_total", "counter",
      "Connection attempts that failed (server down, refused, wrong password).",
      connect_failures },
};

static int connection_metrics(const rt_lookups *ls, rt_buf *out)
{
    char labels[256];
    for (size_t c = 0; c < sizeof connection / sizeof *connection; c++) {
        if (rt_prom_header(out, connection[c].name, connection[c].type, connection[c].help))
            return -1;
        for (size_t i = 0; i < ls->n; i++) {
            rt_mysql_stats st = { 0 };
            if (ls->v[i]->db)
                rt_mysql_get_stats(ls->v[i]->db, &st);
            snprintf(labels, sizeof labels, "lookup=\"%s\"", ls->v[i]->name);
            if (rt_prom_sample(out, connection[c].name, labels, connection[c].value(&st)))
                return -1;
        }
    }
    return 0;
}

int rt_lookups_metrics(const rt_lookups *ls, rt_buf *out)
{
    char labels[256];
    if (!ls->n)
        return 0;
    for (size_t c = 0; c < sizeof counters / sizeof *counters; c++) {
        if (counters[c].type &&
            rt_prom_header(out, counters[c].name, counters[c].type, counters[c].help))
            return -1;
        for (size_t i = 0; i < ls->n; i++) {
            snprintf(labels, sizeof labels, "lookup=\"%s\"%s%s", ls->v[i]->name,
                     counters[c].labels ? "," : "",
                     counters[c].labels ? counters[c].labels : "");
            if (rt_prom_sample(out, counters[c].name, labels, get_u64(ls->v[i], counters[c].off)))
                return -1;
        }
    }
    if (connection_metrics(ls, out) < 0 ||
        rt_prom_header(out, "eddy_lookup_cache_rows", "gauge", "Rows held in the cache."))
        return -1;
    for (size_t i = 0; i < ls->n; i++) {
        const rt_lookup *lk = ls->v[i];
        snprintf(labels, sizeof labels, "lookup=\"%s\"", lk->name);
        if (rt_prom_sample(out, "eddy_lookup_cache_rows", labels,
                           (double)(lk->mode == RT_CACHE_FULL ? lk->full.cached : lk->keys.cached)))
            return -1;
    }
    if (rt_prom_header(out, "eddy_lookup_load_seconds", "histogram",
                       "Time of one lookup statement (batch or full load)."))
        return -1;
    for (size_t i = 0; i < ls->n; i++) {
        snprintf(labels, sizeof labels, "lookup=\"%s\"", ls->v[i]->name);
        if (rt_prom_histogram(out, "eddy_lookup_load_seconds", labels, &ls->v[i]->load_latency))
            return -1;
    }
    if (rt_prom_header(out, "eddy_lookup_last_reload_timestamp_seconds", "gauge",
                       "Full caches: when the table was last loaded (0: not yet)."))
        return -1;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->v[i]->mode != RT_CACHE_FULL)
            continue;
        snprintf(labels, sizeof labels, "lookup=\"%s\"", ls->v[i]->name);
        if (rt_prom_sample(out, "eddy_lookup_last_reload_timestamp_seconds", labels,
                           ls->v[i]->last_reload))
            return -1;
    }
    return 0;
}
