/* supervisor.h - the master process of runtime.workers / runtime.supervisor: forks the
 * workers, restarts a dead one with backoff, kills one stuck in a Lua call past twice
 * processor.timeout.ms (compiled code the count hook cannot stop) and marks the record
 * it was on, forwards SIGHUP/SIGTERM, and serves the admin endpoint for all of them. */
#ifndef RT_SUPERVISOR_H
#define RT_SUPERVISOR_H

#include "buf.h"
#include "config.h"

/* Whether `cfg` asks for a supervisor; -1 with err set when it cannot have one. */
int rt_supervisor_wanted(const rt_config *cfg, char *err, size_t errlen);
/* Run the workers until SIGTERM/SIGINT. The exit code: 0, or the worst a worker gave
 * on the way out. */
int rt_supervisor_run(const rt_config *cfg);

/* supervisor_metrics.c: merge the Prometheus texts of the workers into `out`: one
 * family each, samples with equal labels added up (gauges of a time take the least or
 * greatest). -1 when out of memory. */
int rt_metrics_merge(const rt_buf *texts, size_t n, rt_buf *out);
/* A worker died: add the counters and histograms of its last /metrics text `last` to
 * `retired`, which every later merge includes, so that no sum goes down. -1 when out
 * of memory (`retired` is then as it was). */
int rt_metrics_retire(rt_buf *retired, const rt_buf *last);

#endif
