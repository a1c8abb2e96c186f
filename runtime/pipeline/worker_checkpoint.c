/* worker_checkpoint.c - checkpoints of keyed state, windows and timers, one file per
 * input partition number under state.dir, with the offsets they stand for.
 *
 * A checkpoint is taken at a quiet point: no event half-processed (none waiting for a
 * lookup) and, after a drain, every output of every event before it acknowledged. So
 * the file holds exactly the effect of the events before its offsets, and resuming from
 * those offsets neither loses nor double-counts an event in state or windows (outputs
 * after it are written again: at least once). The group's offsets are committed only
 * as far as a written checkpoint (take_marks, end_marks). State is kept per partition
 * number, as a Kafka Streams task: partition N of every input topic shares one file.
 *
 * The periodic checkpoint is encoded and written by a child process from a
 * copy-on-write snapshot of the worker's memory (fork, as Redis's BGSAVE), so the loop
 * stops for the fork only, not for encoding and writing every partition (600 ms and
 * more for 100,000 keys with windows). The child touches memory and files only and
 * reports on a pipe; the next one waits for it. Checkpoints on the way out and with
 * every transaction are written on the loop: what follows needs them done. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt_file.h"
#include "clock.h"
#include "log.h"
#include "worker_int.h"

/* 2 added the changelog position; files of version 1 are still read. */
#define CKPT_VERSION 2

static void patch_u64(rt_buf *b, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b->data[at + (size_t)i] = (char)(unsigned char)(v >> (8 * i));
}

/* ---- writing ---- */

static int put_offsets(rt_worker *w, rt_buf *b, int32_t partition)
{
    size_t at = b->len;
    uint64_t n = 0;
    if (rt_ckpt_put_u64(b, 0) < 0)
        return -1;
    for (rt_track_part *p = w->tracker.parts; p; p = p->link) {
        if (p->partition != partition || p->stored < 0)
            continue;
        int64_t max_ts = INT64_MIN;
        for (size_t i = 0; i < w->watermark.n; i++) {
            const rt_wm_part *wp = &w->watermark.v[i];
            if (wp->partition == partition && wp->seen && wp->topic &&
                strcmp(wp->topic, p->topic) == 0)
                max_ts = wp->max_ts;
        }
        if (rt_ckpt_put_bytes(b, p->topic, strlen(p->topic)) < 0 ||
            rt_ckpt_put_i64(b, p->stored) < 0 || rt_ckpt_put_i64(b, max_ts) < 0)
            return -1;
        n++;
    }
    patch_u64(b, at, n);
    return 0;
}

/* ---- the slots of each map, grouped by partition ----
 * A file holds one partition, but the maps hold every partition's keys. Walking each map
 * once per partition cost O(partitions x keys): 32 partitions of the geofence bench's
 * 233,000 entries made half of a checkpoint's time. So every map is walked once, its
 * live slots sorted by partition (a counting sort, keeping the map's order within a
 * partition, so that the files are what the per-partition walks wrote). */

typedef struct by_part {
    rt_keymap_slot **slot;  /* the slots of parts[k]: slot[start[k]] .. slot[start[k + 1] - 1] */
    size_t *start;          /* nparts + 1 */
} by_part;

typedef struct plan {
    int32_t *parts;         /* the partitions to write, ascending */
    size_t nparts;
    by_part *maps;          /* per keyed processor: state, each window definition, timers */
    size_t nmaps;
} plan;

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* parts[] position of a partition, or -1 when it is not written. */
static long part_pos(const plan *pl, int32_t partition)
{
    size_t lo = 0, hi = pl->nparts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pl->parts[mid] < partition)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pl->nparts && pl->parts[lo] == partition ? (long)lo : -1;
}

static int group(const plan *pl, const rt_keymap *m, by_part *g)
{
    size_t i = 0, *fill = NULL;
    rt_keymap_slot *s;
    int rc = -1;
    if (!(g->start = calloc(pl->nparts + 1, sizeof *g->start)))
        goto out;
    while ((s = rt_keymap_next(m, &i))) {
        long k = part_pos(pl, s->partition);
        if (k >= 0)
            g->start[k + 1]++;
    }
    for (size_t k = 0; k < pl->nparts; k++)
        g->start[k + 1] += g->start[k];
    if (!(g->slot = malloc((g->start[pl->nparts] + 1) * sizeof *g->slot)) ||
        !(fill = malloc((pl->nparts + 1) * sizeof *fill)))
        goto out;
    memcpy(fill, g->start, (pl->nparts + 1) * sizeof *fill);
    for (i = 0; (s = rt_keymap_next(m, &i));) {
        long k = part_pos(pl, s->partition);
        if (k >= 0)
            g->slot[fill[k]++] = s;
    }
    rc = 0;
out:
    free(fill);
    return rc;
}

static void plan_free(plan *pl)
{
    for (size_t i = 0; i < pl->nmaps; i++) {
        free(pl->maps[i].slot);
        free(pl->maps[i].start);
    }
    free(pl->maps);
    free(pl->parts);
    memset(pl, 0, sizeof *pl);
}

