/* worker_changelog.c - state.changelog=true: keyed state, windows and timers reach a
 * partition's next owner through Kafka, as Kafka Streams' changelog topics, so no
 * shared disk is needed.
 *
 * Writing: the keyed stores note every key they change (state/changes.h). The worker
 * writes each noted entry as it is now to the compacted topic `<kafka.group.id>-changelog`,
 * partition = the input partition, key = processor, store and key, so compaction keeps
 * each entry's latest value; an entry gone is a tombstone. Under at_least_once that is
 * when an event is done (complete(), after its windows and the firings it caused), and
 * the writes hold its ticket: its offset is stored only once they are acknowledged, so
 * the changelog is never behind the committed offsets (it may be ahead: the events
 * after them count again after a crash, as in Kafka Streams' at_least_once). Under
 * exactly_once it is when the transaction's offsets are taken (Kafka Streams' cache
 * flushed on commit): a key changed by many events of a commit interval is written
 * once, in the transaction with the outputs and the offsets, and a read_committed
 * restore gives exactly the state of the committed offsets.
 *
 * Restoring: when partitions are assigned, the source reads the group's offsets on a
 * thread of its own; the same thread reads their changelog partitions from the start to
 * their end (rt_worker_changelog_load), keeping the latest value of every key. The
 * partitions are taken (and read) only after that, on the loop, where the partition's
 * old entries are dropped and the loaded ones put in (rt_worker_changelog_restore). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ckpt_file.h"
#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "worker_int.h"

#define LOAD_TIMEOUT_MS (10 * 60 * 1000)    /* a restore that reads nothing this long fails */
#define POLL_MS 200
#define PROGRESS_MS 5000    /* a long restore says how far it is this often */

/* One loaded entry: the latest value of a record key, or (over a cached partition) that
 * it is gone. */
typedef struct loaded {
    size_t len;
    int gone;
    char data[];
} loaded;

/* What the changelog did for one partition number (GET /-/state). */
typedef struct cl_part {
    int restored;           /* restored at its last assignment */
    uint64_t restored_records;  /* records that restore read */
    int64_t restored_to;    /* the changelog offset it read to */
    int from_cache;         /* it read only the changelog after a state.dir file */
    uint64_t written;       /* records written since */
} cl_part;

struct rt_changelog {
    char *topic;
    rt_sink *sink;          /* eddy's own Kafka sink for it (rt_kafka_internal_sink) */
    rt_buf key, val, seen_key;  /* scratch */
    /* the assignment being restored: filled on the source's thread, read on the loop */
    rt_keymap loaded;       /* (partition, record key) -> loaded */
    int load_rc;
    char load_err[512];
    uint64_t load_records;
    int64_t load_ms;
    int64_t load_lag;       /* records still to read (the source's thread writes it,
                             * the loop reads it: atomic), 0 when no restore runs */
    cl_part *load_parts;    /* by partition number: what the load read */
    size_t nload_parts;
    cl_part *parts;         /* by partition number, on the loop */
    size_t nparts;
    rt_buf *cache;          /* by partition number: the state.dir file the load starts
                             * from (len 0: none) */
    size_t ncache;
    int64_t cache_max_age_ms;   /* state.cache.max.age.ms */
    /* metrics */
    uint64_t written, tombstones, restores, restored_records;
    int64_t restore_ms;
};

/* ---- record keys: processor '\0' store [window name] '\0' key ---- */

static int record_key(rt_buf *b, const char *proc, char store, const char *window,
                      const char *key, size_t len)
{
    b->len = 0;
    return rt_buf_append(b, proc, strlen(proc) + 1) || rt_buf_putc(b, store) ||
           (window && rt_buf_append(b, window, strlen(window))) || rt_buf_putc(b, '\0') ||
           rt_buf_append(b, key, len) ? -1 : 0;
}

