/* worker_int.h - what the worker's own files (worker*.c, reload*.c) call on each
 * other; the rest of eddy sees only worker.h. */
#ifndef RT_WORKER_INT_H
#define RT_WORKER_INT_H

#include <dirent.h>

#include <jansson.h>

#include "worker.h"

/* Put one raw record through decode, route, processor and sinks. `ticket` (NULL for
 * sources without offsets) comes held once and is released when the record is done,
 * which may be later, after a lookup answered. */
void rt_worker_handle(rt_worker *w, const char *raw, size_t len, const rt_origin *origin,
                      rt_ticket *ticket);
/* worker_jobs.c: the wake_ev callback (a lookup answered): resume and finish jobs. */
void rt_worker_on_wake(evutil_socket_t fd, short what, void *arg);
/* Free every job, finished or not. */
void rt_worker_jobs_free(rt_worker *w);
/* Flush and leave the loop; dead-letter one event;
 * stop on a failed output, naming where. */
void rt_worker_finish_run(rt_worker *w);
void rt_worker_dead_letter(rt_worker *w, const rt_event *ev, const rt_reject *why,
                           const char *processor, rt_ticket *ticket);
void rt_worker_fail(rt_worker *w, const rt_origin *origin);
/* Pause or resume a file source by the unfinished jobs and unacknowledged outputs. */
void rt_worker_backpressure(rt_worker *w);
/* Flush every sink; -1 (and w->failed) when one failed. */
int  rt_worker_flush(rt_worker *w);
/* Append the worker's metrics in the Prometheus text format. */
int  rt_worker_metrics(rt_worker *w, rt_buf *out);
/* The env a processor of this worker is loaded with. */
rt_processor_env rt_worker_processor_env(rt_worker *w);
/* Build the route table from the processors' routes, the forwards and route.* keys
 * into `r`. -1 with err set (a conflict). */
int  rt_worker_build_routes(rt_worker *w, rt_router *r, rt_route_owner **owners, char *err,
                            size_t errlen);
/* scandir filter: *.lua, not hidden, not a test file (*_test.lua). */
int  rt_lua_file(const struct dirent *d);
/* worker_keyed.c: state and windows for every processor; -1 with err when out of memory. */
int  rt_worker_keyed_init(rt_worker *w, char *err, size_t errlen);
/* The timer that sweeps expired state values; -1 when it cannot be made. */
int  rt_worker_sweep_start(rt_worker *w);
/* State and windows for one more processor (slot w->nkeyed); -1 when out of memory. */
int  rt_worker_keyed_add(rt_worker *w, rt_processor *p);
/* A finished event joins its processor's windows (may turn the job dead, or send the
 * event to the late output). */
void rt_worker_windows_add(rt_worker *w, rt_job *j);
/* A finished event's time moves the watermark; due windows fire. */
void rt_worker_event_time(rt_worker *w, rt_job *j);
/* The processing-time timer event: fire what is due, arm for the next. */
void rt_worker_processing_timers(rt_worker *w);
/* The idle timer: partitions silent for window.idle.timeout.ms stop holding back. */
void rt_worker_idle_check(rt_worker *w);
/* eddy test: windows and event-time timers due at watermark `wm` fire; processing-time
 * timers due at `now_ms` fire. */
void rt_worker_watermark_to(rt_worker *w, int64_t wm);
void rt_worker_clock_to(rt_worker *w, int64_t now_ms);
/* A bounded input ended: the watermark goes to the end of time, every window fires. */
void rt_worker_end_of_input(rt_worker *w);
/* State and window metrics in the Prometheus text format. */
int  rt_worker_keyed_metrics(rt_worker *w, rt_buf *out);
/* Release state and windows. */
void rt_worker_keyed_free(rt_worker *w);
/* worker_checkpoint.c: with state.dir and a Kafka source, take a checkpoint every
 * checkpoint.interval.ms. -1 with err set. */
int  rt_worker_checkpoint_start(rt_worker *w, char *err, size_t errlen);
/* Take the checkpoint that is due, if no event is half-processed now and the one
 * before is written. */
void rt_worker_checkpoint_maybe(rt_worker *w);
/* Drain the sinks and write every partition's checkpoint now; -1 when not taken. */
int  rt_worker_checkpoint(rt_worker *w);
/* Exactly once: write every partition's checkpoint for the transaction about to
 * commit, keeping the previous one. 0 also without state.dir; -1 when not written. */
int  rt_worker_txn_checkpoint(rt_worker *w);
/* rt_source_cb.giving_up: partitions revoked in a rebalance, their events done: their
 * checkpoint is written and its offsets stored, so the commit that follows stands for
 * it (at least once with state.dir; nothing otherwise). */
void rt_worker_checkpoint_revoked(void *arg, size_t n, const char *const *topics,
                                 const int *partitions);
/* Wait for a checkpoint still being written and release the checkpoint timers. */
void rt_worker_checkpoint_stop(rt_worker *w);
/* Newly assigned partitions: restore their checkpoints and set from[i] to the offsets
 * they stand for; under exactly_once (`committed` the group's offsets) the checkpoint
 * that stands for the committed offsets, else none. -1 when one is damaged, or
 * exactly_once without `committed` (logged): the worker must stop. */
int  rt_worker_restore(rt_worker *w, size_t n, const char *const *topics,
                       const int *partitions, const long long *committed, long long *from);
