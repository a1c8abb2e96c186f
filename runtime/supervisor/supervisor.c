/* supervisor.c - the master process: workers are forked children that share only one
 * anonymous shared mapping (beat.h) with it. A worker shows there which Lua call it is
 * in since when; the master looks every WATCH_EVERY_MS. LuaJIT runs no hook inside a
 * compiled trace, so a loop like `while true do end` can only be stopped from outside:
 * past twice processor.timeout.ms the master kills the worker (SIGKILL), writes the
 * record it was on to the poison list, and starts a new one, which dead-letters that
 * record as `timeout` when Kafka delivers it again instead of running it. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "admin.h"
#include "beat.h"
#include "clock.h"
#include "log.h"
#include "stopsig.h"
#include "supervisor_int.h"
#include "worker.h"

#define WATCH_EVERY_MS 50
#define RESTART_BACKOFF_MIN_MS 100
#define RESTART_BACKOFF_MAX_MS 10000
#define HEALTHY_AFTER_MS 10000      /* a worker up this long restarts fast again */


int rt_supervisor_wanted(const rt_config *cfg, char *err, size_t errlen)
{
    int workers = (int)rt_config_int(cfg, "runtime.workers");
    int want = rt_config_int(cfg, "runtime.supervisor") || workers > 1;
    char where[300];
    if (!want)
        return 0;
    /* A restarted worker must resume where its predecessor stopped: a Kafka group's
     * committed offsets, or the lines the supervisor relays and keeps (one worker: a
     * file is not split). The embedded cluster lives in a worker and dies with it. */
    if (rt_source_kind_has(cfg, RT_SOURCE_COMMITS) && rt_config_int(cfg, "kafka.embedded")) {
        snprintf(err, errlen, "%s: runtime.workers/runtime.supervisor: workers under a "
                 "supervisor need an external Kafka cluster (kafka.embedded lives and dies "
                 "in one worker)",
                 rt_config_where(cfg, workers > 1 ? "runtime.workers" : "runtime.supervisor",
                                 where, sizeof where));
        return -1;
    }
    if (strcmp(rt_config_get(cfg, "source.type"), "file") == 0 && workers > 1) {
        snprintf(err, errlen, "%s: runtime.workers: a file source has one worker "
                 "(set runtime.supervisor=true for one supervised worker)",
                 rt_config_where(cfg, "runtime.workers", where, sizeof where));
        return -1;
    }
    return 1;
}

/* The master's endpoint, events and loop. */
static void free_loop(rt_sup *s)
{
    rt_admin_stop(s->admin);
    s->admin = NULL;
    rt_relay_free(s->relay);
    s->relay = NULL;
    for (int k = 0; k < 4; k++)
        if (s->sig[k])
            event_free(s->sig[k]);
    if (s->watch_ev)
        event_free(s->watch_ev);
    for (int k = 0; k < s->n; k++) {
        if (s->kids[k].restart_ev)
            event_free(s->kids[k].restart_ev);
        rt_buf_free(&s->kids[k].last_metrics);
    }
    rt_buf_free(&s->retired);
    if (s->base)
        event_base_free(s->base);
}

/* The child: drop the master's loop and endpoint, run one worker, exit. */
static void run_child(rt_sup *s, int i, int input_fd, long long input_line)
    __attribute__((noreturn));
static void run_child(rt_sup *s, int i, int input_fd, long long input_line)
{
    char err[1024];
    rt_worker w;
    /* Die with the master, so that a SIGKILLed master leaves no orphans consuming. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
        _exit(1);
    /* A SIGTERM of the master while this worker loads waits for its loop (stopsig.h). */
    if (rt_stop_signals_hold() < 0)
        _exit(1);
    /* The epoll instance is shared with the master after fork: give the child its own
     * before freeing, or the frees would unregister the master's events. */
    if (event_reinit(s->base) < 0)
        _exit(1);
    free_loop(s);
    rt_log_set_prefix(i);
    int rc = 1;
    if (rt_worker_init(&w, s->cfg, RT_WORKER_OPEN, i, err, sizeof err) < 0) {
        rt_error("%s", err);
        rc = 2;
    } else {
        w.shared = s->shared;
        w.input_fd = input_fd;
        w.input_line = input_line;
        s->shared->beats[i].pid = getpid();
        rc = rt_worker_run(&w) < 0 ? 1 : 0;
    }
    rt_worker_free(&w);
    _exit(rc);
}

