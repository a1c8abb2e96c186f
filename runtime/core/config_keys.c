/* config_keys.c - eddy's own config keys, their types, defaults and meanings, and the
 * walk over them and the keys each source and sink kind registers. The README's config
 * table is generated from the same text (`eddy config`). */
#include <stdio.h>
#include <string.h>

#include "beat.h"
#include "config.h"
#include "sink.h"
#include "source.h"

#define MiB (1024LL * 1024)

const rt_conf_key rt_conf_keys[] = {
    { "processors.dir", RT_CONF_STRING, "processors", 0, NULL, 0, 0,
      "directory of processor scripts (*.lua), loaded in name order" },
    { "processor.timeout.ms", RT_CONF_INT, "1000", 0, NULL, 0, 3600000,
      "running time of one Lua call (process, init, on_window, on_timer); past it: dead letter `timeout`; 0 none" },
    { "processor.memory.mb", RT_CONF_INT, "64", 0, NULL, 0, 65536,
      "memory of one processor's Lua state; an allocation past it fails: dead letter `memory`; 0 none" },
    { "processor.max.emits", RT_CONF_INT, "1000", 0, NULL, 0, 100000000,
      "ctx.emit calls per event; one more: dead letter `too_many_emits`; 0 none" },
    { "processor.max.output.mb", RT_CONF_INT, "16", 0, NULL, 0, 65536,
      "bytes of records one call may emit (C memory until it returns); past it: dead letter `output_too_large`; 0 none" },
    { "processor.max.consecutive.errors", RT_CONF_INT, "100", 0, NULL, 0, 100000000,
      "errors in a row after which a processor is quarantined (events: `quarantined`) until reloaded; 0 never" },
    { "processor.max.metric.series", RT_CONF_INT, "1000", 0, NULL, 1, 1000000,
      "series (label combinations) of one processor's ctx.metric metrics; past it ctx.metric returns nil and a message" },
    { "processor.quarantine.fails.run", RT_CONF_BOOL, "true", 0, NULL, 0, 0,
      "a processor quarantined during the run makes eddy run exit 1 when the run ends (the input's end, SIGTERM), saying which; false: exit 0" },
    { "processor.jit", RT_CONF_BOOL, "false", 0, NULL, 0, 0,
      "JIT-compile processors (a processor's own `jit = true` turns it on for that one); compiled loops escape processor.timeout.ms unless a supervisor runs" },
    { "reload.watch", RT_CONF_BOOL, "true", 0, NULL, 0, 0,
      "reload processors and rules when their files change (inotify, else a stat poll)" },
    { "reload.verify.events", RT_CONF_INT, "100", 0, NULL, 0, 100000,
      "a new version of a processor first runs the last N events the running one processed without error (outputs discarded, state untouched); an error on one refuses the reload; 0 turns this off" },
    { "reload.delay.ms", RT_CONF_INT, "300", 0, NULL, 0, 60000,
      "after a change is seen, wait this long for more before reloading (editors write twice)" },
    { "runtime.workers", RT_CONF_INT, "1", 0, NULL, 1, RT_MAX_WORKERS,
      "worker processes; more than 1 runs them under a supervisor (Kafka source; a file source has one)" },
    { "runtime.supervisor", RT_CONF_BOOL, "false", 0, NULL, 0, 0,
      "run the workers under a supervisor: restarts them, kills a compiled call stuck past processor.timeout.ms; a file or stdin source is relayed through it" },
    /* Choices NULL: the names in the registry (rt_conf_choices). */
    { "source.type", RT_CONF_ENUM, "file", 0, NULL, 0, 0,
      "where events come from" },
    { "source.max.inflight", RT_CONF_INT, "10000", 0, NULL, 1, 10000000,
      "unfinished events (outputs not all acknowledged) above which partitions pause" },
    { "sink.*.type", RT_CONF_ENUM, NULL, 0, NULL, 0, 0,
      "declares sink <name>: stdout or file (NDJSON, one record per line), kafka, mysql, elasticsearch, or clickhouse" },
    { "sink.*.key", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Kafka: record field used as the message key; MySQL: the key columns (comma list) of the upsert" },
    /* Keys several sink kinds read (a pattern has one default and one meaning). */
    { "sink.*.batch.ms", RT_CONF_INT, "200", 0, NULL, 1, 600000,
      "MySQL, Elasticsearch and ClickHouse sinks: longest a record waits for its batch to fill" },
    { "sink.*.url", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch sink: base URL (http:// or https://), _bulk is appended; ClickHouse sink: its HTTP interface (http://host:8123)" },
    { "sink.*.table", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "MySQL sink: table written (INSERT ... ON DUPLICATE KEY UPDATE); ClickHouse sink: table inserted into" },
    { "sink.*.columns", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "MySQL and ClickHouse sinks: columns written (comma list); ClickHouse default: the record's fields" },
    { "sink.*.batch.rows", RT_CONF_INT, "1000", 0, NULL, 1, 100000,
      "MySQL sink: rows per batch (one round trip, one transaction); ClickHouse sink: rows per INSERT" },
    { "sink.*.batch.bytes", RT_CONF_INT, "5242880", 0, NULL, 1024, 104857600,
      "Elasticsearch and ClickHouse sinks: body size at which a request is sent" },
    { "sink.*.timeout.ms", RT_CONF_INT, "30000", 0, NULL, 100, 600000,
      "Elasticsearch and ClickHouse sinks: bound on one request; past it the request is retried" },
    { "sink.*.retry.backoff.ms", RT_CONF_INT, "100", 0, NULL, 1, 600000,
      "Elasticsearch and ClickHouse sinks: first wait before a failed request is sent again; doubles each time" },
    { "sink.*.retry.backoff.max.ms", RT_CONF_INT, "30000", 0, NULL, 1, 3600000,
      "Elasticsearch and ClickHouse sinks: longest wait between retries (they never stop: records wait)" },
    { "sink.*.username", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch and ClickHouse sinks: basic auth user" },
    { "sink.*.password", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch and ClickHouse sinks: basic auth password (never logged)" },
    { "sink.*.tls.verify", RT_CONF_BOOL, "true", 0, NULL, 0, 0,
      "Elasticsearch and ClickHouse sinks: check the server's certificate and host name" },
    { "sink.*.tls.ca.file", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "Elasticsearch and ClickHouse sinks: CA bundle to check the server's certificate with" },
    { "dlq.sink", RT_CONF_STRING, NULL, 1, NULL, 0, 0,
      "name of the sink that receives dead-letter records" },
    { "dlq.max.raw.bytes", RT_CONF_INT, "900000", 0, NULL, 0, 1000000000,
      "a dead letter carries at most this much of the original record, cut and marked past it (below the Kafka producer's message.max.bytes); 0 all" },
    { "dlq.format", RT_CONF_ENUM, "headers", 0, "headers|envelope", 0, 0,
      "Kafka dead-letter sink: original bytes with eddy.* headers, or the JSON envelope" },
    { "route.*.*", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "route.<domain>.<type|*>=<processor> overrides the routes processors declare" },
    { "event.max.bytes", RT_CONF_INT, "1048576", 0, NULL, 64, 64 * MiB,
      "largest accepted event; larger ones are dead-lettered as too_large" },
    { "event.timestamp.max", RT_CONF_INT, "253402300799999", 0, NULL, 0, 253402300799999LL,
      "latest accepted event time, epoch ms (default 9999-12-31T23:59:59.999Z); later ones "
      "are dead-lettered as bad_value:timestamp" },
    { "admin.listen", RT_CONF_STRING, "127.0.0.1:9464", 0, NULL, 0, 0,
      "host:port of the admin HTTP endpoint (/metrics, /healthz); empty disables; port 0 picks one" },
    { "admin.token", RT_CONF_STRING, "", 0, NULL, 0, 0,
      "when set, POST /-/reload needs the header Authorization: Bearer <token> (else 401); never logged" },
    { "rules.dir", RT_CONF_STRING, "conf/rules", 0, NULL, 0, 0,
      "directory of rules files (<name>.json) that processors read with ctx.rules(name)" },
    { "mysql.url", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "mysql://user:password@host:port/database; overrides the separate mysql.* keys" },
    { "mysql.host", RT_CONF_STRING, "127.0.0.1", 0, NULL, 0, 0,
      "MySQL/MariaDB server for lookups and mysql sinks" },
    { "mysql.port", RT_CONF_INT, "3306", 0, NULL, 1, 65535,
      "its TCP port" },
    { "mysql.user", RT_CONF_STRING, "eddy", 0, NULL, 0, 0,
      "user to connect as" },
    { "mysql.password", RT_CONF_STRING, "", 0, NULL, 0, 0,
      "its password; use ${MYSQL_PASSWORD}, never logged" },
    { "mysql.database", RT_CONF_STRING, "eddy", 0, NULL, 0, 0,
      "default database" },
    { "mysql.tls", RT_CONF_ENUM, "disabled", 0, "disabled|required|verify", 0, 0,
      "TLS to the server: off, required, or required with the server certificate verified" },
    { "mysql.tls.ca", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "CA certificate file (PEM) for mysql.tls=verify" },
    { "mysql.tls.cert", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "client certificate file (PEM)" },
    { "mysql.tls.key", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "client private key file (PEM)" },
    { "mysql.timeout.ms", RT_CONF_INT, "5000", 0, NULL, 100, 600000,
      "bound on connecting and on each statement; past it the connection is dropped and retried" },
    { "mysql.retry.backoff.ms", RT_CONF_INT, "100", 0, NULL, 1, 60000,
      "first wait before retrying a failed lookup query or sink batch; doubles on each failure" },
    { "mysql.retry.backoff.max.ms", RT_CONF_INT, "5000", 0, NULL, 1, 600000,
      "longest wait between retries" },
    { "lookup.*.table", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "declares lookup <name>: the dimension table it reads" },
    { "lookup.*.key", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "key column of the table (ctx.lookup(name, key) matches it)" },
    { "lookup.*.columns", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "columns returned (comma list); default: every column" },
    { "lookup.*.query", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "instead of table/key: a SELECT with exactly one ? for the key (one query per key)" },
    { "lookup.*.cache", RT_CONF_ENUM, "partial", 0, "partial|full|none", 0, 0,
      "partial: LRU of looked-up keys; full: the whole table, reloaded; none: always query" },
    { "lookup.*.max.rows", RT_CONF_INT, "100000", 0, NULL, 1, 100000000,
      "partial cache: rows kept; the least recently used go first" },
    { "lookup.*.expire.after.write.ms", RT_CONF_INT, "0", 0, NULL, 0, 86400000LL * 365,
      "partial cache: a row is read again this long after it was loaded; 0 never" },
    { "lookup.*.expire.after.access.ms", RT_CONF_INT, "0", 0, NULL, 0, 86400000LL * 365,
      "partial cache: a row not used for this long is dropped; 0 never" },
    { "lookup.*.cache.missing.key", RT_CONF_BOOL, "true", 0, NULL, 0, 0,
      "partial cache: remember that a key has no row (else ask again each time)" },
    { "lookup.*.reload.interval.ms", RT_CONF_INT, "60000", 0, NULL, 100, 86400000LL * 365,
      "full cache: reload the table this often; a failed reload keeps the old copy" },
    /* One statement is in flight per lookup and its answer is read between two reads
     * of the source (a Kafka read takes up to 1000 records): a batch at least that big
     * keeps up with a cold cache. */
    { "lookup.*.batch.size", RT_CONF_INT, "1024", 0, NULL, 1, 4096,
      "cache misses fetched by one WHERE key IN (...) query" },
    { "lookup.*.max.wait.ms", RT_CONF_INT, "30000", 0, NULL, 0, 86400000LL * 365,
      "how long events wait for an unreachable database before on.failure decides" },
    { "lookup.*.on.failure", RT_CONF_ENUM, "wait", 0, "wait|null|dlq", 0, 0,
      "past max.wait.ms: keep waiting, answer nil, or dead-letter the event (lookup_failed)" },
    { "state.dir", RT_CONF_STRING, "", 0, NULL, 0, 0,
      "directory of checkpoints (one file per input partition); empty: no checkpoints" },
    { "state.changelog", RT_CONF_BOOL, "false", 0, NULL, 0, 0,
      "write keyed state, windows and timers to a compacted Kafka topic and restore a "
      "partition from it when assigned (no shared disk needed)" },
    { "state.changelog.topic", RT_CONF_STRING, "", 0, NULL, 0, 0,
      "the changelog topic; empty: <kafka.group.id>-changelog" },
    { "state.cache.max.age.ms", RT_CONF_INT, "43200000", 0, NULL, 0, 86400000LL * 365,
      "with state.changelog and state.dir: a partition's file older than this is not used "
      "(a full restore instead; keep it below the changelog's delete.retention.ms)" },
    { "state.max.mb", RT_CONF_INT, "512", 0, NULL, 0, 1048576,
      "keys and values one processor's ctx.state may hold; a set past it: dead letter `memory`; 0 none" },
    { "checkpoint.interval.ms", RT_CONF_INT, "5000", 0, NULL, 10, 86400000LL,
      "how often state, windows, timers and their input offsets are checkpointed, and those offsets committed to the group" },
    { "window.out.of.orderness.ms", RT_CONF_INT, "0", 0, NULL, 0, 86400000LL * 365,
      "the watermark trails the largest event time seen per partition by this much" },
    { "window.idle.timeout.ms", RT_CONF_INT, "0", 0, NULL, 0, 86400000LL * 365,
      "a partition silent this long stops holding the watermark back (0: never idle)" },
    { "window.allowed.lateness.ms", RT_CONF_INT, "0", 0, NULL, 0, 86400000LL * 365,
      "default lateness_ms of windows: late events re-fire a window until then" },
    { "processing.guarantee", RT_CONF_ENUM, "at_least_once", 0, "at_least_once|exactly_once", 0, 0,
      "Kafka source: at_least_once (offsets committed after the outputs are acknowledged) or exactly_once (outputs, dead letters and offsets in one Kafka transaction per commit.interval.ms)" },
    { "commit.interval.ms", RT_CONF_INT, "100", 0, NULL, 1, 600000,
      "exactly_once: how often the transaction commits; outputs become visible to read_committed consumers then" },
    { "shutdown.timeout.ms", RT_CONF_INT, "30000", 0, NULL, 0, 3600000,
      "at the end, how long to wait for outputs to be acknowledged before failing" },
    { "kafka.transactional.id", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "exactly_once: the producers' transactional.id, each worker's with -<n> appended; default <kafka.group.id>-<host name>; unique per instance, stable across its restarts" },
    { "kafka.enable.idempotence", RT_CONF_BOOL, "true", 0, NULL, 0, 0,
      "Kafka sinks: idempotent producers (no duplicates from producer retries); false, under at_least_once only, trades that for less CPU and keeps order with one request in flight" },
    { "kafka.embedded", RT_CONF_BOOL, "false", 0, NULL, 0, 0,
      "start an in-process Kafka mock cluster (demo, tests) and use it as bootstrap" },
    { "kafka.embedded.brokers", RT_CONF_INT, "1", 0, NULL, 1, 9,
      "brokers of the embedded cluster" },
    { "kafka.embedded.partitions", RT_CONF_INT, "4", 0, NULL, 1, 256,
      "partitions of each topic the embedded cluster creates" },
    /* After eddy's own kafka.* keys: the first matching pattern wins. */
    { "kafka.*", RT_CONF_STRING, NULL, 0, NULL, 0, 0,
      "any librdkafka property, passed as is (kafka.bootstrap.servers, kafka.group.id, ...)" },
    { "log.level", RT_CONF_ENUM, "info", 0, "debug|info|warn|error", 0, 0,
      "lowest level of log lines written to stderr" },
    { "log.format", RT_CONF_ENUM, "text", 0, "text|json", 0, 0,
      "text for people; json: one object per line (time, level, worker, msg) for log collectors" },
    { "log.dead.letters.interval.ms", RT_CONF_INT, "10000", 0, NULL, 100, 3600000,
      "dead letters are logged as one summary line per interval (counts by reason, first example)" },
    { NULL, 0, NULL, 0, NULL, 0, 0, NULL },
};

/* "a|b|c" of the kinds' names into buf. */
static const char *kind_names(char *buf, size_t len, const char *const *names, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "|" : "", names[i]);
    return buf;
}

const char *rt_conf_choices(const rt_conf_key *s)
{
    static char sources[256], sinks[256];
    const char *names[32];
    size_t n = 0;
    if (s->type != RT_CONF_ENUM || s->choices)
        return s->choices;
    if (strcmp(s->pattern, "source.type") == 0) {
        for (size_t i = 0; rt_source_kinds[i] && n < 32; i++)
            names[n++] = rt_source_kinds[i]->name;
        return kind_names(sources, sizeof sources, names, n);
    }
    for (size_t i = 0; rt_sink_kinds[i] && n < 32; i++)
        names[n++] = rt_sink_kinds[i]->name;
    return kind_names(sinks, sizeof sinks, names, n);
}

static const rt_conf_key no_keys[] = { { NULL, 0, NULL, 0, NULL, 0, 0, NULL } };

/* Table t of the walk: 0 eddy's own, then each source kind's, then each sink kind's;
 * NULL past the last. */
static const rt_conf_key *table_at(size_t t)
{
    if (t-- == 0)
        return rt_conf_keys;
    for (size_t i = 0; rt_source_kinds[i]; i++, t--)
        if (t == 0)
            return rt_source_kinds[i]->keys ? rt_source_kinds[i]->keys : no_keys;
    for (size_t i = 0; rt_sink_kinds[i]; i++, t--)
        if (t == 0)
            return rt_sink_kinds[i]->keys ? rt_sink_kinds[i]->keys : no_keys;
    return NULL;
}

const rt_conf_key *rt_conf_next(rt_conf_iter *it)
{
    for (;;) {
        if (it->k) {
            it->k++;
        } else if (!(it->k = table_at(it->table))) {
            return NULL;
        }
        if (it->k->pattern)
            return it->k;
        it->table++;
        it->k = NULL;
    }
}
