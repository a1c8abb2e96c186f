/* sink.c - the set of named sinks built from sink.<name>.* keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "sink.h"

/* The registry: every kind of output, found by `sink.<name>.type`. */
const rt_sink_kind *const rt_sink_kinds[] = {
    &rt_sink_kind_stdout, &rt_sink_kind_file, &rt_sink_kind_kafka, &rt_sink_kind_mysql,
    &rt_sink_kind_elasticsearch, &rt_sink_kind_clickhouse, NULL,
};

static const rt_sink_kind *find_kind(const char *name)
{
    for (size_t i = 0; rt_sink_kinds[i]; i++)
        if (strcmp(rt_sink_kinds[i]->name, name) == 0)
            return rt_sink_kinds[i];
    return NULL;
}

/* Sink names come from `sink.<name>.type` keys. */
static int sink_name(const char *key, char *name, size_t len)
{
    const char *p = key + strlen("sink."), *dot = strchr(p, '.');
    if (strncmp(key, "sink.", 5) || !dot || strcmp(dot, ".type") || (size_t)(dot - p) >= len)
        return -1;
    memcpy(name, p, (size_t)(dot - p));
    name[dot - p] = '\0';
    return 0;
}

/* eddy test: a sink that keeps what it is given (the kind's own check has run). */
static int capture_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    rt_buf *b = s->impl;
    if (rt_buf_append(b, rec, len) < 0 || rt_buf_putc(b, '\n') < 0)
        return -1;
    rt_sink_ack(s, out->ticket);
    return 0;
}

static int capture_flush(rt_sink *s)
{
    return 0;
}

static void capture_close(rt_sink *s)
{
    rt_buf_free(s->impl);
    free(s->impl);
}

static const rt_sink_ops capture_ops = {
    .write = capture_write, .flush = capture_flush, .close = capture_close,
};

static int capture_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err,
                        size_t errlen)
{
    /* A kind checks only, opening nothing, when its sinks have no event loop. */
    struct event_base *base = ss->env.base;
    ss->env.base = NULL;
    int rc = s->kind->check ? s->kind->check(ss, s, c, err, errlen) : 0;
    ss->env.base = base;
    if (s->ops)             /* what the check kept (the MySQL sink's definition) */
        s->ops->close(s);
    s->ops = NULL;
    s->impl = NULL;
    if (rc < 0)
        return -1;
    if (!(s->impl = calloc(1, sizeof(rt_buf)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->ops = &capture_ops;
    s->max_record = 0;
    return 0;
}

const rt_buf *rt_sink_captured(const rt_sink *s)
{
    return s->ops == &capture_ops ? s->impl : NULL;
}

void rt_sink_captured_clear(rt_sink *s)
{
    if (s->ops == &capture_ops)
        ((rt_buf *)s->impl)->len = 0;
}

int rt_sinks_setup(rt_sinks *ss, const rt_config *c, const rt_sink_env *env, char *err,
                   size_t errlen)
{
    char name[128], key[192], where[256];
    memset(ss, 0, sizeof *ss);
    if (env)
        ss->env = *env;
    /* Every sink.<name>.<x> must belong to a declared sink. */
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->v[i].key;
        if (strncmp(k, "sink.", 5))
            continue;
        const char *dot = strchr(k + 5, '.');
        snprintf(key, sizeof key, "sink.%.*s.type", (int)(dot - (k + 5)), k + 5);
        if (!rt_config_entry(c, key)) {
            snprintf(err, errlen, "%s:%d: %s: sink is not declared (set %s)", c->v[i].file,
                     c->v[i].line, k, key);
            goto fail;
        }
    }
    /* Allocated once: Kafka keeps pointers to sinks (topic opaques) for good. */
    size_t declared = 0;
    for (size_t i = 0; i < c->n; i++)
        declared += sink_name(c->v[i].key, name, sizeof name) == 0;
    ss->v = calloc(declared ? declared : 1, sizeof *ss->v);
    if (!ss->v) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (sink_name(c->v[i].key, name, sizeof name) < 0)
            continue;
        rt_sink *s = &ss->v[ss->n];
        memset(s, 0, sizeof *s);
        s->name = strdup(name);
        if (!s->name) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        ss->n++;
        s->type = c->v[i].value;
        s->tracker = ss->env.tracker;
        const rt_sink_kind *k = s->kind = find_kind(s->type);
        if (!k) {   /* config_keys.c lists the same names: only if the two disagree */
            snprintf(err, errlen, "%s: unknown sink type %s",
                     rt_config_where(c, c->v[i].key, where, sizeof where), s->type);
            goto fail;
        }
        snprintf(key, sizeof key, "sink.%s.key", name);
        s->key_field = k->flags & RT_SINK_KEY_COLUMNS ? NULL : rt_config_get(c, key);
        if (k->required) {
            const char *arg = rt_sink_conf(c, name, k->required);
            if (!arg || !*arg) {
                snprintf(err, errlen, "%s: sink.%s.%s: required for a %s sink",
                         rt_config_where(c, c->v[i].key, where, sizeof where), name,
                         k->required, s->type);
                goto fail;
            }
        }
        int (*open)(rt_sinks *, rt_sink *, const rt_config *, char *, size_t) =
            !env ? k->check : env->capture ? capture_open : k->open;
        char why[512];
        if (open && open(ss, s, c, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
    }
    const char *dlq = rt_config_get(c, "dlq.sink");
    rt_sink *d = rt_sinks_find(ss, dlq);
    if (!d) {
        snprintf(err, errlen, "%s: dlq.sink: no sink named '%s' (declare sink.%s.type)",
                 rt_config_where(c, "dlq.sink", where, sizeof where), dlq, dlq);
        goto fail;
    }
    /* Kafka can carry the original bytes untouched and the reason in headers. */
    d->raw_dead_letters = !ss->env.capture && (d->kind->flags & RT_SINK_RAW_DEAD_LETTERS) &&
                          !strcmp(rt_config_get(c, "dlq.format"), "headers");
    return 0;
fail:
    rt_sinks_close(ss);
    return -1;
}

const char *rt_sink_conf(const rt_config *c, const char *name, const char *field)
{
    char key[256];
    snprintf(key, sizeof key, "sink.%s.%s", name, field);
    return rt_config_get(c, key);
}

long long rt_sink_conf_int(const rt_config *c, const char *name, const char *field)
{
    char key[256];
    snprintf(key, sizeof key, "sink.%s.%s", name, field);
    return rt_config_int(c, key);
}

int rt_sink_conf_error(const rt_config *c, const char *name, const char *field, char *err,
                       size_t errlen, const char *what)
{
    char key[256], type[256], where[300];
    snprintf(key, sizeof key, "sink.%s.%s", name, field);
    snprintf(type, sizeof type, "sink.%s.type", name);
    rt_config_where(c, rt_config_entry(c, key) ? key : type, where, sizeof where);
    snprintf(err, errlen, "%s: %s: %s", where, key, what);
    return -1;
}

rt_sink *rt_sinks_find(const rt_sinks *ss, const char *name)
{
    for (size_t i = 0; i < ss->n; i++)
        if (strcmp(ss->v[i].name, name) == 0)
            return &ss->v[i];
    return NULL;
}

int rt_sink_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    rt_track_hold(out->ticket);
    if (s->ops->write(s, rec, len, out) < 0) {
        rt_track_release(s->tracker, out->ticket);
        return -1;
    }
    s->records++;
    return 0;
}

void rt_sink_ack(rt_sink *s, rt_ticket *ticket)
{
    rt_track_release(s->tracker, ticket);
}

int rt_sinks_flush(rt_sinks *ss)
{
    int rc = 0;
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i].ops && ss->v[i].ops->flush(&ss->v[i]) < 0)
            rc = -1;
    return rc;
}