static int in_set(const int *v, size_t n, int32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Every partition that has done an event (of those, only the ones in `only` when it is
 * not NULL), and every map's slots grouped by them. */
static int plan_make(rt_worker *w, plan *pl, const int *only, size_t nonly)
{
    size_t n = 0, nmaps = 0, u = 0, m = 0;
    memset(pl, 0, sizeof *pl);
    for (rt_track_part *p = w->tracker.parts; p; p = p->link)
        n++;
    for (size_t i = 0; i < w->nkeyed; i++)
        nmaps += 2 + w->keyed[i]->windows.ndefs;
    if (!(pl->parts = malloc((n + 1) * sizeof *pl->parts)) ||
        !(pl->maps = calloc(nmaps + 1, sizeof *pl->maps)))
        goto fail;
    pl->nmaps = nmaps;      /* zeroed: plan_free may free them all from here on */
    for (rt_track_part *p = w->tracker.parts; p; p = p->link)
        if (p->stored >= 0 && (!only || in_set(only, nonly, p->partition)))
            pl->parts[pl->nparts++] = p->partition;
    qsort(pl->parts, pl->nparts, sizeof *pl->parts, cmp_i32);
    for (size_t i = 0; i < pl->nparts; i++)     /* topics share partition numbers */
        if (u == 0 || pl->parts[u - 1] != pl->parts[i])
            pl->parts[u++] = pl->parts[i];
    pl->nparts = u;
    for (size_t i = 0; i < w->nkeyed; i++) {
        rt_keyed *k = w->keyed[i];
        if (group(pl, &k->state.map, &pl->maps[m++]) < 0)
            goto fail;
        for (size_t d = 0; d < k->windows.ndefs; d++)
            if (group(pl, &k->windows.keys[d], &pl->maps[m++]) < 0)
                goto fail;
        if (group(pl, &k->timers.map, &pl->maps[m++]) < 0)
            goto fail;
    }
    return 0;
fail:
    plan_free(pl);
    return -1;
}

static int put_state(const by_part *g, size_t k, rt_buf *b)
{
    if (rt_ckpt_put_u64(b, g->start[k + 1] - g->start[k]) < 0)
        return -1;
    for (size_t j = g->start[k]; j < g->start[k + 1]; j++) {
        const rt_keymap_slot *s = g->slot[j];
        const rt_state_value *v = s->value;
        if (rt_ckpt_put_bytes(b, s->key, s->len) < 0 || rt_ckpt_put_i64(b, v->expires_ms) < 0 ||
            rt_ckpt_put_bytes(b, v->data, v->len) < 0)
            return -1;
    }
    return 0;
}

/* Per definition its name and shape (panes of a changed definition are not restored),
 * then its keys with their panes and slices. */
static int put_windows(rt_windows *ws, const by_part *g, size_t k, rt_buf *b)
{
    if (rt_ckpt_put_u64(b, ws->ndefs) < 0)
        return -1;
    for (size_t d = 0; d < ws->ndefs; d++) {
        const rt_window_def *def = &ws->defs[d];
        size_t at;
        uint64_t n = 0;
        if (rt_ckpt_put_bytes(b, def->name, strlen(def->name)) < 0 ||
            rt_ckpt_put_u64(b, def->kind) < 0 || rt_ckpt_put_i64(b, def->size) < 0 ||
            rt_ckpt_put_i64(b, def->slide) < 0 || rt_ckpt_put_i64(b, def->gap) < 0)
            return -1;
        at = b->len;
        if (rt_ckpt_put_u64(b, 0) < 0)
            return -1;
        for (size_t j = g[d].start[k]; j < g[d].start[k + 1]; j++) {
            const rt_keymap_slot *s = g[d].slot[j];
            const rt_wkey *wk = s->value;
            if (!wk->n && !wk->nslices)
                continue;
            if (rt_ckpt_put_bytes(b, wk->key, wk->klen) < 0 || rt_ckpt_put_panes(b, wk) < 0)
                return -1;
            n++;
        }
        patch_u64(b, at, n);
    }
    return 0;
}

static int put_timers(const by_part *g, size_t k, rt_buf *b)
{
    if (rt_ckpt_put_u64(b, g->start[k + 1] - g->start[k]) < 0)
        return -1;
    for (size_t j = g->start[k]; j < g->start[k + 1]; j++) {
        const rt_timer *t = g->slot[j]->value;
        if (rt_ckpt_put_bytes(b, t->id, t->idlen) < 0 || rt_ckpt_put_u64(b, t->klen) < 0 ||
            rt_ckpt_put_u64(b, t->domain) < 0 || rt_ckpt_put_i64(b, t->at) < 0)
            return -1;
    }
    return 0;
}

/* The file of pl->parts[k]. */
static int encode(rt_worker *w, const plan *pl, size_t k, rt_buf *b)
{
    int32_t partition = pl->parts[k];
    const by_part *g = pl->maps;
    if (rt_ckpt_put_u64(b, CKPT_VERSION) < 0 || rt_ckpt_put_i64(b, partition) < 0 ||
        rt_ckpt_put_i64(b, rt_epoch_ms()) < 0 ||
        rt_ckpt_put_i64(b, rt_worker_changelog_position(w, partition)) < 0 ||
        put_offsets(w, b, partition) < 0 ||
        rt_ckpt_put_u64(b, w->nkeyed) < 0)
        return -1;
    for (size_t i = 0; i < w->nkeyed; i++) {
        const char *name = w->procs[i]->name;
        rt_windows *ws = &w->keyed[i]->windows;
        if (rt_ckpt_put_bytes(b, name, strlen(name)) < 0 ||
            put_state(&g[0], k, b) < 0 ||
            put_windows(ws, &g[1], k, b) < 0 ||
            put_timers(&g[1 + ws->ndefs], k, b) < 0)
            return -1;
        g += 2 + ws->ndefs;
    }
    return 0;
}

/* Write every partition that has done an event; `keep` keeps each one's previous file
 * (exactly_once). -1 with the first failure in err when a file could not be written
 * (the others are still tried; the old file of a failed one stays). No logging: a
 * forked child runs this. */
static int write_partitions(rt_worker *w, int keep, const int *only, size_t nonly,
                            size_t *bytes, char *err, size_t errlen)
{
    rt_buf b = { 0 };
    plan pl;
    char why[512];
    int rc = 0;
    *bytes = 0;
    if (plan_make(w, &pl, only, nonly) < 0) {
        snprintf(err, errlen, "checkpoint: out of memory");
        return -1;
    }
    for (size_t k = 0; k < pl.nparts; k++) {
        b.len = 0;
        if (encode(w, &pl, k, &b) < 0)
            snprintf(why, sizeof why, "out of memory");
        else if ((keep ? rt_ckpt_write_keep : rt_ckpt_write)(w->state_dir, pl.parts[k], &b,
                                                              why, sizeof why) == 0) {
            *bytes += b.len;
            continue;
        }
        if (rc == 0)
            snprintf(err, errlen, "checkpoint of partition %d: %s", (int)pl.parts[k], why);
        rc = -1;
    }
    rt_buf_free(&b);
    plan_free(&pl);
    return rc;
}

static int write_all_partitions(rt_worker *w, int keep)
{
    char err[600];
    int rc = write_partitions(w, keep, NULL, 0, &w->ckpt_bytes, err, sizeof err);
    if (rc < 0)
        rt_error("%s", err);
    return rc;
}

/* Offsets are committed with the checkpoints (rt_track_hold_stores): a position is
 * stored once the files that stand for it are written. Noted when the snapshot is
 * taken (take_marks); stored, or dropped when the checkpoint failed (rc 0 / -1), when
 * it is done. */
static void end_marks(rt_worker *w, int rc)
{
    if (rc == 0)
        rt_track_store_marks(&w->tracker, w->ckpt_marks, w->ckpt_nmarks);
    else
        rt_track_marks_free(w->ckpt_marks, w->ckpt_nmarks);
    w->ckpt_marks = NULL;
    w->ckpt_nmarks = 0;
}

static void take_marks(rt_worker *w)
{
    end_marks(w, -1);   /* none are left over: a checkpoint ends before the next starts */
    if (w->tracker.hold_stores &&
        rt_track_marks(&w->tracker, &w->ckpt_marks, &w->ckpt_nmarks) < 0)
        rt_warn("checkpoint: out of memory noting its offsets; the next one commits them");
}

static void end_drain(rt_worker *w)
{
    if (!w->ckpt_draining)
        return;
    w->ckpt_draining = 0;
    evtimer_del(w->ckpt_drain_ev);
    rt_source_pause(&w->source, 0);
}

static void count(rt_worker *w, int rc, int64_t t0)
{
    w->ckpt_ms = rt_clock_ms() - t0;
    if (rc < 0)
        w->ckpt_failures++;
    else
        w->ckpts++;
}

#define DRAIN_CHECK_MS 10

/* ---- the periodic checkpoint, written by a child ---- */

typedef struct child_report {
    int rc;
    uint64_t bytes;
    char err[480];          /* the report is one write, under PIPE_BUF */
} child_report;

static void child_write(rt_worker *w, int fd)
{
    child_report r = { 0 };
    size_t bytes = 0;
    /* A child outliving a SIGKILLed worker would still write a consistent, older
     * checkpoint; dying with it is simpler to reason about. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The worker's signal handlers would tell its loop, through a pipe both share. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    r.rc = write_partitions(w, 0, NULL, 0, &bytes, r.err, sizeof r.err);
    r.bytes = bytes;
    ssize_t n;
    do
        n = write(fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    _exit(n == (ssize_t)sizeof r ? 0 : 1);
}

/* The child is done (its report read, or NULL when it died without one): reap it. */
static void reap_child(rt_worker *w, const child_report *r)
{
    int status = 0;
    while (waitpid(w->ckpt_child, &status, 0) < 0 && errno == EINTR)
        ;
    event_free(w->ckpt_child_ev);
    close(w->ckpt_report_fd);
    w->ckpt_child_ev = NULL;
    w->ckpt_report_fd = -1;
    w->ckpt_child = 0;
    if (!r)
        rt_error("checkpoint: the process writing it ended without a report (status %d)",
                 status);
    else if (r->rc < 0)
        rt_error("%s", r->err);
    else
        w->ckpt_bytes = (size_t)r->bytes;
    end_marks(w, r ? r->rc : -1);
    count(w, r ? r->rc : -1, w->ckpt_started);
}

static void read_report(rt_worker *w)
{
    child_report r;
    ssize_t n;
    do
        n = read(w->ckpt_report_fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof r)
        r.err[sizeof r.err - 1] = '\0';
    reap_child(w, n == (ssize_t)sizeof r ? &r : NULL);
}

static void on_child_report(evutil_socket_t fd, short what, void *arg)
{
    read_report(arg);
}

/* Wait for the child writing a checkpoint, if one is, up to shutdown.timeout.ms. A
 * child that never reports (stuck on a lock another thread of the worker held at the
 * fork) is killed and its checkpoint counted as failed: stopping stays bounded, and the
 * caller writes on the loop instead. */
static void wait_child(rt_worker *w)
{
    if (!w->ckpt_child)
        return;
    int timeout = (int)rt_config_int(w->cfg, "shutdown.timeout.ms"), n;
    struct pollfd p = { .fd = w->ckpt_report_fd, .events = POLLIN };
    do
        n = poll(&p, 1, timeout);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        rt_error("checkpoint: the process writing it (pid %d) gave no report in %d ms; "
                 "killed", (int)w->ckpt_child, timeout);
        if (kill(w->ckpt_child, SIGKILL) < 0)
            rt_error("checkpoint: cannot kill pid %d: %s", (int)w->ckpt_child,
                     strerror(errno));
    }
    read_report(w);     /* the report, or the end of the pipe when it died */
}

/* Fork the child that writes this checkpoint; -1 with errno set when it cannot be
 * (nothing started). */
static int fork_checkpoint(rt_worker *w)
{
    int fd[2];
    struct event *ev = NULL;
    pid_t pid = -1;
    if (pipe(fd) < 0)
        return -1;
    if (!(ev = event_new(w->base, fd[0], EV_READ, on_child_report, w)) ||
        event_add(ev, NULL) < 0 || (pid = fork()) < 0) {
        int e = errno;
        if (ev)
            event_free(ev);
        close(fd[0]);
        close(fd[1]);
        errno = e;
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        child_write(w, fd[1]);
    }
    close(fd[1]);
    w->ckpt_child = pid;
    w->ckpt_report_fd = fd[0];
    w->ckpt_child_ev = ev;
    return 0;
}

/* The periodic checkpoint waits for its outputs on the loop: the source holds still
 * (rt_source_pause), the sinks go on being acknowledged, timers and the admin endpoint
 * are served, and once nothing is in flight the child that writes the files is forked.
 * Only the fork stops the loop (the writing itself when it cannot fork). */
static void drain_check(rt_worker *w)
{
    if (w->tracker.inflight || w->head) {
        static const struct timeval again = { 0, DRAIN_CHECK_MS * 1000 };
        if (rt_clock_ms() < w->ckpt_until && evtimer_add(w->ckpt_drain_ev, &again) == 0)
            return;
        rt_warn("checkpoint skipped: outputs not acknowledged in time");
        w->ckpt_failures++;
        end_drain(w);
        return;
    }
    int64_t t0 = rt_clock_ms();
    take_marks(w);
    if (fork_checkpoint(w) < 0) {
        rt_warn("checkpoint: cannot fork a process to write it (%s); writing it on the loop",
                strerror(errno));
        int rc = write_all_partitions(w, 0);
        end_marks(w, rc);
        count(w, rc, w->ckpt_started);
    }
    w->ckpt_pause_ms = rt_clock_ms() - t0;
    end_drain(w);
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    drain_check(arg);
}

int rt_worker_checkpoint(rt_worker *w)
{
    wait_child(w);
    if (!w->state_dir || !rt_source_has(&w->source, RT_SOURCE_COMMITS) || w->head || w->failed)
        return -1;
    end_drain(w);
    int64_t t0 = rt_clock_ms();
    w->ckpt_due = 0;
    /* Outputs of the events before the checkpoint must be acknowledged, or a crash
     * after it would lose them: the restart resumes behind them. With a changelog, so
     * must every change the file holds (timers and expiries noted since the last
     * event): the file stands for the changelog up to its position. */
    if ((w->changelog && !w->txn_on && rt_worker_changelog_flush(w, NULL) < 0) ||
        rt_sinks_drain(&w->sinks, (int)rt_config_int(w->cfg, "shutdown.timeout.ms")) < 0 ||
        w->tracker.inflight) {
        rt_warn("checkpoint skipped: outputs not acknowledged in time");
        w->ckpt_failures++;
        return -1;
    }
    int64_t t1 = rt_clock_ms();
    take_marks(w);
    int rc = write_all_partitions(w, 0);
    end_marks(w, rc);
    w->ckpt_pause_ms = rt_clock_ms() - t1;
    count(w, rc, t0);
    return rc;
}

int rt_worker_txn_checkpoint(rt_worker *w)
{
    /* With a changelog the files are a cache, written once on the way out (after the
     * last commit): a crash restores from the changelog, as Kafka Streams' exactly-once
     * does. */
    if (!w->state_dir || w->changelog)
        return 0;
    int64_t t0 = rt_clock_ms();
    int rc = write_all_partitions(w, 1);
    w->ckpt_pause_ms = rt_clock_ms() - t0;
    count(w, rc, t0);
    return rc;
}

void rt_worker_checkpoint_revoked(void *arg, size_t n, const char *const *topics,
                                 const int *partitions)
{
    rt_worker *w = arg;
    int *quiet = NULL;
    size_t nquiet = 0;
    size_t bytes = 0;
    char err[600];
    /* Stopping: the checkpoint on the way out was just taken. An event waiting for a
     * lookup may be of these partition numbers (of another topic). */
    if (!w->state_dir || !w->tracker.hold_stores || w->signalled || w->failed || w->head ||
        !n)
        return;
    if (!(quiet = malloc(n * sizeof *quiet))) {
        rt_warn("checkpoint: out of memory checkpointing the revoked partitions");
        return;
    }
    /* A partition number's file holds all its topics: each must have nothing in flight. */
    for (size_t i = 0; i < n; i++) {
        int skip = in_set(quiet, nquiet, partitions[i]);    /* listed already */
        for (rt_track_part *p = w->tracker.parts; p && !skip; p = p->link)
            skip = p->partition == partitions[i] && p->inflight;
        if (!skip)
            quiet[nquiet++] = partitions[i];
    }
    wait_child(w);      /* its files must not land after these */
    int64_t t0 = rt_clock_ms();
    take_marks(w);
    int rc = -1;
    if (nquiet && (rc = write_partitions(w, 0, quiet, nquiet, &bytes, err, sizeof err)) < 0)
        rt_error("%s", err);
    size_t k = 0;       /* only the marks of the partitions written */
    for (size_t i = 0; i < w->ckpt_nmarks; i++) {
        if (in_set(quiet, nquiet, w->ckpt_marks[i].partition))
            w->ckpt_marks[k++] = w->ckpt_marks[i];
        else
            free(w->ckpt_marks[i].topic);
    }
    w->ckpt_nmarks = k;
    end_marks(w, rc);
    if (nquiet) {
        w->ckpt_pause_ms = rt_clock_ms() - t0;
        count(w, rc, t0);
    }
    if (rc == 0)
        rt_info("checkpoint of %zu revoked partitions written (%zu bytes); their offsets are "
                "committed", nquiet, bytes);
    free(quiet);
}

void rt_worker_checkpoint_stop(rt_worker *w)
{
    wait_child(w);
    end_marks(w, -1);
    if (w->ckpt_ev)
        event_free(w->ckpt_ev);
    if (w->ckpt_drain_ev)
        event_free(w->ckpt_drain_ev);
    w->ckpt_ev = w->ckpt_drain_ev = NULL;
}

void rt_worker_checkpoint_maybe(rt_worker *w)
{
    if (!w->ckpt_due || w->ckpt_draining || w->ckpt_child || w->head || w->signalled ||
        w->failed)
        return;
    w->ckpt_due = 0;
    w->ckpt_draining = 1;
    w->ckpt_started = rt_clock_ms();
    w->ckpt_until = w->ckpt_started + rt_config_int(w->cfg, "shutdown.timeout.ms");
    rt_source_pause(&w->source, 1);
    rt_worker_flush(w);
    if (w->changelog && !w->txn_on && rt_worker_changelog_flush(w, NULL) < 0)
        return;     /* the worker fails */
    drain_check(w);
}

static void on_checkpoint_timer(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    w->ckpt_due = 1;
    rt_worker_checkpoint_maybe(w);
}

int rt_worker_checkpoint_start(rt_worker *w, char *err, size_t errlen)
{
    const char *dir = rt_config_get(w->cfg, "state.dir");
    char where[300];
    if (!dir || !*dir)
        return 0;
    if (!rt_source_has(&w->source, RT_SOURCE_COMMITS)) {
        rt_info("state.dir: checkpoints are taken of Kafka sources only; a file is read "
                "again from its start");
        return 0;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: state.dir: cannot create %s: %s",
                 rt_config_where(w->cfg, "state.dir", where, sizeof where), dir,
                 strerror(errno));
        return -1;
    }
    w->state_dir = dir;
    if (w->txn_on)
        return 0;   /* written with every transaction (rt_worker_txn_checkpoint) */
    /* The group's offsets move with the checkpoints, as Flink commits them: a partition
     * committed past its last checkpoint (or one never checkpointed) would resume
     * there with the state of before. A changelog's writes hold their events' offsets
     * instead (worker_changelog.c). */
    if (!w->changelog)
        rt_track_hold_stores(&w->tracker);
    long long ms = rt_config_int(w->cfg, "checkpoint.interval.ms");
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    w->ckpt_ev = event_new(w->base, -1, EV_PERSIST, on_checkpoint_timer, w);
    w->ckpt_drain_ev = evtimer_new(w->base, on_drain_check, w);
    if (!w->ckpt_ev || !w->ckpt_drain_ev || evtimer_add(w->ckpt_ev, &tv) < 0) {
        snprintf(err, errlen, "cannot create the checkpoint timer");
        return -1;
    }
    return 0;
}

