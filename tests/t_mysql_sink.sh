# MySQL sink against a real MariaDB: upserts that make a replay harmless, per-row dead
# letters with the server's error, order status that never regresses, a server
# restart mid-stream, and exactly once through three SIGKILLs.
. tests/kafka_lib.sh
ensure_dims

# kv_conf DIR [key=value...]: a file source, a processor writing payload fields to
# table kv, dead letters to DIR/dlq.ndjson.
kv_conf() {
  local d=$1; shift
  lookup_conf "$d" sink.kv.type=mysql sink.kv.table=kv sink.kv.columns=id,k,v,s sink.kv.key=id \
    sink.kv.field.id=event_id "$@"
  sed -i '/^sink\.out\./d' "$d/eddy.conf"
  cat > "$d/processors/kv.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.emit("kv", { event_id = not p.nokey and ev.eventId or nil, k = p.k, v = p.v, s = p.s })
  end,
}
LUA
}
kv_event() { printf '{"domain":"t","type":"x","timestamp":%s,"eventId":"%s","payload":%s}\n' "$1" "$2" "$3"; }

sql "DROP TABLE IF EXISTS kv; CREATE TABLE kv (id VARCHAR(32) PRIMARY KEY, k VARCHAR(16),
     v INT, s VARCHAR(8)) ENGINE=InnoDB"

# One bad row among 1,000: the server's own error, the other 999 written.
d=$(newdir); kv_conf "$d"
for i in $(seq 1000); do
  if [ "$i" = 500 ]; then kv_event "$i" "e$i" '{"k":"a","v":1,"s":"far too long"}'
  else kv_event "$i" "e$i" "{\"k\":\"k$((i % 7))\",\"v\":$i,\"s\":\"ok\"}"; fi
done > "$d/in.ndjson"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || RC=$?
expect_eq "mysql sink: 1,000 rows with one bad: exits 0" 0 "$RC"
expect_eq "mysql sink: the other 999 rows are in the table" 999 "$(sql 'SELECT COUNT(*) FROM kv')"
expect_eq "mysql sink: the bad row is dead-lettered with MySQL's error and the row" \
  "sink_error|sink kv: execute: Data too long for column 's' at row 1 (1406)|e500" \
  "$(jq -r '[.reason, .detail, (.raw | fromjson | .event_id)] | join("|")' "$d/dlq.ndjson")"
expect_eq "mysql sink: one dead letter only" 1 "$(wc -l < "$d/dlq.ndjson")"

# The same input again: upserts, no new rows, same contents.
before=$(sql 'CHECKSUM TABLE kv' | cut -f2)
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err2" || RC=$?
expect_eq "mysql sink: a replay of the same input changes nothing (checksum)" "$before" \
  "$(sql 'CHECKSUM TABLE kv' | cut -f2)"
expect_eq "mysql sink: a replay adds no row" 999 "$(sql 'SELECT COUNT(*) FROM kv')"

# A record without its key column is refused before it reaches the server.
d=$(newdir); kv_conf "$d"; sql 'DELETE FROM kv'
{ kv_event 1 e1 '{"k":"x","nokey":true}'; kv_event 2 e2 '{"k":"y","v":"seven"}'; } > "$d/in.ndjson"
"$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || true
expect_eq "mysql sink: a missing key and a bad integer are both dead-lettered, with why" \
  "sink kv: execute: Incorrect integer value: 'seven' for column \`eddy\`.\`kv\`.\`v\` at row 1 (1366)
sink kv: key column id (field event_id) is missing or null" "$(jq -r .detail "$d/dlq.ndjson" | sort)"

# Order status never regresses: pay before create, cancel before pay.
d=$(newdir)
lookup_conf "$d" "source.file.path=$d/in.ndjson" "processors.dir=$ROOT/processors" \
  $(grep -E '^(lookup|sink\.order_wide)\.' conf/eddy.conf)
