/* sink_es.c - Elasticsearch sink: records go to the _bulk API as NDJSON (an `index`
 * action with the record's id as _id, then the record), batched by documents, bytes
 * and time, one request in flight, on the worker's loop (core/http_batch.c).
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
#include "http_batch.h"
#include "json_pick.h"
#include "log.h"
#include "sink.h"

typedef struct es_sink {
    rt_sink *s;
    const rt_sink_env *env;
    char *bulk_url;
    const char *index, *id_field, *time_field;
    rt_http_out *http;
    rt_buf id;              /* the _id being written */
    /* usage counters */
    unsigned long long indexed, failed;
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
    es_sink *e = rt_http_out_arg(s->impl);
    rt_buf *body = rt_http_out_body(e->http);
    const char *paths[2];
    rt_json_span v[2];
    size_t n = 0;
    json_t *action = NULL;
    char index[256], why[300];
    size_t mark = body->len, src;
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
    int ok = line && rt_buf_append(body, line, strlen(line)) == 0 &&
             rt_buf_putc(body, '\n') == 0;
    free(line);
    src = body->len;
    if (!ok || rt_buf_append(body, rec, len) < 0 || rt_buf_putc(body, '\n') < 0 ||
        rt_http_out_add(e->http, out->ticket, mark, src) < 0) {
        body->len = mark;
        rt_error("elasticsearch sink %s: out of memory", s->name);
        goto out;
    }
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

/* ---- judging answers ---- */

static void item_failed(es_sink *e, const rt_http_batch *b, const rt_http_doc *d,
                        json_t *item, int status)
{
    json_t *err = json_object_get(item, "error");
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *reason = json_string_value(json_object_get(err, "reason"));
    char why[512];
    size_t len;
    const char *rec = rt_http_doc_record(b, d, &len);
    snprintf(why, sizeof why, "elasticsearch refused the document (%d %s): %s", status,
             type ? type : "error", reason ? reason : "no reason given");
    e->failed++;
    e->env->undeliverable(e->env->arg, e->s, rec, len, d->ticket, why);
}

/* A 2xx answer: acknowledge, dead-letter or keep for a retry, item by item. Returns
 * how many are kept; -1 when the answer is not a _bulk answer for this batch. */
static long judge_items(es_sink *e, const rt_http_req *r)
{
    json_error_t jerr;
    json_t *root = json_loadb(r->resp->data ? r->resp->data : "", r->resp->len, 0, &jerr);
    json_t *items = json_object_get(root, "items");
    rt_http_batch *b = r->b;
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
            item_failed(e, b, &b->docs[i], item, status);
            rt_sink_ack(e->s, b->docs[i].ticket);
        }
    }
    rt_http_out_keep(e->http, keep);
out:
    free(keep);
    json_decref(root);
    return kept;
}

/* Any failed request is sent again (no connection, 429, 5xx, any non-2xx): the
 * _bulk API says per item what it refused. The whole batch is always sent at once. */
static rt_http_verdict es_judge(void *arg, const rt_http_req *r, char *why, size_t whylen)
{
    es_sink *e = arg;
    if (r->rc != CURLE_OK) {
        snprintf(why, whylen, "request failed: %s", curl_easy_strerror(r->rc));
        return RT_HTTP_RETRY;
    }
    if (r->status < 200 || r->status >= 300) {
        snprintf(why, whylen, "HTTP %ld", r->status);
        return RT_HTTP_RETRY;
    }
    long kept = judge_items(e, r);
    if (kept < 0) {
        snprintf(why, whylen, "the answer is not a _bulk answer for this request");
        return RT_HTTP_RETRY;
    }
    if (kept > 0) {
        snprintf(why, whylen, "%ld documents refused for now (429 or 5xx)", kept);
        return RT_HTTP_RETRY;
    }
    return RT_HTTP_DONE;
}

/* ---- sink operations ---- */

