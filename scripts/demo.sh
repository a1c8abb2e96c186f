#!/usr/bin/env bash
# make demo: eddy on its embedded Kafka (librdkafka's mock cluster, inside eddy) and a
# throwaway MariaDB holding the dimension and wide tables; a few thousand generated
# events of all four domains produced with kcat; then the wide tables, the output
# topics, the dead letters and the metrics. Ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${DEMO_EVENTS:-5000}
DIR=$(mktemp -d /tmp/eddy-demo.XXXXXX)
pid=
trap 'kill "$pid" 2>/dev/null || true; scripts/mariadb-local.sh stop "$DIR/db"; rm -rf "$DIR"' EXIT
export MYSQL_PASSWORD=demo MYSQL_PORT=$(scripts/free-port.sh)
sql() { scripts/mariadb-local.sh sql "$DIR/db" eddy "$@"; }

echo "== MariaDB on 127.0.0.1:$MYSQL_PORT: conf/sql/dimensions.sql, sample-data.sql, wide-tables.sql"
scripts/mariadb-local.sh start "$DIR/db" "$MYSQL_PORT"
cat conf/sql/dimensions.sql conf/sql/sample-data.sql conf/sql/wide-tables.sql | sql

# poll N CMD...: up to N tenths of a second for CMD to succeed.
poll() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }
metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
finished() { [ "$(metric eddy_records_read_total)" -ge "$COUNT" ] && [ "$(metric eddy_inflight_events)" = 0 ]; }

echo "== bin/eddy run -c conf/demo.conf  (embedded Kafka, consumer group eddy-demo)"
bin/eddy run -c conf/demo.conf 2> "$DIR/eddy.log" &
pid=$!
poll 100 grep -q 'partitions assigned' "$DIR/eddy.log" || { cat "$DIR/eddy.log"; exit 1; }
boot=$(grep -o 'embedded Kafka .* at [0-9.:,]*' "$DIR/eddy.log" | awk '{print $NF}')
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$DIR/eddy.log" | cut -d: -f2)
cat "$DIR/eddy.log"

echo; echo "== producing $COUNT events (about 3% broken on purpose) with kcat -b $boot -t business-events"
luajit scripts/gen-events.lua "$COUNT" 42 3 > "$DIR/events.ndjson"
head -2 "$DIR/events.ndjson"
awk '{ print NR "\t" $0 }' "$DIR/events.ndjson" | kcat -b "$boot" -P -t business-events -K '\t'
poll 600 finished || echo "(not finished after 60 s)"

echo; echo "== GET http://127.0.0.1:$port/metrics (excerpt)"
curl -fsS "http://127.0.0.1:$port/metrics" |
  grep -E '^eddy_(events_in|events_out|dead_letters|kafka_consumer_lag|lookup_hits|mysql_sink_rows)' | sort

echo; echo "== wide tables, read back with the mariadb client"
sql -t -e "SELECT (SELECT COUNT(*) FROM order_wide) AS orders, (SELECT COUNT(*) FROM user_activity) AS user_events,
                  (SELECT COUNT(*) FROM product_stats) AS product_days,
                  (SELECT SUM(views + searches + recommends) FROM product_stats) AS product_events"
sql -t -e "SELECT order_id, status, amount, user_level, user_city FROM order_wide ORDER BY status_time DESC LIMIT 3"
sql -t -e "SELECT product_id, stat_date, views, searches, recommends, category, brand FROM product_stats ORDER BY views DESC LIMIT 3"
sql -t -e "SELECT sink, COUNT(*) AS partitions, SUM(next_offset) AS offsets_stored FROM eddy_offsets GROUP BY sink"

echo; echo "== output topics, read back with kcat"
for t in device-locations product-events; do
  kcat -b "$boot" -C -t "$t" -e -q -f '%k\t%s\n' > "$DIR/$t.out"
  printf '%-17s %5d messages  e.g. key %s\n' "$t" "$(wc -l < "$DIR/$t.out")" "$(head -1 "$DIR/$t.out")"
done

echo; echo "== dead-letters topic: original bytes, reason in the eddy.reason header"
kcat -b "$boot" -C -t dead-letters -e -q -f '%h\n' | sed -E 's/^.*eddy\.reason=([^,]*),.*$/\1/' |
  sort | uniq -c | sort -rn
kcat -b "$boot" -C -t dead-letters -e -q -c 1 -f 'headers: %h\nvalue:   %s\n'

echo; echo "== SIGTERM: finish what is in flight, commit offsets, leave the group"
kill -TERM "$pid"; wait "$pid"
tail -2 "$DIR/eddy.log"
