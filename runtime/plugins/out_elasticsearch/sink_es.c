/* sink_es.c - Elasticsearch sink: records go to the _bulk API as NDJSON (an `index`
 * action with the record's id as _id, then the record), batched by documents, bytes
 * and time, one request in flight, on the worker's loop through curl_loop.
 *
 * A record is acknowledged only once Elasticsearch said so for its item. A failed
 * request (no connection, 429, 5xx, any non-2xx) is sent again after a backoff that
 * doubles up to retry.backoff.max.ms; within a 2xx answer, items refused with 429 or
 * 5xx are sent again and the others (a mapping error, say) are dead-lettered with
 * Elasticsearch's reason. With an `id` field a retry overwrites the same document, so
 * nothing is indexed twice. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "curl_loop.h"
#include "json_pick.h"
#include "log.h"
#include "metrics.h"
#include "sink.h"

typedef struct es_doc {
    rt_ticket *ticket;
    size_t off, len;        /* its two lines in the body */
    size_t src;             /* where the record (second line) starts */
} es_doc;

typedef struct es_batch {
    rt_buf body;
    es_doc *docs;
    size_t n, cap;
} es_batch;

enum es_phase { IDLE, SENDING, RETRY_WAIT };

typedef struct es_sink {
    rt_sink *s;
    const rt_sink_env *env;
    char *bulk_url;
    const char *index, *id_field, *time_field;
    long long batch_docs, batch_bytes, batch_ms, timeout_ms, backoff_min, backoff_max;
    rt_curl_loop *loop;
    CURL *easy;
    struct curl_slist *headers;
    es_batch b[2], *fill, *fly;
    enum es_phase phase;
    struct event *linger, *kick, *retry;
    int due, draining;
    long long backoff, retry_at;
    rt_buf resp;
    rt_buf id;              /* the _id being written */
    /* usage counters */
    unsigned long long requests, indexed, failed, retried;
} es_sink;

/* ---- building batches ---- */

/* A number span that is a JSON integer (no fraction, no exponent). */
static int is_integer(const rt_json_span *v)
{
    if (v->kind != RT_JSON_NUMBER)
        return 0;
    for (size_t i = 0; i < v->len; i++)
        if (v->at[i] == '.' || v->at[i] == 'e' || v->at[i] == 'E')
            return 0;
    return 1;
}

/* The index of a record: the pattern with strftime's %Y, %m, %d... of its time field
 * (`t`, epoch ms), or of now, in UTC. */
static int index_name(es_sink *e, const rt_json_span *t, char *out, size_t len)
{
    char num[32];
    long long ms = rt_epoch_ms();
    if (t && is_integer(t) && t->len < sizeof num) {
        memcpy(num, t->at, t->len);
        num[t->len] = '\0';
        ms = strtoll(num, NULL, 10);
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!strchr(e->index, '%'))
        return snprintf(out, len, "%s", e->index) < (int)len ? 0 : -1;
    return gmtime_r(&secs, &tm) && strftime(out, len, e->index, &tm) > 0 ? 0 : -1;
}

static int doc_add(es_batch *b, rt_ticket *ticket, size_t off, size_t src)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        es_doc *d = realloc(b->docs, cap * sizeof *d);
        if (!d)
            return -1;
        b->docs = d;
        b->cap = cap;
    }
    b->docs[b->n++] = (es_doc){ ticket, off, b->body.len - off, src };
    return 0;
}

/* The id of a record into e->id (NUL-terminated): a string, or an integer as written.
 * -1 when there is none. */
static int id_of(es_sink *e, const rt_json_span *v)
{
    e->id.len = 0;
    int got = v->kind == RT_JSON_STRING ? rt_json_unescape(&e->id, v->at, v->len)
              : is_integer(v)           ? rt_buf_append(&e->id, v->at, v->len)
                                        : -1;
    return got < 0 || e->id.len == 0 || rt_buf_putc(&e->id, '\0') < 0 ? -1 : 0;
}

/* The action line, then the record. A record that cannot be indexed (not an object,
 * no id) is dead-lettered here. The two fields it needs are picked by one scan, as in
 * the mysql sink, without building a tree of the record. */
