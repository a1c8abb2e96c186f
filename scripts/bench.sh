#!/usr/bin/env bash
# make bench: events/s of file -> decode -> route -> Lua -> file sink, and of
# decode-only over the same events, in one run, and their ratio; then Kafka ->
# processors -> Kafka on an embedded cluster: events/s and end-to-end latency.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${BENCH_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-5}
export BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/eddy-bench.XXXXXX)}
luajit scripts/gen-events.lua "$EVENTS" 1 2 > "$BENCH_DIR/events.ndjson"
echo "bench: $EVENTS events ($(du -h "$BENCH_DIR/events.ndjson" | cut -f1)), $ROUNDS rounds, on $(nproc) cores"
# The output files grow with every round; they only need to exist while it runs.
trap 'rm -rf "$BENCH_DIR"' EXIT
bin/eddy-bench conf/bench.conf "$ROUNDS" conf/bench-kafka.conf
echo
scripts/bench-lookup.sh
