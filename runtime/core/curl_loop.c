/* curl_loop.c - curl's socket interface on libevent: curl says which sockets to watch
 * and when to wake it (socket and timer callbacks); the loop tells curl what happened
 * (curl_multi_socket_action). A finished transfer is reported through its handle's
 * CURLOPT_PRIVATE. */
#include <stdlib.h>

#include "curl_loop.h"
#include "log.h"

struct rt_curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct transfer *transfers;     /* added and not yet reported */
};

typedef struct transfer {
    rt_curl_done_fn done;
    void *arg;
    CURL *easy;
    struct transfer *next;
} transfer;

static void unlink_transfer(rt_curl_loop *l, transfer *t)
{
    for (transfer **p = &l->transfers; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

static void report_done(rt_curl_loop *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(l->multi, easy);
        if (t) {
            transfer done = *t;
            unlink_transfer(l, t);
            free(t);
            curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
            done.done(done.arg, easy, rc);
        }
    }
}

static void act(rt_curl_loop *l, curl_socket_t fd, int flags)
{
    int still;
    CURLMcode mc = curl_multi_socket_action(l->multi, fd, flags, &still);
    if (mc != CURLM_OK)
        rt_warn("curl: %s", curl_multi_strerror(mc));
    report_done(l);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    act(arg, fd, (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0));
}

static void on_timer_event(evutil_socket_t fd, short what, void *arg)
{
    act(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* curl: watch `s` for `what` (or stop). The socket's event is its `socketp`. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    rt_curl_loop *l = userp;
    struct event *ev = socketp;
    if (ev)
        event_free(ev);
    ev = NULL;
    if (what != CURL_POLL_REMOVE) {
        short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                     (what & CURL_POLL_OUT ? EV_WRITE : 0);
        ev = event_new(l->base, s, kind, on_socket_event, l);
        if (!ev || event_add(ev, NULL) < 0) {
            rt_error("curl: cannot watch a socket; the transfer will time out");
            if (ev)
                event_free(ev);
            ev = NULL;
        }
    }
    curl_multi_assign(l->multi, s, ev);
    return 0;
}

/* curl: wake me in timeout_ms (-1: never). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    rt_curl_loop *l = userp;
    if (timeout_ms < 0)
        return evtimer_del(l->timer) < 0 ? -1 : 0;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return evtimer_add(l->timer, &tv) < 0 ? -1 : 0;
}

rt_curl_loop *rt_curl_loop_new(struct event_base *base)
{
    rt_curl_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base = base;
    l->multi = curl_multi_init();
    l->timer = evtimer_new(base, on_timer_event, l);
    if (!l->multi || !l->timer ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l) != CURLM_OK) {
        rt_curl_loop_free(l);
        return NULL;
    }
    return l;
}

int rt_curl_loop_add(rt_curl_loop *l, CURL *easy, rt_curl_done_fn done, void *arg)
{
    transfer *t = malloc(sizeof *t);
    if (!t)
        return -1;
    *t = (transfer){ done, arg, easy, l->transfers };
    if (curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
        curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(t);
        return -1;
    }
    l->transfers = t;
    return 0;
}

void rt_curl_loop_wait(rt_curl_loop *l, int timeout_ms)
{
    /* Without the loop: curl's own poll over its sockets, then a timeout action,
     * which also checks every socket curl watches. */
    int n;
    if (curl_multi_poll(l->multi, NULL, 0, timeout_ms, &n) != CURLM_OK)
        return;
    int still;
    curl_multi_perform(l->multi, &still);
    report_done(l);
}

void rt_curl_loop_free(rt_curl_loop *l)
{
    if (!l)
        return;
    while (l->transfers) {
        transfer *t = l->transfers;
        l->transfers = t->next;
        curl_multi_remove_handle(l->multi, t->easy);
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, NULL);
        free(t);
    }
    if (l->multi)
        curl_multi_cleanup(l->multi);
    if (l->timer)
        event_free(l->timer);
    free(l);
}