int rt_sinks_drain(rt_sinks *ss, int timeout_ms)
{
    int rc = rt_sinks_flush(ss);
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i].ops && ss->v[i].ops->drain &&
            ss->v[i].ops->drain(&ss->v[i], timeout_ms) < 0)
            rc = -1;
    if (ss->kafka && rt_kafka_producer_drain(ss->kafka, timeout_ms) < 0)
        rc = -1;
    if (ss->kafka_dlq && rt_kafka_producer_drain(ss->kafka_dlq, timeout_ms) < 0)
        rc = -1;
    return rc;
}

int rt_sinks_metrics(const rt_sinks *ss, rt_buf *out)
{
    for (size_t i = 0; rt_sink_kinds[i]; i++)
        if (rt_sink_kinds[i]->metrics && rt_sink_kinds[i]->metrics(ss, out) < 0)
            return -1;
    return 0;
}

int rt_sink_kind_metrics(const rt_sinks *ss, const rt_sink_ops *ops, const rt_sink_metric *m,
                         size_t n, void (*values)(rt_sink *s, double *v), rt_buf *out)
{
    double *v = NULL;
    rt_buf lb = { 0 };
    int rc = -1, any = 0;
    for (size_t i = 0; i < ss->n; i++)
        any |= ss->v[i].ops == ops;
    if (!any)
        return 0;
    if (!(v = calloc(n * ss->n, sizeof *v)))
        goto out;
    /* Each sink read once, so that its series agree with each other. */
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i].ops == ops)
            values(&ss->v[i], v + i * n);
    for (size_t k = 0; k < n; k++) {
        if (rt_prom_header(out, m[k].name, m[k].type, m[k].help))
            goto out;
        for (size_t i = 0; i < ss->n; i++) {
            if (ss->v[i].ops != ops)
                continue;
            if (rt_prom_sample1(out, &lb, m[k].name, "sink", ss->v[i].name, v[i * n + k]))
                goto out;
        }
    }
    rc = 0;
out:
    free(v);
    rt_buf_free(&lb);
    return rc;
}

int rt_sinks_stored_offsets(rt_sinks *ss, size_t n, const char *const *topics,
                            const int *partitions, long long *next)
{
    int rc = 0;
    for (size_t i = 0; i < ss->n; i++) {
        rt_sink *s = &ss->v[i];
        if (s->ops && s->ops->stored_offsets &&
            s->ops->stored_offsets(s, n, topics, partitions, next) < 0) {
            rt_warn("sink %s: stored offsets unreadable; its partitions resume from the "
                    "group's offsets", s->name);
            rc = -1;
        }
    }
    return rc;
}

size_t rt_sink_pending(const rt_sink *s)
{
    return s->ops && s->ops->pending ? s->ops->pending((rt_sink *)s) : 0;
}

size_t rt_sinks_pending(const rt_sinks *ss)
{
    size_t n = 0;
    for (size_t i = 0; i < ss->n; i++)
        n += rt_sink_pending(&ss->v[i]);
    return n;
}

void rt_sinks_close(rt_sinks *ss)
{
    for (size_t i = 0; i < ss->n; i++) {
        if (ss->v[i].ops)
            ss->v[i].ops->close(&ss->v[i]);
        free(ss->v[i].name);
    }
    /* After the sinks: their topic handles hold references to the producer. */
    if (ss->kafka)
        rt_kafka_producer_free(ss->kafka);
    if (ss->kafka_dlq)
        rt_kafka_producer_free(ss->kafka_dlq);
    free(ss->v);
    memset(ss, 0, sizeof *ss);
}