static int es_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    es_sink *e = s->impl;
    es_batch *b = e->fill;
    const char *paths[2];
    rt_json_span v[2];
    size_t n = 0;
    json_t *action = NULL;
    char index[256], why[300];
    size_t mark = b->body.len, src;
    int rc = -1;
    if (e->id_field)
        paths[n++] = e->id_field;
    if (e->time_field)
        paths[n++] = e->time_field;
    if (rt_json_pick(rec, len, paths, n, v) < 0) {
        snprintf(why, sizeof why, "not a JSON object");
        goto refuse;
    }
    if (e->id_field && id_of(e, &v[0]) < 0) {
        snprintf(why, sizeof why, "record has no id field '%s' (string or integer)",
                 e->id_field);
        goto refuse;
    }
    if (index_name(e, e->time_field ? &v[n - 1] : NULL, index, sizeof index) < 0) {
        snprintf(why, sizeof why, "index name from '%s' is empty or too long", e->index);
        goto refuse;
    }
    action = e->id_field
                 ? json_pack("{s:{s:s,s:s}}", "index", "_index", index, "_id", e->id.data)
                 : json_pack("{s:{s:s}}", "index", "_index", index);
    char *line = action ? json_dumps(action, JSON_COMPACT) : NULL;
    int ok = line && rt_buf_append(&b->body, line, strlen(line)) == 0 &&
             rt_buf_putc(&b->body, '\n') == 0;
    free(line);
    src = b->body.len;
    if (!ok || rt_buf_append(&b->body, rec, len) < 0 || rt_buf_putc(&b->body, '\n') < 0 ||
        doc_add(b, out->ticket, mark, src) < 0) {
        b->body.len = mark;
        rt_error("elasticsearch sink %s: out of memory", s->name);
        goto out;
    }
    if (b->n == 1 && !evtimer_pending(e->linger, NULL)) {
        struct timeval tv = { e->batch_ms / 1000, (e->batch_ms % 1000) * 1000 };
        if (evtimer_add(e->linger, &tv) < 0)
            e->due = 1;
    }
    if (b->n >= (size_t)e->batch_docs || b->body.len >= (size_t)e->batch_bytes)
        event_active(e->kick, 0, 0);
    rc = 0;
    goto out;
refuse:
    /* The worker takes its own hold on the ticket before we let ours go. */
    e->failed++;
    e->env->undeliverable(e->env->arg, s, rec, len, out->ticket, why);
    rt_sink_ack(s, out->ticket);
    rc = 0;
out:
    json_decref(action);
    return rc;
}

/* ---- sending ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return rt_buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

static void on_done(void *arg, CURL *easy, CURLcode rc);

static void send_fly(es_sink *e)
{
    e->resp.len = 0;
    e->requests++;
    if (curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, e->fly->body.data) != CURLE_OK ||
        curl_easy_setopt(e->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)e->fly->body.len) != CURLE_OK ||
        rt_curl_loop_add(e->loop, e->easy, on_done, e) < 0) {
        rt_error("elasticsearch sink %s: cannot start a request", e->s->name);
        on_done(e, e->easy, CURLE_FAILED_INIT);
        return;
    }
    e->phase = SENDING;
}

/* Records written within one loop turn may fill more than a batch: what is beyond
 * batch.docs and batch.bytes goes back to the (empty) filling batch. -1 when out of
 * memory (the batch is then sent whole). */
static int cut_batch(es_sink *e)
{
    es_batch *b = e->fly, *rest = e->fill;
    size_t k = 1;
    while (k < b->n && k < (size_t)e->batch_docs &&
           b->docs[k].off + b->docs[k].len <= (size_t)e->batch_bytes)
        k++;
    if (k == b->n)
        return 0;
    size_t from = b->docs[k].off;
    if (rt_buf_append(&rest->body, b->body.data + from, b->body.len - from) < 0)
        return -1;
    for (size_t i = k; i < b->n; i++) {
        es_doc d = b->docs[i];
        if (doc_add(rest, d.ticket, 0, 0) < 0) {
            rest->n = 0;
            rest->body.len = 0;
            return -1;
        }
        rest->docs[rest->n - 1] = (es_doc){ d.ticket, d.off - from, d.len, d.src - from };
    }
    b->n = k;
    b->body.len = from;
    e->due = 1;     /* the rest is due as soon as this batch is done */
    return 0;
}

/* Send the filling batch when it is full, old enough, or being drained. */
static void kick(es_sink *e)
{
    es_batch *b = e->fill;
    if (e->phase != IDLE || b->n == 0)
        return;
    if (b->n < (size_t)e->batch_docs && b->body.len < (size_t)e->batch_bytes && !e->due &&
        !e->draining)
        return;
    e->fill = e->fly;
    e->fly = b;
    e->due = 0;
    evtimer_del(e->linger);
    if (cut_batch(e) < 0)
        rt_warn("elasticsearch sink %s: out of memory splitting a batch; sent whole", e->s->name);
    send_fly(e);
}

