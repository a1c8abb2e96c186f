#!/usr/bin/env bash
# make bench, restore part: how long a partition's state takes to come back from its
# changelog topic (state.changelog=true) on the real broker, from an empty state.dir
# and from a warm one (the files a clean stop left: only the changelog after them is
# read). Two states: 100,000 keys of one value each, and the geofence job's (after
# scripts/bench-geofence.sh, whose events and device rows it reuses). Needs BENCH_DIR,
# BENCH_KAFKA, BENCH_KAFKA_DIR and MYSQL_PORT/MYSQL_PASSWORD from scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
R=$BENCH_DIR/restore
mkdir -p "$R/keys/processors" "$R/geo/processors"
cat > "$R/keys/processors/p.lua" <<'LUA'
return { routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx) ctx.state.set(ev.payload.k, { v = ev.payload.v }) end }
LUA
awk 'BEGIN { for (i = 1; i <= 100000; i++)
  printf "k%d\t{\"domain\":\"t\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\",\"v\":%d}}\n", i, i, i, i, i }' \
  > "$R/keys/events"
cp processors/geofence.lua "$R/geo/processors/"
jq -r '.payload.deviceId + "\t" + tojson' -c "$BENCH_DIR/geo/events.ndjson" > "$R/geo/events"

# conf CASE NAME: instance NAME of CASE, with a state.dir of its own.
conf() {
  cat > "$R/$1/$2.conf" <<CONF
processors.dir=$R/$1/processors
rules.dir=conf/rules
source.type=kafka
source.topics=restore-$1
kafka.bootstrap.servers=$BENCH_KAFKA
kafka.group.id=restore-$1
kafka.auto.offset.reset=earliest
mysql.url=mysql://eddy:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/eddy
$(grep '^lookup\.device_meta\.' conf/eddy.conf)
lookup.device_meta.max.rows=200000
sink.device_locations.type=file
sink.device_locations.path=/dev/null
sink.geofence_alerts.type=file
sink.geofence_alerts.path=/dev/null
sink.dlq.type=file
sink.dlq.path=$R/$1/dlq.ndjson
dlq.sink=dlq
state.changelog=true
state.dir=$R/$1/$2
admin.listen=127.0.0.1:0
CONF
}
# restored CASE NAME: start instance NAME, wait for its restore, stop it; prints the
# restore's "N records read, N entries, N s".
restored() {
  bin/eddy run -c "$R/$1/$2.conf" 2> "$R/$1/$2.err" &
  local pid=$! i
  for i in $(seq 3000); do grep -q "partitions restored" "$R/$1/$2.err" && break; sleep 0.1; done
  kill -TERM $pid; wait $pid || true
  grep -o 'restored from [^:]*: [0-9]* records read, [0-9]* entries, [0-9.]* s' "$R/$1/$2.err" |
    tail -1 | cut -d: -f2- || true
}
for c in keys geo; do
  scripts/kafka-local.sh topic "$BENCH_KAFKA_DIR" "restore-$c" 4 >/dev/null
  kcat -b "$BENCH_KAFKA" -P -t "restore-$c" -K $'\t' < "$R/$c/events"
  n=$(wc -l < "$R/$c/events")
  for m in a b; do conf "$c" "$m"; done
  # A processes everything and stops cleanly, leaving its files.
  bin/eddy run -c "$R/$c/a.conf" 2> "$R/$c/a-first.err" &
  pid=$!
  for _ in $(seq 600); do grep -q 'listening on' "$R/$c/a-first.err" && break; sleep 0.1; done
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$R/$c/a-first.err" | cut -d: -f2)
  for _ in $(seq 6000); do
    got=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
          awk '$1 == "eddy_records_read_total" { print $2 }' || true)
    [ "${got:-0}" -ge "$n" ] && break; sleep 0.1
  done
  written=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
            awk '$1 == "eddy_changelog_records_total" { print $2 }' || true)
  kill -TERM $pid; wait $pid || true
  empty=$(restored "$c" b)
  warm=$(restored "$c" a)
  what=$([ "$c" = keys ] && echo "100,000 keys, one value each" || echo "geofence job, $n events")
  printf 'restore %s (%s changelog records written):\n' "$what" "${written:-?}"
  printf '  empty state.dir  %s\n  warm state.dir   %s\n' "${empty:-none}" "${warm:-none}"
done
