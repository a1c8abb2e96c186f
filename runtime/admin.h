/* admin.h - the admin HTTP endpoint: GET /metrics and GET /healthz. */
#ifndef RT_ADMIN_H
#define RT_ADMIN_H

#include <event2/event.h>

#include "buf.h"

typedef struct rt_admin rt_admin;

/* Fills `out` with the Prometheus text for GET /metrics; -1 on failure. */
typedef int (*rt_metrics_fn)(void *arg, rt_buf *out);

/* Listen on "host:port" (port 0 picks a free one, logged). NULL with err set. */
rt_admin *rt_admin_start(struct event_base *base, const char *listen, rt_metrics_fn metrics,
                         void *arg, char *err, size_t errlen);
/* Stop listening and free. */
void rt_admin_stop(rt_admin *a);

#endif