static void retry_later(es_sink *e, const char *why)
{
    e->retried++;
    e->backoff = e->backoff ? e->backoff * 2 : e->backoff_min;
    if (e->backoff > e->backoff_max)
        e->backoff = e->backoff_max;
    rt_warn("elasticsearch sink %s: %s; %zu documents sent again in %lld ms", e->s->name, why,
            e->fly->n, e->backoff);
    e->phase = RETRY_WAIT;
    e->retry_at = rt_clock_ms() + e->backoff;
    struct timeval tv = { e->backoff / 1000, (e->backoff % 1000) * 1000 };
    if (evtimer_add(e->retry, &tv) < 0)
        event_active(e->retry, 0, 0);
}

/* Keep only the documents at `keep` (in order) in the batch in flight. */
static void keep_only(es_batch *b, const unsigned char *keep)
{
    size_t n = 0, len = 0;
    for (size_t i = 0; i < b->n; i++) {
        es_doc d = b->docs[i];
        if (!keep[i])
            continue;
        memmove(b->body.data + len, b->body.data + d.off, d.len);
        d.src = len + (d.src - d.off);
        d.off = len;
        len += d.len;
        b->docs[n++] = d;
    }
    b->n = n;
    b->body.len = len;
}

static void item_failed(es_sink *e, const es_doc *d, json_t *item, int status)
{
    json_t *err = json_object_get(item, "error");
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *reason = json_string_value(json_object_get(err, "reason"));
    char why[512];
    snprintf(why, sizeof why, "elasticsearch refused the document (%d %s): %s", status,
             type ? type : "error", reason ? reason : "no reason given");
    e->failed++;
    e->env->undeliverable(e->env->arg, e->s, e->fly->body.data + d->src,
                          d->len - (d->src - d->off) - 1, d->ticket, why);
}

/* A 2xx answer: acknowledge, dead-letter or keep for a retry, item by item. Returns
 * how many are kept; -1 when the answer is not a _bulk answer for this batch. */
static long judge_items(es_sink *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(e->resp.data ? e->resp.data : "", e->resp.len, 0, &jerr);
    json_t *items = json_object_get(root, "items");
    es_batch *b = e->fly;
    unsigned char *keep = calloc(b->n ? b->n : 1, 1);
    long kept = -1;
    if (!keep || !json_is_array(items) || json_array_size(items) != b->n)
        goto out;
    kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        json_t *item = json_object_get(json_array_get(items, i), "index");
        int status = (int)json_integer_value(json_object_get(item, "status"));
        if (status >= 200 && status < 300) {
            e->indexed++;
            rt_sink_ack(e->s, b->docs[i].ticket);
        } else if (status == 429 || status >= 500 || status == 0) {
            keep[i] = 1;
            kept++;
        } else {
            item_failed(e, &b->docs[i], item, status);
            rt_sink_ack(e->s, b->docs[i].ticket);
        }
    }
    keep_only(b, keep);
out:
    free(keep);
    json_decref(root);
    return kept;
}

static void on_done(void *arg, CURL *easy, CURLcode rc)
{
    es_sink *e = arg;
    long status = 0;
    char why[CURL_ERROR_SIZE + 64];
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "request failed: %s", curl_easy_strerror(rc));
        retry_later(e, why);
        return;
    }
    if (status < 200 || status >= 300) {
        snprintf(why, sizeof why, "HTTP %ld", status);
        retry_later(e, why);
        return;
    }
    long kept = judge_items(e);
    if (kept < 0) {
        retry_later(e, "the answer is not a _bulk answer for this request");
        return;
    }
    if (kept > 0) {
        snprintf(why, sizeof why, "%ld documents refused for now (429 or 5xx)", kept);
        retry_later(e, why);
        return;
    }
    e->fly->body.len = 0;
    e->fly->n = 0;
    e->backoff = 0;
    e->phase = IDLE;
    if (e->env->progress)
        e->env->progress(e->env->arg);
    kick(e);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    kick(arg);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    es_sink *e = arg;
    e->due = 1;
    kick(e);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    es_sink *e = arg;
    send_fly(e);
}

/* ---- sink operations ---- */

static int es_flush(rt_sink *s)
{
    kick(s->impl);
    return 0;
}