/* ---- restoring ---- */

/* The header: 0, or -1 (r->bad) when it is not partition `partition`'s checkpoint of
 * a version read here. *when and *position (-1: none) may be NULL. */
static int get_header(rt_ckpt_reader *r, int32_t partition, int64_t *when, int64_t *position)
{
    uint64_t version = rt_ckpt_get_u64(r);
    if ((version != 1 && version != CKPT_VERSION) || rt_ckpt_get_i64(r) != partition) {
        r->bad = 1;
        return -1;
    }
    int64_t t = rt_ckpt_get_i64(r), pos = version >= 2 ? rt_ckpt_get_i64(r) : -1;
    if (when)
        *when = t;
    if (position)
        *position = pos;
    return r->bad ? -1 : 0;
}

static int keyed_index(rt_worker *w, const char *name, size_t len)
{
    for (size_t i = 0; i < w->nkeyed; i++)
        if (strlen(w->procs[i]->name) == len && memcmp(w->procs[i]->name, name, len) == 0)
            return (int)i;
    return -1;
}

static int get_state(rt_ckpt_reader *r, rt_state *st, int32_t partition, int64_t now)
{
    uint64_t n = rt_ckpt_get_u64(r);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t klen, vlen;
        const char *key = rt_ckpt_get_bytes(r, &klen);
        int64_t expires = rt_ckpt_get_i64(r);
        const char *val = rt_ckpt_get_bytes(r, &vlen);
        if (st && !r->bad && (!expires || expires > now) &&
            rt_state_set(st, NULL, partition, key, klen, val, vlen, expires) < 0)
            return -1;
    }
    return 0;
}

