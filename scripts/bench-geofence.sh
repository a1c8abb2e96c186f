#!/usr/bin/env bash
# make bench, geofence part: processors/geofence.lua alone over 100,000 devices (all in
# fence group fence-1), each reporting every 5 s, from a Kafka mock cluster with
# checkpoints on. Prints events/s, keyed state and window memory per device, and the
# time and size of a checkpoint of all of it. Needs BENCH_DIR, BENCH_DB_DIR and
# MYSQL_PORT/MYSQL_PASSWORD from scripts/bench.sh; BENCH_EDDY runs another eddy binary
# (A/B comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${BENCH_DEVICES:-100000}
ROUNDS=${BENCH_GEO_ROUNDS:-3}
N=$((DEVICES * ROUNDS))
G=$BENCH_DIR/geo
mkdir -p "$G/processors"
cp processors/geofence.lua "$G/processors/"
scripts/mariadb-local.sh sql "$BENCH_DB_DIR" eddy -e "
  INSERT INTO device_metadata (device_id, name, type, owner, fence_group)
  SELECT CONCAT('gb-', seq), 'bench', 'tracker', 'bench', 'fence-1' FROM seq_1_to_$DEVICES
  ON DUPLICATE KEY UPDATE fence_group = 'fence-1'"
# The fleet's 100,000 device rows are held whole (cache=full, as a Flink job would with
# lookup.cache=FULL): with a partial cache every device's first report is a miss, and
# the misses, one statement at a time, bounded the run (scripts/bench-log.md, "small tables held whole").
# Round r: every device once, 50 us apart; a third of the devices wander 14 km out.
awk -v d="$DEVICES" -v r="$ROUNDS" 'BEGIN { for (k = 0; k < r; k++) for (i = 1; i <= d; i++)
  printf "{\"domain\":\"geofence\",\"type\":\"device_location\",\"timestamp\":%d,\"eventId\":\"b%d-%d\",\"payload\":{\"deviceId\":\"gb-%d\",\"lat\":%.5f,\"lon\":120.1551}}\n",
    1700000000000 + k * 5000 + int(i / 20), k, i, i, 30.2741 + (i % 3 == 0 ? 0.13 : 0.001 * (i % 7)) }' \
  > "$G/events.ndjson"

# 32 partitions: the mock keeps only ~5 MiB per partition, and this is ~60 MiB.
(sleep 100000) | bin/kafka-mock 1 32 geo-events > "$G/mock.out" 2>&1 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null; pkill -P $$ sleep 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^bootstrap' "$G/mock.out" && break; sleep 0.1; done
BOOT=$(awk '/^bootstrap/ {print $2}' "$G/mock.out")
# Keyed by device, so a device's reports stay in order on one partition.
jq -r '.payload.deviceId + "\t" + tojson' -c "$G/events.ndjson" | kcat -b "$BOOT" -P -t geo-events -K $'\t'
PORT=$(scripts/free-port.sh)
cat > "$G/eddy.conf" <<CONF
processors.dir=$G/processors
rules.dir=conf/rules
source.type=kafka
source.topics=geo-events
kafka.bootstrap.servers=$BOOT
kafka.group.id=bench-geo
kafka.auto.offset.reset=earliest
mysql.url=mysql://eddy:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/eddy
$(grep '^lookup\.device_meta\.' conf/eddy.conf)
lookup.device_meta.cache=full
sink.device_locations.type=file
sink.device_locations.path=/dev/null
sink.geofence_alerts.type=file
sink.geofence_alerts.path=$G/alerts.ndjson
sink.dlq.type=file
sink.dlq.path=$G/dlq.ndjson
dlq.sink=dlq
state.dir=$G/state
checkpoint.interval.ms=3000
admin.listen=127.0.0.1:$PORT
log.level=warn
CONF
${BENCH_EDDY:-bin/eddy} run -c "$G/eddy.conf" 2> "$G/eddy.err" &
EDDY=$!
m() { curl -fsS "http://127.0.0.1:$PORT/metrics" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }
read_n() { local v; v=$(m eddy_records_read_total); echo "${v:-0}"; }
for _ in $(seq 600); do [ "$(read_n)" -gt 0 ] && break; sleep 0.05; done
t0=$(date +%s.%N); r0=$(read_n)
for _ in $(seq 6000); do [ "$(read_n)" -ge "$N" ] && break; sleep 0.05; done
t1=$(date +%s.%N); r1=$(read_n)
[ "$r1" -ge "$N" ] || echo "geofence bench: only $r1 of $N events arrived; the figures below are off" >&2
ck=$(m eddy_checkpoints_total)
for _ in $(seq 200); do [ "$(m eddy_checkpoints_total)" -gt "$ck" ] && break; sleep 0.05; done
entries=$(m 'eddy_state_entries{processor="geofence"}')
bytes=$(m 'eddy_state_bytes{processor="geofence"}')
panes=$(m 'eddy_window_panes{processor="geofence"}')
slices=$(m 'eddy_window_slices{processor="geofence"}')
ckms=$(m eddy_checkpoint_duration_seconds)
ckbytes=$(m eddy_checkpoint_bytes)
ckpause=$(m eddy_checkpoint_pause_seconds)
rss=$(awk '/VmRSS/ { print $2 }' /proc/$EDDY/status)
kill -TERM $EDDY; wait $EDDY || true
awk -v n="$((r1 - r0))" -v t0="$t0" -v t1="$t1" -v d="$DEVICES" -v e="$entries" -v b="$bytes" \
    -v p="$panes" -v sl="${slices:-0}" -v ck="$ckms" -v cb="$ckbytes" -v cp="$ckpause" -v rss="$rss" -v total="$N" 'BEGIN {
  printf "geofence: %d events of %d devices (Kafka mock -> lookup, full cache -> 30 s/5 s windows -> alerts)\n", total, d
  printf "  throughput        %8.0f events/s\n", n / (t1 - t0)
  printf "  keyed state       %8d values, %.0f bytes per device\n", e, b / d
  printf "  open windows      %8d panes, %.1f per device; %d slices (accumulators), %.1f per device\n", p, p / d, sl, sl / d
  printf "  checkpoint        %8.1f ms for %.1f MB (%.0f bytes per device), the loop stopped %.1f ms\n", ck * 1000, cb / 1e6, cb / d, cp * 1000
  printf "  eddy RSS          %8.0f MB (%.0f bytes per device, caches and Lua included)\n", rss / 1024, rss * 1024 / d }'
echo "  alerts written    $(wc -l < "$G/alerts.ndjson")"
