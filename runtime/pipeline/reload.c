/* reload.c - the reload itself: which files changed, compile them, check identity,
 * windows and routes, then swap. The triggers are in reload_watch.c.
 *
 * A processor keeps its slot (index in w->procs and w->keyed) for the life of the
 * worker, so its keyed state, windows and timers, which the host holds by slot, survive
 * every version. The swap happens only at a quiet point (no job in flight), so no
 * coroutine of the old version is alive and no event is run twice or skipped. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "hash.h"
#include "log.h"
#include "readfile.h"
#include "reload_int.h"

/* A file that never loaded keeps its error here (an existing processor keeps it in
 * p->last_error). */
static rt_refused *refused_find(rt_reload *r, const char *path)
{
    for (size_t i = 0; i < r->nrefused; i++)
        if (strcmp(r->refused[i].path, path) == 0)
            return &r->refused[i];
    return NULL;
}

static void refused_drop(rt_reload *r, const char *path)
{
    rt_refused *f = refused_find(r, path);
    if (!f)
        return;
    free(f->path);
    free(f->error);
    *f = r->refused[--r->nrefused];
}

static int windows_match(const rt_processor *a, const rt_processor *b)
{
    if (a->nwindows != b->nwindows)
        return 0;
    for (size_t i = 0; i < a->nwindows; i++) {
        const rt_window_def *x = &a->window_defs[i], *y = &b->window_defs[i];
        if (strcmp(x->name, y->name) || x->kind != y->kind || x->size != y->size ||
            x->slide != y->slide || x->gap != y->gap || x->agg != y->agg ||
            x->sliced != y->sliced ||
            (!x->key != !y->key) || (x->key && strcmp(x->key, y->key)) ||
            (!x->field != !y->field) || (x->field && strcmp(x->field, y->field)))
            return 0;
    }
    return 1;
}

/* A metric both versions declare keeps its type and labels (its series carry over);
 * the name of the first that does not, or NULL. */
static const char *metric_changed(const rt_processor *a, const rt_processor *b)
{
    for (size_t i = 0; i < b->nmetric_defs; i++) {
        const rt_metric_def *n = &b->metric_defs[i];
        for (size_t j = 0; j < a->nmetric_defs; j++) {
            const rt_metric_def *o = &a->metric_defs[j];
            if (strcmp(o->name, n->name))
                continue;
            int same = o->gauge == n->gauge && o->nlabels == n->nlabels;
            for (size_t k = 0; same && k < n->nlabels; k++)
                same = !strcmp(o->labels[k], n->labels[k]);
            if (!same)
                return n->name;
        }
    }
    return NULL;
}

static int reads_changed(const rt_processor *p, const char *changed)
{
    for (const char *c = changed; c && *c; c += strlen(c) + 1)
        for (size_t i = 0; i < p->nrules_read; i++)
            if (strcmp(p->rules_read[i], c) == 0)
                return 1;
    return 0;
}

static int find_slot(const rt_worker *w, const char *path, const char *name)
{
    for (size_t i = 0; i < w->nprocs; i++)
        if ((path && strcmp(w->procs[i]->path, path) == 0) ||
            (name && strcmp(w->procs[i]->name, name) == 0))
            return (int)i;
    return -1;
}

/* Install the route table built with the processors as they now stand; -1 (the old
 * table stays) with err set on a conflict. */
static int reroute(rt_worker *w, char *err, size_t errlen)
{
    rt_router router;
    rt_route_owner *owners;
    if (rt_worker_build_routes(w, &router, &owners, err, errlen) < 0)
        return -1;
    rt_router_free(&w->router);
    free(w->owners);
    w->router = router;
    w->owners = owners;
    return 0;
}

static void refuse(rt_worker *w, int slot, const char *path, uint64_t hash, const char *error,
                   rt_reload_report *rep)
{
    rt_reload *r = w->reload;
    rt_error("reload of %s refused: %s; %s", path, error,
             slot >= 0 && !w->procs[slot]->removed ? "the running version stays"
                                                   : "it is not loaded");
    if (slot >= 0) {
        rt_processor *p = w->procs[slot];
        p->reload_failures++;
        p->refused_hash = hash;
        free(p->last_error);
        p->last_error = strdup(error);
    } else {
        rt_refused *f = refused_find(r, path);
        if (!f) {
            rt_refused *v = realloc(r->refused, (r->nrefused + 1) * sizeof *v);
            if (!v)
                return;
            r->refused = v;
            f = &v[r->nrefused];
            memset(f, 0, sizeof *f);
            if (!(f->path = strdup(path)))
                return;
            r->nrefused++;
        }
        f->failures++;
        f->hash = hash;
        free(f->error);
        f->error = strdup(error);
    }
    rt_report_refused(rep, path, error);
}