/* Write out everything without the event loop (shutdown, checkpoint, revocation). */
static int es_drain(rt_sink *s, int timeout_ms)
{
    es_sink *e = s->impl;
    long long until = rt_clock_ms() + timeout_ms;
    int rc = -1;
    e->draining = 1;
    for (;;) {
        kick(e);
        if (e->phase == IDLE && e->fill->n == 0) {
            rc = 0;
            break;
        }
        long long left = until - rt_clock_ms();
        if (left <= 0)
            break;
        if (e->phase == RETRY_WAIT) {
            rt_clock_sleep_until(e->retry_at, until);
            if (rt_clock_ms() >= e->retry_at) {
                evtimer_del(e->retry);
                send_fly(e);
            }
            continue;
        }
        rt_curl_loop_wait(e->loop, left < 100 ? (int)left : 100);
    }
    e->draining = 0;
    if (rc < 0)
        rt_error("elasticsearch sink %s: %zu documents not acknowledged within %d ms", s->name,
                 e->fill->n + e->fly->n, timeout_ms);
    return rc;
}

static size_t es_pending(rt_sink *s)
{
    es_sink *e = s->impl;
    return e->fill->n + e->fly->n;
}

static void es_close(rt_sink *s)
{
    es_sink *e = s->impl;
    if (!e)
        return;
    rt_curl_loop_free(e->loop);     /* first: it may still hold the handle */
    if (e->easy)
        curl_easy_cleanup(e->easy);
    curl_slist_free_all(e->headers);
    for (int i = 0; i < 2; i++) {
        rt_buf_free(&e->b[i].body);
        free(e->b[i].docs);
    }
    rt_buf_free(&e->resp);
    rt_buf_free(&e->id);
    if (e->linger)
        event_free(e->linger);
    if (e->kick)
        event_free(e->kick);
    if (e->retry)
        event_free(e->retry);
    free(e->bulk_url);
    free(e);
    s->impl = NULL;
}

static const rt_sink_ops es_ops = {
    .write = es_write, .flush = es_flush, .close = es_close, .drain = es_drain,
    .pending = es_pending,
};

static int add_header(es_sink *e, const char *h)
{
    struct curl_slist *l = curl_slist_append(e->headers, h);
    if (!l)
        return -1;
    e->headers = l;
    return 0;
}

/* The handle every request reuses: URL, headers, auth, TLS, timeout. */
static int setup_easy(es_sink *e, const rt_config *c, const char *name)
{
    char auth[600];
    const char *user = rt_sink_conf(c, name, "username");
    const char *pass = rt_sink_conf(c, name, "password");
    const char *api_key = rt_sink_conf(c, name, "api.key");
    const char *ca = rt_sink_conf(c, name, "tls.ca.file");
    long verify = (long)rt_sink_conf_int(c, name, "tls.verify");
    if (add_header(e, "Content-Type: application/x-ndjson") < 0)
        return -1;
    if (api_key && *api_key) {
        snprintf(auth, sizeof auth, "Authorization: ApiKey %s", api_key);
        if (add_header(e, auth) < 0)
            return -1;
    }
    if (!(e->easy = curl_easy_init()))
        return -1;
    CURL *h = e->easy;
    int bad = curl_easy_setopt(h, CURLOPT_URL, e->bulk_url) ||
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers) ||
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
              curl_easy_setopt(h, CURLOPT_WRITEDATA, &e->resp) ||
              curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms) ||
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify) ||
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (!bad && ca && *ca)
        bad = curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (!bad && user && *user)
        bad = curl_easy_setopt(h, CURLOPT_USERNAME, user) ||
              curl_easy_setopt(h, CURLOPT_PASSWORD, pass ? pass : "") ||
              curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    return bad ? -1 : 0;
}

/* Without an event loop (eddy check) only the settings are checked. */
static int es_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen)
{
    const char *url = rt_sink_conf(c, s->name, "url");
    const char *index = rt_sink_conf(c, s->name, "index");
    if (!url || !*url || !index || !*index)
        return rt_sink_conf_error(c, s->name, !url || !*url ? "url" : "index", err, errlen,
                                  "required for an elasticsearch sink");
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return rt_sink_conf_error(c, s->name, "url", err, errlen,
                                  "must start with http:// or https://");
    if (!ss->env.base)
        return 0;   /* eddy check: the settings are fine */
    es_sink *e = calloc(1, sizeof *e);
    if (!e)
        goto oom;
    s->impl = e;
    s->ops = &es_ops;
    e->s = s;
    e->env = &ss->env;
    e->index = index;
    e->id_field = rt_sink_conf(c, s->name, "id");
    e->time_field = rt_sink_conf(c, s->name, "time.field");
    e->batch_docs = rt_sink_conf_int(c, s->name, "batch.docs");
    e->batch_bytes = rt_sink_conf_int(c, s->name, "batch.bytes");
    e->batch_ms = rt_sink_conf_int(c, s->name, "batch.ms");
    e->timeout_ms = rt_sink_conf_int(c, s->name, "timeout.ms");
    e->backoff_min = rt_sink_conf_int(c, s->name, "retry.backoff.ms");
    e->backoff_max = rt_sink_conf_int(c, s->name, "retry.backoff.max.ms");
    e->fill = &e->b[0];
    e->fly = &e->b[1];
    size_t n = strlen(url);
    if (!(e->bulk_url = malloc(n + 8)))
        goto oom;
    snprintf(e->bulk_url, n + 8, "%s%s_bulk", url, n && url[n - 1] == '/' ? "" : "/");
    e->loop = rt_curl_loop_new(ss->env.base);
    e->linger = evtimer_new(ss->env.base, on_linger, e);
    e->retry = evtimer_new(ss->env.base, on_retry, e);
    e->kick = event_new(ss->env.base, -1, 0, on_kick, e);
    if (!e->loop || !e->linger || !e->retry || !e->kick || setup_easy(e, c, s->name) < 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "sink %s: cannot set up the HTTP client (out of memory?)", s->name);
    return -1;
}