sed -i '/^sink\.out\./d' "$d/eddy.conf"
sql 'DELETE FROM order_wide'
order() { printf '{"domain":"order","type":"%s","timestamp":%s,"eventId":"%s","payload":{"orderId":"%s","userId":"u-7","amount":%s}}\n' "$@"; }
{ order order_pay 2000 p1 o-1 10.5; order order_create 1000 c1 o-1 10.5
  order order_cancel 3000 x2 o-2 20; order order_create 1000 c2 o-2 20; order order_pay 2000 p2 o-2 20
} > "$d/in.ndjson"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || RC=$?
expect_eq "mysql sink: orders written" 0 "$RC"
expect_eq "mysql sink: order_pay before order_create stays paid, both times kept" \
  "o-1	paid	2000	1000	2000	NULL	p1	3	Lagos" \
  "$(sql "SELECT order_id, status, status_time, created_time, paid_time, cancelled_time, last_event_id, user_level, user_city FROM order_wide WHERE order_id = 'o-1'")"
expect_eq "mysql sink: a late order_pay does not undo order_cancel" \
  "o-2	cancelled	3000	1000	2000	3000	x2" \
  "$(sql "SELECT order_id, status, status_time, created_time, paid_time, cancelled_time, last_event_id FROM order_wide WHERE order_id = 'o-2'")"

# IoT readings to iot_metrics by configuration alone (route to a sink, field paths).
d=$(newdir)
lookup_conf "$d" "source.file.path=$d/in.ndjson" "processors.dir=$ROOT/processors" \
  $(grep -E '^(lookup|route|sink\.iot_metrics)\.' conf/eddy.conf)
sed -i '/^sink\.out\./d' "$d/eddy.conf"
printf '{"domain":"iot","type":"reading","timestamp":5,"eventId":"r1","payload":{"deviceId":"d-1","temperature":21.5,"lat":1.25,"lon":2.5,"battery":80}}\n' > "$d/in.ndjson"
"$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || true
expect_eq "mysql sink: an iot event lands in iot_metrics with no processor" \
  "r1	d-1	5	21.5	NULL	1.25	2.5	80" "$(sql "SELECT * FROM iot_metrics WHERE event_id = 'r1'")"

# MariaDB stopped and restarted mid-stream: every row arrives, nothing dead-lettered.
d=$(newdir); kv_conf "$d" "source.file.path=$d/fifo" sink.kv.batch.rows=100 admin.listen=127.0.0.1:0 \
  mysql.timeout.ms=1000 mysql.retry.backoff.max.ms=500
sql 'DELETE FROM kv'
for i in $(seq 4000); do kv_event "$i" "e$i" "{\"k\":\"k\",\"v\":$i,\"s\":\"ok\"}"; done > "$d/all"
touch "$d/out.ndjson"
live_start "$d"
head -2000 "$d/all" >&4
wait_until test "$(sql 'SELECT COUNT(*) FROM kv')" -ge 1000
before=$(live_metric 'eddy_mysql_sink_connects_total{sink="kv"}')
stop_mariadb
tail -n +2001 "$d/all" >&4
sleep 2
failures=$(live_metric 'eddy_mysql_sink_connect_failures_total{sink="kv"}')
start_mariadb
wait_until test "$(sql 'SELECT COUNT(*) FROM kv')" -ge 4000
after=$(live_metric 'eddy_mysql_sink_connected{sink="kv"}')/$(live_metric 'eddy_mysql_sink_connects_total{sink="kv"}')
live_stop
expect_eq "mysql sink: server restarted mid-stream: eddy exits 0" 0 "$LIVE_RC"
expect_eq "mysql sink: one connection before the outage" 1 "$before"
check "mysql sink: connection attempts failed while the server was down ($failures)" \
  test "${failures:-0}" -ge 1
check "mysql sink: afterwards the connection is open again, reconnected ($after)" \
  conn_is "$after" 1 2
expect_eq "mysql sink: server restarted mid-stream: all 4,000 rows, none dead-lettered" \
  "4000 0" "$(sql 'SELECT COUNT(DISTINCT id) FROM kv') $(cat "$d/dlq.ndjson" 2>/dev/null | wc -l)"
check "mysql sink: the outage was retried, not skipped" grep -q 'not written.*retrying' "$d/err"

# Two exactly-once sinks, a group with no committed offset, and only one sink with a
# stored offset (say it was added to the pipeline later): the partition resumes from
# the beginning, not from that sink's offset, so the other sink still gets every row.
d=$(newdir)
start_mock "$d" 1 1 events
for i in $(seq 0 199); do kv_event "$i" "u$i" "{\"k\":\"k\",\"v\":$i}"; done |
  kcat -b "$BOOT" -P -t events
