/* admin.h - the admin HTTP endpoint: GET /healthz, and the routes its owner gives
 * (a worker: /metrics, /-/processors, POST /-/reload; the supervisor: the same, merged
 * over its workers).
 *
 * A worker's endpoint runs on a thread of its own (rt_admin_start_thread), so that it
 * answers while the worker's loop is inside a long Lua call or drains slow sinks: a
 * route is handed to the owner's loop and answered when the loop has computed it, or,
 * when the loop is busy past RT_ADMIN_LOOP_WAIT_MS, from the last answer it gave
 * (header X-Eddy-Stale-Ms). Routes marked RT_ADMIN_ANY_THREAD (health, config) run on
 * the endpoint's thread and must only read what is safe to read from there. */
#ifndef RT_ADMIN_H
#define RT_ADMIN_H

#include <event2/event.h>
#include <event2/http.h>

#include "buf.h"

typedef struct rt_admin rt_admin;

/* Answer one request for `uri` (path and query as sent): fill `out` and *type and
 * return the HTTP status, or return 0 after taking the request over (it is answered
 * later with rt_admin_reply); -1 is a 500. */
typedef int (*rt_admin_fn)(void *arg, struct evhttp_request *req, const char *uri,
                           rt_buf *out, const char **type);

#define RT_ADMIN_LOOP_WAIT_MS 50
#define RT_ADMIN_ANY_THREAD 1   /* route flag: safe to run on the endpoint's thread */
#define RT_ADMIN_PREFIX 2       /* route flag: `path` is a prefix (GET /-/state/<name>);
                                 * each request is run for its own URI, never joined
                                 * with another or answered from an earlier answer */
#define RT_ADMIN_PRIVATE 4      /* route flag: a GET that shows data, not counters: it
                                 * needs admin.token as POSTs do */

typedef struct rt_admin_route {
    const char *method;     /* "GET" (HEAD too) or "POST" */
    const char *path;
    rt_admin_fn fn;         /* on the owner's loop it gets req NULL (threaded endpoint) */
    int flags;
} rt_admin_route;

/* Where and how an endpoint listens. */
typedef struct rt_admin_opts {
    const char *listen;     /* "host:port"; port 0 picks a free one */
    const char *token;      /* admin.token: POST routes need "Authorization: Bearer
                               <token>"; NULL or "" for none */
    int quiet;              /* do not log the address */
    /* Threaded endpoint: run tick(arg) on its thread every tick_ms (NULL: none), for
     * watching the owner's loop from outside it. */
    void (*tick)(void *arg);
    int tick_ms;
} rt_admin_opts;

/* Listen on o->listen; `routes` ends with a NULL path and must outlive the endpoint.
 * NULL with err set. */
rt_admin *rt_admin_start(struct event_base *base, const rt_admin_opts *o,
                         const rt_admin_route *routes, void *arg, char *err, size_t errlen);
/* The same on a thread of its own; routes without RT_ADMIN_ANY_THREAD are run on
 * `base`'s loop (the owner's). A route for GET /healthz replaces the built-in one. */
rt_admin *rt_admin_start_thread(struct event_base *base, const rt_admin_opts *o,
                                const rt_admin_route *routes, void *arg, char *err,
                                size_t errlen);
/* The port it listens on. */
int  rt_admin_port(const rt_admin *a);
/* Send a reply with this status, content type and body. */
void rt_admin_reply(struct evhttp_request *req, int code, const char *type, const char *body,
                    size_t len);
/* For a route: answer 200 with `json` (taken and freed) as the body; -1 (a 500) when
 * json is NULL or out of memory. */
int  rt_admin_json_body(rt_buf *out, const char **type, char *json);
/* Stop listening and free. */
void rt_admin_stop(rt_admin *a);

#endif
