/* admin.c - admin HTTP endpoint (libevent evhttp), on its owner's loop (the
 * supervisor, whose loop never runs Lua) or on a thread of its own (a worker). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "admin.h"
#include "clock.h"
#include "log.h"

/* Hostile clients: a request larger than these is refused by evhttp, and a connection
 * idle this long is closed, so half-open connections do not pile up. */
#define MAX_HEADERS_BYTES (16 * 1024)
#define MAX_BODY_BYTES (64 * 1024)
#define IDLE_TIMEOUT_S 10

/* A request handed to the owner's loop (threaded endpoint). Requests for a route that
 * is already waiting join it, so a flood of the same request costs the loop one run. */
typedef struct waiter {
    struct waiter *next;
    struct evhttp_request *req;
} waiter;

typedef struct ask {
    struct ask *next;
    rt_admin *a;
    size_t route;           /* index in a->routes */
    char *uri;              /* the request's path and query */
    waiter *waiters;        /* NULL once answered (from the cache, or late) */
    struct event *late_ev;  /* on the endpoint's loop: the owner took too long */
    int code;
    const char *type;
    rt_buf out;
} ask;

/* The last answer the owner's loop gave for a route. */
typedef struct cached {
    int code;
    const char *type;
    rt_buf body;
    int64_t at_ms;
} cached;

struct rt_admin {
    struct evhttp *http;
    const rt_admin_route *routes;
    void *arg;
    char *token;            /* admin.token, or NULL */
    int port;
    /* threaded endpoint */
    struct event_base *base;        /* the endpoint thread's own loop */
    pthread_t thread;
    int running;
    int to_owner[2], to_http[2];    /* wake-up pipes */
    struct event *owner_ev, *http_ev, *tick_ev;
    void (*tick)(void *arg);
    pthread_mutex_t mu;             /* guards asked and answered */
    ask *asked, *answered;          /* FIFO lists, newest first (reversed on taking) */
    cached *cache;                  /* per route */
    size_t nroutes;
    int stop;
};

static const char *reason_of(int code)
{
    switch (code) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 503: return "Service Unavailable";
    default: return code >= 500 ? "Internal Server Error" : "Bad Request";
    }
}

int rt_admin_json_body(rt_buf *out, const char **type, char *json)
{
    int rc = json && rt_buf_append(out, json, strlen(json)) == 0 &&
             rt_buf_append(out, "\n", 1) == 0 ? 200 : -1;
    free(json);
    *type = "application/json";
    return rc;
}

void rt_admin_reply(struct evhttp_request *req, int code, const char *type, const char *body,
                    size_t len)
{
    const char *reason = reason_of(code);
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add(b, body, len) < 0 ||
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type) < 0) {
        if (b)
            evbuffer_free(b);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* Run a route here and answer. */
static void answer_here(rt_admin *a, const rt_admin_route *r, struct evhttp_request *req)
{
    rt_buf out = { 0 };
    const char *type = "text/plain";
    int code = r->fn(a->arg, req, evhttp_request_get_uri(req), &out, &type);
    if (code < 0)
        rt_admin_reply(req, 500, "text/plain", "error\n", 6);
    else if (code > 0)
        rt_admin_reply(req, code, type, out.data ? out.data : "", out.len);
    rt_buf_free(&out);
}

static void wake(int fd)
{
    /* A full pipe already holds a wake-up: nothing is lost by dropping this one. */
    ssize_t n;
    do
        n = write(fd, "x", 1);
    while (n < 0 && errno == EINTR);
}

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* Take a whole list, oldest first. */
static ask *take(rt_admin *a, ask **list)
{
    pthread_mutex_lock(&a->mu);
    ask *l = *list, *rev = NULL;
    *list = NULL;
    pthread_mutex_unlock(&a->mu);
    while (l) {
        ask *next = l->next;
        l->next = rev;
        rev = l;
        l = next;
    }
    return rev;
}

static void reply_all(ask *k, int code, const char *type, const char *body, size_t len,
                      int64_t stale_ms)
{
    while (k->waiters) {
        waiter *wt = k->waiters;
        k->waiters = wt->next;
        if (stale_ms >= 0) {
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long)stale_ms);
            evhttp_add_header(evhttp_request_get_output_headers(wt->req), "X-Eddy-Stale-Ms", v);
        }
        rt_admin_reply(wt->req, code, type, body, len);
        free(wt);
    }
}