sql "DROP TABLE IF EXISTS kv2; CREATE TABLE kv2 LIKE kv; DELETE FROM kv;
     DELETE FROM eddy_offsets WHERE consumer_group = 'g-unknown';
     INSERT INTO eddy_offsets (consumer_group, sink, topic, kafka_partition, next_offset)
       VALUES ('g-unknown', 'kv', 'events', 0, 150)"
kv_conf "$d" source.type=kafka source.topics=events "kafka.bootstrap.servers=$BOOT" \
  kafka.group.id=g-unknown kafka.auto.offset.reset=earliest admin.listen=127.0.0.1:0 \
  sink.kv.exactly.once=true sink.kv2.type=mysql sink.kv2.table=kv2 sink.kv2.columns=id,k,v,s \
  sink.kv2.key=id sink.kv2.field.id=event_id sink.kv2.exactly.once=true
cat > "$d/processors/kv.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local row = { event_id = ev.eventId, k = ev.payload.k, v = ev.payload.v }
    ctx.emit("kv", row); ctx.emit("kv2", row)
  end,
}
LUA
start_eddy "$d" unk
wait_for done_reading "$d" unk 200
stop_eddy unk
expect_eq "exactly once: a sink without a stored offset gets every row; the one with it skips what it has" \
  "kv 50 150 kv2 200 0" \
  "$(sql "SELECT 'kv', COUNT(*), MIN(v) FROM kv; SELECT 'kv2', COUNT(*), MIN(v) FROM kv2" | tr '\t\n' '  ' | sed 's/ $//')"
check "exactly once: the partition did not resume from the one stored offset" \
  bash -c "! grep -q 'resumes at offset 150' '$d/unk.err'"
stop_mock

# Exactly once: 100,000 events keyed by entity, eddy killed three times, against an
# uninterrupted run into a second database.
d=$(newdir)
start_mock "$d" 1 8 events
luajit scripts/gen-events.lua 100000 23 0 > "$d/events.ndjson"
jq -r '(.payload.orderId // .payload.userId // .payload.productId // .payload.deviceId) + "\t" + tojson' \
  "$d/events.ndjson" > "$d/keyed"
kcat -b "$BOOT" -P -t events -K $'\t' < "$d/keyed"
check "exactly once: 100,000 events produced, keyed by entity" test "$(topic_count events)" -eq 100000
sql "CREATE DATABASE IF NOT EXISTS eddy_ref; GRANT ALL ON eddy_ref.* TO 'eddy'@'%'"
scripts/mariadb-local.sh sql "$MY_DIR" eddy_ref < <(cat conf/sql/dimensions.sql conf/sql/sample-data.sql conf/sql/wide-tables.sql)
sql 'DELETE FROM order_wide; DELETE FROM user_activity; DELETE FROM product_stats; DELETE FROM eddy_offsets'
eo_conf() {   # eo_conf DIR GROUP DATABASE
  {
    echo "processors.dir=$ROOT/processors"
    echo "source.type=kafka"; echo "source.topics=events"
    echo "kafka.bootstrap.servers=$BOOT"; echo "kafka.group.id=$2"
    echo "kafka.auto.offset.reset=earliest"; echo "kafka.auto.commit.interval.ms=500"
    # A killed member's partitions move after its session times out.
    echo "kafka.session.timeout.ms=6000"; echo "kafka.heartbeat.interval.ms=1000"
    echo "mysql.url=mysql://eddy:$MY_PASSWORD@127.0.0.1:$MY_PORT/$3"
    grep -E '^(lookup|sink\.(order_wide|user_activity|product_stats))\.' conf/eddy.conf
    for s in order_wide user_activity product_stats; do echo "sink.$s.exactly.once=true"; done
    echo "sink.device_locations.type=file"; echo "sink.device_locations.path=$1/devices.ndjson"
    echo "sink.geofence_alerts.type=file"; echo "sink.geofence_alerts.path=$1/alerts.ndjson"
    echo "sink.product_events.type=file"; echo "sink.product_events.path=$1/product_events.ndjson"
    echo "sink.dlq.type=file"; echo "sink.dlq.path=$1/dlq.ndjson"; echo "dlq.sink=dlq"
    echo "admin.listen=127.0.0.1:0"
  } > "$1/eddy.conf"
}
# tables DATABASE: every row of the three wide tables, in key order.
tables() {
  scripts/mariadb-local.sh sql "$MY_DIR" -N -B "$1" -e "
    SELECT * FROM order_wide ORDER BY order_id; SELECT * FROM user_activity ORDER BY event_id;
    SELECT * FROM product_stats ORDER BY product_id, stat_date"
}
same_tables() { [ "$(tables eddy | md5sum)" = "$(tables eddy_ref | md5sum)" ]; }
ref_rows() { [ "$(scripts/mariadb-local.sh sql "$MY_DIR" -N -B eddy_ref -e 'SELECT COUNT(*) FROM user_activity')" -gt 0 ]; }