/* The value of a noted entry as it is now into b; 1 written, 0 gone (a tombstone). */
static int entry_value(rt_keyed *k, const rt_change *c, rt_buf *b)
{
    b->len = 0;
    if (c->store == RT_CHANGE_STATE) {
        const rt_state_value *v = rt_keymap_get(&k->state.map, c->partition, c->key, c->len);
        if (!v)
            return 0;
        return rt_ckpt_put_i64(b, v->expires_ms) || rt_ckpt_put_bytes(b, v->data, v->len)
                   ? -1 : 1;
    }
    if (c->store == RT_CHANGE_TIMER) {
        const rt_timer *t = rt_keymap_get(&k->timers.map, c->partition, c->key, c->len);
        if (!t)
            return 0;
        return rt_ckpt_put_u64(b, t->klen) || rt_ckpt_put_u64(b, t->domain) ||
               rt_ckpt_put_i64(b, t->at) ? -1 : 1;
    }
    const rt_window_def *d = &k->windows.defs[c->def];
    const rt_wkey *wk = rt_keymap_get(&k->windows.keys[c->def], c->partition, c->key, c->len);
    if (!wk || (!wk->n && !wk->nslices))
        return 0;
    if (rt_ckpt_put_u64(b, d->kind) || rt_ckpt_put_i64(b, d->size) ||
        rt_ckpt_put_i64(b, d->slide) || rt_ckpt_put_i64(b, d->gap) ||
        rt_ckpt_put_panes(b, wk))
        return -1;
    return 1;
}

static int write_entry(rt_worker *w, rt_keyed *k, const char *proc, const rt_change *c,
                       rt_ticket *ticket)
{
    rt_changelog *cl = w->changelog;
    static const char stores[] = { 's', 't', 'w' };
    const char *window = c->store == RT_CHANGE_WINDOW ? k->windows.defs[c->def].name : NULL;
    if (record_key(&cl->key, proc, stores[c->store], window, c->key, c->len) < 0)
        return -1;
    int have = entry_value(k, c, &cl->val);
    if (have < 0)
        return -1;
    rt_out out = { ticket, cl->key.data, cl->key.len, NULL, 0, &c->partition };
    if (rt_sink_write(cl->sink, have ? cl->val.data : NULL, have ? cl->val.len : 0, &out) < 0)
        return -1;
    cl->written++;
    cl->tombstones += !have;
    if ((size_t)c->partition < cl->nparts)
        cl->parts[c->partition].written++;
    return 0;
}

/* Room for partition numbers below n in *v (zeroed); -1 when out of memory. */
static int parts_reserve(cl_part **v, size_t *have, size_t n)
{
    if (n <= *have)
        return 0;
    cl_part *nv = realloc(*v, n * sizeof *nv);
    if (!nv)
        return -1;
    memset(nv + *have, 0, (n - *have) * sizeof *nv);
    *v = nv;
    *have = n;
    return 0;
}

/* Whether the entry was already written by this flush (`seen` notes it if not); -1
 * when out of memory. */
static int written_before(rt_keymap *seen, rt_buf *scratch, const rt_change *c)
{
    uint32_t def = c->def;
    scratch->len = 0;
    if (rt_buf_putc(scratch, (char)c->store) < 0 || rt_buf_append(scratch, &def, sizeof def) < 0 ||
        rt_buf_append(scratch, c->key, c->len) < 0)
        return -1;
    void **slot = rt_keymap_put(seen, c->partition, scratch->data, scratch->len);
    if (!slot)
        return -1;
    if (*slot)
        return 1;
    *slot = seen;   /* any non-NULL mark */
    return 0;
}

int rt_worker_changelog_flush(rt_worker *w, rt_ticket *ticket)
{
    rt_origin origin = { .file = "(changelog)" };
    rt_changelog *cl = w->changelog;
    /* Not held on an event's ticket: changes of many events (a commit interval's under
     * exactly_once), where a hot key is noted many times and written once. */
    rt_keymap seen = { 0 };
    int rc = -1;
    if (!cl)
        return 0;
    for (size_t i = 0; i < w->nkeyed && !w->failed; i++) {
        rt_keyed *k = w->keyed[i];
        rt_change c;
        size_t pos = 0;
        if (k->changes.lost) {
            rt_error("changelog: out of memory noting the changes of processor %s; stopping "
                     "(its changelog would miss them)", w->procs[i]->name);
            goto fail;
        }
        while (rt_changes_next(&k->changes, &pos, &c)) {
            int dup = ticket ? 0 : written_before(&seen, &cl->seen_key, &c);
            if (dup < 0) {
                rt_error("changelog: out of memory; stopping");
                goto fail;
            }
            if (!dup && write_entry(w, k, w->procs[i]->name, &c, ticket) < 0) {
                rt_error("changelog: cannot write a change of processor %s to %s; stopping",
                         w->procs[i]->name, cl->topic);
                goto fail;
            }
        }
        rt_changes_clear(&k->changes);
        rt_keymap_free(&seen);
        memset(&seen, 0, sizeof seen);
    }
    rc = 0;
fail:
    rt_keymap_free(&seen);
    if (rc < 0)
        rt_worker_fail(w, &origin);
    return rc;
}

