/* admin.c - admin HTTP endpoint on the worker's loop (libevent evhttp). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "admin.h"
#include "log.h"

struct rt_admin {
    struct evhttp *http;
    rt_metrics_fn metrics;
    void *arg;
};

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *type, const char *body, size_t len)
{
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

static void on_request(struct evhttp_request *req, void *arg)
{
    rt_admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path || (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)) {
        reply(req, 405, "Method Not Allowed", "text/plain", "GET only\n", 9);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        reply(req, HTTP_OK, "OK", "text/plain", "ok\n", 3);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        rt_buf out = { 0 };
        if (a->metrics(a->arg, &out) < 0)
            reply(req, HTTP_INTERNAL, "Internal Server Error", "text/plain", "error\n", 6);
        else
            reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4", out.data, out.len);
        rt_buf_free(&out);
        return;
    }
    reply(req, HTTP_NOTFOUND, "Not Found", "text/plain", "not found\n", 10);
}

rt_admin *rt_admin_start(struct event_base *base, const char *listen, rt_metrics_fn metrics,
                         void *arg, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host || !colon[1] ||
        *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "admin.listen: '%s' is not host:port", listen);
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    rt_admin *a = calloc(1, sizeof *a);
    if (!a || !(a->http = evhttp_new(base))) {
        snprintf(err, errlen, "admin: out of memory");
        goto fail;
    }
    a->metrics = metrics;
    a->arg = arg;
    evhttp_set_gencb(a->http, on_request, a);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(a->http, host,
                                                                      (ev_uint16_t)port);
    if (!sock) {
        snprintf(err, errlen, "admin.listen: cannot listen on %s", listen);
        goto fail;
    }
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
    rt_info("admin endpoint listening on %s:%d (/metrics, /healthz)", addr, bound);
    return a;
fail:
    rt_admin_stop(a);
    return NULL;
}

void rt_admin_stop(rt_admin *a)
{
    if (!a)
        return;
    if (a->http)
        evhttp_free(a->http);
    free(a);
}