static void free_ask(ask *k)
{
    reply_all(k, 503, "text/plain", "stopping\n", 9, -1);
    if (k->late_ev)
        event_free(k->late_ev);
    rt_buf_free(&k->out);
    free(k->uri);
    free(k);
}

/* The owner's loop was busy past RT_ADMIN_LOOP_WAIT_MS: answer from its last answer.
 * The request stays queued; when the loop gets to it, the answer refreshes the cache
 * (and a POST is carried out then, as 202 says). */
static void on_late(evutil_socket_t fd, short what, void *arg)
{
    ask *k = arg;
    rt_admin *a = k->a;
    const rt_admin_route *r = &a->routes[k->route];
    const cached *c = &a->cache[k->route];
    char msg[160];
    if (strcmp(r->method, "POST") == 0) {
        int n = snprintf(msg, sizeof msg, "{\"pending\": true, \"busy\": true}\n");
        reply_all(k, 202, "application/json", msg, (size_t)n, -1);
    } else if (c->code && !(r->flags & RT_ADMIN_PREFIX)) {
        reply_all(k, c->code, c->type, c->body.data ? c->body.data : "", c->body.len,
                  rt_clock_ms() - c->at_ms);
    } else {
        int n = snprintf(msg, sizeof msg, "the worker's loop is busy and has not answered "
                         "%s yet; try again\n", r->path);
        reply_all(k, 503, "text/plain", msg, (size_t)n, -1);
    }
}

/* On the endpoint's thread: the owner's answers. */
static void on_answers(evutil_socket_t fd, short what, void *arg)
{
    rt_admin *a = arg;
    drain(fd);
    if (__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        event_base_loopbreak(a->base);
        return;
    }
    for (ask *k = take(a, &a->answered), *next; k; k = next) {
        next = k->next;
        cached *c = &a->cache[k->route];
        if (k->code > 0 && strcmp(a->routes[k->route].method, "GET") == 0 &&
            !(a->routes[k->route].flags & RT_ADMIN_PREFIX)) {
            c->body.len = 0;
            if (rt_buf_append(&c->body, k->out.data ? k->out.data : "", k->out.len) == 0) {
                c->code = k->code;
                c->type = k->type;
                c->at_ms = rt_clock_ms();
            }
        }
        if (k->code < 0)
            reply_all(k, 500, "text/plain", "error\n", 6, -1);
        else
            reply_all(k, k->code, k->type, k->out.data ? k->out.data : "", k->out.len, -1);
        free_ask(k);
    }
}

/* On the owner's loop: run what the endpoint asked. */
static void on_asks(evutil_socket_t fd, short what, void *arg)
{
    rt_admin *a = arg;
    drain(fd);
    /* Once off `asked`, a request is out of reach of ask_owner's joining. */
    ask *l = take(a, &a->asked);
    for (ask *k = l; k; k = k->next) {
        k->type = "text/plain";
        const rt_admin_route *r = &a->routes[k->route];
        k->code = r->fn(a->arg, NULL, k->uri ? k->uri : r->path, &k->out, &k->type);
        if (k->code == 0)   /* routes that answer later are not for a threaded endpoint */
            k->code = -1;
    }
    pthread_mutex_lock(&a->mu);
    while (l) {
        ask *next = l->next;
        l->next = a->answered;
        a->answered = l;
        l = next;
    }
    pthread_mutex_unlock(&a->mu);
    wake(a->to_http[1]);
}