mkdir -p "$d/ref"; eo_conf "$d/ref" ref eddy_ref
MOCK_DIR_SAVE=$MOCK_DIR; MOCK_DIR=$d/ref
start_eddy "$d/ref" r
wait_for done_reading "$d/ref" r 100000
stop_eddy r; expect_eq "exactly once: the uninterrupted run exits 0" 0 "$STOP_RC"
MOCK_DIR=$d
eo_conf "$d" killed eddy
# Each run is killed at a random point while it writes: after 3,000 to 7,000 user rows
# of its own. Kafka commits every 500 ms, the sinks every batch, so the group's offset
# lags the stored ones and the next run replays (and skips) what lies between.
user_rows_over() {
  local n; n=$(metric "$d" "$1" 'eddy_mysql_sink_rows_total{sink="user_activity"}')
  [ -n "$n" ] && [ "$n" -ge "$2" ]
}
for k in 1 2 3; do
  start_eddy "$d" "k$k"
  wait_for user_rows_over "k$k" $((3000 + RANDOM % 4000))
  stop_eddy "k$k" KILL
done
start_eddy "$d" last
# caught_up: the last run holds all 8 partitions, has read to their ends and has
# nothing in flight. Up to 3 minutes (a bound, not a timing assertion); then the
# tables are compared once, so a slow run and a lost row tell themselves apart.
caught_up() {
  local port lags
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$d/last.err" 2>/dev/null | cut -d: -f2)
  [ -n "$port" ] || return 1
  lags=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk '$1 ~ /^eddy_kafka_consumer_lag\{/ { print $2 }')
  [ "$(wc -w <<<"$lags")" = 8 ] && [ -z "$(tr ' ' '\n' <<<"$lags" | grep -v '^0$')" ] &&
    [ "$(metric "$d" last eddy_inflight_events)" = 0 ]
}
for _ in $(seq 180); do caught_up && break; sleep 1; done
check "exactly once: the restarted run reads every partition to its end" caught_up
if same_tables; then pass "exactly once: after three SIGKILLs, tables equal the uninterrupted run"
else fail "exactly once: after three SIGKILLs, tables equal the uninterrupted run" \
  "$(diff <(tables eddy_ref) <(tables eddy) | head -20)" \
  "$(grep -h 'resumes\|assigned\|already\|retrying' "$d"/k*.err "$d/last.err" | tail -40)"; fi
stop_eddy last; expect_eq "exactly once: the last run exits 0" 0 "$STOP_RC"
expect_eq "exactly once: row counts (orders/user events/product days) match too" \
  "$(tables eddy_ref | wc -l)" "$(tables eddy | wc -l)"
check "exactly once: the wide tables hold the run (over 40,000 rows)" test "$(tables eddy | wc -l)" -gt 40000
check "exactly once: some killed work was replayed and skipped by the stored offsets" \
  grep -q 'rows already written' "$d"/k*.err "$d/last.err"
product_total() { scripts/mariadb-local.sh sql "$MY_DIR" -N -B "$1" -e 'SELECT SUM(views + searches + recommends) FROM product_stats'; }
want=$(grep -c '"domain":"product"' "$d/events.ndjson")
if [ "$want" = "$(product_total eddy)" ]; then pass "exactly once: product counters add up to the product events"
else fail "exactly once: product counters add up to the product events" \
  "expected: $want, actual: $(product_total eddy), reference run: $(product_total eddy_ref)" \
  "dead letters: $(jq -r .reason "$d/dlq.ndjson" 2>/dev/null | sort | uniq -c | tr '\n' ' ')" \
  "$(grep -h ' warn \| error \|resumes\|assigned\|revoked' "$d"/k*.err "$d/last.err" | head -40)" \
  "$(scripts/mariadb-local.sh sql "$MY_DIR" -N -B eddy -e 'SELECT * FROM eddy_offsets ORDER BY 2, 4')"; fi
MOCK_DIR=$MOCK_DIR_SAVE
stop_mock
