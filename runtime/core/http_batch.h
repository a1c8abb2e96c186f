/* http_batch.h - the batching HTTP client the HTTP sinks (Elasticsearch, ClickHouse)
 * share. Records are appended to a filling batch, sent as one POST when it is full
 * (`max_docs`, batch.bytes) or old (batch.ms), one request in flight, on the worker's
 * loop through curl_loop. A request that failed is sent again after a backoff that
 * doubles up to retry.backoff.max.ms. The kind judges every answer: done, send again,
 * or split in halves (to find the records a server refuses when it refuses a whole
 * request for one of them).
 *
 * The kind owns the acknowledgements: it acks or dead-letters each record of a request
 * it judges done. The sink's s->impl is the rt_http_out; the kind's state is its arg. */
#ifndef RT_HTTP_BATCH_H
#define RT_HTTP_BATCH_H

#include <curl/curl.h>

#include "buf.h"
#include "config.h"
#include "sink.h"

/* One record in a batch: its bytes in the body are [off, off+len), the record itself
 * (without what the kind wrote before it, and without the newline) starts at src. */
typedef struct rt_http_doc {
    rt_ticket *ticket;
    size_t off, len, src;
} rt_http_doc;

typedef struct rt_http_batch {
    rt_buf body;
    rt_http_doc *docs;
    size_t n, cap;
} rt_http_batch;

/* A finished request: docs [lo, hi) of b, curl's result, the HTTP status, the body. */
typedef struct rt_http_req {
    rt_http_batch *b;
    size_t lo, hi;
    CURLcode rc;
    long status;
    const rt_buf *resp;
} rt_http_req;

typedef enum rt_http_verdict {
    RT_HTTP_DONE,       /* every record of the request is acknowledged or dead-lettered */
    RT_HTTP_RETRY,      /* send the request again after the backoff; `why` says why */
    RT_HTTP_SPLIT,      /* send each half on its own (a request of 2 records or more) */
} rt_http_verdict;

typedef rt_http_verdict (*rt_http_judge_fn)(void *arg, const rt_http_req *r, char *why,
                                            size_t whylen);

typedef struct rt_http_out rt_http_out;

/* A client for sink `s`, `what` naming it in logs ("elasticsearch sink"). It reads the
 * shared keys of sink.<name>: batch.bytes, batch.ms, timeout.ms, retry.backoff.ms,
 * retry.backoff.max.ms, username, password, tls.verify, tls.ca.file. `headers` is a
 * NULL-terminated list. NULL when out of memory or curl refused a setting. */
rt_http_out *rt_http_out_new(rt_sink *s, const rt_sink_env *env, const rt_config *c,
                             const char *what, const char *url, const char *const *headers,
                             long long max_docs, rt_http_judge_fn judge, void *arg);
/* The body of the filling batch: a kind appends one record's bytes to it, then calls
 * rt_http_out_add (or cuts the body back to where it was). */
rt_buf *rt_http_out_body(rt_http_out *o);
/* The record whose bytes were appended from `off`, its own bytes from `src`: the batch
 * holds the ticket (the sink's hold) from now on. -1 when out of memory (nothing
 * changed: the kind cuts the body back). */
int  rt_http_out_add(rt_http_out *o, rt_ticket *ticket, size_t off, size_t src);
/* The record of a doc, without the newline that ends it. */
const char *rt_http_doc_record(const rt_http_batch *b, const rt_http_doc *d, size_t *len);
/* Keep only the docs of the batch in flight marked in `keep`, in order, and send all of
 * them next time (a kind that retries part of a request). */
void rt_http_out_keep(rt_http_out *o, const unsigned char *keep);

/* The `arg` given to rt_http_out_new: the kind's own state. */
void  *rt_http_out_arg(const rt_http_out *o);
/* Sink operations of an HTTP sink, whose s->impl is its rt_http_out: flush; drain
 * (write out everything within timeout_ms without the event loop, -1 if some is
 * left); records not yet acknowledged. */
int    rt_http_sink_flush(rt_sink *s);
int    rt_http_sink_drain(rt_sink *s, int timeout_ms);
size_t rt_http_sink_pending(rt_sink *s);
/* Requests sent (retries and halves included) and requests sent again. */
void   rt_http_out_counts(const rt_http_out *o, unsigned long long *requests,
                          unsigned long long *retried);
void   rt_http_out_free(rt_http_out *o);

#endif
