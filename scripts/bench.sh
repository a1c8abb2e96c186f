#!/usr/bin/env bash
# make bench: events/s of file -> decode -> route -> Lua -> file sink, and of
# decode-only over the same events, in one run, and their ratio; then Kafka ->
# processors -> Kafka on an embedded cluster and on a real broker (at least once and
# exactly once): events/s and end-to-end latency; then lookups, the per-event costs of
# the order processor step by step, the MySQL sink, the ClickHouse sink, the geofence
# job, and restores from a changelog (real broker). The processors' lookups read a
# throwaway MariaDB started here (scripts/mariadb-local.sh), shared with the later
# parts.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${BENCH_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-5}
export BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/eddy-bench.XXXXXX)}
luajit scripts/gen-events.lua "$EVENTS" 1 2 > "$BENCH_DIR/events.ndjson"
echo "bench: $EVENTS events ($(du -h "$BENCH_DIR/events.ndjson" | cut -f1)), $ROUNDS rounds, on $(nproc) cores"
# The output files grow with every round; they only need to exist while it runs.
export BENCH_DB_DIR=$BENCH_DIR/db MYSQL_PASSWORD=bench
trap 'scripts/mariadb-local.sh stop "$BENCH_DB_DIR"; rm -rf "$BENCH_DIR"' EXIT
MYSQL_PORT=$(scripts/free-port.sh)
export MYSQL_PORT
scripts/mariadb-local.sh start "$BENCH_DB_DIR" "$MYSQL_PORT"
cat conf/sql/dimensions.sql conf/sql/sample-data.sql | scripts/mariadb-local.sh sql "$BENCH_DB_DIR" eddy
# A real Kafka broker (scripts/kafka-local.sh) for the Kafka part's at-least-once and
# exactly-once runs, beside the embedded mock cluster.
KAFKA_PORT=$(scripts/free-port.sh 2)    # and the next one, for the controller
trap 'scripts/kafka-local.sh kill "$BENCH_DIR/kafka"; scripts/mariadb-local.sh stop "$BENCH_DB_DIR"; rm -rf "$BENCH_DIR"' EXIT
scripts/kafka-local.sh start "$BENCH_DIR/kafka" "$KAFKA_PORT"
export BENCH_KAFKA=127.0.0.1:$KAFKA_PORT BENCH_KAFKA_DIR=$BENCH_DIR/kafka
for t in bench-dlq {alos,eos}-{bench-in,bench-out} {alos,eos}-lat{2,4}-{1,2,3}-{in,out} alos-lat{2,4}-{1,2,3}-floor-{in,out}; do
  scripts/kafka-local.sh topic "$BENCH_DIR/kafka" "$t" 4
done
BENCH_KAFKA_BROKER=127.0.0.1:$KAFKA_PORT bin/eddy-bench conf/bench.conf "$ROUNDS" conf/bench-kafka.conf
echo
scripts/bench-lookup.sh
echo
scripts/bench-costs.sh
echo
scripts/bench-mysql.sh
echo
scripts/bench-clickhouse.sh
echo
scripts/bench-geofence.sh
echo
scripts/bench-restore.sh
