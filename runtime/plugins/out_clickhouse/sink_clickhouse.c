/* sink_clickhouse.c - ClickHouse sink: records go to ClickHouse's HTTP interface as
 * `INSERT INTO db.table [(columns)] FORMAT JSONEachRow`, one record per line (what
 * eddy's records already are), batched by rows, bytes and time, one request in flight,
 * on the worker's loop (core/http_batch.c).
 *
 * A record is acknowledged only once ClickHouse answered 200 for its INSERT. No
 * connection, a timeout, or an error that is not about the data (5xx without a parse
 * error, unknown table, wrong password) sends the INSERT again after a backoff: records
 * wait. ClickHouse refuses a whole INSERT for one bad row, so an INSERT refused for its
 * data is split in halves until the bad rows stand alone; those are dead-lettered with
 * ClickHouse's error text and the rest is written, in order.
 *
 * At least once: a replay inserts rows again. A ReplacingMergeTree ordered by the
 * event id makes that idempotent after merges, or at once with FINAL in queries. */
#define _GNU_SOURCE     /* memmem */
#include <stdlib.h>
#include <string.h>

#include "http_batch.h"
#include "log.h"
#include "sink.h"
#include "sql_ident.h"

typedef struct ch_sink {
    rt_sink *s;
    const rt_sink_env *env;
    char *url;              /* the INSERT's URL, query escaped */
    rt_http_out *http;
    /* usage counters */
    unsigned long long inserted, failed, splits;
} ch_sink;

/* ClickHouse error codes that mean "this data is bad", not "the server or the setup
 * is": a request refused with one of them is split to find the rows. */
static const int data_errors[] = {
    6,      /* CANNOT_PARSE_TEXT */
    25,     /* CANNOT_PARSE_ESCAPE_SEQUENCE */
    26,     /* CANNOT_PARSE_QUOTED_STRING */
    27,     /* CANNOT_PARSE_INPUT_ASSERTION_FAILED */
    32,     /* ATTEMPT_TO_READ_AFTER_EOF */
    38,     /* CANNOT_PARSE_DATE */
    41,     /* CANNOT_PARSE_DATETIME */
    53,     /* TYPE_MISMATCH */
    69,     /* ARGUMENT_OUT_OF_BOUND */
    70,     /* CANNOT_CONVERT_TYPE */
    72,     /* CANNOT_PARSE_NUMBER */
    117,    /* INCORRECT_DATA (an unknown field, say) */
    130,    /* CANNOT_READ_ARRAY_FROM_TEXT */
    131,    /* TOO_LARGE_STRING_SIZE */
    349,    /* CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN */
};

/* The code of a ClickHouse exception text ("Code: 27, e.displayText() = ..."), or -1. */
static int error_code(const rt_buf *resp)
{
    char head[32];
    size_t n = resp->len < sizeof head - 1 ? resp->len : sizeof head - 1;
    int code;
    memcpy(head, resp->data ? resp->data : "", n);
    head[n] = '\0';
    return sscanf(head, "Code: %d", &code) == 1 ? code : -1;
}

static int is_data_error(const rt_buf *resp)
{
    int code = error_code(resp);
    for (size_t i = 0; i < sizeof data_errors / sizeof *data_errors; i++)
        if (data_errors[i] == code)
            return 1;
    /* Whatever its code, an error that names a row is about the data. */
    return code >= 0 && memmem(resp->data, resp->len, "(at row ", 8) != NULL;
}