void rt_worker_changelog_attach(rt_worker *w, rt_keyed *k)
{
    if (!w->changelog)
        return;
    k->state.changes = k->timers.changes = k->windows.changes = &k->changes;
}

/* ---- start-up ---- */

/* Co-partitioned topics have the same count; the largest is taken. */
int rt_worker_input_partitions(rt_worker *w, char *err, size_t errlen)
{
    const char *topics = rt_config_get(w->cfg, "source.topics");
    int most = -1;
    char *copy = strdup(topics ? topics : ""), *save = NULL;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int n = rt_kafka_topic_partitions(&w->sinks, t, 10000, err, errlen);
        if (n < 0) {
            most = -1;
            break;
        }
        most = n > most ? n : most;
    }
    free(copy);
    return most;
}

int rt_worker_changelog_start(rt_worker *w, char *err, size_t errlen)
{
    char where[300], why[600];
    const rt_config *c = w->cfg;
    if (!rt_config_int(c, "state.changelog"))
        return 0;
    if (!rt_source_kind_has(c, RT_SOURCE_COMMITS)) {
        snprintf(err, errlen, "%s: state.changelog: needs a Kafka source (source.type=kafka)",
                 rt_config_where(c, "state.changelog", where, sizeof where));
        return -1;
    }
    rt_changelog *cl = calloc(1, sizeof *cl);
    const char *group = rt_config_get(c, "kafka.group.id");
    const char *topic = rt_config_get(c, "state.changelog.topic");
    int parts;
    if (cl && topic && *topic)
        cl->topic = strdup(topic);
    else if (cl && (cl->topic = malloc(strlen(group ? group : "eddy") + sizeof "-changelog")))
        sprintf(cl->topic, "%s-changelog", group ? group : "eddy");
    if (!cl || !cl->topic) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(cl->sink = rt_kafka_internal_sink(&w->sinks, c, "changelog", cl->topic, why,
                                            sizeof why)) ||
        (parts = rt_worker_input_partitions(w, why, sizeof why)) < 0 ||
        rt_kafka_internal_topic(&w->sinks, cl->topic, parts, 1,
                                w->embedded.bootstraps != NULL, 10000, why, sizeof why) < 0 ||
        (rt_kafka_track_acked(cl->sink, parts) < 0 &&
         snprintf(why, sizeof why, "out of memory") > 0)) {
        snprintf(err, errlen, "state.changelog: %s", why);
        goto fail;
    }
    cl->load_rc = -1;
    cl->cache_max_age_ms = rt_config_int(c, "state.cache.max.age.ms");
    w->changelog = cl;
    for (size_t i = 0; i < w->nkeyed; i++)
        rt_worker_changelog_attach(w, w->keyed[i]);
    const char *dir = rt_config_get(c, "state.dir");
    rt_info("state.changelog: keyed state, windows and timers are written to %s "
            "(%d partitions) and restored from it on assignment%s%s%s", cl->topic, parts,
            dir && *dir ? " (the files in " : "", dir && *dir ? dir : "",
            dir && *dir ? " are a cache: only the changelog after them is read)" : "");
    return 0;
fail:
    if (cl)
        free(cl->topic);
    free(cl);
    return -1;
}

/* ---- restoring ---- */