/* The definition of `ws` with this name and shape, or -1. */
static int def_index(const rt_windows *ws, const char *name, size_t len, uint64_t kind,
                     int64_t size, int64_t slide, int64_t gap)
{
    for (size_t d = 0; ws && d < ws->ndefs; d++) {
        const rt_window_def *def = &ws->defs[d];
        if (strlen(def->name) != len || memcmp(def->name, name, len) != 0)
            continue;
        if (def->kind == kind && def->size == size && def->slide == slide && def->gap == gap)
            return (int)d;
        rt_warn("checkpoint: window %s changed its kind or size; its open windows start "
                "empty", def->name);
        return -1;
    }
    return -1;
}

static int get_windows(rt_ckpt_reader *r, rt_windows *ws, int32_t partition)
{
    uint64_t ndefs = rt_ckpt_get_u64(r);
    for (uint64_t d = 0; d < ndefs && !r->bad; d++) {
        size_t len;
        const char *name = rt_ckpt_get_bytes(r, &len);
        uint64_t kind = rt_ckpt_get_u64(r);
        int64_t size = rt_ckpt_get_i64(r), slide = rt_ckpt_get_i64(r), gap = rt_ckpt_get_i64(r);
        int di = r->bad ? -1 : def_index(ws, name, len, kind, size, slide, gap);
        uint64_t nkeys = rt_ckpt_get_u64(r);
        for (uint64_t k = 0; k < nkeys && !r->bad; k++) {
            size_t klen;
            const char *key = rt_ckpt_get_bytes(r, &klen);
            uint64_t npanes = rt_ckpt_get_u64(r);
            for (uint64_t j = 0; j < npanes && !r->bad; j++) {
                rt_pane p;
                if (rt_ckpt_get_pane(r, &p) < 0)
                    return -1;
                if (r->bad || di < 0)
                    free(p.acc);
                else if (rt_windows_restore(ws, (size_t)di, partition, key, klen, &p) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static int get_timers(rt_ckpt_reader *r, rt_timers *ts, int32_t partition)
{
    uint64_t n = rt_ckpt_get_u64(r);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t idlen;
        const char *id = rt_ckpt_get_bytes(r, &idlen);
        uint64_t klen = rt_ckpt_get_u64(r), domain = rt_ckpt_get_u64(r);
        int64_t at = rt_ckpt_get_i64(r);
        if (r->bad || klen >= idlen || domain > RT_PROCESSING_TIME) {
            r->bad = 1;
            break;
        }
        if (ts && rt_timers_set(ts, partition, id, (size_t)klen, id + klen + 1,
                                idlen - (size_t)klen - 1, at, (enum rt_time_domain)domain) < 0)
            return -1;
    }
    return 0;
}

/* Offsets go to from[] for the assigned (topic, partition) pairs; their event-time
 * progress back into the watermark, so late events stay late after a restart. */
static int get_offsets(rt_worker *w, rt_ckpt_reader *r, int32_t partition, size_t n,
                       const char *const *topics, const int *partitions, long long *from)
{
    uint64_t count = rt_ckpt_get_u64(r);
    for (uint64_t k = 0; k < count && !r->bad; k++) {
        size_t len;
        const char *topic = rt_ckpt_get_bytes(r, &len);
        int64_t next = rt_ckpt_get_i64(r), max_ts = rt_ckpt_get_i64(r);
        for (size_t i = 0; i < n && !r->bad; i++) {
            if (partitions[i] != partition || strlen(topics[i]) != len ||
                memcmp(topics[i], topic, len) != 0)
                continue;
            from[i] = next;
            if (w->windowed && max_ts != INT64_MIN &&
                rt_watermark_observe(&w->watermark, topics[i], partition, max_ts,
                                     rt_epoch_ms()) < 0)
                return -1;
        }
    }
    return 0;
}

void rt_worker_drop_partition(rt_worker *w, int32_t partition)
{
    for (size_t i = 0; i < w->nkeyed; i++) {
        rt_state_drop_partition(&w->keyed[i]->state, partition);
        rt_windows_drop_partition(&w->keyed[i]->windows, partition);
        rt_timers_drop_partition(&w->keyed[i]->timers, partition);
    }
}

/* After the offsets: every processor's state, windows and timers. */
static int restore_stores(rt_worker *w, rt_ckpt_reader *r, int32_t partition)
{
    int64_t now = rt_epoch_ms();
    rt_worker_drop_partition(w, partition);
    uint64_t nprocs = rt_ckpt_get_u64(r);
    for (uint64_t p = 0; p < nprocs && !r->bad; p++) {
        size_t len;
        const char *name = rt_ckpt_get_bytes(r, &len);
        int k = r->bad ? -1 : keyed_index(w, name, len);
        rt_keyed *kd = k >= 0 ? w->keyed[k] : NULL;
        if (!r->bad && !kd)
            rt_warn("checkpoint of partition %d: processor '%.*s' is gone; its state is "
                    "dropped", (int)partition, (int)len, name);
        if (get_state(r, kd ? &kd->state : NULL, partition, now) < 0 ||
            get_windows(r, kd ? &kd->windows : NULL, partition) < 0 ||
            get_timers(r, kd ? &kd->timers : NULL, partition) < 0)
            return -1;
    }
    return 0;
}

static int restore_body(rt_worker *w, rt_ckpt_reader *r, int32_t partition, size_t n,
                        const char *const *topics, const int *partitions, long long *from)
{
    if (get_header(r, partition, NULL, NULL) < 0)
        return 0;
    if (get_offsets(w, r, partition, n, topics, partitions, from) < 0)
        return -1;
    return restore_stores(w, r, partition);
}

int rt_worker_cache_position(const rt_buf *body, int32_t partition, int64_t *when,
                             int64_t *position)
{
    rt_ckpt_reader r = { (const unsigned char *)body->data, body->len, 0, 0 };
    return get_header(&r, partition, when, position) < 0 || *position < 0 ? -1 : 0;
}

int rt_worker_restore_cache(rt_worker *w, int32_t partition, const rt_buf *body)
{
    rt_ckpt_reader r = { (const unsigned char *)body->data, body->len, 0, 0 };
    /* The group's offsets, not the file's, say where the input resumes: the changelog
     * after the file brings the state to them. */
    if (get_header(&r, partition, NULL, NULL) < 0 ||
        get_offsets(w, &r, partition, 0, NULL, NULL, NULL) < 0)
        return r.bad ? 1 : -1;
    if (restore_stores(w, &r, partition) < 0)
        return -1;
    return r.bad || r.pos != r.n ? 1 : 0;
}

/* Exactly once: the checkpoint stands for the committed offsets when, for every
 * assigned topic of this partition number, its offset is the group's committed one
 * (both none counts). */
static int stands_for(const rt_buf *body, int32_t partition, size_t n,
                      const char *const *topics, const int *partitions,
                      const long long *committed)
{
    rt_ckpt_reader r = { (const unsigned char *)body->data, body->len, 0, 0 };
    if (get_header(&r, partition, NULL, NULL) < 0)
        return 0;
    uint64_t count = rt_ckpt_get_u64(&r);
    size_t start = r.pos;
    for (size_t i = 0; i < n; i++) {
        if (partitions[i] != partition)
            continue;
        long long want = committed[i] < 0 ? -1 : committed[i], have = -1;
        r.pos = start;
        for (uint64_t k = 0; k < count && !r.bad; k++) {
            size_t len;
            const char *topic = rt_ckpt_get_bytes(&r, &len);
            int64_t next = rt_ckpt_get_i64(&r);
            rt_ckpt_get_i64(&r);
            if (strlen(topics[i]) == len && memcmp(topics[i], topic, len) == 0)
                have = next;
        }
        if (r.bad || have != want)
            return 0;
    }
    return 1;
}

static int any_committed(int32_t partition, size_t n, const int *partitions,
                         const long long *committed)
{
    for (size_t i = 0; i < n; i++)
        if (partitions[i] == partition && committed[i] >= 0)
            return 1;
    return 0;
}

/* Exactly once: the body of the checkpoint (current, or the previous one kept while a
 * transaction was open) that the committed offsets stand for. 1 found, 0 none. */
static int read_committed_gen(rt_worker *w, int32_t part, size_t n, const char *const *topics,
                              const int *partitions, const long long *committed, rt_buf *body)
{
    char err[512];
    int got = rt_ckpt_read(w->state_dir, part, body, err, sizeof err);
    if (got < 0)
        rt_warn("checkpoint: %s; trying the previous one", err);
    if (got > 0 && stands_for(body, part, n, topics, partitions, committed))
        return 1;
    int prev = rt_ckpt_read_prev(w->state_dir, part, body, err, sizeof err);
    if (prev < 0)
        rt_warn("checkpoint: %s", err);
    if (prev > 0 && stands_for(body, part, n, topics, partitions, committed)) {
        rt_info("checkpoint of partition %d: the last one was written for a transaction "
                "that did not commit; the one before it is restored", (int)part);
        if (rt_ckpt_promote(w->state_dir, part, err, sizeof err) < 0)
            rt_warn("checkpoint: %s", err);
        return 1;
    }
    if (got != 0 || prev != 0 || any_committed(part, n, partitions, committed))
        rt_warn("checkpoint of partition %d: none in %s stands for the group's committed "
                "offsets (written by another instance, or lost); its state starts empty",
                (int)part, w->state_dir);
    return 0;
}

int rt_worker_restore(rt_worker *w, size_t n, const char *const *topics,
                      const int *partitions, const long long *committed, long long *from)
{
    rt_buf body = { 0 };
    char err[512];
    int rc = 0;
    if (w->changelog)
        return rt_worker_changelog_restore(w, n, partitions);
    if (w->state_dir && w->txn_on && n && !committed) {
        rt_error("checkpoint: the group's committed offsets are needed to restore state "
                 "under exactly_once; stopping");
        return -1;
    }
    for (size_t i = 0; i < n && !rc && w->state_dir; i++) {
        int32_t part = partitions[i];
        int done = 0, got;
        for (size_t j = 0; j < i; j++)
            done |= partitions[j] == part;
        if (done)
            continue;
        if (committed) {
            got = read_committed_gen(w, part, n, topics, partitions, committed, &body);
            if (!got)   /* whatever an earlier owner of it left here is stale */
                rt_worker_drop_partition(w, part);
        } else if ((got = rt_ckpt_read(w->state_dir, part, &body, err, sizeof err)) < 0) {
            rt_error("checkpoint: %s; stopping (move the file away to start partition %d "
                     "with empty state from the group's offsets)", err, (int)part);
            rc = -1;
            break;
        }
        if (!got)
            continue;
        rt_ckpt_reader r = { (const unsigned char *)body.data, body.len, 0, 0 };
        if (restore_body(w, &r, part, n, topics, partitions, from) < 0) {
            rt_error("checkpoint of partition %d: out of memory restoring it", (int)part);
            rc = -1;
        } else if (r.bad || r.pos != r.n) {
            rt_error("checkpoint of partition %d in %s: unreadable (another version of "
                     "eddy?); stopping", (int)part, w->state_dir);
            rc = -1;
        } else {
            w->ckpt_restored++;
            rt_info("checkpoint: partition %d restored (%zu bytes)", (int)part, body.len);
        }
    }
    rt_buf_free(&body);
    return rc;
}

int rt_worker_checkpoint_metrics(rt_worker *w, rt_buf *out)
{
    if (!w->state_dir)
        return 0;
    return rt_prom_header(out, "eddy_checkpoints_total", "counter",
                          "Checkpoints written (every partition of this worker).") ||
           rt_prom_sample(out, "eddy_checkpoints_total", NULL, (double)w->ckpts) ||
           rt_prom_header(out, "eddy_checkpoint_failures_total", "counter",
                          "Checkpoints skipped or not fully written.") ||
           rt_prom_sample(out, "eddy_checkpoint_failures_total", NULL,
                          (double)w->ckpt_failures) ||
           rt_prom_header(out, "eddy_checkpoint_duration_seconds", "gauge",
                          "Time the last checkpoint took, its drain of the sinks included.") ||
           rt_prom_sample(out, "eddy_checkpoint_duration_seconds", NULL,
                          (double)w->ckpt_ms / 1000) ||
           rt_prom_header(out, "eddy_checkpoint_pause_seconds", "gauge",
                          "Time the last checkpoint stopped the loop (the fork of the "
                          "process that writes it, or the writing itself).") ||
           rt_prom_sample(out, "eddy_checkpoint_pause_seconds", NULL,
                          (double)w->ckpt_pause_ms / 1000) ||
           rt_prom_header(out, "eddy_checkpoint_bytes", "gauge",
                          "Size of the last checkpoint, all partitions.") ||
           rt_prom_sample(out, "eddy_checkpoint_bytes", NULL, (double)w->ckpt_bytes) ||
           rt_prom_header(out, "eddy_checkpoint_restored_partitions_total", "counter",
                          "Partitions whose state was restored from a checkpoint.") ||
           rt_prom_sample(out, "eddy_checkpoint_restored_partitions_total", NULL,
                          (double)w->ckpt_restored)
               ? -1 : 0;
}

static int ckpt_file(const struct dirent *d)
{
    int part, end = 0;
    return sscanf(d->d_name, "partition-%d.ckpt%n", &part, &end) == 1 && end &&
           d->d_name[end] == '\0';
}

int rt_worker_restore_dir(rt_worker *w, const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, ckpt_file, alphasort), rc = -1;
    if (n < 0) {
        rt_error("%s: %s", dir, strerror(errno));
        return -1;
    }
    int *parts = calloc((size_t)n + 1, sizeof *parts);
    const char **topics = calloc((size_t)n + 1, sizeof *topics);
    long long *from = calloc((size_t)n + 1, sizeof *from);
    if (!parts || !topics || !from) {
        rt_error("out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        sscanf(names[i]->d_name, "partition-%d", &parts[i]);
        topics[i] = "";     /* offsets are not looked at here */
        from[i] = -1;
    }
    const char *was = w->state_dir;
    w->state_dir = dir;
    rc = rt_worker_restore(w, (size_t)n, topics, parts, NULL, from);
    w->state_dir = was;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(parts);
    free(topics);
    free(from);
    return rc;
}