/* ClickHouse's error text on one line, cut: the dead letter's reason. */
static void error_text(const rt_buf *resp, char *out, size_t len)
{
    static const char prefix[] = "clickhouse refused the row: ";
    size_t n = 0, i = 0;
    n = (size_t)snprintf(out, len, "%s", prefix);
    for (; resp->data && i < resp->len && n + 1 < len; i++) {
        char c = resp->data[i];
        out[n++] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static int ch_write(rt_sink *s, const char *rec, size_t len, const rt_out *out)
{
    ch_sink *h = rt_http_out_arg(s->impl);
    rt_buf *body = rt_http_out_body(h->http);
    size_t mark = body->len;
    /* JSONEachRow reads one object per line: a record that is not one would fail its
     * whole INSERT, so it is dead-lettered here, as the Elasticsearch sink does. A sink
     * only gets eddy's own JSON (ctx.emit's encoding of a table, or a dead letter), in
     * which an object, and nothing else, starts with '{': a validating scan of every
     * record cost the one-emit pipeline 12% of its instructions. */
    if (len == 0 || rec[0] != '{') {
        h->failed++;
        h->env->undeliverable(h->env->arg, s, rec, len, out->ticket, "not a JSON object");
        rt_sink_ack(s, out->ticket);
        return 0;
    }
    if (rt_buf_append(body, rec, len) < 0 || rt_buf_putc(body, '\n') < 0 ||
        rt_http_out_add(h->http, out->ticket, mark, mark) < 0) {
        body->len = mark;
        rt_error("clickhouse sink %s: out of memory", s->name);
        return -1;
    }
    return 0;
}

static rt_http_verdict ch_judge(void *arg, const rt_http_req *r, char *why, size_t whylen)
{
    ch_sink *h = arg;
    if (r->rc != CURLE_OK) {
        snprintf(why, whylen, "request failed: %s", curl_easy_strerror(r->rc));
        return RT_HTTP_RETRY;
    }
    if (r->status == 200) {
        for (size_t i = r->lo; i < r->hi; i++)
            rt_sink_ack(h->s, r->b->docs[i].ticket);
        h->inserted += r->hi - r->lo;
        return RT_HTTP_DONE;
    }
    if (!is_data_error(r->resp)) {
        int n = (int)(r->resp->len < 300 ? r->resp->len : 300);
        snprintf(why, whylen, "HTTP %ld: %.*s", r->status, n, r->resp->data ? r->resp->data : "");
        for (char *p = why; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        return RT_HTTP_RETRY;
    }
    if (r->hi - r->lo > 1) {
        h->splits++;
        rt_info("clickhouse sink %s: %zu rows refused for their data (code %d); split in "
                "halves to find the bad rows", h->s->name, r->hi - r->lo, error_code(r->resp));
        return RT_HTTP_SPLIT;
    }
    /* One row, refused for its data. */
    char reason[512];
    size_t len;
    const rt_http_doc *d = &r->b->docs[r->lo];
    const char *rec = rt_http_doc_record(r->b, d, &len);
    error_text(r->resp, reason, sizeof reason);
    h->failed++;
    h->env->undeliverable(h->env->arg, h->s, rec, len, d->ticket, reason);
    rt_sink_ack(h->s, d->ticket);
    return RT_HTTP_DONE;
}

/* ---- sink operations ---- */

static void ch_close(rt_sink *s)
{
    ch_sink *h = s->impl ? rt_http_out_arg(s->impl) : NULL;
    rt_http_out_free(s->impl);
    s->impl = NULL;
    if (!h)
        return;
    free(h->url);
    free(h);
}

static const rt_sink_ops ch_ops = {
    .write = ch_write, .flush = rt_http_sink_flush, .close = ch_close,
    .drain = rt_http_sink_drain, .pending = rt_http_sink_pending,
};

static int put(rt_buf *b, const char *s)
{
    return rt_buf_append(b, s, strlen(s));
}

/* The INSERT: identifiers from config only, checked and backquoted. With a column list
 * the record's other fields are skipped (input_format_skip_unknown_fields); without
 * one every field must be a column. */
static int build_url(ch_sink *h, const rt_config *c, const char *name, char *err,
                     size_t errlen)
{
    const char *url = rt_sink_conf(c, name, "url");
    const char *db = rt_sink_conf(c, name, "database");
    const char *table = rt_sink_conf(c, name, "table");
    const char *columns = rt_sink_conf(c, name, "columns");
    char **cols = NULL;
    size_t ncols = 0;
    rt_buf q = { 0 }, u = { 0 };
    char *escaped = NULL;
    int rc = -1;
    if (columns && *columns) {
        int got = rt_sql_names(columns, &cols, &ncols);
        if (got == -2) {
            rc = rt_sink_conf_error(c, name, "columns", err, errlen,
                                    "each column must be a name of [A-Za-z0-9_]");
            goto out;
        }
        if (got < 0)
            goto oom;
    }
    if (put(&q, "INSERT INTO ") || rt_sql_quote(&q, db) || rt_buf_putc(&q, '.') ||
        rt_sql_quote(&q, table))
        goto oom;
    for (size_t i = 0; i < ncols; i++)
        if (put(&q, i ? ", " : " (") || rt_sql_quote(&q, cols[i]))
            goto oom;
    if ((ncols && rt_buf_putc(&q, ')')) || put(&q, " FORMAT JSONEachRow"))
        goto oom;
    if (!(escaped = curl_easy_escape(NULL, q.data, (int)q.len)))
        goto oom;
    size_t n = strlen(url);
    if (rt_buf_append(&u, url, n) || (n && url[n - 1] != '/' && rt_buf_putc(&u, '/')) ||
        put(&u, "?query=") || put(&u, escaped) ||
        (ncols && put(&u, "&input_format_skip_unknown_fields=1")) ||
        rt_buf_putc(&u, '\0'))
        goto oom;
    h->url = u.data;
    u.data = NULL;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "sink %s: out of memory", name);
out:
    curl_free(escaped);
    rt_sql_names_free(cols, ncols);
    rt_buf_free(&q);
    rt_buf_free(&u);
    return rc;
}

static int check_name(const rt_config *c, const char *name, const char *field, char *err,
                      size_t errlen)
{
    const char *v = rt_sink_conf(c, name, field);
    if (!v || !*v)
        return rt_sink_conf_error(c, name, field, err, errlen,
                                  "required for a clickhouse sink");
    if (!rt_sql_identifier(v, strlen(v)))
        return rt_sink_conf_error(c, name, field, err, errlen,
                                  "must be a name of [A-Za-z0-9_]");
    return 0;
}

/* Without an event loop (eddy check) only the settings are checked. */
static int ch_open(rt_sinks *ss, rt_sink *s, const rt_config *c, char *err, size_t errlen)
{
    const char *url = rt_sink_conf(c, s->name, "url");
    ch_sink *h = NULL;
    if (!url || !*url)
        return rt_sink_conf_error(c, s->name, "url", err, errlen,
                                  "required for a clickhouse sink");
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return rt_sink_conf_error(c, s->name, "url", err, errlen,
                                  "must start with http:// or https://");
    if (strchr(url, '?'))
        return rt_sink_conf_error(c, s->name, "url", err, errlen,
                                  "must not carry a query; eddy writes the INSERT");
    if (check_name(c, s->name, "database", err, errlen) < 0 ||
        check_name(c, s->name, "table", err, errlen) < 0)
        return -1;
    if (!(h = calloc(1, sizeof *h)))
        goto oom;
    if (build_url(h, c, s->name, err, errlen) < 0) {
        free(h);
        return -1;
    }
    if (!ss->env.base) {    /* eddy check: the settings are fine */
        free(h->url);
        free(h);
        return 0;
    }
    h->s = s;
    h->env = &ss->env;
    h->http = rt_http_out_new(s, &ss->env, c, "clickhouse sink", h->url, NULL,
                              rt_sink_conf_int(c, s->name, "batch.rows"), ch_judge, h);
    if (!h->http)
        goto oom;
    s->impl = h->http;
    s->ops = &ch_ops;
    return 0;
oom:
    if (h)
        free(h->url);
    free(h);
    snprintf(err, errlen, "sink %s: cannot set up the HTTP client (out of memory?)", s->name);
    return -1;
}

static void ch_values(rt_sink *s, double *v)
{
    const ch_sink *h = rt_http_out_arg(s->impl);
    unsigned long long requests, retried;
    rt_http_out_counts(s->impl, &requests, &retried);
    v[0] = (double)requests;
    v[1] = (double)h->inserted;
    v[2] = (double)h->failed;
    v[3] = (double)retried;
    v[4] = (double)h->splits;
}

static int ch_metrics(const rt_sinks *ss, rt_buf *out)
{
    static const rt_sink_metric m[] = {
        { "eddy_clickhouse_requests_total", "counter",
          "INSERT requests sent, retries and halves included." },
        { "eddy_clickhouse_rows_inserted_total", "counter", "Rows ClickHouse acknowledged." },
        { "eddy_clickhouse_rows_failed_total", "counter",
          "Rows dead-lettered (refused by ClickHouse for their data, or not a JSON object)." },
        { "eddy_clickhouse_retries_total", "counter",
          "Requests sent again after a failure that was not about the data." },
        { "eddy_clickhouse_splits_total", "counter",
          "INSERTs refused for their data and split in halves to find the bad rows." },
    };
    return rt_sink_kind_metrics(ss, &ch_ops, m, sizeof m / sizeof *m, ch_values, out);
}

/* The keys only this kind reads; url, table, columns, batch.rows, batch.bytes,
 * batch.ms, timeouts, retries, username, password and TLS are shared (config_keys.c). */
static const rt_conf_key ch_keys[] = {
    { "sink.*.database", RT_CONF_STRING, "default", 0, NULL, 0, 0,
      "ClickHouse sink: database of the table" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

const rt_sink_kind rt_sink_kind_clickhouse = {
    .name = "clickhouse", .keys = ch_keys, .required = "table", .open = ch_open,
    .check = ch_open, .metrics = ch_metrics,
};
