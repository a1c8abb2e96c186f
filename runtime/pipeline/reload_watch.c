/* reload_watch.c - what starts a reload: SIGHUP, and a change under processors.dir or
 * rules.dir. inotify tells us through the event loop; where it is missing (some
 * container file systems) a stat poll every second does. A change waits reload.delay.ms
 * for more, as editors and `cp` write a file in several steps. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "reload_int.h"

#define POLL_EVERY_MS 1000

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    rt_reload_request(arg, "SIGHUP");
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    rt_reload_request(arg, "files changed");
}

static void changed_soon(rt_reload *r)
{
    long long ms = rt_config_int(r->w->cfg, "reload.delay.ms");
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (evtimer_add(r->delay_ev, &tv) < 0)
        rt_reload_request(r->w, "files changed");
}

/* *.lua and *.json; and ..data, which Kubernetes swaps when a mounted ConfigMap changes. */
static int watched_name(const char *name)
{
    size_t n = strlen(name);
    if (strcmp(name, "..data") == 0)
        return 1;
    return name[0] != '.' && ((n > 4 && strcmp(name + n - 4, ".lua") == 0) ||
                              (n > 5 && strcmp(name + n - 5, ".json") == 0));
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    rt_reload *r = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if (e->mask & IN_Q_OVERFLOW)
                hit = 1;
            else if (e->len && watched_name(e->name))
                hit = 1;
            p += sizeof *e + e->len;
        }
    }
    if (hit)
        changed_soon(r);
}

/* Names, sizes and mtimes of the watched files of `dir`, folded into h. */
static uint64_t dir_signature(const char *dir, uint64_t h)
{
    DIR *d = opendir(dir);
    if (!d)
        return h;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4096];
        struct stat st;
        if (!watched_name(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0)
            continue;
        /* Order-independent: readdir order may change without a change of content. */
        uint64_t one = rt_fnv1a(RT_FNV1A_INIT, e->d_name, strlen(e->d_name));
        one = rt_fnv1a(one, &st.st_size, sizeof st.st_size);
        one = rt_fnv1a(one, &st.st_mtim, sizeof st.st_mtim);
        h += one;
    }
    closedir(d);
    return h;
}

static uint64_t signature(rt_reload *r)
{
    return dir_signature(rt_config_get(r->w->cfg, "rules.dir"),
                         dir_signature(rt_config_get(r->w->cfg, "processors.dir"), 0));
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    rt_reload *r = arg;
    uint64_t sig = signature(r);
    if (sig != r->poll_sig) {
        r->poll_sig = sig;
        changed_soon(r);
    }
}

static int watch_dirs(rt_reload *r)
{
    const char *dirs[2] = { rt_config_get(r->w->cfg, "processors.dir"),
                            rt_config_get(r->w->cfg, "rules.dir") };
    r->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->inotify_fd >= 0) {
        int watched = 0;
        for (int i = 0; i < 2; i++)
            if (inotify_add_watch(r->inotify_fd, dirs[i], IN_CLOSE_WRITE | IN_MOVED_TO |
                                  IN_MOVED_FROM | IN_DELETE) >= 0)
                watched++;
            else if (errno != ENOENT)
                rt_warn("reload: cannot watch %s: %s", dirs[i], strerror(errno));
        r->inotify_ev = event_new(r->w->base, r->inotify_fd, EV_READ | EV_PERSIST, on_inotify, r);
        if (watched && r->inotify_ev && event_add(r->inotify_ev, NULL) == 0)
            return 0;
        if (r->inotify_ev)
            event_free(r->inotify_ev);
        r->inotify_ev = NULL;
        close(r->inotify_fd);
        r->inotify_fd = -1;
    }
    rt_info("reload: inotify unavailable here, polling %s and %s every %d ms", dirs[0],
            dirs[1], POLL_EVERY_MS);
    r->poll_sig = signature(r);
    struct timeval tv = { POLL_EVERY_MS / 1000, (POLL_EVERY_MS % 1000) * 1000 };
    r->poll_ev = event_new(r->w->base, -1, EV_PERSIST, on_poll, r);
    return r->poll_ev && event_add(r->poll_ev, &tv) == 0 ? 0 : -1;
}

int rt_reload_start(rt_worker *w, char *err, size_t errlen)
{
    rt_reload *r = calloc(1, sizeof *r);
    if (!r)
        goto fail;
    w->reload = r;
    r->w = w;
    r->inotify_fd = -1;
    r->keep = (size_t)rt_config_int(w->cfg, "reload.verify.events");
    r->sighup = evsignal_new(w->base, SIGHUP, on_sighup, w);
    r->delay_ev = evtimer_new(w->base, on_delay, w);
    if (!r->sighup || !r->delay_ev || evsignal_add(r->sighup, NULL) < 0)
        goto fail;
    if (rt_config_int(w->cfg, "reload.watch") && watch_dirs(r) < 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "reload: cannot set up SIGHUP and the file watch");
    return -1;
}

void rt_reload_free(rt_worker *w)
{
    rt_reload *r = w->reload;
    if (!r)
        return;
    if (r->sighup)
        event_free(r->sighup);
    if (r->delay_ev)
        event_free(r->delay_ev);
    if (r->inotify_ev)
        event_free(r->inotify_ev);
    if (r->poll_ev)
        event_free(r->poll_ev);
    if (r->inotify_fd >= 0)
        close(r->inotify_fd);
    for (size_t i = 0; i < r->nrefused; i++) {
        free(r->refused[i].path);
        free(r->refused[i].error);
    }
    free(r->refused);
    rt_reload_recent_free(r);
    free(r);
    w->reload = NULL;
}
