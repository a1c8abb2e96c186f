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
    const rt_admin_route *routes;
    void *arg;
    int port, fd;
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

static void on_request(struct evhttp_request *req, void *arg)
{
    rt_admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *method = cmd == EVHTTP_REQ_POST ? "POST"
                       : cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD ? "GET" : NULL;
    int known = 0;
    for (const rt_admin_route *r = a->routes; path && r->path; r++) {
        if (strcmp(r->path, path))
            continue;
        known = 1;
        if (!method || strcmp(r->method, method))
            continue;
        rt_buf out = { 0 };
        const char *type = "text/plain";
        int code = r->fn(a->arg, req, &out, &type);
        if (code < 0)
            rt_admin_reply(req, 500, "text/plain", "error\n", 6);
        else if (code > 0)
            rt_admin_reply(req, code, type, out.data ? out.data : "", out.len);
        rt_buf_free(&out);
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

rt_admin *rt_admin_start(struct event_base *base, const char *listen,
                         const rt_admin_route *routes, void *arg, int quiet, char *err,
                         size_t errlen)
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
    a->routes = routes;
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
    a->port = bound;
    a->fd = evhttp_bound_socket_get_fd(sock);
    if (!quiet)
        rt_info("admin endpoint listening on %s:%d (/metrics, /healthz, /-/processors, "
                "/-/config, POST /-/reload)", addr, bound);
    return a;
fail:
    rt_admin_stop(a);
    return NULL;
}

int rt_admin_port(const rt_admin *a)
{
    return a->port;
}

int rt_admin_fd(const rt_admin *a)
{
    return a->fd;
}

void rt_admin_stop(rt_admin *a)
{
    if (!a)
        return;
    if (a->http)
        evhttp_free(a->http);
    free(a);
}