static void loaded_clear(rt_changelog *cl)
{
    size_t i = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&cl->loaded, &i)))
        free(s->value);
    rt_keymap_free(&cl->loaded);
    memset(&cl->loaded, 0, sizeof cl->loaded);
    for (size_t p = 0; p < cl->ncache; p++)
        rt_buf_free(&cl->cache[p]);
    free(cl->cache);
    cl->cache = NULL;
    cl->ncache = 0;
}

static int cached(const rt_changelog *cl, int32_t partition)
{
    return (size_t)partition < cl->ncache && cl->cache[partition].len;
}

/* Keep the latest value of the record's key; a tombstone forgets it, or, over a
 * cached partition, is kept: the file's entry must go too. */
static int load_record(rt_changelog *cl, const rd_kafka_message_t *m)
{
    if (!m->key || !m->key_len)
        return 0;   /* not eddy's */
    if (!m->payload && !cached(cl, m->partition)) {
        free(rt_keymap_del(&cl->loaded, m->partition, m->key, m->key_len));
        return 0;
    }
    if (parts_reserve(&cl->load_parts, &cl->nload_parts, (size_t)m->partition + 1) < 0)
        return -1;
    cl->load_parts[m->partition].restored_records++;
    loaded *v = malloc(sizeof *v + (m->payload ? m->len : 0));
    void **slot = v ? rt_keymap_put(&cl->loaded, m->partition, m->key, m->key_len) : NULL;
    if (!slot) {
        free(v);
        return -1;
    }
    v->gone = !m->payload;
    v->len = m->payload ? m->len : 0;
    if (v->len)
        memcpy(v->data, m->payload, m->len);
    free(*slot);
    *slot = v;
    return 0;
}