static void queue_ask(rt_admin *a, ask *k)
{
    pthread_mutex_lock(&a->mu);
    k->next = a->asked;
    a->asked = k;
    pthread_mutex_unlock(&a->mu);
    wake(a->to_owner[1]);
}

/* Ask the owner's loop for every GET route once, with nobody waiting, so that a first
 * scrape during a long call has an answer to fall back on. -1 when out of memory. */
static int prime(rt_admin *a)
{
    for (size_t i = 0; i < a->nroutes; i++) {
        if (strcmp(a->routes[i].method, "GET") ||
            (a->routes[i].flags & (RT_ADMIN_ANY_THREAD | RT_ADMIN_PREFIX)))
            continue;
        ask *k = calloc(1, sizeof *k);
        if (!k)
            return -1;
        k->a = a;
        k->route = i;
        queue_ask(a, k);
    }
    return 0;
}

/* Hand a request to the owner's loop, joining one for the same route still waiting. */
static void ask_owner(rt_admin *a, size_t route, struct evhttp_request *req)
{
    waiter *wt = calloc(1, sizeof *wt);
    if (!wt) {
        rt_admin_reply(req, 500, "text/plain", "error\n", 6);
        return;
    }
    wt->req = req;
    int own = a->routes[route].flags & RT_ADMIN_PREFIX;
    pthread_mutex_lock(&a->mu);
    for (ask *k = a->asked; k && !own; k = k->next)
        if (k->route == route && k->waiters) {
            wt->next = k->waiters;
            k->waiters = wt;
            pthread_mutex_unlock(&a->mu);
            return;
        }
    pthread_mutex_unlock(&a->mu);
    ask *k = calloc(1, sizeof *k);
    static const struct timeval late = { 0, RT_ADMIN_LOOP_WAIT_MS * 1000 };
    if (!k || (own && !(k->uri = strdup(evhttp_request_get_uri(req)))) ||
        !(k->late_ev = evtimer_new(a->base, on_late, k)) || evtimer_add(k->late_ev, &late) < 0) {
        if (k && k->late_ev)
            event_free(k->late_ev);
        if (k)
            free(k->uri);
        free(k);
        free(wt);
        rt_admin_reply(req, 500, "text/plain", "error\n", 6);
        return;
    }
    k->a = a;
    k->route = route;
    k->waiters = wt;
    queue_ask(a, k);
}

#define UNAUTHORIZED "unauthorized: this endpoint needs Authorization: Bearer <admin.token>\n"

/* With admin.token set, a POST must carry "Authorization: Bearer <token>". The compare
 * takes the same time whatever the bytes, so the token cannot be guessed by timing. */
static int authorized(const rt_admin *a, struct evhttp_request *req)
{
    if (!a->token)
        return 1;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return 0;
    h += 7;
    size_t n = strlen(a->token), m = strlen(h);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a->token[i] ^ h[i < m ? i : 0]);
    return diff == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    rt_admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *method = cmd == EVHTTP_REQ_POST ? "POST"
                       : cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD ? "GET" : NULL;
    int known = 0;
    for (const rt_admin_route *r = a->routes; path && r->path; r++) {
        if ((r->flags & RT_ADMIN_PREFIX) ? strncmp(r->path, path, strlen(r->path))
                                         : strcmp(r->path, path))
            continue;
        known = 1;
        if (!method || strcmp(r->method, method))
            continue;
        if ((!strcmp(method, "POST") || (r->flags & RT_ADMIN_PRIVATE)) && !authorized(a, req)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              "Bearer realm=\"eddy\"");
            rt_admin_reply(req, 401, "text/plain", UNAUTHORIZED, sizeof UNAUTHORIZED - 1);
            return;
        }
        if (a->base && !(r->flags & RT_ADMIN_ANY_THREAD))
            ask_owner(a, (size_t)(r - a->routes), req);
        else
            answer_here(a, r, req);
        return;
    }
    if (known) {
        rt_admin_reply(req, 405, "text/plain", "method not allowed\n", 19);
        return;
    }
    if (path && strcmp(path, "/healthz") == 0 && method && !strcmp(method, "GET")) {
        rt_admin_reply(req, 200, "text/plain", "ok\n", 3);
        return;
    }
    rt_admin_reply(req, 404, "text/plain", "not found\n", 10);
}

