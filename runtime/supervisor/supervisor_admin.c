/* supervisor_admin.c - the supervisor's admin endpoint. /metrics, /-/processors and
 * /-/state/... are asked of every running worker's own endpoint (127.0.0.1, a port it
 * chose and wrote to its beat) without blocking the master's loop, then merged. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "log.h"
#include "metrics.h"
#include "supervisor_int.h"

#define ASK_TIMEOUT_S 10

enum ask { ASK_METRICS, ASK_PROCESSORS, ASK_STATE };

typedef struct gather gather;
typedef struct part {
    gather *g;
    int i;
} part;

struct gather {
    rt_sup *s;
    struct evhttp_request *req;
    enum ask what;
    char *uri;              /* ASK_STATE: the request's, passed on */
    int pending;
    rt_buf bodies[RT_MAX_WORKERS];
    part parts[RT_MAX_WORKERS];
    pid_t pids[RT_MAX_WORKERS];     /* the worker asked, to tell it from a successor */
    struct evhttp_connection *conns[RT_MAX_WORKERS];
};

/* The supervisor's own families, after the workers' merged ones. */
static int own_metrics(const rt_sup *s, rt_buf *out)
{
    char labels[32];
    int up = 0;
    for (int i = 0; i < s->n; i++)
        up += s->kids[i].pid != 0;
    if (rt_prom_header(out, "eddy_workers_running", "gauge", "Worker processes running.") ||
        rt_prom_sample(out, "eddy_workers_running", NULL, up) ||
        rt_prom_header(out, "eddy_worker_restarts_total", "counter",
                       "Times a worker died and was started again.") ||
        rt_prom_header(out, "eddy_worker_kills_total", "counter",
                       "Workers killed for a Lua call stuck past twice processor.timeout.ms."))
        return -1;
    for (int i = 0; i < s->n; i++) {
        snprintf(labels, sizeof labels, "worker=\"%d\"", i);
        if (rt_prom_sample(out, "eddy_worker_restarts_total", labels, (double)s->kids[i].restarts))
            return -1;
    }
    /* Samples of one family stay together: a second pass for the kills. */
    for (int i = 0; i < s->n; i++) {
        snprintf(labels, sizeof labels, "worker=\"%d\"", i);
        if (rt_prom_sample(out, "eddy_worker_kills_total", labels, (double)s->kids[i].kills))
            return -1;
    }
    return 0;
}

/* {"workers": [each worker's answer, or {"worker": i, "down": true}]} */
static int workers_doc(gather *g, rt_buf *out)
{
    if (rt_buf_append(out, "{\"workers\": [\n", 14))
        return -1;
    for (int i = 0; i < g->s->n; i++) {
        char down[64];
        int n = snprintf(down, sizeof down, "{\"worker\": %d, \"down\": true}", i);
        const rt_buf *b = &g->bodies[i];
        if ((i && rt_buf_append(out, ",\n", 2)) ||
            (b->len ? rt_buf_append(out, b->data, b->len) : rt_buf_append(out, down, (size_t)n)))
            return -1;
    }
    return rt_buf_append(out, "]}\n", 3);
}

/* Every worker answered or failed: reply, then free (outside the request callback,
 * where freeing the connection is not allowed). */
static void finish(evutil_socket_t fd, short what, void *arg)
{
    gather *g = arg;
    rt_buf out = { 0 };
    int rc;
    if (g->what == ASK_METRICS) {
        /* A live worker that gave no answer (busy, starting) counts with its last one,
         * so that no sum dips; a dead worker's is in s->retired already. */
        rt_buf texts[RT_MAX_WORKERS + 1];
        size_t n = 0;
        for (int i = 0; i < g->s->n; i++) {
            const rt_sup_child *c = &g->s->kids[i];
            if (c->pid && g->pids[i] == c->pid && g->bodies[i].len)
                texts[n++] = g->bodies[i];
            else if (c->pid && c->last_metrics.len)
                texts[n++] = c->last_metrics;
        }
        texts[n++] = g->s->retired;
        rc = rt_metrics_merge(texts, n, &out) || own_metrics(g->s, &out);
    } else {
        rc = workers_doc(g, &out);
    }
    if (rc)
        rt_admin_reply(g->req, 500, "text/plain", "error\n", 6);
    else
        rt_admin_reply(g->req, 200, g->what == ASK_METRICS ? "text/plain; version=0.0.4"
                                                          : "application/json",
                       out.data ? out.data : "", out.len);
    rt_buf_free(&out);
    for (int i = 0; i < g->s->n; i++) {
        if (g->conns[i])
            evhttp_connection_free(g->conns[i]);
        rt_buf_free(&g->bodies[i]);
    }
    free(g->uri);
    free(g);
}

static void done_one(gather *g)
{
    struct timeval now = { 0, 0 };
    if (--g->pending == 0 && event_base_once(g->s->base, -1, EV_TIMEOUT, finish, g, &now) < 0)
        finish(-1, 0, g);
}

