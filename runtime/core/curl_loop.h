/* curl_loop.h - libcurl's multi interface driven by a libevent loop: transfers run
 * on the worker's loop without blocking it; a drain can finish them without it. */
#ifndef RT_CURL_LOOP_H
#define RT_CURL_LOOP_H

#include <curl/curl.h>
#include <event2/event.h>

typedef struct rt_curl_loop rt_curl_loop;

/* Called once per finished transfer, after it left the loop (the handle may be added
 * again from here). `rc` is curl's result; the HTTP status is the handle's. */
typedef void (*rt_curl_done_fn)(void *arg, CURL *easy, CURLcode rc);

/* A loop of transfers on `base`; NULL when out of memory. */
rt_curl_loop *rt_curl_loop_new(struct event_base *base);
/* Start a transfer; `done` is called when it ends. -1 when curl refused it. */
int  rt_curl_loop_add(rt_curl_loop *l, CURL *easy, rt_curl_done_fn done, void *arg);
/* Drive the transfers without the event loop for up to timeout_ms (a drain). */
void rt_curl_loop_wait(rt_curl_loop *l, int timeout_ms);
/* Abort the transfers (their `done` is not called) and free. */
void rt_curl_loop_free(rt_curl_loop *l);

#endif
