/* kafka.c - Kafka pieces shared by the source and the sink. */
#define _GNU_SOURCE     /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"

#include <librdkafka/rdkafka_mock.h>    /* after rdkafka.h, which kafka.h includes */

/* Keys under kafka. that are eddy's own, not librdkafka properties. */
static int eddy_key(const char *key)
{
    return strncmp(key, "kafka.embedded", 14) == 0 ||
           strcmp(key, "kafka.transactional.id") == 0 ||    /* per worker: sink_kafka.c */
           strcmp(key, "kafka.enable.idempotence") == 0;    /* the producers': sink_kafka.c */
}

/* librdkafka's syslog levels onto eddy's log lines. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum rt_log_level l = level <= 3 ? RT_LOG_ERROR : level == 4 ? RT_LOG_WARN
                        : level <= 6 ? RT_LOG_INFO : RT_LOG_DEBUG;
    /* kafka.* keys go to the consumer and the producer alike; each warns about the
     * other's properties. Not worth an operator's attention. */
    if (strcmp(fac, "CONFWARN") == 0)
        l = RT_LOG_DEBUG;
    rt_log(l, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int rt_kafka_exactly_once(const rt_config *c)
{
    const char *g = rt_config_get(c, "processing.guarantee");
    return g && strcmp(g, "exactly_once") == 0;
}

rd_kafka_conf_t *rt_kafka_conf(const rt_config *c, const char *bootstrap, char *err,
                               size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(err, errlen, "kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    for (size_t i = 0; i < c->n; i++) {
        const rt_conf_entry *e = &c->v[i];
        if (strncmp(e->key, "kafka.", 6) || eddy_key(e->key))
            continue;
        if (bootstrap && strcmp(e->key, "kafka.bootstrap.servers") == 0)
            continue;
        if (rd_kafka_conf_set(conf, e->key + 6, e->value, why, sizeof why) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s:%d: %s: %s", e->file, e->line, e->key, why);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (bootstrap &&
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka: embedded bootstrap: %s", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static int embedded_topic(rt_kafka_embedded *e, const char *topic, int partitions,
                          char *err, size_t errlen)
{
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(e->owner);
    rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(mc, topic, partitions, 1);
    if (rc) {
        snprintf(err, errlen, "embedded kafka: cannot create topic %s: %s", topic,
                 rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

int rt_kafka_conf_put(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errlen, "kafka: %s", why);
    return -1;
}

int rt_kafka_embedded_start(rt_kafka_embedded *e, int brokers, int partitions,
                            const char *topics, char *err, size_t errlen)
{
    char why[512], n[16];
    memset(e, 0, sizeof *e);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(n, sizeof n, "%d", brokers);
    if (!conf || rd_kafka_conf_set(conf, "test.mock.num.brokers", n, why, sizeof why) ||
        rd_kafka_conf_set(conf, "log_level", "3", why, sizeof why)) {
        snprintf(err, errlen, "embedded kafka: %s", conf ? why : "out of memory");
        if (conf)
            rd_kafka_conf_destroy(conf);
        return -1;
    }
    e->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!e->owner) {
        snprintf(err, errlen, "embedded kafka: %s", why);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    e->bootstraps = rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(e->owner));
    char *list = strdup(topics ? topics : "");
    if (!list) {
        snprintf(err, errlen, "embedded kafka: out of memory");
        goto fail;
    }
    for (char *save, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t && embedded_topic(e, t, partitions, err, errlen) < 0) {
            free(list);
            goto fail;
        }
    free(list);
    rt_info("embedded Kafka (mock cluster, %d brokers) at %s", brokers, e->bootstraps);
    return 0;
fail:
    rt_kafka_embedded_stop(e);
    return -1;
}

void rt_kafka_embedded_stop(rt_kafka_embedded *e)
{
    if (e->owner)
        rd_kafka_destroy(e->owner);
    memset(e, 0, sizeof *e);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    rt_kafka_waker *w = arg;
    char drain[64];
    while (read(fd, drain, sizeof drain) > 0)
        ;
    w->cb(w->arg);
}

int rt_kafka_waker_start(rt_kafka_waker *w, struct event_base *base, rd_kafka_queue_t *queue,
                         void (*cb)(void *arg), void *arg)
{
    memset(w, 0, sizeof *w);
    w->fds[0] = w->fds[1] = -1;
    w->cb = cb;
    w->arg = arg;
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        rt_error("kafka: pipe: %s", strerror(errno));
        return -1;
    }
    w->ev = event_new(base, w->fds[0], EV_READ | EV_PERSIST, on_wake, w);
    if (!w->ev || event_add(w->ev, NULL) < 0) {
        rt_error("kafka: cannot watch a queue on the event loop");
        rt_kafka_waker_stop(w);
        return -1;
    }
    /* librdkafka writes a byte when the queue goes from empty to non-empty. */
    w->queue = queue;
    rd_kafka_queue_io_event_enable(queue, w->fds[1], "1", 1);
    return 0;
}

void rt_kafka_waker_stop(rt_kafka_waker *w)
{
    if (w->queue)
        rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
    if (w->ev)
        event_free(w->ev);
    for (int i = 0; i < 2; i++)
        if (w->fds[i] >= 0)
            close(w->fds[i]);
    memset(w, 0, sizeof *w);
    w->fds[0] = w->fds[1] = -1;
}