/* Out of file descriptors, accept() fails and the pending connection stays queued:
 * libevent would log and try again at once, forever (a core spinning, a warning per
 * try). So one pending connection is shed per failure through a descriptor kept spare
 * for the purpose, and the warning is written once per ACCEPT_WARN_EVERY_MS with the
 * count since. libevent 2.1 cannot count the connections evhttp holds; this and the
 * idle timeout are the cap: new clients are turned away only while descriptors are
 * short, and the endpoint recovers by itself when they are back. */
#define ACCEPT_WARN_EVERY_MS 10000

static int spare_fd = -1;
static uint64_t accept_errors, accept_errors_told;
static int64_t accept_warned_ms;

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    accept_errors++;
    if ((e == EMFILE || e == ENFILE) && spare_fd >= 0) {
        close(spare_fd);
        int fd = accept(evconnlistener_get_fd(l), NULL, NULL);
        if (fd >= 0)
            close(fd);
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    int64_t now = rt_clock_ms();
    if (!accept_warned_ms || now - accept_warned_ms >= ACCEPT_WARN_EVERY_MS) {
        rt_warn("admin endpoint: accept failed: %s (%llu times since the last warning; "
                "if the clients are legitimate, raise the open-files limit, LimitNOFILE)",
                evutil_socket_error_to_string(e),
                (unsigned long long)(accept_errors - accept_errors_told));
        accept_errors_told = accept_errors;
        accept_warned_ms = now;
    }
}

/* Listen on `listen` with evhttp on `base`. */
static int listen_on(rt_admin *a, struct event_base *base, const rt_admin_opts *o,
                     char *err, size_t errlen)
{
    const char *listen = o->listen;
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host || !colon[1] ||
        *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "admin.listen: '%s' is not host:port", listen);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (!(a->http = evhttp_new(base))) {
        snprintf(err, errlen, "admin: out of memory");
        return -1;
    }
    evhttp_set_gencb(a->http, on_request, a);
    evhttp_set_timeout(a->http, IDLE_TIMEOUT_S);
    evhttp_set_max_headers_size(a->http, MAX_HEADERS_BYTES);
    evhttp_set_max_body_size(a->http, MAX_BODY_BYTES);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(a->http, host,
                                                                      (ev_uint16_t)port);
    if (!sock) {
        snprintf(err, errlen, "admin.listen: cannot listen on %s", listen);
        return -1;
    }
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(sock), on_accept_error);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    int bound = port;
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
            bound = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
            bound = ntohs(in6->sin6_port);
        }
    }
    a->port = bound;
    if (!o->quiet)
        rt_info("admin endpoint listening on %s:%d (/metrics, /healthz, /-/processors, "
                "/-/config, POST /-/reload)", addr, bound);
    return 0;
}