static void es_close(rt_sink *s)
{
    es_sink *e = s->impl ? rt_http_out_arg(s->impl) : NULL;
    rt_http_out_free(s->impl);
    s->impl = NULL;
    if (!e)
        return;
    rt_buf_free(&e->id);
    free(e->bulk_url);
    free(e);
}

static const rt_sink_ops es_ops = {
    .write = es_write, .flush = rt_http_sink_flush, .close = es_close,
    .drain = rt_http_sink_drain, .pending = rt_http_sink_pending,
};

/* Without an event loop (eddy check) only the settings are checked. */
static int es_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen)
{
    const char *url = rt_sink_conf(c, s->name, "url");
    const char *index = rt_sink_conf(c, s->name, "index");
    const char *api_key = rt_sink_conf(c, s->name, "api.key");
    char auth[600];
    const char *headers[] = { "Content-Type: application/x-ndjson", NULL, NULL };
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
    e->s = s;
    e->env = &ss->env;
    e->index = index;
    e->id_field = rt_sink_conf(c, s->name, "id");
    e->time_field = rt_sink_conf(c, s->name, "time.field");
    size_t n = strlen(url);
    if (!(e->bulk_url = malloc(n + 8)))
        goto oom;
    snprintf(e->bulk_url, n + 8, "%s%s_bulk", url, n && url[n - 1] == '/' ? "" : "/");
    if (api_key && *api_key) {
        snprintf(auth, sizeof auth, "Authorization: ApiKey %s", api_key);
        headers[1] = auth;
    }
    e->http = rt_http_out_new(s, &ss->env, c, "elasticsearch sink", e->bulk_url, headers,
                              rt_sink_conf_int(c, s->name, "batch.docs"), es_judge, e);
    if (!e->http)
        goto oom;
    s->impl = e->http;
    s->ops = &es_ops;
    return 0;
oom:
    if (e)
        free(e->bulk_url);
    free(e);
    snprintf(err, errlen, "sink %s: cannot set up the HTTP client (out of memory?)", s->name);
    return -1;
}

static void es_values(rt_sink *s, double *v)
{
    const es_sink *e = rt_http_out_arg(s->impl);
    unsigned long long requests, retried;
    rt_http_out_counts(s->impl, &requests, &retried);
    v[0] = (double)requests;
    v[1] = (double)e->indexed;
    v[2] = (double)e->failed;
    v[3] = (double)retried;
}

static int es_metrics(const rt_sinks *ss, rt_buf *out)
{
    static const rt_sink_metric m[] = {
        { "eddy_es_requests_total", "counter", "_bulk requests sent, retries included." },
        { "eddy_es_documents_indexed_total", "counter", "Documents Elasticsearch acknowledged." },
        { "eddy_es_documents_failed_total", "counter",
          "Documents dead-lettered (refused by Elasticsearch, or not indexable)." },
        { "eddy_es_retries_total", "counter", "Requests sent again after a failure or 429/5xx items." },
    };
    return rt_sink_kind_metrics(ss, &es_ops, m, sizeof m / sizeof *m, es_values, out);
}

/* The keys this kind reads (`eddy config` lists them; the config checks them). The
 * batching, retry, auth and TLS keys it shares with the ClickHouse sink are in
 * core/config_keys.c. */
static const rt_conf_key es_keys[] = {
    { "sink.*.index", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: index; strftime patterns (%Y.%m.%d) take the UTC date of time.field, else of now" },
    { "sink.*.id", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: record field used as _id, so a retry or replay overwrites; empty: Elasticsearch picks ids" },
    { "sink.*.time.field", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: record field (epoch ms) whose date fills the index pattern" },
    { "sink.*.batch.docs", RT_CONF_INT, "500", 0, NULL, 1, 100000,
      "Elasticsearch sink: documents per _bulk request" },
    { "sink.*.api.key", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: API key, sent as Authorization: ApiKey (never logged)" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_sink_kind rt_sink_kind_elasticsearch = {
    .name = "elasticsearch", .keys = es_keys, .open = es_open, .check = es_open,
    .metrics = es_metrics,
};
