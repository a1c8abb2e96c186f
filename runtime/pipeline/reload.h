/* reload.h - hot reload of processors and rules files while the worker runs.
 *
 * Triggers: SIGHUP, POST /-/reload, and a change under processors.dir or rules.dir
 * (inotify, or a stat poll where inotify is missing). Each changed file is compiled in
 * a fresh Lua state and its init run; only then does it replace the running version,
 * between two events, when no event waits for a lookup. */
#ifndef RT_RELOAD_H
#define RT_RELOAD_H

#include "buf.h"
#include "worker_int.h"

/* SIGHUP and, with reload.watch, the file watch. -1 with err set. */
int  rt_reload_start(rt_worker *w, char *err, size_t errlen);
/* Ask for a reload: done now if no event is in flight, else once the queue drains. */
void rt_reload_request(rt_worker *w, const char *trigger);
/* The queue drained: run a reload that waits for it. */
void rt_reload_maybe(rt_worker *w);
/* Reload now; `report` (may be NULL) gets a JSON object of what changed. 0, or -1 when
 * out of memory. */
int  rt_reload_now(rt_worker *w, rt_buf *report);
/* GET /-/processors: every processor with its file hash, load time, routes, counters,
 * quarantine and last reload error; refused new files; rules files. */
int  rt_reload_describe(rt_worker *w, rt_buf *out);
/* An event `p` processed without error: kept among its recent ones, which a new version
 * must run without error before it replaces `p` (reload.verify.events). */
void rt_reload_note(rt_worker *w, const rt_processor *p, const rt_event *ev);
void rt_reload_free(rt_worker *w);

#endif