int  rt_worker_checkpoint_metrics(rt_worker *w, rt_buf *out);
/* state.dir beside state.changelog (a cache of the changelog): when the checkpoint
 * `body` of `partition` was taken and the changelog offset it holds everything before;
 * -1 when it is not one that says. */
int  rt_worker_cache_position(const rt_buf *body, int32_t partition, int64_t *when,
                              int64_t *position);
/* Its stores replace the partition's (input offsets are left to the group's). 0, 1
 * when it cannot be read (the partition is left empty), -1 when out of memory. */
int  rt_worker_restore_cache(rt_worker *w, int32_t partition, const rt_buf *body);
/* Forget the partition's keyed state, windows and timers in every processor. */
void rt_worker_drop_partition(rt_worker *w, int32_t partition);
/* worker_changelog.c: with state.changelog=true, check or create the changelog topic
 * and note every keyed store's changes (before the transactions start). -1 with err. */
int  rt_worker_changelog_start(rt_worker *w, char *err, size_t errlen);
/* A processor's stores added since: their changes are noted too. */
void rt_worker_changelog_attach(rt_worker *w, rt_keyed *k);
/* Write every change noted so far, each holding `ticket` (the event that made it, or
 * NULL). -1 (the worker fails) when one cannot be written. */
int  rt_worker_changelog_flush(rt_worker *w, rt_ticket *ticket);
/* rt_source_cb.load: on the source's thread, read the changelog of the partitions
 * being assigned. The loop touches nothing of it until rt_worker_changelog_restore. */
int  rt_worker_changelog_load(void *arg, size_t n, const char *const *topics,
                              const int *partitions);
/* On the loop: the partitions' stores become what was loaded. -1 (logged) when it
 * could not be read or put back: the worker must stop. */
int  rt_worker_changelog_restore(rt_worker *w, size_t n, const int *partitions);
int  rt_worker_changelog_metrics(rt_worker *w, rt_buf *out);
/* The changelog offset a checkpoint of `partition` taken now holds everything before
 * (the offset after this worker's last acknowledged write there, else where its restore
 * read to); -1 without a changelog or when unknown. */
int64_t rt_worker_changelog_position(rt_worker *w, int32_t partition);
/* GET /-/state: the changelog's side of one partition (a new reference), or NULL
 * without a changelog (or out of memory). */
json_t *rt_worker_changelog_describe(rt_worker *w, int32_t partition);
/* worker_inspect.c: GET /-/state: every partition this worker has read since it was
 * assigned, with its keys, bytes and changelog. 200, or -1 when out of memory. */
int  rt_worker_partitions(rt_worker *w, rt_buf *out);
void rt_worker_changelog_free(rt_worker *w);
/* The input's partition count: the largest of source.topics'. -1 with err set. */
int  rt_worker_input_partitions(rt_worker *w, char *err, size_t errlen);
/* worker_repartition.c: refuse an assignment strategy that cannot co-partition the
 * repartition topics with the input (a config error). -1 with err set. */
int  rt_worker_repartition_init(rt_worker *w, char *err, size_t errlen);
/* For every processor that declares a key the input is not keyed by, check or create
 * its repartition topic (before the transactions start). -1 with err set. */
int  rt_worker_repartition_start(rt_worker *w, char *err, size_t errlen);
/* The repartition topics as a comma list into out ('\0'-terminated, empty for none);
 * -1 when out of memory. */
int  rt_worker_repartition_topics(rt_worker *w, rt_buf *out);
/* The repartition the events of processor `slot` read from `topic` take first, or NULL
 * when they are processed here (no repartition, or read from its topic). */
rt_rekey *rt_worker_rekey_for(rt_worker *w, size_t slot, const char *topic);
/* The job's event becomes its output to the repartition topic, keyed by the key's
 * value: 0, or -1 with j->why set (no key there, out of memory). */
int  rt_worker_rekey(rt_rekey *r, rt_job *j);
/* Reload: -1 with err set when `cand` (replacing `old`, NULL for a new processor)
 * changes or adds a key the repartitioning set up at start cannot follow. */
int  rt_worker_repartition_check(rt_worker *w, const rt_processor *old,
                                 const rt_processor *cand, char *err, size_t errlen);
int  rt_worker_repartition_metrics(rt_worker *w, rt_buf *out);
void rt_worker_repartition_free(rt_worker *w);
/* worker_txn.c: under processing.guarantee=exactly_once, refuse what cannot be part of
 * a transaction and begin the first one (before the loop runs). -1 with err set. */
int  rt_worker_txn_check(rt_worker *w, char *err, size_t errlen);
int  rt_worker_txn_start(rt_worker *w, char *err, size_t errlen);
/* Commit now what is done (stopping, revocation); see rt_source_cb.commit_txn. */
int  rt_worker_txn_commit(void *arg, int force);
int  rt_worker_txn_metrics(rt_worker *w, rt_buf *out);
void rt_worker_txn_free(rt_worker *w);
/* worker_progress.c: on a terminal, a status line (events, events/s, dead letters)
 * redrawn twice a second. -1 when the timer cannot be set up. */
int  rt_worker_progress_start(rt_worker *w);
/* Remove the status line and log the summary of the run. */
void rt_worker_progress_end(rt_worker *w);
void rt_worker_progress_free(rt_worker *w);
#endif