static void start_child(rt_sup *s, int i)
{
    rt_sup_child *c = &s->kids[i];
    int input_fd = -1;
    long long input_line = 0;
    memset(&s->shared->beats[i], 0, sizeof s->shared->beats[i]);
    pid_t pid = -1;
    if (!s->relay || rt_relay_attach(s->relay, &input_fd, &input_line) == 0)
        pid = fork();
    if (pid < 0) {
        rt_error("worker %d: cannot start it: %s; trying again", i, strerror(errno));
        if (input_fd >= 0) {
            close(input_fd);
            rt_relay_detach(s->relay);
        }
        c->pid = 0;
        struct timeval tv = { 1, 0 };
        evtimer_add(c->restart_ev, &tv);
        return;
    }
    if (pid == 0)
        run_child(s, i, input_fd, input_line);
    if (s->relay)
        rt_relay_started(s->relay, input_fd);
    c->pid = pid;
    c->started_ms = rt_clock_ms();
    rt_info("worker %d started (pid %d)", i, (int)pid);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    rt_sup_child *c = arg;
    if (!c->sup->stopping)
        start_child(c->sup, c->index);
}

static void reaped(rt_sup *s, int i, int status)
{
    rt_sup_child *c = &s->kids[i];
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    c->pid = 0;
    if (rt_metrics_retire(&s->retired, &c->last_metrics) < 0)
        rt_warn("supervisor: out of memory keeping worker %d's counters: the sums of "
                "/metrics drop by them", i);
    rt_buf_free(&c->last_metrics);
    s->shared->beats[i].admin_port = 0;
    __atomic_store_n(&s->shared->beats[i].since_ms, 0, __ATOMIC_RELEASE);
    if (s->relay) {
        /* A relayed input that went whole to a worker which then exited 0 is done. */
        int whole = rt_relay_finished(s->relay) && WIFEXITED(status) && code == 0;
        rt_relay_done(s->relay, s->shared->beats[i].input_next);
        rt_relay_detach(s->relay);
        if (whole && !s->stopping) {
            rt_info("worker %d finished the input", i);
            s->stopping = 1;
        }
    }
    if (s->stopping) {
        if (code > s->worst)
            s->worst = code;
        rt_info("worker %d exited (%d)", i, code);
        return;
    }
    int64_t up = rt_clock_ms() - c->started_ms;
    c->backoff_ms = up >= HEALTHY_AFTER_MS || !c->backoff_ms ? RESTART_BACKOFF_MIN_MS
                  : c->backoff_ms * 2 > RESTART_BACKOFF_MAX_MS ? RESTART_BACKOFF_MAX_MS
                  : c->backoff_ms * 2;
    c->restarts++;
    if (WIFSIGNALED(status))
        rt_error("worker %d died (signal %d) after %lld ms; restarting in %lld ms", i,
                 WTERMSIG(status), (long long)up, (long long)c->backoff_ms);
    else
        rt_error("worker %d exited (%d) after %lld ms; restarting in %lld ms", i, code,
                 (long long)up, (long long)c->backoff_ms);
    struct timeval tv = { c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000 };
    if (evtimer_add(c->restart_ev, &tv) < 0)
        start_child(s, i);
}

static int running(const rt_sup *s)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->kids[i].pid != 0;
    return n;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    rt_sup *s = arg;
    if (sig == SIGCHLD) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < s->n; i++)
                if (s->kids[i].pid == pid)
                    reaped(s, i, status);
        if (s->stopping && !running(s))
            event_base_loopbreak(s->base);
        return;
    }
    if (sig == SIGHUP) {
        rt_info("SIGHUP: reloading every worker");
    } else {
        rt_info("%s: stopping the workers", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        s->stopping = 1;
        for (int i = 0; i < s->n; i++)
            event_del(s->kids[i].restart_ev);
        if (!running(s))
            event_base_loopbreak(s->base);
    }
    for (int i = 0; i < s->n; i++)
        if (s->kids[i].pid)
            kill(s->kids[i].pid, sig == SIGHUP ? SIGHUP : SIGTERM);
}

