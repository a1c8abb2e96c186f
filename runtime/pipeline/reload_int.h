/* reload_int.h - what reload.c and reload_watch.c share: the trigger state, refused new
 * files, and the report of one reload. */
#ifndef RT_RELOAD_INT_H
#define RT_RELOAD_INT_H

#include <jansson.h>

#include "reload.h"

/* A processor file that never loaded. */
typedef struct rt_refused {
    char *path, *error;
    uint64_t hash, failures;
} rt_refused;

typedef struct rt_recent rt_recent;    /* reload_verify.c */

struct rt_reload {
    rt_worker *w;
    struct event *sighup;
    int inotify_fd;         /* -1: polling instead */
    struct event *inotify_ev, *poll_ev, *delay_ev;
    uint64_t poll_sig;      /* names, sizes and mtimes of both dirs at the last poll */
    int pending;            /* a reload waits for the jobs in flight */
    uint64_t runs;
    rt_refused *refused;
    size_t nrefused;
    rt_recent *recent;      /* per processor slot: its latest successful events */
    size_t nrecent;
    size_t keep;            /* reload.verify.events */
};

/* reload_verify.c: run `cand`, about to replace `old`, over old's recent successes.
 * -1 with err set when it fails on one: the reload is refused. */
int  rt_reload_verify(rt_worker *w, const rt_processor *old, rt_processor *cand, char *err,
                      size_t errlen);
void rt_reload_recent_free(rt_reload *r);

/* What one reload did, as JSON: reloaded, added, removed, refused, rules, unchanged. */
typedef struct rt_reload_report {
    json_t *doc;
    size_t unchanged;
} rt_reload_report;

int  rt_report_init(rt_reload_report *r);
void rt_report_name(rt_reload_report *r, const char *list, const char *name);
void rt_report_refused(rt_reload_report *r, const char *path, const char *error);
int  rt_report_dump(rt_reload_report *r, rt_buf *out);
void rt_report_free(rt_reload_report *r);

#endif