static int es_metrics(const rt_sinks *ss, rt_buf *out)
{
    static const struct { const char *name, *type, *help; } m[] = {
        { "eddy_es_requests_total", "counter", "_bulk requests sent, retries included." },
        { "eddy_es_documents_indexed_total", "counter", "Documents Elasticsearch acknowledged." },
        { "eddy_es_documents_failed_total", "counter",
          "Documents dead-lettered (refused by Elasticsearch, or not indexable)." },
        { "eddy_es_retries_total", "counter", "Requests sent again after a failure or 429/5xx items." },
    };
    rt_buf lb = { 0 };
    int rc = -1, any = 0;
    for (size_t i = 0; i < ss->n; i++)
        any |= ss->v[i].ops == &es_ops;
    for (size_t k = 0; any && k < sizeof m / sizeof *m; k++) {
        if (rt_prom_header(out, m[k].name, m[k].type, m[k].help))
            goto out;
        for (size_t i = 0; i < ss->n; i++) {
            const es_sink *e = ss->v[i].impl;
            if (ss->v[i].ops != &es_ops)
                continue;
            unsigned long long v[] = { e->requests, e->indexed, e->failed, e->retried };
            lb.len = 0;
            if (rt_prom_label(&lb, "sink", ss->v[i].name) || rt_buf_putc(&lb, '\0') ||
                rt_prom_sample(out, m[k].name, lb.data, (double)v[k]))
                goto out;
        }
    }
    rc = 0;
out:
    rt_buf_free(&lb);
    return rc;
}

/* The keys this kind reads (`eddy config` lists them; the config checks them). */
static const rt_conf_key es_keys[] = {
    { "sink.*.url", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: base URL (http:// or https://); _bulk is appended" },
    { "sink.*.index", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: index; strftime patterns (%Y.%m.%d) take the UTC date of time.field, else of now" },
    { "sink.*.id", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: record field used as _id, so a retry or replay overwrites; empty: Elasticsearch picks ids" },
    { "sink.*.time.field", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: record field (epoch ms) whose date fills the index pattern" },
    { "sink.*.batch.docs", RT_CONF_INT, "500", 0, NULL, 1, 100000,
      "Elasticsearch sink: documents per _bulk request" },
    { "sink.*.batch.bytes", RT_CONF_INT, "5242880", 0, NULL, 1024, 104857600,
      "Elasticsearch sink: body size at which a _bulk request is sent" },
    { "sink.*.timeout.ms", RT_CONF_INT, "30000", 0, NULL, 100, 600000,
      "Elasticsearch sink: bound on one _bulk request; past it the request is retried" },
    { "sink.*.retry.backoff.ms", RT_CONF_INT, "100", 0, NULL, 1, 600000,
      "Elasticsearch sink: first wait before a failed request is sent again; doubles each time" },
    { "sink.*.retry.backoff.max.ms", RT_CONF_INT, "30000", 0, NULL, 1, 3600000,
      "Elasticsearch sink: longest wait between retries (they never stop: records wait)" },
    { "sink.*.username", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: basic auth user" },
    { "sink.*.password", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: basic auth password (never logged)" },
    { "sink.*.api.key", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: API key, sent as Authorization: ApiKey (never logged)" },
    { "sink.*.tls.verify", RT_CONF_BOOL, "true", 0, NULL, 0, 0,
      "Elasticsearch sink: check the server's certificate and host name" },
    { "sink.*.tls.ca.file", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: CA bundle to check the server's certificate with" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_sink_kind rt_sink_kind_elasticsearch = {
    .name = "elasticsearch", .keys = es_keys, .open = es_open, .check = es_open,
    .metrics = es_metrics,
};