/* Kill a worker stuck in one Lua call; mark its record so it is not run again. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    rt_sup *s = arg;
    int64_t now = rt_clock_ms();
    if (s->relay && s->kids[0].pid)
        rt_relay_done(s->relay, __atomic_load_n(&s->shared->beats[0].input_next,
                                                __ATOMIC_ACQUIRE));
    for (int i = 0; i < s->n && s->kill_after_ms; i++) {
        rt_beat *b = &s->shared->beats[i];
        int64_t since = __atomic_load_n(&b->since_ms, __ATOMIC_ACQUIRE);
        if (!s->kids[i].pid || !since || now - since < s->kill_after_ms)
            continue;
        /* Read the record, then make sure the same call is still running. */
        rt_poison p = { .partition = b->partition, .offset = b->offset,
                        .timeout_ms = rt_config_int(s->cfg, "processor.timeout.ms") };
        memcpy(p.topic, b->topic, sizeof p.topic - 1);
        memcpy(p.processor, b->processor, sizeof p.processor - 1);
        if (__atomic_load_n(&b->since_ms, __ATOMIC_ACQUIRE) != since)
            continue;
        kill(s->kids[i].pid, SIGKILL);
        s->kids[i].kills++;
        __atomic_store_n(&b->since_ms, 0, __ATOMIC_RELEASE);
        if (p.partition == -1) {     /* not a record nor a firing: nothing to mark */
            rt_error("worker %d stuck for %lld ms in processor %s: killed", i,
                     (long long)(now - since), p.processor);
            continue;
        }
        uint32_t k = s->shared->npoison;
        s->shared->poison[k % RT_POISON_SLOTS] = p;
        __atomic_store_n(&s->shared->npoison, k + 1, __ATOMIC_RELEASE);
        char rec[200];
        rt_error("worker %d stuck for %lld ms in processor %s on %s: killed; that "
                 "record or firing will be dead-lettered as timeout, not run again", i,
                 (long long)(now - since), p.processor,
                 rt_beat_record(p.topic, p.partition, p.offset, rec, sizeof rec));
    }
}

int rt_supervisor_run(const rt_config *cfg)
{
    char err[512];
    rt_sup *s = calloc(1, sizeof *s);
    int rc = 1;
    if (!s)
        return 1;
    s->cfg = cfg;
    s->n = (int)rt_config_int(cfg, "runtime.workers");
    s->kill_after_ms = 2 * rt_config_int(cfg, "processor.timeout.ms");
    s->shared = mmap(NULL, sizeof *s->shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (s->shared == MAP_FAILED) {
        rt_error("supervisor: cannot map shared memory: %s", strerror(errno));
        s->shared = NULL;
        goto out;
    }
    if (!(s->base = event_base_new())) {
        rt_error("supervisor: cannot create the event loop");
        goto out;
    }
    static const int sigs[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
    for (int k = 0; k < 4; k++)
        if (!(s->sig[k] = evsignal_new(s->base, sigs[k], on_signal, s)) ||
            evsignal_add(s->sig[k], NULL) < 0) {
            rt_error("supervisor: cannot install signal handlers");
            goto out;
        }
    if (rt_stop_signals_release() < 0) {
        rt_error("supervisor: cannot install signal handlers");
        goto out;
    }
    struct timeval every = { 0, WATCH_EVERY_MS * 1000 };
    if (!(s->watch_ev = event_new(s->base, -1, EV_PERSIST, on_watch, s)) ||
        event_add(s->watch_ev, &every) < 0) {
        rt_error("supervisor: cannot start the watchdog");
        goto out;
    }
    /* SIGPIPE is ignored (main.c): a worker gone with its input pipe is an EPIPE. */
    if (strcmp(rt_config_get(cfg, "source.type"), "file") == 0 &&
        !(s->relay = rt_relay_open(s->base, rt_config_get(cfg, "source.file.path"), err,
                                   sizeof err))) {
        rt_error("%s", err);
        goto out;
    }
    const char *listen = rt_config_get(cfg, "admin.listen");
    rt_admin_opts ao = { listen, rt_config_get(cfg, "admin.token"), 0, NULL, 0 };
    if (*listen && !(s->admin = rt_admin_start(s->base, &ao, rt_supervisor_routes, s, err,
                                               sizeof err))) {
        rt_error("%s", err);
        goto out;
    }
    rt_info("supervisor (pid %d): %d workers; a Lua call running past %lld ms is killed",
            (int)getpid(), s->n, (long long)s->kill_after_ms);
    for (int i = 0; i < s->n; i++) {
        s->kids[i].sup = s;
        s->kids[i].index = i;
        if (!(s->kids[i].restart_ev = evtimer_new(s->base, on_restart, &s->kids[i]))) {
            rt_error("supervisor: out of memory");
            goto out;
        }
    }
    for (int i = 0; i < s->n; i++)
        start_child(s, i);
    if (event_base_dispatch(s->base) < 0)
        rt_error("supervisor: event loop failed");
    rc = s->worst;
    rt_info("supervisor done (%d)", rc);
out:
    for (int i = 0; i < s->n; i++)
        if (s->kids[i].pid) {
            kill(s->kids[i].pid, SIGKILL);
            waitpid(s->kids[i].pid, NULL, 0);
        }
    free_loop(s);
    if (s->shared)
        munmap(s->shared, sizeof *s->shared);
    free(s);
    return rc;
}