/* A new version for `slot` (or a new processor when slot < 0): checks, then the swap.
 * `cand` is consumed. */
static void install(rt_worker *w, int slot, rt_processor *cand, rt_reload_report *rep)
{
    char err[1024];
    rt_processor *old = slot >= 0 ? w->procs[slot] : NULL;
    if (old && strcmp(old->name, cand->name)) {
        snprintf(err, sizeof err, "the processor's name changed from '%s' to '%s'; state is "
                 "kept by name: rename the file instead", old->name, cand->name);
        goto refused;
    }
    if (old && !windows_match(old, cand)) {
        snprintf(err, sizeof err, "its windows changed (name, kind, size, slide, gap, key, "
                 "aggregate, field, or merge of a sliding one): open windows of the old "
                 "shape would be mixed into the new; restart eddy to change them");
        goto refused;
    }
    if (rt_worker_repartition_check(w, old, cand, err, sizeof err) < 0)
        goto refused;
    const char *metric = old ? metric_changed(old, cand) : NULL;
    if (metric) {
        snprintf(err, sizeof err, "metric %s changed its type or labels: its series would "
                 "mix; give it a new name", metric);
        goto refused;
    }
    if (!old && !w->windowed && (cand->nwindows || cand->on_timer_ref != LUA_NOREF)) {
        snprintf(err, sizeof err, "it uses windows or timers and no processor did at start; "
                 "event time is tracked only from start: restart eddy to add it");
        goto refused;
    }
    if (old && !old->removed && rt_reload_verify(w, old, cand, err, sizeof err) < 0)
        goto refused;
    if (!old) {
        rt_processor **v = realloc(w->procs, (w->nprocs + 1) * sizeof *v);
        if (!v) {
            snprintf(err, sizeof err, "out of memory");
            goto refused;
        }
        w->procs = v;
        cand->slot = w->nprocs;
        w->procs[w->nprocs++] = cand;
    } else {
        w->procs[slot] = cand;
    }
    err[0] = '\0';
    if (reroute(w, err, sizeof err) < 0 || (!old && rt_worker_keyed_add(w, cand) < 0)) {
        int routed = !err[0];   /* the new table is in: put the old one back */
        if (routed)
            snprintf(err, sizeof err, "out of memory");
        if (old)
            w->procs[slot] = old;
        else
            w->nprocs--;
        char again[256];
        if (routed && reroute(w, again, sizeof again) < 0)
            rt_error("reload: cannot restore the route table: %s", again);
        goto refused;
    }
    if (old) {
        rt_processor_carry_over(cand, old);
        cand->reloads = old->reloads + 1;
        w->keyed[slot]->windows.defs = cand->window_defs;
        rt_info("processor %s reloaded from %s (hash %016llx, was %016llx)%s", cand->name,
                cand->path, (unsigned long long)cand->hash, (unsigned long long)old->hash,
                old->removed ? ": its file came back, its routes are active again"
                             : old->quarantined ? "; quarantine lifted" : "");
        rt_processor_free(old);
        free(old);
        rt_report_name(rep, "reloaded", cand->name);
    } else {
        cand->beat = w->beat;
        rt_info("processor %s added from %s (hash %016llx) with %zu routes", cand->name,
                cand->path, (unsigned long long)cand->hash, cand->nroutes);
        refused_drop(w->reload, cand->path);
        rt_report_name(rep, "added", cand->name);
    }
    return;
refused:
    refuse(w, old ? slot : -1, cand->path, cand->hash, err, rep);
    rt_processor_free(cand);
    free(cand);
}

/* One file of processors.dir: reload it if it changed, its rules changed, or it is
 * quarantined. */