static void on_answer(struct evhttp_request *r, void *arg)
{
    part *p = arg;
    int code = r ? evhttp_request_get_response_code(r) : 0;
    if (code == 200) {
        struct evbuffer *in = evhttp_request_get_input_buffer(r);
        size_t len = evbuffer_get_length(in);
        rt_buf *b = &p->g->bodies[p->i];
        if (rt_buf_reserve(b, len) == 0 && evbuffer_remove(in, b->data, len) == (int)len)
            b->len = len;
        rt_sup_child *c = &p->g->s->kids[p->i];
        /* The latest counters of this worker, for when it dies (rt_metrics_retire). */
        if (p->g->what == ASK_METRICS && b->len && c->pid == p->g->pids[p->i]) {
            c->last_metrics.len = 0;
            if (rt_buf_append(&c->last_metrics, b->data, b->len) < 0)
                rt_warn("supervisor: out of memory keeping worker %d's counters", p->i);
        }
    } else if (code == 503) {
        /* Its loop is busy (starting, a long call) and its endpoint has no answer yet. */
        rt_info("supervisor: worker %d is busy and answered 503", p->i);
    } else if (code) {
        rt_warn("supervisor: worker %d answered its admin request with %d", p->i, code);
    } else {
        rt_warn("supervisor: worker %d did not answer its admin request", p->i);
    }
    done_one(p->g);
}

static int ask_workers(rt_sup *s, struct evhttp_request *req, enum ask what, const char *uri)
{
    gather *g = calloc(1, sizeof *g);
    if (!g || (what == ASK_STATE && !(g->uri = strdup(uri)))) {
        free(g);
        return -1;
    }
    g->s = s;
    g->req = req;
    g->what = what;
    g->pending = 1;     /* held until every request is sent */
    for (int i = 0; i < s->n; i++) {
        int port = s->shared->beats[i].admin_port;
        if (!s->kids[i].pid || !port)
            continue;
        g->parts[i] = (part){ g, i };
        g->pids[i] = s->kids[i].pid;
        struct evhttp_connection *c = evhttp_connection_base_new(s->base, NULL, "127.0.0.1",
                                                                 (ev_uint16_t)port);
        struct evhttp_request *r = c ? evhttp_request_new(on_answer, &g->parts[i]) : NULL;
        if (!r) {
            if (c)
                evhttp_connection_free(c);
            continue;
        }
        g->conns[i] = c;
        evhttp_connection_set_timeout(c, ASK_TIMEOUT_S);
        evhttp_add_header(evhttp_request_get_output_headers(r), "Host", "127.0.0.1");
        /* The workers ask for admin.token where the supervisor did (it checked it). */
        const char *token = rt_config_get(s->cfg, "admin.token");
        char auth[600];
        if (what == ASK_STATE && token && *token &&
            snprintf(auth, sizeof auth, "Bearer %s", token) < (int)sizeof auth)
            evhttp_add_header(evhttp_request_get_output_headers(r), "Authorization", auth);
        g->pending++;
        if (evhttp_make_request(c, r, EVHTTP_REQ_GET, what == ASK_METRICS ? "/metrics"
                                                      : what == ASK_STATE ? g->uri
                                                      : "/-/processors") < 0)
            g->pending--;   /* the request was freed by libevent */
    }
    done_one(g);
    return 0;
}

static int get_metrics(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                       const char **type)
{
    return ask_workers(arg, req, ASK_METRICS, uri);
}

static int get_processors(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                       const char **type)
{
    return ask_workers(arg, req, ASK_PROCESSORS, uri);
}

/* Each worker holds the state of its own partitions: every worker's answer. */
static int get_state(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                     const char **type)
{
    return ask_workers(arg, req, ASK_STATE, uri);
}

/* Each worker reloads on its own (as on SIGHUP); the outcome is in /-/processors. */
static int post_reload(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                       const char **type)
{
    rt_sup *s = arg;
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (s->kids[i].pid && kill(s->kids[i].pid, SIGHUP) == 0)
            n++;
    rt_info("reload requested (POST /-/reload): sent to %d workers", n);
    char body[64];
    int len = snprintf(body, sizeof body, "{\"pending\": true, \"workers\": %d}\n", n);
    *type = "application/json";
    return rt_buf_append(out, body, (size_t)len) < 0 ? -1 : 202;
}

/* Up while the supervisor runs (it restarts what dies); the body says which run. */
static int get_health(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                       const char **type)
{
    rt_sup *s = arg;
    if (rt_buf_append(out, "ok\n", 3))
        return -1;
    for (int i = 0; i < s->n; i++) {
        char line[64];
        int n = s->kids[i].pid ? snprintf(line, sizeof line, "worker %d: pid %d\n", i,
                                          (int)s->kids[i].pid)
                               : snprintf(line, sizeof line, "worker %d: restarting\n", i);
        if (rt_buf_append(out, line, (size_t)n))
            return -1;
    }
    return 200;
}

static int get_config(void *arg, struct evhttp_request *req, const char *uri, rt_buf *out,
                       const char **type)
{
    rt_sup *s = arg;
    return rt_admin_json_body(out, type, rt_config_json(s->cfg));
}

const rt_admin_route rt_supervisor_routes[] = {
    { "GET", "/metrics", get_metrics, 0 },
    { "GET", "/-/config", get_config, 0 },
    { "GET", "/-/processors", get_processors, 0 },
    { "GET", "/-/state/", get_state, RT_ADMIN_PREFIX | RT_ADMIN_PRIVATE },
    { "GET", "/-/state", get_state, 0 },
    { "POST", "/-/reload", post_reload, 0 },
    { "GET", "/healthz", get_health, 0 },
    { NULL, NULL, NULL, 0 },
};
