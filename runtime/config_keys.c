/* config_keys.c - every config key eddy knows, its type, default and meaning.
 * The README's config table is generated from the same text (`eddy config`). */
#include "config.h"

#define MiB (1024LL * 1024)

const rt_conf_key rt_conf_keys[] = {
    { "processors.dir", RT_CONF_STRING, "processors", 0, NULL, 0, 0,
      "directory of processor scripts (*.lua), loaded in name order" },
    { "source.type", RT_CONF_ENUM, "file", 0, "file", 0, 0,
      "where events come from" },
    { "source.file.path", RT_CONF_STRING, "-", 0, NULL, 0, 0,
      "NDJSON input file for source.type=file; - reads stdin" },
    { "sink.*.type", RT_CONF_ENUM, NULL, 0, "stdout|file", 0, 0,
      "declares sink <name>: stdout or file (NDJSON, one record per line)" },
    { "sink.*.path", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "output file of a file sink (appended to, created if missing)" },
    { "sink.*.key", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "record field used as the message key (Kafka sinks)" },
    { "dlq.sink", RT_CONF_STRING, NULL, 1, NULL, 0, 0,
      "name of the sink that receives dead-letter records" },
    { "route.*.*", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "route.<domain>.<type|*>=<processor> overrides the routes processors declare" },
    { "event.max.bytes", RT_CONF_INT, "1048576", 0, NULL, 64, 64 * MiB,
      "largest accepted event; larger ones are dead-lettered as too_large" },
    { "admin.listen", RT_CONF_STRING, "127.0.0.1:9464", 0, NULL, 0, 0,
      "host:port of the admin HTTP endpoint (/metrics, /healthz); empty disables; port 0 picks one" },
    { "log.level", RT_CONF_ENUM, "info", 0, "debug|info|warn|error", 0, 0,
      "lowest level of log lines written to stderr" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};