static void reload_file(rt_worker *w, const char *path, const char *changed, char *seen,
                        rt_reload_report *rep)
{
    char err[1024];
    size_t len;
    char *src = rt_read_file(path, &len, err, sizeof err);
    int slot = find_slot(w, path, NULL);
    if (slot >= 0)
        seen[slot] = 1;
    if (!src) {
        refuse(w, slot, path, 0, err, rep);
        return;
    }
    uint64_t h = rt_fnv1a(RT_FNV1A_INIT, src, len);
    rt_processor *p = slot >= 0 ? w->procs[slot] : NULL;
    rt_refused *f = p ? NULL : refused_find(w->reload, path);
    int same = p ? h == p->hash && !p->removed : 0;
    int refused_before = p ? (h == p->refused_hash && p->last_error) : (f && f->hash == h);
    if ((same && !p->quarantined && !reads_changed(p, changed)) ||
        (refused_before && !(p && p->quarantined))) {
        free(src);
        if (same)
            rep->unchanged++;
        return;
    }
    rt_processor *cand = calloc(1, sizeof *cand);
    rt_processor_env env = rt_worker_processor_env(w);
    int loaded = cand ? rt_processor_load_source(cand, path, src, len, &env, err, sizeof err)
                      : (snprintf(err, sizeof err, "out of memory"), -1);
    free(src);
    if (loaded < 0) {
        refuse(w, slot, path, h, err, rep);
        if (cand)
            rt_processor_free(cand);
        free(cand);
        return;
    }
    if (slot < 0) {
        /* A known name from another file: a renamed file takes the name's state over if
         * the old file is gone; otherwise two files claim one name. */
        int other = find_slot(w, NULL, cand->name);
        if (other >= 0 && !w->procs[other]->removed && access(w->procs[other]->path, F_OK) == 0) {
            snprintf(err, sizeof err, "%s already names its processor '%s'",
                     w->procs[other]->path, cand->name);
            refuse(w, -1, path, h, err, rep);
            rt_processor_free(cand);
            free(cand);
            return;
        }
        if (other >= 0) {
            slot = other;
            seen[slot] = 1;
            refused_drop(w->reload, path);
        }
    }
    install(w, slot, cand, rep);
    if ((slot = find_slot(w, path, NULL)) >= 0)
        seen[slot] = 1;     /* a processor added just now */
}

/* Slots whose file is gone: their routes are handed back. */
static void drop_removed(rt_worker *w, const char *seen, rt_reload_report *rep)
{
    char err[512];
    for (size_t i = 0; i < w->nprocs; i++) {
        rt_processor *p = w->procs[i];
        if (seen[i] || p->removed)
            continue;
        p->removed = 1;
        if (reroute(w, err, sizeof err) < 0) {
            p->removed = 0;
            rt_error("processor %s: its file %s is gone but the route table cannot be "
                     "rebuilt (%s); it keeps serving", p->name, p->path, err);
            continue;
        }
        rt_info("processor %s removed (%s is gone): its %zu routes are handed back, their "
                "events are dead-lettered no_route; its state is kept should it come back",
                p->name, p->path, p->nroutes);
        rt_report_name(rep, "removed", p->name);
    }
}

int rt_reload_now(rt_worker *w, rt_buf *report)
{
    rt_reload_report rep;
    char *changed = NULL;
    int rc = -1;
    if (rt_report_init(&rep) < 0)
        return -1;
    w->reload->pending = 0;
    w->reload->runs++;
    if (rt_rules_rescan(&w->rules, &changed) > 0)
        for (const char *c = changed; *c; c += strlen(c) + 1)
            rt_report_name(&rep, "rules", c);
    const char *dir = rt_config_get(w->cfg, "processors.dir");
    struct dirent **names = NULL;
    int n = scandir(dir, &names, rt_lua_file, alphasort);
    char *seen = calloc(w->nprocs + (n > 0 ? (size_t)n : 0) + 1, 1);
    if (n < 0 || !seen) {
        rt_error("reload: cannot read processors.dir %s; nothing reloaded", dir);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        reload_file(w, path, changed, seen, &rep);
    }
    drop_removed(w, seen, &rep);
    /* Refused new files that are gone are forgotten. */
    for (size_t i = 0; i < w->reload->nrefused;)
        if (access(w->reload->refused[i].path, F_OK) < 0)
            refused_drop(w->reload, w->reload->refused[i].path);
        else
            i++;
    rc = report ? rt_report_dump(&rep, report) : 0;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(seen);
    free(changed);
    rt_report_free(&rep);
    return rc;
}

void rt_reload_request(rt_worker *w, const char *trigger)
{
    rt_info("reload requested (%s)", trigger);
    w->reload->pending = 1;
    rt_reload_maybe(w);
}

void rt_reload_maybe(rt_worker *w)
{
    if (w->reload && w->reload->pending && !w->head && !w->failed)
        rt_reload_now(w, NULL);
}
