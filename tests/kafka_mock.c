/* kafka_mock.c - a Kafka mock cluster (librdkafka's rdkafka_mock) for the tests, owned
 * by this process and reachable over TCP by eddy and kcat.
 *
 *   kafka-mock BROKERS PARTITIONS TOPIC[,TOPIC...]
 *
 * Prints "bootstrap <host:port,...>" once the cluster is up, then reads commands, one
 * a line, and answers "ok" or "error: ...":
 *   down <broker>                  broker stops answering (ids start at 1)
 *   up <broker>                    and comes back
 *   leader <topic> <partition> <broker>
 *   error <api> <count> <code>     the next <count> requests of <api> (Produce, Fetch,
 *                                  OffsetCommit, ...) fail with error <code> (a number)
 *   topic <name> <partitions>      create a topic
 *   rtt <broker> <ms>              the broker answers every request <ms> late
 *   coordinator <group> <broker>   the broker that coordinates consumer group <group>
 * It exits at end of input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static const struct { const char *name; int key; } apis[] = {
    { "Produce", 0 }, { "Fetch", 1 }, { "ListOffsets", 2 }, { "Metadata", 3 },
    { "OffsetCommit", 8 }, { "OffsetFetch", 9 }, { "FindCoordinator", 10 },
    { "JoinGroup", 11 }, { "Heartbeat", 12 }, { "SyncGroup", 14 }, { "InitProducerId", 22 },
};

static int api_key(const char *name)
{
    for (size_t i = 0; i < sizeof apis / sizeof *apis; i++)
        if (strcmp(apis[i].name, name) == 0)
            return apis[i].key;
    return -1;
}

static const char *command(rd_kafka_mock_cluster_t *mc, char *line)
{
    char a[256], b[256];
    int x, y, z;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (sscanf(line, "down %d", &x) == 1)
        err = rd_kafka_mock_broker_set_down(mc, x);
    else if (sscanf(line, "up %d", &x) == 1)
        err = rd_kafka_mock_broker_set_up(mc, x);
    else if (sscanf(line, "leader %255s %d %d", a, &x, &y) == 3)
        err = rd_kafka_mock_partition_set_leader(mc, a, x, y);
    else if (sscanf(line, "rtt %d %d", &x, &y) == 2)
        err = rd_kafka_mock_broker_set_rtt(mc, x, y);
    else if (sscanf(line, "coordinator %255s %d", a, &x) == 2)
        err = rd_kafka_mock_coordinator_set(mc, "group", a, x);
    else if (sscanf(line, "topic %255s %d", a, &x) == 2)
        err = rd_kafka_mock_topic_create(mc, a, x, 1);
    else if (sscanf(line, "error %255s %d %d", b, &y, &z) == 3) {
        int key = api_key(b);
        if (key < 0 || y < 1 || y > 1000)
            return "error: unknown api or count";
        rd_kafka_resp_err_t *errs = malloc((size_t)y * sizeof *errs);
        if (!errs)
            return "error: out of memory";
        for (int i = 0; i < y; i++)
            errs[i] = (rd_kafka_resp_err_t)z;
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)key, (size_t)y, errs);
        free(errs);
    } else
        return "error: unknown command";
    if (!err)
        return "ok";
    static char answer[300];
    snprintf(answer, sizeof answer, "error: %s", rd_kafka_err2str(err));
    return answer;
}

int main(int argc, char **argv)
{
    char errstr[512], line[1024];
    if (argc != 4) {
        fprintf(stderr, "usage: kafka-mock BROKERS PARTITIONS TOPIC[,TOPIC...]\n");
        return 2;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", argv[1], errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr)) {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
    int partitions = atoi(argv[2]);
    for (char *save, *t = strtok_r(argv[3], ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (rd_kafka_mock_topic_create(mc, t, partitions, 1)) {
            fprintf(stderr, "kafka-mock: cannot create topic %s\n", t);
            rd_kafka_destroy(rk);
            return 1;
        }
    printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (*line) {
            printf("%s\n", command(mc, line));
            fflush(stdout);
        }
    }
    rd_kafka_destroy(rk);
    return 0;
}
