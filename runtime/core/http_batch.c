/* http_batch.c - the batching HTTP client of the HTTP sinks (see http_batch.h).
 *
 * Two batches: one fills while the other is in flight. The batch in flight is sent as
 * ranges of its docs: the whole batch first; a kind that splits a range gets each half
 * sent on its own, first half first, so a refused record is found in about 2 log2(n)
 * requests and the rest is written in order. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "curl_loop.h"
#include "http_batch.h"
#include "log.h"

enum phase { IDLE, SENDING, RETRY_WAIT };

/* A range of docs of the batch in flight still to send. */
typedef struct range {
    size_t lo, hi;
} range;

struct rt_http_out {
    rt_sink *s;
    const rt_sink_env *env;
    const char *what;
    rt_http_judge_fn judge;
    void *arg;
    long long max_docs, max_bytes, linger_ms, backoff_min, backoff_max;
    rt_curl_loop *loop;
    CURL *easy;
    struct curl_slist *headers;
    rt_http_batch b[2], *fill, *fly;
    size_t lo, hi;              /* the range being sent */
    range *todo;                /* ranges after it, the next one last */
    size_t ntodo, captodo;
    enum phase phase;
    struct event *linger, *kick, *retry;
    int due, draining;
    long long backoff, retry_at;
    rt_buf resp;
    unsigned long long requests, retried;
};

static int doc_add(rt_http_batch *b, rt_ticket *ticket, size_t off, size_t len, size_t src)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        rt_http_doc *d = realloc(b->docs, cap * sizeof *d);
        if (!d)
            return -1;
        b->docs = d;
        b->cap = cap;
    }
    b->docs[b->n++] = (rt_http_doc){ ticket, off, len, src };
    return 0;
}

rt_buf *rt_http_out_body(rt_http_out *o)
{
    return &o->fill->body;
}

int rt_http_out_add(rt_http_out *o, rt_ticket *ticket, size_t off, size_t src)
{
    rt_http_batch *b = o->fill;
    if (doc_add(b, ticket, off, b->body.len - off, src) < 0)
        return -1;
    if (b->n == 1 && !evtimer_pending(o->linger, NULL)) {
        struct timeval tv = { o->linger_ms / 1000, (o->linger_ms % 1000) * 1000 };
        if (evtimer_add(o->linger, &tv) < 0)
            o->due = 1;
    }
    if (b->n >= (size_t)o->max_docs || b->body.len >= (size_t)o->max_bytes)
        event_active(o->kick, 0, 0);
    return 0;
}

const char *rt_http_doc_record(const rt_http_batch *b, const rt_http_doc *d, size_t *len)
{
    *len = d->len - (d->src - d->off) - 1;
    return b->body.data + d->src;
}

/* ---- sending ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return rt_buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

static void on_done(void *arg, CURL *easy, CURLcode rc);

/* Send docs [lo, hi) of the batch in flight: their bytes are contiguous. */
static void send_range(rt_http_out *o)
{
    const rt_http_doc *first = &o->fly->docs[o->lo], *last = &o->fly->docs[o->hi - 1];
    o->resp.len = 0;
    o->requests++;
    if (curl_easy_setopt(o->easy, CURLOPT_POSTFIELDS, o->fly->body.data + first->off) !=
            CURLE_OK ||
        curl_easy_setopt(o->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(last->off + last->len - first->off)) != CURLE_OK ||
        rt_curl_loop_add(o->loop, o->easy, on_done, o) < 0) {
        rt_error("%s %s: cannot start a request", o->what, o->s->name);
        on_done(o, o->easy, CURLE_FAILED_INIT);
        return;
    }
    o->phase = SENDING;
}

/* Records written within one loop turn may fill more than a batch: what is beyond
 * max_docs and batch.bytes goes back to the (empty) filling batch. -1 when out of
 * memory (the batch is then sent whole). */