static rt_admin *admin_new(const rt_admin_opts *o, const rt_admin_route *routes, void *arg,
                           char *err, size_t errlen)
{
    rt_admin *a = calloc(1, sizeof *a);
    if (!a || (o->token && *o->token && !(a->token = strdup(o->token)))) {
        free(a);
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->routes = routes;
    a->arg = arg;
    a->tick = o->tick;
    a->to_owner[0] = a->to_owner[1] = a->to_http[0] = a->to_http[1] = -1;
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

rt_admin *rt_admin_start(struct event_base *base, const rt_admin_opts *o,
                         const rt_admin_route *routes, void *arg, char *err, size_t errlen)
{
    rt_admin *a = admin_new(o, routes, arg, err, errlen);
    if (!a)
        return NULL;
    if (listen_on(a, base, o, err, errlen) < 0) {
        rt_admin_stop(a);
        return NULL;
    }
    return a;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    rt_admin *a = arg;
    a->tick(a->arg);
}

static void *serve(void *arg)
{
    rt_admin *a = arg;
    /* Signals are the owner's loop's business. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    event_base_dispatch(a->base);
    return NULL;
}

static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        fds[0] = fds[1] = -1;
        return -1;
    }
    return 0;
}

rt_admin *rt_admin_start_thread(struct event_base *owner, const rt_admin_opts *o,
                                const rt_admin_route *routes, void *arg, char *err,
                                size_t errlen)
{
    rt_admin *a = admin_new(o, routes, arg, err, errlen);
    if (!a)
        return NULL;
    while (routes[a->nroutes].path)
        a->nroutes++;
    if (!(a->cache = calloc(a->nroutes + 1, sizeof *a->cache)) ||
        !(a->base = event_base_new()) || make_pipe(a->to_owner) < 0 ||
        make_pipe(a->to_http) < 0 ||
        !(a->owner_ev = event_new(owner, a->to_owner[0], EV_READ | EV_PERSIST, on_asks, a)) ||
        !(a->http_ev = event_new(a->base, a->to_http[0], EV_READ | EV_PERSIST, on_answers, a)) ||
        event_add(a->owner_ev, NULL) < 0 || event_add(a->http_ev, NULL) < 0) {
        snprintf(err, errlen, "admin: cannot set up its thread: %s", strerror(errno));
        goto fail;
    }
    struct timeval every = { o->tick_ms / 1000, (o->tick_ms % 1000) * 1000 };
    if (o->tick && (!(a->tick_ev = event_new(a->base, -1, EV_PERSIST, on_tick, a)) ||
                    event_add(a->tick_ev, &every) < 0)) {
        snprintf(err, errlen, "admin: cannot set up its thread: %s", strerror(errno));
        goto fail;
    }
    if (listen_on(a, a->base, o, err, errlen) < 0)
        goto fail;
    if (prime(a) < 0) {
        snprintf(err, errlen, "admin: out of memory");
        goto fail;
    }
    int e = pthread_create(&a->thread, NULL, serve, a);
    if (e) {
        snprintf(err, errlen, "admin: cannot start its thread: %s", strerror(e));
        goto fail;
    }
    a->running = 1;
    return a;
fail:
    rt_admin_stop(a);
    return NULL;
}

int rt_admin_port(const rt_admin *a)
{
    return a->port;
}

void rt_admin_stop(rt_admin *a)
{
    if (!a)
        return;
    if (a->running) {
        __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
        wake(a->to_http[1]);
        pthread_join(a->thread, NULL);
    }
    /* The thread is gone: what is still queued is answered "stopping" and freed. */
    if (a->base) {
        for (ask *k = take(a, &a->asked), *next; k; k = next) {
            next = k->next;
            free_ask(k);
        }
        for (ask *k = take(a, &a->answered), *next; k; k = next) {
            next = k->next;
            free_ask(k);
        }
    }
    if (a->http)
        evhttp_free(a->http);
    if (a->owner_ev)
        event_free(a->owner_ev);
    if (a->http_ev)
        event_free(a->http_ev);
    if (a->tick_ev)
        event_free(a->tick_ev);
    for (int i = 0; i < 2; i++) {
        if (a->to_owner[i] >= 0)
            close(a->to_owner[i]);
        if (a->to_http[i] >= 0)
            close(a->to_http[i]);
    }
    if (a->base)
        event_base_free(a->base);
    for (size_t i = 0; a->cache && i < a->nroutes; i++)
        rt_buf_free(&a->cache[i].body);
    free(a->cache);
    pthread_mutex_destroy(&a->mu);
    free(a->token);
    free(a);
}