/* A consumer of our own, outside the group, reading only committed records. */
static rd_kafka_t *load_consumer(rt_worker *w, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rt_kafka_conf(w->cfg, w->embedded.bootstraps, err, errlen);
    char why[512];
    if (!conf)
        return NULL;
    if (rt_kafka_conf_put(conf, "enable.auto.commit", "false", err, errlen) < 0 ||
        rt_kafka_conf_put(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
        rt_kafka_conf_put(conf, "enable.partition.eof", "true", err, errlen) < 0 ||
        rt_kafka_conf_put(conf, "isolation.level", "read_committed", err, errlen) < 0 ||
        /* a cache's position the topic no longer has: said, not skipped (from_start) */
        rt_kafka_conf_put(conf, "auto.offset.reset", "error", err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        snprintf(err, errlen, "%s", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Where the load of `partition` starts: after the state.dir file's position when there
 * is a usable one (kept in cl->cache), else at the beginning. */
static int64_t load_from(rt_worker *w, rt_changelog *cl, int32_t partition)
{
    char err[512];
    const char *unused = NULL;
    int64_t when, position;
    if (!w->state_dir || (size_t)partition >= cl->ncache)
        return RD_KAFKA_OFFSET_BEGINNING;
    rt_buf *b = &cl->cache[partition];
    int got = rt_ckpt_read(w->state_dir, partition, b, err, sizeof err);
    if (got < 0)
        rt_warn("changelog: %s; partition %d is restored from the whole changelog", err,
                (int)partition);
    else if (got > 0 && rt_worker_cache_position(b, partition, &when, &position) < 0)
        unused = "holds no changelog offset (written without state.changelog)";
    else if (got > 0 && rt_epoch_ms() - when > cl->cache_max_age_ms)
        unused = "older than state.cache.max.age.ms";
    else if (got > 0)
        return position;
    if (unused)
        rt_info("changelog: the state.dir file of partition %d %s; the partition is "
                "restored from the whole changelog", (int)partition, unused);
    b->len = 0;
    return RD_KAFKA_OFFSET_BEGINNING;
}

/* A cached partition whose position the changelog does not have (the topic was made
 * again, or compacted past it): the file is dropped and the partition read from the
 * start. -1 when it cannot be. */
static int from_start(rt_changelog *cl, rd_kafka_t *rk, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l)
        return -1;
    rt_warn("changelog: partition %d does not have the offset its state.dir file was taken "
            "at; it is restored from the whole changelog", (int)partition);
    cl->cache[partition].len = 0;
    rd_kafka_topic_partition_list_add(l, cl->topic, partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, l, 10000);
    int rc = e || l->elems[0].err ? -1 : 0;
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* The records of l's partitions not read yet, by the high watermarks the fetches
 * brought (no request of its own). */
static int64_t load_lag(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l,
                        const int64_t *next)
{
    int64_t lag = 0, lo, hi;
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &l->elems[i];
        if (p->err == 0 &&
            rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) == 0 &&
            hi > next[i])
            lag += hi - (next[i] > lo ? next[i] : lo);
    }
    return lag;
}

int rt_worker_changelog_load(void *arg, size_t n, const char *const *topics,
                             const int *partitions)
{
    rt_worker *w = arg;
    rt_changelog *cl = w->changelog;
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_t *rk = NULL;
    int64_t t0 = rt_clock_ms(), last = t0, said = t0, *next = NULL;
    int left = 0;
    cl->load_rc = -1;
    cl->load_err[0] = '\0';
    cl->load_records = 0;
    loaded_clear(cl);
    free(cl->load_parts);
    cl->load_parts = NULL;
    cl->nload_parts = 0;
    size_t most = 0;
    for (size_t i = 0; i < n; i++)
        most = (size_t)partitions[i] + 1 > most ? (size_t)partitions[i] + 1 : most;
    if (!(l = rd_kafka_topic_partition_list_new((int)n + 1)) ||
        !(next = calloc(n + 1, sizeof *next)) ||
        (w->state_dir && !(cl->cache = calloc(most + 1, sizeof *cl->cache)))) {
        snprintf(cl->load_err, sizeof cl->load_err, "out of memory");
        goto out;
    }
    cl->ncache = w->state_dir ? most : 0;
    for (size_t i = 0; i < n; i++)
        if (!rd_kafka_topic_partition_list_find(l, cl->topic, partitions[i])) {
            int64_t from = load_from(w, cl, partitions[i]);
            rd_kafka_topic_partition_list_add(l, cl->topic, partitions[i])->offset = from;
            next[l->cnt - 1] = from < 0 ? 0 : from;
            left++;
        }
    if (!left) {
        cl->load_rc = 0;
        goto out;
    }
    if (!(rk = load_consumer(w, cl->load_err, sizeof cl->load_err)))
        goto out;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    if (e) {
        snprintf(cl->load_err, sizeof cl->load_err, "assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, POLL_MS);
        if (rt_clock_ms() - said >= PROGRESS_MS) {
            int64_t lag = load_lag(rk, l, next);
            __atomic_store_n(&cl->load_lag, lag, __ATOMIC_RELAXED);
            rt_info("changelog: restoring %d partitions from %s: %llu records read, %lld "
                    "to go, %.0f s so far", l->cnt, cl->topic,
                    (unsigned long long)cl->load_records, (long long)lag,
                    (double)(rt_clock_ms() - t0) / 1000);
            said = rt_clock_ms();
        }
        if (!m) {
            if (rt_clock_ms() - last > LOAD_TIMEOUT_MS) {
                snprintf(cl->load_err, sizeof cl->load_err, "nothing read for %d s",
                         LOAD_TIMEOUT_MS / 1000);
                goto out;
            }
            continue;
        }
        last = rt_clock_ms();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(l, cl->topic, m->partition);
            if (p && p->err == 0) {
                p->err = RD_KAFKA_RESP_ERR__PARTITION_EOF;  /* counted once */
                left--;
                if (parts_reserve(&cl->load_parts, &cl->nload_parts,
                                  (size_t)m->partition + 1) == 0)
                    cl->load_parts[m->partition].restored_to = m->offset;
                if ((size_t)m->partition < cl->nload_parts)
                    cl->load_parts[m->partition].from_cache = cached(cl, m->partition);
            }
        } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && cached(cl, m->partition)) {
            if (from_start(cl, rk, m->partition) < 0) {
                snprintf(cl->load_err, sizeof cl->load_err, "cannot read partition %d "
                         "from its start", (int)m->partition);
                rd_kafka_message_destroy(m);
                goto out;
            }
        } else if (m->err) {
            /* Passing trouble (a broker away) is retried by librdkafka; these are not. */
            int fatal = m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
            if (fatal) {
                snprintf(cl->load_err, sizeof cl->load_err, "%s",
                         rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            }
        } else if (load_record(cl, m) < 0) {
            snprintf(cl->load_err, sizeof cl->load_err, "out of memory");
            rd_kafka_message_destroy(m);
            goto out;
        } else {
            cl->load_records++;
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(l, cl->topic, m->partition);
            if (p)
                next[p - l->elems] = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
    cl->load_rc = 0;
out:
    cl->load_ms = rt_clock_ms() - t0;
    __atomic_store_n(&cl->load_lag, 0, __ATOMIC_RELAXED);
    free(next);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return cl->load_rc;
}

/* The processor slot whose name is `name`, or -1. */
static int keyed_slot(rt_worker *w, const char *name)
{
    for (size_t i = 0; i < w->nkeyed; i++)
        if (!strcmp(w->procs[i]->name, name))
            return (int)i;
    return -1;
}

static int restore_window(rt_windows *ws, int32_t partition, const char *window,
                          const char *key, size_t klen, int gone, rt_ckpt_reader *r)
{
    size_t d = 0;
    while (d < ws->ndefs && strcmp(ws->defs[d].name, window))
        d++;
    if (d < ws->ndefs)
        rt_windows_forget(ws, d, partition, key, klen);     /* a cached copy */
    if (gone)
        return 0;
    uint64_t kind = rt_ckpt_get_u64(r);
    int64_t size = rt_ckpt_get_i64(r), slide = rt_ckpt_get_i64(r), gap = rt_ckpt_get_i64(r);
    uint64_t npanes = rt_ckpt_get_u64(r);
    int same = d < ws->ndefs && ws->defs[d].kind == kind && ws->defs[d].size == size &&
               ws->defs[d].slide == slide && ws->defs[d].gap == gap;
    for (uint64_t j = 0; j < npanes && !r->bad; j++) {
        rt_pane p;
        if (rt_ckpt_get_pane(r, &p) < 0)
            return -1;
        if (r->bad || !same)
            free(p.acc);    /* a window gone or changed starts empty */
        else if (rt_windows_restore(ws, d, partition, key, klen, &p) < 0)
            return -1;
    }
    return 0;
}

/* Put one loaded entry back, in place of what a state.dir file put there (`gone`: only
 * remove that). -1 out of memory; r->bad when it does not parse. */
static int restore_entry(rt_worker *w, int32_t partition, const rt_keymap_slot *s, int gone,
                         int64_t now, rt_ckpt_reader *r)
{
    const char *k = s->key, *end = s->key + s->len;
    const char *nul = memchr(k, '\0', s->len);
    if (!nul || end - nul < 3) {
        r->bad = 1;
        return 0;
    }
    int slot = keyed_slot(w, k);
    char store = nul[1];
    const char *name = nul + 2, *nul2 = memchr(name, '\0', (size_t)(end - name));
    if (!nul2) {
        r->bad = 1;
        return 0;
    }
    const char *key = nul2 + 1;
    size_t klen = (size_t)(end - key);
    if (slot < 0)
        return 0;   /* a processor gone: its entries are dropped */
    rt_keyed *kd = w->keyed[slot];
    if (store == 's' && gone)
        return rt_state_del(&kd->state, NULL, partition, key, klen) < 0 ? -1 : 0;
    if (store == 's') {
        int64_t expires = rt_ckpt_get_i64(r);
        size_t vlen;
        const char *val = rt_ckpt_get_bytes(r, &vlen);
        if (!r->bad && (!expires || expires > now))
            return rt_state_set(&kd->state, NULL, partition, key, klen, val, vlen, expires);
        return rt_state_del(&kd->state, NULL, partition, key, klen) < 0 ? -1 : 0;
    }
    const rt_timer *t = store == 't' ? rt_keymap_get(&kd->timers.map, partition, key, klen)
                                     : NULL;
    if (t)      /* a cached copy */
        rt_timers_cancel(&kd->timers, partition, key, t->klen, key + t->klen + 1,
                         klen - t->klen - 1);
    if (store == 't' && gone)
        return 0;
    if (store == 't') {
        uint64_t tklen = rt_ckpt_get_u64(r), domain = rt_ckpt_get_u64(r);
        int64_t at = rt_ckpt_get_i64(r);
        if (r->bad || tklen >= klen || domain > RT_PROCESSING_TIME) {
            r->bad = 1;
            return 0;
        }
        return rt_timers_set(&kd->timers, partition, key, (size_t)tklen, key + tklen + 1,
                             klen - (size_t)tklen - 1, at, (enum rt_time_domain)domain);
    }
    if (store == 'w') {
        char window[256];
        size_t wlen = (size_t)(nul2 - name);
        if (wlen >= sizeof window) {
            r->bad = 1;
            return 0;
        }
        memcpy(window, name, wlen);
        window[wlen] = '\0';
        return restore_window(&kd->windows, partition, window, key, klen, gone, r);
    }
    r->bad = 1;
    return 0;
}

int rt_worker_changelog_restore(rt_worker *w, size_t n, const int *partitions)
{
    rt_changelog *cl = w->changelog;
    int64_t now = rt_epoch_ms(), t0 = rt_clock_ms();
    uint64_t entries = 0, bad = 0;
    size_t cached_parts = 0;
    int rc = -1;
    if (!n)
        return 0;   /* a cooperative rebalance that only took partitions away */
    if (cl->load_rc < 0) {
        rt_error("changelog: cannot restore the assigned partitions from %s: %s; stopping",
                 cl->topic, cl->load_err[0] ? cl->load_err : "not read");
        goto out;
    }
    /* Changes still noted belong to the partitions held before: out first. */
    if (rt_worker_changelog_flush(w, NULL) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int seen = 0, part = partitions[i];
        for (size_t j = 0; j < i; j++)
            seen |= partitions[j] == part;
        if (seen)
            continue;
        rt_worker_drop_partition(w, part);
        int got = cached(cl, part) ? rt_worker_restore_cache(w, part, &cl->cache[part]) : 0;
        if (got < 0) {
            rt_error("changelog: out of memory restoring partition %d; stopping", part);
            goto out;
        }
        if (got > 0) {
            /* Only the changelog after it was read: moved away, a restart reads all. */
            char path[600], aside[620];
            int moved =
                rt_ckpt_path(path, sizeof path, w->state_dir, part) == 0 &&
                snprintf(aside, sizeof aside, "%s.unreadable", path) < (int)sizeof aside &&
                rename(path, aside) == 0;
            rt_error("changelog: the state.dir file of partition %d cannot be read (another "
                     "version of eddy?); %s%s; stopping, so that the restart restores it from "
                     "the whole changelog", part, moved ? "moved to " : "move it away",
                     moved ? aside : "");
            goto out;
        }
        cached_parts += cached(cl, part);
    }
    size_t it = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&cl->loaded, &it))) {
        const loaded *v = s->value;
        rt_ckpt_reader r = { (const unsigned char *)v->data, v->len, 0, 0 };
        if (restore_entry(w, s->partition, s, v->gone, now, &r) < 0) {
            rt_error("changelog: out of memory restoring partition %d; stopping",
                     (int)s->partition);
            goto out;
        }
        bad += r.bad;
        entries++;
    }
    /* Restoring is not a change: nothing of it is written back. */
    for (size_t i = 0; i < w->nkeyed; i++)
        rt_changes_clear(&w->keyed[i]->changes);
    if (bad)
        rt_warn("changelog: %llu entries of %s could not be read (written by another "
                "version of eddy?) and were skipped", (unsigned long long)bad, cl->topic);
    for (size_t i = 0; i < n; i++) {
        size_t part = (size_t)partitions[i];
        if (parts_reserve(&cl->parts, &cl->nparts, part + 1) < 0)
            break;  /* only GET /-/state misses it */
        cl->parts[part] = part < cl->nload_parts ? cl->load_parts[part] : (cl_part){ 0 };
        cl->parts[part].restored = 1;
        cl->parts[part].written = 0;
    }
    cl->restores += n;
    cl->restored_records += cl->load_records;
    cl->restore_ms = cl->load_ms + (rt_clock_ms() - t0);
    rt_info("changelog: %zu partitions restored from %s: %llu records read, %llu entries, "
            "%.3f s (%zu from a state.dir file and the changelog after it)", n, cl->topic,
            (unsigned long long)cl->load_records, (unsigned long long)entries,
            (double)cl->restore_ms / 1000, cached_parts);
    rc = 0;
out:
    loaded_clear(cl);
    cl->load_rc = -1;   /* the next assignment must be read again */
    return rc;
}

int rt_worker_changelog_metrics(rt_worker *w, rt_buf *out)
{
    rt_changelog *cl = w->changelog;
    if (!cl)
        return 0;
    return rt_prom_header(out, "eddy_changelog_records_total", "counter",
                          "State changes written to the changelog topic (tombstones "
                          "included).") ||
           rt_prom_sample(out, "eddy_changelog_records_total", NULL, (double)cl->written) ||
           rt_prom_header(out, "eddy_changelog_tombstones_total", "counter",
                          "Changelog records that delete an entry.") ||
           rt_prom_sample(out, "eddy_changelog_tombstones_total", NULL,
                          (double)cl->tombstones) ||
           rt_prom_header(out, "eddy_changelog_restored_partitions_total", "counter",
                          "Partitions restored from the changelog on assignment.") ||
           rt_prom_sample(out, "eddy_changelog_restored_partitions_total", NULL,
                          (double)cl->restores) ||
           rt_prom_header(out, "eddy_changelog_restored_records_total", "counter",
                          "Changelog records read by restores.") ||
           rt_prom_sample(out, "eddy_changelog_restored_records_total", NULL,
                          (double)cl->restored_records) ||
           rt_prom_header(out, "eddy_changelog_restore_seconds", "gauge",
                          "Time the last restore took, reading and putting back.") ||
           rt_prom_sample(out, "eddy_changelog_restore_seconds", NULL,
                          (double)cl->restore_ms / 1000) ||
           rt_prom_header(out, "eddy_changelog_restore_lag_records", "gauge",
                          "Changelog records a restore running now has still to read "
                          "(updated every 5 s; 0 when none runs).") ||
           rt_prom_sample(out, "eddy_changelog_restore_lag_records", NULL,
                          (double)__atomic_load_n(&cl->load_lag, __ATOMIC_RELAXED))
               ? -1 : 0;
}

int64_t rt_worker_changelog_position(rt_worker *w, int32_t partition)
{
    rt_changelog *cl = w->changelog;
    if (!cl || partition < 0)
        return -1;
    int64_t acked = rt_kafka_acked_next(cl->sink, partition);
    const cl_part *p = (size_t)partition < cl->nparts ? &cl->parts[partition] : NULL;
    int64_t read = p && p->restored ? p->restored_to : -1;
    return acked > read ? acked : read;
}

json_t *rt_worker_changelog_describe(rt_worker *w, int32_t partition)
{
    rt_changelog *cl = w->changelog;
    if (!cl)
        return NULL;
    const cl_part *p = (size_t)partition < cl->nparts ? &cl->parts[partition] : NULL;
    if (!p || !p->restored)
        return json_pack("{s:s, s:s, s:I}", "topic", cl->topic, "restore", "none yet",
                         "written", (json_int_t)(p ? p->written : 0));
    return json_pack("{s:s, s:s, s:b, s:I, s:I, s:I}", "topic", cl->topic, "restore", "done",
                     "from_state_dir", p->from_cache,
                     "restored_records", (json_int_t)p->restored_records,
                     "restored_to_offset", (json_int_t)p->restored_to,
                     "written", (json_int_t)p->written);
}

void rt_worker_changelog_free(rt_worker *w)
{
    rt_changelog *cl = w->changelog;
    if (!cl)
        return;
    loaded_clear(cl);
    free(cl->load_parts);
    free(cl->parts);
    rt_buf_free(&cl->key);
    rt_buf_free(&cl->val);
    rt_buf_free(&cl->seen_key);
    free(cl->topic);
    free(cl);
    w->changelog = NULL;
}