static int cut_batch(rt_http_out *o)
{
    rt_http_batch *b = o->fly, *rest = o->fill;
    size_t k = 1;
    while (k < b->n && k < (size_t)o->max_docs &&
           b->docs[k].off + b->docs[k].len <= (size_t)o->max_bytes)
        k++;
    if (k == b->n)
        return 0;
    size_t from = b->docs[k].off;
    if (rt_buf_append(&rest->body, b->body.data + from, b->body.len - from) < 0)
        return -1;
    for (size_t i = k; i < b->n; i++) {
        rt_http_doc d = b->docs[i];
        if (doc_add(rest, d.ticket, d.off - from, d.len, d.src - from) < 0) {
            rest->n = 0;
            rest->body.len = 0;
            return -1;
        }
    }
    b->n = k;
    b->body.len = from;
    o->due = 1;     /* the rest is due as soon as this batch is done */
    return 0;
}

/* Send the filling batch when it is full, old enough, or being drained. */
static void kick(rt_http_out *o)
{
    rt_http_batch *b = o->fill;
    if (o->phase != IDLE || b->n == 0)
        return;
    if (b->n < (size_t)o->max_docs && b->body.len < (size_t)o->max_bytes && !o->due &&
        !o->draining)
        return;
    o->fill = o->fly;
    o->fly = b;
    o->due = 0;
    evtimer_del(o->linger);
    if (cut_batch(o) < 0)
        rt_warn("%s %s: out of memory splitting a batch; sent whole", o->what, o->s->name);
    o->lo = 0;
    o->hi = o->fly->n;
    o->ntodo = 0;
    send_range(o);
}

static void retry_later(rt_http_out *o, const char *why)
{
    o->retried++;
    o->backoff = o->backoff ? o->backoff * 2 : o->backoff_min;
    if (o->backoff > o->backoff_max)
        o->backoff = o->backoff_max;
    rt_warn("%s %s: %s; %zu records sent again in %lld ms", o->what, o->s->name, why,
            o->hi - o->lo, o->backoff);
    o->phase = RETRY_WAIT;
    o->retry_at = rt_clock_ms() + o->backoff;
    struct timeval tv = { o->backoff / 1000, (o->backoff % 1000) * 1000 };
    if (evtimer_add(o->retry, &tv) < 0)
        event_active(o->retry, 0, 0);
}

/* The range's first half is sent next, its second half after it. -1 when out of
 * memory. */
static int split(rt_http_out *o)
{
    if (o->ntodo == o->captodo) {
        size_t cap = o->captodo ? o->captodo * 2 : 16;
        range *t = realloc(o->todo, cap * sizeof *t);
        if (!t)
            return -1;
        o->todo = t;
        o->captodo = cap;
    }
    size_t mid = o->lo + (o->hi - o->lo) / 2;
    o->todo[o->ntodo++] = (range){ mid, o->hi };
    o->hi = mid;
    return 0;
}

void rt_http_out_keep(rt_http_out *o, const unsigned char *keep)
{
    rt_http_batch *b = o->fly;
    size_t n = 0, len = 0;
    for (size_t i = 0; i < b->n; i++) {
        rt_http_doc d = b->docs[i];
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
    o->lo = 0;
    o->hi = n;
    o->ntodo = 0;
}

static void on_done(void *arg, CURL *easy, CURLcode rc)
{
    rt_http_out *o = arg;
    rt_http_req r = { o->fly, o->lo, o->hi, rc, 0, &o->resp };
    char why[CURL_ERROR_SIZE + 512];
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
    why[0] = '\0';
    switch (o->judge(o->arg, &r, why, sizeof why)) {
    case RT_HTTP_RETRY:
        retry_later(o, why);
        return;
    case RT_HTTP_SPLIT:
        if (o->hi - o->lo < 2 || split(o) < 0) {
            retry_later(o, o->hi - o->lo < 2 ? why : "out of memory splitting a request");
            return;
        }
        o->backoff = 0;
        send_range(o);
        return;
    case RT_HTTP_DONE:
        break;
    }
    o->backoff = 0;
    if (o->ntodo > 0) {
        range next = o->todo[--o->ntodo];
        o->lo = next.lo;
        o->hi = next.hi;
        send_range(o);
        return;
    }
    o->fly->body.len = 0;
    o->fly->n = 0;
    o->phase = IDLE;
    if (o->env->progress)
        o->env->progress(o->env->arg);
    kick(o);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    kick(arg);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    rt_http_out *o = arg;
    o->due = 1;
    kick(o);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    send_range(arg);
}

/* ---- the sink's operations ---- */

void *rt_http_out_arg(const rt_http_out *o)
{
    return o->arg;
}

int rt_http_sink_flush(rt_sink *s)
{
    kick(s->impl);
    return 0;
}

static size_t pending(const rt_http_out *o)
{
    return o->fill->n + o->fly->n;
}

size_t rt_http_sink_pending(rt_sink *s)
{
    return pending(s->impl);
}

int rt_http_sink_drain(rt_sink *s, int timeout_ms)
{
    rt_http_out *o = s->impl;
    long long until = rt_clock_ms() + timeout_ms;
    int rc = -1;
    o->draining = 1;
    for (;;) {
        kick(o);
        if (o->phase == IDLE && o->fill->n == 0) {
            rc = 0;
            break;
        }
        long long left = until - rt_clock_ms();
        if (left <= 0)
            break;
        if (o->phase == RETRY_WAIT) {
            rt_clock_sleep_until(o->retry_at, until);
            if (rt_clock_ms() >= o->retry_at) {
                evtimer_del(o->retry);
                send_range(o);
            }
            continue;
        }
        rt_curl_loop_wait(o->loop, left < 100 ? (int)left : 100);
    }
    o->draining = 0;
    if (rc < 0)
        rt_error("%s %s: %zu records not acknowledged within %d ms", o->what, o->s->name,
                 pending(o), timeout_ms);
    return rc;
}

void rt_http_out_counts(const rt_http_out *o, unsigned long long *requests,
                        unsigned long long *retried)
{
    *requests = o->requests;
    *retried = o->retried;
}

void rt_http_out_free(rt_http_out *o)
{
    if (!o)
        return;
    rt_curl_loop_free(o->loop);     /* first: it may still hold the handle */
    if (o->easy)
        curl_easy_cleanup(o->easy);
    curl_slist_free_all(o->headers);
    for (int i = 0; i < 2; i++) {
        rt_buf_free(&o->b[i].body);
        free(o->b[i].docs);
    }
    free(o->todo);
    rt_buf_free(&o->resp);
    if (o->linger)
        event_free(o->linger);
    if (o->kick)
        event_free(o->kick);
    if (o->retry)
        event_free(o->retry);
    free(o);
}

/* The handle every request reuses: URL, headers, auth, TLS, timeout. */
static int setup_easy(rt_http_out *o, const rt_config *c, const char *url,
                      const char *const *headers)
{
    const char *name = o->s->name;
    const char *user = rt_sink_conf(c, name, "username");
    const char *pass = rt_sink_conf(c, name, "password");
    const char *ca = rt_sink_conf(c, name, "tls.ca.file");
    long verify = (long)rt_sink_conf_int(c, name, "tls.verify");
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(o->headers, headers[i]);
        if (!l)
            return -1;
        o->headers = l;
    }
    if (!(o->easy = curl_easy_init()))
        return -1;
    CURL *h = o->easy;
    int bad = curl_easy_setopt(h, CURLOPT_URL, url) ||
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, o->headers) ||
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
              curl_easy_setopt(h, CURLOPT_WRITEDATA, &o->resp) ||
              curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rt_sink_conf_int(c, name, "timeout.ms")) ||
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

rt_http_out *rt_http_out_new(rt_sink *s, const rt_sink_env *env, const rt_config *c,
                             const char *what, const char *url, const char *const *headers,
                             long long max_docs, rt_http_judge_fn judge, void *arg)
{
    rt_http_out *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->s = s;
    o->env = env;
    o->what = what;
    o->judge = judge;
    o->arg = arg;
    o->max_docs = max_docs;
    o->max_bytes = rt_sink_conf_int(c, s->name, "batch.bytes");
    o->linger_ms = rt_sink_conf_int(c, s->name, "batch.ms");
    o->backoff_min = rt_sink_conf_int(c, s->name, "retry.backoff.ms");
    o->backoff_max = rt_sink_conf_int(c, s->name, "retry.backoff.max.ms");
    o->fill = &o->b[0];
    o->fly = &o->b[1];
    o->loop = rt_curl_loop_new(env->base);
    o->linger = evtimer_new(env->base, on_linger, o);
    o->retry = evtimer_new(env->base, on_retry, o);
    o->kick = event_new(env->base, -1, 0, on_kick, o);
    if (!o->loop || !o->linger || !o->retry || !o->kick || setup_easy(o, c, url, headers) < 0) {
        rt_http_out_free(o);
        return NULL;
    }
    return o;
}
